/**
 * Which fields of a recorded flow record `policy replay` reads, and how a value found in a record is accepted.
 *
 * A record is nested ECS JSON ({"source":{"ip":…}}; docs/flow-record.md) whose leaf paths are the dotted names
 * of the field catalogue (src/flow/fields.ts). Replay builds, once per run, a tree of the key paths it needs —
 * the fields either policy reads (CompiledRule.fields), the record's own decision fields, and the old names of
 * moved fields (FIELD_ALIASES) — so reading a record is a walk down that tree that never looks at the rest.
 * Each needed field gets a slot number; a record's values live in one array indexed by slot (no per-record Map).
 */
import { FIELD_ALIASES, FIELDS, fieldType, isFieldName, isMatchableField, type FieldName, type FieldType, type FieldValue } from '../flow/fields.js';
import { ARRAY_IN_RECORD } from '../observe/ecs.js';

/** The record's own account of what happened: read from every record, never matched by rules. */
export const DECISION_FIELDS = [
  'event.action',
  'event.kind',
  'event.severity',
  'rule.id',
  'tags',
  'egress.rules',
  'egress.followup_of',
  'egress.pending_rule',
] as const satisfies readonly FieldName[];
export type DecisionField = (typeof DECISION_FIELDS)[number];

export interface FieldSlot {
  /** The canonical catalogue name. */
  readonly name: FieldName;
  readonly type: FieldType;
  readonly index: number;
  /** Reached through an old name (FIELD_ALIASES): the new name wins when a record has both. */
  readonly alias: boolean;
}

/** One key of the nested record: where its value goes (a leaf), and the keys below it. */
export interface PathNode {
  readonly children: Map<string, PathNode>;
  /**
   * The children again, by the first character of their key (a code unit below 128; the catalogue's keys are
   * ASCII): the scanner compares a key in place against the one or two keys that start like it, without finding
   * the key's end first or cutting a string out of the line.
   */
  readonly byFirst: ({ readonly keys: string[]; readonly nodes: PathNode[] } | undefined)[];
  slot: FieldSlot | null;
  /** The record serial that last visited this node: a repeated key within one record is seen (scan-record.ts). */
  seen: number;
}

export interface RecordShape {
  readonly root: PathNode;
  /** Slot of each canonical field read, by name. */
  readonly slots: ReadonlyMap<FieldName, number>;
  readonly slotCount: number;
  /** Slot per decision field (always present). */
  readonly decision: Readonly<Record<DecisionField, number>>;
}

function newNode(): PathNode {
  return { children: new Map(), byFirst: [], slot: null, seen: -1 };
}

/** The record's key path of a dotted field name: `@timestamp` is one key, everything else splits at dots. */
export function keyPath(name: string): readonly string[] {
  return name === '@timestamp' ? [name] : name.split('.');
}

/**
 * The shape for a run: every matchable field in `fields` (what the policies read) and the decision fields.
 * Non-matchable fields in `fields` are ignored (a rule cannot read them; compile.ts refuses them anyway).
 */
export function buildRecordShape(fields: Iterable<FieldName>): RecordShape {
  const root = newNode();
  const slots = new Map<FieldName, number>();
  const add = (path: readonly string[], slot: FieldSlot): void => {
    let node = root;
    for (const key of path) {
      let child = node.children.get(key);
      if (child === undefined) {
        child = newNode();
        node.children.set(key, child);
      }
      node = child;
    }
    node.slot = slot;
  };
  const want = (name: FieldName): void => {
    if (slots.has(name)) return;
    const index = slots.size;
    slots.set(name, index);
    add(keyPath(name), { name, type: fieldType(name), index, alias: false });
  };
  for (const name of fields) if (isFieldName(name) && isMatchableField(name)) want(name);
  for (const name of DECISION_FIELDS) want(name);
  // Old spellings of moved fields (records written before the move): the same slot, lower priority.
  for (const [old, name] of Object.entries(FIELD_ALIASES)) {
    const index = slots.get(name);
    if (index === undefined || isFieldName(old)) continue;
    add(keyPath(old), { name, type: fieldType(name), index, alias: true });
  }
  indexByFirst(root);
  const decision = Object.fromEntries(DECISION_FIELDS.map((name) => [name, slots.get(name) as number])) as Record<DecisionField, number>;
  return { root, slots, slotCount: slots.size, decision };
}

function indexByFirst(node: PathNode): void {
  for (const [key, child] of node.children) {
    const first = key.charCodeAt(0);
    if (!(first < 128)) throw new Error(`record key ${JSON.stringify(key)} does not start with an ASCII character`);
    const same = (node.byFirst[first] ??= { keys: [], nodes: [] });
    same.keys.push(key);
    same.nodes.push(child);
    indexByFirst(child);
  }
}

/**
 * A value from a record as the catalogue types it, or undefined when it does not fit (the field is then absent,
 * as if the record did not carry it). Mirrors what the live Flow can hold: finite numbers, arrays of one kind.
 */
export function acceptValue(value: unknown, slot: FieldSlot): FieldValue | undefined {
  switch (slot.type) {
    case 'string':
    case 'ip':
      if (typeof value === 'string') return value;
      // ECS declares a few single values as arrays: the record writes a one-element list (ecs.ts ARRAY_IN_RECORD).
      if (ARRAY_IN_RECORD.has(slot.name) && Array.isArray(value) && value.length === 1 && typeof value[0] === 'string') return value[0] as string;
      return undefined;
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
    case 'boolean':
      return typeof value === 'boolean' ? value : undefined;
    case 'string[]':
      return Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : undefined;
    case 'number[]':
      return Array.isArray(value) && value.every((v) => typeof v === 'number' && Number.isFinite(v)) ? (value as number[]) : undefined;
    case 'object[]':
      return Array.isArray(value) && value.every(isFlatObject) ? (value as Record<string, string | number>[]) : undefined;
  }
}

function isFlatObject(v: unknown): boolean {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  return Object.values(v).every((x) => typeof x === 'string' || typeof x === 'number');
}

/** Every field name the catalogue knows (for tests). */
export const CATALOGUE_FIELDS: readonly FieldName[] = Object.keys(FIELDS) as FieldName[];

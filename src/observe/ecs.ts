import { FIELDS, type FieldName, type FieldValue } from '../flow/fields.js';
import type { Flow } from '../flow/flow.js';

const SEVERITY_NUMBER = { low: 1, medium: 2, high: 3, critical: 4 } as const;

export type EcsRecord = Record<string, unknown>;

/**
 * The nesting of the ECS document, built once from the field catalogue: a node per dotted prefix, a leaf per
 * field, in catalogue order. Serializing walks this fixed tree, so the per-flow work is Map lookups and
 * string building — no nested objects with flow-dependent shapes.
 */
interface TreeNode {
  /** `"key":` already JSON-encoded. */
  readonly prefix: string;
  readonly field: FieldName | null;
  readonly children: TreeNode[];
}

function buildTree(): TreeNode[] {
  const root: TreeNode[] = [];
  for (const name of Object.keys(FIELDS) as FieldName[]) {
    const path = name === '@timestamp' ? [name] : name.split('.');
    let level = root;
    path.forEach((key, i) => {
      const leaf = i === path.length - 1;
      let node = level.find((n) => n.prefix === `${JSON.stringify(key)}:` && (n.field === null) === !leaf);
      if (node === undefined) {
        node = { prefix: `${JSON.stringify(key)}:`, field: leaf ? name : null, children: [] };
        level.push(node);
      }
      level = node.children;
    });
  }
  return root;
}

const TREE = buildTree();

/** A field's place in the tree: its position in a depth-first walk, and the JSON keys (`"k":`) on its path. */
interface Leaf {
  readonly field: FieldName;
  readonly order: number;
  readonly keys: readonly string[];
}

function indexLeaves(tree: readonly TreeNode[]): ReadonlyMap<FieldName, Leaf> {
  const leaves = new Map<FieldName, Leaf>();
  const walk = (nodes: readonly TreeNode[], keys: readonly string[]): void => {
    for (const node of nodes) {
      const path = [...keys, node.prefix];
      if (node.field !== null) leaves.set(node.field, { field: node.field, order: leaves.size, keys: path });
      else walk(node.children, path);
    }
  };
  walk(tree, []);
  return leaves;
}

const LEAVES = indexLeaves(TREE);

const byOrder = (a: Leaf, b: Leaf): number => a.order - b.order;

/** Characters a JSON string must escape (RFC 8259 §7), plus lone surrogates (JSON.stringify escapes them). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point: JSON must escape them
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** JSON text of a field value: plain strings and finite numbers directly, everything else by JSON.stringify. */
function jsonValue(value: FieldValue | undefined): string {
  if (typeof value === 'string') return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return JSON.stringify(value) ?? 'null';
}

/** Reused between records (serialisation is synchronous): no per-record array. */
const present: Leaf[] = [];

/**
 * The fields the flow has, in tree order, written as nested JSON members: only the ~40 fields a flow has are
 * visited, not the whole catalogue. Same output as walking the tree (fields nested by dotted name).
 */
function writeFields(values: ReadonlyMap<FieldName, FieldValue>): string {
  present.length = 0;
  values.forEach((value, name) => {
    const leaf = LEAVES.get(name);
    if (leaf !== undefined && value !== undefined) present.push(leaf);
  });
  present.sort(byOrder);
  let out = '';
  let open: readonly string[] = [];
  let depth = 0;
  // A member follows another at its level unless the level was just opened (no reading back from `out`:
  // charCodeAt on a concatenated string would flatten it every time).
  let comma = false;
  for (const leaf of present) {
    const keys = leaf.keys;
    const last = keys.length - 1;
    let common = 0;
    while (common < depth && common < last && open[common] === keys[common]) common++;
    for (; depth > common; depth--) {
      out += '}';
      comma = true;
    }
    if (comma) out += ',';
    for (let i = common; i < last; i++) out += `${keys[i] as string}{`;
    depth = last;
    open = keys;
    out += (keys[last] as string) + jsonValue(values.get(leaf.field));
    comma = true;
  }
  for (; depth > 0; depth--) out += '}';
  return out;
}

/** Write what the decision and the end of the flow add into the flow's own fields (record-only fields). */
function finishFields(flow: Flow, endNs: bigint): void {
  const decision = flow.decision;
  flow.set('event.kind', decision !== null && decision.severity !== null ? 'alert' : 'event');
  if (decision !== null && decision.status === 'final') {
    flow.set('event.action', decision.verdict);
    if (decision.ruleId !== null) flow.set('rule.id', decision.ruleId);
  } else {
    // A flow that ended before the policy could decide (client gone, shutdown) forwarded nothing.
    flow.set('event.action', 'block');
    if (decision !== null) flow.set('egress.pending_rule', decision.pendingRuleId);
  }
  if (decision !== null) {
    if (decision.severity !== null) flow.set('event.severity', SEVERITY_NUMBER[decision.severity]);
    if (decision.matchedRuleIds.length > 0) flow.set('egress.rules', decision.matchedRuleIds);
    if (decision.tags.length > 0) flow.set('tags', decision.tags);
    if (decision.reasons.length > 0) flow.set('egress.explanation', decision.reasons);
  }
  flow.set('event.outcome', flow.outcome);
  flow.set('event.duration', Number(endNs - flow.startedNs));
  flow.set('source.bytes', flow.sourceBytes);
  flow.set('destination.bytes', flow.destinationBytes);
  if (flow.errorCode !== null) {
    flow.set('error.code', flow.errorCode);
    flow.set('error.message', flow.errorMessage ?? '');
  }
}

/**
 * The ECS JSON line of a flow: every known field nested by its dotted name ({"source":{"ip":…}}), plus
 * what the decision and the end of the flow add. Call once, when the flow ends.
 */
export function serializeEcsRecord(flow: Flow, endNs: bigint = process.hrtime.bigint()): string {
  finishFields(flow, endNs);
  return `{${writeFields(flow.fieldMap())}}`;
}

/** The same record as an object (tests, follow-up records). */
export function buildEcsRecord(flow: Flow, endNs: bigint = process.hrtime.bigint()): EcsRecord {
  return JSON.parse(serializeEcsRecord(flow, endNs)) as EcsRecord;
}

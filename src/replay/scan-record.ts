/**
 * Reading one flow-log line into the slots of a RecordShape (record-fields.ts): the hot loop of `policy replay`.
 *
 * JSON.parse of a whole record costs ~13–20 µs for a 2.4 KB record on the dev VM, and replay needs perhaps a tenth
 * of its fields. So a line is first read by a selective scanner that still validates all of it (RFC 8259: §4
 * objects, §5 arrays, §6 numbers, §7 strings) — a damaged line must be reported as JSON.parse would, not half-read:
 * - the members replay does not read are skipped by one native regular-expression match per run of them (the run
 *   of each object the shape descends into: runPattern), which validates them on the way; this is where the bytes
 *   are (cipher lists, related.*, observer.*, url.*). A per-character JavaScript walk was ~3x slower (measured);
 * - only the keys the shape names are looked at in JavaScript, and only their values are built.
 * It is optimistic: anything it does not handle simply — whitespace between tokens, a key with escapes, a dotted
 * key (`"source.ip"`) that may name a field read, a key read twice (JSON.parse keeps the last one whole), values
 * nested deeper than VALUE_DEPTH, any syntax error — sends the line to the slow path, JSON.parse and a walk over
 * the object, which is the reference: both give the same slots for every line (test/unit/replay/scan-record.test.ts
 * checks it on generated, real and damaged input).
 */
import type { FieldName, FieldValue } from '../flow/fields.js';
import type { Facts } from '../flow/facts.js';
import { acceptValue, type FieldSlot, type PathNode, type RecordShape } from './record-fields.js';

const BAIL = -1;
/**
 * RFC 8259 §7 string, raw control characters (U+0000–U+001F) excluded, escapes checked; §6 number; the literals.
 * These are the whole grammar the fast path accepts: what they do not match goes to JSON.parse.
 */
const STRING = String.raw`"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*"`;
const SCALAR = String.raw`(?:${STRING}|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)`;
/**
 * Values nested this deep at most are read by one native match (a record's deepest skipped value, http.request.body,
 * is 3; the proxy writes 5 levels in all). A deeper value goes to JSON.parse.
 */
const VALUE_DEPTH = 5;
/**
 * RFC 8259 §4/§5 objects and arrays in the compact spelling the proxy writes (no whitespace), `depth` levels deep.
 * A comma must be followed by another member (`,(?=")`, `,(?!\])`), so a trailing comma fails; each part has one way
 * to match, so a failed match backtracks in linear time.
 */
function valuePattern(depth: number): string {
  if (depth === 0) return SCALAR;
  const inner = valuePattern(depth - 1);
  return String.raw`(?:${SCALAR}|\{(?:${STRING}:${inner}(?:,(?=")|(?=\})))*\}|\[(?:${inner}(?:,(?!\])|(?=\])))*\])`;
}
const VALUE_SOURCE = valuePattern(VALUE_DEPTH);
/** One whole value, validated and skipped in one native match. */
const VALUE = new RegExp(VALUE_SOURCE, 'y');

/**
 * true when `line` is one whole JSON value in the proxy's compact spelling, by the scanner's own grammar, in one
 * native match and nothing else: the platform floor of "validate every byte" (bench/replay.bench.ts `--floor`).
 */
export function validatesWhole(line: string): boolean {
  VALUE.lastIndex = 0;
  return VALUE.test(line) && VALUE.lastIndex === line.length;
}
/** A key without escapes: a key with one goes to JSON.parse (it could spell a field's name). */
// eslint-disable-next-line no-control-regex -- raw control characters are what a JSON string may not hold (RFC 8259 §7)
const KEY = /"[^"\\\x00-\x1f]*"/y;

/**
 * The members of an object that replay does not read, skipped in one native match: every member whose key is not
 * one of `keys` and does not start with one of them and a dot (a dotted key, `"source.ip"`, that may name a field
 * read: the walk looks at it). Stops before a member it cannot skip (a key read, whitespace, a deep value); the
 * walk takes over there. Compiled once per node of the shape (`RecordScanner` constructor).
 */
function runPattern(keys: readonly string[]): RegExp {
  const names = keys.map((k) => k.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')).join('|');
  const key = names === '' ? STRING : String.raw`"(?!(?:${names})[".])[^"\\\x00-\x1f]*"`;
  return new RegExp(String.raw`(?:${key}:${VALUE_SOURCE}(?:,(?=")|(?=\})))*`, 'y');
}

const QUOTE = 34;
const COMMA = 44;
const COLON = 58;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CARRIAGE_RETURN = 13;

/** The child whose key is s[start, end), compared in place. */
function childAt(node: PathNode, s: string, start: number, end: number): PathNode | undefined {
  const same = node.byLength[end - start];
  if (same === undefined) return undefined;
  const keys = same.keys;
  for (let k = 0; k < keys.length; k++) if (s.startsWith(keys[k] as string, start)) return same.nodes[k];
  return undefined;
}

/** The index after the value at s[i], or BAIL. */
function skipValue(s: string, i: number): number {
  VALUE.lastIndex = i;
  return VALUE.test(s) ? VALUE.lastIndex : BAIL;
}

/** The runs of every node with children, compiled once. */
function compileRuns(node: PathNode, into: Map<PathNode, RegExp>): Map<PathNode, RegExp> {
  if (node.children.size === 0) return into;
  into.set(node, runPattern([...node.children.keys()]));
  for (const child of node.children.values()) compileRuns(child, into);
  return into;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Why a line is not a flow record; null when it is one. */
export type LineProblem = string | null;

/**
 * Reads lines into slots; one instance per run (it reuses its arrays). After `read` returned null, `facts` is
 * the record's facts for the policy evaluator and `value(slot)` any slot, until the next `read`.
 */
export class RecordScanner {
  readonly shape: RecordShape;
  readonly facts: Facts;
  private readonly values: (FieldValue | undefined)[];
  /** 0 unset, 1 set through an old name, 2 set through the catalogue name. */
  private readonly setBy: Uint8Array;
  private serial = 0;
  /** The skip pattern of each node with children (runPattern). */
  private readonly runs: Map<PathNode, RegExp>;
  /** Lines read by the fast path and by JSON.parse (for the bench and tests). */
  fastLines = 0;
  slowLines = 0;
  /** Values that did not fit the catalogue type, by field (at most one entry per catalogue field). */
  readonly rejected = new Map<FieldName, number>();

  constructor(shape: RecordShape) {
    this.shape = shape;
    this.values = new Array<FieldValue | undefined>(shape.slotCount).fill(undefined);
    this.setBy = new Uint8Array(shape.slotCount);
    this.runs = compileRuns(shape.root, new Map());
    const slots = shape.slots;
    const values = this.values;
    this.facts = {
      get: <K extends FieldName>(name: K) => {
        const index = slots.get(name);
        return (index === undefined ? undefined : values[index]) as never;
      },
      // Every stage of a recorded flow is over: a field the record lacks is absent for good, never pending.
      isPending: () => false,
    };
  }

  value(index: number): FieldValue | undefined {
    return this.values[index];
  }

  /** Reads one line (without its newline). */
  read(line: string): LineProblem {
    this.reset();
    if (line.charCodeAt(0) === OPEN_BRACE) {
      const end = this.scanObject(line, 0, this.shape.root);
      // A `\r` left by a CRLF file is the only thing allowed after the record on the fast path.
      if (end === line.length || (end !== BAIL && end === line.length - 1 && line.charCodeAt(end) === CARRIAGE_RETURN)) {
        this.fastLines++;
        return null;
      }
    }
    this.reset();
    this.slowLines++;
    return this.readSlow(line);
  }

  private reset(): void {
    this.serial++;
    this.values.fill(undefined);
    this.setBy.fill(0);
  }

  // ---- the reference: JSON.parse and a walk ---------------------------------------------------------

  private readSlow(line: string): LineProblem {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (err) {
      return `not JSON (${err instanceof Error ? err.message : String(err)})`;
    }
    if (!isPlainObject(parsed)) return `not a JSON object (${parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : typeof parsed})`;
    this.walk(parsed, this.shape.root);
    return null;
  }

  private walk(object: Record<string, unknown>, node: PathNode): void {
    for (const key of Object.keys(object)) {
      const value = object[key];
      const child = node.children.get(key);
      if (child !== undefined) this.visit(child, value);
      else if (key.includes('.')) this.visitDotted(key.split('.'), value, node);
    }
  }

  /** A key that spells several levels at once (`"source.ip"`, as flattened exports write them). */
  private visitDotted(parts: readonly string[], value: unknown, from: PathNode): void {
    let node: PathNode | undefined = from;
    for (const part of parts) {
      node = node.children.get(part);
      if (node === undefined) return;
    }
    this.visit(node, value);
  }

  private visit(node: PathNode, value: unknown): void {
    if (node.children.size > 0 && isPlainObject(value)) this.walk(value, node);
    else if (node.slot !== null) this.assign(node.slot, value);
  }

  private assign(slot: FieldSlot, raw: unknown): void {
    const index = slot.index;
    // The catalogue name beats an old name (FIELD_ALIASES) whichever comes first.
    if (slot.alias && this.setBy[index] === 2) return;
    const value = raw === null ? undefined : acceptValue(raw, slot);
    if (value === undefined && raw !== null) this.rejected.set(slot.name, (this.rejected.get(slot.name) ?? 0) + 1);
    this.values[index] = value;
    this.setBy[index] = value === undefined ? 0 : slot.alias ? 1 : 2;
  }

  // ---- the fast path: native matches skip what is not read; the walk reads the rest -----------------

  /** `s[i]` is `{` of an object the shape descends into. Returns the index after its `}`, or BAIL. */
  private scanObject(s: string, i: number, node: PathNode): number {
    const run = this.runs.get(node) as RegExp;
    i++;
    if (s.charCodeAt(i) === CLOSE_BRACE) return i + 1;
    for (;;) {
      // Members not read, as many as follow one another; a `}` after them closes the object (run never eats a
      // trailing comma).
      run.lastIndex = i;
      if (run.test(s)) i = run.lastIndex;
      if (s.charCodeAt(i) === CLOSE_BRACE) return i + 1;
      i = this.member(s, i, node);
      if (i === BAIL) return BAIL;
      const c = s.charCodeAt(i);
      if (c === CLOSE_BRACE) return i + 1;
      if (c !== COMMA || s.charCodeAt(i + 1) !== QUOTE) return BAIL;
      i++;
    }
  }

  /** One `"key":value` member at s[i] that the run did not skip. Returns the index after the value, or BAIL. */
  private member(s: string, i: number, node: PathNode): number {
    if (s.charCodeAt(i) !== QUOTE) return BAIL;
    KEY.lastIndex = i;
    if (!KEY.test(s)) return BAIL;
    const keyEnd = KEY.lastIndex;
    if (s.charCodeAt(keyEnd) !== COLON) return BAIL;
    const child = childAt(node, s, i + 1, keyEnd - 1);
    if (child === undefined) {
      // A dotted key (`"geo.country_iso_code"`) that may name one of our fields: JSON.parse decides.
      const dot = s.indexOf('.', i + 1);
      if (dot !== -1 && dot < keyEnd && node.children.has(s.slice(i + 1, dot))) return BAIL;
      return skipValue(s, keyEnd + 1);
    }
    // A key read twice: JSON.parse keeps the last value whole.
    if (child.seen === this.serial) return BAIL;
    child.seen = this.serial;
    const v = keyEnd + 1;
    if (child.children.size > 0 && s.charCodeAt(v) === OPEN_BRACE) return this.scanObject(s, v, child);
    if (child.slot !== null) return this.readLeaf(s, v, child.slot);
    return skipValue(s, v);
  }

  private readLeaf(s: string, i: number, slot: FieldSlot): number {
    const end = skipValue(s, i);
    if (end === BAIL) return BAIL;
    const c = s.charCodeAt(i);
    let value: unknown;
    if (c === QUOTE) {
      const body = s.slice(i + 1, end - 1);
      value = body.includes('\\') ? (JSON.parse(s.slice(i, end)) as string) : body;
    } else if (c === 116) value = true;
    else if (c === 102) value = false;
    else if (c === 110) value = null;
    // Lists and objects: small (tags, rule ids, ALPN); the match above has validated them.
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) value = JSON.parse(s.slice(i, end)) as unknown;
    else value = Number(s.slice(i, end));
    this.assign(slot, value);
    return end;
  }
}

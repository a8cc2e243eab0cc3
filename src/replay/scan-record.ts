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
/** readMember: the key at that point is not one the shape names. */
const NOT_READ = -2;
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
 * walk takes over there. Compiled once per scanner, over the keys of the whole shape (`RecordScanner` constructor).
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
const CARRIAGE_RETURN = 13;
const BACKSLASH = 92;
const MINUS = 45;
const DOT = 46;
const DIGIT_0 = 48;
const DIGIT_9 = 57;
const LOWER_E = 101;
const UPPER_E = 69;
const LOWER_F = 102;
const LOWER_N = 110;
const LOWER_T = 116;

/** The child whose key is s[start, end), compared in place with the keys that start with the same character. */
function childAt(node: PathNode, s: string, start: number, end: number): PathNode | undefined {
  const same = node.byFirst[s.charCodeAt(start)];
  if (same === undefined) return undefined;
  const keys = same.keys;
  const length = end - start;
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k] as string;
    if (key.length !== length) continue;
    let j = 1;
    while (j < length && key.charCodeAt(j) === s.charCodeAt(start + j)) j++;
    if (j === length) return same.nodes[k];
  }
  return undefined;
}

/** Whether s holds `word` at i (`true`, `false`, `null`), compared in place. */
function hasWordAt(s: string, i: number, word: string): boolean {
  for (let j = 0; j < word.length; j++) if (s.charCodeAt(i + j) !== word.charCodeAt(j)) return false;
  return true;
}

/** Integers up to this many digits are summed exactly in a double (2^53 > 10^15). */
const EXACT_DIGITS = 15;

/** The index after the value at s[i], or BAIL. */
function skipValue(s: string, i: number): number {
  VALUE.lastIndex = i;
  return VALUE.test(s) ? VALUE.lastIndex : BAIL;
}

/** Every key the shape names, at any depth. */
function shapeKeys(node: PathNode, into: Set<string>): Set<string> {
  for (const [key, child] of node.children) {
    into.add(key);
    shapeKeys(child, into);
  }
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
  /**
   * The skip pattern (runPattern) of every object the shape descends into: one pattern, whose keys are those of
   * the whole shape, not one per object. Each compiled pattern is its own block of native code tens of KB long
   * (in a micro-benchmark, matching through eight of them in turn was ~1.4x slower per byte than through one; in
   * the scanner the difference was within the VM's noise), and one is less to compile. The price: a run also stops
   * before a key the shape reads elsewhere (event.id, for rule.id); the walk skips that member and goes on.
   */
  private readonly run: RegExp;
  /** Lines read by the fast path and by JSON.parse (for the bench and tests). */
  fastLines = 0;
  slowLines = 0;
  /** Values that did not fit the catalogue type, by field (at most one entry per catalogue field). */
  readonly rejected = new Map<FieldName, number>();

  constructor(shape: RecordShape) {
    this.shape = shape;
    this.values = new Array<FieldValue | undefined>(shape.slotCount).fill(undefined);
    this.setBy = new Uint8Array(shape.slotCount);
    this.run = runPattern([...shapeKeys(shape.root, new Set())]);
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

  /** Every slot's value of the record read last, by slot index (the decision cache's key); valid until the next `read`. */
  slotValues(): readonly (FieldValue | undefined)[] {
    return this.values;
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
    const values = this.values;
    const setBy = this.setBy;
    for (let k = 0; k < values.length; k++) {
      values[k] = undefined;
      setBy[k] = 0;
    }
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
    const run = this.run;
    i++;
    if (s.charCodeAt(i) === CLOSE_BRACE) return i + 1;
    for (;;) {
      // A key read is compared in place first: where one follows another (event.kind, event.action; the
      // members of egress.destination) a skip run would match nothing, and a match call costs ~20 ns however
      // little it reads (measured: 7 of the 17 runs per record were empty).
      let end = this.readMember(s, i, node);
      if (end === NOT_READ) {
        // Members not read, as many as follow one another; a `}` after them closes the object (run never eats a
        // trailing comma).
        run.lastIndex = i;
        if (run.test(s)) i = run.lastIndex;
        if (s.charCodeAt(i) === CLOSE_BRACE) return i + 1;
        end = this.readMember(s, i, node);
        // Whatever the run stopped before that is not a plain key read (a dotted key, whitespace, a deep value,
        // a syntax error) takes the general path.
        if (end === NOT_READ) end = this.member(s, i, node);
      }
      if (end === BAIL) return BAIL;
      i = end;
      const c = s.charCodeAt(i);
      if (c === CLOSE_BRACE) return i + 1;
      if (c !== COMMA || s.charCodeAt(i + 1) !== QUOTE) return BAIL;
      i++;
    }
  }

  /**
   * The member at s[i] when its key is exactly one the shape names, found without a match call or a search for the
   * key's end: the text after the quote is compared in place, character by character, with the node's keys that
   * start with the same character, and must be followed by `":` (`charCodeAt` is inlined where `indexOf` is a call;
   * this runs for every member of every object the shape descends into, ~30 times a record). Such a key is plain
   * text by construction (the catalogue's names hold no escape or control character), so equal text followed by the
   * closing quote is that key. Returns the index after the value, BAIL, or NOT_READ when the key is none of them
   * (the caller skips or takes the general path).
   */
  private readMember(s: string, i: number, node: PathNode): number {
    if (s.charCodeAt(i) !== QUOTE) return NOT_READ;
    const same = node.byFirst[s.charCodeAt(i + 1)];
    if (same === undefined) return NOT_READ;
    const keys = same.keys;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k] as string;
      const length = key.length;
      let j = 1;
      while (j < length && key.charCodeAt(j) === s.charCodeAt(i + 1 + j)) j++;
      if (j === length && s.charCodeAt(i + 1 + length) === QUOTE && s.charCodeAt(i + 2 + length) === COLON) {
        return this.memberValue(s, i + 3 + length, same.nodes[k] as PathNode);
      }
    }
    return NOT_READ;
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
    return this.memberValue(s, keyEnd + 1, child);
  }

  /** The value at s[v] of the member whose key is `child`'s. Returns the index after it, or BAIL. */
  private memberValue(s: string, v: number, child: PathNode): number {
    // A key read twice: JSON.parse keeps the last value whole.
    if (child.seen === this.serial) return BAIL;
    child.seen = this.serial;
    if (child.children.size > 0 && s.charCodeAt(v) === OPEN_BRACE) return this.scanObject(s, v, child);
    if (child.slot !== null) return this.readLeaf(s, v, child.slot);
    return skipValue(s, v);
  }

  /**
   * The value at s[i] of a field read. The common leaves — a string without escapes, an integer, a literal — are
   * checked and read in JavaScript (a match call costs more than the few characters they have); anything else
   * (escapes, fractions and exponents, lists, objects) by the VALUE match. Returns the index after it, or BAIL.
   */
  private readLeaf(s: string, i: number, slot: FieldSlot): number {
    const c = s.charCodeAt(i);
    let end: number;
    let value: unknown;
    if (c === QUOTE) {
      // RFC 8259 §7: up to the closing quote, no raw control character (U+0000–U+001F); a backslash starts an
      // escape, checked and decoded by the match and JSON.parse below.
      const n = s.length;
      let k = i + 1;
      let x = 0;
      while (k < n) {
        x = s.charCodeAt(k);
        if (x === QUOTE || x < 0x20 || x === BACKSLASH) break;
        k++;
      }
      if (k < n && x === QUOTE) {
        value = s.slice(i + 1, k);
        end = k + 1;
      } else {
        end = skipValue(s, i);
        if (end === BAIL) return BAIL;
        value = JSON.parse(s.slice(i, end)) as string;
      }
    } else if (c === MINUS || (c >= DIGIT_0 && c <= DIGIT_9)) {
      // RFC 8259 §6: -?(0|[1-9][0-9]*), summed as it is read; a fraction, an exponent or a long integer is left to
      // the match and Number.
      let k = c === MINUS ? i + 1 : i;
      const first = s.charCodeAt(k);
      let sum = 0;
      if (first === DIGIT_0) k++;
      else if (first > DIGIT_0 && first <= DIGIT_9) {
        for (let d = first; d >= DIGIT_0 && d <= DIGIT_9; d = s.charCodeAt(k)) {
          sum = sum * 10 + (d - DIGIT_0);
          k++;
        }
      } else return BAIL;
      const next = s.charCodeAt(k);
      if (next === DOT || next === LOWER_E || next === UPPER_E || k - i > EXACT_DIGITS) {
        end = next === DOT || next === LOWER_E || next === UPPER_E ? skipValue(s, i) : k;
        if (end === BAIL) return BAIL;
        value = Number(s.slice(i, end));
      } else {
        end = k;
        value = c === MINUS ? -sum : sum;
      }
    } else if (c === LOWER_T) {
      if (!hasWordAt(s, i, 'true')) return BAIL;
      value = true;
      end = i + 4;
    } else if (c === LOWER_F) {
      if (!hasWordAt(s, i, 'false')) return BAIL;
      value = false;
      end = i + 5;
    } else if (c === LOWER_N) {
      if (!hasWordAt(s, i, 'null')) return BAIL;
      value = null;
      end = i + 4;
    } else {
      // Lists and objects: small (tags, rule ids, ALPN); the match validates them.
      end = skipValue(s, i);
      if (end === BAIL) return BAIL;
      value = JSON.parse(s.slice(i, end)) as unknown;
    }
    this.assign(slot, value);
    return end;
  }
}

/**
 * Reading one flow-log line into the slots of a RecordShape (record-fields.ts): the hot loop of `policy replay`.
 *
 * JSON.parse of a whole record costs ~13 µs for a 2.8 KB TLS record (75k records/s: measured), and replay needs
 * perhaps a tenth of its fields. So a line is first read by a selective scanner: a validating JSON walk
 * (RFC 8259 grammar: §4 objects, §5 arrays, §6 numbers, §7 strings) that descends only into the keys of the
 * shape's tree, skips every other value by its delimiters, and builds values only for the fields it keeps.
 * It is optimistic: anything it does not handle simply — a key with escapes, a dotted key (`"source.ip"`), a key
 * repeated within a record (JSON.parse keeps the last one whole), nesting deeper than MAX_DEPTH, any syntax error
 * — sends the line to the slow path, JSON.parse and a walk over the object, which is the reference: both give
 * the same slots for every line (test/unit/replay/scan-record.fuzz.test.ts checks it on generated input).
 */
import type { FieldName, FieldValue } from '../flow/fields.js';
import type { Facts } from '../flow/facts.js';
import { acceptValue, type FieldSlot, type PathNode, type RecordShape } from './record-fields.js';

const BAIL = -1;
/** Deeper than any record the proxy writes (5 levels); deeper input goes to JSON.parse. */
const MAX_DEPTH = 32;
/** A raw control character: never in a JSON string (RFC 8259 §7); a line with one (a tab between tokens is legal) goes to JSON.parse. */
// eslint-disable-next-line no-control-regex -- control characters are what a JSON string may not hold raw
const CONTROL = /[\u0000-\u001f]/;
/** RFC 8259 §6 number. */
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const HEX4 = /[0-9a-fA-F]{4}/y;
/**
 * Whole values replay does not read, skipped in one native match instead of token by token: most of a record's
 * bytes are lists and small objects replay never looks at (offered cipher suites, related.*, observer.*). The
 * patterns are the RFC 8259 grammar (§6 numbers, §7 strings with their escapes) in the compact spelling the proxy
 * writes, nested two levels deep; raw control characters were ruled out for the whole line first. A value they do
 * not match (spaces, deeper nesting) is scanned token by token, so they only decide how fast, never what.
 */
const STRING = String.raw`"[^"\\]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\]*)*"`;
const SCALAR = String.raw`(?:${STRING}|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)`;
const FLAT_OBJECT = String.raw`\{(?:${STRING}:${SCALAR}(?:,${STRING}:${SCALAR})*)?\}`;
const FLAT_ARRAY = String.raw`\[(?:${SCALAR}(?:,${SCALAR})*)?\]`;
const SHALLOW = `(?:${SCALAR}|${FLAT_ARRAY}|${FLAT_OBJECT})`;
const SKIP_OBJECT = new RegExp(String.raw`\{(?:${STRING}:${SHALLOW}(?:,${STRING}:${SHALLOW})*)?\}`, 'y');
const SKIP_ARRAY = new RegExp(String.raw`\[(?:${SHALLOW}(?:,${SHALLOW})*)?\]`, 'y');

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;

/** `"\/bfnrt` after a backslash (RFC 8259 §7). */
function isSimpleEscape(c: number): boolean {
  return c === QUOTE || c === BACKSLASH || c === 47 || c === 98 || c === 102 || c === 110 || c === 114 || c === 116;
}

/** Every backslash in s[from, end) starts a valid escape (RFC 8259 §7). `s[from]` is a backslash. */
function validEscapes(s: string, from: number, end: number): boolean {
  for (let j = from; j < end; j++) {
    if (s.charCodeAt(j) !== BACKSLASH) continue;
    const e = s.charCodeAt(j + 1);
    if (e === 117) {
      HEX4.lastIndex = j + 2;
      if (!HEX4.test(s) || j + 6 > end) return false;
      j += 5;
    } else if (isSimpleEscape(e) && j + 1 < end) {
      j += 1;
    } else {
      return false;
    }
  }
  return true;
}

/** The child whose key is s[start, end), compared in place. */
function childAt(node: PathNode, s: string, start: number, end: number): PathNode | undefined {
  const same = node.byLength[end - start];
  if (same === undefined) return undefined;
  const keys = same.keys;
  for (let k = 0; k < keys.length; k++) if (s.startsWith(keys[k] as string, start)) return same.nodes[k];
  return undefined;
}

function skipSpace(s: string, i: number): number {
  // The proxy writes no whitespace: one look, and most calls are over.
  if (s.charCodeAt(i) > 32) return i;
  // RFC 8259 §2: insignificant whitespace is space, tab, line feed, carriage return.
  for (;;) {
    const c = s.charCodeAt(i);
    if (c === 32 || c === 10 || c === 13 || c === 9) i++;
    else return i;
  }
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
  /** Set by scanString: the string had escapes. */
  private escaped = false;
  /** Forward-only cursors into the current line: the next backslash and the next dot at or after the last search. */
  private backslash = -1;
  private dot = -1;
  /** Lines read by the fast path and by JSON.parse (for the bench and tests). */
  fastLines = 0;
  slowLines = 0;
  /** Values that did not fit the catalogue type, by field (at most one entry per catalogue field). */
  readonly rejected = new Map<FieldName, number>();

  constructor(shape: RecordShape) {
    this.shape = shape;
    this.values = new Array<FieldValue | undefined>(shape.slotCount).fill(undefined);
    this.setBy = new Uint8Array(shape.slotCount);
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
    this.backslash = -1;
    this.dot = -1;
    const start = skipSpace(line, 0);
    if (line.charCodeAt(start) === OPEN_BRACE && !CONTROL.test(line)) {
      const end = this.scanObject(line, start, this.shape.root, 0);
      if (end !== BAIL && skipSpace(line, end) === line.length) {
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

  // ---- the fast path: a validating scan that builds only the values it keeps -----------------------

  /** `s[i]` is `{`. Returns the index after the matching `}`, or BAIL. `node` null: skip the whole object. */
  private scanObject(s: string, i: number, node: PathNode | null, depth: number): number {
    if (depth > MAX_DEPTH) return BAIL;
    i = skipSpace(s, i + 1);
    if (s.charCodeAt(i) === CLOSE_BRACE) return i + 1;
    for (;;) {
      if (s.charCodeAt(i) !== QUOTE) return BAIL;
      const keyEnd = this.scanString(s, i);
      if (keyEnd === BAIL) return BAIL;
      let child: PathNode | undefined;
      if (node !== null) {
        if (this.escaped) return BAIL;
        child = childAt(node, s, i + 1, keyEnd - 1);
        if (child === undefined) {
          // A dotted key (`"geo.country_iso_code"`) under a node we read may name one of our fields: JSON.parse decides.
          if (this.dot <= i) this.dot = this.findFrom(s, 46, i + 1);
          if (this.dot < keyEnd && node.children.has(s.slice(i + 1, this.dot))) return BAIL;
        } else {
          if (child.seen === this.serial) return BAIL;
          child.seen = this.serial;
        }
      }
      i = skipSpace(s, keyEnd);
      if (s.charCodeAt(i) !== COLON) return BAIL;
      i = skipSpace(s, i + 1);
      if (child === undefined) i = this.skipValue(s, i, depth + 1);
      else if (child.children.size > 0 && s.charCodeAt(i) === OPEN_BRACE) i = this.scanObject(s, i, child, depth + 1);
      else if (child.slot !== null) i = this.readLeaf(s, i, child.slot, depth + 1);
      else i = this.skipValue(s, i, depth + 1);
      if (i === BAIL) return BAIL;
      i = skipSpace(s, i);
      const c = s.charCodeAt(i);
      if (c === COMMA) i = skipSpace(s, i + 1);
      else if (c === CLOSE_BRACE) return i + 1;
      else return BAIL;
    }
  }

  private scanArray(s: string, i: number, depth: number): number {
    if (depth > MAX_DEPTH) return BAIL;
    i = skipSpace(s, i + 1);
    if (s.charCodeAt(i) === CLOSE_BRACKET) return i + 1;
    for (;;) {
      i = this.skipValue(s, i, depth + 1);
      if (i === BAIL) return BAIL;
      i = skipSpace(s, i);
      const c = s.charCodeAt(i);
      if (c === COMMA) i = skipSpace(s, i + 1);
      else if (c === CLOSE_BRACKET) return i + 1;
      else return BAIL;
    }
  }

  /**
   * `s[i]` is `"`. Returns the index after the closing quote, or BAIL; sets `escaped`. The closing quote is found by
   * indexOf (native, no per-character loop in JS); escapes are validated only in strings that have a backslash,
   * found with a cursor that only moves forward (one pass over the line for all its strings). Raw control
   * characters were ruled out for the whole line before (`read`).
   */
  private scanString(s: string, i: number): number {
    let from = i + 1;
    let q: number;
    for (;;) {
      q = s.indexOf('"', from);
      if (q === -1) return BAIL;
      if (s.charCodeAt(q - 1) !== BACKSLASH) break;
      // An escaped quote only when an odd number of backslashes precede it.
      let k = q - 1;
      while (k > i && s.charCodeAt(k) === BACKSLASH) k--;
      if ((q - 1 - k) % 2 === 0) break;
      from = q + 1;
    }
    if (this.backslash <= i) this.backslash = this.findFrom(s, 92, i + 1);
    this.escaped = this.backslash < q;
    if (this.escaped && !validEscapes(s, this.backslash, q)) return BAIL;
    return q + 1;
  }

  /** The next occurrence of `code` at or after `from`, or the line's length when there is none. */
  private findFrom(s: string, code: number, from: number): number {
    const at = s.indexOf(String.fromCharCode(code), from);
    return at === -1 ? s.length : at;
  }

  private skipValue(s: string, i: number, depth: number): number {
    const c = s.charCodeAt(i);
    if (c === QUOTE) return this.scanString(s, i);
    if (c === OPEN_BRACE) {
      SKIP_OBJECT.lastIndex = i;
      return SKIP_OBJECT.test(s) ? SKIP_OBJECT.lastIndex : this.scanObject(s, i, null, depth);
    }
    if (c === OPEN_BRACKET) {
      SKIP_ARRAY.lastIndex = i;
      return SKIP_ARRAY.test(s) ? SKIP_ARRAY.lastIndex : this.scanArray(s, i, depth);
    }
    if (c === 116) return s.startsWith('true', i) ? i + 4 : BAIL;
    if (c === 102) return s.startsWith('false', i) ? i + 5 : BAIL;
    if (c === 110) return s.startsWith('null', i) ? i + 4 : BAIL;
    NUMBER.lastIndex = i;
    return NUMBER.test(s) && NUMBER.lastIndex > i ? NUMBER.lastIndex : BAIL;
  }

  private readLeaf(s: string, i: number, slot: FieldSlot, depth: number): number {
    const c = s.charCodeAt(i);
    const end = this.skipValue(s, i, depth);
    if (end === BAIL) return BAIL;
    let value: unknown;
    if (c === QUOTE && !this.escaped) value = s.slice(i + 1, end - 1);
    else if (c === 116) value = true;
    else if (c === 102) value = false;
    else if (c === 110) value = null;
    else if (c !== QUOTE && c !== OPEN_BRACE && c !== OPEN_BRACKET) value = Number(s.slice(i, end));
    else {
      // Escaped strings, lists and objects: rare or small; the scan above has validated the text already.
      try {
        value = JSON.parse(s.slice(i, end));
      } catch {
        return BAIL;
      }
    }
    this.assign(slot, value);
    return end;
  }
}

/**
 * The operator table (STYLE 4, after mockttp's src/rules/matchers.ts): every matcher a `when` key can use,
 * keyed by operator. Each entry compiles its argument once — lists into Sets of lower-cased strings,
 * CIDRs into integer ranges, regexes into RegExp objects — and returns a `test()` for the hot path and an
 * `explain()` in plain words for the flow record and `policy check`. Type mismatches between an operator,
 * its argument and the field are refused here, at load time, never discovered per flow.
 */
import ipaddr from 'ipaddr.js';
import type { FieldName, FieldType, FieldValue } from '../flow/fields.js';
import type { Position } from './parse.js';
import { compileSafeRegex } from './regex-safety.js';

/** Operators a policy author writes as `{ op: arg }`, in the order SPEC lists them. */
export const OPERATORS = ['in', 'not_in', 'contains', 'startswith', 'endswith', 'regex', 'cidr', 'gt', 'gte', 'lt', 'lte', 'exists'] as const;
export type Operator = (typeof OPERATORS)[number];
/** `equals` is the matcher behind a literal value (`destination.port: 4444`); it has no `{op:}` spelling. */
export type MatcherKey = Operator | 'equals';

export function isOperator(word: string): word is Operator {
  return (OPERATORS as readonly string[]).includes(word);
}

export type ArgScalar = string | number | boolean;

export interface ArgItem {
  readonly value: ArgScalar;
  readonly pos: Position;
}

/**
 * A matcher argument after `$list` references are resolved: one scalar, or items (an array literal whose
 * `$name` items were expanded, or a whole `$name`). `listNames` keeps the names for `explain()`.
 */
export type MatcherArg =
  | { readonly kind: 'scalar'; readonly value: ArgScalar; readonly pos: Position }
  | { readonly kind: 'items'; readonly items: readonly ArgItem[]; readonly listNames: readonly string[]; readonly pos: Position };

export interface MatcherTarget {
  readonly field: FieldName;
  readonly type: FieldType;
}

export interface CompiledMatcher {
  /** Called with the field's value only; an absent field is handled by `matchesAbsent`. */
  test(value: FieldValue): boolean;
  explain(): string;
  /** The result for a field that will never have a value: true only for `exists: false`. */
  readonly matchesAbsent: boolean;
}

export interface MatcherDefinition {
  /** One line for docs and error hints. */
  readonly summary: string;
  /** Throws `MatcherCompileError` when the argument does not fit the operator or the field. */
  compile(arg: MatcherArg, target: MatcherTarget, pos: Position): CompiledMatcher;
}

export class MatcherCompileError extends Error {
  readonly pos: Position;

  constructor(pos: Position, message: string) {
    super(message);
    this.name = 'MatcherCompileError';
    this.pos = pos;
  }
}

// ---------------------------------------------------------------------------------------------------------
// IP addresses: parsed once per distinct string. IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 inside, so a
// rule on 10.0.0.0/8 cannot be dodged by writing the address in its mapped form (smokescreen classifyAddr).

export interface ParsedIp {
  /** The IPv4 address as an unsigned 32-bit integer, or -1 for a (non-mapped) IPv6 address. */
  readonly v4: number;
  /** The 16 bytes of an IPv6 address; empty for IPv4. */
  readonly v6: readonly number[];
  /** Dotted quad for IPv4 (mapped included), RFC 5952 text for IPv6: what equality compares. */
  readonly canonical: string;
}

/** Strict dotted quad: exactly four decimal parts 0–255, no leading zeros (which some stacks read as octal). */
function parseDottedQuad(text: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= text.length; i++) {
    const code = i < text.length ? text.charCodeAt(i) : 46; // a virtual '.' closes the last part
    if (code >= 48 && code <= 57) {
      if (digits > 0 && part === 0) return -1; // leading zero
      part = part * 10 + (code - 48);
      digits++;
      if (part > 255) return -1;
    } else if (code === 46) {
      if (digits === 0) return -1;
      value = value * 256 + part;
      parts++;
      part = 0;
      digits = 0;
    } else {
      return -1;
    }
  }
  return parts === 4 ? value : -1;
}

function formatV4(v4: number): string {
  return `${(v4 >>> 24) & 255}.${(v4 >>> 16) & 255}.${(v4 >>> 8) & 255}.${v4 & 255}`;
}

function parseIpUncached(text: string): ParsedIp | null {
  const v4 = parseDottedQuad(text);
  if (v4 >= 0) return { v4, v6: [], canonical: formatV4(v4) };
  if (!ipaddr.IPv6.isValid(text)) return null;
  const v6 = ipaddr.IPv6.parse(text);
  if (v6.isIPv4MappedAddress()) {
    const [a = 0, b = 0, c = 0, d = 0] = v6.toIPv4Address().octets;
    const mapped = ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
    return { v4: mapped, v6: [], canonical: formatV4(mapped) };
  }
  return { v4: -1, v6: v6.toByteArray(), canonical: v6.toRFC5952String() };
}

// One-entry memo: within one evaluation every ip matcher sees the same destination.ip string, so this turns
// N parses per flow into one without a cache that could grow.
let memoText: string | null = null;
let memoIp: ParsedIp | null = null;

export function parseIp(text: string): ParsedIp | null {
  if (text !== memoText) {
    memoIp = parseIpUncached(text);
    memoText = text;
  }
  return memoIp;
}

interface CidrRange {
  readonly v4: boolean;
  /** IPv4: network address and mask as unsigned 32-bit integers. */
  readonly base: number;
  readonly mask: number;
  /** IPv6: network bytes and prefix length. */
  readonly bytes: readonly number[];
  readonly prefix: number;
  readonly text: string;
}

/** Parses `a.b.c.d/n`, `x::/n`, or a bare address (a host range). Null when invalid. */
export function parseCidr(text: string): CidrRange | null {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? null : text.slice(slash + 1);
  if (prefixText !== null && !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return null;
  const ip = parseIpUncached(addressText);
  if (ip === null) return null;
  const isMapped = ip.v4 >= 0 && parseDottedQuad(addressText) < 0;
  let prefix = prefixText === null ? (ip.v4 >= 0 ? 32 : 128) : Number(prefixText);
  if (isMapped && prefixText !== null) {
    // ::ffff:10.0.0.0/104 is 10.0.0.0/8; a mapped prefix shorter than /96 reaches outside the mapped block.
    if (prefix < 96 || prefix > 128) return null;
    prefix -= 96;
  }
  if (ip.v4 >= 0) {
    if (prefix > 32) return null;
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    return { v4: true, base: (ip.v4 & mask) >>> 0, mask, bytes: [], prefix, text };
  }
  if (prefix > 128) return null;
  return { v4: false, base: 0, mask: 0, bytes: ip.v6, prefix, text };
}

function isInRange(ip: ParsedIp, range: CidrRange): boolean {
  if (range.v4) return ip.v4 >= 0 && ((ip.v4 & range.mask) >>> 0) === range.base;
  if (ip.v4 >= 0) return false;
  let bits = range.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((ip.v6[i] ?? 0) & mask) !== ((range.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers shared by the table entries.

type ElementType = 'string' | 'number' | 'boolean' | 'ip' | 'object';

function elementTypeOf(type: FieldType): ElementType {
  switch (type) {
    case 'string[]':
      return 'string';
    case 'number[]':
      return 'number';
    case 'object[]':
      return 'object';
    default:
      return type;
  }
}

function isArrayType(type: FieldType): boolean {
  return type.endsWith('[]');
}

/**
 * Turns an element test into a value test: for array fields (egress.tls.alpn …) the matcher holds when ANY
 * element matches.
 */
function overElements(type: FieldType, test: (element: unknown) => boolean): (value: FieldValue) => boolean {
  if (!isArrayType(type)) return test;
  return (value) => {
    if (!Array.isArray(value)) return false;
    for (const element of value as readonly unknown[]) if (test(element)) return true;
    return false;
  };
}

const SHOWN_ITEMS = 5;

function showItem(value: ArgScalar): string {
  return String(value);
}

/** `[a, b, c]`, or `$name [a, b, c, d, e … 7 more]` for a list reference. */
function showItems(arg: MatcherArg): string {
  if (arg.kind === 'scalar') return showItem(arg.value);
  const shown = arg.items.slice(0, SHOWN_ITEMS).map((item) => showItem(item.value));
  const more = arg.items.length > SHOWN_ITEMS ? ` … ${arg.items.length - SHOWN_ITEMS} more` : '';
  const names = arg.listNames.length > 0 ? `${arg.listNames.map((n) => `$${n}`).join(', ')} ` : '';
  return `${names}[${shown.join(', ')}${more}]`;
}

function typeLabel(target: MatcherTarget): string {
  return `${target.field} (${target.type})`;
}

function describeArg(value: ArgScalar): string {
  return typeof value === 'string' ? `string "${value}"` : `${typeof value} ${String(value)}`;
}

/** Checks one argument value against the field's element type and normalises it for comparison. */
function normaliseItem(value: ArgScalar, pos: Position, target: MatcherTarget, operator: MatcherKey): string | number | boolean {
  const element = elementTypeOf(target.type);
  switch (element) {
    case 'string':
      if (typeof value !== 'string') {
        throw new MatcherCompileError(pos, `${operator} on ${typeLabel(target)} needs strings, got ${describeArg(value)}; quote it`);
      }
      return value.toLowerCase();
    case 'number':
      if (typeof value !== 'number') {
        throw new MatcherCompileError(pos, `${operator} on ${typeLabel(target)} needs numbers, got ${describeArg(value)}`);
      }
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') {
        throw new MatcherCompileError(pos, `${operator} on ${typeLabel(target)} needs true or false, got ${describeArg(value)}`);
      }
      return value;
    case 'ip': {
      const ip = typeof value === 'string' ? parseIpUncached(value) : null;
      if (ip === null) {
        const hint = typeof value === 'string' && value.includes('/') ? '; use cidr for ranges' : '';
        throw new MatcherCompileError(pos, `invalid IP address ${describeArg(value)} for ${target.field}${hint}`);
      }
      return ip.canonical;
    }
    case 'object':
      throw new MatcherCompileError(pos, `${target.field} holds records; only exists can test it`);
  }
}

/** Reads a field value into the normalised form `normaliseItem` produced for the argument. */
function normaliseValue(element: ElementType, value: unknown): string | number | boolean | null {
  switch (element) {
    case 'string':
      return typeof value === 'string' ? value.toLowerCase() : null;
    case 'number':
      return typeof value === 'number' ? value : null;
    case 'boolean':
      return typeof value === 'boolean' ? value : null;
    case 'ip':
      return typeof value === 'string' ? (parseIp(value)?.canonical ?? null) : null;
    case 'object':
      return null;
  }
}

function itemsOf(arg: MatcherArg, operator: MatcherKey, pos: Position): readonly ArgItem[] {
  if (arg.kind === 'items') return arg.items;
  throw new MatcherCompileError(pos, `${operator} needs a list, e.g. { ${operator}: [a, b] } or { ${operator}: $name }`);
}

/** Scalar or items, as a uniform item list (contains/startswith/endswith/cidr accept both). */
function scalarOrItems(arg: MatcherArg): readonly ArgItem[] {
  return arg.kind === 'items' ? arg.items : [{ value: arg.value, pos: arg.pos }];
}

function requireStringField(target: MatcherTarget, operator: MatcherKey, pos: Position): void {
  if (elementTypeOf(target.type) !== 'string') {
    throw new MatcherCompileError(pos, `${operator} works on text fields; ${typeLabel(target)} is not one`);
  }
}

function compileMembership(arg: MatcherArg, target: MatcherTarget, pos: Position, operator: MatcherKey): (element: unknown) => boolean {
  const items = itemsOf(arg, operator, pos);
  const element = elementTypeOf(target.type);
  const set = new Set<string | number | boolean>();
  for (const item of items) set.add(normaliseItem(item.value, item.pos, target, operator));
  return (value) => {
    const normalised = normaliseValue(element, value);
    return normalised !== null && set.has(normalised);
  };
}

type TextTest = (haystack: string, needle: string) => boolean;

function compileText(operator: MatcherKey, verb: string, check: TextTest): MatcherDefinition {
  return {
    summary: `the text ${verb} the argument (or any of a list), ignoring case`,
    compile(arg, target, pos) {
      requireStringField(target, operator, pos);
      const needles = scalarOrItems(arg).map((item) => normaliseItem(item.value, item.pos, target, operator) as string);
      const test = overElements(target.type, (value) => {
        if (typeof value !== 'string') return false;
        const lower = value.toLowerCase();
        for (const needle of needles) if (check(lower, needle)) return true;
        return false;
      });
      const text = arg.kind === 'scalar' ? `${target.field} ${verb} "${String(arg.value)}"` : `${target.field} ${verb} one of ${showItems(arg)}`;
      return { test, explain: () => text, matchesAbsent: false };
    },
  };
}

function compileComparison(operator: MatcherKey, words: string, check: (value: number, bound: number) => boolean): MatcherDefinition {
  return {
    summary: `the number ${words} the argument`,
    compile(arg, target, pos) {
      if (elementTypeOf(target.type) !== 'number') {
        throw new MatcherCompileError(pos, `${operator} works on number fields; ${typeLabel(target)} is not one`);
      }
      if (arg.kind !== 'scalar' || typeof arg.value !== 'number') {
        throw new MatcherCompileError(pos, `${operator} needs a number, got ${arg.kind === 'scalar' ? describeArg(arg.value) : 'a list'}`);
      }
      const bound = arg.value;
      const test = overElements(target.type, (value) => typeof value === 'number' && check(value, bound));
      const text = `${target.field} ${words} ${bound}`;
      return { test, explain: () => text, matchesAbsent: false };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// The table.

export const MATCHERS: Readonly<Record<MatcherKey, MatcherDefinition>> = {
  equals: {
    summary: 'the value equals the literal (text ignoring case; IPs in canonical form)',
    compile(arg, target, pos) {
      if (arg.kind === 'items') {
        const name = arg.listNames[0];
        const example = name === undefined ? '[…]' : `$${name}`;
        throw new MatcherCompileError(pos, `${target.field}: a list needs an operator, e.g. { in: ${example} }`);
      }
      const expected = normaliseItem(arg.value, pos, target, 'equals');
      const element = elementTypeOf(target.type);
      const test = overElements(target.type, (value) => normaliseValue(element, value) === expected);
      const text = `${target.field} is ${String(arg.value)}`;
      return { test, explain: () => text, matchesAbsent: false };
    },
  },
  in: {
    summary: 'the value is one of the list',
    compile(arg, target, pos) {
      const test = overElements(target.type, compileMembership(arg, target, pos, 'in'));
      const text = `${target.field} is one of ${showItems(arg)}`;
      return { test, explain: () => text, matchesAbsent: false };
    },
  },
  not_in: {
    summary: 'the value is none of the list (for array fields: no element is in it)',
    compile(arg, target, pos) {
      const isIn = overElements(target.type, compileMembership(arg, target, pos, 'not_in'));
      const text = `${target.field} is not one of ${showItems(arg)}`;
      return { test: (value) => !isIn(value), explain: () => text, matchesAbsent: false };
    },
  },
  contains: compileText('contains', 'contains', (haystack, needle) => haystack.includes(needle)),
  startswith: compileText('startswith', 'starts with', (haystack, needle) => haystack.startsWith(needle)),
  endswith: compileText('endswith', 'ends with', (haystack, needle) => haystack.endsWith(needle)),
  regex: {
    summary: 'the text matches the regular expression (case-sensitive; prefix (?i) to ignore case)',
    compile(arg, target, pos) {
      requireStringField(target, 'regex', pos);
      if (arg.kind !== 'scalar' || typeof arg.value !== 'string') {
        throw new MatcherCompileError(pos, `regex needs one pattern string, got ${arg.kind === 'scalar' ? describeArg(arg.value) : 'a list'}`);
      }
      // JavaScript has no inline flags before Node 23; accept the common (?i) prefix and turn it into the flag.
      const insensitive = arg.value.startsWith('(?i)');
      const source = insensitive ? arg.value.slice(4) : arg.value;
      let re: RegExp;
      try {
        // Nested repetition runs on V8's linear-time engine or is refused (ReDoS: src/policy/regex-safety.ts).
        re = compileSafeRegex(source, insensitive ? 'i' : '');
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new MatcherCompileError(pos, `invalid regex "${arg.value}": ${reason}`);
      }
      const test = overElements(target.type, (value) => typeof value === 'string' && re.test(value));
      const text = `${target.field} matches /${source}/${insensitive ? 'i' : ''}`;
      return { test, explain: () => text, matchesAbsent: false };
    },
  },
  cidr: {
    summary: 'the IP address is inside the range (or any of a list of ranges)',
    compile(arg, target, pos) {
      if (target.type !== 'ip') {
        throw new MatcherCompileError(pos, `cidr works on IP fields (destination.ip, source.ip); ${typeLabel(target)} is not one`);
      }
      const ranges: CidrRange[] = [];
      for (const item of scalarOrItems(arg)) {
        const range = typeof item.value === 'string' ? parseCidr(item.value) : null;
        if (range === null) throw new MatcherCompileError(item.pos, `invalid CIDR ${describeArg(item.value)}`);
        ranges.push(range);
      }
      const test = (value: FieldValue): boolean => {
        const ip = typeof value === 'string' ? parseIp(value) : null;
        if (ip === null) return false;
        for (const range of ranges) if (isInRange(ip, range)) return true;
        return false;
      };
      const text = arg.kind === 'scalar' ? `${target.field} is in ${String(arg.value)}` : `${target.field} is in one of ${showItems(arg)}`;
      return { test, explain: () => text, matchesAbsent: false };
    },
  },
  gt: compileComparison('gt', 'is greater than', (value, bound) => value > bound),
  gte: compileComparison('gte', 'is at least', (value, bound) => value >= bound),
  lt: compileComparison('lt', 'is less than', (value, bound) => value < bound),
  lte: compileComparison('lte', 'is at most', (value, bound) => value <= bound),
  exists: {
    summary: 'true: the field has a value; false: it will never have one for this flow',
    compile(arg, target, pos) {
      if (arg.kind !== 'scalar' || typeof arg.value !== 'boolean') {
        throw new MatcherCompileError(pos, `exists needs true or false, got ${arg.kind === 'scalar' ? describeArg(arg.value) : 'a list'}`);
      }
      const wanted = arg.value;
      const text = wanted ? `${target.field} is present` : `${target.field} is absent`;
      // Called only when the field has a value: then it exists.
      return { test: () => wanted, explain: () => text, matchesAbsent: !wanted };
    },
  },
};

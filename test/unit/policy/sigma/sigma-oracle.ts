/**
 * Test helpers for the Sigma import: a reference Sigma evaluator over a Sigma-shaped event (field → value),
 * written from the Sigma specification independently of the converter's matcher building; a generator of a
 * positive event per rule (values that satisfy its detection) and of near misses; and the translation of an
 * event into a flow record through the documented field table. The corpus test then checks that the
 * converted policy rule and the reference agree on every event.
 */
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import type { FieldName, FlowFields } from '../../../../src/flow/fields.js';
import { identifiersOf, parseCondition, type ConditionNode } from '../../../../src/policy/sigma/condition.js';
import { mappingOf, type SigmaCategory } from '../../../../src/policy/sigma/fields.js';

export type SigmaValue = string | number;
export type SigmaEvent = Record<string, SigmaValue>;
export type Detection = Readonly<Record<string, unknown>>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---- reference evaluator ---------------------------------------------------------------------------------

/** Sigma wildcard value → anchored case-insensitive RegExp (own reading of the escaping rules). */
function globRegExp(value: string, mode: 'equals' | 'contains' | 'startswith' | 'endswith'): RegExp {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    const n = value[i + 1];
    if (c === '\\' && (n === '*' || n === '?' || n === '\\')) {
      out += `\\${n}`;
      i++;
    } else if (c === '*') out += '[\\s\\S]*';
    else if (c === '?') out += '[\\s\\S]';
    else out += c.replace(/[.*+?^${}()|[\]\\/]/g, (x) => `\\${x}`);
  }
  const pre = mode === 'contains' || mode === 'endswith' ? '' : '^';
  const post = mode === 'contains' || mode === 'startswith' ? '' : '$';
  return new RegExp(`${pre}${out}${post}`, 'i');
}

function inCidr(ip: string, cidr: string): boolean {
  try {
    const addr = ipaddr.process(ip);
    const [range, bits] = ipaddr.parseCIDR(cidr);
    if (addr.kind() !== range.kind()) return false;
    return addr.match([range, bits] as never);
  } catch {
    return false;
  }
}

function eventValue(event: SigmaEvent, field: string): SigmaValue | undefined {
  if (field === 'DestinationIsIpv6' && event['DestinationIp'] !== undefined) {
    return String(event['DestinationIp']).includes(':') ? 'true' : 'false';
  }
  if (field === 'Initiated') return 'true';
  return event[field];
}

function matchValue(actual: SigmaValue | undefined, expected: unknown, mods: readonly string[]): boolean {
  if (expected === null) return actual === undefined;
  if (mods.includes('exists')) return (actual !== undefined) === (expected === true || expected === 'true');
  if (actual === undefined) return false;
  if (mods.includes('cidr')) return inCidr(String(actual), String(expected));
  for (const op of ['gt', 'gte', 'lt', 'lte'] as const) {
    if (!mods.includes(op)) continue;
    const a = Number(actual);
    const b = Number(expected);
    return op === 'gt' ? a > b : op === 'gte' ? a >= b : op === 'lt' ? a < b : a <= b;
  }
  if (mods.includes('re')) {
    let source = String(expected);
    let flags = mods.includes('i') ? 'i' : '';
    if (source.startsWith('(?i)')) {
      source = source.slice(4);
      flags = 'i';
    }
    return new RegExp(source, flags).test(String(actual));
  }
  for (const mod of mods) {
    if (!['contains', 'startswith', 'endswith', 'all'].includes(mod)) throw new Error(`oracle: modifier ${mod} not implemented`);
  }
  const mode = mods.includes('contains') ? 'contains' : mods.includes('startswith') ? 'startswith' : mods.includes('endswith') ? 'endswith' : 'equals';
  return globRegExp(String(expected), mode).test(String(actual));
}

function matchEntry(key: string, expected: unknown, event: SigmaEvent): boolean {
  const [field = '', ...mods] = key.split('|');
  const actual = eventValue(event, field);
  const values = Array.isArray(expected) ? (expected as unknown[]) : [expected];
  const results = values.map((value) => matchValue(actual, value, mods));
  return mods.includes('all') ? results.every(Boolean) : results.some(Boolean);
}

function matchIdentifier(value: unknown, event: SigmaEvent): boolean {
  const maps = Array.isArray(value) ? (value as Record<string, unknown>[]) : [value as Record<string, unknown>];
  return maps.some((map) => Object.entries(map).every(([key, expected]) => matchEntry(key, expected, event)));
}

function evalNode(node: ConditionNode, detection: Detection, names: readonly string[], event: SigmaEvent): boolean {
  switch (node.kind) {
    case 'id':
      return matchIdentifier(detection[node.name], event);
    case 'of': {
      const hits = identifiersOf(node.pattern, names).map((name) => matchIdentifier(detection[name], event));
      return node.quantifier === 'one' ? hits.some(Boolean) : hits.every(Boolean);
    }
    case 'and':
      return node.items.every((item) => evalNode(item, detection, names, event));
    case 'or':
      return node.items.some((item) => evalNode(item, detection, names, event));
    case 'not':
      return !evalNode(node.item, detection, names, event);
  }
}

export function identifierNames(detection: Detection): string[] {
  return Object.keys(detection).filter((key) => key !== 'condition' && key !== 'timeframe');
}

/** Does the Sigma rule match the event (Sigma semantics)? */
export function sigmaMatches(detection: Detection, event: SigmaEvent): boolean {
  const condition = detection['condition'];
  const texts = Array.isArray(condition) ? (condition as string[]) : [String(condition)];
  const names = identifierNames(detection);
  return texts.some((text) => {
    const parsed = parseCondition(text);
    if (!parsed.ok) throw new Error(parsed.error);
    return evalNode(parsed.node, detection, names, event);
  });
}

// ---- positive events and near misses ---------------------------------------------------------------------

/** The literal a Sigma wildcard value stands for at its simplest: `*` → nothing, `?` → `x`. */
function literalOf(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    const n = value[i + 1];
    if (c === '\\' && (n === '*' || n === '?' || n === '\\')) {
      out += n;
      i++;
    } else if (c === '*') out += '';
    else if (c === '?') out += 'x';
    else out += c;
  }
  return out;
}

function firstHost(cidr: string): string {
  const [range, bits] = ipaddr.parseCIDR(cidr);
  const bytes = range.toByteArray();
  const width = bytes.length * 8;
  if (bits < width) bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) | 1;
  return ipaddr.fromByteArray(bytes).toString();
}

function sampleValue(expected: unknown, mods: readonly string[], seed: number): SigmaValue | null {
  if (expected === null) return null;
  if (mods.includes('cidr')) return firstHost(String(expected));
  if (mods.includes('re')) {
    // A case-insensitive pattern is sampled case-sensitively: any string it matches then matches with `i` too.
    const source = String(expected).replace(/^\(\?i\)/, '');
    return fc.sample(fc.stringMatching(new RegExp(`^(?:${source})$`)), { numRuns: 1, seed })[0] ?? '';
  }
  if (typeof expected === 'number') return mods.includes('gt') ? expected + 1 : mods.includes('lt') ? expected - 1 : expected;
  const text = literalOf(String(expected));
  if (mods.includes('contains')) return `q${text}q`;
  if (mods.includes('startswith')) return `${text}q`;
  if (mods.includes('endswith')) return `q${text}`;
  return text;
}

interface Parts {
  exact: SigmaValue | null;
  absent: boolean;
  prefix: string;
  middle: string[];
  suffix: string;
}

/**
 * Values for the entries of one map. Entries on the same field (`Image|contains` and `Image|endswith`) are
 * composed into one value: prefix + every contained text + suffix.
 */
function positiveRecord(value: unknown, seed: number): SigmaEvent {
  const map = (Array.isArray(value) ? value[0] : value) as Record<string, unknown>;
  const parts = new Map<string, Parts>();
  for (const [key, expected] of Object.entries(map)) {
    const [field = '', ...mods] = key.split('|');
    const p = parts.get(field) ?? { exact: null, absent: false, prefix: '', middle: [], suffix: '' };
    parts.set(field, p);
    const values = Array.isArray(expected) ? (expected as unknown[]) : [expected];
    const chosen = mods.includes('all') ? values : values.slice(0, 1);
    for (const one of chosen) {
      if (one === null) {
        p.absent = true;
        continue;
      }
      const text = literalOf(String(one));
      if (mods.includes('contains')) p.middle.push(text);
      else if (mods.includes('startswith')) p.prefix = text;
      else if (mods.includes('endswith')) p.suffix = text;
      else p.exact = sampleValue(one, mods, seed);
    }
  }
  const event: SigmaEvent = {};
  for (const [field, p] of parts) {
    if (p.absent) continue;
    event[field] = p.exact ?? `${p.prefix}${p.middle.length > 0 ? `q${p.middle.join('q')}q` : 'q'}${p.suffix}`;
  }
  return event;
}

/**
 * An event the rule matches: the positive records of a set of identifiers, trying smaller sets first, until
 * the reference evaluator says the whole condition holds. Null when none of the first 4096 sets works.
 */
export function positiveEvent(detection: Detection, seed = 1): SigmaEvent | null {
  const names = identifierNames(detection);
  const records = new Map(names.map((name) => [name, positiveRecord(detection[name], seed)]));
  const limit = Math.min(1 << names.length, 4096);
  const masks = Array.from({ length: limit }, (_, i) => i).sort((a, b) => popcount(a) - popcount(b) || a - b);
  // Second round: fields the detection names but the chosen records leave unset get a neutral value, for
  // filters such as `Image: null` that an absent field would satisfy.
  const neutral = neutralValues(detection);
  // Identifiers that test the same field are merged by overwriting, or (`a and b` on one URI) by joining.
  for (const fill of [false, true]) {
    for (const join of [false, true]) {
      for (const mask of masks) {
        const event: SigmaEvent = fill ? { ...neutral } : {};
        names.forEach((name, index) => {
          if ((mask & (1 << index)) === 0) return;
          for (const [field, value] of Object.entries(records.get(name) ?? {})) {
            const before = event[field];
            event[field] = join && typeof before === 'string' && typeof value === 'string' && !(field in neutral && before === neutral[field]) ? `${before}${value}` : value;
          }
        });
        if (sigmaMatches(detection, event)) return event;
      }
    }
  }
  return null;
}

function neutralValues(detection: Detection): SigmaEvent {
  const out: SigmaEvent = {};
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (isRecord(value)) {
      for (const key of Object.keys(value)) {
        const field = key.split('|')[0] ?? '';
        out[field] = /Port$/.test(field) ? 1 : /Ip$|_ip$/.test(field) ? '198.51.100.7' : 'C:\\neutral\\value.bin';
      }
    }
  };
  for (const name of identifierNames(detection)) visit(detection[name]);
  delete out['Initiated'];
  delete out['DestinationIsIpv6'];
  return out;
}

function popcount(n: number): number {
  let count = 0;
  for (let x = n; x > 0; x >>= 1) count += x & 1;
  return count;
}

/** Variations of one field of the event: removed, replaced, one character changed, upper-cased. */
export function perturbations(event: SigmaEvent): { readonly name: string; readonly event: SigmaEvent }[] {
  const out: { name: string; event: SigmaEvent }[] = [];
  for (const [field, value] of Object.entries(event)) {
    if (field === 'Initiated' || field === 'DestinationIsIpv6') continue;
    const without = { ...event };
    delete without[field];
    out.push({ name: `${field} removed`, event: without });
    if (typeof value === 'number') {
      out.push({ name: `${field} changed`, event: { ...event, [field]: (value + 1000) % 65536 } });
      continue;
    }
    if (field.endsWith('Ip') || field.endsWith('_ip')) {
      out.push({ name: `${field} other address`, event: { ...event, [field]: value.includes(':') ? '2001:db8::77' : '203.0.113.77' } });
      continue;
    }
    out.push({ name: `${field} replaced`, event: { ...event, [field]: 'zz-nomatch-zz' } });
    out.push({ name: `${field} upper-cased`, event: { ...event, [field]: value.toUpperCase() } });
    if (value.length > 0) {
      const at = Math.floor(value.length / 2);
      const changed = `${value.slice(0, at)}${value[at] === '#' ? '%' : '#'}${value.slice(at + 1)}`;
      out.push({ name: `${field} one character changed`, event: { ...event, [field]: changed } });
    }
  }
  return out;
}

// ---- event → flow record ---------------------------------------------------------------------------------

/** The flow record the proxy would hold for the event, per the field table (docs/sigma.md). */
export function flowOf(category: SigmaCategory, event: SigmaEvent): FlowFields {
  const flow: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(event)) {
    if (field === 'Initiated') continue;
    if (field === 'DestinationIsIpv6') {
      if (event['DestinationIp'] === undefined) flow['destination.ip'] = value === 'true' ? '2001:db8::1' : '192.0.2.1';
      continue;
    }
    if (field === 'User') {
      const text = String(value);
      const cut = text.indexOf('\\');
      if (cut < 0) flow['user.name'] = text;
      else {
        if (cut > 0) flow['user.domain'] = text.slice(0, cut);
        if (cut < text.length - 1) flow['user.name'] = text.slice(cut + 1);
      }
      continue;
    }
    if (field === 'c-uri-extension') {
      flow['url.path'] ??= `/file.${String(value)}`;
      continue;
    }
    const mapping = mappingOf(category, field);
    if (mapping?.kind !== 'field') throw new Error(`flowOf: no field for ${field}`);
    const name: FieldName = mapping.field;
    let v: unknown;
    if (name === 'destination.port' || name === 'source.port' || name === 'process.pid') v = Number(value);
    else if (mapping.originForm === true && String(value).startsWith('/')) v = `http://example.test${String(value)}`;
    else v = typeof value === 'number' ? value : String(value);
    flow[name] = v;
  }
  return flow as FlowFields;
}

export function isRecordValue(value: unknown): value is Record<string, unknown> {
  return isRecord(value);
}

/**
 * One Sigma rule → one policy rule. The detection's search identifiers become conditions over flow-record
 * fields (fields.ts), the condition expression (condition.ts) combines them with all/any/not, and the result
 * is written as a policy `when` tree (SPEC "Policy files": field → literal or `{op: arg}`, `all`/`any`/`not`).
 *
 * Everything the policy cannot express exactly is refused with the reason — an unknown field, a modifier we
 * do not implement, a value a field cannot hold, a field only the end of the flow knows in a deciding rule —
 * never dropped or weakened, because a weakened `not filter` would fire on what the author excluded. Sigma
 * semantics kept: a list of values is OR (AND with `|all`); a list of maps is OR of ANDs; `null` is "field
 * absent"; strings compare ignoring case (Sigma specification v2, "Detection").
 *
 * Pure; never throws for any input (refusals are values; the fuzz test holds it to that).
 */
import { FIELDS, fieldType, isMatchableField, isTagOnlyField, type FieldName, type FieldType } from '../../flow/fields.js';
import type { Severity } from '../decision.js';
import { parseCidr } from '../matchers.js';
import { RULE_ID_PATTERN } from '../parse.js';
import { identifiersOf, parseCondition, type ConditionNode } from './condition.js';
import { isSigmaCategory, mappingOf, type DerivedField, type SigmaCategory } from './fields.js';
import type { SigmaRule } from './parse.js';
import {
  ANY,
  base64Of,
  base64OffsetsOf,
  encodeText,
  expandWindash,
  formatPattern,
  hasWildcard,
  literalPattern,
  MAX_WINDASH_DASHES,
  parseSigmaString,
  patternMatcher,
  patternText,
  type SigmaPattern,
  type TextEncoding,
  type TextMatch,
} from './values.js';

export type ImportAction = 'tag' | 'block';

export interface ConvertOptions {
  /** `tag` (default): records get the rule's tags and severity (an alert); `block` also stops the flow. */
  readonly action?: ImportAction;
}

/** A policy matcher as the converter builds it (the policy's operators plus `equals` for a bare literal). */
export type PolicyOp = 'equals' | 'in' | 'contains' | 'startswith' | 'endswith' | 'regex' | 'cidr' | 'gt' | 'gte' | 'lt' | 'lte' | 'exists';
export type PolicyScalar = string | number | boolean;

/** The converted condition, before it is written as a `when` map. */
export type PolicyCondition =
  | { readonly kind: 'match'; readonly field: FieldName; readonly op: PolicyOp; readonly arg: PolicyScalar | readonly PolicyScalar[] }
  | { readonly kind: 'all'; readonly items: readonly PolicyCondition[] }
  | { readonly kind: 'any'; readonly items: readonly PolicyCondition[] }
  | { readonly kind: 'not'; readonly item: PolicyCondition }
  | { readonly kind: 'const'; readonly value: boolean };

/** A `when` map as plain data, ready for YAML. */
export type WhenMap = { readonly [key: string]: WhenValue };
export type WhenValue = PolicyScalar | readonly PolicyScalar[] | WhenMap | readonly WhenMap[];

export interface PolicyRuleDraft {
  readonly id: string;
  readonly description: string;
  readonly when: WhenMap;
  readonly action: ImportAction;
  readonly severity: Severity | null;
  readonly tags: readonly string[];
  /** The Sigma rule it came from: attribution (DRL 1.1) goes into the generated file with it. */
  readonly sigma: SigmaRule;
}

export type ConvertResult = { readonly ok: true; readonly rule: PolicyRuleDraft } | { readonly ok: false; readonly reason: string };

/** Sigma `level` → policy severity (informational has no policy equivalent below `low`). */
const SEVERITY_OF_LEVEL: Readonly<Record<string, Severity>> = {
  informational: 'low',
  low: 'low',
  medium: 'medium',
  high: 'high',
  critical: 'critical',
};

/** Why a modifier is refused, for the ones Sigma defines that we do not implement. */
const REFUSED_MODIFIERS: Readonly<Record<string, string>> = {
  expand: 'placeholders (%name%) need values from a processing pipeline that the import does not have',
  fieldref: 'comparing one field with another is not a policy operator',
  neq: 'not a Sigma v2 modifier the policy implements; write the negation as a filter',
  minute: 'time-of-day modifiers have no flow field',
  hour: 'time-of-day modifiers have no flow field',
  day: 'time-of-day modifiers have no flow field',
  week: 'time-of-day modifiers have no flow field',
  month: 'time-of-day modifiers have no flow field',
  year: 'time-of-day modifiers have no flow field',
};

const MATCH_MODIFIERS = new Set(['contains', 'startswith', 'endswith', 're', 'cidr', 'gt', 'gte', 'lt', 'lte', 'exists']);
const ENCODING_MODIFIERS: Readonly<Record<string, TextEncoding>> = { wide: 'utf16le', utf16le: 'utf16le', utf16be: 'utf16be', utf16: 'utf16' };
/** Identity escapes that PCRE reads as something else and JavaScript (without the u flag) as a plain letter. */
const PCRE_ONLY_ESCAPE = /\\([AZzhHRKQEGXCNLlUe]|p\{|P\{)/;
/** Values per rule; SigmaHQ's largest lists hold a few hundred. */
const MAX_VALUES = 10_000;

class Refusal extends Error {}

function refuse(reason: string): never {
  throw new Refusal(reason);
}

interface Context {
  readonly category: SigmaCategory;
  readonly rule: SigmaRule;
  readonly action: ImportAction;
  readonly converted: Map<string, PolicyCondition>;
  values: number;
}

/** Converts one Sigma rule; a refusal names the reason. */
export function convertSigmaRule(rule: SigmaRule, options: ConvertOptions = {}): ConvertResult {
  const action = options.action ?? 'tag';
  try {
    return { ok: true, rule: convert(rule, action) };
  } catch (err) {
    if (err instanceof Refusal) return { ok: false, reason: err.message };
    // A bug must not stop an import of hundreds of rules; the rule is refused and the message says why.
    return { ok: false, reason: `internal error while converting: ${err instanceof Error ? err.message : String(err)}` };
  }
}

function convert(rule: SigmaRule, action: ImportAction): PolicyRuleDraft {
  const category = checkLogsource(rule);
  if (rule.timeframe !== null) refuse(`"timeframe: ${rule.timeframe}" makes it a correlation over time, which a per-flow policy rule cannot express`);
  const id = `sigma.${rule.id}`;
  if (!RULE_ID_PATTERN.test(id)) refuse(`id "${rule.id}" has characters a policy rule id cannot hold (letters, digits and . _ : -)`);
  const ctx: Context = { category, rule, action, converted: new Map(), values: 0 };
  const identifiers = [...rule.detection.keys()];
  const parts: PolicyCondition[] = [];
  for (const text of rule.conditions) {
    const parsed = parseCondition(text);
    if (!parsed.ok) refuse(`condition "${text}": ${parsed.error}`);
    parts.push(convertNode(parsed.node, identifiers, ctx));
  }
  // Several conditions in a list: the rule matches when any does (each is a query of its own in Sigma).
  const condition = simplify(parts.length === 1 ? (parts[0] as PolicyCondition) : { kind: 'any', items: parts });
  if (condition.kind === 'const') {
    refuse(condition.value ? 'after dropping what always holds for egress flows, the rule would match every flow' : 'the rule can never match an egress flow (e.g. Initiated: \'false\')');
  }
  checkFields(condition, action);
  // Checked after the detection so a rule from SigmaHQ's unsupported/ folder is refused with the concrete reason.
  if (rule.status === 'unsupported') refuse('status "unsupported": SigmaHQ marks the rule as not usable by tools');
  const level = rule.level?.toLowerCase() ?? null;
  const severity = level === null ? null : (SEVERITY_OF_LEVEL[level] ?? null);
  if (level !== null && severity === null) refuse(`level "${rule.level ?? ''}" is not a Sigma level (informational, low, medium, high, critical)`);
  const author = rule.author === null ? [] : [`sigma.author:${rule.author}`];
  const tags = [...new Set(['sigma', id, ...rule.tags.filter((tag) => tag.trim() !== ''), ...author])];
  const by = rule.author === null ? '' : ` by ${rule.author}`;
  return {
    id,
    description: `${rule.title} (Sigma rule${by}, DRL 1.1)`,
    when: toWhen(condition),
    action,
    severity,
    tags,
    sigma: rule,
  };
}

function checkLogsource(rule: SigmaRule): SigmaCategory {
  const { category, product, service } = rule.logsource;
  if (category === null) refuse(`logsource has no category (supported: proxy, network_connection, dns_query, dns)`);
  if (!isSigmaCategory(category)) refuse(`logsource category "${category}" is not one the proxy observes (supported: proxy, network_connection, dns_query, dns)`);
  if (product !== null && product !== 'windows') refuse(`logsource product "${product}": the process fields come from Windows telemetry (Sysmon); only product windows or none is supported`);
  if (service !== null) refuse(`logsource service "${service}" names a specific log; the import maps categories only`);
  return category;
}

// ---------------------------------------------------------------------------------------------------------
// Condition expression → condition

function convertNode(node: ConditionNode, identifiers: readonly string[], ctx: Context): PolicyCondition {
  switch (node.kind) {
    case 'id':
      if (!ctx.rule.detection.has(node.name)) refuse(`the condition names "${node.name}", which the detection does not define`);
      return convertIdentifier(node.name, ctx);
    case 'of': {
      const names = identifiersOf(node.pattern, identifiers);
      if (names.length === 0) refuse(`"${node.quantifier === 'one' ? '1' : 'all'} of ${node.pattern}" names no search identifier`);
      const items = names.map((name) => convertIdentifier(name, ctx));
      return { kind: node.quantifier === 'one' ? 'any' : 'all', items };
    }
    case 'and':
      return { kind: 'all', items: node.items.map((item) => convertNode(item, identifiers, ctx)) };
    case 'or':
      return { kind: 'any', items: node.items.map((item) => convertNode(item, identifiers, ctx)) };
    case 'not':
      return { kind: 'not', item: convertNode(node.item, identifiers, ctx) };
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function convertIdentifier(name: string, ctx: Context): PolicyCondition {
  const done = ctx.converted.get(name);
  if (done !== undefined) return done;
  const value = ctx.rule.detection.get(name);
  let condition: PolicyCondition;
  if (isRecord(value)) {
    condition = convertMap(name, value, ctx);
  } else if (Array.isArray(value) && value.length > 0 && value.every(isRecord)) {
    condition = { kind: 'any', items: value.map((item) => convertMap(name, item as Record<string, unknown>, ctx)) };
  } else if (Array.isArray(value) && value.length > 0 && value.some(isRecord)) {
    refuse(`"${name}" mixes maps and plain values in one list`);
  } else {
    refuse(`"${name}" is a keyword search (values without a field), which has no flow-record equivalent`);
  }
  ctx.converted.set(name, condition);
  return condition;
}

function convertMap(name: string, map: Record<string, unknown>, ctx: Context): PolicyCondition {
  const entries = Object.entries(map);
  if (entries.length === 0) refuse(`"${name}" is an empty map`);
  return { kind: 'all', items: entries.map(([key, value]) => convertFieldEntry(key, value, ctx)) };
}

// ---------------------------------------------------------------------------------------------------------
// One `Field|modifiers: value(s)` entry

interface Modifiers {
  readonly match: string | null;
  readonly transforms: readonly string[];
  readonly all: boolean;
  readonly cased: boolean;
  readonly regexFlags: string;
}

function readModifiers(key: string, names: readonly string[]): Modifiers {
  let match: string | null = null;
  const transforms: string[] = [];
  let all = false;
  let cased = false;
  let regexFlags = '';
  for (const modifier of names) {
    if (MATCH_MODIFIERS.has(modifier)) {
      if (match !== null) refuse(`"${key}": modifiers "${match}" and "${modifier}" cannot be combined`);
      match = modifier;
    } else if (modifier === 'all') {
      all = true;
    } else if (modifier === 'cased') {
      cased = true;
    } else if (modifier === 'i' || modifier === 'm' || modifier === 's') {
      if (match !== 're') refuse(`"${key}": the regex flag "${modifier}" must follow "re"`);
      regexFlags += modifier;
    } else if (modifier === 'windash' || modifier === 'base64' || modifier === 'base64offset' || Object.prototype.hasOwnProperty.call(ENCODING_MODIFIERS, modifier)) {
      if (match !== null) refuse(`"${key}": "${modifier}" must come before "${match}"`);
      transforms.push(modifier);
    } else if (Object.prototype.hasOwnProperty.call(REFUSED_MODIFIERS, modifier)) {
      refuse(`modifier "${modifier}" is not supported: ${REFUSED_MODIFIERS[modifier] ?? ''}`);
    } else {
      refuse(`unknown modifier "${modifier}" in "${key}"`);
    }
  }
  return { match, transforms, all, cased, regexFlags };
}

function convertFieldEntry(key: string, value: unknown, ctx: Context): PolicyCondition {
  const [sigmaField = '', ...modifierNames] = key.split('|');
  if (sigmaField === '') refuse(`"${key}" is a keyword search (no field), which has no flow-record equivalent`);
  const mapping = mappingOf(ctx.category, sigmaField);
  if (mapping === null) refuse(`field ${sigmaField} has no flow-record equivalent (category ${ctx.category})`);
  if (mapping.kind === 'refused') refuse(`field ${sigmaField} is not supported: ${mapping.reason}`);
  const modifiers = readModifiers(key, modifierNames);
  const values = Array.isArray(value) ? (value as unknown[]) : [value];
  if (values.length === 0) refuse(`"${key}" has an empty list of values`);
  ctx.values += values.length;
  if (ctx.values > MAX_VALUES) refuse(`more than ${MAX_VALUES} values`);
  if (mapping.kind === 'derived') return derivedCondition(mapping.derived, key, values, modifiers);
  const field = mapping.field;
  if (!isMatchableField(field)) {
    refuse(`field ${sigmaField} maps to ${field}, which is written at the end of the flow and cannot be used in a policy condition`);
  }
  if (isTagOnlyField(field) && ctx.action !== 'tag') {
    refuse(`field ${sigmaField} maps to ${field}, known only when the flow ends: import with --action tag`);
  }
  const items = values.map((item) => convertValue(field, key, item, modifiers, mapping.originForm === true));
  return combine(items, modifiers.all);
}

/** A list of values: any of them (all of them with `|all`), with same-operator text matchers merged into one list. */
function combine(items: readonly PolicyCondition[], all: boolean): PolicyCondition {
  if (all) return { kind: 'all', items };
  const merged: PolicyCondition[] = [];
  for (const item of items) {
    const last = merged[merged.length - 1];
    if (item.kind === 'match' && last?.kind === 'match' && last.field === item.field && isListable(item.op) && listKind(last.op) === listKind(item.op)) {
      const previous = Array.isArray(last.arg) ? (last.arg as readonly PolicyScalar[]) : [last.arg as PolicyScalar];
      const next = Array.isArray(item.arg) ? (item.arg as readonly PolicyScalar[]) : [item.arg as PolicyScalar];
      merged[merged.length - 1] = { kind: 'match', field: item.field, op: listKind(item.op), arg: [...previous, ...next] };
    } else {
      merged.push(item);
    }
  }
  return merged.length === 1 ? (merged[0] as PolicyCondition) : { kind: 'any', items: merged };
}

function isListable(op: PolicyOp): boolean {
  return op === 'equals' || op === 'in' || op === 'contains' || op === 'startswith' || op === 'endswith' || op === 'cidr';
}

/** `equals` values gather into `in`; the others keep their operator (the policy accepts a list for them). */
function listKind(op: PolicyOp): PolicyOp {
  return op === 'equals' ? 'in' : op;
}

function describeValue(value: unknown): string {
  return value === null ? 'null' : typeof value === 'string' ? `"${value}"` : typeof value === 'object' ? 'a map or list' : String(value);
}

function elementType(type: FieldType): 'string' | 'number' | 'boolean' | 'ip' | 'object' {
  if (type === 'string[]') return 'string';
  if (type === 'number[]') return 'number';
  if (type === 'object[]') return 'object';
  return type;
}

function convertValue(field: FieldName, key: string, value: unknown, modifiers: Modifiers, originForm: boolean): PolicyCondition {
  const element = elementType(fieldType(field));
  const match = modifiers.match;
  if (value === null) {
    if (match !== null || modifiers.transforms.length > 0) refuse(`"${key}": null (field absent) cannot take modifiers`);
    return { kind: 'match', field, op: 'exists', arg: false };
  }
  if (typeof value === 'object') refuse(`"${key}": a value must be a string, number or boolean, got a map or list`);
  if (match === 'exists') {
    const wanted = value === true || value === 'true' ? true : value === false || value === 'false' ? false : null;
    if (wanted === null) refuse(`"${key}": exists needs true or false, got ${describeValue(value)}`);
    return { kind: 'match', field, op: 'exists', arg: wanted };
  }
  if (element === 'object') refuse(`"${key}": ${field} holds records; only exists can test it`);
  if (match === 'gt' || match === 'gte' || match === 'lt' || match === 'lte') {
    if (element !== 'number') refuse(`"${key}": ${match} needs a number field; ${field} is not one`);
    return { kind: 'match', field, op: match, arg: numberOf(key, value) };
  }
  if (match === 'cidr') {
    if (element !== 'ip') refuse(`"${key}": cidr needs an IP field; ${field} is not one`);
    if (typeof value !== 'string' || parseCidr(value) === null) refuse(`"${key}": invalid CIDR ${describeValue(value)}`);
    return { kind: 'match', field, op: 'cidr', arg: value };
  }
  if (match === 're') {
    if (element !== 'string') refuse(`"${key}": re needs a text field; ${field} is not one`);
    if (modifiers.transforms.length > 0) refuse(`"${key}": ${modifiers.transforms.join(', ')} cannot be combined with re`);
    if (typeof value !== 'string') refuse(`"${key}": re needs a pattern string, got ${describeValue(value)}`);
    return { kind: 'match', field, op: 'regex', arg: regexSource(key, value, modifiers.regexFlags) };
  }
  const textMatch: TextMatch = match === 'contains' || match === 'startswith' || match === 'endswith' ? match : 'equals';
  if (element === 'number') {
    if (textMatch !== 'equals' || modifiers.transforms.length > 0 || modifiers.cased) refuse(`"${key}": ${field} is a number; only plain values and gt/gte/lt/lte apply`);
    return { kind: 'match', field, op: 'equals', arg: numberOf(key, value) };
  }
  if (element === 'boolean') {
    if (textMatch !== 'equals' || typeof value !== 'boolean') refuse(`"${key}": ${field} is true or false`);
    return { kind: 'match', field, op: 'equals', arg: value };
  }
  const text = typeof value === 'string' ? value : String(value);
  if (element === 'ip') return ipCondition(field, key, text, textMatch, modifiers);
  const patterns = transformedPatterns(key, text, modifiers.transforms);
  const items = patterns.map((pattern): PolicyCondition => {
    const matcher = patternMatcher(pattern, textMatch, { cased: modifiers.cased, originForm });
    return { kind: 'match', field, op: matcher.op, arg: matcher.value };
  });
  return combine(items, false);
}

function numberOf(key: string, value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^-?[0-9]+(\.[0-9]+)?$/.test(value.trim())) return Number(value.trim());
  return refuse(`"${key}": needs a number, got ${describeValue(value)}`);
}

/** `windash`, `base64`, `base64offset` and the UTF-16 encodings, applied left to right. */
function transformedPatterns(key: string, text: string, transforms: readonly string[]): SigmaPattern[] {
  let patterns: SigmaPattern[] = [parseSigmaString(text)];
  let encoding: TextEncoding = 'utf8';
  let encoded = false;
  for (const transform of transforms) {
    if (encoded) refuse(`"${key}": nothing can follow base64/base64offset but the match modifier`);
    const encodingName = ENCODING_MODIFIERS[transform];
    if (encodingName !== undefined) {
      encoding = encodingName;
      continue;
    }
    if (transform === 'windash') {
      const next: SigmaPattern[] = [];
      for (const pattern of patterns) {
        const expanded = expandWindash(pattern);
        if (expanded === null) refuse(`"${key}": windash on a value with more than ${MAX_WINDASH_DASHES} option dashes`);
        next.push(...expanded);
      }
      patterns = next;
      continue;
    }
    // base64 / base64offset encode the plain value: wildcards cannot survive the encoding (pySigma refuses too).
    const out: SigmaPattern[] = [];
    for (const pattern of patterns) {
      if (hasWildcard(pattern)) refuse(`"${key}": ${transform} of a value with wildcards (${formatPattern(pattern)}) has no fixed encoding`);
      const bytes = encodeText(patternText(pattern), encoding);
      const texts = transform === 'base64' ? [base64Of(bytes)] : base64OffsetsOf(bytes);
      for (const t of texts) out.push(literalPattern(t));
    }
    patterns = out;
    encoded = true;
  }
  if (encoding !== 'utf8' && !encoded) refuse(`"${key}": the UTF-16 modifiers only make sense before base64/base64offset`);
  return patterns;
}

/**
 * Text matches on an IP field: equality with an address, or a prefix on whole octets (`10.`, `192.168.`,
 * `10.*`) which is the same as a CIDR range. Anything else cannot be said of an address and is refused.
 */
function ipCondition(field: FieldName, key: string, text: string, match: TextMatch, modifiers: Modifiers): PolicyCondition {
  if (modifiers.transforms.length > 0 || modifiers.cased) refuse(`"${key}": ${field} is an IP address; modifiers other than cidr do not apply`);
  const pattern = parseSigmaString(text);
  const literal = hasWildcard(pattern) ? null : patternText(pattern);
  if (match === 'equals' && literal !== null) {
    if (literal.includes('/') || parseCidr(literal) === null) refuse(`"${key}": "${text}" is not an IP address`);
    return { kind: 'match', field, op: 'equals', arg: literal };
  }
  let prefix: string | null = null;
  if (match === 'startswith' && literal !== null) prefix = literal;
  if (match === 'equals' && pattern.length === 2 && typeof pattern[0] === 'string' && pattern[1] === ANY) prefix = pattern[0];
  const cidr = prefix === null ? null : octetPrefixCidr(prefix);
  if (cidr === null) refuse(`"${key}": "${text}" cannot be matched on an IP address field (only whole-octet prefixes such as "10." become CIDR ranges)`);
  return { kind: 'match', field, op: 'cidr', arg: cidr };
}

function octetPrefixCidr(prefix: string): string | null {
  const m = /^((?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){1,3})$/.exec(prefix);
  if (m === null) return null;
  const octets = prefix.split('.').filter((part) => part !== '');
  const bits = octets.length * 8;
  while (octets.length < 4) octets.push('0');
  return `${octets.join('.')}/${bits}`;
}

/**
 * A Sigma `re` value as a policy regex. Sigma regexes are PCRE-flavoured and case-sensitive; the policy
 * accepts JavaScript syntax with an optional leading `(?i)`. Flags other than `i` and PCRE-only escapes are
 * refused, because JavaScript would read them differently rather than fail.
 */
function regexSource(key: string, value: string, flags: string): string {
  if (flags.includes('m') || flags.includes('s')) refuse(`"${key}": the regex flags m and s have no policy equivalent (only (?i))`);
  let source = value;
  let insensitive = flags.includes('i');
  if (source.startsWith('(?i)')) {
    source = source.slice(4);
    insensitive = true;
  }
  if (PCRE_ONLY_ESCAPE.test(source)) refuse(`"${key}": the regex uses a PCRE escape JavaScript reads differently (${PCRE_ONLY_ESCAPE.exec(source)?.[0] ?? ''})`);
  try {
    new RegExp(source, insensitive ? 'i' : '');
  } catch (err) {
    refuse(`"${key}": the regex is not valid JavaScript syntax (${err instanceof Error ? err.message : String(err)})`);
  }
  return `${insensitive ? '(?i)' : ''}${source}`;
}

// ---------------------------------------------------------------------------------------------------------
// Derived fields

function derivedCondition(derived: DerivedField, key: string, values: readonly unknown[], modifiers: Modifiers): PolicyCondition {
  const plain = modifiers.match === null && modifiers.transforms.length === 0 && !modifiers.cased;
  switch (derived) {
    case 'initiated': {
      if (!plain) refuse(`"${key}": Initiated takes only 'true' or 'false'`);
      const items = values.map((value): PolicyCondition => {
        if (value === true || value === 'true') return { kind: 'const', value: true };
        if (value === false || value === 'false') return { kind: 'const', value: false };
        return refuse(`"${key}": Initiated is 'true' or 'false', got ${describeValue(value)}`);
      });
      return { kind: modifiers.all ? 'all' : 'any', items };
    }
    case 'destination-is-ipv6': {
      if (!plain) refuse(`"${key}": DestinationIsIpv6 takes only 'true' or 'false'`);
      const items = values.map((value): PolicyCondition => {
        if (value === true || value === 'true') return { kind: 'match', field: 'destination.ip', op: 'cidr', arg: '::/0' };
        if (value === false || value === 'false') return { kind: 'match', field: 'destination.ip', op: 'cidr', arg: '0.0.0.0/0' };
        return refuse(`"${key}": DestinationIsIpv6 is 'true' or 'false', got ${describeValue(value)}`);
      });
      return { kind: modifiers.all ? 'all' : 'any', items };
    }
    case 'uri-extension': {
      if (!plain) refuse(`"${key}": c-uri-extension takes plain extensions only`);
      const items = values.map((value): PolicyCondition => {
        const text = typeof value === 'string' || typeof value === 'number' ? String(value) : null;
        if (text === null || !/^[A-Za-z0-9_~-]+$/.test(text)) refuse(`"${key}": "${String(value)}" is not a plain file extension`);
        return { kind: 'match', field: 'url.path', op: 'endswith', arg: `.${text}` };
      });
      return combine(items, modifiers.all);
    }
    case 'user': {
      if (modifiers.transforms.length > 0 || modifiers.cased || (modifiers.match !== null && !['contains', 'startswith', 'endswith'].includes(modifiers.match))) {
        refuse(`"${key}": User supports plain values and contains/startswith/endswith only`);
      }
      const match = (modifiers.match ?? 'equals') as TextMatch;
      const items = values.map((value) => userCondition(key, value, match));
      return combine(items, modifiers.all);
    }
  }
}

const m = (field: FieldName, op: PolicyOp, arg: PolicyScalar): PolicyCondition => ({ kind: 'match', field, op, arg });

/**
 * Sigma's `User` is Sysmon's `DOMAIN\name`; the record has user.domain and user.name (split at the first
 * backslash, src/enrich/hint-event.ts). Each match over the joined text is rebuilt over the two parts.
 */
function userCondition(key: string, value: unknown, match: TextMatch): PolicyCondition {
  if (value === null) return m('user.name', 'exists', false);
  if (typeof value !== 'string') refuse(`"${key}": User needs text, got ${describeValue(value)}`);
  const pattern = parseSigmaString(value);
  if (hasWildcard(pattern)) refuse(`"${key}": a User value with wildcards (${value}) cannot be split over user.domain and user.name`);
  const text = patternText(pattern);
  const cut = text.indexOf('\\');
  if (cut < 0) {
    switch (match) {
      case 'equals':
        return { kind: 'all', items: [m('user.name', 'equals', text), m('user.domain', 'exists', false)] };
      case 'contains':
        return { kind: 'any', items: [m('user.name', 'contains', text), m('user.domain', 'contains', text)] };
      case 'startswith':
        return { kind: 'any', items: [m('user.domain', 'startswith', text), { kind: 'all', items: [m('user.domain', 'exists', false), m('user.name', 'startswith', text)] }] };
      case 'endswith':
        return m('user.name', 'endswith', text);
    }
  }
  const domain = text.slice(0, cut);
  const name = text.slice(cut + 1);
  const domainEnd = domain === '' ? m('user.domain', 'exists', true) : m('user.domain', 'endswith', domain);
  const nameStart = name === '' ? m('user.name', 'exists', true) : m('user.name', 'startswith', name);
  switch (match) {
    case 'equals':
      if (domain === '' || name === '') refuse(`"${key}": "${value}" is not a DOMAIN\\name user`);
      return { kind: 'all', items: [m('user.domain', 'equals', domain), m('user.name', 'equals', name)] };
    case 'contains':
      return { kind: 'all', items: [domainEnd, nameStart] };
    case 'startswith':
      if (domain === '') refuse(`"${key}": "${value}" starts with a backslash`);
      return { kind: 'all', items: [m('user.domain', 'equals', domain), nameStart] };
    case 'endswith':
      if (name === '') refuse(`"${key}": "${value}" ends with a backslash`);
      return { kind: 'all', items: [domainEnd, m('user.name', 'equals', name)] };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Simplification, field checks, `when` output

/** Folds constants, flattens nested all/any, removes double negation. */
export function simplify(condition: PolicyCondition): PolicyCondition {
  switch (condition.kind) {
    case 'match':
    case 'const':
      return condition;
    case 'not': {
      const item = simplify(condition.item);
      if (item.kind === 'const') return { kind: 'const', value: !item.value };
      if (item.kind === 'not') return item.item;
      return { kind: 'not', item };
    }
    case 'all':
    case 'any': {
      const neutral = condition.kind === 'all';
      const items: PolicyCondition[] = [];
      for (const raw of condition.items) {
        const item = simplify(raw);
        if (item.kind === 'const') {
          if (item.value === neutral) continue;
          return { kind: 'const', value: !neutral };
        }
        if (item.kind === condition.kind) items.push(...item.items);
        else items.push(item);
      }
      if (items.length === 0) return { kind: 'const', value: neutral };
      if (items.length === 1) return items[0] as PolicyCondition;
      return { kind: condition.kind, items };
    }
  }
}

function checkFields(condition: PolicyCondition, action: ImportAction): void {
  switch (condition.kind) {
    case 'match':
      if (!Object.prototype.hasOwnProperty.call(FIELDS, condition.field)) refuse(`${condition.field} is not a flow field`);
      if (!isMatchableField(condition.field)) refuse(`${condition.field} cannot be used in a policy condition`);
      if (isTagOnlyField(condition.field) && action !== 'tag') refuse(`${condition.field} is known only when the flow ends: import with --action tag`);
      return;
    case 'all':
    case 'any':
      for (const item of condition.items) checkFields(item, action);
      return;
    case 'not':
      checkFields(condition.item, action);
      return;
    case 'const':
      return;
  }
}

/** A text starting with `$` is a list reference in a policy; `$$` writes the literal `$` (src/policy/compile.ts). */
function escapeDollar(value: PolicyScalar): PolicyScalar {
  return typeof value === 'string' && value.startsWith('$') ? `$${value}` : value;
}

function matcherValue(condition: Extract<PolicyCondition, { kind: 'match' }>): WhenValue {
  const arg = Array.isArray(condition.arg) ? (condition.arg as readonly PolicyScalar[]).map(escapeDollar) : escapeDollar(condition.arg as PolicyScalar);
  if (condition.op === 'equals' && !Array.isArray(arg)) return arg as PolicyScalar;
  return { [condition.op === 'equals' ? 'in' : condition.op]: arg };
}

/** The condition as a policy `when` map. An `all` whose parts name distinct keys is written as one map. */
export function toWhen(condition: PolicyCondition): WhenMap {
  switch (condition.kind) {
    case 'match':
      return { [condition.field]: matcherValue(condition) };
    case 'const':
      // Only reachable for a rule that matches everything, which convert() refuses; {} is "every flow".
      return condition.value ? {} : { not: {} };
    case 'not':
      return { not: toWhen(condition.item) };
    case 'any':
      return { any: condition.items.map(toWhen) };
    case 'all': {
      const parts = condition.items.map(toWhen);
      const merged: Record<string, WhenValue> = {};
      for (const part of parts) {
        for (const [key, value] of Object.entries(part)) {
          if (Object.prototype.hasOwnProperty.call(merged, key)) return { all: parts };
          merged[key] = value;
        }
      }
      return merged;
    }
  }
}

/**
 * The second shape of a policy (STYLE 3): the written files compiled once into rules whose conditions are
 * small trees of precompiled matchers. Everything that can be wrong with a `when` — unknown fields, unknown
 * lists, operator/field type mismatches, bad regexes and CIDRs — is found here, with its position, so the
 * evaluator never meets a surprise on a flow.
 */
import { isIP } from 'node:net';
import { isSignalName, SIGNAL_NAMES, withOverrides, type SignalName, type Weights } from '../scoring/signals.js';
import { FIELD_ALIASES, FIELDS, canonicalFieldName, fieldType, isDerivedField, isFieldName, isMatchableField, isTagOnlyField } from '../flow/fields.js';
import type { FieldName, FieldValue } from '../flow/fields.js';
import type { RuleAction, RuleMode, Severity, Verdict } from './decision.js';
import { isOperator, MatcherCompileError, MATCHERS, OPERATORS } from './matchers.js';
import type { ArgItem, CompiledMatcher, MatcherArg, MatcherKey } from './matchers.js';
import { describeNode, didYouMean, LIST_NAME_PATTERN, PolicyIssue, suggestClosest } from './parse.js';
import type { Position, WrittenMap, WrittenNode, WrittenPolicyFile, WrittenScalar, WrittenTest } from './parse.js';

/**
 * A compiled condition. `field` nodes hold the matchers of one `when` key (all must hold); `all`/`any`/`not`
 * combine them with three-valued logic in evaluate.ts. A `when` map with several keys is an `all`.
 */
export type CompiledCondition =
  | {
      readonly kind: 'field';
      readonly field: FieldName;
      readonly matchers: readonly CompiledMatcher[];
      /** The result when the field will never have a value (only `exists: false` matches then). */
      readonly matchesAbsent: boolean;
      /** A running total (egress.score): UNKNOWN while it can still change, whatever its value so far. */
      readonly derived: boolean;
    }
  | { readonly kind: 'all'; readonly items: readonly CompiledCondition[] }
  | { readonly kind: 'any'; readonly items: readonly CompiledCondition[] }
  | { readonly kind: 'not'; readonly item: CompiledCondition };

export interface CompiledRule {
  readonly id: string;
  readonly action: RuleAction;
  readonly severity: Severity | null;
  readonly tags: readonly string[];
  readonly description: string | null;
  /** Every field the condition reads (under all/any/not too): what the rule can wait for. */
  readonly fields: ReadonlySet<FieldName>;
  readonly condition: CompiledCondition;
  /** `rule <id>: <condition in words>`, computed once; the decision's reason when the rule matches. */
  readonly reason: string;
  /** Where the rule is written, for `policy check` and logs. */
  readonly file: string;
  readonly line: number;
  /** `live` rules are in `CompiledPolicy.rules` and decide; `shadow` rules are in `shadowRules` and never do. */
  readonly mode: RuleMode;
}

/** A `tests:` entry with its flow type-checked against the field catalogue (src/flow/fields.ts). */
export interface CompiledTest {
  readonly name: string;
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** The test's flow: canonical field names (aliases resolved), values of the field's type. */
  readonly flow: ReadonlyMap<FieldName, FieldValue>;
  readonly expect: {
    readonly action: Verdict | undefined;
    /** null: no rule decides (the default allow). */
    readonly rule: string | null | undefined;
    /** Every live rule that matched (egress.rules), exactly. */
    readonly rules: readonly string[] | undefined;
    readonly tags: readonly string[] | undefined;
    readonly alert: boolean | undefined;
    readonly shadow: readonly string[] | undefined;
  };
}

/** Ids the proxy gives its own decisions that a test may expect (src/flow/pipeline.ts). */
export const BUILTIN_TEST_RULE_IDS: readonly string[] = ['builtin:internal-destination'];

export interface CompiledPolicy {
  /** The policy files in load order. */
  readonly files: readonly string[];
  /** SHA-256 (hex) of the files' bytes concatenated in order: the `egress_policy_info{sha256}` label. */
  readonly sha256: string;
  /** The live rules of every file, in file order then written order: the rules that decide. */
  readonly rules: readonly CompiledRule[];
  /**
   * The `mode: shadow` rules, in the same order: evaluated when the flow ends (evaluate.ts `settleShadow`),
   * counted and recorded in egress.shadow, never deciding anything. Kept apart so the per-stage walk over
   * `rules` does not even look at them.
   */
  readonly shadowRules: readonly CompiledRule[];
  /** The files' `tests:` in file order (run by `policy test` and `policy check`, never by the proxy). */
  readonly tests: readonly CompiledTest[];
  /** Lists by name; text values lower-cased (comparison ignores case). */
  readonly lists: ReadonlyMap<string, ReadonlySet<string | number | boolean>>;
  /** Union of every rule's fields: enrichers can skip work no rule can see (STYLE 8). */
  readonly fields: ReadonlySet<FieldName>;
  /** Signal weights: the defaults (src/scoring/signals.ts) with the files' `scoring.weights` on top. */
  readonly weights: Weights;
  ruleById(id: string): CompiledRule | undefined;
}

export type CompileResult = { readonly ok: true; readonly policy: CompiledPolicy } | { readonly ok: false; readonly errors: readonly PolicyIssue[] };

const COMBINATORS = ['all', 'any', 'not'] as const;
const MATCHABLE_FIELDS: readonly string[] = (Object.keys(FIELDS) as FieldName[]).filter(isMatchableField);

interface DefinedList {
  readonly name: string;
  readonly pos: Position;
  readonly items: readonly WrittenScalar[];
}

function formatPosition(pos: Position): string {
  return `${pos.file}:${pos.line}:${pos.col}`;
}

/** Compiles the written files of one policy. `issues` from parsing are passed in so all are reported together. */
export function compilePolicy(files: readonly WrittenPolicyFile[], sha256: string, priorIssues: readonly PolicyIssue[] = []): CompileResult {
  const issues: PolicyIssue[] = [...priorIssues];

  // Lists first, from every file: a rule may use a list defined in a later file (a DoH resolver list file).
  const lists = new Map<string, DefinedList>();
  for (const file of files) {
    for (const list of file.lists) {
      const first = lists.get(list.name);
      if (first !== undefined) {
        issues.push(new PolicyIssue(list.pos, `duplicate list "${list.name}" (first defined at ${formatPosition(first.pos)})`));
        continue;
      }
      lists.set(list.name, list);
    }
  }

  const weights = compileWeights(files, issues);
  const rules: CompiledRule[] = [];
  const shadowRules: CompiledRule[] = [];
  const ruleIds = new Map<string, Position>();
  for (const file of files) {
    for (const written of file.rules) {
      if (written.id !== null) {
        const first = ruleIds.get(written.id);
        if (first !== undefined) {
          issues.push(new PolicyIssue(written.idPos, `duplicate rule id "${written.id}" (first defined at ${formatPosition(first)})`));
        } else {
          ruleIds.set(written.id, written.idPos);
        }
      }
      if (written.when === null) continue;
      const fields = new Set<FieldName>();
      const condition = compileWhen(written.when, { lists, issues, fields });
      if (condition === null || written.id === null || written.action === null) continue;
      // A shadow rule is settled when the flow ends, so, like a tag rule, it may read facts known only then.
      if (written.action !== 'tag' && written.mode === 'live') {
        // Never accept what we cannot carry out: a verdict cannot wait for a fact known only at the flow's end.
        const late = [...fields].filter(isTagOnlyField);
        if (late.length > 0) {
          issues.push(new PolicyIssue(written.pos, `rule "${written.id}": ${late.join(', ')} ${late.length === 1 ? 'is' : 'are'} known only when the flow ends (after forwarding); use it in a "tag" rule (an alert with severity), not in "${written.action}"`));
          continue;
        }
      }
      (written.mode === 'shadow' ? shadowRules : rules).push({
        id: written.id,
        action: written.action,
        severity: written.severity,
        tags: [...new Set(written.tags)],
        description: written.description,
        fields,
        condition,
        reason: `rule ${written.id}: ${explainCondition(condition)}`,
        file: written.pos.file,
        line: written.pos.line,
        mode: written.mode,
      });
    }
  }
  const tests = compileTests(files, { live: new Set(rules.map((r) => r.id)), shadow: new Set(shadowRules.map((r) => r.id)), all: ruleIds }, issues);
  if (issues.length > 0) return { ok: false, errors: sortIssues(issues, files) };

  const compiledLists = new Map<string, ReadonlySet<string | number | boolean>>();
  for (const list of lists.values()) {
    compiledLists.set(list.name, new Set(list.items.map((item) => (typeof item.value === 'string' ? item.value.toLowerCase() : (item.value ?? '')))));
  }
  const byId = new Map([...rules, ...shadowRules].map((rule) => [rule.id, rule]));
  const allFields = new Set<FieldName>();
  // Shadow rules' fields too: an enricher whose facts only a shadow rule reads must still run.
  for (const rule of [...rules, ...shadowRules]) for (const field of rule.fields) allFields.add(field);
  const policy: CompiledPolicy = {
    files: files.map((file) => file.file),
    sha256,
    rules,
    shadowRules,
    tests,
    lists: compiledLists,
    fields: allFields,
    weights,
    ruleById: (id) => byId.get(id),
  };
  return { ok: true, policy };
}

/** `scoring.weights` of every file: known signal names only, each set once across the files. */
function compileWeights(files: readonly WrittenPolicyFile[], issues: PolicyIssue[]): Weights {
  const overrides = new Map<SignalName, number>();
  const where = new Map<string, Position>();
  for (const file of files) {
    for (const w of file.weights ?? []) {
      if (!isSignalName(w.signal)) {
        issues.push(new PolicyIssue(w.pos, `unknown signal "${w.signal}" in scoring.weights${didYouMean(suggestClosest(w.signal, SIGNAL_NAMES))}; the signals are listed in docs/scoring.md`));
        continue;
      }
      const first = where.get(w.signal);
      if (first !== undefined) {
        issues.push(new PolicyIssue(w.pos, `scoring.weights.${w.signal} is set twice (first at ${formatPosition(first)})`));
        continue;
      }
      where.set(w.signal, w.pos);
      overrides.set(w.signal, w.value);
    }
  }
  return withOverrides(overrides);
}

// ---------------------------------------------------------------------------------------------------------
// tests:

interface KnownRules {
  readonly live: ReadonlySet<string>;
  readonly shadow: ReadonlySet<string>;
  /** Every id written (compiled or not), so a test naming a rule with an error is not reported twice. */
  readonly all: ReadonlyMap<string, Position>;
}

/** Field names a test flow may use: every matchable field and its old names. */
const TEST_FIELD_NAMES: readonly string[] = [...MATCHABLE_FIELDS, ...Object.keys(FIELD_ALIASES)];

function compileTests(files: readonly WrittenPolicyFile[], known: KnownRules, issues: PolicyIssue[]): CompiledTest[] {
  const out: CompiledTest[] = [];
  const names = new Map<string, Position>();
  for (const file of files) {
    for (const test of file.tests ?? []) {
      const first = test.name === null ? undefined : names.get(test.name);
      if (first !== undefined) issues.push(new PolicyIssue(test.pos, `duplicate test name "${test.name ?? ''}" (first at ${formatPosition(first)})`));
      else if (test.name !== null) names.set(test.name, test.pos);
      const compiled = compileTest(test, known, issues);
      if (compiled !== null) out.push(compiled);
    }
  }
  return out;
}

function compileTest(test: WrittenTest, known: KnownRules, issues: PolicyIssue[]): CompiledTest | null {
  const before = issues.length;
  const flow = new Map<FieldName, FieldValue>();
  const where = new Map<FieldName, Position>();
  readFlowFields(test.flow, '', { what: 'test flow', skipRecordFields: false }, flow, where, issues);
  const { expect, name } = test;
  // A missing name or a malformed expect is reported already; the flow has been checked all the same.
  if (expect === null || name === null) return null;
  if (expect.rule !== undefined && expect.rule.id !== null && !known.all.has(expect.rule.id) && !BUILTIN_TEST_RULE_IDS.includes(expect.rule.id)) {
    const hint = suggestClosest(expect.rule.id, [...known.live, ...BUILTIN_TEST_RULE_IDS]);
    issues.push(new PolicyIssue(expect.rule.pos, `test "${name}": expect.rule names no rule "${expect.rule.id}"${didYouMean(hint)}`));
  } else if (expect.rule?.id != null && known.shadow.has(expect.rule.id)) {
    issues.push(new PolicyIssue(expect.rule.pos, `test "${name}": "${expect.rule.id}" is a shadow rule, which never decides; expect it under shadow: [${expect.rule.id}]`));
  }
  for (const id of expect.rules?.ids ?? []) {
    if (known.live.has(id)) continue;
    const why = known.shadow.has(id) ? `"${id}" is a shadow rule; expect it under shadow` : `no rule "${id}"${didYouMean(suggestClosest(id, known.live))}`;
    issues.push(new PolicyIssue(expect.rules?.pos ?? expect.pos, `test "${name}": expect.rules: ${why}`));
  }
  for (const id of expect.shadow?.ids ?? []) {
    if (known.shadow.has(id)) continue;
    const why = known.all.has(id) ? `"${id}" is not a shadow rule (mode: shadow)` : `no shadow rule "${id}"${didYouMean(suggestClosest(id, known.shadow))}`;
    issues.push(new PolicyIssue(expect.shadow?.pos ?? expect.pos, `test "${name}": expect.shadow: ${why}`));
  }
  if (issues.length > before) return null;
  return {
    name,
    file: test.pos.file,
    line: test.pos.line,
    col: test.pos.col,
    flow,
    expect: { action: expect.action, rule: expect.rule?.id, rules: expect.rules?.ids, tags: expect.tags, alert: expect.alert, shadow: expect.shadow?.ids },
  };
}

export interface FlowReadOptions {
  /** How messages name the flow: `test flow`, `--flow`. */
  readonly what: string;
  /** Leave out fields the decision or the end of the flow writes (a pasted record has them) instead of refusing them. */
  readonly skipRecordFields: boolean;
}

/**
 * A flow given as record fields (a policy test's `flow`, `policy explain --flow`), checked against the catalogue:
 * the values by canonical field name, or the problems (unknown field with a did-you-mean, wrong type).
 */
export function readFlow(map: WrittenMap, opts: FlowReadOptions): { readonly values: Map<FieldName, FieldValue>; readonly issues: PolicyIssue[] } {
  const values = new Map<FieldName, FieldValue>();
  const issues: PolicyIssue[] = [];
  readFlowFields(map, '', opts, values, new Map(), issues);
  return { values, issues };
}

/**
 * A flow: flat dotted names (`process.name: x`), nested maps (`process: { name: x }`) or both. A map is walked
 * into; anything else must be the value of a known, matchable field, of that field's type.
 */
function readFlowFields(map: WrittenMap, prefix: string, opts: FlowReadOptions, out: Map<FieldName, FieldValue>, where: Map<FieldName, Position>, issues: PolicyIssue[]): void {
  for (const entry of map.entries) {
    const written = prefix + entry.key;
    const value = entry.value;
    if (value.kind === 'invalid') continue;
    if (value.kind === 'map') {
      readFlowFields(value, `${written}.`, opts, out, where, issues);
      continue;
    }
    // A record's own field of that name (tls.client.supported_ciphers, IANA names) before the old policy spelling.
    if (opts.skipRecordFields && isFieldName(written) && !isMatchableField(written)) continue;
    const name = canonicalFieldName(written);
    if (!isFieldName(name)) {
      issues.push(new PolicyIssue(entry.keyPos, `${opts.what}: unknown field "${written}"${didYouMean(suggestClosest(written, TEST_FIELD_NAMES))}`));
      continue;
    }
    if (!isMatchableField(name)) {
      if (opts.skipRecordFields) continue;
      issues.push(new PolicyIssue(entry.keyPos, `${opts.what}: "${name}" is written by the decision or the end of the flow, not a fact a rule can read; leave it out (check it with expect)`));
      continue;
    }
    const first = where.get(name);
    if (first !== undefined) {
      issues.push(new PolicyIssue(entry.keyPos, `${opts.what}: "${name}" is given twice (first at ${formatPosition(first)})`));
      continue;
    }
    const checked = checkTestValue(name, value);
    if (typeof checked === 'string') {
      issues.push(new PolicyIssue(value.pos, `${opts.what}: ${name} ${checked}`));
      continue;
    }
    where.set(name, entry.keyPos);
    out.set(name, checked.value);
  }
}

/** The value in the field's type, or why it is not one (a message that ends the sentence "<field> …"). */
function checkTestValue(name: FieldName, node: WrittenNode): { readonly value: FieldValue } | string {
  const type = fieldType(name);
  if (node.kind === 'scalar' && node.value === null) return 'has no value; leave the field out to test a flow without it';
  switch (type) {
    case 'string':
    case 'ip':
    case 'number':
    case 'boolean': {
      const want = type === 'ip' ? 'string' : type;
      if (node.kind !== 'scalar' || typeof node.value !== want) {
        const quote = type === 'string' && node.kind === 'scalar' ? ' (quote it)' : '';
        return `needs ${type === 'ip' ? 'an IP address' : `a ${type}`}, got ${describeNode(node)}${quote}`;
      }
      if (type === 'ip' && isIP(node.value as string) === 0) return `needs an IP address, got ${describeNode(node)}`;
      return { value: node.value as string | number | boolean };
    }
    case 'string[]':
    case 'number[]': {
      const item = type === 'string[]' ? 'string' : 'number';
      if (node.kind !== 'seq') return `needs a list of ${item}s, got ${describeNode(node)}`;
      const values: (string | number)[] = [];
      for (const x of node.items) {
        if (x.kind !== 'scalar' || typeof x.value !== item) return `needs a list of ${item}s, got an item ${describeNode(x)}`;
        values.push(x.value as string | number);
      }
      return { value: values as readonly string[] | readonly number[] };
    }
    case 'object[]':
      return 'cannot be given in a test flow';
  }
}

/** File order, then line, then column: the order an operator reads the files in. */
function sortIssues(issues: readonly PolicyIssue[], files: readonly WrittenPolicyFile[]): PolicyIssue[] {
  const order = new Map(files.map((file, index) => [file.file, index]));
  return [...issues].sort((a, b) => (order.get(a.file) ?? -1) - (order.get(b.file) ?? -1) || a.line - b.line || a.col - b.col);
}

interface CompileContext {
  readonly lists: ReadonlyMap<string, DefinedList>;
  readonly issues: PolicyIssue[];
  readonly fields: Set<FieldName>;
}

/** A `when` map: every key must hold. Returns null when any part had an error (already reported). */
function compileWhen(map: WrittenMap, ctx: CompileContext): CompiledCondition | null {
  const items: CompiledCondition[] = [];
  let failed = false;
  for (const entry of map.entries) {
    const item = compileWhenEntry(entry.key, entry.keyPos, entry.value, ctx);
    if (item === null) failed = true;
    else items.push(item);
  }
  if (failed) return null;
  // A one-key map is that key's condition: no wrapper node to walk per flow, no parentheses in the reason.
  return items.length === 1 && items[0] !== undefined ? items[0] : { kind: 'all', items };
}

function compileWhenEntry(key: string, keyPos: Position, value: WrittenNode, ctx: CompileContext): CompiledCondition | null {
  if (value.kind === 'invalid') return null; // reported while reading the YAML
  if (key === 'all' || key === 'any') {
    if (value.kind !== 'seq' || value.items.length === 0) {
      ctx.issues.push(new PolicyIssue(value.pos, `${key} needs a non-empty list of conditions, got ${describeNode(value)}`));
      return null;
    }
    const items: CompiledCondition[] = [];
    let failed = false;
    for (const item of value.items) {
      if (item.kind === 'invalid') {
        failed = true;
        continue;
      }
      if (item.kind !== 'map') {
        ctx.issues.push(new PolicyIssue(item.pos, `each item of ${key} must be a map of conditions, got ${describeNode(item)}`));
        failed = true;
        continue;
      }
      const compiled = compileWhen(item, ctx);
      if (compiled === null) failed = true;
      else items.push(compiled);
    }
    return failed ? null : { kind: key, items };
  }
  if (key === 'not') {
    if (value.kind !== 'map') {
      ctx.issues.push(new PolicyIssue(value.pos, `not needs one map of conditions, got ${describeNode(value)}`));
      return null;
    }
    const item = compileWhen(value, ctx);
    return item === null ? null : { kind: 'not', item };
  }
  key = canonicalFieldName(key);
  if (!isFieldName(key)) {
    const suggestion = suggestClosest(key, [...MATCHABLE_FIELDS, ...COMBINATORS]);
    ctx.issues.push(new PolicyIssue(keyPos, `unknown field "${key}"${didYouMean(suggestion)}`));
    return null;
  }
  if (!isMatchableField(key)) {
    ctx.issues.push(new PolicyIssue(keyPos, `field "${key}" is written by the decision or at the end of the flow and cannot be used in when`));
    return null;
  }
  ctx.fields.add(key);
  return compileField(key, value, ctx);
}

function compileField(field: FieldName, value: WrittenNode, ctx: CompileContext): CompiledCondition | null {
  const target = { field, type: fieldType(field) };
  const operators: { key: MatcherKey; pos: Position; arg: WrittenNode }[] = [];
  if (value.kind === 'map') {
    if (value.entries.length === 0) {
      ctx.issues.push(new PolicyIssue(value.pos, `${field}: {} has no operator; expected one of ${OPERATORS.join(', ')}`));
      return null;
    }
    let failed = false;
    for (const entry of value.entries) {
      if (!isOperator(entry.key)) {
        const hint = isFieldName(entry.key) ? ' (to combine fields, use all/any/not)' : didYouMean(suggestClosest(entry.key, OPERATORS));
        ctx.issues.push(new PolicyIssue(entry.keyPos, `unknown operator "${entry.key}"${hint}; expected one of ${OPERATORS.join(', ')}`));
        failed = true;
        continue;
      }
      operators.push({ key: entry.key, pos: entry.value.pos, arg: entry.value });
    }
    if (failed) return null;
  } else {
    operators.push({ key: 'equals', pos: value.pos, arg: value });
  }

  const matchers: CompiledMatcher[] = [];
  for (const { key, pos, arg } of operators) {
    const resolved = resolveArgument(arg, field, key, ctx);
    if (resolved === null) return null;
    try {
      matchers.push(MATCHERS[key].compile(resolved, target, pos));
    } catch (err) {
      if (!(err instanceof MatcherCompileError)) throw err;
      ctx.issues.push(new PolicyIssue(err.pos, err.message));
      return null;
    }
  }
  return { kind: 'field', field, matchers, matchesAbsent: matchers.every((m) => m.matchesAbsent), derived: isDerivedField(field) };
}

/** Resolves `$name` (whole argument, or items of an array) to the list's values; `$$x` is the literal `$x`. */
function resolveArgument(node: WrittenNode, field: FieldName, key: MatcherKey, ctx: CompileContext): MatcherArg | null {
  if (node.kind === 'invalid') return null;
  const operator = key === 'equals' ? field : `${field}: ${key}`;
  if (node.kind === 'map') {
    ctx.issues.push(new PolicyIssue(node.pos, `${operator} needs a value or a list, got a map`));
    return null;
  }
  if (node.kind === 'scalar') {
    if (node.value === null) {
      ctx.issues.push(new PolicyIssue(node.pos, `${operator} needs a value; to match a missing field use { exists: false }`));
      return null;
    }
    const reference = listReference(node.value);
    if (reference === null) return { kind: 'scalar', value: unescapeDollar(node.value), pos: node.pos };
    const list = lookupList(reference, node.pos, ctx);
    return list === null ? null : { kind: 'items', items: itemsAt(list, node.pos), listNames: [reference], pos: node.pos };
  }
  const items: ArgItem[] = [];
  const listNames: string[] = [];
  let failed = false;
  for (const item of node.items) {
    if (item.kind === 'invalid') {
      failed = true;
      continue;
    }
    if (item.kind !== 'scalar' || item.value === null) {
      ctx.issues.push(new PolicyIssue(item.pos, `${operator}: list items must be strings, numbers or booleans, got ${describeNode(item)}`));
      failed = true;
      continue;
    }
    const reference = listReference(item.value);
    if (reference === null) {
      items.push({ value: unescapeDollar(item.value), pos: item.pos });
      continue;
    }
    const list = lookupList(reference, item.pos, ctx);
    if (list === null) {
      failed = true;
      continue;
    }
    listNames.push(reference);
    items.push(...itemsAt(list, item.pos));
  }
  return failed ? null : { kind: 'items', items, listNames, pos: node.pos };
}

function listReference(value: string | number | boolean): string | null {
  return typeof value === 'string' && value.startsWith('$') && !value.startsWith('$$') ? value.slice(1) : null;
}

function unescapeDollar<T extends string | number | boolean>(value: T): T | string {
  return typeof value === 'string' && value.startsWith('$$') ? value.slice(1) : value;
}

function lookupList(name: string, pos: Position, ctx: CompileContext): DefinedList | null {
  const list = ctx.lists.get(name);
  if (list !== undefined) return list;
  if (!LIST_NAME_PATTERN.test(name)) {
    ctx.issues.push(new PolicyIssue(pos, `"$${name}" is not a list reference; a text starting with $ must be written $$`));
    return null;
  }
  const suggestion = suggestClosest(name, ctx.lists.keys());
  ctx.issues.push(new PolicyIssue(pos, `unknown list "$${name}"${didYouMean(suggestion === null ? null : `$${suggestion}`)}`));
  return null;
}

/**
 * A list's values placed at the reference: a type error ("needs numbers, got string") is reported where
 * the list is used with the field, which is where the mismatch is.
 */
function itemsAt(list: DefinedList, pos: Position): ArgItem[] {
  const items: ArgItem[] = [];
  for (const item of list.items) if (item.value !== null) items.push({ value: item.value, pos });
  return items;
}

// ---------------------------------------------------------------------------------------------------------

/** The condition in plain words, e.g. `process.name is one of $script_hosts [...] and destination.port is …`. */
export function explainCondition(condition: CompiledCondition): string {
  switch (condition.kind) {
    case 'field':
      return condition.matchers.map((matcher) => matcher.explain()).join(' and ');
    case 'all':
      if (condition.items.length === 0) return 'every flow';
      return condition.items.map((item) => explainNested(item, 'all')).join(' and ');
    case 'any':
      return condition.items.map((item) => explainNested(item, 'any')).join(' or ');
    case 'not':
      return `not (${explainCondition(condition.item)})`;
  }
}

function explainNested(condition: CompiledCondition, parent: 'all' | 'any'): string {
  const text = explainCondition(condition);
  const needsParens =
    ((condition.kind === 'all' || condition.kind === 'any') && condition.kind !== parent && condition.items.length > 1) ||
    (condition.kind === 'field' && parent === 'any' && condition.matchers.length > 1);
  return needsParens ? `(${text})` : text;
}

/**
 * Fields through which an `allow` rule names its destination. SECURITY: the pipeline lets an allow rule open
 * an internal destination (network.internal) only when the rule reads one of these, so a broad allow such as
 * `process.name: chrome.exe` can never open the metadata service or the LAN by accident.
 */
export const DESTINATION_FIELDS: readonly FieldName[] = ['destination.ip', 'destination.domain', 'egress.destination.internal'];

export function namesDestination(rule: CompiledRule): boolean {
  return DESTINATION_FIELDS.some((field) => rule.fields.has(field));
}

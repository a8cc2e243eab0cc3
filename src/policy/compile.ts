/**
 * The second shape of a policy (STYLE 3): the written files compiled once into rules whose conditions are
 * small trees of precompiled matchers. Everything that can be wrong with a `when` — unknown fields, unknown
 * lists, operator/field type mismatches, bad regexes and CIDRs — is found here, with its position, so the
 * evaluator never meets a surprise on a flow.
 */
import { isSignalName, SIGNAL_NAMES, withOverrides, type SignalName, type Weights } from '../scoring/signals.js';
import { FIELDS, canonicalFieldName, fieldType, isDerivedField, isFieldName, isMatchableField, isTagOnlyField } from '../flow/fields.js';
import type { FieldName } from '../flow/fields.js';
import type { RuleAction, Severity } from './decision.js';
import { isOperator, MatcherCompileError, MATCHERS, OPERATORS } from './matchers.js';
import type { ArgItem, CompiledMatcher, MatcherArg, MatcherKey } from './matchers.js';
import { describeNode, didYouMean, LIST_NAME_PATTERN, PolicyIssue, suggestClosest } from './parse.js';
import type { Position, WrittenMap, WrittenNode, WrittenPolicyFile, WrittenScalar } from './parse.js';

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
}

export interface CompiledPolicy {
  /** The policy files in load order. */
  readonly files: readonly string[];
  /** SHA-256 (hex) of the files' bytes concatenated in order: the `egress_policy_info{sha256}` label. */
  readonly sha256: string;
  /** Rules of every file, in file order then written order. */
  readonly rules: readonly CompiledRule[];
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
      if (written.action !== 'tag') {
        // Never accept what we cannot carry out: a verdict cannot wait for a fact known only at the flow's end.
        const late = [...fields].filter(isTagOnlyField);
        if (late.length > 0) {
          issues.push(new PolicyIssue(written.pos, `rule "${written.id}": ${late.join(', ')} ${late.length === 1 ? 'is' : 'are'} known only when the flow ends (after forwarding); use it in a "tag" rule (an alert with severity), not in "${written.action}"`));
          continue;
        }
      }
      rules.push({
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
      });
    }
  }
  if (issues.length > 0) return { ok: false, errors: sortIssues(issues, files) };

  const compiledLists = new Map<string, ReadonlySet<string | number | boolean>>();
  for (const list of lists.values()) {
    compiledLists.set(list.name, new Set(list.items.map((item) => (typeof item.value === 'string' ? item.value.toLowerCase() : (item.value ?? '')))));
  }
  const byId = new Map(rules.map((rule) => [rule.id, rule]));
  const allFields = new Set<FieldName>();
  for (const rule of rules) for (const field of rule.fields) allFields.add(field);
  const policy: CompiledPolicy = {
    files: files.map((file) => file.file),
    sha256,
    rules,
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

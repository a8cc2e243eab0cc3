/**
 * Policy files as written: YAML parsed with positions, checked for shape (keys, types, enums), and turned
 * into a small positioned tree. Nothing here knows about flow fields or operators — `compile.ts` reads the
 * `when` maps. Every problem becomes a `PolicyIssue` at `file:line:col` (1-based), and a file reports all
 * of its problems at once so an operator fixes them in one pass.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import type { ErrorCode } from '../errors.js';
import type { RuleAction, RuleMode, Severity, Verdict } from './decision.js';

/** A place in a policy file, 1-based like editors and compilers print it. */
export interface Position {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

/** One problem with a policy file. `format()` is the `file:line:col: message` line of `policy check`. */
export class PolicyIssue {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
  readonly code: Extract<ErrorCode, 'POLICY_INVALID' | 'POLICY_READ'>;

  constructor(pos: Position, message: string, code: 'POLICY_INVALID' | 'POLICY_READ' = 'POLICY_INVALID') {
    this.file = pos.file;
    this.line = pos.line;
    this.col = pos.col;
    this.message = message;
    this.code = code;
  }

  format(): string {
    return `${this.file}:${this.line}:${this.col}: ${this.message}`;
  }
}

/** The positioned tree a policy file is read into (YAML's own nodes carry offsets, not lines). */
export type WrittenNode = WrittenScalar | WrittenSeq | WrittenMap | WrittenInvalid;
export type ScalarValue = string | number | boolean | null;

export interface WrittenScalar {
  readonly kind: 'scalar';
  readonly value: ScalarValue;
  readonly pos: Position;
}
/** A node that could not be read (an alias, a binary value …); its issue is already reported, so readers skip it. */
export interface WrittenInvalid {
  readonly kind: 'invalid';
  readonly pos: Position;
}
export interface WrittenSeq {
  readonly kind: 'seq';
  readonly items: readonly WrittenNode[];
  readonly pos: Position;
}
export interface WrittenEntry {
  readonly key: string;
  readonly keyPos: Position;
  readonly value: WrittenNode;
}
export interface WrittenMap {
  readonly kind: 'map';
  readonly entries: readonly WrittenEntry[];
  readonly pos: Position;
}

export interface WrittenList {
  readonly name: string;
  readonly pos: Position;
  readonly items: readonly WrittenScalar[];
}

/**
 * A rule as written. `id`, `when` and `action` are null when they were missing or malformed (an issue has
 * been reported): the rest is still checked so a file reports all its problems in one pass.
 */
export interface WrittenRule {
  readonly pos: Position;
  readonly id: string | null;
  readonly idPos: Position;
  readonly description: string | null;
  readonly when: WrittenMap | null;
  readonly action: RuleAction | null;
  readonly severity: Severity | null;
  readonly tags: readonly string[];
  /** `live` (the default) or `shadow` (docs/policy.md "Shadow rules"). */
  readonly mode: RuleMode;
}

/**
 * What a policy test expects (docs/policy.md "Testing a policy"); a key left out is not checked. `rule: null`
 * expects that no rule decided (the default allow).
 */
export interface WrittenExpect {
  readonly pos: Position;
  readonly action: Verdict | undefined;
  readonly rule: { readonly id: string | null; readonly pos: Position } | undefined;
  /** Ids of the live rules expected to match (exactly these: the record's egress.rules). */
  readonly rules: { readonly ids: readonly string[]; readonly pos: Position } | undefined;
  readonly tags: readonly string[] | undefined;
  readonly alert: boolean | undefined;
  /** Ids of the shadow rules expected to match (exactly these). */
  readonly shadow: { readonly ids: readonly string[]; readonly pos: Position } | undefined;
}

/** One entry of the top-level `tests:` list. `flow` holds record fields; compile.ts checks their names and types. */
export interface WrittenTest {
  readonly pos: Position;
  /** null when missing or malformed (reported); the flow is still checked so a file reports everything at once. */
  readonly name: string | null;
  readonly flow: WrittenMap;
  readonly expect: WrittenExpect | null;
}

/** One entry of `scoring.weights`: a signal name and the points it adds at full strength. */
export interface WrittenWeight {
  readonly signal: string;
  readonly pos: Position;
  readonly value: number;
  readonly valuePos: Position;
}

export interface WrittenPolicyFile {
  readonly file: string;
  readonly lists: readonly WrittenList[];
  readonly rules: readonly WrittenRule[];
  /** `scoring.weights` (docs/scoring.md); empty when the file has none. */
  readonly weights?: readonly WrittenWeight[];
  /** `tests:`; empty when the file has none. */
  readonly tests?: readonly WrittenTest[];
}

export const RULE_ACTIONS: readonly RuleAction[] = ['allow', 'block', 'tag', 'bump', 'splice'];
export const SEVERITIES: readonly Severity[] = ['low', 'medium', 'high', 'critical'];
export const RULE_MODES: readonly RuleMode[] = ['live', 'shadow'];
export const VERDICTS: readonly Verdict[] = ['allow', 'block'];
export const EXPECT_KEYS = ['action', 'rule', 'rules', 'tags', 'alert', 'shadow'] as const;
const TEST_KEYS = ['name', 'flow', 'expect'] as const;
export const RULE_ID_PATTERN = /^[A-Za-z0-9._:-]+$/;
/** The pipeline names its own decisions `builtin:…` (e.g. the internal-destination default-deny). */
export const RESERVED_ID_PREFIX = 'builtin:';
/** List names are referenced as `$name` inside strings, so they stay identifier-like. */
export const LIST_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** Deepest YAML nesting accepted (a rule's `when` sits at level 4). */
const MAX_DEPTH = 64;
const TOP_LEVEL_KEYS = ['version', 'lists', 'rules', 'scoring', 'tests'] as const;
const SCORING_KEYS = ['weights'] as const;
const RULE_KEYS = ['id', 'description', 'when', 'action', 'severity', 'tags', 'mode'] as const;

/** Words people bring from other proxies' ACLs, mapped to ours for the error hint. */
const ACTION_ALIASES: Readonly<Record<string, RuleAction>> = {
  deny: 'block',
  drop: 'block',
  reject: 'block',
  permit: 'allow',
  pass: 'allow',
  accept: 'allow',
  alert: 'tag',
  intercept: 'bump',
  inspect: 'bump',
  passthrough: 'splice',
};

export interface ParseResult {
  /**
   * null when the file could not be read into the written form at all (YAML syntax errors, not a map).
   * Otherwise the written form, possibly with malformed parts left out — check `issues`.
   */
  readonly written: WrittenPolicyFile | null;
  readonly issues: readonly PolicyIssue[];
}

/** Edit distance, for "did you mean" hints on field names, keys, operators and actions. */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** The closest candidate when it is close enough to be a plausible typo, else null. */
export function suggestClosest(word: string, candidates: Iterable<string>): string | null {
  const lower = word.toLowerCase();
  const limit = Math.max(2, Math.floor(word.length / 3));
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best !== null && bestDistance <= limit ? best : null;
}

export function didYouMean(suggestion: string | null): string {
  return suggestion === null ? '' : ` (did you mean "${suggestion}"?)`;
}

export function describeScalar(value: ScalarValue): string {
  return value === null ? 'nothing' : typeof value === 'string' ? `"${value}"` : String(value);
}

export function describeNode(node: WrittenNode): string {
  switch (node.kind) {
    case 'scalar':
      return node.value === null ? 'nothing' : `${typeof node.value} ${describeScalar(node.value)}`;
    case 'seq':
      return node.items.length === 0 ? 'an empty list' : 'a list';
    case 'map':
      return 'a map';
    case 'invalid':
      return 'an unreadable value';
  }
}

/**
 * Reads one policy file's text into its written form. Pure: no I/O, never throws for any input text.
 */
export function parsePolicyText(file: string, text: string): ParseResult {
  const issues: PolicyIssue[] = [];
  const lineCounter = new LineCounter();
  const at = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, col };
  };
  // prettyErrors is off so messages stay one line; positions come from our own LineCounter.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  for (const problem of [...doc.errors, ...doc.warnings]) {
    issues.push(new PolicyIssue(at(problem.pos[0]), `YAML syntax error: ${problem.message}`));
  }
  // A document with syntax errors is only half-built; checking its shape would report phantom problems.
  if (issues.length > 0) return { written: null, issues };

  const toWritten = (node: unknown, fallback: Position, depth = 0): WrittenNode => {
    if (node === null || node === undefined) return { kind: 'scalar', value: null, pos: fallback };
    const yamlNode = node as YamlNode;
    const pos = yamlNode.range ? at(yamlNode.range[0]) : fallback;
    if (depth > MAX_DEPTH) {
      // Bounds the recursion of compile and evaluate; no sensible policy nests this deep.
      issues.push(new PolicyIssue(pos, `nested more than ${MAX_DEPTH} levels deep`));
      return { kind: 'invalid', pos };
    }
    if (isAlias(node)) {
      // Aliases would let a small file expand without bound; `$lists` cover the reuse they offer.
      issues.push(new PolicyIssue(pos, 'YAML aliases (*name) are not supported in policy files; use a list'));
      return { kind: 'invalid', pos };
    }
    if (isScalar(node)) {
      const value = node.value;
      if (value === null || typeof value === 'string' || typeof value === 'boolean') return { kind: 'scalar', value, pos };
      if (typeof value === 'number') {
        if (!Number.isFinite(value)) {
          issues.push(new PolicyIssue(pos, `number ${String(value)} is not finite`));
          return { kind: 'invalid', pos };
        }
        return { kind: 'scalar', value, pos };
      }
      issues.push(new PolicyIssue(pos, 'unsupported YAML value; use a string, number or boolean'));
      return { kind: 'invalid', pos };
    }
    if (isSeq(node)) {
      const items: WrittenNode[] = [];
      for (const item of node.items) items.push(toWritten(item, pos, depth + 1));
      return { kind: 'seq', items, pos };
    }
    if (isMap(node)) {
      const entries: WrittenEntry[] = [];
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const keyNode = pair.key as YamlNode | null;
        const keyPos = keyNode?.range ? at(keyNode.range[0]) : pos;
        if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === 'object') {
          issues.push(new PolicyIssue(keyPos, 'map keys must be plain strings'));
          continue;
        }
        entries.push({ key: String(keyNode.value), keyPos, value: toWritten(pair.value, keyPos, depth + 1) });
      }
      return { kind: 'map', entries, pos };
    }
    issues.push(new PolicyIssue(pos, 'unsupported YAML node'));
    return { kind: 'invalid', pos };
  };

  const start: Position = { file, line: 1, col: 1 };
  const root = toWritten(doc.contents, start);
  if (root.kind === 'invalid') return { written: null, issues };
  if (root.kind === 'scalar' && root.value === null) {
    issues.push(new PolicyIssue(start, 'the file is empty; expected a map with "version: 1"'));
    return { written: null, issues };
  }
  if (root.kind !== 'map') {
    issues.push(new PolicyIssue(root.pos, `expected a map with "version: 1", "lists" and "rules", got ${describeNode(root)}`));
    return { written: null, issues };
  }

  const lists: WrittenList[] = [];
  const rules: WrittenRule[] = [];
  const weights: WrittenWeight[] = [];
  const tests: WrittenTest[] = [];
  let sawVersion = false;
  for (const entry of root.entries) {
    switch (entry.key) {
      case 'version':
        sawVersion = true;
        if (entry.value.kind !== 'invalid' && !(entry.value.kind === 'scalar' && entry.value.value === 1)) {
          issues.push(new PolicyIssue(entry.value.pos, `version must be 1 (got ${describeNode(entry.value)})`));
        }
        break;
      case 'lists':
        readLists(entry.value, lists, issues);
        break;
      case 'rules':
        readRules(entry.value, rules, issues);
        break;
      case 'scoring':
        readScoring(entry.value, weights, issues);
        break;
      case 'tests':
        readTests(entry.value, tests, issues);
        break;
      default:
        issues.push(unknownKey(entry, 'at the top level', TOP_LEVEL_KEYS));
    }
  }
  if (!sawVersion) issues.push(new PolicyIssue(root.pos, 'missing "version: 1"'));
  return { written: { file, lists, rules, weights, tests }, issues };
}

/** `scoring: { weights: { <signal>: <points> } }`; the signal names are checked by the compiler. */
function readScoring(node: WrittenNode, out: WrittenWeight[], issues: PolicyIssue[]): void {
  if (node.kind === 'invalid' || (node.kind === 'scalar' && node.value === null)) return;
  if (node.kind !== 'map') {
    issues.push(new PolicyIssue(node.pos, `scoring must be a map with "weights", got ${describeNode(node)}`));
    return;
  }
  for (const entry of node.entries) {
    if (entry.key !== 'weights') {
      issues.push(unknownKey(entry, 'in scoring', SCORING_KEYS));
      continue;
    }
    const weights = entry.value;
    if (weights.kind === 'invalid' || (weights.kind === 'scalar' && weights.value === null)) continue;
    if (weights.kind !== 'map') {
      issues.push(new PolicyIssue(weights.pos, `scoring.weights must be a map of signal name to points, got ${describeNode(weights)}`));
      continue;
    }
    for (const w of weights.entries) {
      const v = w.value;
      if (v.kind === 'invalid') continue;
      if (v.kind !== 'scalar' || typeof v.value !== 'number' || v.value < 0 || v.value > 100) {
        issues.push(new PolicyIssue(v.pos, `scoring.weights.${w.key} must be a number of points from 0 to 100, got ${describeNode(v)}`));
        continue;
      }
      out.push({ signal: w.key, pos: w.keyPos, value: v.value, valuePos: v.pos });
    }
  }
}

function unknownKey(entry: WrittenEntry, where: string, expected: readonly string[]): PolicyIssue {
  return new PolicyIssue(
    entry.keyPos,
    `unknown key "${entry.key}" ${where}${didYouMean(suggestClosest(entry.key, expected))}; expected one of ${expected.join(', ')}`,
  );
}

function readLists(node: WrittenNode, out: WrittenList[], issues: PolicyIssue[]): void {
  if (node.kind === 'invalid' || (node.kind === 'scalar' && node.value === null)) return; // `lists:` with nothing under it
  if (node.kind !== 'map') {
    issues.push(new PolicyIssue(node.pos, `lists must be a map of name to list of values, got ${describeNode(node)}`));
    return;
  }
  for (const entry of node.entries) {
    if (!LIST_NAME_PATTERN.test(entry.key)) {
      issues.push(new PolicyIssue(entry.keyPos, `list name "${entry.key}" must match ${LIST_NAME_PATTERN.source}`));
      continue;
    }
    if (entry.value.kind === 'invalid') continue;
    if (entry.value.kind !== 'seq') {
      issues.push(new PolicyIssue(entry.value.pos, `list "${entry.key}" must be a list of values, got ${describeNode(entry.value)}`));
      continue;
    }
    const items: WrittenScalar[] = [];
    for (const item of entry.value.items) {
      if (item.kind === 'invalid') continue;
      if (item.kind !== 'scalar' || item.value === null) {
        issues.push(new PolicyIssue(item.pos, `list "${entry.key}" may hold only strings, numbers and booleans, got ${describeNode(item)}`));
        continue;
      }
      if (typeof item.value === 'string' && item.value.startsWith('$')) {
        // Nested list references would need cycle checks; flat lists are enough and easier to read.
        issues.push(new PolicyIssue(item.pos, `list "${entry.key}" cannot refer to another list (${item.value})`));
        continue;
      }
      items.push(item);
    }
    out.push({ name: entry.key, pos: entry.keyPos, items });
  }
}

function readRules(node: WrittenNode, out: WrittenRule[], issues: PolicyIssue[]): void {
  if (node.kind === 'invalid' || (node.kind === 'scalar' && node.value === null)) return;
  if (node.kind !== 'seq') {
    issues.push(new PolicyIssue(node.pos, `rules must be a list of rules, got ${describeNode(node)}`));
    return;
  }
  for (const item of node.items) {
    if (item.kind === 'invalid') continue;
    if (item.kind !== 'map') {
      issues.push(new PolicyIssue(item.pos, `a rule must be a map with id, when and action, got ${describeNode(item)}`));
      continue;
    }
    out.push(readRule(item, issues));
  }
}

function readRule(node: WrittenMap, issues: PolicyIssue[]): WrittenRule {
  let id: string | null = null;
  let idPos: Position = node.pos;
  let description: string | null = null;
  let when: WrittenMap | null = null;
  let action: RuleAction | null = null;
  let severity: Severity | null = null;
  let mode: RuleMode = 'live';
  const tags: string[] = [];
  const seen = new Set<string>();
  for (const entry of node.entries) {
    seen.add(entry.key);
    const value = entry.value;
    if (value.kind === 'invalid') continue;
    switch (entry.key) {
      case 'id':
        if (value.kind === 'scalar' && typeof value.value === 'string' && value.value.startsWith(RESERVED_ID_PREFIX)) {
          issues.push(new PolicyIssue(value.pos, `rule ids starting with "${RESERVED_ID_PREFIX}" are reserved for built-in decisions`));
        } else if (value.kind === 'scalar' && typeof value.value === 'string' && RULE_ID_PATTERN.test(value.value)) {
          id = value.value;
          idPos = value.pos;
        } else {
          issues.push(new PolicyIssue(value.pos, `id must be a string of letters, digits and . _ : - (got ${describeNode(value)})`));
        }
        break;
      case 'description':
        if (value.kind === 'scalar' && typeof value.value === 'string') description = value.value;
        else issues.push(new PolicyIssue(value.pos, `description must be a string (got ${describeNode(value)})`));
        break;
      case 'when':
        if (value.kind === 'map') when = value;
        else issues.push(new PolicyIssue(value.pos, `when must be a map of conditions (got ${describeNode(value)}); use {} to match every flow`));
        break;
      case 'action': {
        const word = value.kind === 'scalar' && typeof value.value === 'string' ? value.value : null;
        if (word !== null && (RULE_ACTIONS as readonly string[]).includes(word)) {
          action = word as RuleAction;
        } else {
          const hint = word === null ? null : (ACTION_ALIASES[word.toLowerCase()] ?? suggestClosest(word, RULE_ACTIONS));
          issues.push(new PolicyIssue(value.pos, `action must be one of ${RULE_ACTIONS.join(', ')} (got ${describeNode(value)})${didYouMean(hint)}`));
        }
        break;
      }
      case 'severity': {
        const word = value.kind === 'scalar' && typeof value.value === 'string' ? value.value : null;
        if (word !== null && (SEVERITIES as readonly string[]).includes(word)) severity = word as Severity;
        else issues.push(new PolicyIssue(value.pos, `severity must be one of ${SEVERITIES.join(', ')} (got ${describeNode(value)})`));
        break;
      }
      case 'mode': {
        const word = value.kind === 'scalar' && typeof value.value === 'string' ? value.value : null;
        if (word !== null && (RULE_MODES as readonly string[]).includes(word)) mode = word as RuleMode;
        else {
          const hint = word === null ? null : suggestClosest(word, RULE_MODES);
          issues.push(new PolicyIssue(value.pos, `mode must be one of ${RULE_MODES.join(', ')} (got ${describeNode(value)})${didYouMean(hint)}`));
        }
        break;
      }
      case 'tags':
        if (value.kind !== 'seq') {
          issues.push(new PolicyIssue(value.pos, `tags must be a list of strings (got ${describeNode(value)})`));
          break;
        }
        for (const tag of value.items) {
          if (tag.kind === 'invalid') continue;
          if (tag.kind === 'scalar' && typeof tag.value === 'string' && tag.value.length > 0) tags.push(tag.value);
          else issues.push(new PolicyIssue(tag.pos, `a tag must be a non-empty string (got ${describeNode(tag)})`));
        }
        break;
      default:
        issues.push(unknownKey(entry, 'in a rule', RULE_KEYS));
    }
  }
  for (const required of ['id', 'when', 'action'] as const) {
    if (!seen.has(required)) issues.push(new PolicyIssue(node.pos, `a rule needs "${required}"`));
  }
  return { pos: node.pos, id, idPos, description, when, action, severity, tags, mode };
}

/** `tests:` — a list of `{name, flow, expect}`; a malformed test is reported and left out. */
function readTests(node: WrittenNode, out: WrittenTest[], issues: PolicyIssue[]): void {
  if (node.kind === 'invalid' || (node.kind === 'scalar' && node.value === null)) return;
  if (node.kind !== 'seq') {
    issues.push(new PolicyIssue(node.pos, `tests must be a list of tests (name, flow, expect), got ${describeNode(node)}`));
    return;
  }
  for (const item of node.items) {
    if (item.kind === 'invalid') continue;
    if (item.kind !== 'map') {
      issues.push(new PolicyIssue(item.pos, `a test must be a map with name, flow and expect, got ${describeNode(item)}`));
      continue;
    }
    const test = readTest(item, issues);
    if (test !== null) out.push(test);
  }
}

function readTest(node: WrittenMap, issues: PolicyIssue[]): WrittenTest | null {
  let name: string | null = null;
  let flow: WrittenMap | null = null;
  let expect: WrittenExpect | null = null;
  let failed = false;
  const seen = new Set<string>();
  for (const entry of node.entries) {
    seen.add(entry.key);
    const value = entry.value;
    if (value.kind === 'invalid') {
      failed = true;
      continue;
    }
    switch (entry.key) {
      case 'name':
        if (value.kind === 'scalar' && typeof value.value === 'string' && value.value.trim() !== '') name = value.value;
        else issues.push(new PolicyIssue(value.pos, `a test name must be a non-empty string (got ${describeNode(value)})`));
        break;
      case 'flow':
        if (value.kind === 'map') flow = value;
        else issues.push(new PolicyIssue(value.pos, `flow must be a map of record fields to values (got ${describeNode(value)})`));
        break;
      case 'expect':
        if (value.kind === 'map') expect = readExpect(value, issues);
        else issues.push(new PolicyIssue(value.pos, `expect must be a map with one or more of ${EXPECT_KEYS.join(', ')} (got ${describeNode(value)})`));
        break;
      default:
        issues.push(unknownKey(entry, 'in a test', TEST_KEYS));
        failed = true;
    }
  }
  for (const required of TEST_KEYS) {
    if (!seen.has(required)) issues.push(new PolicyIssue(node.pos, `a test needs "${required}"`));
  }
  if (failed || flow === null) return null;
  return { pos: node.pos, name, flow, expect };
}

function readExpect(node: WrittenMap, issues: PolicyIssue[]): WrittenExpect | null {
  let action: Verdict | undefined;
  let rule: WrittenExpect['rule'];
  let tags: string[] | undefined;
  let alert: boolean | undefined;
  let rules: WrittenExpect['rules'];
  let shadow: WrittenExpect['shadow'];
  let failed = false;
  const bad = (pos: Position, message: string): void => {
    issues.push(new PolicyIssue(pos, message));
    failed = true;
  };
  for (const entry of node.entries) {
    const value = entry.value;
    if (value.kind === 'invalid') {
      failed = true;
      continue;
    }
    const word = value.kind === 'scalar' && typeof value.value === 'string' ? value.value : null;
    switch (entry.key) {
      case 'action':
        if (word !== null && (VERDICTS as readonly string[]).includes(word)) action = word as Verdict;
        else bad(value.pos, `expect.action must be allow or block (got ${describeNode(value)})${didYouMean(word === null ? null : (ACTION_ALIASES[word.toLowerCase()] ?? suggestClosest(word, VERDICTS)))}`);
        break;
      case 'rule':
        if (value.kind === 'scalar' && value.value === null) rule = { id: null, pos: value.pos };
        else if (word !== null && word !== '') rule = { id: word, pos: value.pos };
        else bad(value.pos, `expect.rule must be a rule id, or null when no rule decides (got ${describeNode(value)})`);
        break;
      case 'tags':
      case 'rules':
      case 'shadow': {
        const items = readStrings(value, `expect.${entry.key}`, issues);
        if (items === null) failed = true;
        else if (entry.key === 'tags') tags = items;
        else if (entry.key === 'rules') rules = { ids: items, pos: value.pos };
        else shadow = { ids: items, pos: value.pos };
        break;
      }
      case 'alert':
        if (value.kind === 'scalar' && typeof value.value === 'boolean') alert = value.value;
        else bad(value.pos, `expect.alert must be true or false (got ${describeNode(value)})`);
        break;
      default:
        issues.push(unknownKey(entry, 'in expect', EXPECT_KEYS));
        failed = true;
    }
  }
  if (failed) return null;
  if (action === undefined && rule === undefined && rules === undefined && tags === undefined && alert === undefined && shadow === undefined) {
    issues.push(new PolicyIssue(node.pos, `expect needs at least one of ${EXPECT_KEYS.join(', ')}`));
    return null;
  }
  return { pos: node.pos, action, rule, rules, tags, alert, shadow };
}

/** A list of non-empty strings (`[]` allowed: "none"); null after reporting when it is not one. */
function readStrings(node: WrittenNode, what: string, issues: PolicyIssue[]): string[] | null {
  if (node.kind !== 'seq') {
    issues.push(new PolicyIssue(node.pos, `${what} must be a list of strings (got ${describeNode(node)})`));
    return null;
  }
  const out: string[] = [];
  let failed = false;
  for (const item of node.items) {
    if (item.kind === 'invalid') {
      failed = true;
      continue;
    }
    if (item.kind === 'scalar' && typeof item.value === 'string' && item.value !== '') out.push(item.value);
    else {
      issues.push(new PolicyIssue(item.pos, `${what}: each item must be a non-empty string (got ${describeNode(item)})`));
      failed = true;
    }
  }
  return failed ? null : out;
}

/**
 * Runs the `tests:` of a policy (docs/policy.md "Testing a policy"): each test's flow through the real
 * evaluator with every stage closed and the internal-destination default applied (outcome.ts), compared with
 * what the test expects. Table-driven tests over the policy itself, as smokescreen keeps its ACL fixtures: a
 * policy edit that changes an outcome someone wrote down fails `policy test` and `policy check`.
 */
import type { CompiledPolicy, CompiledTest } from './compile.js';
import type { FinalDecision } from './decision.js';
import { closedFacts, decideClosedFlow } from './outcome.js';

export interface PolicyTestResult {
  readonly test: CompiledTest;
  /** What the policy decided for the test's flow. */
  readonly decision: FinalDecision;
  /** One sentence per unmet expectation, e.g. `expected action block, got allow (rule r1)`; empty: passed. */
  readonly failures: readonly string[];
}

/** Runs every test of the policy, in file order. Pure; never throws for a compiled policy. */
export function runPolicyTests(policy: CompiledPolicy): PolicyTestResult[] {
  return policy.tests.map((test) => runPolicyTest(policy, test));
}

export function runPolicyTest(policy: CompiledPolicy, test: CompiledTest): PolicyTestResult {
  const decision = decideClosedFlow(policy, closedFacts(test.flow));
  return { test, decision, failures: compareOutcome(test.expect, decision) };
}

/** `file:line:col: test "name": <failure>` — one line per unmet expectation, the format of `policy check`. */
export function formatTestFailures(result: PolicyTestResult): string[] {
  const { test } = result;
  return result.failures.map((failure) => `${test.file}:${test.line}:${test.col}: test "${test.name}": ${failure}`);
}

function describeRule(ruleId: string | null): string {
  return ruleId === null ? 'no rule decided' : `rule ${ruleId}`;
}

function describeList(items: readonly string[]): string {
  return items.length === 0 ? 'none' : `[${items.join(', ')}]`;
}

/** Same members, ignoring order and case (tags compare like the policy's text: case-insensitively). */
function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a.map((x) => x.toLowerCase()));
  const right = new Set(b.map((x) => x.toLowerCase()));
  return left.size === right.size && [...left].every((x) => right.has(x));
}

function compareOutcome(expect: CompiledTest['expect'], d: FinalDecision): string[] {
  const failures: string[] = [];
  if (expect.action !== undefined && expect.action !== d.verdict) {
    failures.push(`expected action ${expect.action}, got ${d.verdict} (${describeRule(d.ruleId)})`);
  }
  if (expect.rule !== undefined && expect.rule !== d.ruleId) {
    failures.push(`expected ${expect.rule === null ? 'no rule to decide' : `rule ${expect.rule}`}, got ${describeRule(d.ruleId)} (action ${d.verdict})`);
  }
  if (expect.rules !== undefined && !sameSet(expect.rules, d.matchedRuleIds)) {
    failures.push(`expected matched rules ${describeList(expect.rules)}, got ${describeList(d.matchedRuleIds)}`);
  }
  if (expect.tags !== undefined && !sameSet(expect.tags, d.tags)) {
    failures.push(`expected tags ${describeList(expect.tags)}, got ${describeList(d.tags)} (matched ${describeList(d.matchedRuleIds)})`);
  }
  const alert = d.severity !== null;
  if (expect.alert !== undefined && expect.alert !== alert) {
    failures.push(
      expect.alert
        ? `expected an alert, got none (matched ${describeList(d.matchedRuleIds)})`
        : `expected no alert, got severity ${d.severity ?? ''} (matched ${describeList(d.matchedRuleIds)})`,
    );
  }
  const shadow = (d.shadow ?? []).map((m) => m.rule);
  if (expect.shadow !== undefined && !sameSet(expect.shadow, shadow)) {
    failures.push(`expected shadow matches ${describeList(expect.shadow)}, got ${describeList(shadow)}`);
  }
  return failures;
}

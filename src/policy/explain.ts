/**
 * `policy explain`: why a flow gets its decision, rule by rule in file order — matched, failed (the condition
 * that failed and the value the flow has) or pending (the facts it waits for) — then the decision. Built from
 * the same `evaluateCondition` as the proxy and from each matcher's own `explain()` (STYLE 4), so the words
 * are the ones the flow record's egress.explanation uses.
 */
import type { Facts } from '../flow/facts.js';
import type { FieldName, FieldValue } from '../flow/fields.js';
import { explainCondition } from './compile.js';
import type { CompiledCondition, CompiledPolicy, CompiledRule } from './compile.js';
import type { Decision, RuleAction, RuleMode } from './decision.js';
import { evaluateCondition, evaluatePolicy, FALSE, TRUE, UNKNOWN } from './evaluate.js';
import { decideClosedFlow } from './outcome.js';

export type RuleStatus = 'matched' | 'failed' | 'pending';

export interface RuleExplanation {
  readonly rule: string;
  readonly mode: RuleMode;
  readonly action: RuleAction;
  readonly file: string;
  readonly line: number;
  readonly status: RuleStatus;
  /** matched: the condition in words; failed: the part that failed and the flow's value; pending: what it waits for. */
  readonly why: string;
  /** A live rule after the one that decided: shown for completeness, it did not take part. */
  readonly afterDecision: boolean;
}

export interface FlowExplanation {
  /** Live and shadow rules together, in file order. */
  readonly rules: readonly RuleExplanation[];
  readonly decision: Decision;
}

/**
 * Explains the decision for `facts`. With every stage closed (nothing pending) the decision is the final one
 * of outcome.ts, internal-destination default and shadow rules included; with pending facts it is what the
 * proxy would decide at that point (possibly pending).
 */
export function explainFlow(policy: CompiledPolicy, facts: Facts, opts: { readonly closed: boolean }): FlowExplanation {
  const decision = opts.closed ? decideClosedFlow(policy, facts) : evaluatePolicy(policy, facts);
  const decidedBy = decision.status === 'final' ? decision.ruleId : decision.pendingRuleId;
  const order = new Map(policy.files.map((file, index) => [file, index]));
  const all = [...policy.rules, ...policy.shadowRules].sort((a, b) => (order.get(a.file) ?? 0) - (order.get(b.file) ?? 0) || a.line - b.line);
  let passed = false;
  const rules: RuleExplanation[] = [];
  for (const rule of all) {
    rules.push(explainRule(rule, facts, passed && rule.mode === 'live'));
    if (rule.mode === 'live' && rule.id === decidedBy) passed = true;
  }
  return { rules, decision };
}

function explainRule(rule: CompiledRule, facts: Facts, afterDecision: boolean): RuleExplanation {
  const truth = evaluateCondition(rule.condition, facts);
  const base = { rule: rule.id, mode: rule.mode, action: rule.action, file: rule.file, line: rule.line, afterDecision };
  if (truth === TRUE) return { ...base, status: 'matched', why: explainCondition(rule.condition) };
  if (truth === UNKNOWN) return { ...base, status: 'pending', why: `waits for ${pendingFields(rule, facts).join(', ')}` };
  return { ...base, status: 'failed', why: whyFalse(rule.condition, facts) };
}

function pendingFields(rule: CompiledRule, facts: Facts): FieldName[] {
  return [...rule.fields].filter((field) => facts.isPending(field));
}

function show(value: FieldValue): string {
  return JSON.stringify(value);
}

/** The part of a false condition that made it false, with the flow's value. */
export function whyFalse(condition: CompiledCondition, facts: Facts): string {
  switch (condition.kind) {
    case 'field': {
      const value = facts.get(condition.field);
      if (value === undefined || value === null) return `${condition.field} is absent (wanted: ${explainCondition(condition)})`;
      const failed = condition.matchers.find((matcher) => !matcher.test(value));
      return `${failed?.explain() ?? explainCondition(condition)} is false: ${condition.field} is ${show(value)}`;
    }
    case 'all': {
      const first = condition.items.find((item) => evaluateCondition(item, facts) === FALSE);
      return first === undefined ? explainCondition(condition) : whyFalse(first, facts);
    }
    case 'any':
      return `none of: ${condition.items.map((item) => whyFalse(item, facts)).join('; ')}`;
    case 'not':
      return `not (${explainCondition(condition.item)}) is false: the inner condition matched`;
  }
}

import type { FieldName } from '../flow/fields.js';

export type Verdict = 'allow' | 'block';
export type TunnelMode = 'splice' | 'bump';
export type Severity = 'low' | 'medium' | 'high' | 'critical';
export type RuleAction = Verdict | 'tag' | TunnelMode;
/** `live` rules decide; `shadow` rules are only evaluated, counted and recorded (docs/policy.md "Shadow rules"). */
export type RuleMode = 'live' | 'shadow';

/**
 * A shadow rule that matched a flow: what it would have done (its own `action`, whatever the live rules
 * decided), and why in words. Written to the record as `egress.shadow: [{rule, action}]`.
 */
export interface ShadowMatch {
  readonly rule: string;
  readonly action: RuleAction;
  readonly severity: Severity | null;
  readonly tags: readonly string[];
  /** `shadow: rule <id>: <condition in words>`, as it appears in egress.explanation. */
  readonly reason: string;
}

/**
 * A decision is a value (smokescreen's acl.Decision): what to do, which rule said so, and why in words.
 * `final` decisions are never revised; a `pending` one names the fields the next stage must bring.
 */
export type Decision = FinalDecision | PendingDecision;

interface DecisionBase {
  /** Ids of every rule that matched so far, in file order. */
  readonly matchedRuleIds: readonly string[];
  /** Tags of every matched rule, de-duplicated, in order of first appearance. */
  readonly tags: readonly string[];
  /** Highest severity among the matched rules, or null. */
  readonly severity: Severity | null;
  /** The first matching `bump`/`splice` rule's mode; `splice` when none matched. */
  readonly tunnel: TunnelMode;
  /** Plain-word explanation of every matched rule (matcher `explain()` output). */
  readonly reasons: readonly string[];
  /**
   * Shadow rules that matched, settled when the flow ends (`settleShadow` in evaluate.ts); absent when none did.
   * They never change anything else in the decision.
   */
  readonly shadow?: readonly ShadowMatch[];
}

export interface FinalDecision extends DecisionBase {
  readonly status: 'final';
  readonly verdict: Verdict;
  /** The rule that decided, or null when no rule matched (the default applies). */
  readonly ruleId: string | null;
  /**
   * `tag` rules that were still pending when the verdict was reached. Tags cannot change a verdict, so they
   * do not hold it up; they are evaluated again when the flow ends, with every fact it got by then.
   */
  readonly deferredRuleIds?: readonly string[];
}

export interface PendingDecision extends DecisionBase {
  readonly status: 'pending';
  /** The id of the first rule that cannot be decided yet. */
  readonly pendingRuleId: string;
  /** The unknown fields that rule still waits for. */
  readonly pendingFields: readonly FieldName[];
}

/** A decision the proxy makes before or instead of the policy (bad request, client ACL, capacity …). */
export function builtinDecision(verdict: Verdict, ruleId: string, reason: string): FinalDecision {
  return { status: 'final', verdict, ruleId, matchedRuleIds: [], tags: [], severity: null, tunnel: 'splice', reasons: [reason] };
}

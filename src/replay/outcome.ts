/**
 * The outcome of a flow, two ways: as its record says the proxy decided it (the baseline of `policy replay`
 * without --against), and as a policy decides it on the facts read back from the record.
 *
 * A policy's outcome goes through the public evaluator only (`createPolicyView` of src/policy/evaluate.ts: the
 * same `evaluate` and `opensInternal` the pipeline uses), so whatever the evaluator learns — `mode: shadow` rules
 * that never decide, new operators — replay knows too. On top of it, what the pipeline itself adds
 * (src/flow/pipeline.ts): the internal-destination default deny (`applyInternalDefault`).
 */
import type { Facts } from '../flow/facts.js';
import { INTERNAL_DESTINATION_RULE } from '../flow/pipeline.js';
import type { CompiledPolicy } from '../policy/load.js';
import type { Verdict } from '../policy/decision.js';
import { createPolicyView } from '../policy/evaluate.js';

export interface Outcome {
  readonly verdict: Verdict;
  /** The rule that decided (a policy rule, or `builtin:internal-destination`), or null for the default allow. */
  readonly ruleId: string | null;
  /** Every rule that matched, in file order (a record's `egress.rules`). */
  readonly matchedRuleIds: readonly string[];
  readonly tags: readonly string[];
  /** An alert (`event.kind: alert`): a matched rule has a severity. */
  readonly alert: boolean;
  /** The matched rule with the highest severity (the first of them), when known. */
  readonly alertRuleId: string | null;
}

/** Why a record takes no part in the comparison (it is counted, not compared). */
export type SkipReason = 'builtin' | 'followup' | 'undecided' | 'no_decision';
export const SKIP_REASONS: readonly SkipReason[] = ['builtin', 'followup', 'undecided', 'no_decision'];

/** What a record says about its own decision (the decision fields of record-fields.ts). */
export interface RecordedDecision {
  readonly action: unknown;
  readonly kind: unknown;
  readonly severity: unknown;
  readonly ruleId: unknown;
  readonly tags: unknown;
  readonly rules: unknown;
  readonly followupOf: unknown;
  readonly pendingRule: unknown;
}

const EMPTY: readonly string[] = Object.freeze([]);

function stringList(value: unknown): readonly string[] {
  return Array.isArray(value) ? (value as string[]) : EMPTY;
}

/**
 * Records the policy never decided, whichever baseline is used:
 * - follow-up records (`egress.followup_of`): a second account of a flow already recorded, written when a process
 *   hint came after the decision. Its `event.action` is the original's and its rule fields are a hypothetical
 *   evaluation; the original record is the one that shows what the policy decided with the facts it had, so it
 *   is the one replayed, and the follow-up is skipped (docs/replay.md "Follow-up records");
 * - decisions the proxy made itself (`rule.id` `builtin:…`: bad request, client ACL, capacity, an address that is
 *   never dialled) — except `builtin:internal-destination`, the default a policy `allow` rule can override;
 * - flows that ended before any decision (`egress.pending_rule`): nothing was forwarded, and the facts the
 *   pending rule waited for never came.
 */
export function skipReason(recorded: RecordedDecision): SkipReason | null {
  if (typeof recorded.followupOf === 'string') return 'followup';
  if (typeof recorded.ruleId === 'string' && recorded.ruleId.startsWith('builtin:') && recorded.ruleId !== INTERNAL_DESTINATION_RULE) return 'builtin';
  if (typeof recorded.pendingRule === 'string') return 'undecided';
  return null;
}

/** The outcome a record shows, or null when it names none (`event.action` missing or not allow/block). */
export function recordedOutcome(recorded: RecordedDecision): Outcome | null {
  const verdict = recorded.action;
  if (verdict !== 'allow' && verdict !== 'block') return null;
  const ruleId = typeof recorded.ruleId === 'string' ? recorded.ruleId : null;
  return {
    verdict,
    ruleId,
    matchedRuleIds: stringList(recorded.rules),
    tags: stringList(recorded.tags),
    alert: recorded.kind === 'alert' || typeof recorded.severity === 'number',
    alertRuleId: null,
  };
}

/** A policy ready to decide recorded facts. */
export interface Decider {
  readonly policy: CompiledPolicy;
  /** The outcome under this policy, or null when the evaluator cannot decide (a pending rule: cannot happen with every stage closed). */
  decide(facts: Facts): Outcome | null;
}

export function createDecider(policy: CompiledPolicy): Decider {
  const view = createPolicyView(policy);
  return {
    policy,
    decide(facts) {
      const decision = view.evaluate(facts);
      if (decision.status !== 'final') return null;
      let verdict = decision.verdict;
      let ruleId = decision.ruleId;
      // src/flow/pipeline.ts applyInternalDefault: an internal destination stays blocked unless the allowing rule
      // names the destination (SPEC network.internal).
      if (verdict === 'allow' && facts.get('egress.destination.internal') === true && (ruleId === null || !view.opensInternal(ruleId))) {
        verdict = 'block';
        ruleId = INTERNAL_DESTINATION_RULE;
      }
      const severity = decision.severity;
      let alertRuleId: string | null = null;
      if (severity !== null) {
        for (const id of decision.matchedRuleIds) {
          if (policy.ruleById(id)?.severity === severity) {
            alertRuleId = id;
            break;
          }
        }
      }
      return { verdict, ruleId, matchedRuleIds: decision.matchedRuleIds, tags: decision.tags, alert: severity !== null, alertRuleId };
    },
  };
}

/**
 * The outcome of a flow whose facts are all in, as the live proxy reaches it: the walk of evaluate.ts with
 * every stage closed (a field the flow does not have is absent, never pending), the deferred tag rules and the
 * shadow rules settled, and the internal-destination default applied the way src/flow/pipeline.ts
 * (`applyInternalDefault`) applies it. `policy test`, `policy explain` and `policy replay` decide with this, so
 * what they print is what the proxy would have done — minus what only a running proxy knows (the resolved
 * address's class, `builtin:unroutable-destination`, client admission).
 */
import type { Facts } from '../flow/facts.js';
import type { FieldName, FieldValue, FieldValueOf } from '../flow/fields.js';
import { INTERNAL_DESTINATION_RULE } from '../flow/pipeline.js';
import { namesDestination } from './compile.js';
import type { CompiledPolicy } from './compile.js';
import type { FinalDecision } from './decision.js';
import { completeDeferred, evaluatePolicy, settleShadow } from './evaluate.js';

/** Facts of a finished flow: the values given, and nothing pending. */
export function closedFacts(values: ReadonlyMap<FieldName, FieldValue>): Facts {
  return {
    get: <K extends FieldName>(name: K) => values.get(name) as FieldValueOf<K> | undefined,
    isPending: () => false,
  };
}

/** Whether the rule that allowed may open an internal destination (it names the destination). */
export function opensInternal(policy: CompiledPolicy, ruleId: string): boolean {
  const rule = policy.ruleById(ruleId);
  return rule !== undefined && rule.mode === 'live' && rule.action === 'allow' && namesDestination(rule);
}

/**
 * The final decision for a flow whose facts are all known. `facts` is read as closed whatever its
 * `isPending` says. The decision carries `shadow` when a shadow rule matched.
 */
export function decideClosedFlow(policy: CompiledPolicy, facts: Facts): FinalDecision {
  const closed: Facts = { get: (name) => facts.get(name), isPending: () => false };
  const decision = evaluatePolicy(policy, closed);
  // With nothing pending every condition is true or false, so the walk always ends in a final decision.
  if (decision.status !== 'final') throw new Error(`policy evaluation stayed pending on ${decision.pendingRuleId} with every stage closed`);
  const settled = completeDeferred(policy, decision, closed);
  return settleShadow(policy, applyInternalDefault(policy, settled, closed), closed);
}

/**
 * SPEC "network.internal": an allowed flow to an internal destination is blocked unless the rule that allowed
 * it names the destination. Mirrors src/flow/pipeline.ts `applyInternalDefault` (same rule id, same reason).
 */
export function applyInternalDefault(policy: CompiledPolicy, decision: FinalDecision, facts: Facts): FinalDecision {
  if (decision.verdict !== 'allow' || facts.get('egress.destination.internal') !== true) return decision;
  if (decision.ruleId !== null && opensInternal(policy, decision.ruleId)) return decision;
  return {
    ...decision,
    verdict: 'block',
    ruleId: INTERNAL_DESTINATION_RULE,
    reasons: [...decision.reasons, `destination ${facts.get('destination.ip') ?? ''} is internal (network.internal)`],
  };
}

/**
 * The evaluator: a compiled policy and the facts of a flow in, a `Decision` value out. Pure and synchronous
 * (it runs at every stage of every flow), allocating nothing but the result when a rule matched.
 *
 * Three-valued logic (Kleene): a field with a value gives true/false; a field with no value whose stage can
 * still arrive gives UNKNOWN; a field that will never have a value is "absent" and only `exists: false`
 * matches it. Rules run in file order, and the first rule that is UNKNOWN stops the walk: a later rule may
 * only decide once no earlier rule is pending, so the outcome can always be read off the files top to bottom
 * (SPEC "Policy files").
 */
import type { Facts } from '../flow/facts.js';
import { isDerivedField, type FieldName } from '../flow/fields.js';
import { namesDestination } from './compile.js';
import type { CompiledCondition, CompiledPolicy, CompiledRule } from './compile.js';
import type { Decision, FinalDecision, Severity, ShadowMatch, TunnelMode } from './decision.js';
import type { Weights } from '../scoring/signals.js';

export const FALSE = 0;
export const TRUE = 1;
export const UNKNOWN = 2;
export type Truth = typeof FALSE | typeof TRUE | typeof UNKNOWN;

const SEVERITY_RANK: Readonly<Record<Severity, number>> = { low: 1, medium: 2, high: 3, critical: 4 };

/** No rule matched: allow (the pipeline applies the internal-destination default-deny on top). Shared, frozen. */
const NO_MATCH: FinalDecision = Object.freeze({
  status: 'final',
  verdict: 'allow',
  ruleId: null,
  matchedRuleIds: Object.freeze([]) as readonly string[],
  tags: Object.freeze([]) as readonly string[],
  severity: null,
  tunnel: 'splice',
  reasons: Object.freeze([]) as readonly string[],
});

export function evaluateCondition(condition: CompiledCondition, facts: Facts): Truth {
  switch (condition.kind) {
    case 'field': {
      if (condition.derived && facts.isPending(condition.field)) return UNKNOWN;
      const value = facts.get(condition.field);
      if (value === undefined || value === null) {
        if (facts.isPending(condition.field)) return UNKNOWN;
        return condition.matchesAbsent ? TRUE : FALSE;
      }
      for (const matcher of condition.matchers) if (!matcher.test(value)) return FALSE;
      return TRUE;
    }
    case 'all': {
      // Kleene AND: any FALSE decides even while other parts are unknown, so a rule on a late field does not
      // hold a flow up when an early field already rules it out.
      let result: Truth = TRUE;
      for (const item of condition.items) {
        const truth = evaluateCondition(item, facts);
        if (truth === FALSE) return FALSE;
        if (truth === UNKNOWN) result = UNKNOWN;
      }
      return result;
    }
    case 'any': {
      let result: Truth = FALSE;
      for (const item of condition.items) {
        const truth = evaluateCondition(item, facts);
        if (truth === TRUE) return TRUE;
        if (truth === UNKNOWN) result = UNKNOWN;
      }
      return result;
    }
    case 'not': {
      const truth = evaluateCondition(condition.item, facts);
      return truth === UNKNOWN ? UNKNOWN : truth === TRUE ? FALSE : TRUE;
    }
  }
}

/** What the matched rules so far add up to; created on the first match only. */
interface Accumulated {
  readonly matchedRuleIds: string[];
  readonly tags: string[];
  readonly reasons: string[];
  severity: Severity | null;
  tunnel: TunnelMode | null;
}

function recordMatch(acc: Accumulated | null, rule: CompiledRule): Accumulated {
  const into = acc ?? { matchedRuleIds: [], tags: [], reasons: [], severity: null, tunnel: null };
  into.matchedRuleIds.push(rule.id);
  into.reasons.push(rule.reason);
  for (const tag of rule.tags) if (!into.tags.includes(tag)) into.tags.push(tag);
  if (rule.severity !== null && (into.severity === null || SEVERITY_RANK[rule.severity] > SEVERITY_RANK[into.severity])) {
    into.severity = rule.severity;
  }
  if (into.tunnel === null && (rule.action === 'bump' || rule.action === 'splice')) into.tunnel = rule.action;
  return into;
}

/** The fields of a rule that have no value yet but may still get one: what the pipeline should wait for. */
function pendingFieldsOf(rule: CompiledRule, facts: Facts): FieldName[] {
  const pending: FieldName[] = [];
  // A derived total (egress.score) has a value while it is still pending: it counts as pending too.
  for (const field of rule.fields) if ((facts.get(field) === undefined || isDerivedField(field)) && facts.isPending(field)) pending.push(field);
  return pending;
}

export function evaluatePolicy(policy: CompiledPolicy, facts: Facts): Decision {
  let acc: Accumulated | null = null;
  let deferred: string[] | null = null;
  for (const rule of policy.rules) {
    const truth = evaluateCondition(rule.condition, facts);
    if (truth === FALSE) continue;
    if (truth === UNKNOWN) {
      // A pending `tag` rule cannot change what a later rule decides, only the record's tags: it does not
      // hold the verdict up (no flow waits for a tag); it is settled when the flow ends (completeDeferred).
      if (rule.action === 'tag') {
        (deferred ??= []).push(rule.id);
        continue;
      }
      return {
        status: 'pending',
        pendingRuleId: rule.id,
        pendingFields: pendingFieldsOf(rule, facts),
        matchedRuleIds: acc?.matchedRuleIds ?? [],
        tags: acc?.tags ?? [],
        severity: acc?.severity ?? null,
        tunnel: acc?.tunnel ?? 'splice',
        reasons: acc?.reasons ?? [],
      };
    }
    acc = recordMatch(acc, rule);
    if (rule.action === 'allow' || rule.action === 'block') {
      return {
        status: 'final',
        verdict: rule.action,
        ruleId: rule.id,
        matchedRuleIds: acc.matchedRuleIds,
        tags: acc.tags,
        severity: acc.severity,
        tunnel: acc.tunnel ?? 'splice',
        reasons: acc.reasons,
        ...(deferred === null ? {} : { deferredRuleIds: deferred }),
      };
    }
  }
  if (acc === null && deferred === null) return NO_MATCH;
  return {
    status: 'final',
    verdict: 'allow',
    ruleId: null,
    matchedRuleIds: acc?.matchedRuleIds ?? [],
    tags: acc?.tags ?? [],
    severity: acc?.severity ?? null,
    tunnel: acc?.tunnel ?? 'splice',
    reasons: acc?.reasons ?? [],
    ...(deferred === null ? {} : { deferredRuleIds: deferred }),
  };
}

/**
 * Settle the deferred `tag` rules of a final decision with the facts the flow has now (at its end): a rule
 * that matches adds its tags, severity and reason; one whose facts never came does not match. The verdict,
 * the deciding rule and the tunnel mode are never changed.
 */
export function completeDeferred(policy: CompiledPolicy, decision: FinalDecision, facts: Facts): FinalDecision {
  const ids = decision.deferredRuleIds;
  if (ids === undefined || ids.length === 0) return decision;
  const acc: Accumulated = {
    matchedRuleIds: [...decision.matchedRuleIds],
    tags: [...decision.tags],
    reasons: [...decision.reasons],
    severity: decision.severity,
    tunnel: decision.tunnel,
  };
  let changed = false;
  for (const id of ids) {
    const rule = policy.ruleById(id);
    if (rule !== undefined && evaluateCondition(rule.condition, facts) === TRUE) {
      recordMatch(acc, rule);
      changed = true;
    }
  }
  const { deferredRuleIds: _settled, ...rest } = decision;
  if (!changed) return rest;
  return { ...rest, matchedRuleIds: acc.matchedRuleIds, tags: acc.tags, reasons: acc.reasons, severity: acc.severity };
}

/**
 * The shadow rules (`mode: shadow`) that match these facts, in file order, each with what it would have done:
 * its own `action` (a shadow `block` is reported as `block` whether or not a live rule decided first: it is
 * evaluated on every flow, not only on those that reach its place in the file). A rule whose facts are still
 * pending does not match. null when none matches: no allocation for the usual flow.
 */
export function evaluateShadow(policy: CompiledPolicy, facts: Facts): ShadowMatch[] | null {
  let matches: ShadowMatch[] | null = null;
  for (const rule of policy.shadowRules) {
    if (evaluateCondition(rule.condition, facts) !== TRUE) continue;
    (matches ??= []).push({ rule: rule.id, action: rule.action, severity: rule.severity, tags: rule.tags, reason: `shadow: ${rule.reason}` });
  }
  return matches;
}

/**
 * Settle the shadow rules when the flow ends (src/flow/pipeline.ts `end`), with every fact the flow got: they
 * never held it up, and never change its verdict, rule, tags, severity or tunnel mode. Their matches go to
 * `shadow` (the record's egress.shadow) and their reasons, prefixed `shadow:`, after the decision's own.
 * Returns the same decision object when no shadow rule matches.
 */
export function settleShadow<D extends Decision>(policy: CompiledPolicy, decision: D, facts: Facts): D {
  if (policy.shadowRules.length === 0) return decision;
  const matches = evaluateShadow(policy, facts);
  if (matches === null) return decision;
  return { ...decision, shadow: matches, reasons: [...decision.reasons, ...matches.map((m) => m.reason)] };
}

/**
 * While rules are pending, can the flow still end up allowed? Walks the rules as `evaluatePolicy` does, but
 * follows every branch an unknown rule opens: an unknown `allow` is a possible allow (then the walk goes on, for
 * the case it turns out false); a true `allow`/`block` ends the walk. An allow counts only if it would survive
 * the internal-destination default (a rule that names the destination, when the destination is internal).
 * Returns null when an allow is still possible, else the block that is certain whatever the pending facts
 * bring: the first rule that blocks for sure, or the internal-destination default.
 */
export function certainBlock(policy: CompiledPolicy, facts: Facts, internal: boolean, internalRuleId: string): FinalDecision | null {
  let acc: Accumulated | null = null;
  let deferred: string[] | null = null;
  for (const rule of policy.rules) {
    const truth = evaluateCondition(rule.condition, facts);
    if (truth === FALSE) continue;
    const allowSurvives = !internal || namesDestination(rule);
    if (truth === UNKNOWN) {
      if (rule.action === 'allow' && allowSurvives) return null;
      // A pending tag rule is settled at the end, as with any final decision.
      if (rule.action === 'tag') (deferred ??= []).push(rule.id);
      continue;
    }
    acc = recordMatch(acc, rule);
    if (rule.action === 'allow') {
      if (allowSurvives) return null;
      break; // an allow that the internal default overrides: blocked
    }
    if (rule.action === 'block') {
      return {
        status: 'final',
        verdict: 'block',
        ruleId: rule.id,
        matchedRuleIds: acc.matchedRuleIds,
        tags: acc.tags,
        severity: acc.severity,
        tunnel: acc.tunnel ?? 'splice',
        reasons: [...acc.reasons, 'decided early: no outcome of the pending rules could allow the flow'],
        ...(deferred === null ? {} : { deferredRuleIds: deferred }),
      };
    }
  }
  if (!internal) return null; // no rule decides: the default allows
  return {
    status: 'final',
    verdict: 'block',
    ruleId: internalRuleId,
    matchedRuleIds: acc?.matchedRuleIds ?? [],
    tags: acc?.tags ?? [],
    severity: acc?.severity ?? null,
    tunnel: acc?.tunnel ?? 'splice',
    reasons: [...(acc?.reasons ?? []), 'the destination is internal and no rule that names it can still allow it'],
    ...(deferred === null ? {} : { deferredRuleIds: deferred }),
  };
}

/**
 * The policy as the pipeline consumes it (structurally the pipeline's `PolicyView`): evaluation plus the
 * internal-destination question, answered from the compiled rule's fields.
 */
export function createPolicyView(policy: CompiledPolicy): {
  readonly weights: Weights;
  evaluate(facts: Facts): Decision;
  completeDeferred(decision: FinalDecision, facts: Facts): FinalDecision;
  settleShadow(decision: Decision, facts: Facts): Decision;
  opensInternal(ruleId: string): boolean;
  certainBlock(facts: Facts, internal: boolean, internalRuleId: string): FinalDecision | null;
} {
  return {
    weights: policy.weights,
    evaluate: (facts) => evaluatePolicy(policy, facts),
    completeDeferred: (decision, facts) => completeDeferred(policy, decision, facts),
    settleShadow: (decision, facts) => settleShadow(policy, decision, facts),
    certainBlock: (facts, internal, internalRuleId) => certainBlock(policy, facts, internal, internalRuleId),
    opensInternal: (ruleId) => {
      const rule = policy.ruleById(ruleId);
      return rule !== undefined && rule.action === 'allow' && namesDestination(rule);
    },
  };
}

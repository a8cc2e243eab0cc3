import { Flow } from '../flow/flow.js';
import { STAGES } from '../flow/fields.js';
import type { PolicyView } from '../flow/pipeline.js';
import { fillFromAttribution } from '../enrich/attribution.js';
import type { Attribution } from '../enrich/hint-store.js';
import type { Decision } from '../policy/decision.js';
import { buildEcsRecord, RECORD_FIELDS, type EcsRecord } from './ecs.js';

/**
 * A hint that arrives after a flow's record was written is not lost: it produces a follow-up record that
 * repeats the flow's facts with the process now known, names the record it completes (egress.followup_of),
 * and says what the policy would have decided had the process been known in time. When that would have
 * been a block (or an alert), the follow-up is an alert: the detection came late, but it came.
 *
 * The follow-up is a record of its own (docs/flow-record.md "Follow-up records"): its own `event.id` and
 * `@timestamp` (when it was written); `event.start`/`event.end`/`event.duration` are those of the flow it completes
 * (the activity it describes); what happened to the traffic (`event.action`, `event.type` allowed/denied,
 * `event.outcome`, bytes, errors) is the original's; the rule fields (`rule.id`, `egress.rules`, `tags`,
 * `event.severity`, `egress.explanation`) are those of the late evaluation — the rule that produced this record —
 * and `egress.original_rule` keeps the `rule.id` of the record it completes.
 */
export function buildFollowUpRecord(ended: Flow, attribution: Attribution, policy: PolicyView, rescore?: (flow: Flow) => void): EcsRecord {
  const late = new Flow(ended.kind, false);
  for (const [name, value] of ended.fields()) {
    if (name === '@timestamp' || name === 'event.id' || name.startsWith('process.') || name === 'egress.attribution') continue;
    // What the end of the flow and its decision wrote is recomputed for this record (finishFields).
    if (RECORD_FIELDS.has(name)) continue;
    late.set(name, value as never);
  }
  fillFromAttribution(late, attribution);
  late.set('egress.attribution', 'telemetry');
  for (const stage of STAGES) late.closeStage(stage);
  // The process facts change the features (process category, fit, first seen) and the score the policy reads.
  rescore?.(late);
  // Shadow rules are settled with the late facts too (a shadow rule on process.name sees the late process).
  const evaluated = policy.evaluate(late);
  const hypothetical = policy.settleShadow === undefined ? evaluated : policy.settleShadow(evaluated, late);

  const original = ended.decision;
  const originalVerdict = original !== null && original.status === 'final' ? original.verdict : 'block';
  late.decision = lateDecision(originalVerdict, hypothetical);
  late.outcome = ended.outcome;
  late.sourceBytes = ended.sourceBytes;
  late.destinationBytes = ended.destinationBytes;
  if (ended.errorCode !== null) late.fail(ended.errorCode, ended.errorMessage ?? '');
  const record = buildEcsRecord(late, late.startedNs);
  const event = record['event'] as Record<string, unknown>;
  // The activity this record describes is the original flow: its span, not the follow-up's.
  for (const key of ['start', 'end', 'duration'] as const) {
    const value = ended.get(`event.${key}`);
    if (value !== undefined) event[key] = value;
  }
  const egress = (record['egress'] ??= {}) as Record<string, unknown>;
  egress['followup_of'] = ended.id;
  const originalRule = ended.get('rule.id');
  if (originalRule !== undefined) egress['original_rule'] = originalRule;
  if (hypothetical.status === 'final') {
    egress['late_verdict'] = hypothetical.verdict;
    if (hypothetical.ruleId !== null) egress['late_rule'] = hypothetical.ruleId;
    const missedBlock = hypothetical.verdict === 'block' && originalVerdict === 'allow';
    if (missedBlock || hypothetical.severity !== null) {
      event['kind'] = 'alert';
      const reasons = (egress['reasons'] as string[] | undefined) ?? [];
      egress['reasons'] = [
        ...reasons,
        missedBlock
          ? `late process hint: ${attribution.processName ?? 'the process'} would have been blocked by rule ${hypothetical.ruleId ?? ''}`
          : `late process hint: ${attribution.processName ?? 'the process'} matches an alerting rule`,
      ];
    }
  }
  return record;
}

/**
 * The decision the follow-up record shows: the verdict that really applied to the traffic, with the rules, tags,
 * severity and reasons of the late evaluation (the rule that produced the follow-up). Pending (cannot happen once
 * every stage is closed) counts as no rule.
 */
function lateDecision(verdict: 'allow' | 'block', late: Decision): Decision {
  const shadow = late.shadow === undefined ? {} : { shadow: late.shadow };
  if (late.status !== 'final') return { status: 'final', verdict, ruleId: null, matchedRuleIds: [], tags: [], severity: null, tunnel: late.tunnel, reasons: [], ...shadow };
  return { status: 'final', verdict, ruleId: late.ruleId, matchedRuleIds: late.matchedRuleIds, tags: late.tags, severity: late.severity, tunnel: late.tunnel, reasons: late.reasons, ...shadow };
}

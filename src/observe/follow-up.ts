import { Flow } from '../flow/flow.js';
import { STAGES } from '../flow/fields.js';
import type { PolicyView } from '../flow/pipeline.js';
import { fillFromAttribution } from '../enrich/attribution.js';
import type { Attribution } from '../enrich/hint-store.js';
import { buildEcsRecord, type EcsRecord } from './ecs.js';

/**
 * A hint that arrives after a flow's record was written is not lost: it produces a follow-up record that
 * repeats the flow's facts with the process now known, names the record it completes (egress.followup_of),
 * and says what the policy would have decided had the process been known in time. When that would have
 * been a block (or an alert), the follow-up is an alert: the detection came late, but it came.
 */
export function buildFollowUpRecord(ended: Flow, attribution: Attribution, policy: PolicyView, rescore?: (flow: Flow) => void): EcsRecord {
  const late = new Flow(ended.kind, false);
  for (const [name, value] of ended.fieldMap()) {
    if (name === '@timestamp' || name === 'event.id' || name.startsWith('process.') || name === 'egress.attribution') continue;
    late.set(name, value as never);
  }
  fillFromAttribution(late, attribution);
  late.set('egress.attribution', 'telemetry');
  for (const stage of STAGES) late.closeStage(stage);
  // The process facts change the features (process category, fit, first seen) and the score the policy reads.
  rescore?.(late);
  const hypothetical = policy.evaluate(late);

  const original = ended.decision;
  late.decision = original;
  late.outcome = ended.outcome;
  late.sourceBytes = ended.sourceBytes;
  late.destinationBytes = ended.destinationBytes;
  if (ended.errorCode !== null) late.fail(ended.errorCode, ended.errorMessage ?? '');
  const record = buildEcsRecord(late, late.startedNs + ended.elapsedNs());
  const event = record['event'] as Record<string, unknown>;
  const egress = (record['egress'] ??= {}) as Record<string, unknown>;
  egress['followup_of'] = ended.id;
  const originalVerdict = original !== null && original.status === 'final' ? original.verdict : 'block';
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

import type { Flow } from '../flow/flow.js';
import { buildEcsRecord } from './ecs.js';
import type { FlowLog } from './flow-log.js';
import { label, type AttributionLabel, type Metrics, type ProtocolLabel } from './metrics.js';

const PROTOCOLS: ReadonlySet<string> = new Set<ProtocolLabel>(['http', 'tls', 'dns', 'unknown']);
const ATTRIBUTIONS: ReadonlySet<string> = new Set<AttributionLabel>(['telemetry', 'header', 'none']);

/** The end of every flow: one ECS record to the flow log and its counts in the metrics. */
export function createFlowRecorder(log: FlowLog, metrics: Metrics): (flow: Flow) => void {
  return (flow) => {
    const endNs = process.hrtime.bigint();
    log.write(buildEcsRecord(flow, endNs));

    const decision = flow.decision;
    const protocol = flow.get('network.protocol') ?? 'unknown';
    const action = decision !== null && decision.status === 'final' ? decision.verdict : 'block';
    label.flow(metrics, action, PROTOCOLS.has(protocol) ? (protocol as ProtocolLabel) : 'unknown');
    if (decision !== null) {
      for (const id of decision.matchedRuleIds) metrics.ruleMatches.inc({ rule: id });
      // Built-in decisions (internal destination, client ACL …) count like rules so they show on dashboards.
      if (decision.status === 'final' && decision.ruleId !== null && !decision.matchedRuleIds.includes(decision.ruleId)) {
        metrics.ruleMatches.inc({ rule: decision.ruleId });
      }
    }
    const attribution = flow.get('egress.attribution');
    if (attribution !== undefined && ATTRIBUTIONS.has(attribution)) label.attributed(metrics, attribution as AttributionLabel);
    if (flow.errorCode !== null) label.error(metrics, flow.errorCode);
    if (flow.sourceBytes > 0) label.bytes(metrics, 'source', flow.sourceBytes);
    if (flow.destinationBytes > 0) label.bytes(metrics, 'destination', flow.destinationBytes);
    metrics.flowDuration.observe({ protocol: PROTOCOLS.has(protocol) ? protocol : 'unknown' }, Number(endNs - flow.startedNs) / 1e9);
    metrics.activeFlows.dec();
  };
}

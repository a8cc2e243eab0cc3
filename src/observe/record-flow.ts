import type { Flow } from '../flow/flow.js';
import { serializeEcsRecord } from './ecs.js';
import type { FlowLog } from './flow-log.js';
import { label, type AttributionLabel, type Metrics, type ProtocolLabel } from './metrics.js';

const PROTOCOLS: ReadonlySet<string> = new Set<ProtocolLabel>(['http', 'tls', 'dns', 'unknown']);
const ATTRIBUTIONS: ReadonlySet<string> = new Set<AttributionLabel>(['telemetry', 'header', 'none']);

/** The end of every flow: one ECS record to the flow log and its counts in the metrics. */
export function createFlowRecorder(log: FlowLog, metrics: Metrics): (flow: Flow) => void {
  // Labelled children are looked up once per label set, not hashed again on every flow.
  const flowCounters = new Map<string, { inc(): void }>();
  const ruleCounters = new Map<string, { inc(): void }>();
  const countFlow = (action: 'allow' | 'block', protocol: ProtocolLabel): void => {
    const key = `${action}|${protocol}`;
    let child = flowCounters.get(key);
    if (child === undefined) {
      child = metrics.flows.labels({ action, protocol });
      flowCounters.set(key, child);
    }
    child.inc();
  };
  const countRule = (rule: string): void => {
    let child = ruleCounters.get(rule);
    if (child === undefined) {
      // Bounded by the rule ids of the policies loaded since start (operator-controlled).
      child = metrics.ruleMatches.labels({ rule });
      ruleCounters.set(rule, child);
    }
    child.inc();
  };
  return (flow) => {
    const endNs = process.hrtime.bigint();
    log.write(serializeEcsRecord(flow, endNs));

    const decision = flow.decision;
    const protocol = flow.get('network.protocol') ?? 'unknown';
    const action = decision !== null && decision.status === 'final' ? decision.verdict : 'block';
    countFlow(action, PROTOCOLS.has(protocol) ? (protocol as ProtocolLabel) : 'unknown');
    if (decision !== null) {
      for (const id of decision.matchedRuleIds) countRule(id);
      // Built-in decisions (internal destination, client ACL …) count like rules so they show on dashboards.
      if (decision.status === 'final' && decision.ruleId !== null && !decision.matchedRuleIds.includes(decision.ruleId)) {
        countRule(decision.ruleId);
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

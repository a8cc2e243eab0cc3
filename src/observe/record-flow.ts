import type { Flow } from '../flow/flow.js';
import { serializeEcsRecord } from './ecs.js';
import type { FlowLog } from './flow-log.js';
import { createRuleMatchCounter, keptChildren, perFlowChild, PROTOCOLS } from './metrics.js';
import type { AttributionLabel, Metrics, TlsTunnelLabel } from './metrics.js';

const ATTRIBUTIONS: ReadonlySet<string> = new Set<AttributionLabel>(['telemetry', 'header', 'none']);

/**
 * The end of every flow: one ECS record to the flow log and its counts in the metrics; then `afterRecord` hears
 * of it with the record's text (coverage, the console, the late-hint watch: src/cli/start.ts).
 */
export function createFlowRecorder(log: FlowLog, metrics: Metrics, afterRecord?: (flow: Flow, line: string) => void): (flow: Flow) => void {
  const flowCounter = keptChildren((key) => {
    const [action, protocol] = key.split('|') as [string, string];
    return perFlowChild(metrics.flows, { action, protocol });
  });
  // Live and shadow rule matches, and the built-in rule that decided (internal destination, client ACL …).
  const countRules = createRuleMatchCounter(metrics);
  const attributed = keptChildren((method) => perFlowChild(metrics.attributedFlows, { method }));
  const alerts = keptChildren((key) => {
    const [severity, action] = key.split('|') as [string, string];
    return perFlowChild(metrics.alerts, { severity, action });
  });
  const errors = keptChildren((code) => perFlowChild(metrics.errors, { code }));
  const bytes = keptChildren((direction) => perFlowChild(metrics.bytes, { direction }));
  const duration = keptChildren((protocol) => metrics.flowDuration.labels({ protocol }));
  const tunnels = keptChildren((mode) => perFlowChild(metrics.tlsTunnels, { mode }));
  const verifications = keptChildren((result) => perFlowChild(metrics.tlsVerifications, { result }));
  return (flow) => {
    const endNs = process.hrtime.bigint();
    const line = serializeEcsRecord(flow, endNs);
    log.write(line);

    const decision = flow.decision;
    const raw = flow.get('network.protocol') ?? 'unknown';
    const protocol = PROTOCOLS.has(raw) ? raw : 'unknown';
    const action = decision !== null && decision.status === 'final' ? decision.verdict : 'block';
    flowCounter(`${action}|${protocol}`).inc();
    if (decision !== null) {
      countRules(decision);
      if (decision.severity !== null) alerts(`${decision.severity}|${action}`).inc();
    }
    const attribution = flow.get('egress.attribution');
    if (attribution !== undefined && ATTRIBUTIONS.has(attribution)) attributed(attribution).inc();
    if (flow.errorCode !== null) errors(flow.errorCode).inc();
    if (flow.sourceBytes > 0) bytes('source').inc(flow.sourceBytes);
    if (flow.destinationBytes > 0) bytes('destination').inc(flow.destinationBytes);
    duration(protocol).observe(Number(endNs - flow.startedNs) / 1e9);
    const tunnel = flow.get('egress.tunnel');
    if (tunnel !== undefined) tunnels(tunnelMode(tunnel, flow)).inc();
    else {
      const verification = flow.get('egress.tls.verification');
      if (verification === 'ok' || verification === 'failed') verifications(verification).inc();
    }
    metrics.activeFlows.dec();
    afterRecord?.(flow, line);
  };
}

/** The egress_tls_tunnels_total label of a tunnel's record. */
function tunnelMode(tunnel: string, flow: Flow): TlsTunnelLabel {
  if (tunnel === 'bump') return flow.errorCode === 'TLS_CLIENT_REJECTED' ? 'client_rejected' : 'bump';
  return flow.get('egress.tunnel_reason') === 'pinned client, spliced' ? 'pinned_splice' : 'splice';
}

import type { Config, HostPort } from '../config/schema.js';
import { Pipeline } from '../flow/pipeline.js';
import type { HintSource } from '../enrich/hints.js';
import { createAddressClassifier } from '../net/address-class.js';
import { createResolver, type DestinationResolver } from '../net/resolver.js';
import type { FlowLog } from '../observe/flow-log.js';
import type { Metrics } from '../observe/metrics.js';
import { createFlowRecorder } from '../observe/record-flow.js';
import { createPolicyView } from '../policy/evaluate.js';
import type { PolicyStore } from '../policy/policy-store.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { defaultScorers } from '../scoring/features.js';

function serverString(s: HostPort): string {
  return s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

/** The pipeline with its parts: resolver, address classes, enrichers, scorers, and the flow recorder. */
export function createPipeline(
  config: Config,
  deps: { policy: PolicyStore; hints: HintSource; metrics: Metrics; flowLog: FlowLog },
): { pipeline: Pipeline; resolver: DestinationResolver } {
  // SPEC: resolver.servers, else dns.upstream, else /etc/resolv.conf — never the OS resolver.
  const servers = config.resolver.servers.length > 0 ? config.resolver.servers : config.dns.upstream;
  const resolver = createResolver({
    servers: servers.map(serverString),
    timeoutMs: config.resolver.timeout,
    cacheSize: config.resolver.cache_size,
    maxTtlMs: config.resolver.max_ttl,
  });
  // The compiled view is rebuilt only when the store swaps policies, not per flow.
  let viewOf: CompiledPolicy | null = null;
  let view = createPolicyView(deps.policy.current());
  const policyView = () => {
    const current = deps.policy.current();
    if (current !== viewOf) {
      viewOf = current;
      view = createPolicyView(current);
    }
    return view;
  };
  const pipeline = new Pipeline({
    policy: policyView,
    resolver,
    addresses: createAddressClassifier(config.network.internal),
    hints: deps.hints,
    hintWaitMs: config.policy.hint_wait,
    enrichers: [],
    scorers: defaultScorers,
    observe: createFlowRecorder(deps.flowLog, deps.metrics),
    onOpen: () => deps.metrics.activeFlows.inc(),
    onDecided: (flow) => deps.metrics.decisionLatency.observe(Number(flow.elapsedNs()) / 1e9),
  });
  return { pipeline, resolver };
}

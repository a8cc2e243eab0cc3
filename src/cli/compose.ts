import type { Config, HostPort } from '../config/schema.js';
import type { Flow } from '../flow/flow.js';
import { Pipeline } from '../flow/pipeline.js';
import type { HintSource } from '../enrich/hints.js';
import { createDestinationGuard, localInterfaceAddresses } from '../net/address-class.js';
import { createResolver, type DestinationResolver } from '../net/resolver.js';
import type { FlowLog } from '../observe/flow-log.js';
import { createScoreObserver, type Metrics } from '../observe/metrics.js';
import { createFlowRecorder } from '../observe/record-flow.js';
import { createPolicyView } from '../policy/evaluate.js';
import type { PolicyStore } from '../policy/policy-store.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { createDetection, type Detection } from '../scoring/detection.js';
import { createDnsMemory, type DnsMemory } from '../enrich/dns-memory.js';
import { createDnsSignals, type DnsSignals } from '../scoring/dns-signals.js';

function serverString(s: HostPort): string {
  return s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

/** The pipeline with its parts: resolver, address classes, enrichers, scorers, and the flow recorder. */
export async function createPipeline(
  config: Config,
  deps: {
    policy: PolicyStore;
    hints: HintSource;
    metrics: Metrics;
    flowLog: FlowLog;
    /** Hears of every record once it is written and counted, with its text. */
    afterRecord?: (flow: Flow, line: string) => void;
  },
): Promise<{ pipeline: Pipeline; resolver: DestinationResolver; dnsMemory: DnsMemory; dnsSignals: DnsSignals; detection: Detection }> {
  // The name↔IP memory is fed by the DNS forwarder and by the proxy's own lookups (issue 5); its enricher
  // names bare-IP destinations at the connect and http-request stages.
  const dnsMemory = createDnsMemory({
    maxAddresses: config.dns.memory.size,
    maxClientAddresses: config.dns.memory.size,
    ttlMs: config.dns.memory.ttl,
    clientAnswers: config.dns.listen !== null,
  });
  const dnsSignals = createDnsSignals({
    windowMs: config.dns.signals.window,
    uniqueSubdomains: config.dns.signals.unique_subdomains,
    burstWindowMs: config.dns.signals.burst_window,
    txtQueries: config.dns.signals.txt_queries,
    nxdomainAnswers: config.dns.signals.nxdomain,
  });
  deps.metrics.dnsTables.set('addresses', () => dnsMemory.sizes().addresses);
  deps.metrics.dnsTables.set('client_addresses', () => dnsMemory.sizes().clientAddresses);
  deps.metrics.dnsTables.set('signal_clients', () => dnsSignals.sizes().clients);
  deps.metrics.dnsTables.set('signal_domains', () => dnsSignals.sizes().pairs);
  // SPEC: resolver.servers, else dns.upstream, else /etc/resolv.conf — never the OS resolver.
  const servers = config.resolver.servers.length > 0 ? config.resolver.servers : config.dns.upstream;
  const resolver = createResolver({
    servers: servers.map(serverString),
    timeoutMs: config.resolver.timeout,
    cacheSize: config.resolver.cache_size,
    maxTtlMs: config.resolver.max_ttl,
    onAnswer: (host, addresses) => dnsMemory.rememberResolved(host, addresses),
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
  // The detection engine reads its data files and opens its stores here, once (src/scoring/detection.ts).
  const detection = await createDetection(config, {
    weights: () => policyView().weights,
    dnsScorers: dnsSignals.scorers,
    onSignals: createScoreObserver(deps.metrics),
  });
  deps.metrics.detectionStats.beaconCandidates = detection.beacons === null ? null : () => detection.beacons?.candidates() ?? 0;
  deps.metrics.detectionStats.baselineEntries = detection.baseline === null ? null : () => detection.baseline?.sizes().entries ?? 0;
  const pipeline = new Pipeline({
    policy: policyView,
    resolver,
    addresses: createDestinationGuard({
      internal: config.network.internal,
      allowLoopback: config.network.allow_loopback,
      localAddresses: localInterfaceAddresses(),
    }),
    hints: deps.hints,
    hintWaitMs: config.policy.hint_wait,
    enrichers: [dnsMemory.enricher, dnsSignals.enricher],
    destinationEnrichers: detection.destinationEnrichers,
    scoring: detection.scoring,
    observe: createFlowRecorder(deps.flowLog, deps.metrics, deps.afterRecord),
    onOpen: () => deps.metrics.activeFlows.inc(),
    onDecided: (flow) => deps.metrics.decisionLatency.observe(Number(flow.elapsedNs()) / 1e9),
  });
  return { pipeline, resolver, dnsMemory, dnsSignals, detection };
}


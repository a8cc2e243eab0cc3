import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorCode } from '../errors.js';
import type { Flow } from '../flow/flow.js';
import type { SignalName } from '../scoring/signals.js';

/**
 * Every metric, declared once. Label values are closed unions, so a domain, an IP or a process name can
 * never become a label (prom-client: 10k label values made one scrape block for 610 ms). Rule ids are
 * bounded by the policy files the operator writes.
 *
 * With `proxy.workers` > 1 a scrape is the sum over the processes (prom-client AggregatorRegistry,
 * src/cluster/supervise.ts), except where a metric names another `aggregator`: state every worker holds a copy
 * of (the hint store, fanned out to every worker; the DNS name-IP memory; the policy in force; reload counts,
 * since every worker reloads) is aggregated with `max`, so that two workers do not report twice the hints.
 */
export type ActionLabel = 'allow' | 'block';
export type ProtocolLabel = 'http' | 'tls' | 'dns' | 'unknown';
export type HintResultLabel = 'accepted' | 'rejected';
export type AttributionLabel = 'telemetry' | 'header' | 'none';
export type DnsActionLabel = 'allow' | 'block' | 'error';
export type ReloadResultLabel = 'success' | 'failure';
export type DirectionLabel = 'source' | 'destination';
export type HintStoreKindLabel = 'network' | 'process' | 'dns' | 'managed';
export type DnsTransportLabel = 'udp' | 'tcp';
export type DnsUpstreamOutcomeLabel = 'answer' | 'timeout' | 'error';
export type DnsMalformedReplyLabel = 'formerr' | 'badvers' | 'dropped';
export type DnsUpstreamDropLabel = 'unknown_id' | 'wrong_source' | 'wrong_question' | 'malformed';
export type DnsTableLabel = 'addresses' | 'client_addresses' | 'signal_clients' | 'signal_domains' | 'cache';
export type DnsCacheResultLabel = 'hit' | 'miss';
export type TlsTunnelLabel = 'bump' | 'splice' | 'pinned_splice' | 'client_rejected';
export type TlsVerificationLabel = 'ok' | 'failed';
export type LeafLookupLabel = 'hit' | 'mint';
export type WorkerStateLabel = 'starting' | 'up' | 'stopping' | 'restarting' | 'abandoned';

export interface Metrics {
  readonly registry: Registry;
  readonly flows: Counter<'action' | 'protocol'>;
  readonly ruleMatches: Counter<'rule'>;
  readonly activeFlows: Gauge;
  readonly hints: Counter<'result'>;
  readonly attributedFlows: Counter<'method'>;
  readonly hintStoreEntries: Gauge<'kind'>;
  readonly hintStoreEvictions: Counter;
  readonly hintCorrelationLag: Histogram;
  readonly dnsQueries: Counter<'action'>;
  readonly policyReloads: Counter<'result'>;
  readonly policyInfo: Gauge<'sha256'>;
  readonly flowDuration: Histogram<'protocol'>;
  readonly decisionLatency: Histogram;
  readonly bytes: Counter<'direction'>;
  readonly errors: Counter<'code'>;
  readonly flowLogDropped: Counter;
  readonly dnsUpstreamLatency: Histogram<'transport' | 'outcome'>;
  readonly dnsMalformed: Counter<'transport' | 'reply'>;
  readonly dnsUpstreamDropped: Counter<'reason'>;
  readonly dnsCacheLookups: Counter<'result'>;
  readonly dnsTableEntries: Gauge<'table'>;
  /** Sizes read at each scrape for egress_dns_memory_entries (set by the composition root). */
  readonly dnsTables: Map<DnsTableLabel, () => number>;
  readonly score: Histogram<'protocol'>;
  readonly reasons: Counter<'reason'>;
  readonly beaconCandidates: Gauge;
  readonly baselineEntries: Gauge;
  readonly tlsTunnels: Counter<'mode'>;
  readonly tlsVerifications: Counter<'result'>;
  readonly leafLookups: Counter<'result'>;
  /** Read at each scrape for egress_tls_leaf_lookups_total (set by the composition root when a CA is loaded). */
  readonly leafStats: { read: (() => { readonly mints: number; readonly hits: number }) | null };
  /** Read at each scrape for the detection gauges (set by the composition root; null: scoring off). */
  readonly detectionStats: { beaconCandidates: (() => number) | null; baselineEntries: (() => number) | null };
  /** Read at each scrape for egress_hint_store_entries / _evictions_total (set by the composition root). */
  readonly hintStoreStats: { sizes: (() => Readonly<Record<HintStoreKindLabel, number>>) | null; evictions: (() => number) | null };
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'egress_process_' });
  const registers = [registry];
  const dnsTables = new Map<DnsTableLabel, () => number>();
  const hintStoreStats: Metrics['hintStoreStats'] = { sizes: null, evictions: null };
  const detectionStats: Metrics['detectionStats'] = { beaconCandidates: null, baselineEntries: null };
  let evictionsSeen = 0;
  const leafStats: Metrics['leafStats'] = { read: null };
  const leafSeen = { hit: 0, mint: 0 };
  return {
    registry,
    flows: new Counter({ name: 'egress_flows_total', help: 'Flows ended, by decision and protocol', labelNames: ['action', 'protocol'], registers }),
    ruleMatches: new Counter({ name: 'egress_rule_matches_total', help: 'Policy rule matches, by rule id', labelNames: ['rule'], registers }),
    activeFlows: new Gauge({ name: 'egress_active_flows', help: 'Flows in progress', registers }),
    hints: new Counter({ name: 'egress_hints_total', help: 'Endpoint process hint events received, by result', labelNames: ['result'], registers }),
    attributedFlows: new Counter({ name: 'egress_attributed_flows_total', help: 'Flows by attribution method', labelNames: ['method'], registers }),
    hintStoreEntries: new Gauge({
      name: 'egress_hint_store_entries',
      help: 'Entries in the hint store, by index',
      labelNames: ['kind'],
      registers,
      aggregator: 'max',
      collect() {
        const sizes = hintStoreStats.sizes?.();
        if (sizes !== undefined) for (const kind of Object.keys(sizes) as HintStoreKindLabel[]) this.set({ kind }, sizes[kind]);
      },
    }),
    hintStoreEvictions: new Counter({
      name: 'egress_hint_store_evictions_total',
      help: 'Hint store entries dropped because a cap was reached (TTL expiry not counted)',
      registers,
      aggregator: 'max',
      collect() {
        const total = hintStoreStats.evictions?.() ?? evictionsSeen;
        if (total > evictionsSeen) this.inc(total - evictionsSeen);
        evictionsSeen = total;
      },
    }),
    hintCorrelationLag: new Histogram({
      name: 'egress_hint_correlation_lag_seconds',
      help: 'Telemetry event time minus flow start, for attributed flows (negative: the event is older than the flow)',
      // Signed: Sysmon's clock and batching put the event before or after the connection; ±120 s is the window.
      buckets: [-120, -30, -10, -1, -0.1, 0, 0.1, 1, 10, 30, 120],
      registers,
    }),
    dnsQueries: new Counter({ name: 'egress_dns_queries_total', help: 'DNS queries answered, by decision', labelNames: ['action'], registers }),
    policyReloads: new Counter({ name: 'egress_policy_reloads_total', help: 'Policy loads and reloads, by result', labelNames: ['result'], registers, aggregator: 'max' }),
    policyInfo: new Gauge({ name: 'egress_policy_info', help: 'The policy in force (value 1), by the sha256 of its files', labelNames: ['sha256'], registers, aggregator: 'max' }),
    flowDuration: new Histogram({
      name: 'egress_flow_duration_seconds',
      help: 'Flow duration from accept to record, by protocol',
      labelNames: ['protocol'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers,
    }),
    decisionLatency: new Histogram({
      name: 'egress_decision_seconds',
      help: 'Time from flow start to the final policy decision (includes resolution and hint waits)',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2],
      registers,
    }),
    bytes: new Counter({ name: 'egress_bytes_total', help: 'Bytes relayed, by who sent them', labelNames: ['direction'], registers }),
    errors: new Counter({ name: 'egress_flow_errors_total', help: 'Flows that ended in an error, by error code', labelNames: ['code'], registers }),
    flowLogDropped: new Counter({ name: 'egress_flow_log_dropped_total', help: 'Flow records that could not be written', registers }),
    dnsUpstreamLatency: new Histogram({
      name: 'egress_dns_upstream_seconds',
      help: 'DNS forwarder upstream exchanges, by transport and outcome',
      labelNames: ['transport', 'outcome'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    dnsMalformed: new Counter({ name: 'egress_dns_malformed_total', help: 'DNS messages from clients that were not valid queries, by transport and what was sent back', labelNames: ['transport', 'reply'], registers }),
    dnsCacheLookups: new Counter({ name: 'egress_dns_cache_lookups_total', help: 'DNS answer cache lookups (dns.cache), by result', labelNames: ['result'], registers }),
    dnsUpstreamDropped: new Counter({ name: 'egress_dns_upstream_dropped_total', help: 'Upstream DNS datagrams not taken as an answer (spoofed, late or mismatched), by reason', labelNames: ['reason'], registers }),
    dnsTableEntries: new Gauge({
      name: 'egress_dns_memory_entries',
      help: 'Entries held by the DNS name-IP memory and the DNS signal counters, by table',
      labelNames: ['table'],
      registers,
      // Per process; the name-IP tables are shared between workers, so the fullest one is the one to watch.
      aggregator: 'max',
      collect() {
        for (const [table, size] of dnsTables) this.set({ table }, size());
      },
    }),
    score: new Histogram({
      name: 'egress_score',
      help: 'egress.score of ended flows (docs/scoring.md), by protocol',
      labelNames: ['protocol'],
      buckets: [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
      registers,
    }),
    // The label is a SignalName: a closed set declared in src/scoring/signals.ts.
    reasons: new Counter({ name: 'egress_reasons_total', help: 'Signals that raised the score of ended flows, by signal name (docs/scoring.md)', labelNames: ['reason'], registers }),
    beaconCandidates: new Gauge({
      name: 'egress_beacon_candidates',
      help: 'Host/process/destination keys whose beacon score is at least 0.8',
      registers,
      collect() {
        if (detectionStats.beaconCandidates !== null) this.set(detectionStats.beaconCandidates());
      },
    }),
    baselineEntries: new Gauge({
      name: 'egress_baseline_entries',
      help: 'Entries held in memory by the baseline store (process/host/destination counters)',
      registers,
      collect() {
        if (detectionStats.baselineEntries !== null) this.set(detectionStats.baselineEntries());
      },
    }),
    tlsTunnels: new Counter({
      name: 'egress_tls_tunnels_total',
      help: 'Allowed tunnels by what the proxy did: bump, splice, pinned_splice (a bump rule matched, the client had refused our certificate), client_rejected (the client refused the minted certificate)',
      labelNames: ['mode'],
      registers,
    }),
    tlsVerifications: new Counter({
      name: 'egress_tls_upstream_verifications_total',
      help: 'Requests inside bumped tunnels by the verification of the destination certificate (ok, failed)',
      labelNames: ['result'],
      registers,
    }),
    leafLookups: new Counter({
      name: 'egress_tls_leaf_lookups_total',
      help: 'Interception certificates asked for, by result: hit (cached) or mint (a new leaf signed)',
      labelNames: ['result'],
      registers,
      collect() {
        const stats = leafStats.read?.();
        if (stats === undefined) return;
        if (stats.hits > leafSeen.hit) this.inc({ result: 'hit' }, stats.hits - leafSeen.hit);
        if (stats.mints > leafSeen.mint) this.inc({ result: 'mint' }, stats.mints - leafSeen.mint);
        leafSeen.hit = stats.hits;
        leafSeen.mint = stats.mints;
      },
    }),
    leafStats,
    detectionStats,
    dnsTables,
    hintStoreStats,
  };
}

const PROTOCOL_LABELS: ReadonlySet<string> = new Set<ProtocolLabel>(['http', 'tls', 'dns', 'unknown']);

/**
 * A finished flow's score and the signals that made it (labels: closed sets only). Labelled children are looked
 * up once per label value and kept (prom-client hashes the label set on every call otherwise).
 */
export function createScoreObserver(m: Metrics): (flow: Flow, signals: readonly SignalName[]) => void {
  const histograms = new Map<string, { observe(value: number): void }>();
  const counters = new Map<string, { inc(): void }>();
  return (flow, signals) => {
    const raw = flow.get('network.protocol') ?? 'unknown';
    const protocol = PROTOCOL_LABELS.has(raw) ? raw : 'unknown';
    let histogram = histograms.get(protocol);
    if (histogram === undefined) {
      histogram = m.score.labels({ protocol });
      histograms.set(protocol, histogram);
    }
    histogram.observe(flow.get('egress.score') ?? 0);
    for (const reason of signals) {
      let counter = counters.get(reason);
      if (counter === undefined) {
        counter = m.reasons.labels({ reason });
        counters.set(reason, counter);
      }
      counter.inc();
    }
  };
}

/** Typed label helpers: the only way the code increments labelled counters. */
export const label = {
  flow: (m: Metrics, action: ActionLabel, protocol: ProtocolLabel): void => m.flows.inc({ action, protocol }),
  hint: (m: Metrics, result: HintResultLabel, n = 1): void => m.hints.inc({ result }, n),
  attributed: (m: Metrics, method: AttributionLabel): void => m.attributedFlows.inc({ method }),
  dns: (m: Metrics, action: DnsActionLabel): void => m.dnsQueries.inc({ action }),
  reload: (m: Metrics, result: ReloadResultLabel): void => m.policyReloads.inc({ result }),
  error: (m: Metrics, code: ErrorCode): void => m.errors.inc({ code }),
  bytes: (m: Metrics, direction: DirectionLabel, n: number): void => m.bytes.inc({ direction }, n),
  dnsUpstream: (m: Metrics, transport: DnsTransportLabel, outcome: DnsUpstreamOutcomeLabel, seconds: number): void =>
    m.dnsUpstreamLatency.observe({ transport, outcome }, seconds),
  dnsMalformed: (m: Metrics, transport: DnsTransportLabel, reply: DnsMalformedReplyLabel): void => m.dnsMalformed.inc({ transport, reply }),
  dnsUpstreamDropped: (m: Metrics, reason: DnsUpstreamDropLabel): void => m.dnsUpstreamDropped.inc({ reason }),
  dnsCache: (m: Metrics, result: DnsCacheResultLabel): void => m.dnsCacheLookups.inc({ result }),
} as const;

/** Point egress_policy_info at the policy now in force (one series at a time). */
export function setPolicyInfo(m: Metrics, sha256: string): void {
  m.policyInfo.reset();
  m.policyInfo.set({ sha256 }, 1);
}

/** Metrics of the cluster primary (`proxy.workers` > 1); registered on the primary's own registry only. */
export interface ClusterMetrics {
  readonly workers: Gauge<'state'>;
  readonly workerRestarts: Counter;
}

export function createClusterMetrics(registry: Registry): ClusterMetrics {
  const registers = [registry];
  return {
    workers: new Gauge({ name: 'egress_workers', help: 'Worker processes (proxy.workers), by state', labelNames: ['state'], registers }),
    workerRestarts: new Counter({ name: 'egress_worker_restarts_total', help: 'Worker processes started again after they crashed', registers }),
  };
}

/** Set egress_workers from the count of workers in each state. */
export function setWorkerStates(m: ClusterMetrics, counts: Readonly<Record<WorkerStateLabel, number>>): void {
  for (const state of Object.keys(counts) as WorkerStateLabel[]) m.workers.set({ state }, counts[state]);
}

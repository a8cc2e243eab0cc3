import { readFileSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import type { Flow } from '../flow/flow.js';
import type { Decision, RuleMode } from '../policy/decision.js';
import { SIGNAL_NAMES, type SignalName } from '../scoring/signals.js';
import { BucketHistogram } from './bucket-histogram.js';

/**
 * Every metric, declared once. Label values are closed unions, so a domain, an IP or a process name can
 * never become a label (prom-client: 10k label values made one scrape block for 610 ms). Rule ids are
 * bounded by the policy files the operator writes.
 *
 * Every series of a closed label set exists from the start, at 0 (`initialiseSeries`): Prometheus' `increase()`
 * and `rate()` need a sample before the first event, or the first failure, block or reload error never shows in
 * an alert ("Avoid missing metrics", https://prometheus.io/docs/practices/instrumentation/#avoid-missing-metrics).
 *
 * With `proxy.workers` > 1 a scrape is the sum over the processes (prom-client AggregatorRegistry,
 * src/cluster/supervise.ts), except where a metric names another `aggregator`: state every worker holds a copy
 * of (the hint store, fanned out to every worker; the DNS name-IP memory; the policy in force; reload counts,
 * since every worker reloads) is aggregated with `max`, so that two workers do not report twice the hints; the
 * last reload's success with `min`, so that one worker that kept its old policy shows.
 */
export const ACTION_LABELS = ['allow', 'block'] as const;
export type ActionLabel = (typeof ACTION_LABELS)[number];
export const PROTOCOL_LABELS = ['http', 'tls', 'dns', 'unknown'] as const;
export type ProtocolLabel = (typeof PROTOCOL_LABELS)[number];
export const HINT_RESULT_LABELS = ['accepted', 'rejected'] as const;
export type HintResultLabel = (typeof HINT_RESULT_LABELS)[number];
export const ATTRIBUTION_LABELS = ['telemetry', 'header', 'none'] as const;
export type AttributionLabel = (typeof ATTRIBUTION_LABELS)[number];
export const SEVERITY_LABELS = ['low', 'medium', 'high', 'critical'] as const;
export type SeverityLabel = (typeof SEVERITY_LABELS)[number];
export const DNS_ACTION_LABELS = ['allow', 'block', 'error'] as const;
export type DnsActionLabel = (typeof DNS_ACTION_LABELS)[number];
/** `refused`: the files compiled but would have weakened the policy in force (docs/policy.md "Reloading"). */
export const RELOAD_RESULT_LABELS = ['success', 'failure', 'refused'] as const;
export type ReloadResultLabel = (typeof RELOAD_RESULT_LABELS)[number];
export const DIRECTION_LABELS = ['source', 'destination'] as const;
export type DirectionLabel = (typeof DIRECTION_LABELS)[number];
export const HINT_STORE_KIND_LABELS = ['network', 'process', 'dns', 'managed'] as const;
export type HintStoreKindLabel = (typeof HINT_STORE_KIND_LABELS)[number];
export const DNS_TRANSPORT_LABELS = ['udp', 'tcp'] as const;
export type DnsTransportLabel = (typeof DNS_TRANSPORT_LABELS)[number];
export const DNS_UPSTREAM_OUTCOME_LABELS = ['answer', 'timeout', 'error'] as const;
export type DnsUpstreamOutcomeLabel = (typeof DNS_UPSTREAM_OUTCOME_LABELS)[number];
export const DNS_MALFORMED_REPLY_LABELS = ['formerr', 'badvers', 'dropped'] as const;
export type DnsMalformedReplyLabel = (typeof DNS_MALFORMED_REPLY_LABELS)[number];
export const DNS_UPSTREAM_DROP_LABELS = ['unknown_id', 'wrong_source', 'wrong_question', 'malformed'] as const;
export type DnsUpstreamDropLabel = (typeof DNS_UPSTREAM_DROP_LABELS)[number];
export const DNS_TABLE_LABELS = ['addresses', 'client_addresses', 'signal_clients', 'signal_domains', 'cache'] as const;
export type DnsTableLabel = (typeof DNS_TABLE_LABELS)[number];
export const DNS_CACHE_RESULT_LABELS = ['hit', 'miss'] as const;
export type DnsCacheResultLabel = (typeof DNS_CACHE_RESULT_LABELS)[number];
export const TLS_TUNNEL_LABELS = ['bump', 'splice', 'pinned_splice', 'client_rejected'] as const;
export type TlsTunnelLabel = (typeof TLS_TUNNEL_LABELS)[number];
export const TLS_VERIFICATION_LABELS = ['ok', 'failed'] as const;
export type TlsVerificationLabel = (typeof TLS_VERIFICATION_LABELS)[number];
export const LEAF_LOOKUP_LABELS = ['hit', 'mint'] as const;
export type LeafLookupLabel = (typeof LEAF_LOOKUP_LABELS)[number];
/** `live`: the rule decided or tagged the flow; `shadow`: a `mode: shadow` rule matched (it decided nothing). */
export const RULE_MODE_LABELS = ['live', 'shadow'] as const satisfies readonly RuleMode[];
export type RuleModeLabel = (typeof RULE_MODE_LABELS)[number];
export const WORKER_STATE_LABELS = ['starting', 'up', 'stopping', 'restarting', 'abandoned'] as const;
export type WorkerStateLabel = (typeof WORKER_STATE_LABELS)[number];

/** A counter child for the per-flow path: `perFlowChild`. */
export interface FlowCounter {
  inc(n?: number): void;
}

/** A kept child's increments not yet handed to prom-client. */
class PendingCount implements FlowCounter {
  private n = 0;
  constructor(private readonly child: { inc(n: number): void }) {}
  inc(n = 1): void {
    this.n += n;
  }
  flush(): void {
    if (this.n === 0) return;
    const n = this.n;
    this.n = 0;
    this.child.inc(n);
  }
}

/** The pending children of each per-flow counter (bounded by its label sets: one child per set used). */
const PENDING = new WeakMap<object, PendingCount[]>();

/**
 * `collect` of every counter the per-flow path increments: prom-client calls it before it reads the counter (a
 * scrape, a cluster worker's metrics for the primary, `get()`), so what it shows includes every increment made
 * before the read.
 */
function flushPending(this: Counter<string>): void {
  for (const child of PENDING.get(this) ?? []) child.flush();
}

/**
 * A counter child for the per-flow path (flows, rule matches, signals, bytes …; ~8 increments a flow): `inc` adds
 * to a plain number, handed to prom-client when the counter is read (`flushPending`). prom-client's own children
 * hash their label set again on every `inc` (a string built and a map lookup, ~170 ns) — issue 9, per-flow cost.
 * Take children once per label set and keep them (as `labels()` children were kept).
 */
export function perFlowChild<T extends string>(counter: Counter<T>, labels: Partial<Record<T, string | number>>): FlowCounter {
  // A counter declared without `collect: flushPending` would never show these increments: refuse it at once.
  if ((counter as unknown as { collect?: unknown }).collect !== flushPending) throw new Error(`perFlowChild: ${String((counter as unknown as { name?: unknown }).name)} is not declared with collect: flushPending`);
  const child = new PendingCount(counter.labels(labels));
  let list = PENDING.get(counter);
  if (list === undefined) {
    list = [];
    PENDING.set(counter, list);
  }
  list.push(child);
  return child;
}

/**
 * Labelled metric children made once per label key and kept, not looked up again on every flow. Bounded by the
 * label values the code can produce (closed sets) and the rule ids of the policies loaded.
 */
export function keptChildren<C>(make: (key: string) => C): (key: string) => C {
  const children = new Map<string, C>();
  return (key) => {
    let child = children.get(key);
    if (child === undefined) {
      child = make(key);
      children.set(key, child);
    }
    return child;
  };
}

/**
 * prom-client's default collectors, kept at their standard names (process_cpu_seconds_total, nodejs_heap_*…)
 * so that stock dashboards work: no prefix. Dropped: three gauges prom-client names `*_total`, which promtool
 * rejects ("non-counter metrics should not have _total suffix"); `sum(nodejs_active_handles)` (labelled by
 * type, kept) gives the same number.
 */
const DROPPED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

/** The metrics of the policy in force, which a cluster primary (no policy of its own) drops: see `dropPolicyState`. */
const POLICY_STATE_METRICS = [
  'egress_policy_reloads_total',
  'egress_policy_info',
  'egress_policy_last_reload_success',
  'egress_policy_last_reload_timestamp_seconds',
  'egress_policy_last_reload_success_timestamp_seconds',
] as const;

/** The package version, read once when this module loads (start-up), from src/ or dist/ alike. */
function readPackageVersion(): string {
  try {
    const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    const version = (JSON.parse(text) as { version?: unknown }).version;
    return typeof version === 'string' ? version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Labels of egress_build_info: the commit comes from the build (EGRESS_COMMIT, e.g. a Docker build arg). */
export function buildInfoLabels(env: NodeJS.ProcessEnv = process.env): { version: string; node_version: string; commit: string } {
  const commit = env['EGRESS_COMMIT'];
  return { version: PACKAGE_VERSION, node_version: process.versions.node, commit: commit === undefined || commit === '' ? 'unknown' : commit };
}

export const PACKAGE_VERSION = readPackageVersion();

export interface Metrics {
  readonly registry: Registry;
  readonly flows: Counter<'action' | 'protocol'>;
  /** Flows whose record is an alert (event.kind: alert), by the highest severity of the live rules that matched. */
  readonly alerts: Counter<'severity' | 'action'>;
  readonly ruleMatches: Counter<'rule' | 'mode'>;
  readonly activeFlows: Gauge;
  readonly hints: Counter<'result'>;
  readonly attributedFlows: Counter<'method'>;
  readonly hintStoreEntries: Gauge<'kind'>;
  readonly hintStoreEvictions: Counter;
  readonly hintCorrelationLag: Histogram;
  readonly dnsQueries: Counter<'action'>;
  readonly policyReloads: Counter<'result'>;
  readonly policyInfo: Gauge<'sha256'>;
  readonly policyLastReloadSuccess: Gauge;
  readonly policyLastReloadTime: Gauge;
  readonly policyLastReloadSuccessTime: Gauge;
  readonly followUps: Counter;
  readonly buildInfo: Gauge<'version' | 'node_version' | 'commit'>;
  /** Per-flow histograms: BucketHistogram (src/observe/bucket-histogram.ts), not prom-client's. */
  readonly flowDuration: BucketHistogram<'protocol'>;
  readonly decisionLatency: BucketHistogram;
  readonly bytes: Counter<'direction'>;
  readonly errors: Counter<'code'>;
  readonly flowLogDropped: Counter;
  readonly dnsUpstreamLatency: BucketHistogram<'transport' | 'outcome'>;
  readonly dnsMalformed: Counter<'transport' | 'reply'>;
  readonly dnsUpstreamDropped: Counter<'reason'>;
  readonly dnsCacheLookups: Counter<'result'>;
  readonly dnsTableEntries: Gauge<'table'>;
  /** Sizes read at each scrape for egress_dns_memory_entries (set by the composition root). */
  readonly dnsTables: Map<DnsTableLabel, () => number>;
  readonly score: BucketHistogram<'protocol'>;
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
  if (opts.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  }
  const registers = [registry];
  const dnsTables = new Map<DnsTableLabel, () => number>();
  const hintStoreStats: Metrics['hintStoreStats'] = { sizes: null, evictions: null };
  const detectionStats: Metrics['detectionStats'] = { beaconCandidates: null, baselineEntries: null };
  let evictionsSeen = 0;
  const leafStats: Metrics['leafStats'] = { read: null };
  const leafSeen = { hit: 0, mint: 0 };
  const metrics: Metrics = {
    registry,
    flows: new Counter({ name: 'egress_flows_total', help: 'Flows ended, by decision and protocol', labelNames: ['action', 'protocol'], registers, collect: flushPending }),
    alerts: new Counter({
      name: 'egress_alerts_total',
      help: 'Flows whose record is an alert (a matched live rule has a severity), by that severity and the decision',
      labelNames: ['severity', 'action'],
      registers,
      collect: flushPending,
    }),
    ruleMatches: new Counter({
      name: 'egress_rule_matches_total',
      help: 'Flows a policy rule matched, by rule id and mode (live, or shadow: evaluated and recorded, never deciding)',
      labelNames: ['rule', 'mode'],
      registers,
      collect: flushPending,
    }),
    activeFlows: new Gauge({ name: 'egress_active_flows', help: 'Flows in progress', registers }),
    hints: new Counter({ name: 'egress_hints_total', help: 'Endpoint process hint events received, by result', labelNames: ['result'], registers }),
    // One count per flow, at its record, like egress_flows_total: sum over method = sum of egress_flows_total.
    attributedFlows: new Counter({ name: 'egress_attributed_flows_total', help: 'Flows ended, by how their process was found (follow-up records not counted)', labelNames: ['method'], registers, collect: flushPending }),
    followUps: new Counter({
      name: 'egress_followup_records_total',
      help: 'Follow-up records written: a late process hint completed a flow already recorded (not a flow: egress_flows_total counted it once)',
      registers,
    }),
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
    dnsQueries: new Counter({ name: 'egress_dns_queries_total', help: 'DNS queries answered, by decision', labelNames: ['action'], registers, collect: flushPending }),
    policyReloads: new Counter({ name: 'egress_policy_reloads_total', help: 'Policy loads and reloads, by result', labelNames: ['result'], registers, aggregator: 'max' }),
    policyInfo: new Gauge({ name: 'egress_policy_info', help: 'The policy in force (value 1), by the sha256 of its files', labelNames: ['sha256'], registers, aggregator: 'max' }),
    policyLastReloadSuccess: new Gauge({
      name: 'egress_policy_last_reload_success',
      help: 'Whether the last policy load put the files as they are in force (1) or kept the last good policy (0: failed or refused)',
      registers,
      aggregator: 'min',
    }),
    policyLastReloadTime: new Gauge({
      name: 'egress_policy_last_reload_timestamp_seconds',
      help: 'Unix time of the last policy load attempt, whatever its result',
      registers,
      aggregator: 'max',
    }),
    policyLastReloadSuccessTime: new Gauge({
      name: 'egress_policy_last_reload_success_timestamp_seconds',
      help: 'Unix time of the last policy load that put the files in force (start included)',
      registers,
      aggregator: 'min',
    }),
    buildInfo: new Gauge({
      name: 'egress_build_info',
      help: 'Always 1: the egress-inspector version, the Node.js version and the commit it was built from',
      labelNames: ['version', 'node_version', 'commit'],
      registers,
      aggregator: 'max',
    }),
    flowDuration: new BucketHistogram({
      name: 'egress_flow_duration_seconds',
      help: 'Flow duration from accept to record, by protocol',
      labelNames: ['protocol'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers,
    }),
    decisionLatency: new BucketHistogram({
      name: 'egress_decision_seconds',
      help: 'Time from flow start to the final policy decision (includes resolution and hint waits)',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2],
      registers,
    }),
    bytes: new Counter({ name: 'egress_bytes_total', help: 'Bytes relayed, by who sent them', labelNames: ['direction'], registers, collect: flushPending }),
    errors: new Counter({ name: 'egress_flow_errors_total', help: 'Flows that ended in an error, by error code', labelNames: ['code'], registers, collect: flushPending }),
    flowLogDropped: new Counter({ name: 'egress_flow_log_dropped_total', help: 'Flow records that could not be written', registers }),
    // Per DNS query: our own bucket histogram (prom-client's builds an object and hashes the labels each time).
    dnsUpstreamLatency: new BucketHistogram({
      name: 'egress_dns_upstream_seconds',
      help: 'DNS forwarder upstream exchanges, by transport and outcome',
      labelNames: ['transport', 'outcome'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    dnsMalformed: new Counter({ name: 'egress_dns_malformed_total', help: 'DNS messages from clients that were not valid queries, by transport and what was sent back', labelNames: ['transport', 'reply'], registers }),
    dnsCacheLookups: new Counter({ name: 'egress_dns_cache_lookups_total', help: 'DNS answer cache lookups (dns.cache), by result', labelNames: ['result'], registers, collect: flushPending }),
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
    score: new BucketHistogram({
      name: 'egress_score',
      help: 'egress.score of ended flows (docs/scoring.md), by protocol',
      labelNames: ['protocol'],
      buckets: [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
      registers,
    }),
    // The label is a SignalName: a closed set declared in src/scoring/signals.ts.
    reasons: new Counter({ name: 'egress_reasons_total', help: 'Signals that raised the score of ended flows, by signal name (docs/scoring.md)', labelNames: ['reason'], registers, collect: flushPending }),
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
      collect: flushPending,
    }),
    tlsVerifications: new Counter({
      name: 'egress_tls_upstream_verifications_total',
      help: 'Requests inside bumped tunnels by the verification of the destination certificate (ok, failed)',
      labelNames: ['result'],
      registers,
      collect: flushPending,
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
  metrics.buildInfo.set(buildInfoLabels(), 1);
  initialiseSeries(metrics);
  return metrics;
}

/** Every combination of two closed label sets. */
function pairs<A extends string, B extends string>(as: readonly A[], bs: readonly B[]): Array<readonly [A, B]> {
  return as.flatMap((a) => bs.map((b) => [a, b] as const));
}

/**
 * Creates every series of a closed label set at 0, so that `increase(x{result="failure"}[10m]) > 0` sees the
 * first failure (a series born at 1 has no earlier sample to increase from). Open sets (rule ids) are
 * initialised when a policy loads: `initialiseRuleSeries`.
 */
function initialiseSeries(m: Metrics): void {
  for (const [action, protocol] of pairs(ACTION_LABELS, PROTOCOL_LABELS)) m.flows.inc({ action, protocol }, 0);
  for (const [severity, action] of pairs(SEVERITY_LABELS, ACTION_LABELS)) m.alerts.inc({ severity, action }, 0);
  for (const result of HINT_RESULT_LABELS) m.hints.inc({ result }, 0);
  for (const method of ATTRIBUTION_LABELS) m.attributedFlows.inc({ method }, 0);
  for (const kind of HINT_STORE_KIND_LABELS) m.hintStoreEntries.set({ kind }, 0);
  for (const action of DNS_ACTION_LABELS) m.dnsQueries.inc({ action }, 0);
  for (const result of RELOAD_RESULT_LABELS) m.policyReloads.inc({ result }, 0);
  for (const protocol of PROTOCOL_LABELS) {
    m.flowDuration.zero({ protocol });
    m.score.zero({ protocol });
  }
  for (const direction of DIRECTION_LABELS) m.bytes.inc({ direction }, 0);
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) m.errors.inc({ code }, 0);
  for (const [transport, outcome] of pairs(DNS_TRANSPORT_LABELS, DNS_UPSTREAM_OUTCOME_LABELS)) m.dnsUpstreamLatency.zero({ transport, outcome });
  for (const [transport, reply] of pairs(DNS_TRANSPORT_LABELS, DNS_MALFORMED_REPLY_LABELS)) m.dnsMalformed.inc({ transport, reply }, 0);
  for (const reason of DNS_UPSTREAM_DROP_LABELS) m.dnsUpstreamDropped.inc({ reason }, 0);
  for (const result of DNS_CACHE_RESULT_LABELS) m.dnsCacheLookups.inc({ result }, 0);
  for (const table of DNS_TABLE_LABELS) m.dnsTableEntries.set({ table }, 0);
  for (const reason of SIGNAL_NAMES) m.reasons.inc({ reason }, 0);
  for (const mode of TLS_TUNNEL_LABELS) m.tlsTunnels.inc({ mode }, 0);
  for (const result of TLS_VERIFICATION_LABELS) m.tlsVerifications.inc({ result }, 0);
  for (const result of LEAF_LOOKUP_LABELS) m.leafLookups.inc({ result }, 0);
}

/**
 * The rule ids of a policy just loaded, at 0 in egress_rule_matches_total (a detection alert on
 * `increase(egress_rule_matches_total{rule=…}[5m]) > 0` then fires on the first match). Ids of rules a reload
 * removed stay: a counter series does not go away while the process lives.
 */
export function initialiseRuleSeries(m: Metrics, ruleIds: Iterable<string>, mode: RuleModeLabel = 'live'): void {
  for (const rule of ruleIds) m.ruleMatches.inc({ rule, mode }, 0);
}

/** Every rule of a policy just loaded at 0, live rules as `live`, `mode: shadow` rules as `shadow`. */
export function initialisePolicyRuleSeries(
  m: Metrics,
  policy: { readonly rules: readonly { readonly id: string }[]; readonly shadowRules: readonly { readonly id: string }[] },
): void {
  initialiseRuleSeries(m, policy.rules.map((rule) => rule.id), 'live');
  initialiseRuleSeries(m, policy.shadowRules.map((rule) => rule.id), 'shadow');
}

/**
 * Counts a finished flow's rule matches in egress_rule_matches_total, once per flow per rule: every matched
 * live rule, the built-in rule that decided (internal destination, client ACL …: they count like rules so
 * they show on dashboards) and every matched shadow rule. Children are made once per (rule, mode) and kept —
 * bounded by the rule ids of the policies loaded.
 */
export function createRuleMatchCounter(m: Metrics): (decision: Decision) => void {
  const live = keptChildren((rule) => perFlowChild(m.ruleMatches, { rule, mode: 'live' satisfies RuleModeLabel }));
  const shadow = keptChildren((rule) => perFlowChild(m.ruleMatches, { rule, mode: 'shadow' satisfies RuleModeLabel }));
  return (decision) => {
    for (const id of decision.matchedRuleIds) live(id).inc();
    if (decision.status === 'final' && decision.ruleId !== null && !decision.matchedRuleIds.includes(decision.ruleId)) {
      live(decision.ruleId).inc();
    }
    if (decision.shadow !== undefined) for (const match of decision.shadow) shadow(match.rule).inc();
  };
}

/**
 * A cluster primary holds no policy (its workers do): it drops its copies of the policy metrics, so that the
 * cluster's aggregate is the workers' (`min` of egress_policy_last_reload_success would read the primary's 0).
 */
export function dropPolicyState(m: Metrics): void {
  for (const name of POLICY_STATE_METRICS) m.registry.removeSingleMetric(name);
}

/** What a policy load attempt did, for the reload metrics (src/cli/start.ts). */
export function recordPolicyLoad(m: Metrics, outcome: ReloadResultLabel | 'unchanged', sha256InForce: string, nowMs = Date.now()): void {
  const now = nowMs / 1000;
  // An unchanged reload is not counted (nothing was loaded) but is a success: the files are in force.
  if (outcome !== 'unchanged') m.policyReloads.inc({ result: outcome });
  m.policyLastReloadTime.set(now);
  const inForce = outcome === 'success' || outcome === 'unchanged';
  m.policyLastReloadSuccess.set(inForce ? 1 : 0);
  if (inForce) {
    m.policyLastReloadSuccessTime.set(now);
    setPolicyInfo(m, sha256InForce);
  }
}

/** PROTOCOL_LABELS as a set: a flow's network.protocol outside it counts as `unknown`. */
export const PROTOCOLS: ReadonlySet<string> = new Set<string>(PROTOCOL_LABELS);

/**
 * A finished flow's score and the signals that made it (labels: closed sets only), children kept per label value.
 */
export function createScoreObserver(m: Metrics): (flow: Flow, signals: readonly SignalName[]) => void {
  const histograms = keptChildren((protocol) => m.score.labels({ protocol }));
  const counters = keptChildren((reason) => perFlowChild(m.reasons, { reason }));
  return (flow, signals) => {
    const raw = flow.get('network.protocol') ?? 'unknown';
    histograms(PROTOCOLS.has(raw) ? raw : 'unknown').observe(flow.get('egress.score') ?? 0);
    for (const reason of signals) counters(reason).inc();
  };
}

/** `make(m, key)` once per Metrics and key (a closed label set), then the kept child. */
function keptPerMetrics<C>(make: (m: Metrics, key: string) => C): (m: Metrics, key: string) => C {
  const byMetrics = new WeakMap<Metrics, (key: string) => C>();
  return (m, key) => {
    let children = byMetrics.get(m);
    if (children === undefined) {
      children = keptChildren((k) => make(m, k));
      byMetrics.set(m, children);
    }
    return children(key);
  };
}

const dnsQueryChild = keptPerMetrics((m, action) => perFlowChild(m.dnsQueries, { action }));
const dnsCacheChild = keptPerMetrics((m, result) => perFlowChild(m.dnsCacheLookups, { result }));

/** Typed label helpers: the only way the code increments labelled counters. */
export const label = {
  flow: (m: Metrics, action: ActionLabel, protocol: ProtocolLabel): void => m.flows.inc({ action, protocol }),
  hint: (m: Metrics, result: HintResultLabel, n = 1): void => m.hints.inc({ result }, n),
  /** A follow-up record was written (src/cli/telemetry.ts): not a flow, so not in egress_flows_total nor _attributed_. */
  followUp: (m: Metrics): void => m.followUps.inc(),
  // Per DNS query (issue 9): children made once per Metrics and label set, as the per-flow counters.
  dns: (m: Metrics, action: DnsActionLabel): void => dnsQueryChild(m, action).inc(),
  reload: (m: Metrics, result: ReloadResultLabel): void => m.policyReloads.inc({ result }),
  error: (m: Metrics, code: ErrorCode): void => m.errors.inc({ code }),
  bytes: (m: Metrics, direction: DirectionLabel, n: number): void => m.bytes.inc({ direction }, n),
  dnsUpstream: (m: Metrics, transport: DnsTransportLabel, outcome: DnsUpstreamOutcomeLabel, seconds: number): void =>
    m.dnsUpstreamLatency.observe({ transport, outcome }, seconds), // a BucketHistogram: its series are kept
  dnsMalformed: (m: Metrics, transport: DnsTransportLabel, reply: DnsMalformedReplyLabel): void => m.dnsMalformed.inc({ transport, reply }),
  dnsUpstreamDropped: (m: Metrics, reason: DnsUpstreamDropLabel): void => m.dnsUpstreamDropped.inc({ reason }),
  dnsCache: (m: Metrics, result: DnsCacheResultLabel): void => dnsCacheChild(m, result).inc(),
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
  const m: ClusterMetrics = {
    workers: new Gauge({ name: 'egress_workers', help: 'Worker processes (proxy.workers), by state', labelNames: ['state'], registers }),
    workerRestarts: new Counter({ name: 'egress_worker_restarts_total', help: 'Worker processes started again after they crashed', registers }),
  };
  for (const state of WORKER_STATE_LABELS) m.workers.set({ state }, 0);
  return m;
}

/** Set egress_workers from the count of workers in each state. */
export function setWorkerStates(m: ClusterMetrics, counts: Readonly<Record<WorkerStateLabel, number>>): void {
  for (const state of Object.keys(counts) as WorkerStateLabel[]) m.workers.set({ state }, counts[state]);
}

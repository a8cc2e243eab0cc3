import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildInfoLabels, createClusterMetrics, createMetrics, createRuleMatchCounter, createScoreObserver, dropPolicyState, label, perFlowChild, recordPolicyLoad } from '../../../src/observe/metrics.js';
import { Flow } from '../../../src/flow/flow.js';
import { aggregateMetrics } from '../../../src/cluster/supervise.js';

const HAS_PROMTOOL = existsSync('/usr/bin/promtool');

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics', () => {
  it('recordPolicyLoad: success and unchanged put the files in force; failure and refused keep the last good', async () => {
    const m = createMetrics({ defaultMetrics: false });
    recordPolicyLoad(m, 'success', 'aa', 1_000_000);
    recordPolicyLoad(m, 'refused', 'aa', 2_000_000);
    let text = await m.registry.metrics();
    expect(sample(text, 'egress_policy_reloads_total{result="success"}')).toBe(1);
    expect(sample(text, 'egress_policy_reloads_total{result="refused"}')).toBe(1);
    expect(sample(text, 'egress_policy_reloads_total{result="failure"}')).toBe(0);
    expect(sample(text, 'egress_policy_last_reload_success')).toBe(0);
    expect(sample(text, 'egress_policy_last_reload_timestamp_seconds')).toBe(2000);
    expect(sample(text, 'egress_policy_last_reload_success_timestamp_seconds')).toBe(1000);
    recordPolicyLoad(m, 'unchanged', 'aa', 3_000_000);
    text = await m.registry.metrics();
    // Unchanged bytes are not a load (not counted) but the files are in force again.
    expect(sample(text, 'egress_policy_reloads_total{result="success"}')).toBe(1);
    expect(sample(text, 'egress_policy_last_reload_success')).toBe(1);
    expect(sample(text, 'egress_policy_last_reload_success_timestamp_seconds')).toBe(3000);
    expect(text).toContain('egress_policy_info{sha256="aa"} 1');
  });

  it('a follow-up record is not a flow: it counts in egress_followup_records_total only', async () => {
    const m = createMetrics({ defaultMetrics: false });
    label.followUp(m);
    label.followUp(m);
    const text = await m.registry.metrics();
    expect(sample(text, 'egress_followup_records_total')).toBe(2);
    expect(sample(text, 'egress_attributed_flows_total{method="telemetry"}')).toBe(0);
  });

  it('egress_build_info names the version, Node.js and the commit (EGRESS_COMMIT or unknown)', () => {
    expect(buildInfoLabels({ EGRESS_COMMIT: 'abc123' })).toEqual({ version: expect.stringMatching(/^\d+\.\d+\.\d+/), node_version: process.versions.node, commit: 'abc123' });
    expect(buildInfoLabels({}).commit).toBe('unknown');
  });

  it('a cluster scrape: standard process names, the policy state of the workers only (min success), promtool-clean', async () => {
    const primary = createMetrics();
    dropPolicyState(primary);
    createClusterMetrics(primary.registry);
    const ok = createMetrics({ defaultMetrics: false });
    const kept = createMetrics({ defaultMetrics: false });
    recordPolicyLoad(ok, 'success', 'bb');
    recordPolicyLoad(kept, 'success', 'bb');
    recordPolicyLoad(kept, 'failure', 'bb');
    const { text } = await aggregateMetrics([await primary.registry.getMetricsAsJSON(), await ok.registry.getMetricsAsJSON(), await kept.registry.getMetricsAsJSON()]);
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).not.toContain('egress_process_');
    expect(sample(text, 'egress_policy_last_reload_success')).toBe(0);
    expect(sample(text, 'egress_policy_reloads_total{result="failure"}')).toBe(1);
    expect(sample(text, 'egress_workers{state="abandoned"}')).toBe(0);
    expect(text).toMatch(/^egress_build_info\{[^}]+\} 1$/m);
    if (HAS_PROMTOOL) expect(execFileSync('/usr/bin/promtool', ['check', 'metrics'], { input: text }).toString()).toBe('');
  });

  it('per-query DNS metrics: each Metrics keeps its own children, and every count shows in a scrape', async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    for (let i = 0; i < 3; i++) label.dns(a, 'allow');
    label.dns(a, 'block');
    label.dns(b, 'allow');
    label.dnsCache(a, 'hit');
    label.dnsCache(a, 'hit');
    label.dnsUpstream(a, 'udp', 'answer', 0.0003);
    label.dnsUpstream(a, 'udp', 'answer', 0.002);
    label.dnsUpstream(a, 'tcp', 'timeout', 2);
    const text = await a.registry.metrics();
    const expected: Record<string, number> = {
      'egress_dns_queries_total{action="allow"}': 3,
      'egress_dns_queries_total{action="block"}': 1,
      'egress_dns_cache_lookups_total{result="hit"}': 2,
      'egress_dns_upstream_seconds_count{transport="udp",outcome="answer"}': 2,
      'egress_dns_upstream_seconds_bucket{le="0.0005",transport="udp",outcome="answer"}': 1,
      'egress_dns_upstream_seconds_count{transport="tcp",outcome="timeout"}': 1,
    };
    for (const [series, value] of Object.entries(expected)) expect(sample(text, series), series).toBe(value);
    expect(sample(await b.registry.metrics(), 'egress_dns_queries_total{action="allow"}')).toBe(1);
  });

  it('per-flow counter children: every increment before a read shows in it, once, in scrapes, get() and a cluster aggregate', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const allowHttp = perFlowChild(m.flows, { action: 'allow', protocol: 'http' });
    const blockTls = perFlowChild(m.flows, { action: 'block', protocol: 'tls' });
    const sent = perFlowChild(m.bytes, { direction: 'source' });
    for (let i = 0; i < 5; i++) allowHttp.inc();
    blockTls.inc();
    sent.inc(1500);
    m.flows.inc({ action: 'allow', protocol: 'http' }); // the direct path still adds to the same series
    let text = await m.registry.metrics();
    expect(sample(text, 'egress_flows_total{action="allow",protocol="http"}')).toBe(6);
    expect(sample(text, 'egress_flows_total{action="block",protocol="tls"}')).toBe(1);
    expect(sample(text, 'egress_bytes_total{direction="source"}')).toBe(1500);
    // A second read without new increments counts nothing twice; new ones add up.
    expect(sample(await m.registry.metrics(), 'egress_flows_total{action="allow",protocol="http"}')).toBe(6);
    allowHttp.inc();
    const viaGet = (await m.flows.get()).values.find((v) => v.labels.action === 'allow' && v.labels.protocol === 'http');
    expect(viaGet?.value).toBe(7);
    // Rule matches and a worker's metrics as the cluster primary reads them (getMetricsAsJSON).
    const countRules = createRuleMatchCounter(m);
    countRules({ status: 'final', verdict: 'block', ruleId: 'c2-rundll32', matchedRuleIds: ['c2-rundll32'], tags: [], severity: 'high', tunnel: 'splice', reasons: [] });
    const { text: aggregate } = await aggregateMetrics([await m.registry.getMetricsAsJSON()]);
    expect(sample(aggregate, 'egress_rule_matches_total{rule="c2-rundll32",mode="live"}')).toBe(1);
    text = await m.registry.metrics();
    expect(sample(text, 'egress_rule_matches_total{rule="c2-rundll32",mode="live"}')).toBe(1);
    // The signals counter, through the score observer the detection engine calls at a flow's end.
    const flow = new Flow('http', false);
    flow.set('network.protocol', 'http');
    flow.set('egress.score', 45);
    createScoreObserver(m)(flow, ['uncommon_port', 'ip_literal']);
    text = await m.registry.metrics();
    expect(sample(text, 'egress_reasons_total{reason="uncommon_port"}')).toBe(1);
    expect(sample(text, 'egress_reasons_total{reason="ip_literal"}')).toBe(1);
    // A counter that would not hand the sums over is refused when the child is taken, not silently kept at 0.
    expect(() => perFlowChild(m.hints, { result: 'accepted' })).toThrow(/egress_hints_total is not declared with collect: flushPending/);
  });
});

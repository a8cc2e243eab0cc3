/**
 * /metrics as Prometheus tooling sees it (issue 11): the real proxy's scrape passes `promtool check metrics`,
 * the process metrics keep their standard names, every closed-set series exists at 0 before its first event, and
 * the alert rules of deploy/prometheus pass `promtool check rules` and their unit tests (`promtool test rules`).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness.js';

const PROMTOOL = '/usr/bin/promtool';
const HAS_PROMTOOL = existsSync(PROMTOOL);
const RULES_DIR = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));
if (!HAS_PROMTOOL) console.warn(`metrics-hygiene: ${PROMTOOL} not found (Debian package "prometheus"): the promtool checks are skipped`);

/** Runs promtool with `stdin`; resolves with its exit code and output (never rejects on a non-zero exit). */
function promtool(args: readonly string[], stdin = '', cwd = RULES_DIR): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile(PROMTOOL, [...args], { cwd, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, output: `${stdout}${stderr}` });
    });
    child.stdin?.end(stdin);
  });
}

/** The value of one exact series line (`name{labels} value`), or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe('metrics hygiene', () => {
  let h: Harness;
  let text: string;

  beforeAll(async () => {
    h = await startHarness({ policy: 'version: 1\nrules:\n  - id: block-port-1\n    when: { destination.port: 1 }\n    action: block\n' });
    const res = await fetch(`${h.adminUrl}/metrics`);
    expect(res.status).toBe(200);
    text = await res.text();
  });
  afterAll(async () => h.stop());

  it.skipIf(!HAS_PROMTOOL)('the scrape passes `promtool check metrics` with no complaint', async () => {
    const { code, output } = await promtool(['check', 'metrics'], text);
    expect(output.trim()).toBe('');
    expect(code).toBe(0);
  });

  it('serves the process metrics under their standard names, with no app prefix', () => {
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_version_info']) {
      expect(text, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    }
    expect(text).not.toContain('egress_process_');
    // Gauges never end in _total (prom-client's three *_total gauges are dropped; the per-type ones stay).
    for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      const [, name = '', type] = match;
      if (type !== 'counter') expect(name.endsWith('_total'), `${name} is a ${type}`).toBe(false);
      else expect(name.endsWith('_total'), `${name} is a counter`).toBe(true);
    }
    expect(text).toMatch(/^# TYPE nodejs_active_handles gauge$/m);
  });

  it('has every failure, refusal and closed-set series at 0 before anything happened', () => {
    for (const result of ['failure', 'refused']) expect(sample(text, `egress_policy_reloads_total{result="${result}"}`), result).toBe(0);
    expect(sample(text, 'egress_policy_reloads_total{result="success"}')).toBe(1);
    for (const action of ['allow', 'block']) {
      for (const protocol of ['http', 'tls', 'dns', 'unknown']) expect(sample(text, `egress_flows_total{action="${action}",protocol="${protocol}"}`)).toBe(0);
    }
    for (const action of ['allow', 'block', 'error']) expect(sample(text, `egress_dns_queries_total{action="${action}"}`)).toBe(0);
    for (const result of ['accepted', 'rejected']) expect(sample(text, `egress_hints_total{result="${result}"}`)).toBe(0);
    for (const method of ['telemetry', 'header', 'none']) expect(sample(text, `egress_attributed_flows_total{method="${method}"}`)).toBe(0);
    for (const mode of ['bump', 'splice', 'pinned_splice', 'client_rejected']) expect(sample(text, `egress_tls_tunnels_total{mode="${mode}"}`)).toBe(0);
    for (const code of ['UPSTREAM_TIMEOUT', 'UPSTREAM_CONNECT_FAILED', 'INTERNAL']) expect(sample(text, `egress_flow_errors_total{code="${code}"}`)).toBe(0);
    expect(sample(text, 'egress_dns_malformed_total{transport="tcp",reply="badvers"}')).toBe(0);
    expect(sample(text, 'egress_dns_upstream_seconds_count{transport="udp",outcome="timeout"}')).toBe(0);
    expect(sample(text, 'egress_followup_records_total')).toBe(0);
    // The policy's rule ids and the built-in ones, so the first match of a detection rule shows in increase().
    expect(sample(text, 'egress_rule_matches_total{rule="block-port-1",mode="live"}')).toBe(0);
    expect(sample(text, 'egress_rule_matches_total{rule="builtin:internal-destination",mode="live"}')).toBe(0);
  });

  it('says which build runs and whether the last reload applied', () => {
    expect(text).toMatch(/^egress_build_info\{version="\d+\.\d+\.\d+[^"]*",node_version="\d+\.\d+\.\d+",commit="[^"]+"\} 1$/m);
    expect(sample(text, 'egress_policy_last_reload_success')).toBe(1);
    const at = sample(text, 'egress_policy_last_reload_success_timestamp_seconds') ?? 0;
    expect(Math.abs(at - Date.now() / 1000)).toBeLessThan(120);
    expect(sample(text, 'egress_policy_last_reload_timestamp_seconds')).toBe(at);
  });

  it.skipIf(!HAS_PROMTOOL)('the alert rules pass `promtool check rules`', async () => {
    const { code, output } = await promtool(['check', 'rules', 'egress-inspector-rules.yml']);
    expect(output).toContain('SUCCESS');
    expect(code).toBe(0);
  });

  it.skipIf(!HAS_PROMTOOL)('the rule unit tests pass: the reload alert fires on the first failure of a series at 0', async () => {
    const { code, output } = await promtool(['test', 'rules', 'egress-inspector-rules.test.yml']);
    expect(output).toContain('SUCCESS');
    expect(code).toBe(0);
  });
});

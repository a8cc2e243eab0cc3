import { describe, expect, it } from 'vitest';
import { aggregateMetrics, combineReloads, decideRestart, DEFAULT_RESTART_POLICY, workerCounts } from '../../../src/cluster/supervise.js';
import type { WorkerReload } from '../../../src/cluster/messages.js';
import { createClusterMetrics, createMetrics, label, setPolicyInfo, setWorkerStates } from '../../../src/observe/metrics.js';

const policy = { baseDelayMs: 100, maxDelayMs: 1000, stableMs: 10_000, maxConsecutive: 5 };

describe('decideRestart: bounded restarts with backoff', () => {
  it.each([
    ['the first crash waits the base delay', 0, 50, { restart: true, delayMs: 100, consecutive: 1 }],
    ['each quick crash in a row doubles it', 2, 50, { restart: true, delayMs: 400, consecutive: 3 }],
    ['the delay is capped', 4, 50, { restart: true, delayMs: 1000, consecutive: 5 }],
    ['too many quick crashes in a row give the slot up', 5, 50, { restart: false, consecutive: 6 }],
    ['a worker that ran for a while starts a new series', 5, 10_000, { restart: true, delayMs: 100, consecutive: 1 }],
  ])('%s', (_name, consecutive, uptimeMs, expected) => {
    expect(decideRestart(policy, consecutive, uptimeMs)).toEqual(expected);
  });

  it('the default policy gives up after eight quick crashes, about a minute of backoff in all', () => {
    let n = 0;
    let waited = 0;
    for (;;) {
      const d = decideRestart(DEFAULT_RESTART_POLICY, n, 100);
      n = d.consecutive;
      if (!d.restart) break;
      waited += d.delayMs;
    }
    expect(n).toBe(DEFAULT_RESTART_POLICY.maxConsecutive + 1);
    expect(waited).toBeGreaterThan(30_000);
    expect(waited).toBeLessThan(120_000);
  });
});

describe('combineReloads: one answer once every worker answered', () => {
  const asked = [
    { id: 1, pid: 101 },
    { id: 2, pid: 102 },
  ];
  const good = (sha256: string): WorkerReload => ({ ok: true, sha256, errors: [] });

  it('ok, with the policy hash, when both reloaded the same policy', () => {
    const r = combineReloads(asked, new Map([[1, good('aa')], [2, good('aa')]]), 1000);
    expect(r).toMatchObject({ ok: true, sha256: 'aa', errors: [] });
    expect(r.workers.map((w) => [w.id, w.pid, w.ok])).toEqual([
      [1, 101, true],
      [2, 102, true],
    ]);
  });

  it('a broken file: not ok, the error lines once (both workers report the same), the last good hash kept', () => {
    const failed: WorkerReload = { ok: false, sha256: 'aa', errors: ['p.yaml:4:7: unknown field'] };
    const r = combineReloads(asked, new Map([[1, failed], [2, failed]]), 1000);
    expect(r.ok).toBe(false);
    expect(r.errors).toEqual(['p.yaml:4:7: unknown field']);
    expect(r.sha256).toBe('aa');
  });

  it('a worker that did not answer is named, and the answer is not ok', () => {
    const r = combineReloads(asked, new Map([[1, good('aa')]]), 1500);
    expect(r.ok).toBe(false);
    expect(r.sha256).toBeNull();
    expect(r.errors).toEqual(['worker 2 (pid 102): no answer within 1500 ms']);
  });

  it('workers that ended on different policies do not agree', () => {
    const r = combineReloads(asked, new Map([[1, good('aaaaaaaaaaaaaaaa')], [2, good('bbbbbbbbbbbbbbbb')]]), 1000);
    expect(r.ok).toBe(false);
    expect(r.sha256).toBeNull();
    expect(r.errors[0]).toMatch(/different policies \(aaaaaaaaaaaa, bbbbbbbbbbbb\)/);
  });

  it('no worker to ask is not ok', () => {
    expect(combineReloads([], new Map(), 1000).ok).toBe(false);
  });
});

describe('metrics of several processes', () => {
  /** A worker's metrics after `flows` allowed HTTP flows, with the same six hints every worker holds. */
  async function worker(flows: number, sha: string): Promise<Awaited<ReturnType<ReturnType<typeof createMetrics>['registry']['getMetricsAsJSON']>>> {
    const m = createMetrics({ defaultMetrics: false });
    for (let i = 0; i < flows; i++) label.flow(m, 'allow', 'http');
    m.activeFlows.set(flows);
    m.hintStoreStats.sizes = () => ({ network: 6, process: 2, dns: 0, managed: 1 });
    label.reload(m, 'success');
    setPolicyInfo(m, sha);
    m.flowDuration.observe({ protocol: 'http' }, 0.002);
    return m.registry.getMetricsAsJSON();
  }

  it('counters, histograms and active flows are summed; replicated state (hints, policy, reloads) is not', async () => {
    const { text } = await aggregateMetrics([await worker(3, 'aa'), await worker(5, 'aa')]);
    expect(text).toMatch(/^egress_flows_total\{action="allow",protocol="http"\} 8$/m);
    expect(text).toMatch(/^egress_active_flows 8$/m);
    expect(text).toMatch(/^egress_flow_duration_seconds_count\{protocol="http"\} 2$/m);
    expect(text).toMatch(/^egress_hint_store_entries\{kind="network"\} 6$/m);
    expect(text).toMatch(/^egress_policy_info\{sha256="aa"\} 1$/m);
    expect(text).toMatch(/^egress_policy_reloads_total\{result="success"\} 1$/m);
  });

  it('workers that disagree on the policy show both hashes', async () => {
    const { text } = await aggregateMetrics([await worker(1, 'aa'), await worker(1, 'bb')]);
    expect(text).toMatch(/^egress_policy_info\{sha256="aa"\} 1$/m);
    expect(text).toMatch(/^egress_policy_info\{sha256="bb"\} 1$/m);
  });

  it("the primary's own metrics (worker states, restarts) join the workers'", async () => {
    const primary = createMetrics({ defaultMetrics: false });
    const cm = createClusterMetrics(primary.registry);
    setWorkerStates(cm, { starting: 0, up: 2, stopping: 0, restarting: 0, abandoned: 0 });
    cm.workerRestarts.inc();
    const { text } = await aggregateMetrics([await primary.registry.getMetricsAsJSON(), await worker(2, 'aa')]);
    expect(text).toMatch(/^egress_workers\{state="up"\} 2$/m);
    expect(text).toMatch(/^egress_worker_restarts_total 1$/m);
    expect(text).toMatch(/^egress_flows_total\{action="allow",protocol="http"\} 2$/m);
  });

  it('workerCounts reads one worker’s flows (every label set) and active flows', async () => {
    const m = createMetrics({ defaultMetrics: false });
    label.flow(m, 'allow', 'http');
    label.flow(m, 'block', 'tls');
    label.flow(m, 'block', 'tls');
    m.activeFlows.set(4);
    expect(workerCounts(await m.registry.getMetricsAsJSON())).toEqual({ flows: 3, activeFlows: 4 });
  });
});

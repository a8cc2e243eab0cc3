import { describe, expect, it } from 'vitest';
import { CoverageTally, LAG_SAMPLES, MAX_HOST_NAMES, median } from '../../../src/coverage/tally.js';

const T0 = Date.parse('2026-03-02T10:00:00.000Z');
const MIN = 60_000;

describe('CoverageTally: shares', () => {
  it('counts the attributed share overall and per client, by method', () => {
    const t = new CoverageTally();
    t.addFlow('a1', '10.0.0.5', 'telemetry', 'ws5', T0);
    t.addFlow('a2', '10.0.0.5', 'telemetry', 'ws5', T0 + 1000);
    t.addFlow('a3', '10.0.0.5', 'none', undefined, T0 + 2000);
    t.addFlow('b1', '10.0.0.9', 'header', undefined, T0 + 3000);
    t.addFlow('c1', '10.0.0.7', 'none', undefined, T0 + 4000);
    const r = t.report();
    expect(r.flows).toBe(5);
    expect(r.attributed).toBe(3);
    expect(r.attributed_share).toBe(0.6);
    expect(r.by_method).toEqual({ telemetry: 2, header: 1, none: 2 });
    const ws5 = r.hosts.find((h) => h['source.ip'] === '10.0.0.5');
    expect(ws5).toMatchObject({ flows: 3, attributed: 2, attributed_share: 0.6667, host_names: ['ws5'], by_method: { telemetry: 2, header: 0, none: 1 } });
    expect(r.hosts.map((h) => h['source.ip'])).toEqual(['10.0.0.5', '10.0.0.7', '10.0.0.9']);
    expect(r.first_flow).toBe(new Date(T0).toISOString());
    expect(r.last_flow).toBe(new Date(T0 + 4000).toISOString());
  });

  it('an empty tally reports a share of 0, not NaN', () => {
    const r = new CoverageTally().report({ nowMs: T0 });
    expect(r.flows).toBe(0);
    expect(r.attributed_share).toBe(0);
    expect(r.hosts).toEqual([]);
    expect(r.first_flow).toBeNull();
  });

  it('keys IPv4-mapped IPv6 addresses as IPv4 (as the hint store does)', () => {
    const t = new CoverageTally();
    t.addFlow('a', '::ffff:10.0.0.5', 'none', undefined, T0);
    t.addFlow('b', '10.0.0.5', 'none', undefined, T0);
    expect(t.report().hosts).toHaveLength(1);
  });

  it('counts flows without a source address in the totals only', () => {
    const t = new CoverageTally();
    t.addFlow('a', undefined, 'none', undefined, T0);
    expect(t.report()).toMatchObject({ flows: 1, hosts: [] });
  });
});

describe('CoverageTally: follow-up records', () => {
  it('a follow-up moves its flow to telemetry: the flow is counted once', () => {
    const t = new CoverageTally();
    t.addFlow('f1', '10.0.0.5', 'none', undefined, T0);
    t.addFlow('f2', '10.0.0.5', 'none', undefined, T0 + 1000);
    expect(t.addFollowUp('f1')).toBe(true);
    const r = t.report();
    expect(r.flows).toBe(2);
    expect(r.by_method).toEqual({ telemetry: 1, header: 0, none: 1 });
    expect(r.late_attributed).toBe(1);
    expect(r.hosts[0]).toMatchObject({ flows: 2, attributed: 1, last_telemetry: new Date(T0).toISOString() });
  });

  it('a second follow-up for the same flow, or one for an unknown flow, changes nothing but the unmatched count', () => {
    const t = new CoverageTally();
    t.addFlow('f1', '10.0.0.5', 'none', undefined, T0);
    t.addFollowUp('f1');
    expect(t.addFollowUp('f1')).toBe(false);
    expect(t.addFollowUp('never-seen')).toBe(false);
    const r = t.report();
    expect(r.by_method).toEqual({ telemetry: 1, header: 0, none: 0 });
    expect(r.bounds.followups_unmatched).toBe(2);
    expect(r.bounds.cut).toBe(true);
  });

  it('a header-attributed flow completed by telemetry moves from header to telemetry', () => {
    const t = new CoverageTally();
    t.addFlow('h1', '10.0.0.5', 'header', undefined, T0);
    t.addFollowUp('h1');
    expect(t.report().by_method).toEqual({ telemetry: 1, header: 0, none: 0 });
    expect(t.report().hosts[0]?.by_method).toEqual({ telemetry: 1, header: 0, none: 0 });
  });

  it('telemetry-attributed flows are not awaited; the awaited ids are bounded, oldest dropped first', () => {
    const t = new CoverageTally({ maxPending: 2 });
    t.addFlow('t', '10.0.0.5', 'telemetry', undefined, T0);
    for (const id of ['u1', 'u2', 'u3']) t.addFlow(id, '10.0.0.5', 'none', undefined, T0);
    expect(t.sizes().pending).toBe(2);
    expect(t.addFollowUp('u1')).toBe(false);
    expect(t.addFollowUp('u3')).toBe(true);
    expect(t.report().bounds).toMatchObject({ evicted_pending: 1, followups_unmatched: 1, cut: true });
  });

  it('awaited ids expire after the pending TTL (late hints come within the hint window)', () => {
    const t = new CoverageTally({ pendingTtlMs: 5 * MIN });
    t.addFlow('old', '10.0.0.5', 'none', undefined, T0);
    t.addFlow('new', '10.0.0.5', 'none', undefined, T0 + 10 * MIN);
    expect(t.addFollowUp('old')).toBe(false);
    expect(t.addFollowUp('new')).toBe(true);
    expect(t.report().by_method).toEqual({ telemetry: 1, header: 0, none: 1 });
  });
});

describe('CoverageTally: managed and unmanaged', () => {
  it('without a hint store, a client is managed when telemetry attributed a flow within the managed window', () => {
    const t = new CoverageTally();
    t.addFlow('a', '10.0.0.5', 'telemetry', undefined, T0);
    t.addFlow('b', '10.0.0.6', 'none', undefined, T0);
    t.addFlow('c', '10.0.0.6', 'none', undefined, T0 + MIN);
    t.addFlow('d', '10.0.0.7', 'header', undefined, T0 + MIN);
    const r = t.report({ managedWindowMs: 10 * MIN });
    expect(r.managed_source).toBe('flow-records');
    expect(r.hosts.find((h) => h['source.ip'] === '10.0.0.5')?.managed).toBe(true);
    // Unmanaged, most flows first.
    expect(r.unmanaged.map((h) => h['source.ip'])).toEqual(['10.0.0.6', '10.0.0.7']);
    expect(r.clients).toEqual({ tracked: 3, managed: 1, unmanaged: 2 });
    // Judged at the end of the log: 20 minutes later the window has passed.
    expect(t.report({ nowMs: T0 + 20 * MIN, managedWindowMs: 10 * MIN }).clients.managed).toBe(0);
  });

  it('the live hint store decides when given', () => {
    const t = new CoverageTally();
    t.addFlow('a', '10.0.0.5', 'none', undefined, T0);
    const r = t.report({ isManaged: (ip) => ip === '10.0.0.5' });
    expect(r.managed_source).toBe('hint-store');
    expect(r.hosts[0]?.managed).toBe(true);
    expect(r.unmanaged).toEqual([]);
  });
});

describe('CoverageTally: stale telemetry', () => {
  it('flags a client attributed before, not in the last N minutes, still making flows', () => {
    const t = new CoverageTally();
    t.addFlow('a', '10.0.0.5', 'telemetry', 'ws5', T0);
    t.addFlow('b', '10.0.0.5', 'none', 'ws5', T0 + 20 * MIN);
    t.addFlow('c', '10.0.0.5', 'none', 'ws5', T0 + 30 * MIN);
    // Still attributed: not stale.
    t.addFlow('d', '10.0.0.6', 'telemetry', undefined, T0);
    t.addFlow('e', '10.0.0.6', 'telemetry', undefined, T0 + 29 * MIN);
    // Never attributed: unmanaged, not stale.
    t.addFlow('f', '10.0.0.7', 'none', undefined, T0 + 30 * MIN);
    // Telemetry stopped, but so did the flows: not stale.
    t.addFlow('g', '10.0.0.8', 'telemetry', undefined, T0);
    const r = t.report({ staleMs: 15 * MIN });
    expect(r.stale_telemetry).toEqual([
      {
        'source.ip': '10.0.0.5',
        host_names: ['ws5'],
        last_telemetry: new Date(T0).toISOString(),
        last_flow: new Date(T0 + 30 * MIN).toISOString(),
        minutes_since_telemetry: 30,
        flows: 3,
      },
    ]);
    expect(r.stale_minutes).toBe(15);
    // A longer --stale does not flag it.
    expect(t.report({ staleMs: 45 * MIN }).stale_telemetry).toEqual([]);
  });

  it('a late follow-up that attributes a recent flow clears the stale flag', () => {
    const t = new CoverageTally();
    t.addFlow('a', '10.0.0.5', 'telemetry', undefined, T0);
    t.addFlow('b', '10.0.0.5', 'none', undefined, T0 + 30 * MIN);
    expect(t.report({ staleMs: 15 * MIN }).stale_telemetry).toHaveLength(1);
    t.addFollowUp('b');
    expect(t.report({ staleMs: 15 * MIN }).stale_telemetry).toHaveLength(0);
  });
});

describe('CoverageTally: bounds', () => {
  it('tracks at most maxClients, dropping the least recently seen; totals stay exact; the report says so', () => {
    const t = new CoverageTally({ maxClients: 3 });
    for (let i = 1; i <= 5; i++) t.addFlow(`f${i}`, `10.0.0.${i}`, 'none', undefined, T0 + i * 2000);
    // 10.0.0.3 comes back: it is young again, so the next new client drops 10.0.0.4.
    t.addFlow('g', '10.0.0.3', 'telemetry', undefined, T0 + 20_000);
    t.addFlow('h', '10.0.0.6', 'none', undefined, T0 + 22_000);
    const r = t.report();
    expect(t.sizes().clients).toBe(3);
    expect(r.hosts.map((h) => h['source.ip']).sort()).toEqual(['10.0.0.3', '10.0.0.5', '10.0.0.6']);
    expect(r.flows).toBe(7);
    expect(r.bounds).toMatchObject({ max_clients: 3, evicted_clients: 3, flows_of_dropped_clients: 3, cut: true });
  });

  it('drops clients not seen within the TTL', () => {
    const t = new CoverageTally({ clientTtlMs: 60 * MIN });
    t.addFlow('a', '10.0.0.1', 'none', undefined, T0);
    t.addFlow('b', '10.0.0.2', 'none', undefined, T0 + 2 * 60 * MIN);
    const r = t.report();
    expect(r.hosts.map((h) => h['source.ip'])).toEqual(['10.0.0.2']);
    expect(r.bounds).toMatchObject({ expired_clients: 1, cut: true });
  });

  it('nothing cut: bounds.cut is false', () => {
    const t = new CoverageTally();
    t.addFlow('a', '10.0.0.1', 'none', undefined, T0);
    expect(t.report().bounds.cut).toBe(false);
  });

  it('hostLimit lists the clients with most flows and counts the rest', () => {
    const t = new CoverageTally();
    t.addFlow('a', '10.0.0.1', 'none', undefined, T0);
    t.addFlow('b', '10.0.0.2', 'none', undefined, T0);
    t.addFlow('c', '10.0.0.2', 'none', undefined, T0);
    const r = t.report({ hostLimit: 1 });
    expect(r.hosts.map((h) => h['source.ip'])).toEqual(['10.0.0.2']);
    expect(r.clients.tracked).toBe(2);
    expect(r.bounds).toMatchObject({ hosts_omitted: 1, cut: true });
  });

  it('keeps at most MAX_HOST_NAMES host names per client and says there were more', () => {
    const t = new CoverageTally();
    for (let i = 0; i < MAX_HOST_NAMES + 2; i++) t.addFlow(`f${i}`, '10.0.0.1', 'telemetry', `host${i}`, T0);
    t.addFlow('x', '10.0.0.1', 'telemetry', 'host0', T0);
    const h = t.report().hosts[0];
    expect(h?.host_names).toHaveLength(MAX_HOST_NAMES);
    expect(h?.host_names_more).toBe(true);
  });

  it('keeps the client table bounded under many distinct addresses', () => {
    const t = new CoverageTally({ maxClients: 100, maxPending: 50 });
    for (let i = 0; i < 10_000; i++) t.addFlow(`id${i}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 'none', undefined, T0 + i);
    expect(t.sizes()).toEqual({ clients: 100, pending: 50 });
    expect(t.report().flows).toBe(10_000);
  });
});

describe('CoverageTally: hints', () => {
  it('records the last hint and the median hint lag of tracked clients only', () => {
    const t = new CoverageTally();
    t.addFlow('a', '10.0.0.5', 'telemetry', undefined, T0);
    t.noteHint('10.0.0.5', T0, T0 + 1000);
    t.noteHint('10.0.0.5', T0, T0 + 3000);
    t.noteHint('10.0.0.5', T0, T0 + 2000);
    t.noteHint('10.0.0.99', T0, T0 + 500);
    const r = t.report();
    expect(r.hosts).toHaveLength(1);
    expect(r.hosts[0]).toMatchObject({ last_hint: new Date(T0 + 3000).toISOString(), hint_lag_p50_ms: 2000 });
  });

  it('keeps the last LAG_SAMPLES lags', () => {
    const t = new CoverageTally();
    t.addFlow('a', '10.0.0.5', 'telemetry', undefined, T0);
    for (let i = 0; i < LAG_SAMPLES; i++) t.noteHint('10.0.0.5', T0, T0 + 100_000);
    for (let i = 0; i < LAG_SAMPLES; i++) t.noteHint('10.0.0.5', T0, T0 + 10);
    expect(t.report().hosts[0]?.hint_lag_p50_ms).toBe(10);
  });

  it('without hints the lag is unknown (null), as in a flow log', () => {
    const t = new CoverageTally();
    t.addFlow('a', '10.0.0.5', 'telemetry', undefined, T0);
    expect(t.report().hosts[0]).toMatchObject({ last_hint: null, hint_lag_p50_ms: null });
  });

  it('median of odd and even counts', () => {
    expect(median(Float64Array.from([3, 1, 2]), 3)).toBe(2);
    expect(median(Float64Array.from([4, 1, 3, 2]), 4)).toBe(2.5);
  });
});

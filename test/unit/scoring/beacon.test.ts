import { describe, expect, it } from 'vitest';
import { mulberry32 as prng } from '../../helpers/prng.js';
import { BeaconTracker, describeBeacon, scoreIntervals, type BeaconResult } from '../../../src/scoring/beacon.js';


const T0 = 1_700_000_000_000; // an epoch-ms start, as the proxy passes flow start times

interface Traffic {
  readonly ts: number[];
  readonly sizes: number[];
}

function traffic(n: number, gap: (i: number) => number, size: (i: number) => number): Traffic {
  const ts: number[] = [];
  const sizes: number[] = [];
  let t = T0;
  for (let i = 0; i < n; i++) {
    ts.push(Math.round(t));
    sizes.push(Math.round(size(i)));
    t += gap(i);
  }
  return { ts, sizes };
}

function periodic(n: number, periodMs: number, bytes = 310): Traffic {
  return traffic(n, () => periodMs, () => bytes);
}

function jittered(n: number, periodMs: number, seed: number, bytes = 310): Traffic {
  const r = prng(seed);
  return traffic(n, () => periodMs * (0.9 + 0.2 * r()), () => bytes);
}

/** Think times: exponential (mean 30 s) or uniform, clamped to 0.2–300 s; request sizes log-normal around 900 B. */
function human(n: number, seed: number, gaps: 'exponential' | 'uniform'): Traffic {
  const r = prng(seed);
  const gap = gaps === 'exponential' ? () => Math.min(300_000, Math.max(200, -Math.log(1 - r()) * 30_000)) : () => 200 + r() * 299_800;
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return traffic(n, gap, () => 900 * Math.exp(normal()));
}

function replay(tracker: BeaconTracker, key: string, t: Traffic): BeaconResult | null {
  let last: BeaconResult | null = null;
  for (let i = 0; i < t.ts.length; i++) last = tracker.observe(key, t.ts[i] as number, t.sizes[i] as number);
  return last;
}

function fakeClock(start = 5_000): { t: number; now: () => number } {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

describe('scoreIntervals: RITA parts, hand-computed', () => {
  it('right-skewed, dispersed intervals score low on timing, by the formulas', () => {
    // Intervals 2, 1, 7, 3, 9 s → sorted 1, 2, 3, 7, 9 s. Nearest-rank: Q1 = 2, Q2 = 3, Q3 = 7 s.
    // Bowley (2 + 7 − 6) / 5 = 0.6 → part 0.4. MAD: |x − 3| sorted 0, 1, 2, 4, 6 → 2 s ≥ cutoff 1.5 s → 0.
    // Steady (within ±10 % of 3 s): 1 of 15. Timing (0.4 + 0 + 1/15) / 3 = 0.156.
    const ts = [0, 2000, 3000, 10_000, 13_000, 22_000].map((x) => T0 + x);
    const r = scoreIntervals(ts, [100, 100, 100, 100, 100, 100]);
    expect(r).toEqual({ score: 0.578, connections: 6, intervalMs: 3000, jitterMs: 2000, timingScore: 0.156, sizeScore: 0.999 });
  });

  it('sizes: Bowley skew, MAD with a 32-byte cutoff, smallness of the mode', () => {
    // Sizes sorted 100, 110, 120, 200, 400: Q1 110, Q2 120, Q3 200 → skew 70/90 → part 0.222; MAD 20 → 0.375;
    // every size once, so the mode is the smallest (RITA's createCountMap) → 1 − 100/65535. Mean 0.532.
    // Timing: 4 identical intervals → skew 1, MAD 1, steady 4/15 → 0.756. Score (2.267 + 1.596) / 6 = 0.644.
    const r = scoreIntervals([0, 5000, 10_000, 15_000, 20_000], [400, 100, 200, 120, 110]);
    expect(r).toMatchObject({ score: 0.644, timingScore: 0.756, sizeScore: 0.532, intervalMs: 5000, jitterMs: 0 });
  });

  it('a large mode scores nothing for smallness (1 − mode/65535, floored at 0)', () => {
    const small = scoreIntervals(periodic(20, 5000, 300).ts, periodic(20, 5000, 300).sizes);
    const big = scoreIntervals(periodic(20, 5000).ts, Array<number>(20).fill(70_000));
    expect(small?.sizeScore).toBe(0.998);
    expect(big?.sizeScore).toBe(0.667);
  });

  it('skew is ignored when the median equals a quartile (the Q2 == Q1 / Q2 == Q3 guard)', () => {
    // Intervals 5, 5, 5, 5, 9 s: Q1 = Q2 = 5 s, so skew is 0 even though the IQR is 4 s.
    const ts = [0, 5000, 10_000, 15_000, 20_000, 29_000];
    const r = scoreIntervals(ts, [1, 1, 1, 1, 1, 1]);
    // skew part 1, MAD 0 → 1, steady 4/15 → timing (2 + 0.267) / 3.
    expect(r?.timingScore).toBe(0.756);
  });

  it('a few ms of timer noise is not read as skew (IQR floor of a tenth of the median)', () => {
    const ts = [0, 4998, 10_000, 15_001, 19_999, 25_002, 30_000, 35_000, 40_001].map((x) => T0 + x);
    expect(scoreIntervals(ts, Array<number>(9).fill(300))?.timingScore).toBeGreaterThanOrEqual(0.8);
  });
});

describe('scoreIntervals: beacons and people', () => {
  it.each([1000, 5000, 60_000])('perfectly periodic every %i ms scores ≥ 0.9', (period) => {
    for (const n of [20, 32]) {
      const t = periodic(n, period);
      const r = scoreIntervals(t.ts, t.sizes);
      expect(r?.score).toBeGreaterThanOrEqual(0.9);
      expect(r).toMatchObject({ connections: n, intervalMs: period, jitterMs: 0, timingScore: 1 });
    }
  });

  it.each([1000, 2000, 5000, 60_000])('periodic every %i ms with ±10 percent jitter scores ≥ 0.8 (50 seeds)', (period) => {
    for (let seed = 1; seed <= 50; seed++) {
      const t = jittered(32, period, seed);
      const r = scoreIntervals(t.ts, t.sizes);
      expect(r?.score, `seed ${seed}`).toBeGreaterThanOrEqual(0.8);
      expect(Math.abs((r?.intervalMs ?? 0) - period)).toBeLessThanOrEqual(period * 0.1);
    }
  });

  it.each(['exponential', 'uniform'] as const)('human browsing (%s gaps 0.2–300 s, varied sizes) scores ≤ 0.6 (100 seeds)', (gaps) => {
    for (let seed = 1; seed <= 100; seed++) {
      const t = human(32, seed, gaps);
      const r = scoreIntervals(t.ts, t.sizes);
      expect(r?.score ?? 0, `seed ${seed}`).toBeLessThanOrEqual(0.6);
    }
  });

  it('4 perfectly regular connections score lower than 20', () => {
    const four = periodic(4, 5000);
    const twenty = periodic(20, 5000);
    const a = scoreIntervals(four.ts, four.sizes);
    const b = scoreIntervals(twenty.ts, twenty.sizes);
    expect(a).not.toBeNull();
    expect(a?.score ?? 1).toBeLessThan(b?.score ?? 0);
    expect(a?.timingScore).toBe(0.733); // steady 3/15
  });

  it('fewer than 4 timestamps, or fewer than 3 intervals of 100 ms or more, give null', () => {
    expect(scoreIntervals([], [])).toBeNull();
    expect(scoreIntervals([T0, T0 + 5000, T0 + 10_000], [1, 1, 1])).toBeNull();
    expect(scoreIntervals([T0, T0, T0, T0, T0], [1, 1, 1, 1, 1])).toBeNull();
    expect(scoreIntervals([T0, T0 + 5000, T0 + 5010, T0 + 5090], [1, 1, 1, 1])).toBeNull(); // one check-in of three
    expect(scoreIntervals([T0, T0 + 5000, T0 + 10_000, T0 + 15_000], [1, 1])).toBeNull(); // sizes: need 3
    expect(scoreIntervals([T0, T0 + 5000, T0 + 10_000, T0 + 15_000], [1, 1, 1])).not.toBeNull();
  });

  it('two or three connections per check-in (up to 80 ms apart) score like one', () => {
    const single = periodic(20, 5000);
    const paired = { ts: single.ts.flatMap((t, i) => (i % 2 ? [t, t + 20] : [t, t + 3, t + 80])), sizes: single.sizes.flatMap((s, i) => (i % 2 ? [s, s] : [s, s, s])) };
    const a = scoreIntervals(single.ts, single.sizes);
    const b = scoreIntervals(paired.ts, paired.sizes);
    expect(b?.intervalMs).toBe(5000);
    expect(b?.timingScore).toBe(a?.timingScore);
    expect(b?.connections).toBe(50);
  });

  it('order does not matter', () => {
    const t = jittered(24, 5000, 7);
    const order = t.ts.map((_, i) => i).sort((i, j) => ((i * 7919) % 24) - ((j * 7919) % 24));
    const shuffled = scoreIntervals(order.map((i) => t.ts[i] as number), order.map((i) => t.sizes[i] as number));
    expect(shuffled).toEqual(scoreIntervals(t.ts, t.sizes));
  });

  it('non-finite timestamps are skipped; sizes that are not positive numbers count as 0', () => {
    const t = periodic(8, 5000);
    const clean = scoreIntervals(t.ts, t.sizes.map(() => 0));
    const dirty = scoreIntervals([...t.ts, Number.NaN, Number.POSITIVE_INFINITY], t.sizes.map((_, i) => [0, -5, Number.NaN, -Infinity][i % 4] as number));
    expect(dirty).toEqual(clean);
  });
});

describe('describeBeacon', () => {
  it('seconds with one decimal, milliseconds when the interval is under 1 s', () => {
    const base = { score: 0.953, timingScore: 1, sizeScore: 0.9 };
    expect(describeBeacon({ ...base, connections: 24, intervalMs: 5120, jitterMs: 310 })).toBe('beacon: 24 connections every 5.1 s ± 0.3 s (score 0.953)');
    expect(describeBeacon({ ...base, connections: 12, intervalMs: 850, jitterMs: 12.4 })).toBe('beacon: 12 connections every 850 ms ± 12 ms (score 0.953)');
    expect(describeBeacon({ ...base, connections: 12, intervalMs: 1000, jitterMs: 40 })).toBe('beacon: 12 connections every 1.0 s ± 0.0 s (score 0.953)');
    expect(describeBeacon({ ...base, connections: 32, intervalMs: 3_600_000, jitterMs: 0 })).toBe('beacon: 32 connections every 3600.0 s ± 0.0 s (score 0.953)');
  });

  it('describes a scored ring', () => {
    const t = periodic(10, 2000);
    const r = scoreIntervals(t.ts, t.sizes);
    expect(r && describeBeacon(r)).toMatch(/^beacon: 10 connections every 2\.0 s ± 0\.0 s \(score 0\.\d{3}\)$/);
  });
});

describe('BeaconTracker', () => {
  it('null below minConnections, then the score of the ring', () => {
    const tracker = new BeaconTracker({ minConnections: 6 });
    const t = periodic(6, 5000);
    for (let i = 0; i < 5; i++) expect(tracker.observe('h|p|d', t.ts[i] as number, 300)).toBeNull();
    expect(tracker.peek('h|p|d')).toBeNull();
    const r = tracker.observe('h|p|d', t.ts[5] as number, 300);
    expect(r).toEqual(scoreIntervals(t.ts, Array<number>(6).fill(300)));
  });

  it('scores a live 5 s beacon ≥ 0.9 and a jittered one ≥ 0.8', () => {
    const tracker = new BeaconTracker();
    expect(replay(tracker, 'beacon', periodic(60, 5000))?.score).toBeGreaterThanOrEqual(0.9);
    expect(replay(tracker, 'jittered', jittered(60, 3000, 3))?.score).toBeGreaterThanOrEqual(0.8);
  });

  it('keeps only the last maxSamples connections, through growth and wrap-around', () => {
    const tracker = new BeaconTracker({ maxSamples: 12 });
    const mixed = human(40, 11, 'exponential');
    for (let i = 0; i < mixed.ts.length; i++) {
      const got = tracker.observe('k', mixed.ts[i] as number, mixed.sizes[i] as number);
      const from = Math.max(0, i + 1 - 12);
      const want = i + 1 >= 4 ? scoreIntervals(mixed.ts.slice(from, i + 1), mixed.sizes.slice(from, i + 1)) : null;
      expect(got, `after ${i + 1} connections`).toEqual(want);
    }
  });

  it('a beacon that starts after browsing is judged on the last 32 connections only', () => {
    const tracker = new BeaconTracker();
    const browsing = human(50, 5, 'uniform');
    expect(replay(tracker, 'k', browsing)?.score ?? 0).toBeLessThanOrEqual(0.6);
    const last = browsing.ts.at(-1) as number;
    const beacon = periodic(32, 5000);
    const r = replay(tracker, 'k', { ts: beacon.ts.map((t) => t - T0 + last + 5000), sizes: beacon.sizes });
    expect(r).toMatchObject({ connections: 32, intervalMs: 5000, jitterMs: 0 });
    expect(r?.score).toBeGreaterThanOrEqual(0.9);
  });

  it('flows that end out of order are scored in start order', () => {
    const tracker = new BeaconTracker();
    const t = periodic(20, 5000);
    const order = [1, 0, 2, 4, 3, 5, 6, 8, 7, 9, 10, 12, 11, 13, 15, 14, 16, 18, 17, 19];
    let r: BeaconResult | null = null;
    for (const i of order) r = tracker.observe('k', t.ts[i] as number, 310);
    expect(r).toEqual(scoreIntervals(t.ts, t.sizes));
  });

  it('peek neither records nor refreshes', () => {
    const clock = fakeClock();
    const tracker = new BeaconTracker({ maxKeys: 2, now: clock.now });
    replay(tracker, 'a', periodic(8, 5000));
    replay(tracker, 'b', periodic(8, 5000));
    const before = tracker.peek('a');
    expect(before?.connections).toBe(8);
    expect(tracker.peek('a')).toBe(before);
    tracker.observe('c', T0, 1); // 'a' is still the least recently observed, peek notwithstanding
    expect(tracker.peek('a')).toBeNull();
    expect(tracker.peek('b')?.connections).toBe(8);
    expect(tracker.peek('unknown')).toBeNull();
  });

  it('a non-finite time is not recorded; bad byte counts count as 0', () => {
    const tracker = new BeaconTracker();
    const t = periodic(6, 5000);
    replay(tracker, 'k', t);
    const before = tracker.peek('k');
    expect(tracker.observe('k', Number.NaN, 10)).toBe(before);
    expect(tracker.observe('k', Number.POSITIVE_INFINITY, 10)).toBe(before);
    expect(tracker.peek('k')?.connections).toBe(6);
    const r = tracker.observe('k', T0 + 30_000, -1);
    expect(r).toEqual(scoreIntervals([...t.ts, T0 + 30_000], [...t.sizes, 0]));
  });

  it('LRU: size stays at maxKeys, the least recently observed key goes first', () => {
    const tracker = new BeaconTracker({ maxKeys: 3 });
    for (let k = 0; k < 10; k++) tracker.observe(`k${k}`, T0, 1);
    expect(tracker.size).toBe(3);
    tracker.observe('k7', T0 + 5000, 1); // k7 becomes the most recent
    tracker.observe('k10', T0, 1);
    expect(tracker.size).toBe(3);
    expect(tracker.peek('k7')).toBeNull(); // below minConnections, but still tracked:
    tracker.observe('k7', T0 + 10_000, 1);
    tracker.observe('k7', T0 + 15_000, 1);
    expect(tracker.observe('k7', T0 + 20_000, 1)?.connections).toBe(5);
  });

  it('TTL: a key not observed for ttlMs is dropped; observing keeps it alive', () => {
    const clock = fakeClock();
    const tracker = new BeaconTracker({ ttlMs: 60_000, now: clock.now });
    const t = periodic(20, 5000);
    replay(tracker, 'idle', t);
    replay(tracker, 'busy', t);
    expect(tracker.candidates()).toBe(2);
    for (let step = 0; step < 4; step++) {
      clock.t += 20_000;
      tracker.observe('busy', T0 + 100_000 + step * 5000, 310);
    }
    clock.t += 5000; // 'idle' last observed 85 s ago
    expect(tracker.peek('idle')).toBeNull();
    expect(tracker.size).toBe(1);
    expect(tracker.candidates()).toBe(1);
    expect(tracker.peek('busy')?.connections).toBe(24);
    // A dropped key starts again from an empty ring.
    expect(tracker.observe('idle', T0 + 500_000, 310)).toBeNull();
  });

  it('candidates(): a running count of keys at or above candidateScore', () => {
    const tracker = new BeaconTracker({ maxKeys: 4 });
    expect(tracker.candidates()).toBe(0);
    replay(tracker, 'b1', periodic(20, 5000));
    replay(tracker, 'b2', jittered(20, 60_000, 9));
    replay(tracker, 'human', human(32, 4, 'exponential'));
    expect(tracker.candidates()).toBe(2);
    // b1 turns irregular: no longer a candidate.
    const noise = human(32, 8, 'uniform');
    replay(tracker, 'b1', { ts: noise.ts.map((t) => t + 200_000), sizes: noise.sizes });
    expect((tracker.peek('b1')?.score ?? 0) < 0.8).toBe(true);
    expect(tracker.candidates()).toBe(1);
    // Evicting a candidate takes it off the count.
    tracker.observe('x1', T0, 1);
    tracker.observe('x2', T0, 1); // evicts b2 (least recently observed)
    expect(tracker.peek('b2')).toBeNull();
    expect(tracker.candidates()).toBe(0);
  });

  it('candidateScore is configurable', () => {
    const tracker = new BeaconTracker({ candidateScore: 0.3 });
    replay(tracker, 'human', human(32, 4, 'exponential'));
    expect(tracker.candidates()).toBe(1);
  });

  it('rejects options it cannot honour', () => {
    expect(() => new BeaconTracker({ minConnections: 3 })).toThrow(RangeError);
    expect(() => new BeaconTracker({ maxSamples: 2 })).toThrow(RangeError);
    expect(() => new BeaconTracker({ minConnections: 10, maxSamples: 8 })).toThrow(/exceeds maxSamples/);
    expect(() => new BeaconTracker({ maxKeys: 0 })).toThrow(RangeError);
    expect(() => new BeaconTracker({ ttlMs: 1.5 })).toThrow(RangeError);
    expect(() => new BeaconTracker({ candidateScore: Number.NaN })).toThrow(RangeError);
    expect(new BeaconTracker({ minConnections: 8, maxSamples: 8 }).size).toBe(0);
  });
});

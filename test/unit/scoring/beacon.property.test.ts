/**
 * Whatever times and byte counts arrive (equal, unsorted, negative, zero, huge, NaN, infinite), beacon scoring
 * gives null or a result whose numbers are finite and whose scores lie in [0, 1] with 3 decimals — never a
 * throw. The tracker keeps its bounds and its running candidate count under any sequence of calls.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BeaconTracker, describeBeacon, scoreIntervals, type BeaconResult } from '../../../src/scoring/beacon.js';

const anyNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -0, 1, -1, 99, 100, 101, 65_535, 2 ** 53, -(2 ** 53), Number.MAX_VALUE, -Number.MAX_VALUE),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
);
/** Epoch-ms-like times with many repeats and near-repeats, in any order. */
const times = fc.oneof(
  fc.array(anyNumber, { maxLength: 80 }),
  fc.array(fc.integer({ min: 1_700_000_000_000, max: 1_700_000_600_000 }), { maxLength: 80 }),
  fc.array(fc.constantFrom(0, 1, 50, 99, 100, 5000, 5001, 10_000), { maxLength: 80 }),
);
const sizes = fc.oneof(fc.array(anyNumber, { maxLength: 80 }), fc.array(fc.nat({ max: 100_000 }), { maxLength: 80 }));

function isThreeDecimals(x: number): boolean {
  return Math.abs(Math.round(x * 1000) - x * 1000) < 1e-6;
}

function checkResult(r: BeaconResult | null, maxConnections: number): void {
  if (r === null) return;
  for (const v of [r.score, r.timingScore, r.sizeScore]) {
    expect(Number.isFinite(v)).toBe(true);
    expect(v).toBeGreaterThanOrEqual(0);
    expect(v).toBeLessThanOrEqual(1);
    expect(isThreeDecimals(v)).toBe(true);
  }
  expect(Number.isFinite(r.intervalMs) && r.intervalMs >= 100).toBe(true);
  expect(Number.isFinite(r.jitterMs) && r.jitterMs >= 0).toBe(true);
  expect(Number.isInteger(r.connections) && r.connections >= 4 && r.connections <= maxConnections).toBe(true);
  expect(describeBeacon(r)).toMatch(/^beacon: \d+ connections every [\d.]+ m?s ± [\d.]+ m?s \(score [01]\.\d{3}\)$/);
}

/**
 * The method as the header of src/scoring/beacon.ts states it, written the obvious way (full sorts, explicit
 * deviation lists, RITA's formulas as written), to check the optimised code against.
 */
function reference(tsIn: readonly number[], sizesIn: readonly number[]): BeaconResult | null {
  const clampT = (t: number): number => Math.max(-Number.MAX_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, t));
  const clampB = (b: number): number => (b > 0 ? Math.min(b, Number.MAX_SAFE_INTEGER) : 0);
  const ts = tsIn.filter(Number.isFinite).map(clampT).sort((a, b) => a - b);
  const sz = sizesIn.map(clampB).sort((a, b) => a - b);
  if (ts.length < 4 || sz.length < 3) return null;
  const gaps: number[] = [];
  let checkIn = ts[0] as number;
  for (const t of ts.slice(1)) {
    if (t - checkIn >= 100) {
      gaps.push(t - checkIn);
      checkIn = t;
    }
  }
  if (gaps.length < 3) return null;
  gaps.sort((a, b) => a - b);
  const at = (xs: number[], p: number): number => xs[Math.round(p * (xs.length - 1))] as number;
  const skewPart = (xs: number[], minIqr: number): number => {
    const [q1, q2, q3] = [at(xs, 0.25), at(xs, 0.5), at(xs, 0.75)];
    if (q3 - q1 < minIqr || q3 - q1 <= 0 || q2 === q1 || q2 === q3) return 1;
    return Math.max(0, 1 - Math.abs((q1 + q3 - 2 * q2) / (q3 - q1)));
  };
  const mad = (xs: number[]): number => at(xs.map((x) => Math.abs(x - at(xs, 0.5))).sort((a, b) => a - b), 0.5);
  const interval = at(gaps, 0.5);
  const jitter = mad(gaps);
  const steady = gaps.filter((g) => Math.abs(g - interval) <= interval * 0.1).length;
  const tsParts = [skewPart(gaps, Math.min(10_000, interval / 10)), Math.max(0, 1 - jitter / Math.min(30_000, interval / 2)), Math.min(1, steady / 15)];
  let mode = sz[0] as number;
  let best = 0;
  for (const v of new Set(sz)) {
    const count = sz.filter((x) => x === v).length;
    if (count > best) [mode, best] = [v, count];
  }
  const dsParts = [skewPart(sz, 10), Math.max(0, 1 - mad(sz) / 32), Math.max(0, 1 - mode / 65_535)];
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    score: r3((sum(tsParts) + sum(dsParts)) / 6),
    connections: ts.length,
    intervalMs: interval,
    jitterMs: jitter,
    timingScore: r3(sum(tsParts) / 3),
    sizeScore: r3(sum(dsParts) / 3),
  };
}

describe('scoreIntervals on any input', () => {
  it('null or a finite result within [0, 1]; never throws', () => {
    fc.assert(
      fc.property(times, sizes, (ts, ss) => {
        checkResult(scoreIntervals(ts, ss), ts.length);
      }),
      { numRuns: 2000 },
    );
  });

  it('matches a plain reference implementation of the documented method', () => {
    fc.assert(
      fc.property(times, sizes, (ts, ss) => {
        const want = reference(ts, ss);
        const got = scoreIntervals(ts, ss);
        if (want === null) {
          expect(got).toBeNull();
          return;
        }
        expect(got).not.toBeNull();
        expect({ connections: got?.connections, intervalMs: got?.intervalMs, jitterMs: got?.jitterMs }).toEqual({
          connections: want.connections,
          intervalMs: want.intervalMs,
          jitterMs: want.jitterMs,
        });
        // Same formulas, summed in a different order: at most one unit in the third decimal apart.
        for (const k of ['score', 'timingScore', 'sizeScore'] as const) expect(Math.abs((got?.[k] ?? -1) - want[k])).toBeLessThanOrEqual(0.0011);
      }),
      { numRuns: 2000 },
    );
  });

  it('order does not change the result', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: -1e12, max: 1e12 }), fc.nat({ max: 70_000 })), { minLength: 4, maxLength: 64 }), fc.nat(), (pairs, seed) => {
        const sorted = [...pairs].sort((a, b) => a[0] - b[0]);
        const shuffled = [...pairs].sort((a, b) => ((a[0] ^ seed) % 97) - ((b[0] ^ seed) % 97));
        const a = scoreIntervals(sorted.map((p) => p[0]), sorted.map((p) => p[1]));
        const b = scoreIntervals(shuffled.map((p) => p[0]), shuffled.map((p) => p[1]));
        expect(b).toEqual(a);
      }),
      { numRuns: 500 },
    );
  });

  it('any exactly periodic train of 16 or more connections of one size scores a full timing part', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 86_400_000 }),
        fc.integer({ min: 16, max: 64 }),
        fc.integer({ min: -1e12, max: 1e12 }),
        fc.nat({ max: 65_535 }),
        (period, n, start, bytes) => {
          const ts = Array.from({ length: n }, (_, i) => start + i * period);
          const r = scoreIntervals(ts, Array<number>(n).fill(bytes));
          expect(r).toMatchObject({ timingScore: 1, intervalMs: period, jitterMs: 0, connections: n });
        },
      ),
      { numRuns: 300 },
    );
  });
});

type Op = { kind: 'observe'; key: number; at: number; bytes: number } | { kind: 'peek'; key: number } | { kind: 'tick'; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant('observe' as const), key: fc.nat({ max: 12 }), at: fc.oneof(anyNumber, fc.integer({ min: 0, max: 10_000_000 })), bytes: anyNumber }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('peek' as const), key: fc.nat({ max: 12 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.nat({ max: 5000 }) }) },
);

describe('BeaconTracker under any sequence of calls', () => {
  it('never throws, stays within maxKeys, and counts candidates exactly', () => {
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 300 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 4, max: 12 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (ops, maxKeys, maxSamples, candidateScore) => {
          const clock = { t: 1 };
          // A TTL far beyond the ticks, so every key the LRU keeps is live and peek sees all of them.
          const tracker = new BeaconTracker({ maxKeys, maxSamples, candidateScore, ttlMs: 1e9, now: () => clock.t });
          for (const o of ops) {
            if (o.kind === 'tick') clock.t += o.ms;
            else if (o.kind === 'peek') checkResult(tracker.peek(`k${o.key}`), maxSamples);
            else checkResult(tracker.observe(`k${o.key}`, o.at, o.bytes), maxSamples);
            expect(tracker.size).toBeLessThanOrEqual(maxKeys);
            let expected = 0;
            for (let k = 0; k <= 12; k++) if ((tracker.peek(`k${k}`)?.score ?? -1) >= candidateScore) expected++;
            expect(tracker.candidates()).toBe(expected);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('with a short TTL, expired keys leave the count and the size', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 100, max: 900 }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 4, max: 40 }), (periods, rounds) => {
        const clock = { t: 1 };
        const tracker = new BeaconTracker({ maxKeys: 16, ttlMs: 1600, now: () => clock.t });
        // Key i connects every periods[i] ms (odd rounds 10 % late): some keys become candidates.
        for (let round = 0; round < rounds; round++) {
          periods.forEach((period, i) => tracker.observe(`k${i}`, round * period + (round % 2 ? period / 10 : 0), 100));
          clock.t += 50;
        }
        const live = periods.filter((_, i) => (tracker.peek(`k${i}`)?.score ?? -1) >= 0.8).length;
        expect(tracker.candidates()).toBe(live);
        expect(tracker.size).toBe(periods.length);
        clock.t += 1600 + 101; // past the TTL and the next sweep (every 100 ms at this TTL)
        expect(tracker.size).toBe(0);
        expect(tracker.candidates()).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});

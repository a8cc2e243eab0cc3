import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BaselineMirror,
  DEFAULT_HALF_LIFE_MS,
  DEFAULT_LEARNING_MS,
  MAX_KEY_PART,
  PRUNE_BELOW,
  RARE_PREVALENCE,
  addDecayed,
  createMemoryBaseline,
  decayFactor,
  decayedCount,
  expiresAtMs,
  pairKey,
  parseKey,
  prevalence,
  resolveBaselineOptions,
  singleKey,
  type BaselineQuery,
} from '../../../src/enrich/baseline/baseline.js';
import { isEgressError } from '../../../src/errors.js';

const DAY = 24 * 3_600_000;
const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);
const HL = 1_000_000; // a short half-life keeps the arithmetic readable

const q = (over: Partial<BaselineQuery> = {}): BaselineQuery => ({
  host: 'ws001.corp.example',
  process: 'rundll32.exe',
  destination: 'c2-alpha.example',
  ja4: 't13d1516h2_8daaf6152771_e5627efa2ab1',
  ...over,
});

function clock(t = T0): { t: number; now: () => number } {
  const c = { t, now: () => c.t };
  return c;
}

describe('decay math', () => {
  it('halves a count every half-life', () => {
    expect(decayFactor(0, HL)).toBe(1);
    expect(decayFactor(HL, HL)).toBeCloseTo(0.5, 12);
    expect(decayFactor(3 * HL, HL)).toBeCloseTo(0.125, 12);
    expect(decayedCount(8, T0, T0 + 2 * HL, HL)).toBeCloseTo(2, 12);
  });

  it('does not grow a count when the clock steps back', () => {
    expect(decayFactor(-5 * HL, HL)).toBe(1);
    expect(decayedCount(3, T0, T0 - HL, HL)).toBe(3);
  });

  it('adds an increment at a later time by decaying the stored count first', () => {
    const d = { c: 4, t: T0 };
    addDecayed(d, 1, T0 + HL, HL);
    expect(d).toEqual({ c: 3, t: T0 + HL });
  });

  it('adds an older increment decayed to the stored time (late or out-of-order flows)', () => {
    const d = { c: 1, t: T0 + HL };
    addDecayed(d, 1, T0, HL);
    expect(d.t).toBe(T0 + HL);
    expect(d.c).toBeCloseTo(1.5, 12);
  });

  it('gives the same value whatever order the increments arrive in (replicas merge without a shared clock)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.double({ min: 0.01, max: 10, noNaN: true }), fc.integer({ min: 0, max: 20 * HL })), { minLength: 1, maxLength: 30 }), fc.integer(), (incs, seed) => {
        const sum = (list: ReadonlyArray<readonly [number, number]>): number => {
          const d = { c: 0, t: 0 };
          for (const [inc, at] of list) addDecayed(d, inc, T0 + at, HL);
          return decayedCount(d.c, d.t, T0 + 30 * HL, HL);
        };
        const shuffled = [...incs].sort((a, b) => ((a[1] * 31 + seed) % 7) - ((b[1] * 31 + seed) % 7));
        const expected = incs.reduce((acc, [inc, at]) => acc + inc * Math.pow(2, -(30 * HL - at) / HL), 0);
        expect(sum(incs)).toBeCloseTo(expected, 9);
        expect(sum(shuffled)).toBeCloseTo(expected, 9);
      }),
    );
  });

  it('says when a count decays below the prune threshold (one contact: ~6.6 half-lives, about 93 days by default)', () => {
    const e = expiresAtMs(1, T0, HL);
    expect((e - T0) / HL).toBeCloseTo(Math.log2(1 / PRUNE_BELOW), 9);
    expect(decayedCount(1, T0, e, HL)).toBeCloseTo(PRUNE_BELOW, 9);
    expect(decayedCount(50, T0, expiresAtMs(50, T0, HL), HL)).toBeCloseTo(PRUNE_BELOW, 9);
    expect(expiresAtMs(0.005, T0, HL)).toBe(T0);
    expect((expiresAtMs(1, T0, DEFAULT_HALF_LIFE_MS) - T0) / DAY).toBeCloseTo(93, 0);
  });
});

describe('keys', () => {
  it('cannot be forged by a name containing the separator', () => {
    expect(pairKey('pd', 'a:1:b', 'c')).not.toBe(pairKey('pd', 'a', '1:bc'));
    expect(pairKey('hd', 'ab', 'c')).not.toBe(pairKey('hd', 'a', 'bc'));
  });

  it('parse back into their parts (property), cut to MAX_KEY_PART characters', () => {
    fc.assert(
      fc.property(fc.constantFrom('pd' as const, 'pj' as const, 'hd' as const), fc.string({ maxLength: 300 }), fc.string({ maxLength: 300 }), (kind, a, b) => {
        expect(parseKey(pairKey(kind, a, b))).toEqual({ kind, a: a.slice(0, MAX_KEY_PART), b: b.slice(0, MAX_KEY_PART) });
      }),
    );
    fc.assert(
      fc.property(fc.constantFrom('p' as const, 'h' as const, 'dh' as const), fc.string({ maxLength: 300 }), (kind, a) => {
        expect(parseKey(singleKey(kind, a))).toEqual({ kind, a: a.slice(0, MAX_KEY_PART), b: '' });
      }),
    );
  });

  it('read back from a store: anything malformed parses to null, never throws', () => {
    for (const bad of ['', 'x', 'zz:1:ab', 'pd', 'pd:', 'pd:abc:x', 'pd:9:ab', 'pd:-1:a', 'pd:1000:a', `p:${'a'.repeat(MAX_KEY_PART + 1)}`]) {
      expect(parseKey(bad)).toBeNull();
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 600 }), (s) => {
        const p = parseKey(s);
        if (p !== null) expect(['pd', 'pj', 'p', 'hd', 'h', 'dh', 'H']).toContain(p.kind);
      }),
    );
  });
});

describe('memory baseline', () => {
  it('"never contacted before": a process → destination pair it has not seen has count 0 and no first-seen time', () => {
    const c = clock();
    const b = createMemoryBaseline({ now: c.now });
    b.record(q({ destination: 'update.vendor.example' }), T0);
    const f = b.lookup(q());
    expect(f.processDestination).toEqual({ count: 0, firstSeenMs: null });
    expect(f.hostDestination).toEqual({ count: 0, firstSeenMs: null });
    expect(f.processTotal).toBe(1);
    expect(f.processJa4.count).toBe(1);
  });

  it('remembers a pair at once, with its first-seen time, and decays it lazily', () => {
    const c = clock();
    const b = createMemoryBaseline({ now: c.now, halfLifeMs: HL });
    b.record(q(), T0);
    expect(b.lookup(q()).processDestination).toEqual({ count: 1, firstSeenMs: T0 });
    b.record(q(), T0 + HL);
    c.t = T0 + HL;
    expect(b.lookup(q()).processDestination.count).toBeCloseTo(1.5, 12);
    c.t = T0 + 2 * HL;
    const f = b.lookup(q());
    expect(f.processDestination.count).toBeCloseTo(0.75, 12);
    expect(f.processDestination.firstSeenMs).toBe(T0);
    expect(f.hostDestination.count).toBeCloseTo(0.75, 12);
    expect(f.processTotal).toBeCloseTo(0.75, 12);
  });

  it('keeps the earliest first-seen time when flows arrive out of order', () => {
    const c = clock(T0 + 10_000);
    const b = createMemoryBaseline({ now: c.now, halfLifeMs: HL });
    b.record(q(), T0 + 5_000);
    b.record(q(), T0);
    expect(b.lookup(q()).processDestination.firstSeenMs).toBe(T0);
  });

  it('counts distinct hosts per destination: only 1 of 200 hosts went to the rare one (RITA: ≤ 2 % is rare)', () => {
    const c = clock();
    const b = createMemoryBaseline({ now: c.now });
    for (let i = 0; i < 200; i++) {
      b.record(q({ host: `ws${i}`, process: 'chrome.exe', destination: 'popular.example' }), T0 + i);
      b.record(q({ host: `ws${i}`, process: 'chrome.exe', destination: 'popular.example' }), T0 + i); // twice: still one host
    }
    b.record(q({ host: 'ws7', destination: 'c2-alpha.example' }), T0 + 500);
    const rare = b.lookup(q({ host: 'ws7' }));
    expect(rare.destinationHosts).toBe(1);
    expect(rare.totalHosts).toBe(200);
    expect(prevalence(rare)).toBe(0.005);
    expect(prevalence(rare) <= RARE_PREVALENCE).toBe(true);
    const popular = b.lookup(q({ process: 'chrome.exe', destination: 'popular.example' }));
    expect(popular.destinationHosts).toBe(200);
    expect(prevalence(popular)).toBe(1);
    expect(prevalence({ destinationHosts: 0, totalHosts: 0 })).toBe(0);
  });

  it('counts hosts and destinations for unattributed flows, and nothing per process', () => {
    const b = createMemoryBaseline({ now: () => T0 });
    b.record(q({ process: null }), T0);
    const f = b.lookup(q({ process: null }));
    expect(f.hostDestination.count).toBe(1);
    expect(f.destinationHosts).toBe(1);
    expect(f.totalHosts).toBe(1);
    expect(f.processTotal).toBe(0);
    expect(b.lookup(q()).processDestination.count).toBe(0);
    b.record(q({ destination: null, ja4: null }), T0);
    expect(b.lookup(q()).processTotal).toBe(1);
    expect(b.lookup(q()).processJa4.count).toBe(0);
  });

  it('is in its learning period for learningMs (7 days by default) after it starts', () => {
    const c = clock();
    const b = createMemoryBaseline({ now: c.now });
    expect(b.learningUntilMs).toBe(T0 + DEFAULT_LEARNING_MS);
    expect(b.lookup(q()).learning).toBe(true);
    c.t = T0 + 7 * DAY - 1;
    expect(b.lookup(q()).learning).toBe(true);
    c.t = T0 + 7 * DAY;
    expect(b.lookup(q()).learning).toBe(false);
    expect(createMemoryBaseline({ now: c.now, learningMs: 0 }).lookup(q()).learning).toBe(false);
  });

  it('never holds more than maxEntries entries, and a dropped pair leaves the distinct count', () => {
    const b = createMemoryBaseline({ now: () => T0, maxEntries: 100 });
    for (let i = 0; i < 5_000; i++) b.record(q({ host: `ws${i % 50}`, process: `p${i % 7}.exe`, destination: `d${i}.example`, ja4: `j${i % 3}` }), T0 + i);
    expect(b.sizes().entries).toBeLessThanOrEqual(100);
    expect(b.sizes()).toMatchObject({ pendingWrites: 0, droppedWrites: 0 });
    const f = b.lookup(q({ host: 'ws0', destination: 'd0.example' }));
    expect(f.hostDestination.count).toBe(0);
    expect(f.destinationHosts).toBe(0);
    expect(f.totalHosts).toBeLessThanOrEqual(50);
  });

  it('bounds keys made from hostile names (a 100k-character process name)', () => {
    const b = createMemoryBaseline({ now: () => T0 });
    const huge = 'x'.repeat(100_000);
    b.record(q({ process: huge, destination: `${huge}.example` }), T0);
    expect(b.lookup(q({ process: huge, destination: `${huge}.example` })).processDestination.count).toBe(1);
  });

  it('ignores records after close and a non-finite time counts as now', async () => {
    const b = createMemoryBaseline({ now: () => T0 });
    b.record(q(), Number.NaN);
    expect(b.lookup(q()).processDestination.firstSeenMs).toBe(T0);
    await b.close();
    b.record(q(), T0);
    expect(b.lookup(q()).processDestination.count).toBe(1);
  });

  it('refuses nonsensical options with a clear EgressError', () => {
    for (const bad of [{ halfLifeMs: 0 }, { maxEntries: 3 }, { learningMs: -1 }, { flushIntervalMs: Number.NaN }]) {
      let caught: unknown;
      try {
        createMemoryBaseline(bad);
      } catch (err) {
        caught = err;
      }
      expect(isEgressError(caught) && caught.code === 'BASELINE_STORE_FAILED').toBe(true);
      expect((caught as Error).message).toMatch(/^baseline\.\w+ must be a number/);
    }
  });
});

describe('the mirror of a persistent store', () => {
  const mirror = (over: Parameters<typeof resolveBaselineOptions>[0] = {}): BaselineMirror =>
    new BaselineMirror(resolveBaselineOptions({ halfLifeMs: HL, ...over }), true);

  it('queues one delta per key however many flows, and hands them out oldest first', () => {
    const m = mirror();
    for (let i = 0; i < 10; i++) m.record(q(), T0);
    expect(m.pendingCount()).toBe(5); // h, hd, p, pd, pj
    const items = m.take(2);
    expect(items.map((i) => i.entry.kind)).toEqual(['h', 'hd']);
    expect(items[0]?.c).toBe(10);
    expect(m.pendingCount()).toBe(3);
  });

  it('bounds the queue: the oldest keys are dropped and counted', () => {
    const m = mirror({ maxPending: 10 });
    for (let i = 0; i < 50; i++) m.record(q({ host: `ws${i}`, process: null, destination: null }), T0);
    expect(m.pendingCount()).toBe(10);
    expect(m.dropped).toBe(40);
    expect(m.take(100).map((i) => i.entry.key)).toEqual(Array.from({ length: 10 }, (_, i) => singleKey('h', `ws${40 + i}`)));
  });

  it('a failed batch is queued again, merged with what was recorded meanwhile', () => {
    const m = mirror();
    m.record(q({ process: null, destination: null }), T0);
    const items = m.take(10);
    m.record(q({ process: null, destination: null }), T0 + HL);
    m.restore(items);
    const [again] = m.take(10);
    expect(again?.c).toBeCloseTo(1.5, 12);
    expect(again?.t).toBe(T0 + HL);
    expect(again?.f).toBe(T0);
  });

  it('takes the store’s value and re-adds what was recorded since the batch was taken', () => {
    const m = mirror();
    m.record(q(), T0);
    m.take(10);
    m.record(q(), T0);
    m.applyStored(pairKey('pd', 'rundll32.exe', 'c2-alpha.example'), 7, T0, T0 - 5_000); // 6 from other replicas + our 1
    const f = m.lookup(q(), T0, false);
    expect(f.processDestination).toEqual({ count: 8, firstSeenMs: T0 - 5_000 });
  });

  it('counts a new host at once as a guess, and takes the store’s distinct count plus unwritten guesses', () => {
    const m = mirror();
    m.record(q({ host: 'a' }), T0);
    expect(m.lookup(q(), T0, false).destinationHosts).toBe(1);
    const items = m.take(100);
    for (const it of items) m.confirm(it);
    m.record(q({ host: 'b' }), T0); // a second guess, not yet written
    m.applyDistinct(singleKey('dh', 'c2-alpha.example'), 1, T0); // the store: 'a' only
    expect(m.lookup(q(), T0, false).destinationHosts).toBe(2);
  });
});

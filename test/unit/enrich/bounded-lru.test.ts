import { LRUCache } from 'lru-cache';
import { describe, expect, it } from 'vitest';
import { entryBound } from '../../../src/enrich/bounded-lru.js';
import { BaselineMirror, createMemoryBaseline, resolveBaselineOptions } from '../../../src/enrich/baseline/baseline.js';

describe('entryBound', () => {
  it('bounds the cache at maxEntries: the least recently used entries leave with reason "evict"', () => {
    const evicted: string[] = [];
    const cache = new LRUCache<string, number>({ ...entryBound(100), ttl: 60_000, dispose: (_v, k, reason) => reason === 'evict' && evicted.push(k) });
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, i);
    cache.get('k0'); // now the most recently used
    for (let i = 100; i < 250; i++) {
      cache.set(`k${i}`, i);
      expect(cache.size).toBeLessThanOrEqual(100);
    }
    expect(cache.size).toBe(100);
    expect(evicted).toHaveLength(150);
    expect(evicted[0]).toBe('k1');
    expect(cache.has('k0')).toBe(false); // touched once, then 149 newer keys pushed it out too
    expect(cache.has('k249')).toBe(true);
  });

  it('takes memory as it fills, not up front: 20 caches bounded at 500,000 cost no more than a few MB empty', () => {
    // With `max: 500_000` (and a TTL) lru-cache preallocates ~22 MB per cache: 440 MB for these 20.
    const before = process.memoryUsage();
    const caches = Array.from({ length: 20 }, () => new LRUCache<string, number>({ ...entryBound(500_000), ttl: 60_000 }));
    const after = process.memoryUsage();
    const grownMB = (after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers)) / 1e6;
    expect(caches).toHaveLength(20);
    expect(grownMB).toBeLessThan(20);
  });

  it('refuses a bound that is not a positive integer', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => entryBound(bad)).toThrow(RangeError);
    expect(entryBound(16.9).maxSize).toBe(16);
  });
});

describe('the baseline mirror on entryBound', () => {
  it('never holds more than maxEntries, however many keys are recorded', () => {
    const mirror = new BaselineMirror(resolveBaselineOptions({ maxEntries: 64 }), true);
    for (let i = 0; i < 2_000; i++) {
      mirror.record({ host: `ws${i % 37}`, process: `p${i % 11}.exe`, destination: `d${i}.example`, ja4: null }, 1_000 + i);
      expect(mirror.entries.size).toBeLessThanOrEqual(64);
    }
    expect(mirror.entries.size).toBe(64);
  });

  it('allocates nothing for its default bound of 500,000 until entries arrive', () => {
    const before = process.memoryUsage().heapUsed;
    const baselines = Array.from({ length: 10 }, () => createMemoryBaseline());
    expect(baselines.every((b) => b.sizes().entries === 0)).toBe(true);
    expect((process.memoryUsage().heapUsed - before) / 1e6).toBeLessThan(10); // `max` preallocated ~16 MB of JS arrays each
  });
});

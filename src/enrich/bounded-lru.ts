/**
 * A cache bound counted in entries that takes memory as it fills, not up front (issue 9, memory).
 *
 * lru-cache 11 given `max: n` preallocates its bookkeeping for n entries at construction: two JS arrays (keys,
 * values) and three typed arrays (next, prev, free stack) of n slots, plus two more JS arrays when a `ttl` is
 * set (`ZeroArray`, filled with zeros, so every page is touched) — about 44 bytes per slot on 64-bit Node
 * (node_modules/lru-cache/dist/esm/index.js, constructor and `#initializeTTLTracking`). The baseline mirror's
 * default bound of 500,000 entries thus cost ~22 MB of RSS before the first flow, on a proxy whose whole target
 * is 150 MB; most deployments never come near the bound.
 *
 * `maxSize` with every entry of size 1 is the same bound — lru-cache evicts the least recently used entries
 * (dispose reason 'evict') as soon as the total size exceeds `maxSize` — but its arrays start empty and grow
 * with the entries (lru-cache README, "Storage Bounds Safety": with `maxSize`, "a safe limit on the maximum
 * storage consumed, but without the performance benefits of pre-allocation"; the cost is measured in
 * bench/baseline.bench.ts). The one difference: with `max` the LRU entry is evicted before the new one is stored, with `maxSize` just
 * after; the cache never holds more than `maxEntries` once `set` returns either way.
 */

/** The options that bound an lru-cache at `maxEntries` entries without preallocating them. */
export interface EntryBound {
  readonly maxSize: number;
  readonly sizeCalculation: () => number;
}

const ONE = (): number => 1;

/** Spread into lru-cache options instead of `max: maxEntries` (a positive integer; fractions are floored). */
export function entryBound(maxEntries: number): EntryBound {
  const max = Math.floor(maxEntries);
  if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`entryBound: maxEntries must be a positive integer (got ${String(maxEntries)})`);
  return { maxSize: max, sizeCalculation: ONE };
}

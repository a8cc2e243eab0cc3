/**
 * Live beacon detection: a C2 implant checks in on a timer (often with a little jitter) and sends about the
 * same few bytes each time; a person browses in bursts with think times of any length and requests of every
 * size. We keep, per key (the caller builds it from host, process and destination), a ring of the last N
 * connection times and byte counts, and score the ring the way RITA scores a host pair over a dataset.
 *
 * Method: RITA v4's beacon analyzer, activecm/rita-legacy `pkg/beacon/analyzer.go` at commit
 * 0044ff7752c2dd88ac014468a984e7f5ab0d665e, with the guards RITA v5 added in activecm/rita
 * `analysis/beacons.go` at commit a3c51501a93af9ab0ebbed0f15f431bcf536ddf1:
 *   timing  = mean of  1 − |Bowley skew| of the intervals,  1 − MAD/cutoff of the intervals,  connection count
 *   sizes   = mean of  1 − |Bowley skew| of the sizes,      1 − MAD/32 bytes of the sizes,   1 − mode/65535
 *   score   = mean of the six parts (v4: (tsSum + dsSum) / 6)
 * Quartiles are nearest-rank, x[round(p·(n−1))] of the sorted values, as v4 takes them.
 *
 * Where a live ring in milliseconds differs from a day of Zeek logs in seconds (each choice marked below):
 *  - Connection count: v4 divides the pair's connections by (dataset span / 10 s), which over a day of logs
 *    rewards a pair that keeps connecting all day. A ring always holds its N latest connections, so a raw count
 *    would hand every busy key (a person browsing too) the full part. We count the connections that keep the
 *    rhythm, the intervals within ±10 % of the median interval, and give the full part at 15 of them (16
 *    connections): min(1, steady / 15). Four perfectly regular connections score 0.2 on it, sixteen score 1.
 *    Over 2 000 simulated runs of 32 connections this moved the highest score of human-like traffic
 *    (exponential or uniform gaps of 0.2–300 s, varied sizes) from 0.70 (raw count) to 0.59.
 *  - Interval dispersion: v4 cuts off at an absolute 30 s MAD, which forgives everything for a 2 s beacon and
 *    for a person clicking every few seconds. The cutoff here is min(30 s, median interval / 2): RITA's 30 s
 *    from a 60 s period up, the same relative tolerance below it.
 *  - Interval skew: v5 ignores skew when the IQR is under 10 (seconds). In milliseconds a few ms of timer noise
 *    would otherwise read as strong skew, so skew counts only when the IQR is at least min(10 s, median / 10).
 *  - Bursts: at one-second resolution RITA sees two connections of one check-in as a zero interval and drops
 *    it (v5 getTimestampScore). In milliseconds they are a few ms apart, so a connection within 100 ms of the
 *    check-in before it joins that check-in, and intervals run from check-in to check-in.
 *
 * Byte counts are known when a flow ends, so the caller observes a flow once, at its end, passing the time the
 * flow started (the check-in time) and the bytes the client sent; the score returned then is the flow's. Flows
 * of one key can end out of order: the ring is sorted before scoring. To act at connect time, `peek` gives the
 * score of the connections seen so far.
 *
 * Cost: one observe sorts three lists of at most `maxSamples` numbers by insertion (the times, oldest first so
 * nearly sorted; the intervals; the sizes) in scratch Float64Arrays the tracker reuses; quartiles are then read
 * off and each MAD is a merge outward from the median, without a fourth sort. It allocates only the result
 * object. Memory: a key's ring starts at 4 samples and doubles up to `maxSamples` (16 bytes a sample), so the
 * many keys seen only a few times stay small; at the defaults (50 000 keys, full 32-sample rings) about 25 MB
 * of heap, measured (bench/beacon.bench.ts).
 */
import { LRUCache } from 'lru-cache';
import { entryBound } from '../enrich/bounded-lru.js';

export interface BeaconOptions {
  /** Connections in the ring before a score is given; at least 4 (RITA needs 3 intervals). Default 4. */
  readonly minConnections?: number;
  /** Ring of the last N timestamps and byte counts per key. Default 32. */
  readonly maxSamples?: number;
  /** Keys tracked, least recently observed dropped beyond. Default 50 000. */
  readonly maxKeys?: number;
  /** A key not observed for this long is dropped, milliseconds. Default 24 h. */
  readonly ttlMs?: number;
  /** Keys whose last score is at least this count as candidates (`candidates()`). Default 0.8. */
  readonly candidateScore?: number;
  /** Clock for the TTL, milliseconds; tests pass a fake one. Default performance.now. */
  readonly now?: () => number;
}

export interface BeaconResult {
  /** 0..1, 3 decimals. */
  readonly score: number;
  /** Connections in the ring. */
  readonly connections: number;
  /** Median interval between connections, ms. */
  readonly intervalMs: number;
  /** Median absolute deviation of the intervals about their median, ms. */
  readonly jitterMs: number;
  /** Mean of the three timing parts, 0..1, 3 decimals. */
  readonly timingScore: number;
  /** Mean of the three size parts, 0..1, 3 decimals. */
  readonly sizeScore: number;
}

// RITA v4 analyzer.go: "cutoff dispersion scores at 30 seconds".
const TS_MAD_CUTOFF_MS = 30_000;
// RITA v4 analyzer.go: "cutoff dispersion scores at 32 bytes".
const DS_MAD_CUTOFF_BYTES = 32;
// RITA v4 analyzer.go: "smaller data sizes receive a higher score", dsSmallnessScore = 1 − dsMode / 65535.
const DS_SMALLNESS_BYTES = 65_535;
// RITA v5 beacons.go calculateBowleySkewness: skew is zero when the denominator (IQR) is under 10.
const DS_SKEW_MIN_IQR_BYTES = 10;
const TS_SKEW_MIN_IQR_MS = 10_000;
// Our choice (header): an interval within ±10 % of the median keeps the rhythm; 15 such give the full part.
const STEADY_TOLERANCE = 0.1;
const FULL_STEADY_INTERVALS = 15;
// Our choice (header): intervals shorter than this are one check-in split over several connections.
const BURST_MS = 100;
// RITA v5 getTimestampScore: at least 4 timestamps and 3 non-zero intervals.
const MIN_TIMESTAMPS = 4;
const MIN_INTERVALS = 3;
const MIN_SIZES = 3;
/** Inputs are clamped to this so sums and differences stay finite. */
const MAX_MAGNITUDE = Number.MAX_SAFE_INTEGER;
const INITIAL_CAPACITY = 4;
/** Stale keys removed per sweep at most, so one call never pauses the event loop for long. */
const SWEEP_BATCH = 512;

// ---- the pure core -------------------------------------------------------------------------------------------

/** Reusable work arrays; grown when a caller scores more values than they hold. */
class Scratch {
  ts: Float64Array;
  gaps: Float64Array;
  sizes: Float64Array;

  constructor(n: number) {
    this.ts = new Float64Array(n);
    this.gaps = new Float64Array(n);
    this.sizes = new Float64Array(n);
  }

  ensure(n: number): void {
    if (this.ts.length >= n) return;
    const size = Math.max(n, this.ts.length * 2);
    this.ts = new Float64Array(size);
    this.gaps = new Float64Array(size);
    this.sizes = new Float64Array(size);
  }
}

const shared = new Scratch(64);

/** Sort a[0..n) ascending: insertion sort up to 64 values (cheap at ring size, O(n) when nearly sorted). */
function sortPrefix(a: Float64Array, n: number): void {
  if (n > 64) {
    a.subarray(0, n).sort(); // typed arrays sort numerically
    return;
  }
  for (let i = 1; i < n; i++) {
    const v = a[i] as number;
    let j = i - 1;
    while (j >= 0 && (a[j] as number) > v) {
      a[j + 1] = a[j] as number;
      j--;
    }
    a[j + 1] = v;
  }
}

/** Nearest-rank index of quantile p among n sorted values, as RITA v4 takes it: round(p·(n−1)). */
function rank(n: number, p: number): number {
  return Math.round(p * (n - 1));
}

/**
 * 1 − |Bowley skew|, (Q1 + Q3 − 2·Q2) / (Q3 − Q1). Skew is taken as zero when the IQR is under `minIqr` or
 * when the median equals a quartile ("bowley skew is unreliable if Q2 = Q1 or Q2 = Q3", RITA v4 analyzer.go;
 * v5 calculateBowleySkewness adds the minimum IQR).
 */
function skewScore(q1: number, q2: number, q3: number, minIqr: number): number {
  const den = q3 - q1;
  if (den < minIqr || den <= 0 || q2 === q1 || q2 === q3) return 1;
  // (q1 − q2) + (q3 − q2) rather than q1 + q3 − 2·q2: no overflow for huge values.
  const skew = (q1 - q2 + (q3 - q2)) / den;
  return clamp01(1 - Math.abs(skew));
}

/**
 * Median absolute deviation about the median of sorted a[0..n) (RITA v4 analyzer.go: the nearest-rank median
 * of |x − Q2|). The deviations below the median and those above it are each already in order, so the median
 * deviation is found by merging the two runs outward from the median: n/2 steps, no sort.
 */
function medianAbsoluteDeviation(a: Float64Array, n: number): number {
  const k = rank(n, 0.5);
  const median = a[k] as number;
  let below = k; // next candidate a[below], deviation median − a[below]
  let above = k + 1; // next candidate a[above], deviation a[above] − median
  let dev = 0;
  for (let taken = 0; taken <= k; taken++) {
    const down = below >= 0 ? median - (a[below] as number) : Infinity;
    const up = above < n ? (a[above] as number) - median : Infinity;
    if (down <= up) {
      dev = down;
      below--;
    } else {
      dev = up;
      above++;
    }
  }
  return dev;
}

/** The most frequent value of sorted a[0..n); ties go to the smallest, as RITA's createCountMap does. */
function modeOfSorted(a: Float64Array, n: number): number {
  let mode = a[0] as number;
  let best = 0;
  let run = 0;
  for (let i = 0; i < n; i++) {
    run = i > 0 && a[i] === a[i - 1] ? run + 1 : 1;
    if (run > best) {
      best = run;
      mode = a[i] as number;
    }
  }
  return mode;
}

function clamp01(x: number): number {
  return x > 0 ? (x < 1 ? x : 1) : 0; // NaN → 0
}

function round3(x: number): number {
  return Math.round(clamp01(x) * 1000) / 1000;
}

function clampTimestamp(t: number): number {
  return t > MAX_MAGNITUDE ? MAX_MAGNITUDE : t < -MAX_MAGNITUDE ? -MAX_MAGNITUDE : t;
}

function clampBytes(b: number): number {
  return b > 0 ? (b < MAX_MAGNITUDE ? b : MAX_MAGNITUDE) : 0; // NaN and negatives → 0
}

/**
 * Score prepared scratch: s.ts[0..nTs) finite timestamps, s.sizes[0..nSizes) clamped byte counts, both in
 * any order. Null when there is too little to score.
 */
function scorePrepared(s: Scratch, nTs: number, nSizes: number): BeaconResult | null {
  if (nTs < MIN_TIMESTAMPS || nSizes < MIN_SIZES) return null;
  const ts = s.ts;
  const gaps = s.gaps;
  sortPrefix(ts, nTs);
  // Intervals between check-ins: a connection within BURST_MS of the check-in before it joins that check-in.
  let m = 0;
  let checkIn = ts[0] as number;
  for (let i = 1; i < nTs; i++) {
    const gap = (ts[i] as number) - checkIn;
    if (gap >= BURST_MS) {
      gaps[m++] = gap;
      checkIn = ts[i] as number;
    }
  }
  if (m < MIN_INTERVALS) return null;

  // Timing: skew, dispersion, connection count.
  sortPrefix(gaps, m);
  const interval = gaps[rank(m, 0.5)] as number;
  const tsSkew = skewScore(gaps[rank(m, 0.25)] as number, interval, gaps[rank(m, 0.75)] as number, Math.min(TS_SKEW_MIN_IQR_MS, interval / 10));
  const jitter = medianAbsoluteDeviation(gaps, m);
  const tsMad = clamp01(1 - jitter / Math.min(TS_MAD_CUTOFF_MS, interval / 2));
  let steady = 0;
  for (let i = 0; i < m; i++) if (Math.abs((gaps[i] as number) - interval) <= interval * STEADY_TOLERANCE) steady++;
  const tsCount = Math.min(1, steady / FULL_STEADY_INTERVALS);

  // Sizes: skew, dispersion, smallness.
  const sizes = s.sizes;
  sortPrefix(sizes, nSizes);
  const sizeMedian = sizes[rank(nSizes, 0.5)] as number;
  const dsSkew = skewScore(sizes[rank(nSizes, 0.25)] as number, sizeMedian, sizes[rank(nSizes, 0.75)] as number, DS_SKEW_MIN_IQR_BYTES);
  const dsMad = clamp01(1 - medianAbsoluteDeviation(sizes, nSizes) / DS_MAD_CUTOFF_BYTES);
  const dsSmall = clamp01(1 - modeOfSorted(sizes, nSizes) / DS_SMALLNESS_BYTES);

  const tsSum = tsSkew + tsMad + tsCount;
  const dsSum = dsSkew + dsMad + dsSmall;
  return {
    score: round3((tsSum + dsSum) / 6),
    connections: nTs,
    intervalMs: interval,
    jitterMs: jitter,
    timingScore: round3(tsSum / 3),
    sizeScore: round3(dsSum / 3),
  };
}

/**
 * Score connection times (ms, any order) and the bytes each sent. The two lists are scored separately, as RITA
 * does, and may differ in length. Null with fewer than 4 timestamps, fewer than 3 intervals of 100 ms or more,
 * or fewer than 3 sizes. Non-finite timestamps are skipped; sizes that are not positive numbers count as 0.
 */
export function scoreIntervals(timestampsMs: readonly number[], sizes: readonly number[]): BeaconResult | null {
  const s = shared;
  s.ensure(Math.max(timestampsMs.length, sizes.length));
  let nTs = 0;
  for (const t of timestampsMs) if (Number.isFinite(t)) s.ts[nTs++] = clampTimestamp(t);
  for (let i = 0; i < sizes.length; i++) s.sizes[i] = clampBytes(sizes[i] as number);
  return scorePrepared(s, nTs, sizes.length);
}

// ---- plain words ---------------------------------------------------------------------------------------------

/** Seconds with one decimal, or whole milliseconds when the interval is under 1 s; the jitter in the same unit. */
function formatMs(ms: number, seconds: boolean): string {
  return seconds ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/** e.g. "beacon: 24 connections every 5.1 s ± 0.3 s (score 0.953)". */
export function describeBeacon(r: BeaconResult): string {
  const seconds = r.intervalMs >= 1000;
  return `beacon: ${r.connections} connections every ${formatMs(r.intervalMs, seconds)} ± ${formatMs(r.jitterMs, seconds)} (score ${r.score.toFixed(3)})`;
}

// ---- the live tracker ----------------------------------------------------------------------------------------

/** One key's ring: timestamps in buf[0..cap), byte counts in buf[cap..2·cap); grows by doubling to maxSamples. */
interface Ring {
  buf: Float64Array;
  cap: number;
  count: number;
  /** Next slot to write; once the ring is full, also the oldest sample. */
  head: number;
  last: BeaconResult | null;
  candidate: boolean;
}

function positiveInteger(name: string, value: number | undefined, fallback: number, min: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min) throw new RangeError(`BeaconTracker: ${name} must be an integer ≥ ${min}, got ${String(value)}`);
  return v;
}

export class BeaconTracker {
  readonly #minConnections: number;
  readonly #maxSamples: number;
  readonly #candidateScore: number;
  readonly #now: () => number;
  readonly #cache: LRUCache<string, Ring>;
  readonly #scratch: Scratch;
  readonly #sweepEveryMs: number;
  #nextSweep: number;
  #candidates = 0;

  constructor(opts: BeaconOptions = {}) {
    this.#maxSamples = positiveInteger('maxSamples', opts.maxSamples, 32, MIN_TIMESTAMPS);
    this.#minConnections = positiveInteger('minConnections', opts.minConnections, MIN_TIMESTAMPS, MIN_TIMESTAMPS);
    if (this.#minConnections > this.#maxSamples) {
      throw new RangeError(`BeaconTracker: minConnections (${this.#minConnections}) exceeds maxSamples (${this.#maxSamples})`);
    }
    const maxKeys = positiveInteger('maxKeys', opts.maxKeys, 50_000, 1);
    const ttlMs = positiveInteger('ttlMs', opts.ttlMs, 24 * 3_600_000, 1);
    const candidateScore = opts.candidateScore ?? 0.8;
    if (!(candidateScore >= 0 && candidateScore <= 1)) throw new RangeError(`BeaconTracker: candidateScore must be within 0..1, got ${candidateScore}`);
    this.#candidateScore = candidateScore;
    const clock = opts.now ?? (() => performance.now());
    this.#now = clock;
    this.#scratch = new Scratch(this.#maxSamples);
    this.#cache = new LRUCache<string, Ring>({
      ...entryBound(maxKeys),
      ttl: ttlMs,
      // Observing a key keeps it alive: its TTL counts from its last connection.
      updateAgeOnGet: true,
      // lru-cache caches its clock for ttlResolution ms behind a timer; reading it each time is cheap and keeps a
      // fake clock exact. lru-cache reads a start time of 0 as "no TTL": shift the clock off 0.
      ttlResolution: 0,
      perf: { now: () => clock() + 1 },
      dispose: (ring) => {
        if (ring.candidate) this.#candidates--;
      },
    });
    // lru-cache drops a stale key when it is next read, not before (its purgeStale scans every key: 15–50 ms
    // for 50 000 here). Observing a key both refreshes its TTL and makes it the most recent, so the stale keys
    // are always the least recent ones: a sweep walks from that end and stops at the first live key. It runs
    // at most every second (or 1/16 of the TTL) and removes at most SWEEP_BATCH keys per call.
    this.#sweepEveryMs = Math.min(1000, Math.max(1, ttlMs / 16));
    this.#nextSweep = clock() + this.#sweepEveryMs;
  }

  /** Keys tracked (stale ones leave within a second, or 1/16 of the TTL, of expiring). */
  get size(): number {
    this.#sweep();
    return this.#cache.size;
  }

  /**
   * Record one connection of `key` that started at `atMs` and sent `bytesSent` bytes (call at flow end, when
   * the byte count is known); returns the score over the ring, null below minConnections. A non-finite `atMs`
   * is not recorded (the current score is returned); a byte count that is not a positive number counts as 0.
   */
  observe(key: string, atMs: number, bytesSent: number): BeaconResult | null {
    this.#sweep();
    if (!Number.isFinite(atMs)) return this.peek(key);
    let ring = this.#cache.get(key);
    if (ring === undefined) {
      const cap = Math.min(INITIAL_CAPACITY, this.#maxSamples);
      ring = { buf: new Float64Array(cap * 2), cap, count: 0, head: 0, last: null, candidate: false };
      this.#cache.set(key, ring);
    }
    this.#push(ring, clampTimestamp(atMs), clampBytes(bytesSent));
    const result = ring.count >= this.#minConnections ? this.#score(ring) : null;
    ring.last = result;
    const candidate = result !== null && result.score >= this.#candidateScore;
    if (candidate !== ring.candidate) {
      ring.candidate = candidate;
      this.#candidates += candidate ? 1 : -1;
    }
    return result;
  }

  /** Score of the ring as it stands, without recording (and without refreshing the key's LRU place or TTL). */
  peek(key: string): BeaconResult | null {
    return this.#cache.peek(key)?.last ?? null;
  }

  /** Keys whose last score is at least `candidateScore`: a running count, O(1) apart from the lazy sweep. */
  candidates(): number {
    this.#sweep();
    return this.#candidates;
  }

  #sweep(): void {
    const t = this.#now();
    if (t < this.#nextSweep) return;
    const cache = this.#cache;
    let stale: string[] | null = null;
    // rkeys() walks from the least recent key but skips stale ones unless the cache allows them.
    cache.allowStale = true;
    try {
      for (const key of cache.rkeys()) {
        if (cache.getRemainingTTL(key) >= 0 || (stale?.length ?? 0) === SWEEP_BATCH) break;
        (stale ??= []).push(key);
      }
    } finally {
      cache.allowStale = false;
    }
    if (stale !== null) for (const key of stale) cache.delete(key);
    // A full batch may have left more behind: continue at the next call.
    this.#nextSweep = stale !== null && stale.length === SWEEP_BATCH ? t : t + this.#sweepEveryMs;
  }

  #push(ring: Ring, t: number, bytes: number): void {
    if (ring.count === ring.cap && ring.cap < this.#maxSamples) {
      // Full below maxSamples: nothing was overwritten yet, so the samples sit in order at [0, count) and the
      // next one goes after them (head had wrapped to 0).
      const cap = Math.min(ring.cap * 2, this.#maxSamples);
      const buf = new Float64Array(cap * 2);
      buf.set(ring.buf.subarray(0, ring.count), 0);
      buf.set(ring.buf.subarray(ring.cap, ring.cap + ring.count), cap);
      ring.buf = buf;
      ring.cap = cap;
      ring.head = ring.count;
    }
    ring.buf[ring.head] = t;
    ring.buf[ring.cap + ring.head] = bytes;
    ring.head = ring.head + 1 === ring.cap ? 0 : ring.head + 1;
    if (ring.count < ring.cap) ring.count++;
  }

  #score(ring: Ring): BeaconResult | null {
    const s = this.#scratch;
    const n = ring.count;
    // Oldest first, so the insertion sort meets nearly sorted input.
    const start = n < ring.cap ? 0 : ring.head;
    for (let i = 0, j = start; i < n; i++, j = j + 1 === ring.cap ? 0 : j + 1) {
      s.ts[i] = ring.buf[j] as number;
      s.sizes[i] = ring.buf[ring.cap + j] as number;
    }
    return scorePrepared(s, n, n);
  }
}

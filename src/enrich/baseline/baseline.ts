/**
 * The baseline store: decayed counters of what each process, each host and the fleet normally talk to, so the
 * scorer can say "rundll32.exe never contacted c2-alpha.example before" and "only 1 of 200 hosts ever went to
 * this domain". RITA raises a connection's score when its destination's prevalence (the share of internal hosts
 * that contacted it) is ≤ 2 % and when it was first seen ≤ 7 days ago (activecm/rita default_config.hjson,
 * `prevalence_increase_threshold: 0.02`, `first_seen_increase_threshold: 7`); these counters give both.
 *
 * ## What is counted (per flow, `record`)
 *   process → destination (`pd`), process → JA4 (`pj`), process (`p`, fleet-wide), host → destination (`hd`),
 *   host (`h`): decayed counts with a first-seen time; and two distinct counts: hosts per destination (`dh`) and
 *   hosts in all (`H`).
 *
 * ## Decay
 * A count halves every `halfLifeMs` (default 14 days): value(t) = count · 2^(−(t − last)/halfLife). Each counter
 * stores (count at `last`, `last`, first seen) and the decay is applied lazily, on read and on write, so nothing
 * walks the store to age it. Increments are sums of independently decayed terms, so merging is order-free: an
 * increment older than `last` is decayed to `last` and added (`addDecayed`), which lets replicas and out-of-order
 * flows merge without a shared clock. A counter whose value falls below 0.01 (6.6 half-lives after a single
 * contact: ~93 days at the default, about RITA's `months_to_keep_historical_first_seen: 3`) is pruned.
 *
 * ## Distinct hosts do not decay
 * "How many hosts" is a prevalence, not a weight: a host that went once to a domain is as much one of the hosts
 * that know it as a host that goes daily (RITA counts distinct hosts too). So `dh` and `H` are plain counts of
 * members — but a member leaves when its own decayed counter (host → destination, host) is pruned, so "ever"
 * means "within the retention horizon" and the counts cannot grow without bound.
 *
 * ## Mirror (this module) and backends
 * Every backend answers `lookup` synchronously from a bounded in-memory mirror (lru-cache, `maxEntries` taken as
 * entries arrive, TTL of `MIRROR_TTL_HALF_LIVES` half-lives, with a nested read index: see BaselineMirror) and
 * `record` updates the mirror at once, so the next flow sees it. In memory-only mode the mirror is all there is:
 * at the bound, a dropped pair leaves its destination's host count, and a dropped destination count restarts from
 * its next contact (approximate at the bound; exact with a store). The embedded (SQLite) and shared (Redis)
 * backends also queue the increments as per-key deltas (one pending delta per key, however many flows) and
 * persist them in batches off the hot path; when the store answers with a key's authoritative value, the mirror
 * takes it and re-adds whatever was recorded since (`applyStored`).
 * A lookup that misses the mirror reads as "never seen": the hot path never waits for storage, so a key evicted
 * from the mirror looks new to the next flow (only), until it is recorded and the store's value comes back.
 *
 * Hosts per destination in the mirror: a host → destination pair the mirror did not hold is counted at once
 * (a "guess", nearly always right: the pair is new); the store then says whether it really was new, and the
 * mirror takes the store's count plus the guesses not yet written.
 */
import { LRUCache } from 'lru-cache';
import { EgressError, type ErrorCode } from '../../errors.js';
import { entryBound } from '../bounded-lru.js';

// ---- API --------------------------------------------------------------------------------------------------

export interface BaselineQuery {
  /** host.name, or the client IP when unknown. */
  readonly host: string;
  /** process.name (lower-case), or null when unattributed. */
  readonly process: string | null;
  /** Registrable domain, or the IP when there is no name. */
  readonly destination: string | null;
  readonly ja4: string | null;
}

export interface CountFact {
  /** Decayed count now; 0 = never (or forgotten). */
  readonly count: number;
  /** First contact (ms since the epoch); null = never. */
  readonly firstSeenMs: number | null;
}

export interface BaselineFacts {
  readonly processDestination: CountFact;
  readonly processJa4: CountFact;
  /** Decayed count of all flows of this process (fleet-wide). */
  readonly processTotal: number;
  readonly hostDestination: CountFact;
  /** Distinct hosts that contacted the destination (within the retention horizon). */
  readonly destinationHosts: number;
  /** Distinct hosts seen (within the retention horizon). */
  readonly totalHosts: number;
  /** Still in the learning period: novelty means little yet. */
  readonly learning: boolean;
}

export interface BaselineSizes {
  /** Entries in the mirror (≤ maxEntries). */
  readonly entries: number;
  /** Keys with increments not yet persisted (queued or being written). */
  readonly pendingWrites: number;
  /** Keys whose queued increments were dropped because the queue was full (store down or too slow). */
  readonly droppedWrites: number;
}

export interface Baseline {
  /** Synchronous, from the mirror (no I/O). */
  lookup(q: BaselineQuery): BaselineFacts;
  /** Synchronous: updates the mirror at once and queues the increments for the store. */
  record(q: BaselineQuery, atMs: number): void;
  /** End of the learning period (first start + learningMs; the first start is persisted by the stores). */
  readonly learningUntilMs: number;
  sizes(): BaselineSizes;
  /** Persist what is queued now; rejects (EgressError) when the store failed (the increments stay queued). */
  flush(): Promise<void>;
  /** Persist what it can, then release the store. Never rejects; failures go to onError. */
  close(): Promise<void>;
}

export interface BaselineOptions {
  /** Half-life of the counts (default 14 days). */
  readonly halfLifeMs?: number;
  /** Learning period, counted from the store's first start (default 7 days). */
  readonly learningMs?: number;
  /** Mirror entries (default 500,000; LRU beyond). */
  readonly maxEntries?: number;
  /** Queued increments are persisted at least this often (default 1 s). */
  readonly flushIntervalMs?: number;
  /** Keys per write batch (one SQLite transaction or one Redis script call; default 1,000). */
  readonly maxBatch?: number;
  /**
   * Keys queued at most (default max(maxEntries, 100,000): a queued key is a pointer to its mirror entry, so a
   * slow store only delays the write); beyond, the oldest queued keys' increments are dropped and counted.
   */
  readonly maxPending?: number;
  /** Clock for decay and learning (tests). Default Date.now. */
  readonly now?: () => number;
  /** Store failures after start (never contains counted names). */
  readonly onError?: (err: Error) => void;
}

export const DEFAULT_HALF_LIFE_MS = 14 * 24 * 3_600_000;
export const DEFAULT_LEARNING_MS = 7 * 24 * 3_600_000;
export const DEFAULT_MAX_ENTRIES = 500_000;
export const DEFAULT_FLUSH_INTERVAL_MS = 1_000;
export const DEFAULT_MAX_BATCH = 1_000;
/** Counters whose decayed value falls below this are pruned (and their host leaves the distinct counts). */
export const PRUNE_BELOW = 0.01;
/** Mirror TTL in half-lives: an idle single contact has decayed to 2^-7 < PRUNE_BELOW by then. */
export const MIRROR_TTL_HALF_LIVES = 7;
/** RITA's rare-destination threshold: prevalence ≤ 2 % of hosts (default_config.hjson prevalence_increase_threshold). */
export const RARE_PREVALENCE = 0.02;
/** Key parts (process, host, destination, JA4) are cut to this many characters: bounded keys whatever a host sends. */
export const MAX_KEY_PART = 256;

/** The error code for a baseline store that cannot be opened (bad directory, corrupt or foreign database file, Redis unreachable at start). */
export const BASELINE_ERROR_CODE: ErrorCode = 'BASELINE_STORE_FAILED';

export function baselineError(message: string, cause?: unknown): EgressError {
  return new EgressError(BASELINE_ERROR_CODE, message, cause === undefined ? undefined : { cause });
}

export { messageOf } from '../../errors.js';

/**
 * Passes store failures to onError, each distinct message at most once per `quietMs` (a store that is down
 * fails every flush; one line per cause is enough). A throwing handler cannot break the store.
 */
export function createReporter(label: string, onError: ((err: Error) => void) | undefined, quietMs = 10_000): (message: string) => void {
  const last = new Map<string, number>();
  return (message) => {
    if (onError === undefined) return;
    const now = Date.now();
    const at = last.get(message);
    if (at !== undefined && now - at < quietMs) return;
    if (last.size > 100) last.clear();
    last.set(message, now);
    try {
      onError(new Error(`${label}: ${message}`));
    } catch {
      // the caller's handler must not break the store
    }
  };
}

/** Share of hosts that contacted the destination (0 when no host is known). */
export function prevalence(facts: Pick<BaselineFacts, 'destinationHosts' | 'totalHosts'>): number {
  return facts.totalHosts > 0 ? facts.destinationHosts / facts.totalHosts : 0;
}

// ---- decay math (pure) ---------------------------------------------------------------------------------------

/** 2^(−elapsed/halfLife); elapsed < 0 (a clock step back) counts as 0. */
export function decayFactor(elapsedMs: number, halfLifeMs: number): number {
  return elapsedMs <= 0 ? 1 : Math.pow(2, -elapsedMs / halfLifeMs);
}

/** The value at `atMs` of a count stored at `lastMs`. */
export function decayedCount(count: number, lastMs: number, atMs: number, halfLifeMs: number): number {
  return count * decayFactor(atMs - lastMs, halfLifeMs);
}

export interface DecayingCount {
  c: number;
  t: number;
}

/**
 * Adds `inc` counted at `atMs` into `d` (count `d.c` at `d.t`), in place: the sum of two decayed terms, so the
 * result does not depend on the order in which increments arrive. `d.t` becomes max(d.t, atMs).
 */
export function addDecayed(d: DecayingCount, inc: number, atMs: number, halfLifeMs: number): void {
  if (atMs >= d.t) {
    d.c = d.c * decayFactor(atMs - d.t, halfLifeMs) + inc;
    d.t = atMs;
  } else {
    d.c += inc * decayFactor(d.t - atMs, halfLifeMs);
  }
}

/** When a count `c` at `t` decays below PRUNE_BELOW: t + halfLife · log2(c / PRUNE_BELOW). */
export function expiresAtMs(c: number, t: number, halfLifeMs: number): number {
  return c > PRUNE_BELOW ? t + halfLifeMs * Math.log2(c / PRUNE_BELOW) : t;
}

// ---- keys ------------------------------------------------------------------------------------------------------

/** Decaying counters. */
export type CounterKind = 'pd' | 'pj' | 'p' | 'hd' | 'h';
/** Counters plus the distinct-host counts (per destination, all). */
export type EntryKind = CounterKind | 'dh' | 'H';

export const TOTAL_HOSTS_KEY = 'H';

const cut = (s: string): string => (s.length > MAX_KEY_PART ? s.slice(0, MAX_KEY_PART) : s);

/** `kind:<length of a>:<a><b>`: length-prefixed, so no process or host name can forge another pair's key. */
export function pairKey(kind: 'pd' | 'pj' | 'hd', a: string, b: string): string {
  const x = cut(a);
  return `${kind}:${x.length}:${x}${cut(b)}`;
}

export function singleKey(kind: 'p' | 'h' | 'dh', a: string): string {
  return `${kind}:${cut(a)}`;
}

export interface ParsedKey {
  readonly kind: EntryKind;
  readonly a: string;
  readonly b: string;
}

const PAIR_KINDS: ReadonlySet<string> = new Set(['pd', 'pj', 'hd']);
const SINGLE_KINDS: ReadonlySet<string> = new Set(['p', 'h', 'dh']);
const DIGITS = /^[0-9]{1,3}$/;

/** The parts of a key made by pairKey/singleKey (or 'H'); null for anything else (keys read back from a store). */
export function parseKey(key: string): ParsedKey | null {
  if (key === TOTAL_HOSTS_KEY) return { kind: 'H', a: '', b: '' };
  const colon = key.indexOf(':');
  if (colon < 0) return null;
  const kind = key.slice(0, colon);
  if (SINGLE_KINDS.has(kind)) {
    const a = key.slice(colon + 1);
    return a.length <= MAX_KEY_PART ? { kind: kind as EntryKind, a, b: '' } : null;
  }
  if (!PAIR_KINDS.has(kind)) return null;
  const second = key.indexOf(':', colon + 1);
  if (second < 0) return null;
  const lenText = key.slice(colon + 1, second);
  if (!DIGITS.test(lenText)) return null;
  const len = Number(lenText);
  const rest = key.slice(second + 1);
  if (len > rest.length || len > MAX_KEY_PART || rest.length - len > MAX_KEY_PART) return null;
  return { kind: kind as EntryKind, a: rest.slice(0, len), b: rest.slice(len) };
}

/** The distinct-count key a counter feeds: host → destination feeds `dh:<destination>`, host feeds `H`. */
export function distinctKeyOf(p: ParsedKey): string | null {
  if (p.kind === 'hd') return singleKey('dh', p.b);
  if (p.kind === 'h') return TOTAL_HOSTS_KEY;
  return null;
}

// ---- options ------------------------------------------------------------------------------------------------

export interface ResolvedBaselineOptions {
  readonly halfLifeMs: number;
  readonly learningMs: number;
  readonly maxEntries: number;
  readonly flushIntervalMs: number;
  readonly maxBatch: number;
  readonly maxPending: number;
  readonly now: () => number;
  readonly onError: ((err: Error) => void) | undefined;
}

function positive(name: string, v: number | undefined, dflt: number, min: number): number {
  const x = v ?? dflt;
  if (typeof x !== 'number' || !Number.isFinite(x) || x < min) throw baselineError(`baseline.${name} must be a number ≥ ${min} (got ${String(v)})`);
  return x;
}

export function resolveBaselineOptions(opts: BaselineOptions): ResolvedBaselineOptions {
  const maxEntries = Math.floor(positive('maxEntries', opts.maxEntries, DEFAULT_MAX_ENTRIES, 16));
  return {
    halfLifeMs: positive('halfLifeMs', opts.halfLifeMs, DEFAULT_HALF_LIFE_MS, 1),
    learningMs: positive('learningMs', opts.learningMs, DEFAULT_LEARNING_MS, 0),
    maxEntries,
    flushIntervalMs: positive('flushIntervalMs', opts.flushIntervalMs, DEFAULT_FLUSH_INTERVAL_MS, 1),
    maxBatch: Math.floor(positive('maxBatch', opts.maxBatch, DEFAULT_MAX_BATCH, 1)),
    maxPending: Math.floor(positive('maxPending', opts.maxPending, Math.max(maxEntries, 100_000), 1)),
    now: opts.now ?? Date.now,
    onError: opts.onError,
  };
}

// ---- the mirror ---------------------------------------------------------------------------------------------

/** One counter (decaying) or distinct count (`dh`, `H`: `c` is the number of hosts) in the mirror. */
export class BaselineEntry implements DecayingCount {
  /** The store key (pairKey/singleKey, or 'H'). */
  readonly key: string;
  /** The distinct count this counter feeds (hd → dh:<destination>, h → H), else null. */
  readonly distinctKey: string | null;
  /** Count at `t` (distinct kinds: hosts). */
  c = 0;
  /** Last update, ms. */
  t = 0;
  /** First seen, ms. */
  f = 0;
  /** Increments not yet handed to the store: count `pc` at `pt`, earliest at `pf` (Infinity: none). */
  pc = 0;
  pt = 0;
  pf = Infinity;
  /** hd/h: created here without the store's word, and counted in its distinct count as a guess. */
  guessNew = false;
  /** dh/H: guesses counted in `c` whose counter has not been written yet. */
  pendingNew = 0;
  /** In the write queue (persistent mirrors). */
  queued = false;
  /** Flow time of the last LRU touch (recency is refreshed at most every TOUCH_INTERVAL_MS). */
  touched = -Infinity;

  constructor(
    readonly kind: EntryKind,
    /** Process (pd, pj, p), host (hd, h) or destination (dh); already cut to MAX_KEY_PART. */
    readonly a: string,
    /** Destination (pd, hd), JA4 (pj), else ''. */
    readonly b: string,
  ) {
    this.key = keyOf(kind, a, b);
    this.distinctKey = kind === 'hd' ? singleKey('dh', b) : kind === 'h' ? TOTAL_HOSTS_KEY : null;
  }
}

function keyOf(kind: EntryKind, a: string, b: string): string {
  switch (kind) {
    case 'pd':
    case 'pj':
    case 'hd':
      return pairKey(kind, a, b);
    case 'H':
      return TOTAL_HOSTS_KEY;
    default:
      return singleKey(kind, a);
  }
}

/** A key's increments handed to the store in one batch. */
export interface BatchItem {
  readonly entry: BaselineEntry;
  readonly c: number;
  readonly t: number;
  readonly f: number;
  readonly guessNew: boolean;
}

const NEVER: CountFact = Object.freeze({ count: 0, firstSeenMs: null });
/** `record` refreshes an entry's LRU recency (a probe of the big key map) at most this often, in flow time. */
const TOUCH_INTERVAL_MS = 1_000;
/** Every this many records, up to SWEEP_STEP entries past their TTL are dropped from the LRU's old end. */
const SWEEP_EVERY = 1_024;
const SWEEP_STEP = 64;

interface ProcessNode {
  total: BaselineEntry | undefined;
  readonly dest: Map<string, BaselineEntry>;
  readonly ja4: Map<string, BaselineEntry>;
}

interface HostNode {
  self: BaselineEntry | undefined;
  readonly dest: Map<string, BaselineEntry>;
}

/**
 * The in-memory state every backend answers from.
 *
 * Two structures over the same entries: `entries`, an lru-cache keyed by the store key, owns the bound
 * (maxEntries), the TTL and the eviction order; a nested index (process → {total, destinations, JA4s}, host →
 * {self, destinations}, destination → hosts) answers lookups. A lookup probes small, hot maps with the flow's
 * own strings and builds no key: five probes of a 500,000-entry map with freshly built keys cost ~4 µs on the
 * 2-core test machine, the nested probes ~1 µs (bench/baseline.bench.ts). An entry leaving the LRU (evicted,
 * expired, deleted) leaves the index in the same step (dispose).
 *
 * `persistent` mirrors queue increments for a store (the write queue: each dirty entry once, oldest first,
 * bounded by maxPending). The queue is a FIFO array with a head index, not a Map: dropping the oldest of a Map
 * that is deleted from the front is O(deleted entries) in V8 (iteration walks the holes until a rehash), which
 * made record take 70 µs once the queue was full. A memory-only mirror is the truth itself, so dropping a
 * host → destination pair (LRU, TTL) also takes its host out of the distinct count.
 */
export class BaselineMirror {
  readonly entries: LRUCache<string, BaselineEntry>;
  readonly total: BaselineEntry = new BaselineEntry('H', '', '');
  dropped = 0;
  private readonly halfLifeMs: number;
  private readonly maxPending: number;
  private readonly procs = new Map<string, ProcessNode>();
  private readonly hosts = new Map<string, HostNode>();
  private readonly dests = new Map<string, BaselineEntry>();
  /** Dirty entries, oldest first, from `head` on. */
  private queue: Array<BaselineEntry | undefined> = [];
  private head = 0;
  /** Dirty entries evicted from `entries` (LRU or TTL): their increments are still ours until written. */
  private readonly parked = new Map<string, BaselineEntry>();
  private records = 0;

  constructor(
    opts: ResolvedBaselineOptions,
    readonly persistent: boolean,
  ) {
    this.halfLifeMs = opts.halfLifeMs;
    this.maxPending = opts.maxPending;
    this.entries = new LRUCache<string, BaselineEntry>({
      // The bound is maxEntries, allocated as entries arrive: `max` would preallocate ~22 MB for the default
      // 500,000 before the first flow (bounded-lru.ts).
      ...entryBound(opts.maxEntries),
      ttl: Math.max(1, Math.floor(Math.min(opts.halfLifeMs * MIRROR_TTL_HALF_LIVES, Number.MAX_SAFE_INTEGER))),
      updateAgeOnGet: true,
      noDisposeOnSet: true,
      dispose: (e, key, reason) => this.onLeave(e, key, reason),
    });
  }

  // ---- the nested index ---------------------------------------------------------------------------------

  private slot(kind: EntryKind, a: string, b: string): BaselineEntry | undefined {
    switch (kind) {
      case 'pd':
        return this.procs.get(a)?.dest.get(b);
      case 'pj':
        return this.procs.get(a)?.ja4.get(b);
      case 'p':
        return this.procs.get(a)?.total;
      case 'hd':
        return this.hosts.get(a)?.dest.get(b);
      case 'h':
        return this.hosts.get(a)?.self;
      case 'dh':
        return this.dests.get(a);
      case 'H':
        return this.total;
    }
  }

  private index(e: BaselineEntry): void {
    const { kind, a, b } = e;
    if (kind === 'dh') {
      this.dests.set(a, e);
    } else if (kind === 'pd' || kind === 'pj' || kind === 'p') {
      let n = this.procs.get(a);
      if (n === undefined) this.procs.set(a, (n = { total: undefined, dest: new Map(), ja4: new Map() }));
      if (kind === 'p') n.total = e;
      else (kind === 'pd' ? n.dest : n.ja4).set(b, e);
    } else if (kind === 'hd' || kind === 'h') {
      let n = this.hosts.get(a);
      if (n === undefined) this.hosts.set(a, (n = { self: undefined, dest: new Map() }));
      if (kind === 'h') n.self = e;
      else n.dest.set(b, e);
    }
  }

  /** Removes `e` from the index (only if the index holds this very entry). */
  private unindex(e: BaselineEntry): void {
    const { kind, a, b } = e;
    if (kind === 'dh') {
      if (this.dests.get(a) === e) this.dests.delete(a);
    } else if (kind === 'pd' || kind === 'pj' || kind === 'p') {
      const n = this.procs.get(a);
      if (n === undefined) return;
      if (kind === 'p') {
        if (n.total === e) n.total = undefined;
      } else {
        const m = kind === 'pd' ? n.dest : n.ja4;
        if (m.get(b) === e) m.delete(b);
      }
      if (n.total === undefined && n.dest.size === 0 && n.ja4.size === 0) this.procs.delete(a);
    } else if (kind === 'hd' || kind === 'h') {
      const n = this.hosts.get(a);
      if (n === undefined) return;
      if (kind === 'h') {
        if (n.self === e) n.self = undefined;
      } else if (n.dest.get(b) === e) n.dest.delete(b);
      if (n.self === undefined && n.dest.size === 0) this.hosts.delete(a);
    }
  }

  /** An entry left the LRU. */
  private onLeave(e: BaselineEntry, key: string, reason: LRUCache.DisposeReason): void {
    this.unindex(e);
    if (this.persistent) {
      // A dirty entry is parked until written: its increments are not in the store yet.
      if (e.queued && (reason === 'evict' || reason === 'expire')) this.parked.set(key, e);
    } else {
      this.forgetMember(e);
    }
  }

  /** Memory-only: a pair or host dropped from the mirror leaves its distinct count. */
  private forgetMember(e: BaselineEntry): void {
    const d = e.kind === 'hd' ? this.dests.get(e.b) : e.kind === 'h' ? this.total : undefined;
    if (d !== undefined && d.c > 0) d.c--;
  }

  /** The entry of (kind, a, b): indexed, else parked; a, b already cut. */
  private find(kind: EntryKind, a: string, b: string): BaselineEntry | undefined {
    const e = this.slot(kind, a, b);
    if (e !== undefined || this.parked.size === 0) return e;
    return this.parked.get(keyOf(kind, a, b));
  }

  private findKey(key: string): BaselineEntry | undefined {
    const p = parseKey(key);
    return p === null ? undefined : this.find(p.kind, p.a, p.b);
  }

  /** Entries of the LRU's old end that are past their TTL leave (bounded work; stale entries are a prefix). */
  sweep(max: number): void {
    const stale: string[] = [];
    for (const k of this.entries.rkeys()) {
      if (stale.length >= max || this.entries.getRemainingTTL(k) > 0) break;
      stale.push(k);
    }
    for (const k of stale) this.entries.delete(k);
  }

  // ---- lookups and records ------------------------------------------------------------------------------

  private fact(e: BaselineEntry | undefined, nowMs: number): CountFact {
    if (e === undefined) return NEVER;
    return { count: decayedCount(e.c, e.t, nowMs, this.halfLifeMs), firstSeenMs: e.f };
  }

  lookup(q: BaselineQuery, nowMs: number, learning: boolean): BaselineFacts {
    const proc = q.process === null ? null : cut(q.process);
    const dest = q.destination === null ? null : cut(q.destination);
    const host = cut(q.host);
    let pd: BaselineEntry | undefined;
    let pj: BaselineEntry | undefined;
    let p: BaselineEntry | undefined;
    let hd: BaselineEntry | undefined;
    let dh: BaselineEntry | undefined;
    if (proc !== null) {
      const n = this.procs.get(proc);
      if (n !== undefined) {
        p = n.total;
        if (dest !== null) pd = n.dest.get(dest);
        if (q.ja4 !== null) pj = n.ja4.get(cut(q.ja4));
      }
    }
    if (dest !== null) {
      hd = this.hosts.get(host)?.dest.get(dest);
      dh = this.dests.get(dest);
    }
    if (this.parked.size > 0) {
      // Rare: dirty entries evicted before they were written still count.
      if (proc !== null) {
        p ??= this.parked.get(keyOf('p', proc, ''));
        if (dest !== null) pd ??= this.parked.get(keyOf('pd', proc, dest));
        if (q.ja4 !== null) pj ??= this.parked.get(keyOf('pj', proc, cut(q.ja4)));
      }
      if (dest !== null) hd ??= this.parked.get(keyOf('hd', host, dest));
    }
    return {
      processDestination: this.fact(pd, nowMs),
      processJa4: this.fact(pj, nowMs),
      processTotal: p === undefined ? 0 : decayedCount(p.c, p.t, nowMs, this.halfLifeMs),
      hostDestination: this.fact(hd, nowMs),
      destinationHosts: dh?.c ?? 0,
      totalHosts: this.total.c,
      learning,
    };
  }

  /** Count one flow. Each node of the index is probed once (5 probes for the 5 counters). */
  record(q: BaselineQuery, atMs: number): void {
    const host = cut(q.host);
    const dest = q.destination === null ? null : cut(q.destination);
    // A node created by the first count is empty, so "not found" stays right for the counts after it.
    const hn = this.hosts.get(host);
    this.count('h', host, '', atMs, hn?.self);
    if (dest !== null) this.count('hd', host, dest, atMs, hn?.dest.get(dest));
    if (q.process !== null) {
      const proc = cut(q.process);
      const pn = this.procs.get(proc);
      this.count('p', proc, '', atMs, pn?.total);
      if (dest !== null) this.count('pd', proc, dest, atMs, pn?.dest.get(dest));
      if (q.ja4 !== null) {
        const ja4 = cut(q.ja4);
        this.count('pj', proc, ja4, atMs, pn?.ja4.get(ja4));
      }
    }
    if (++this.records >= SWEEP_EVERY) {
      this.records = 0;
      this.sweep(SWEEP_STEP);
    }
  }

  /** Count one flow on (kind, a, b), whose indexed entry (if any) the caller found. */
  private count(kind: CounterKind, a: string, b: string, atMs: number, found: BaselineEntry | undefined): void {
    let e = found;
    if (e !== undefined && atMs - e.touched >= TOUCH_INTERVAL_MS) {
      e.touched = atMs;
      // Refresh recency and TTL; undefined: the LRU found it past its TTL and dropped it (dispose ran).
      if (this.entries.get(e.key) === undefined) e = undefined;
    }
    if (e === undefined) {
      const key = keyOf(kind, a, b);
      e = this.parked.size > 0 ? this.parked.get(key) : undefined; // evicted but not yet written: still ours
      if (e !== undefined) this.parked.delete(key);
      else {
        e = new BaselineEntry(kind, a, b);
        e.t = atMs;
        e.f = atMs;
        if (e.distinctKey !== null) this.guessMember(e, atMs);
      }
      e.touched = atMs;
      this.entries.set(key, e);
      this.index(e);
    }
    addDecayed(e, 1, atMs, this.halfLifeMs);
    if (atMs < e.f) e.f = atMs;
    if (!this.persistent) return;
    addPending(e, 1, atMs, this.halfLifeMs);
    if (atMs < e.pf) e.pf = atMs;
    if (!e.queued) {
      e.queued = true;
      this.queue.push(e);
      if (this.pendingCount() > this.maxPending) this.dropOldest();
    }
  }

  /** A pair (or host) this mirror did not hold: count its host in the distinct count now. */
  private guessMember(e: BaselineEntry, atMs: number): void {
    let d: BaselineEntry | undefined;
    if (e.kind === 'h') d = this.total;
    else {
      d = this.dests.get(e.b);
      if (d === undefined) {
        d = new BaselineEntry('dh', e.b, '');
        d.f = atMs;
        d.touched = atMs;
        this.entries.set(d.key, d);
        this.index(d);
      } else if (atMs - d.touched >= TOUCH_INTERVAL_MS) {
        d.touched = atMs;
        this.entries.get(d.key);
      }
    }
    d.c++;
    if (atMs > d.t) d.t = atMs;
    if (this.persistent) {
      d.pendingNew++;
      e.guessNew = true;
    }
  }

  private distinctEntry(dk: string): BaselineEntry | undefined {
    return dk === TOTAL_HOSTS_KEY ? this.total : this.findKey(dk);
  }

  // ---- the write queue ----------------------------------------------------------------------------------

  /** The oldest queued entry, out of the queue (and out of `parked`: no longer ours to keep). */
  private shift(): BaselineEntry | undefined {
    if (this.head >= this.queue.length) return undefined;
    const e = this.queue[this.head];
    this.queue[this.head] = undefined;
    this.head++;
    if (this.head >= 1_024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (e === undefined) return undefined;
    e.queued = false;
    if (this.parked.size > 0) this.parked.delete(e.key);
    return e;
  }

  private enqueue(e: BaselineEntry): void {
    if (e.queued) return;
    e.queued = true;
    this.queue.push(e);
    if (this.slot(e.kind, e.a, e.b) !== e) this.parked.set(e.key, e);
  }

  private dropOldest(): void {
    const e = this.shift();
    if (e === undefined) return;
    this.clearPending(e);
    this.dropped++;
  }

  private clearPending(e: BaselineEntry): void {
    e.pc = 0;
    e.pt = 0;
    e.pf = Infinity;
    if (e.guessNew) {
      e.guessNew = false;
      const d = e.distinctKey === null ? undefined : this.distinctEntry(e.distinctKey);
      if (d !== undefined && d.pendingNew > 0) d.pendingNew--;
    }
  }

  /** Up to `max` dirty keys with their increments, oldest first; their pending increments are moved out. */
  take(max: number): BatchItem[] {
    const items: BatchItem[] = [];
    while (items.length < max) {
      const e = this.shift();
      if (e === undefined) break;
      items.push({ entry: e, c: e.pc, t: e.pt, f: e.pf, guessNew: e.guessNew });
      e.pc = 0;
      e.pt = 0;
      e.pf = Infinity;
      e.guessNew = false;
    }
    return items;
  }

  /** A batch the store did not take: its increments are queued again (behind newer keys; bounded). */
  restore(items: readonly BatchItem[]): void {
    for (const it of items) {
      const e = it.entry;
      addPending(e, it.c, it.t, this.halfLifeMs);
      if (it.f < e.pf) e.pf = it.f;
      if (it.guessNew) e.guessNew = true;
      this.enqueue(e);
    }
    while (this.pendingCount() > this.maxPending) this.dropOldest();
  }

  /** The store has written this item: its guess (if any) is no longer pending. */
  confirm(it: BatchItem): void {
    if (!it.guessNew || it.entry.distinctKey === null) return;
    const d = this.distinctEntry(it.entry.distinctKey);
    if (d !== undefined && d.pendingNew > 0) d.pendingNew--;
  }

  // ---- what the store says ------------------------------------------------------------------------------

  /**
   * A counter's value as the store has it (all our written increments included); the mirror takes it plus what
   * was recorded since the last batch was taken. Keys the mirror does not hold are added when `insert` (loading,
   * another replica's changes), not when the store merely confirms a write of a key the mirror has evicted.
   */
  applyStored(key: string, c: number, t: number, f: number, insert = true): void {
    const p = parseKey(key);
    if (p === null || p.kind === 'dh' || p.kind === 'H') return;
    let e = this.find(p.kind, p.a, p.b);
    if (e === undefined) {
      if (!insert) return;
      e = new BaselineEntry(p.kind, p.a, p.b);
      e.touched = t;
      this.entries.set(key, e);
      this.index(e);
    }
    this.setStored(e, c, t, f);
  }

  /** applyStored for the key of a written batch item (no key parsing); nothing if the mirror dropped the key. */
  applyWritten(it: BatchItem, c: number, t: number, f: number): void {
    const x = it.entry;
    const e = this.find(x.kind, x.a, x.b);
    if (e !== undefined) this.setStored(e, c, t, f);
  }

  private setStored(e: BaselineEntry, c: number, t: number, f: number): void {
    e.c = c;
    e.t = t;
    e.f = f;
    if (e.pc > 0) addDecayed(e, e.pc, e.pt, this.halfLifeMs);
    if (e.pf < e.f) e.f = e.pf;
  }

  /** A distinct count as the store has it; the mirror adds the guesses not yet written. */
  applyDistinct(key: string, n: number, t: number): void {
    let d = this.distinctEntry(key);
    if (d === undefined) {
      const p = parseKey(key);
      if (p?.kind !== 'dh' || n <= 0) return;
      d = new BaselineEntry('dh', p.a, '');
      d.f = t;
      d.touched = t;
      this.entries.set(key, d);
      this.index(d);
    }
    d.c = n + d.pendingNew;
    if (t > d.t) d.t = t;
  }

  /** The store no longer has the key (pruned): drop it from the mirror unless it has unwritten increments. */
  forget(key: string): void {
    if (key === TOTAL_HOSTS_KEY) return;
    const e = this.findKey(key);
    if (e === undefined || e.queued) return;
    this.entries.delete(key);
  }

  /** The key has increments not yet handed to the store. */
  isQueued(key: string): boolean {
    return this.findKey(key)?.queued === true;
  }

  pendingCount(): number {
    return this.queue.length - this.head;
  }

  clear(): void {
    this.queue = [];
    this.head = 0;
    this.parked.clear();
    this.entries.clear();
    this.procs.clear();
    this.hosts.clear();
    this.dests.clear();
  }
}

/** addDecayed on an entry's pending increment (pc at pt). */
function addPending(e: BaselineEntry, inc: number, atMs: number, halfLifeMs: number): void {
  if (e.pc === 0) {
    e.pc = inc;
    e.pt = atMs;
  } else if (atMs >= e.pt) {
    e.pc = e.pc * decayFactor(atMs - e.pt, halfLifeMs) + inc;
    e.pt = atMs;
  } else {
    e.pc += inc * decayFactor(e.pt - atMs, halfLifeMs);
  }
}

/**
 * The hot-path half that every backend shares: synchronous lookups and records on the mirror, with the learning
 * flag. `afterRecord` lets a backend start a write when a batch is full; `isClosed` ends recording at close.
 */
export function mirrorAccess(
  mirror: BaselineMirror,
  now: () => number,
  learningUntilMs: number,
  isClosed: () => boolean,
  afterRecord?: () => void,
): Pick<Baseline, 'learningUntilMs' | 'lookup' | 'record'> {
  return {
    learningUntilMs,
    lookup(q) {
      const t = now();
      return mirror.lookup(q, t, t < learningUntilMs);
    },
    record(q, atMs) {
      if (isClosed()) return;
      mirror.record(q, Number.isFinite(atMs) ? atMs : now());
      afterRecord?.();
    },
  };
}

// ---- the memory backend ----------------------------------------------------------------------------------

/**
 * The baseline without a store: counts live in the mirror only and are lost on restart; learning starts at
 * creation. For tests, and for deployments that accept a fresh baseline after each restart.
 */
export function createMemoryBaseline(opts: BaselineOptions = {}): Baseline {
  const cfg = resolveBaselineOptions(opts);
  const mirror = new BaselineMirror(cfg, false);
  const learningUntilMs = cfg.now() + cfg.learningMs;
  let closed = false;
  return {
    ...mirrorAccess(mirror, cfg.now, learningUntilMs, () => closed),
    sizes: () => ({ entries: mirror.entries.size, pendingWrites: 0, droppedWrites: 0 }),
    flush: () => Promise.resolve(),
    close() {
      closed = true;
      return Promise.resolve();
    },
  };
}

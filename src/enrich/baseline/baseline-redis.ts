/**
 * The shared baseline store (`baseline.store: redis://…`): replicas behind one load balancer count into one
 * baseline, so "only 1 of 200 hosts ever went there" is about the fleet, not about the hosts one replica saw.
 *
 * ## Layout (every key under the prefix, default `egress:baseline:`)
 * - `k:<key>` — a string "c t f" per counter (baseline.ts keys), set with a TTL that ends when its decayed count
 *   falls below PRUNE_BELOW: Redis prunes for us.
 * - `k:dh:<destination>` and `k:H` — sorted sets of hosts, scored with the prune time of the host's counter
 *   (host → destination, host); the distinct count is ZCOUNT(now, +inf). ZADD reports whether the member is new,
 *   and a set cannot hold a member twice, so two replicas counting the same first contact count one host
 *   (what HSETNX would give, plus expiry of members).
 * - `recent` — a sorted set of keys scored by a change sequence number (`seq`, INCRBY per batch): every write
 *   gives each key it touched a new number.
 * - `epoch` (a random id of this data set), `first-start` (learning is counted from it, for the whole fleet),
 *   `layout` (REDIS_LAYOUT_VERSION: keys of another layout are refused at start).
 *
 * ## Writes and sharing: batches out, short-interval pulls in
 * `record` updates the mirror and queues one delta per key. Every `pullIntervalMs` (default 250 ms) one
 * serialized cycle runs: if the queue is due (flushIntervalMs, or a full batch) it sends batches of `maxBatch`
 * keys, each as ONE script call that merges the deltas with the decay math atomically (so concurrent replicas
 * never lose an increment) and answers the merged values, which the writer's mirror takes at once. Then it
 * pulls: one script call returns every key whose sequence number is above the last one this replica saw, with
 * its current value, except the ranges this replica wrote itself (it has those). The mirror takes each value
 * and re-adds what was recorded here since the batch was taken (baseline.ts applyStored); our own written
 * increments are in the value, so nothing is counted twice. A write on one replica is in the others' lookups within flushIntervalMs +
 * pullIntervalMs (1.25 s at the defaults). Why pulls rather than pub/sub of the deltas: a pulled value already
 * holds every replica's increments exactly once, the pull is also the catch-up after a reconnect (pub/sub loses
 * what is published while a subscriber is away), and an idle pull costs one cheap script call.
 *
 * ## Start and failures
 * - At start: connect, read the epoch, the sequence number and the first start, and load the `maxEntries` most
 *   recently changed keys (pages of LOAD_PAGE, newest first, applied oldest first). Redis unreachable → an
 *   EgressError naming the URL without credentials: the proxy refuses to start rather than run unshared.
 * - Redis down later: lookups and `record` go on in the mirror; the cycle fails fast (no offline queue), the
 *   batch is queued again (the queue is bounded by maxPending: the oldest keys' increments are dropped and
 *   counted in sizes().droppedWrites), ioredis reconnects (backoff ≤ 2 s) and the next cycle sends the queue.
 *   A batch whose reply was lost (timeout) may have been applied: it is sent again, so increments are counted
 *   at least once. Failures go to onError, one line per cause per 10 s, without counted names.
 * - Redis restarted empty (no persistence) or restored from an older snapshot: the epoch is new or the sequence
 *   went back; every replica reloads. The shared counts restart from what is written from then on (Redis
 *   persistence is the operator's choice); the learning start is restored from the replicas' memory.
 *
 * The scripts address keys built from the prefix (not declared in KEYS): one Redis or a Sentinel pair, not a
 * Cluster.
 */
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { redactRedisUrl } from '../hint-store-redis.js';
import {
  type Baseline,
  type BaselineOptions,
  type BatchItem,
  BaselineMirror,
  mirrorAccess,
  baselineError,
  createReporter,
  messageOf,
  parseKey,
  resolveBaselineOptions,
} from './baseline.js';

export interface RedisBaselineOptions extends BaselineOptions {
  /** Prefix of every key (default "egress:baseline:"); replicas that share a baseline share it. */
  readonly keyPrefix?: string;
  /** How often changes by other replicas are pulled, and the queue checked (default 250 ms). */
  readonly pullIntervalMs?: number;
  /** Connecting (and each reconnect attempt) gives up after this (default 5 s). */
  readonly connectTimeoutMs?: number;
  /** A command not answered within this fails (default 2 s). */
  readonly commandTimeoutMs?: number;
  /** How often the change index is swept of expired keys (default 60 s). */
  readonly pruneIntervalMs?: number;
}

export const DEFAULT_BASELINE_PREFIX = 'egress:baseline:';
/** The key layout below; keys written under another layout are refused at start. */
export const REDIS_LAYOUT_VERSION = '1';
const DEFAULT_PULL_INTERVAL_MS = 250;
const DEFAULT_PRUNE_INTERVAL_MS = 60_000;
/** Keys per pull page and per load page. */
const PULL_PAGE = 2_000;
const LOAD_PAGE = 5_000;
/** Pages pulled per cycle at most (then the next cycle goes on): a cycle never monopolises the connection. */
const MAX_PULL_PAGES = 10;
/** Batches written per cycle at most. */
const MAX_WRITE_BATCHES = 20;
/** Keys examined per prune call. */
const PRUNE_PAGE = 1_000;
/** A key lives at least this long in Redis, whatever its decayed count (clock skew between replicas and Redis). */
const MIN_TTL_MS = 60_000;

/**
 * Merge a batch. ARGV: prefix, now, halfLife, minTtl, firstStart, then 6 per key: key, c, t, f (the delta: count
 * c at t, first seen f), distinct key ('' none), member (the host). The decay merge is baseline.ts addDecayed,
 * the prune time expiresAtMs. A counter is one string "c t f" (%.17g each) with a PX TTL: one SET per key.
 * Every redis.call costs ~1–2 µs of Lua overhead, more than the command itself, so the stored values are read
 * with one MGET and the change index is written with one ZADD per 500 keys.
 * Returns the batch's range of sequence numbers (lo, hi), each key's merged c, t, f (as strings: Lua numbers
 * would come back as integers), then (distinct key, hosts) for each distinct key the batch touched.
 */
const WRITE_LUA = `
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local hl = tonumber(ARGV[3])
local minTtl = tonumber(ARGV[4])
redis.call('SET', prefix .. 'first-start', ARGV[5], 'NX')
local n = (#ARGV - 5) / 6
local base = redis.call('INCRBY', prefix .. 'seq', 2 * n) - 2 * n
local seq = base
local ln2 = math.log(2)
local function num(s)
  local x = tonumber(s)
  if x == nil or x ~= x or x == math.huge or x == -math.huge then return nil end
  return x
end
local keys = {}
for i = 0, n - 1 do keys[i + 1] = prefix .. 'k:' .. ARGV[6 + i * 6] end
local old = {}
for s = 1, n, 500 do
  local got = redis.call('MGET', unpack(keys, s, math.min(n, s + 499)))
  for j = 1, #got do old[s + j - 1] = got[j] end
end
local out = { '', '' }
local recent = {}
local dseen, dnew, dttl, dorder = {}, {}, {}, {}
for i = 0, n - 1 do
  local b = 6 + i * 6
  local key = ARGV[b]
  local c = tonumber(ARGV[b + 1])
  local t = tonumber(ARGV[b + 2])
  local f = tonumber(ARGV[b + 3])
  local o = old[i + 1]
  if o then
    local sc, st, sf = string.match(o, '^(%S+) (%S+) (%S+)$')
    local oc, ot, of = num(sc), num(st), num(sf)
    if oc and ot and of and oc >= 0 then
      if t >= ot then
        c = oc * 2 ^ (-(t - ot) / hl) + c
      else
        c = oc + c * 2 ^ (-(ot - t) / hl)
        t = ot
      end
      if of < f then f = of end
    end
  end
  local e = t
  if c > 0.01 then e = t + hl * math.log(c / 0.01) / ln2 end
  local ttl = math.max(minTtl, math.floor(e - now))
  local cs, ts, fs = string.format('%.17g', c), string.format('%.17g', t), string.format('%.17g', f)
  redis.call('SET', keys[i + 1], cs .. ' ' .. ts .. ' ' .. fs, 'PX', ttl)
  seq = seq + 1
  recent[#recent + 1] = seq
  recent[#recent + 1] = key
  out[#out + 1] = cs
  out[#out + 1] = ts
  out[#out + 1] = fs
  local dkey = ARGV[b + 4]
  if dkey ~= '' then
    local dk = prefix .. 'k:' .. dkey
    if not dseen[dkey] then
      -- once per batch: members whose pair has expired leave (a later contact counts as new again)
      redis.call('ZREMRANGEBYSCORE', dk, '-inf', '(' .. now)
      dseen[dkey] = true
      dttl[dkey] = ttl
      dorder[#dorder + 1] = dkey
    elseif ttl > dttl[dkey] then
      dttl[dkey] = ttl
    end
    if redis.call('ZADD', dk, 'GT', e, ARGV[b + 5]) == 1 and not dnew[dkey] then
      -- a new member: the other replicas pull the distinct key again
      dnew[dkey] = true
      seq = seq + 1
      recent[#recent + 1] = seq
      recent[#recent + 1] = dkey
    end
  end
end
for s = 1, #recent, 1000 do
  redis.call('ZADD', prefix .. 'recent', unpack(recent, s, math.min(#recent, s + 999)))
end
for _, dkey in ipairs(dorder) do
  local dk = prefix .. 'k:' .. dkey
  if redis.call('PTTL', dk) < dttl[dkey] then redis.call('PEXPIRE', dk, dttl[dkey]) end
  out[#out + 1] = dkey
  out[#out + 1] = tostring(redis.call('ZCOUNT', dk, now, '+inf'))
end
out[1] = tostring(base + 1)
out[2] = tostring(seq)
return out
`;

/**
 * Read changed keys. ARGV: prefix, direction ('up': sequence numbers above ARGV[3]; 'down': at or below it,
 * newest first), bound, limit, now, a new epoch id (used if the data set has none), then (lo, hi) pairs: ranges
 * of sequence numbers this replica wrote itself (it has their values from the write): reported as 's', unread.
 * Returns epoch, current seq, then 6 per key: key, seq, type ('c' counter, 'n' distinct count, 'x' gone,
 * 's' skipped), 3 values.
 */
const READ_LUA = `
local prefix = ARGV[1]
redis.call('SET', prefix .. 'epoch', ARGV[6], 'NX')
local out = { redis.call('GET', prefix .. 'epoch'), redis.call('GET', prefix .. 'seq') or '0' }
local limit = tonumber(ARGV[4])
if limit == 0 then return out end
local own = {}
for j = 7, #ARGV - 1, 2 do own[#own + 1] = { tonumber(ARGV[j]), tonumber(ARGV[j + 1]) } end
local ids
if ARGV[2] == 'up' then
  ids = redis.call('ZRANGEBYSCORE', prefix .. 'recent', '(' .. ARGV[3], '+inf', 'WITHSCORES', 'LIMIT', 0, limit)
else
  ids = redis.call('ZREVRANGEBYSCORE', prefix .. 'recent', ARGV[3], '-inf', 'WITHSCORES', 'LIMIT', 0, limit)
end
local counters, at = {}, {}
for i = 1, #ids, 2 do
  local key = ids[i]
  local s = tonumber(ids[i + 1])
  local mine = false
  for _, r in ipairs(own) do
    if s >= r[1] and s <= r[2] then mine = true break end
  end
  local p = #out + 1
  out[p] = key
  out[p + 1] = ids[i + 1]
  out[p + 3] = ''
  out[p + 4] = ''
  out[p + 5] = ''
  if mine then
    out[p + 2] = 's'
  elseif key == 'H' or string.sub(key, 1, 3) == 'dh:' then
    out[p + 2] = 'n'
    out[p + 3] = tostring(redis.call('ZCOUNT', prefix .. 'k:' .. key, ARGV[5], '+inf'))
  else
    out[p + 2] = 'c'
    counters[#counters + 1] = prefix .. 'k:' .. key
    at[#at + 1] = p
  end
end
for s = 1, #counters, 500 do
  local got = redis.call('MGET', unpack(counters, s, math.min(#counters, s + 499)))
  for j = 1, #got do
    local p = at[s + j - 1]
    local v = got[j]
    local c, t, f
    if v then c, t, f = string.match(v, '^(%S+) (%S+) (%S+)$') end
    if c then
      out[p + 3] = c
      out[p + 4] = t
      out[p + 5] = f
    else
      out[p + 2] = 'x'
    end
  end
end
return out
`;

/** Sweep the change index of keys Redis has expired. ARGV: prefix, cursor, limit. Returns the next cursor. */
const PRUNE_LUA = `
local prefix = ARGV[1]
local recent = prefix .. 'recent'
local ids = redis.call('ZRANGEBYSCORE', recent, '(' .. ARGV[2], '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
for i = 1, #ids, 2 do
  if redis.call('EXISTS', prefix .. 'k:' .. ids[i]) == 0 then redis.call('ZREM', recent, ids[i]) end
end
if #ids < 2 * tonumber(ARGV[3]) then return '0' end
return ids[#ids]
`;

/** Epoch, current seq, first start (set to ARGV[2] if the data set has none), layout version (ARGV[4] if none). */
const HELLO_LUA = `
local prefix = ARGV[1]
redis.call('SET', prefix .. 'first-start', ARGV[2], 'NX')
redis.call('SET', prefix .. 'epoch', ARGV[3], 'NX')
redis.call('SET', prefix .. 'layout', ARGV[4], 'NX')
return { redis.call('GET', prefix .. 'epoch'), redis.call('GET', prefix .. 'seq') or '0', redis.call('GET', prefix .. 'first-start'), redis.call('GET', prefix .. 'layout') }
`;

type Arg = string | number;
interface BaselineCommands {
  egressBaselineWrite(...args: Arg[]): Promise<unknown>;
  egressBaselineRead(...args: Arg[]): Promise<unknown>;
  egressBaselinePrune(...args: Arg[]): Promise<unknown>;
  egressBaselineHello(...args: Arg[]): Promise<unknown>;
}

/** One key read back from Redis, checked: Redis is shared infrastructure. */
type ReadItem =
  | { readonly key: string; readonly seq: number; readonly type: 'c'; readonly c: number; readonly t: number; readonly f: number }
  | { readonly key: string; readonly seq: number; readonly type: 'n'; readonly n: number }
  | { readonly key: string; readonly seq: number; readonly type: 'x' | 's' };

interface ReadResult {
  readonly epoch: string;
  readonly seq: number;
  readonly items: ReadItem[];
  /** Entries that were malformed and skipped. */
  readonly bad: number;
}

const finite = (s: unknown): number | null => {
  if (typeof s !== 'string' || s === '') return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
};

export function parseReadReply(reply: unknown): ReadResult | null {
  if (!Array.isArray(reply) || reply.length < 2 || (reply.length - 2) % 6 !== 0) return null;
  const [epoch, seqText] = reply as unknown[];
  const seq = finite(seqText);
  if (typeof epoch !== 'string' || seq === null) return null;
  const items: ReadItem[] = [];
  let bad = 0;
  for (let i = 2; i < reply.length; i += 6) {
    const key = reply[i] as unknown;
    const s = finite(reply[i + 1]);
    const type = reply[i + 2] as unknown;
    if (typeof key !== 'string' || s === null || parseKey(key) === null) {
      bad++;
      continue;
    }
    if (type === 'c') {
      const c = finite(reply[i + 3]);
      const t = finite(reply[i + 4]);
      const f = finite(reply[i + 5]);
      if (c === null || t === null || f === null || c < 0) bad++;
      else items.push({ key, seq: s, type, c, t, f });
    } else if (type === 'n') {
      const n = finite(reply[i + 3]);
      if (n === null || n < 0 || !Number.isInteger(n)) bad++;
      else items.push({ key, seq: s, type, n });
    } else if (type === 'x' || type === 's') {
      items.push({ key, seq: s, type });
    } else bad++;
  }
  return { epoch, seq, items, bad };
}

/** What the write script answers: its sequence range, each key's merged value, each distinct key's hosts. */
interface WriteResult {
  readonly lo: number;
  readonly hi: number;
  /** c, t, f per key of the batch, in order. */
  readonly values: number[];
  readonly distinct: Array<[string, number]>;
}

export function parseWriteReply(reply: unknown, keys: number): WriteResult | null {
  if (!Array.isArray(reply) || reply.length < 2 + 3 * keys || (reply.length - 2 - 3 * keys) % 2 !== 0) return null;
  const lo = finite(reply[0]);
  const hi = finite(reply[1]);
  if (lo === null || hi === null || hi < lo) return null;
  const values: number[] = [];
  for (let i = 2; i < 2 + 3 * keys; i++) {
    const v = finite(reply[i]);
    if (v === null) return null;
    values.push(v);
  }
  const distinct: Array<[string, number]> = [];
  for (let i = 2 + 3 * keys; i < reply.length; i += 2) {
    const k = reply[i] as unknown;
    const n = finite(reply[i + 1]);
    if (typeof k !== 'string' || n === null) return null;
    distinct.push([k, n]);
  }
  return { lo, hi, values, distinct };
}

export async function openRedisBaseline(url: string, opts: RedisBaselineOptions = {}): Promise<Baseline> {
  const cfg = resolveBaselineOptions(opts);
  const prefix = opts.keyPrefix ?? DEFAULT_BASELINE_PREFIX;
  const pullIntervalMs = Math.max(10, opts.pullIntervalMs ?? DEFAULT_PULL_INTERVAL_MS);
  const pruneIntervalMs = Math.max(10, opts.pruneIntervalMs ?? DEFAULT_PRUNE_INTERVAL_MS);
  const safeUrl = redactRedisUrl(url);
  const report = createReporter(`baseline store ${safeUrl}`, cfg.onError);

  const options: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: opts.connectTimeoutMs ?? 5_000,
    commandTimeout: opts.commandTimeoutMs ?? 2_000,
    retryStrategy: (times) => Math.min(100 * times, 2_000),
    connectionName: 'egress-baseline',
  };
  const conn = new Redis(url, options);
  conn.defineCommand('egressBaselineWrite', { numberOfKeys: 0, lua: WRITE_LUA });
  conn.defineCommand('egressBaselineRead', { numberOfKeys: 0, lua: READ_LUA });
  conn.defineCommand('egressBaselinePrune', { numberOfKeys: 0, lua: PRUNE_LUA });
  conn.defineCommand('egressBaselineHello', { numberOfKeys: 0, lua: HELLO_LUA });
  const cmd = conn as unknown as BaselineCommands;

  let started = false;
  let startError: string | null = null;
  // ioredis errors carry the command's arguments (counted names): only their message is passed on.
  conn.on('error', (err: Error) => {
    if (!started) startError ??= err.message;
    else report(`connection: ${err.message}`);
  });

  const mirror = new BaselineMirror(cfg, true);
  let epoch = '';
  let lastSeq = 0;
  let firstStartMs = cfg.now();

  /** Sequence ranges this replica wrote (it applied their values from the write's answer); pulls skip them. */
  let own: Array<[number, number]> = [];

  const read = async (direction: 'up' | 'down', bound: number, limit: number): Promise<ReadResult> => {
    const ranges: number[] = [];
    if (direction === 'up') for (const [lo, hi] of own) if (hi > bound) ranges.push(lo, hi);
    const reply = await cmd.egressBaselineRead(prefix, direction, bound, limit, cfg.now(), randomUUID(), ...ranges);
    const r = parseReadReply(reply);
    if (r === null) throw new Error('unexpected reply to the read script');
    if (r.bad > 0) report(`${r.bad} malformed entr(y/ies) read back; ignored`);
    return r;
  };

  const apply = (it: ReadItem): void => {
    if (it.type === 'c') mirror.applyStored(it.key, it.c, it.t, it.f);
    else if (it.type === 'n') mirror.applyDistinct(it.key, it.n, cfg.now());
    else if (it.type === 'x') mirror.forget(it.key);
  };

  /** Load the `maxEntries` most recently changed keys at or below `seq`, applied oldest first (LRU order). */
  const load = async (seq: number): Promise<void> => {
    const got: ReadItem[] = [];
    let bound = seq;
    while (got.length < cfg.maxEntries) {
      const page = Math.min(LOAD_PAGE, cfg.maxEntries - got.length);
      const r = await read('down', bound, page);
      for (const it of r.items) got.push(it);
      const last = r.items[r.items.length - 1];
      if (r.items.length + r.bad < page || last === undefined) break;
      bound = last.seq - 1; // sequence numbers are unique integers
    }
    for (let i = got.length - 1; i >= 0; i--) apply(got[i] as ReadItem);
  };

  // ---- start ------------------------------------------------------------------------------------------------
  try {
    await conn.connect();
    const hello = (await cmd.egressBaselineHello(prefix, Math.floor(cfg.now()), randomUUID(), REDIS_LAYOUT_VERSION)) as unknown;
    const [e, s, first, layout] = Array.isArray(hello) ? (hello as unknown[]) : [];
    const seq = finite(s);
    const firstMs = finite(first);
    if (typeof e !== 'string' || seq === null || firstMs === null) throw new Error('unexpected reply to the start script');
    if (layout !== REDIS_LAYOUT_VERSION) {
      throw new Error(`the keys under "${prefix}" have layout ${String(layout)}, this version reads ${REDIS_LAYOUT_VERSION}; use another keyPrefix or delete them`);
    }
    epoch = e;
    firstStartMs = firstMs;
    await load(seq);
    lastSeq = seq;
  } catch (err) {
    conn.disconnect();
    mirror.clear();
    throw baselineError(`baseline: cannot use Redis at ${safeUrl}: ${startError ?? messageOf(err)}`, err);
  }
  started = true;
  const learningUntilMs = firstStartMs + cfg.learningMs;

  // ---- the cycle: write what is due, then pull ------------------------------------------------------------
  let closed = false;
  let lastWriteMs = Date.now();
  let lastPruneMs = Date.now();
  let pruneCursor = '0';

  /** Writes a batch; the mirror takes the merged values the script answers (our writes are then not pulled). */
  const writeBatch = async (items: readonly BatchItem[]): Promise<void> => {
    const args: Arg[] = [prefix, cfg.now(), cfg.halfLifeMs, MIN_TTL_MS, firstStartMs];
    for (const it of items) {
      const dk = it.entry.distinctKey;
      args.push(it.entry.key, it.c, it.t, it.f, dk ?? '', dk === null ? '' : it.entry.a);
    }
    const reply = await cmd.egressBaselineWrite(...args);
    for (const it of items) mirror.confirm(it);
    const r = parseWriteReply(reply, items.length);
    if (r === null) {
      report('unexpected reply to the write script; the values come with the next pull');
      return;
    }
    items.forEach((it, i) => mirror.applyWritten(it, r.values[3 * i] as number, r.values[3 * i + 1] as number, r.values[3 * i + 2] as number));
    const now = cfg.now();
    for (const [dk, n] of r.distinct) mirror.applyDistinct(dk, n, now);
    own.push([r.lo, r.hi]);
  };

  const pull = async (): Promise<void> => {
    for (let page = 0; page < MAX_PULL_PAGES; page++) {
      const r = await read('up', lastSeq, PULL_PAGE);
      if (r.epoch !== epoch || r.seq < lastSeq) {
        // A new data set (Redis restarted empty, or restored from an older snapshot): start over from it.
        report(`the shared baseline was reset (Redis restarted without its data?); reloading`);
        epoch = r.epoch;
        own = [];
        await load(r.seq);
        lastSeq = r.seq;
        return;
      }
      let top = lastSeq;
      for (const it of r.items) {
        apply(it);
        if (it.seq > top) top = it.seq;
      }
      if (r.items.length + r.bad < PULL_PAGE) {
        // The page was not full: the script saw every change up to r.seq (it runs atomically).
        lastSeq = Math.max(top, r.seq);
        own = own.filter(([, hi]) => hi > lastSeq);
        return;
      }
      lastSeq = top;
      own = own.filter(([, hi]) => hi > lastSeq);
    }
  };

  /** Keys of the batch being written: out of the queue, not yet in Redis (still pending for sizes()). */
  let writing = 0;

  const cycle = async (force: boolean): Promise<Error | null> => {
    if (conn.status !== 'ready') {
      report(`unavailable (${conn.status}): counting in memory, ${mirror.pendingCount()} key(s) queued`);
      return baselineError(`baseline: Redis at ${safeUrl} is unavailable (${conn.status}); counts are kept in memory and sent when it is back`);
    }
    let items: BatchItem[] = [];
    try {
      const due = force || mirror.pendingCount() >= cfg.maxBatch || Date.now() - lastWriteMs >= cfg.flushIntervalMs;
      if (due) {
        lastWriteMs = Date.now();
        for (let n = 0; n < MAX_WRITE_BATCHES && mirror.pendingCount() > 0; n++) {
          items = mirror.take(cfg.maxBatch);
          writing = items.length;
          await writeBatch(items);
          writing = 0;
          items = [];
        }
      }
      await pull();
      if (Date.now() - lastPruneMs >= pruneIntervalMs) {
        lastPruneMs = Date.now();
        const next = await cmd.egressBaselinePrune(prefix, pruneCursor, PRUNE_PAGE);
        pruneCursor = typeof next === 'string' && finite(next) !== null ? next : '0';
      }
      return null;
    } catch (err) {
      writing = 0;
      if (items.length > 0) mirror.restore(items);
      report(`${items.length > 0 ? `writing a batch of ${items.length} key(s) failed (kept queued)` : 'reading changes failed'}: ${messageOf(err)}`);
      return baselineError(`baseline: Redis at ${safeUrl} failed: ${messageOf(err)}`, err);
    }
  };

  let busy: Promise<Error | null> | null = null;
  const runCycle = (force: boolean): Promise<Error | null> => {
    if (busy !== null) return busy.then(() => runCycle(force));
    const p = cycle(force).finally(() => {
      if (busy === p) busy = null;
    });
    busy = p;
    return p;
  };

  const timer = setInterval(() => {
    if (busy === null && !closed) void runCycle(false);
  }, pullIntervalMs);
  timer.unref();

  /** Forced cycles until the queue is empty: each writes up to MAX_WRITE_BATCHES batches. */
  const flushAll = async (): Promise<void> => {
    const rounds = Math.ceil(mirror.pendingCount() / (cfg.maxBatch * MAX_WRITE_BATCHES)) + 1;
    for (let i = 0; i < rounds; i++) {
      const err = await runCycle(true);
      if (err !== null) throw err;
      if (mirror.pendingCount() === 0) return;
    }
  };

  return {
    ...mirrorAccess(mirror, cfg.now, learningUntilMs, () => closed, () => {
      if (mirror.pendingCount() >= cfg.maxBatch && busy === null) void runCycle(false);
    }),
    sizes: () => ({ entries: mirror.entries.size, pendingWrites: mirror.pendingCount() + writing, droppedWrites: mirror.dropped }),
    async flush() {
      if (!closed) await flushAll();
    },
    async close() {
      if (closed) return;
      clearInterval(timer);
      if (busy !== null) await busy;
      if (mirror.pendingCount() > 0 && conn.status === 'ready') {
        try {
          await flushAll();
        } catch (err) {
          report(`closing: ${mirror.pendingCount()} queued key(s) not written: ${messageOf(err)}`);
        }
      }
      closed = true;
      if (conn.status === 'ready') {
        try {
          await conn.quit();
        } catch {
          conn.disconnect();
        }
      } else conn.disconnect();
      mirror.clear();
    },
  };
}

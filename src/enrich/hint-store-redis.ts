/**
 * The Redis hint store (`hints.store: redis://…`): replicas behind one load balancer share the hints posted to
 * any of them (issue 4 item 5).
 *
 * ## Design
 * - Every replica keeps a local mirror — a plain memory store (createMemoryHintStore) — and answers every lookup
 *   from it, synchronously, as the HintStore contract requires: the proxy's hot path never waits for Redis.
 * - `put` stores the event in the mirror at once, then queues it; one microtask later (after the synchronous
 *   ingest loop of the request has queued the whole batch) the batch is written with ONE pipeline: an XADD per
 *   event, an XTRIM + PEXPIRE per stream touched, and the batch PUBLISHed in a few messages (≤ 512 KiB each).
 *   1,000 events are one round trip. The returned Promise resolves when Redis has answered; it never rejects:
 *   an event stored in the mirror is accepted (the answer stays 202) and a Redis failure goes to `onError`.
 * - Every replica SUBSCRIBEs (on a second connection: a subscribed connection can run nothing else) and applies
 *   published batches to its mirror. Messages carry the writer's random origin id, and the writer skips its own
 *   (it stored them already), so nothing is inserted twice.
 * - Why streams, one per kind (`<prefix>net`, `<prefix>proc`, `<prefix>dns`), rather than sorted sets: entry ids
 *   are the server's insertion time, so "what was stored in the last N ms" is one XRANGE from `<now-N>-0`, and both
 *   bounds are built in — XADD MAXLEN ~ caps the count on every write, XTRIM MINID ~ drops entries older than the
 *   kind's retention once per batch (cheap: whole radix-tree nodes). A sorted set would need a separate hash for
 *   the bodies or duplicate-prone members, and ZREMRANGEBYSCORE + ZREMRANGEBYRANK for the same bounds.
 *   Retention: network events max(window, managed window) (they attribute flows within ±window and make their
 *   client "managed" for the managed window), DNS queries the window, processes (EID 1) `processTtlMs`
 *   (default 24 h, as in the memory store: a process outlives its creation event by hours). Each key also gets a
 *   PEXPIRE of its retention, so a deployment that stops writing leaves nothing behind.
 * - A replica that starts (or whose subscription drops and comes back) reads the streams — processes first, so
 *   the network events that follow find their EID 1 — and applies each event with the mirror's clock set back by
 *   the event's age in Redis, so TTLs and the managed window count from when it was really stored.
 *
 * ## Failures
 * - Redis unreachable at start: the factory rejects (EgressError HINT_STORE_FAILED naming the URL without
 *   credentials), so the proxy refuses to start rather than silently run unshared.
 * - Redis down later: ioredis reconnects (backoff up to 2 s, forever); commands are not queued offline (no
 *   unbounded buffer, no 202 held for minutes). `put` keeps storing in the mirror and reports through `onError`.
 *   What is lost: events posted to THIS replica while Redis is down never reach the other replicas or Redis (only
 *   this replica attributes with them), and events other replicas post meanwhile reach this one only through the
 *   catch-up read after the reconnect, so only if they made it into Redis. On reconnect the subscription is
 *   restored and the streams are re-read from a few seconds before the drop (the mirror drops duplicates).
 * - Writes in flight are capped (MAX_INFLIGHT_EVENTS); beyond it batches stay local and `onError` says so.
 *
 * Errors passed to `onError` carry a message only: never event contents (ioredis errors carry the command's
 * arguments, i.e. hint JSON, so they are never passed on as they are).
 */
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { EgressError, messageOf } from '../errors.js';
import type { HintEvent } from './hint-event.js';
import { createMemoryHintStore, type HintStore } from './hint-store.js';

export interface RedisHintStoreOptions {
  /** redis:// or rediss:// URL (credentials, db number, as ioredis reads them). */
  readonly url: string;
  readonly windowMs: number;
  readonly managedWindowMs: number;
  readonly maxEntries: number;
  /** Prefix of the Redis keys and of the channel (default "egress:hints:"); replicas that share hints share it. */
  readonly keyPrefix?: string;
  /** How long process creation events (EID 1) are kept (default 24 h). */
  readonly processTtlMs?: number;
  /** Connecting (and each reconnect attempt) gives up after this (default 5 s). */
  readonly connectTimeoutMs?: number;
  /** A Redis command not answered within this fails (default 2 s): a hung Redis never holds an ingest answer. */
  readonly commandTimeoutMs?: number;
  /** The mirror's clock (tests); Redis-side retention always uses the wall clock, as stream ids do. */
  readonly now?: () => number;
  /** Redis errors after start (connection lost, write failed, bad message). Never contains hint contents. */
  readonly onError?: (err: Error) => void;
}

type Kind = HintEvent['kind'];

/** Apply order for reads: processes before the network and DNS events that join to them. */
const KINDS: readonly Kind[] = ['process', 'dns', 'network'];
const STREAM: Record<Kind, string> = { network: 'net', process: 'proc', dns: 'dns' };
const DEFAULT_PREFIX = 'egress:hints:';
const DEFAULT_PROCESS_TTL_MS = 24 * 3600_000;
/** A published message holds events up to about this many bytes (Redis' pubsub output buffer soft limit: 8 MB). */
const MAX_MESSAGE_BYTES = 512 * 1024;
/** Events being written at once; further batches stay local (bounded memory when Redis is slow). */
const MAX_INFLIGHT_EVENTS = 200_000;
/** Entries per XRANGE page when loading. */
const PAGE = 5_000;
/** After a reconnect, re-read from this long before the subscription dropped (clock skew, messages in flight). */
const CATCH_UP_MARGIN_MS = 5_000;
/** Keys outlive their newest entry's retention by this much. */
const EXPIRE_MARGIN_MS = 5_000;

/** The URL as it may be shown: no user, password or query (ioredis reads options from the query). */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    const creds = u.username !== '' || u.password !== '' ? '***@' : '';
    return `${u.protocol}//${creds}${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return 'redis://(unparsable URL)';
  }
}

// ---- validating what comes out of Redis ----------------------------------------------------------------------
// Redis is shared infrastructure: whatever it hands back is checked field by field before it reaches the mirror.

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStrOrNull = (v: unknown): boolean => v === null || typeof v === 'string';
const isNumOrNull = (v: unknown): boolean => v === null || (typeof v === 'number' && Number.isFinite(v));
const allStrOrNull = (o: Obj, keys: readonly string[]): boolean => keys.every((k) => isStrOrNull(o[k]));

const BASE_STRINGS = ['host', 'processGuid', 'image', 'processName', 'user', 'userDomain'] as const;
const PROCESS_STRINGS = ['parentImage', 'parentName', 'parentProcessGuid', 'commandLine', 'parentCommandLine', 'originalFileName'] as const;
const HASHES = ['md5', 'sha1', 'sha256', 'imphash'] as const;

/** A HintEvent as normalizeHintEvent makes them, or null. */
export function parseStoredHintEvent(v: unknown): HintEvent | null {
  if (!isObj(v)) return null;
  if (v.shape !== 'sysmon' && v.shape !== 'winlogbeat') return null;
  if (typeof v.timeMs !== 'number' || !Number.isFinite(v.timeMs) || !isNumOrNull(v.pid) || !allStrOrNull(v, BASE_STRINGS)) return null;
  switch (v.kind) {
    case 'network': {
      const port = v.sourcePort;
      const ok =
        v.eventId === 3 &&
        (v.protocol === null || v.protocol === 'tcp' || v.protocol === 'udp') &&
        typeof v.sourceIp === 'string' &&
        typeof port === 'number' &&
        Number.isInteger(port) &&
        port >= 0 &&
        port <= 65_535 &&
        isStrOrNull(v.destinationIp) &&
        isNumOrNull(v.destinationPort) &&
        isStrOrNull(v.destinationHostname) &&
        (v.initiated === null || typeof v.initiated === 'boolean');
      return ok ? (v as unknown as HintEvent) : null;
    }
    case 'process': {
      const h = v.hashes;
      const ok =
        v.eventId === 1 &&
        allStrOrNull(v, PROCESS_STRINGS) &&
        typeof v.commandLineTruncated === 'boolean' &&
        (h === null || (isObj(h) && allStrOrNull(h, HASHES)));
      return ok ? (v as unknown as HintEvent) : null;
    }
    case 'dns': {
      const ok =
        v.eventId === 22 &&
        typeof v.queryName === 'string' &&
        isNumOrNull(v.queryStatus) &&
        Array.isArray(v.queryResults) &&
        v.queryResults.every((r) => typeof r === 'string');
      return ok ? (v as unknown as HintEvent) : null;
    }
    default:
      return null;
  }
}

/** The ms part of a stream id "1700000000000-3". */
function idMs(id: string): number {
  const dash = id.indexOf('-');
  const ms = Number(dash < 0 ? id : id.slice(0, dash));
  return Number.isFinite(ms) ? ms : 0;
}

/** Connect, subscribe and load the recent hints already in Redis; rejects when Redis cannot be used. */
export async function createRedisHintStore(opts: RedisHintStoreOptions): Promise<HintStore> {
  const safeUrl = redactRedisUrl(opts.url);
  const prefix = opts.keyPrefix ?? DEFAULT_PREFIX;
  const now = opts.now ?? Date.now;
  const wallNow = Date.now;
  const maxEntries = Math.max(opts.maxEntries, 100);
  const processTtlMs = opts.processTtlMs ?? DEFAULT_PROCESS_TTL_MS;

  const key: Record<Kind, string> = { network: prefix + STREAM.network, process: prefix + STREAM.process, dns: prefix + STREAM.dns };
  const channel = `${prefix}events`;
  const retention: Record<Kind, number> = {
    network: Math.max(opts.windowMs, opts.managedWindowMs),
    dns: opts.windowMs,
    process: processTtlMs,
  };
  // The same split as the memory store's caps (network ≈ the rest, processes and DNS 10 % each).
  const cap: Record<Kind, number> = {
    network: maxEntries,
    process: Math.max(100, Math.floor(maxEntries / 10)),
    dns: Math.max(100, Math.floor(maxEntries / 10)),
  };

  // The mirror's clock can be set back while a stored event is applied (see applyStored).
  let clockOverride: number | null = null;
  const mirror = createMemoryHintStore({
    windowMs: opts.windowMs,
    managedWindowMs: opts.managedWindowMs,
    maxEntries: opts.maxEntries,
    processTtlMs,
    now: () => clockOverride ?? now(),
  });

  let started = false;
  let closed = false;
  const report = (message: string): void => {
    if (closed || opts.onError === undefined) return;
    try {
      opts.onError(new Error(`Redis hint store ${safeUrl}: ${message}`));
    } catch {
      // the caller's handler must not break the store
    }
  };

  const common: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: opts.connectTimeoutMs ?? 5_000,
    commandTimeout: opts.commandTimeoutMs ?? 2_000,
    retryStrategy: (times) => Math.min(100 * times, 2_000),
  };
  const cmd = new Redis(opts.url, { ...common, connectionName: 'egress-hints' });
  const sub = new Redis(opts.url, { ...common, connectionName: 'egress-hints-sub', autoResubscribe: true });

  let startError: string | null = null;
  const onConnError = (which: string) => (err: Error) => {
    if (!started) startError ??= err.message;
    else report(`${which} connection: ${err.message}`);
  };
  cmd.on('error', onConnError('command'));
  sub.on('error', onConnError('subscriber'));

  // ---- applying events from Redis to the mirror ------------------------------------------------------------
  const origin = randomUUID();

  /** Apply an event stored `ageMs` ago: the mirror's TTLs and managed window count from then. */
  const applyStored = (ev: HintEvent, ageMs: number): void => {
    clockOverride = now() - Math.max(0, ageMs);
    try {
      mirror.put(ev);
    } finally {
      clockOverride = null;
    }
  };

  const applyMessage = (message: string): void => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      report(`a message on ${channel} is not JSON; ignored`);
      return;
    }
    if (!isObj(parsed) || typeof parsed.o !== 'string' || !Array.isArray(parsed.e)) {
      report(`a message on ${channel} is not a hint batch; ignored`);
      return;
    }
    if (parsed.o === origin) return; // ours: stored in the mirror by put already
    let bad = 0;
    for (const v of parsed.e) {
      const ev = parseStoredHintEvent(v);
      if (ev === null) bad++;
      else mirror.put(ev);
    }
    if (bad > 0) report(`${bad} malformed event(s) in a message on ${channel}; ignored`);
  };

  sub.on('message', (ch: string, message: string) => {
    if (ch !== channel || closed) return;
    try {
      applyMessage(message);
    } catch (err) {
      report(`applying a published batch failed: ${messageOf(err)}`);
    }
  });

  /** Read every stream from `sinceWallMs` (bounded by each kind's retention) into the mirror. */
  const load = async (sinceWallMs: number): Promise<number> => {
    let loaded = 0;
    let bad = 0;
    for (const kind of KINDS) {
      let start = `${Math.max(0, Math.floor(Math.max(sinceWallMs, wallNow() - retention[kind])))}-0`;
      for (;;) {
        const entries = await cmd.xrange(key[kind], start, '+', 'COUNT', PAGE);
        const t = wallNow();
        for (const [id, fields] of entries) {
          const at = fields.indexOf('e');
          let ev: HintEvent | null = null;
          if (at >= 0 && at % 2 === 0) {
            try {
              ev = parseStoredHintEvent(JSON.parse(fields[at + 1] ?? ''));
            } catch {
              ev = null;
            }
          }
          if (ev === null || ev.kind !== kind) {
            bad++;
            continue;
          }
          applyStored(ev, t - idMs(id));
          loaded++;
        }
        const last = entries[entries.length - 1];
        if (entries.length < PAGE || last === undefined) break;
        start = `(${last[0]}`; // exclusive start (Redis ≥ 6.2)
      }
    }
    if (bad > 0) report(`${bad} malformed stream entr(y/ies) ignored while loading`);
    return loaded;
  };

  // ---- reconnects: resubscribe (ioredis does) and catch up on what the subscription missed ---------------------
  let subLostAt: number | null = null;
  let subEpoch = 0;
  let catchingUp = false;
  sub.on('close', () => {
    if (!started || closed) return;
    subEpoch++;
    subLostAt ??= wallNow();
  });
  const tryCatchUp = (): void => {
    if (subLostAt === null || catchingUp || closed) return;
    if (sub.status !== 'ready' || cmd.status !== 'ready') return;
    const epoch = subEpoch;
    const since = subLostAt - CATCH_UP_MARGIN_MS;
    catchingUp = true;
    void (async () => {
      // ioredis resubscribes on 'ready'; our own SUBSCRIBE is answered after its, so once this resolves the
      // subscription is in force and nothing published after the read below can be missed.
      await sub.subscribe(channel);
      await load(since);
    })().then(
      () => {
        catchingUp = false;
        if (subEpoch === epoch) subLostAt = null;
        else tryCatchUp();
      },
      (err: unknown) => {
        catchingUp = false;
        report(`catching up after a reconnect failed (retrying): ${messageOf(err)}`);
        setTimeout(tryCatchUp, 1_000).unref();
      },
    );
  };
  sub.on('ready', tryCatchUp);
  cmd.on('ready', tryCatchUp);

  // ---- start: connect both, subscribe, load ---------------------------------------------------------------
  try {
    await Promise.all([cmd.connect(), sub.connect()]);
    await sub.subscribe(channel);
    await load(0);
  } catch (err) {
    cmd.disconnect();
    sub.disconnect();
    mirror.close();
    const reason = startError ?? messageOf(err);
    throw new EgressError('HINT_STORE_FAILED', `hints.store: cannot use Redis at ${safeUrl}: ${reason}`);
  }
  started = true;

  // ---- writing batches --------------------------------------------------------------------------------------
  let outbox: HintEvent[] = [];
  let batchDone: Promise<void> | null = null;
  let inflightEvents = 0;
  const inflight = new Set<Promise<void>>();

  const write = async (batch: HintEvent[]): Promise<void> => {
    if (closed || batch.length === 0) return;
    if (cmd.status !== 'ready') {
      report(`unavailable (${cmd.status}): ${batch.length} event(s) stored on this replica only`);
      return;
    }
    if (inflightEvents + batch.length > MAX_INFLIGHT_EVENTS) {
      report(`too many writes in flight: ${batch.length} event(s) stored on this replica only`);
      return;
    }
    inflightEvents += batch.length;
    try {
      const p = cmd.pipeline();
      const published: string[] = [];
      let chunk: string[] = [];
      let bytes = 0;
      const publish = (): void => {
        if (chunk.length === 0) return;
        published.push(`{"o":${JSON.stringify(origin)},"e":[${chunk.join(',')}]}`);
        chunk = [];
        bytes = 0;
      };
      // Processes first, so a subscriber applying the messages in order finds the EID 1 of each network event.
      for (const kind of KINDS) {
        let touched = false;
        for (const ev of batch) {
          if (ev.kind !== kind) continue;
          const json = JSON.stringify(ev);
          p.xadd(key[kind], 'MAXLEN', '~', cap[kind], '*', 'e', json);
          if (bytes + json.length > MAX_MESSAGE_BYTES) publish();
          chunk.push(json);
          bytes += json.length + 1;
          touched = true;
        }
        if (touched) {
          p.xtrim(key[kind], 'MINID', '~', Math.max(0, wallNow() - retention[kind]));
          p.pexpire(key[kind], retention[kind] + EXPIRE_MARGIN_MS);
        }
      }
      publish();
      for (const m of published) p.publish(channel, m);
      const results = (await p.exec()) ?? [];
      let failed = 0;
      let first: string | null = null;
      for (const [err] of results) {
        if (err === null) continue;
        failed++;
        first ??= err.message;
      }
      if (failed > 0) report(`${failed} of ${results.length} command(s) of a batch of ${batch.length} event(s) failed: ${first}`);
    } catch (err) {
      report(`writing a batch of ${batch.length} event(s) failed: ${messageOf(err)}`);
    } finally {
      inflightEvents -= batch.length;
    }
  };

  const flush = (): Promise<void> => {
    const batch = outbox;
    outbox = [];
    batchDone = null;
    const done = write(batch);
    inflight.add(done);
    void done.finally(() => inflight.delete(done));
    return done;
  };

  const store: HintStore = {
    windowMs: mirror.windowMs,

    put(event) {
      mirror.put(event);
      if (closed) return;
      outbox.push(event);
      // Everything put in this synchronous run (one ingest request) goes out as one pipeline.
      batchDone ??= new Promise<void>((resolve) => queueMicrotask(() => void flush().then(resolve)));
      return batchDone;
    },
    findConnection: (sourceIp, sourcePort, atMs, transport) => mirror.findConnection(sourceIp, sourcePort, atMs, transport),
    findDnsQuery: (hostOrSourceIp, name, atMs) => mirror.findDnsQuery(hostOrSourceIp, name, atMs),
    isManaged: (sourceIp) => mirror.isManaged(sourceIp),
    onNetworkEvent: (listener) => mirror.onNetworkEvent(listener),
    size: () => mirror.size(),
    evictions: () => mirror.evictions(),
    sweep: () => mirror.sweep(),

    async close() {
      if (closed) return;
      // Let the batches already handed over finish (bounded by commandTimeout), then stop.
      if (outbox.length > 0) void flush();
      await Promise.allSettled([...inflight]);
      closed = true;
      const quit = async (c: Redis): Promise<void> => {
        if (c.status === 'ready') {
          try {
            await c.quit();
            return;
          } catch {
            // fall through: drop the connection
          }
        }
        c.disconnect();
      };
      await Promise.allSettled([quit(sub), quit(cmd)]);
      mirror.close();
    },
  };
  return store;
}

/**
 * The embedded baseline store (the default): one SQLite file, `<dir>/baseline.sqlite`, so baselines survive a
 * restart of a single proxy. Lookups never touch the file: they are answered from the mirror (baseline.ts).
 *
 * ## Writes, on the store thread
 * `record` queues one pending delta per key. A timer (flushIntervalMs), or a full batch, sends the queue to the
 * writer, a store on the process's store thread (src/store-thread.ts) that owns the write connection, `maxBatch`
 * keys per message; the writer writes each batch in ONE transaction with prepared statements: per key, read the
 * stored (count, last, first), merge the delta with the decay math (baseline.ts addDecayed, the same function,
 * passed to the writer as source), upsert the result
 * with its prune time `e`. A host → destination row that did not exist adds its host to the destination's `dh:`
 * row in the same transaction, so the distinct count is exact. The worker answers with every key's stored value;
 * the mirror takes it and re-adds what was recorded meanwhile (one batch in flight at a time, so the answer
 * holds all earlier batches and none of the queued ones).
 *
 * Why a thread: updates of random keys dirty a 4 KiB page per key and B-tree, and every commit appends those
 * pages to the WAL (checkpoints copy them again, with an fsync). Measured on the 2-core test machine: 20–60 µs
 * per key, so a 400-key transaction held the event loop for 10–25 ms and a checkpoint for longer. On the
 * worker the event loop only takes the queue, posts it and applies the answer (a few µs per key), whatever the
 * disk does. better-sqlite3 supports one connection per thread.
 *
 * ## File
 * The directory is created 0700 and the file 0600 (it lists which process talks to which host). WAL journal
 * with synchronous=NORMAL: a crash cannot corrupt the file; a power loss may lose the last second of counts,
 * which a baseline can afford. `PRAGMA application_id` marks the file as ours and `PRAGMA user_version` holds the
 * schema version: a foreign file, a newer schema, or a file that is not SQLite is refused at start (checked on
 * the main thread, before anything else) with an EgressError that says what to do. The first start time is
 * stored, so a restart does not restart learning. At start the `maxEntries` most recently updated rows are
 * loaded into the mirror (synchronously: start-up, before the proxy listens).
 *
 * ## Pruning
 * Every row carries `e`, the time its decayed count falls below PRUNE_BELOW (indexed). A slow timer has the
 * worker delete at most `pruneBatch` rows with e < now per tick; a pruned host → destination (or host) row takes
 * its host out of the distinct count. A pruned key recorded again is simply inserted again (a new host, if
 * it is a pair: counted again, as it should be).
 *
 * ## Failures
 * A failed batch (disk full, file locked by another process) is queued again and flush() rejects with an
 * EgressError; the queue is bounded (maxPending, oldest dropped and counted). A writer thread that dies is
 * started again on the next flush.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { startStoreThread, type ThreadReply } from '../../store-thread.js';
import { prepareStoreFile } from '../../store-file.js';
import Database from 'better-sqlite3';
import { isEgressError } from '../../errors.js';
import {
  type Baseline,
  type BaselineOptions,
  BaselineMirror,
  mirrorAccess,
  PRUNE_BELOW,
  TOTAL_HOSTS_KEY,
  addDecayed,
  baselineError,
  createReporter,
  decayFactor,
  expiresAtMs,
  messageOf,
  resolveBaselineOptions,
} from './baseline.js';

export interface SqliteBaselineOptions extends BaselineOptions {
  /** How often expired rows are pruned (default 60 s). */
  readonly pruneIntervalMs?: number;
  /** Rows pruned at most per tick (default 2,000). */
  readonly pruneBatch?: number;
}

export const SQLITE_FILE = 'baseline.sqlite';
export const SQLITE_SCHEMA_VERSION = 1;
/** "EGB1": PRAGMA application_id of our files (https://www.sqlite.org/pragma.html#pragma_application_id). */
export const SQLITE_APPLICATION_ID = 0x45474231;

const DEFAULT_PRUNE_INTERVAL_MS = 60_000;
const DEFAULT_PRUNE_BATCH = 2_000;
/** The writer's page cache (SQLite's default is 2 MiB; random-key updates re-read far more). */
const WRITER_CACHE_KIB = 32 * 1024;
/**
 * Checkpoint the WAL every this many pages (SQLite's default: 1,000). A checkpoint copies each page once however
 * many commits changed it, and fsyncs: rarer checkpoints cut the writer's cost per key by ~30 % here.
 */
const WRITER_CHECKPOINT_PAGES = 10_000;
/** The WAL is truncated to this after a checkpoint. */
const WRITER_WAL_LIMIT_BYTES = 64 * 1024 * 1024;
/** The writer waits this long for a lock held by another process before a batch fails (and is retried). */
const WRITER_BUSY_TIMEOUT_MS = 1_000;
/** The writer must say it is ready within this. */
const WRITER_START_TIMEOUT_MS = 10_000;
/** `e` of the total-hosts row: never pruned. */
const NEVER_EXPIRES = Number.MAX_SAFE_INTEGER;

const SCHEMA = `
CREATE TABLE meta (
  k TEXT PRIMARY KEY,
  v TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE counters (
  k TEXT PRIMARY KEY, -- baseline.ts pairKey/singleKey, or 'H' (all hosts)
  c REAL NOT NULL,    -- decayed count at t; dh: and H: number of hosts
  t REAL NOT NULL,    -- last update, ms since the epoch
  f REAL NOT NULL,    -- first seen, ms
  e REAL NOT NULL     -- when the decayed count falls below PRUNE_BELOW, ms
) WITHOUT ROWID;
CREATE INDEX counters_by_t ON counters (t);
CREATE INDEX counters_by_e ON counters (e);
`;


async function prepareDirectory(dir: string): Promise<string> {
  const file = join(dir, SQLITE_FILE);
  await prepareStoreFile(file, 'baseline:', baselineError);
  return file;
}

/** Opens the file, checks it is ours and of a schema we read, creates the schema on first use. */
function openDatabase(file: string): Database.Database {
  let db: Database.Database | null = null;
  try {
    db = new Database(file);
    const appId = db.pragma('application_id', { simple: true }) as number;
    const version = db.pragma('user_version', { simple: true }) as number;
    if (appId !== 0 && appId !== SQLITE_APPLICATION_ID) {
      throw baselineError(`baseline: ${file} belongs to another application (application_id 0x${appId.toString(16)}); move it away or choose another directory`);
    }
    if (version > SQLITE_SCHEMA_VERSION) {
      throw baselineError(
        `baseline: ${file} has schema version ${version}, newer than this egress-inspector reads (${SQLITE_SCHEMA_VERSION}); run the newer version, or move the file away to start a new baseline`,
      );
    }
    if (version === 0) {
      const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n;
      if (tables > 0) throw baselineError(`baseline: ${file} is a SQLite database but not a baseline (tables without a schema version); move it away or choose another directory`);
    }
    if (db.pragma('journal_mode = WAL', { simple: true }) !== 'wal') throw new Error('cannot switch to WAL journal mode');
    db.pragma('synchronous = NORMAL');
    if (version === 0) {
      db.exec(`BEGIN; ${SCHEMA} PRAGMA application_id = ${SQLITE_APPLICATION_ID}; PRAGMA user_version = ${SQLITE_SCHEMA_VERSION}; COMMIT;`);
    }
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      // already failing
    }
    if (isEgressError(err)) throw err;
    // SQLITE_NOTADB "file is not a database", SQLITE_CORRUPT, I/O errors …
    throw baselineError(`baseline: ${file} is not a usable baseline database (${messageOf(err)}); move it away to start a new baseline`, err);
  }
}

// ---- the writer thread ----------------------------------------------------------------------------------------

/**
 * The writer, run on the process's store thread (src/store-thread.ts: a CommonJS-style function of require,
 * parentPort and workerData). Its decay math is baseline.ts's own
 * functions, inserted as source, so there is one implementation. Messages: {id, type: 'write', items: [key, c,
 * t, f, distinctKey|null, …]} → {id, rows: [key, c, t, f, …], distinct: [key, hosts, t, …]}; {id, type: 'prune',
 * now, limit} → {id, keys: [...], distinct: [...]}; {type: 'close'}. A failure answers {id, error}.
 */
const WRITER_SOURCE = `
'use strict';
const Database = require(workerData.sqlite);
const PRUNE_BELOW = ${PRUNE_BELOW};
${decayFactor.toString()}
${addDecayed.toString()}
${expiresAtMs.toString()}
const h = workerData.halfLifeMs;
const TOTAL = ${JSON.stringify(TOTAL_HOSTS_KEY)};
const NEVER_EXPIRES = ${NEVER_EXPIRES};
const db = new Database(workerData.file, { timeout: ${WRITER_BUSY_TIMEOUT_MS} });
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('cache_size = -${WRITER_CACHE_KIB}');
db.pragma('wal_autocheckpoint = ${WRITER_CHECKPOINT_PAGES}');
db.pragma('journal_size_limit = ${WRITER_WAL_LIMIT_BYTES}');
const selectRow = db.prepare('SELECT c, t, f FROM counters WHERE k = ?');
const upsertRow = db.prepare('INSERT INTO counters (k, c, t, f, e) VALUES (?, ?, ?, ?, ?) ON CONFLICT (k) DO UPDATE SET c = excluded.c, t = excluded.t, f = excluded.f, e = excluded.e');
const addHosts = db.prepare('INSERT INTO counters (k, c, t, f, e) VALUES (?, ?, ?, ?, ?) ON CONFLICT (k) DO UPDATE SET c = counters.c + excluded.c, t = max(counters.t, excluded.t), e = max(counters.e, excluded.e) RETURNING c, t');
const removeHost = db.prepare('UPDATE counters SET c = max(c - 1, 0) WHERE k = ? RETURNING c, t');
const deleteRow = db.prepare('DELETE FROM counters WHERE k = ?');
const expiredRows = db.prepare('SELECT k FROM counters WHERE e < ? ORDER BY e LIMIT ?');

const write = db.transaction((items) => {
  const rows = [];
  const touched = new Map();
  for (let i = 0; i < items.length; i += 5) {
    const key = items[i], dc = items[i + 1], dt = items[i + 2], df = items[i + 3], dk = items[i + 4];
    const old = selectRow.get(key);
    const v = { c: dc, t: dt };
    let f = df;
    if (old !== undefined) {
      v.c = old.c;
      v.t = old.t;
      addDecayed(v, dc, dt, h);
      if (old.f < f) f = old.f;
    }
    const e = expiresAtMs(v.c, v.t, h);
    upsertRow.run(key, v.c, v.t, f, e);
    rows.push(key, v.c, v.t, f);
    if (dk !== null) {
      let d = touched.get(dk);
      if (d === undefined) touched.set(dk, (d = { added: 0, t: v.t, e }));
      if (old === undefined) d.added++;
      if (v.t > d.t) d.t = v.t;
      if (e > d.e) d.e = e;
    }
  }
  const distinct = [];
  for (const [dk, d] of touched) {
    const r = addHosts.get(dk, d.added, d.t, d.t, dk === TOTAL ? NEVER_EXPIRES : d.e);
    if (r !== undefined) distinct.push(dk, r.c, r.t);
  }
  return { rows, distinct };
});

const prune = db.transaction((now, limit) => {
  const keys = expiredRows.all(now, limit).map((r) => r.k);
  const changed = new Map();
  for (const k of keys) {
    deleteRow.run(k);
    const dk = distinctOf(k);
    if (dk === null) continue;
    const r = removeHost.get(dk);
    if (r === undefined) continue;
    if (r.c <= 0 && dk !== TOTAL) deleteRow.run(dk);
    changed.set(dk, [r.c, r.t]);
  }
  const distinct = [];
  for (const [dk, [c, t]] of changed) distinct.push(dk, c, t);
  return { keys, distinct };
});

// The distinct row a counter feeds (baseline.ts distinctKeyOf over the key layout of pairKey/singleKey).
function distinctOf(k) {
  if (k.startsWith('h:')) return TOTAL;
  if (!k.startsWith('hd:')) return null;
  const colon = k.indexOf(':', 3);
  const len = Number(k.slice(3, colon));
  return colon < 0 || !Number.isInteger(len) ? null : 'dh:' + k.slice(colon + 1 + len);
}

parentPort.on('message', (m) => {
  if (m.type === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    // BEGIN IMMEDIATE: with several processes on one file (proxy.workers), a deferred transaction that reads and
    // then writes can deadlock on the lock upgrade and fail with "database is locked" without waiting.
    if (m.type === 'write') parentPort.postMessage({ id: m.id, ...write.immediate(m.items) });
    else if (m.type === 'prune') parentPort.postMessage({ id: m.id, ...prune.immediate(m.now, m.limit) });
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: err && err.message ? err.message : String(err) });
  }
});
parentPort.postMessage({ id: 0, ready: true });
`;

/** The writer thread with one request in flight at a time (callers serialise). */
interface Writer {
  call(msg: Record<string, unknown>): Promise<ThreadReply>;
  close(): Promise<void>;
}

async function startWriter(file: string, halfLifeMs: number, onDied: (message: string) => void): Promise<Writer> {
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
  const { thread, ready } = startStoreThread({
    source: WRITER_SOURCE,
    workerData: { file, halfLifeMs, sqlite },
    name: 'writer thread',
    startTimeoutMs: WRITER_START_TIMEOUT_MS,
    onDied,
  });
  await ready;
  return { call: (msg) => thread.call(msg), close: () => thread.close({ type: 'close' }) };
}

/** Checks a reply's flat arrays: [string, number, number, number]* and [string, number, number]*. */
function flat(v: unknown, stride: number): unknown[] | null {
  if (!Array.isArray(v) || v.length % stride !== 0) return null;
  for (let i = 0; i < v.length; i += stride) {
    if (typeof v[i] !== 'string') return null;
    for (let j = 1; j < stride; j++) if (typeof v[i + j] !== 'number') return null;
  }
  return v;
}

export async function openSqliteBaseline(dir: string, opts: SqliteBaselineOptions = {}): Promise<Baseline> {
  const cfg = resolveBaselineOptions(opts);
  const pruneIntervalMs = Math.max(1, opts.pruneIntervalMs ?? DEFAULT_PRUNE_INTERVAL_MS);
  const pruneBatch = Math.max(1, Math.floor(opts.pruneBatch ?? DEFAULT_PRUNE_BATCH));
  const file = await prepareDirectory(dir);
  const db = openDatabase(file);
  const report = createReporter(`baseline store ${file}`, cfg.onError);

  // ---- start-up on the main thread: learning start, then the most recent rows into the mirror ---------------
  let learningUntilMs: number;
  const mirror = new BaselineMirror(cfg, true);
  try {
    db.prepare('INSERT OR IGNORE INTO meta (k, v) VALUES (?, ?)').run('first_start_ms', String(Math.floor(cfg.now())));
    const first = Number((db.prepare('SELECT v FROM meta WHERE k = ?').get('first_start_ms') as { v: string } | undefined)?.v);
    if (!Number.isFinite(first)) throw new Error('meta.first_start_ms is not a number');
    learningUntilMs = first + cfg.learningMs;
    // Oldest first, so the mirror's LRU order matches; rows already below the prune threshold are skipped.
    const rows = db
      .prepare<[number, number], { k: string; c: number; t: number; f: number }>('SELECT k, c, t, f FROM counters WHERE e >= ? ORDER BY t DESC LIMIT ?')
      .all(cfg.now(), cfg.maxEntries);
    for (let i = rows.length - 1; i >= 0; i--) {
      const r = rows[i] as { k: string; c: number; t: number; f: number };
      if (r.k === TOTAL_HOSTS_KEY || r.k.startsWith('dh:')) mirror.applyDistinct(r.k, r.c, r.t);
      else mirror.applyStored(r.k, r.c, r.t, r.f);
    }
    const total = db.prepare<[string], { c: number; t: number }>('SELECT c, t FROM counters WHERE k = ?').get(TOTAL_HOSTS_KEY);
    if (total !== undefined) mirror.applyDistinct(TOTAL_HOSTS_KEY, total.c, total.t);
  } catch (err) {
    mirror.clear();
    throw baselineError(`baseline: ${file} is not a usable baseline database (${messageOf(err)}); move it away to start a new baseline`, err);
  } finally {
    db.close();
  }

  let writer: Writer | null = null;
  const ensureWriter = async (): Promise<Writer> => {
    writer ??= await startWriter(file, cfg.halfLifeMs, (message) => {
      writer = null; // started again on the next write
      report(message);
    });
    return writer;
  };
  try {
    await ensureWriter();
  } catch (err) {
    mirror.clear();
    throw baselineError(`baseline: cannot start the writer for ${file}: ${messageOf(err)}`, err);
  }

  // ---- writing: one batch in flight at a time --------------------------------------------------------------
  let closed = false;
  /** Keys of the batch the writer holds: taken from the queue, not yet in the file (sizes().pendingWrites). */
  let inFlight = 0;

  const writeOne = async (): Promise<Error | null> => {
    const items = mirror.take(cfg.maxBatch);
    if (items.length === 0) return null;
    const message: unknown[] = [];
    for (const it of items) message.push(it.entry.key, it.c, it.t, it.f, it.entry.distinctKey);
    let reply: ThreadReply;
    inFlight = items.length;
    try {
      reply = await (await ensureWriter()).call({ type: 'write', items: message });
    } catch (err) {
      inFlight = 0;
      mirror.restore(items);
      report(`writing a batch of ${items.length} key(s) failed (kept queued): ${messageOf(err)}`);
      return baselineError(`baseline: writing to ${file} failed: ${messageOf(err)}`, err);
    }
    inFlight = 0;
    const rows = flat(reply.rows, 4);
    const distinct = flat(reply.distinct, 3);
    for (const it of items) mirror.confirm(it);
    if (rows === null || distinct === null) {
      report('the writer answered a batch with a malformed reply; the mirror keeps its own counts');
      return null;
    }
    // Rows come back in the batch's order.
    if (rows.length !== 4 * items.length) report('the writer answered a batch with a different number of rows; the mirror keeps its own counts');
    else items.forEach((it, i) => mirror.applyWritten(it, rows[4 * i + 1] as number, rows[4 * i + 2] as number, rows[4 * i + 3] as number));
    for (let i = 0; i < distinct.length; i += 3) mirror.applyDistinct(distinct[i] as string, distinct[i + 1] as number, distinct[i + 2] as number);
    return null;
  };

  /**
   * Writes what is queued when it starts (or until a batch fails). Not "until the queue is empty": under steady
   * traffic every flow queues its keys again while a batch is out, so that loop never ended and wrote one small
   * transaction per round trip to the thread — ~200 a second, each ~3 WAL pages, on a proxy under load (issue 9:
   * ~2 pwrite64 and 2 fcntl per request, measured with strace). Keys queued meanwhile wait for the next tick
   * (flushIntervalMs) or a full batch.
   */
  const drain = async (): Promise<Error | null> => {
    for (let batches = Math.ceil(mirror.pendingCount() / cfg.maxBatch); batches > 0 && mirror.pendingCount() > 0 && !closed; batches--) {
      const err = await writeOne();
      if (err !== null) return err;
    }
    return null;
  };

  const prune = async (): Promise<Error | null> => {
    try {
      const reply = await (await ensureWriter()).call({ type: 'prune', now: cfg.now(), limit: pruneBatch });
      const keys = Array.isArray(reply.keys) ? (reply.keys as unknown[]) : [];
      const distinct = flat(reply.distinct, 3) ?? [];
      for (const k of keys) if (typeof k === 'string') mirror.forget(k);
      for (let i = 0; i < distinct.length; i += 3) {
        const dk = distinct[i] as string;
        const c = distinct[i + 1] as number;
        if (c <= 0) mirror.forget(dk);
        else mirror.applyDistinct(dk, c, distinct[i + 2] as number);
      }
      return null;
    } catch (err) {
      report(`pruning failed: ${messageOf(err)}`);
      return baselineError(`baseline: pruning ${file} failed: ${messageOf(err)}`, err);
    }
  };

  // Every job (drain, prune) runs after the previous one: one request in flight.
  let chain: Promise<Error | null> = Promise.resolve(null);
  let queuedDrain: Promise<Error | null> | null = null;
  const run = (job: () => Promise<Error | null>): Promise<Error | null> => {
    const p = chain.then(job, job);
    chain = p;
    return p;
  };
  const scheduleDrain = (): Promise<Error | null> => {
    // One drain waiting behind the current job is enough: it writes whatever is queued when it runs.
    queuedDrain ??= run(() => {
      queuedDrain = null;
      return drain();
    });
    return queuedDrain;
  };

  const flushTimer = setInterval(() => {
    if (mirror.pendingCount() > 0) void scheduleDrain();
  }, cfg.flushIntervalMs);
  flushTimer.unref();
  const pruneTimer = setInterval(() => void run(prune), pruneIntervalMs);
  pruneTimer.unref();

  return {
    ...mirrorAccess(mirror, cfg.now, learningUntilMs, () => closed, () => {
      if (mirror.pendingCount() >= cfg.maxBatch && queuedDrain === null) void scheduleDrain();
    }),
    sizes: () => ({ entries: mirror.entries.size, pendingWrites: mirror.pendingCount() + inFlight, droppedWrites: mirror.dropped }),
    async flush() {
      if (closed) return;
      const err = await scheduleDrain();
      if (err !== null) throw err;
    },
    async close() {
      if (closed) return;
      clearInterval(flushTimer);
      clearInterval(pruneTimer);
      // Shutdown: write what is queued now, then stop the writer.
      const err = await scheduleDrain();
      if (err !== null) report(`closing: ${mirror.pendingCount()} queued key(s) not written: ${err.message}`);
      closed = true;
      await chain;
      const w = writer;
      writer = null;
      if (w !== null) {
        try {
          await w.close();
        } catch (e) {
          report(`closing failed: ${messageOf(e)}`);
        }
      }
      mirror.clear();
    },
  };
}

/**
 * The embedded baseline store (the default): one SQLite file, `<dir>/baseline.sqlite`, so baselines survive a
 * restart of a single proxy. Lookups never touch the file: they are answered from the mirror (baseline.ts).
 *
 * ## Writes
 * `record` queues one pending delta per key; a timer (flushIntervalMs) — or a full batch — schedules the
 * writes with setImmediate, `maxBatch` keys per transaction, one transaction per event-loop turn, so a burst is
 * written in slices with I/O between them. Per key: read the stored (count, last, first), merge the delta with
 * the decay math in JavaScript, upsert the result with its prune time `e` (SQLite's math functions are a build
 * option; JavaScript's are not). A host → destination row that did not exist adds its host to the destination's
 * `dh:` row in the same transaction, so the distinct count is exact. After the commit, the mirror takes each key's
 * stored value (nothing can have been recorded in between: better-sqlite3 is synchronous).
 *
 * better-sqlite3 runs on the event-loop thread. That is deliberate: a point read + upsert costs a few µs and a
 * batch is bounded, so a slice blocks for a few ms at most (bench/baseline.bench.ts measures the event-loop delay
 * while recording 100k flows/s); a worker thread would add a copy of every batch and a second connection.
 *
 * ## File
 * The directory is created 0700 and the file 0600 (it lists which process talks to which host). WAL journal
 * with synchronous=NORMAL: a crash cannot corrupt the file; a power loss may lose the last second of counts,
 * which a baseline can afford. `PRAGMA application_id` marks the file as ours and `PRAGMA user_version` holds the
 * schema version: a foreign file, a newer schema, or a file that is not SQLite is refused at start with an
 * EgressError that says what to do. The first start time is stored, so a restart does not restart learning.
 *
 * ## Pruning
 * Every row carries `e`, the time its decayed count falls below PRUNE_BELOW (indexed). A slow timer deletes at
 * most `pruneBatch` rows with e < now per tick; a pruned host → destination (or host) row takes its host out of
 * the distinct count. Keys with unwritten increments are left for the next tick (they are about to be rewritten).
 * At start the `maxEntries` most recently updated rows are loaded into the mirror.
 */
import { constants } from 'node:fs';
import { access, mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { isEgressError } from '../../errors.js';
import {
  type Baseline,
  type BaselineOptions,
  type BatchItem,
  BaselineMirror,
  TOTAL_HOSTS_KEY,
  addDecayed,
  baselineError,
  createReporter,
  distinctKeyOf,
  expiresAtMs,
  messageOf,
  parseKey,
  resolveBaselineOptions,
} from './baseline.js';

export interface SqliteBaselineOptions extends BaselineOptions {
  /** How often expired rows are pruned (default 60 s). */
  readonly pruneIntervalMs?: number;
  /** Rows pruned at most per tick (default 2,000: a few ms). */
  readonly pruneBatch?: number;
  /** A write slice (one transaction) stops taking keys after this long (default 4 ms), then yields. */
  readonly sliceBudgetMs?: number;
}

export const SQLITE_FILE = 'baseline.sqlite';
export const SQLITE_SCHEMA_VERSION = 1;
/** "EGB1": PRAGMA application_id of our files (https://www.sqlite.org/pragma.html#pragma_application_id). */
export const SQLITE_APPLICATION_ID = 0x45474231;

const DEFAULT_PRUNE_INTERVAL_MS = 60_000;
const DEFAULT_PRUNE_BATCH = 2_000;
const DEFAULT_SLICE_BUDGET_MS = 4;
/** Keys taken from the queue at a time within a slice (between clock reads). */
const TAKE_STEP = 64;
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

interface CounterRow {
  c: number;
  t: number;
  f: number;
}

async function prepareDirectory(dir: string): Promise<string> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await access(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (err) {
    throw baselineError(`baseline: cannot use the directory ${dir} (${messageOf(err)}); it must be a writable directory`, err);
  }
  const file = join(dir, SQLITE_FILE);
  try {
    // Created 0600 before SQLite opens it (SQLite would use 0644); the -wal and -shm files copy its mode.
    const fh = await open(file, 'a', 0o600);
    await fh.close();
    await access(file, constants.R_OK | constants.W_OK);
  } catch (err) {
    throw baselineError(`baseline: cannot open ${file} for reading and writing (${messageOf(err)})`, err);
  }
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

export async function openSqliteBaseline(dir: string, opts: SqliteBaselineOptions = {}): Promise<Baseline> {
  const cfg = resolveBaselineOptions(opts);
  const h = cfg.halfLifeMs;
  const pruneIntervalMs = Math.max(1, opts.pruneIntervalMs ?? DEFAULT_PRUNE_INTERVAL_MS);
  const pruneBatch = Math.max(1, Math.floor(opts.pruneBatch ?? DEFAULT_PRUNE_BATCH));
  const sliceBudgetMs = Math.max(0.1, opts.sliceBudgetMs ?? DEFAULT_SLICE_BUDGET_MS);
  const file = await prepareDirectory(dir);
  const db = openDatabase(file);
  const report = createReporter(`baseline store ${file}`, cfg.onError);

  const selectRow = db.prepare<[string], CounterRow>('SELECT c, t, f FROM counters WHERE k = ?');
  const upsertRow = db.prepare<[string, number, number, number, number]>(
    'INSERT INTO counters (k, c, t, f, e) VALUES (?, ?, ?, ?, ?) ON CONFLICT (k) DO UPDATE SET c = excluded.c, t = excluded.t, f = excluded.f, e = excluded.e',
  );
  /** Adds hosts to a distinct row (dh:<destination> or H); returns the new count. */
  const addHosts = db.prepare<[string, number, number, number, number], { c: number; t: number }>(
    'INSERT INTO counters (k, c, t, f, e) VALUES (?, ?, ?, ?, ?) ON CONFLICT (k) DO UPDATE SET c = counters.c + excluded.c, t = max(counters.t, excluded.t), e = max(counters.e, excluded.e) RETURNING c, t',
  );
  const removeHost = db.prepare<[string], { c: number; t: number }>('UPDATE counters SET c = max(c - 1, 0) WHERE k = ? RETURNING c, t');
  const deleteRow = db.prepare<[string]>('DELETE FROM counters WHERE k = ?');
  const expiredRows = db.prepare<[number, number], { k: string }>('SELECT k FROM counters WHERE e < ? ORDER BY e LIMIT ?');
  const recentRows = db.prepare<[number, number], { k: string; c: number; t: number; f: number }>(
    'SELECT k, c, t, f FROM counters WHERE e >= ? ORDER BY t DESC LIMIT ?',
  );

  // ---- learning: the first start is stored once ------------------------------------------------------------
  let learningUntilMs: number;
  try {
    db.prepare('INSERT OR IGNORE INTO meta (k, v) VALUES (?, ?)').run('first_start_ms', String(Math.floor(cfg.now())));
    const first = Number((db.prepare('SELECT v FROM meta WHERE k = ?').get('first_start_ms') as { v: string } | undefined)?.v);
    if (!Number.isFinite(first)) throw new Error('meta.first_start_ms is not a number');
    learningUntilMs = first + cfg.learningMs;
  } catch (err) {
    db.close();
    throw baselineError(`baseline: ${file} is not a usable baseline database (${messageOf(err)}); move it away to start a new baseline`, err);
  }

  // ---- load the most recently updated rows into the mirror (oldest first, so LRU order matches) --------------
  const mirror = new BaselineMirror(cfg, true);
  const applyRow = (k: string, c: number, t: number, f: number): void => {
    if (k === TOTAL_HOSTS_KEY || k.startsWith('dh:')) mirror.applyDistinct(k, c, t);
    else mirror.applyStored(k, c, t, f);
  };
  try {
    const rows = recentRows.all(cfg.now(), cfg.maxEntries);
    for (let i = rows.length - 1; i >= 0; i--) {
      const r = rows[i] as { k: string; c: number; t: number; f: number };
      applyRow(r.k, r.c, r.t, r.f);
    }
    const total = selectRow.get(TOTAL_HOSTS_KEY);
    if (total !== undefined) mirror.applyDistinct(TOTAL_HOSTS_KEY, total.c, total.t);
  } catch (err) {
    db.close();
    throw baselineError(`baseline: cannot read ${file} (${messageOf(err)}); move it away to start a new baseline`, err);
  }

  // ---- one batch = one transaction ------------------------------------------------------------------------
  interface Written {
    /** key, c, t, f per item */
    readonly rows: Array<[string, number, number, number]>;
    /** key, hosts, t per distinct row touched */
    readonly distinct: Array<[string, number, number]>;
  }
  /**
   * One slice: takes queued keys (into `taken`, so a failure can queue them again) until maxBatch keys or the
   * time budget, and writes them in one transaction.
   */
  const writeSlice = db.transaction((taken: BatchItem[]): Written => {
    const rows: Array<[string, number, number, number]> = [];
    const touched = new Map<string, { added: number; t: number; e: number }>();
    const deadline = performance.now() + sliceBudgetMs;
    for (;;) {
      const more = mirror.take(Math.min(TAKE_STEP, cfg.maxBatch - taken.length));
      if (more.length === 0) break;
      for (const it of more) taken.push(it);
      writeItems(more, rows, touched);
      if (taken.length >= cfg.maxBatch || performance.now() >= deadline) break;
    }
    const distinct: Array<[string, number, number]> = [];
    for (const [dk, d] of touched) {
      const r = addHosts.get(dk, d.added, d.t, d.t, dk === TOTAL_HOSTS_KEY ? NEVER_EXPIRES : d.e);
      if (r !== undefined) distinct.push([dk, r.c, r.t]);
    }
    return { rows, distinct };
  });

  function writeItems(items: readonly BatchItem[], rows: Array<[string, number, number, number]>, touched: Map<string, { added: number; t: number; e: number }>): void {
    for (const it of items) {
      const key = it.entry.key;
      const old = selectRow.get(key);
      const v = { c: it.c, t: it.t };
      let f = it.f;
      if (old !== undefined) {
        v.c = old.c;
        v.t = old.t;
        addDecayed(v, it.c, it.t, h);
        if (old.f < f) f = old.f;
      }
      const e = expiresAtMs(v.c, v.t, h);
      upsertRow.run(key, v.c, v.t, f, e);
      rows.push([key, v.c, v.t, f]);
      const dk = it.entry.distinctKey;
      if (dk !== null) {
        let d = touched.get(dk);
        if (d === undefined) touched.set(dk, (d = { added: 0, t: v.t, e }));
        if (old === undefined) d.added++;
        if (v.t > d.t) d.t = v.t;
        if (e > d.e) d.e = e;
      }
    }
  }

  let closed = false;
  let immediate: NodeJS.Immediate | null = null;
  let draining = false;
  let waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];

  /** Writes one batch; the error when the store failed (the batch is queued again). */
  const writeOne = (): Error | null => {
    if (mirror.pendingCount() === 0) return null;
    const items: BatchItem[] = [];
    let written: Written;
    try {
      written = writeSlice(items);
    } catch (err) {
      mirror.restore(items);
      report(`writing a batch of ${items.length} key(s) failed (kept queued): ${messageOf(err)}`);
      return baselineError(`baseline: writing to ${file} failed: ${messageOf(err)}`, err);
    }
    for (const it of items) mirror.confirm(it);
    for (const [k, c, t, f] of written.rows) mirror.applyStored(k, c, t, f, false);
    for (const [k, n, t] of written.distinct) mirror.applyDistinct(k, n, t);
    return null;
  };

  const settle = (err: Error | null): void => {
    const w = waiters;
    waiters = [];
    for (const x of w) {
      if (err === null) x.resolve();
      else x.reject(err);
    }
  };

  /** One slice per event-loop turn: write a batch, then yield (setImmediate) before the next. */
  const pump = (): void => {
    immediate = null;
    if (closed) return;
    const err = writeOne();
    const left = mirror.pendingCount();
    if (err === null && left > 0 && (draining || waiters.length > 0 || left >= cfg.maxBatch)) {
      immediate = setImmediate(pump);
      return;
    }
    draining = false;
    if (err !== null || left === 0) settle(err);
  };
  const schedule = (): void => {
    if (immediate === null && !closed) immediate = setImmediate(pump);
  };

  const flushTimer = setInterval(() => {
    if (mirror.pendingCount() === 0) return;
    draining = true;
    schedule();
  }, cfg.flushIntervalMs);
  flushTimer.unref();

  // ---- pruning --------------------------------------------------------------------------------------------
  const pruneTxn = db.transaction((keys: readonly string[]): Array<[string, number, number]> => {
    const distinct = new Map<string, [number, number]>();
    for (const k of keys) {
      deleteRow.run(k);
      const parsed = parseKey(k);
      const dk = parsed === null ? null : distinctKeyOf(parsed);
      if (dk === null) continue;
      const r = removeHost.get(dk);
      if (r === undefined) continue;
      if (r.c <= 0 && dk !== TOTAL_HOSTS_KEY) deleteRow.run(dk);
      distinct.set(dk, [r.c, r.t]);
    }
    return [...distinct].map(([dk, [c, t]]) => [dk, c, t]);
  });
  const prune = (): void => {
    if (closed) return;
    try {
      const keys = expiredRows
        .all(cfg.now(), pruneBatch)
        .map((r) => r.k)
        .filter((k) => !mirror.isQueued(k));
      if (keys.length === 0) return;
      const distinct = pruneTxn(keys);
      for (const k of keys) mirror.forget(k);
      for (const [dk, c, t] of distinct) {
        if (c <= 0) mirror.forget(dk);
        else mirror.applyDistinct(dk, c, t);
      }
    } catch (err) {
      report(`pruning failed: ${messageOf(err)}`);
    }
  };
  const pruneTimer = setInterval(prune, pruneIntervalMs);
  pruneTimer.unref();

  return {
    learningUntilMs,
    lookup(q) {
      const now = cfg.now();
      return mirror.lookup(q, now, now < learningUntilMs);
    },
    record(q, atMs) {
      if (closed) return;
      mirror.record(q, Number.isFinite(atMs) ? atMs : cfg.now());
      if (mirror.pendingCount() >= cfg.maxBatch) schedule();
    },
    sizes: () => ({ entries: mirror.entries.size, pendingWrites: mirror.pendingCount(), droppedWrites: mirror.dropped }),
    flush() {
      if (closed) return Promise.resolve();
      if (mirror.pendingCount() === 0 && immediate === null) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        waiters.push({ resolve, reject });
        draining = true;
        schedule();
      });
    },
    close() {
      if (closed) return Promise.resolve();
      clearInterval(flushTimer);
      clearInterval(pruneTimer);
      if (immediate !== null) clearImmediate(immediate);
      immediate = null;
      // Shutdown: write what is queued now, synchronously (bounded by maxPending), then close the file.
      let err: Error | null = null;
      while (mirror.pendingCount() > 0 && err === null) err = writeOne();
      if (err !== null) report(`closing: ${mirror.pendingCount()} queued key(s) not written: ${err.message}`);
      closed = true;
      settle(err);
      try {
        db.close();
      } catch (e) {
        report(`closing failed: ${messageOf(e)}`);
      }
      mirror.clear();
      return Promise.resolve();
    },
  };
}

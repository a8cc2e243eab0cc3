/**
 * The console's history store: flows older than the in-memory ring (src/console/recent.ts), in one SQLite file,
 * for the flows page's older pages and a flow's details by id. The file lists which process talked to which
 * host, so its directory is created 0700 and the file 0600; WAL journal with synchronous=NORMAL: a crash cannot
 * corrupt it, a power loss may lose the last second. `PRAGMA application_id` marks it as ours and `user_version`
 * holds the schema: a foreign file, a newer schema, or a file that is not SQLite is refused at start with an
 * EgressError that names the path and says what to do (the same checks as src/enrich/baseline/baseline-sqlite.ts).
 *
 * ## Cost on the proxy's thread
 * `add` runs once per flow record: it samples, then stores the flow's reference in a fixed ring (the oldest is
 * dropped and counted when it is full) — no allocation, no I/O. Blocked flows and alerts are always kept;
 * allowed flows that are not alerts are kept up to `maxRate` per wall-clock second and counted in `sampledOut`
 * beyond it: at 5,000 flows/s a history of everything would be mostly repetition, while every block and alert
 * is what an operator pages back to. Every `flushIntervalMs` the ring goes to the thread as one message of
 * flat values per MAX_BATCH flows (an array of primitives clones ~4× faster than an object per flow), one
 * message in flight at a time.
 *
 * ## On the store's thread (src/console/history-worker.ts)
 * Inserts (one transaction, one prepared statement), pruning (after each write, at least every 10 s: rows older
 * than `retentionMs`, then the oldest beyond `maxRows`) and every query run there, so a slow disk or a big scan
 * never holds the event loop. A query that has no answer within 5 s is rejected. A failed write counts its
 * flows in `dropped` and sets `lastError`; a thread that dies is started again by the next flush (at most every
 * 10 s). Nothing here throws into `add`.
 *
 * ## Queries
 * buildQuerySql turns a FlowQuery into one statement whose answers are compileFilter's (src/console/filter.ts;
 * test/unit/console/history.test.ts checks this with random flows and filters), newest first.
 */
import { NoAnswer, startStoreThread, type StoreThread } from '../store-thread.js';
import { createRequire } from 'node:module';
import { EgressError, messageOf, type ErrorCode } from '../errors.js';
import { prepareStoreFile } from '../store-file.js';
import type { ConsoleFlow, FlowFilter, FlowHistory, FlowQuery, HistoryStats } from './model.js';
import { isSeverity } from './recent.js';
import { COLUMNS, HISTORY_WORKER_SOURCE, STRIDE, encodeList } from './history-worker.js';

export interface FlowHistoryOptions {
  /** The SQLite file (its directory is created 0700, the file 0600). */
  readonly path: string;
  /** Rows older than this are deleted. */
  readonly retentionMs: number;
  /** The oldest rows beyond this many are deleted. */
  readonly maxRows: number;
  /** Allowed flows that are not alerts kept per second at most (blocked flows and alerts are always kept). */
  readonly maxRate: number;
  /** How often the queue is written (default 1 s). */
  readonly flushIntervalMs?: number;
  /** Flows queued at most between writes; beyond, the oldest is dropped and counted (default 20,000). */
  readonly maxQueue?: number;
  /** Record text (characters ≈ bytes) queued at most; beyond, the oldest flows are dropped and counted (default 8 MiB). */
  readonly maxQueueBytes?: number;
  /** Clock, ms since the epoch (sampling windows and the retention cut); tests pass a fake one. */
  readonly now?: () => number;
}

/**
 * The error code of a history file that cannot be opened. The catalogue (src/errors.ts) has no history code
 * yet; BASELINE_STORE_FAILED is the same failure (unwritable directory, corrupt or foreign SQLite file) of the
 * other embedded store.
 */
export const HISTORY_ERROR_CODE: ErrorCode = 'BASELINE_STORE_FAILED';

/** Most rows one query returns (FlowQuery.limit is 1–1000). */
export const MAX_QUERY_ROWS = 1_000;
/** A query without an answer after this is rejected. */
export const QUERY_TIMEOUT_MS = 5_000;

const DEFAULT_FLUSH_INTERVAL_MS = 1_000;
const DEFAULT_MAX_QUEUE = 20_000;
/**
 * Record text waiting for the thread at most. When flows come faster than the thread writes them (an alert storm:
 * every flow an alert, ~4.5 KB records, the thread sharing a core with the proxy) a count bound alone let the queue
 * hold 20,000 records, ~90 MB (issue 9: peak RSS 146 → 252 MB in the core bench's tunnel section). The oldest are
 * dropped and counted (`dropped`, on the Health page); every flow is still in the flow log.
 */
const DEFAULT_MAX_QUEUE_BYTES = 8 * 1024 * 1024;
/** Pruning runs after every write, and at least this often when nothing is written. */
const PRUNE_INTERVAL_MS = 10_000;
/** Rows deleted per prune at most (more if the batch was bigger): bounds how long one prune holds the thread. */
const PRUNE_LIMIT = 10_000;
/** A write without an answer after this means the thread is stuck: it is stopped and started again. */
const WRITE_TIMEOUT_MS = 30_000;
/**
 * Flows per write message at most. Cloning a message costs the main thread ~6 µs per flow with a 1 KiB record
 * (measured on the 2-core test machine; the copy of the record is half of it), so a large batch holds the event
 * loop (20,000 flows: ~120 ms). It also costs memory: each message is serialized into one native buffer, and
 * glibc's malloc, after freeing a large block, raises its mmap threshold and serves the next ones from an arena it
 * seldom returns — 1,000 flows of ~4.5 KB (4.5 MB a message) left ~35 MB of the proxy's peak RSS in an alert
 * storm, 32 flows (~150 KB) almost none (issue 9, core bench tunnel section: 230 → 194 MB with the other bounds).
 */
export const MAX_BATCH = 32;
/** A thread that failed to start is not tried again sooner than this. */
const RESTART_BACKOFF_MS = 10_000;
/** The thread must say it is ready within this. */
const START_TIMEOUT_MS = 10_000;
/** "\n" or "\\n" escapes of encodeList, decoded. */
const ESCAPED = /\\([\s\S])/g;

function historyError(message: string, cause?: unknown): EgressError {
  return new EgressError(HISTORY_ERROR_CODE, message, cause === undefined ? undefined : { cause });
}

// ---- queries --------------------------------------------------------------------------------------------------

export interface QuerySql {
  readonly sql: string;
  readonly params: (string | number)[];
}

/**
 * One SELECT for `query`, with compileFilter's semantics: text fields are instr() over the lower-cased copies
 * (the needle lower-cased the same way; instr has no wildcards), rule is the deciding rule or an exact member
 * of rules, tag an exact member of tags. Newest first; `beforeMs` exclusive, `sinceMs` inclusive.
 */
export function buildQuerySql(query: FlowQuery): QuerySql {
  const where: string[] = [];
  const params: (string | number)[] = [];
  const f: FlowFilter = query.filter;
  if (f.action !== undefined) {
    where.push('action = ?');
    params.push(f.action);
  }
  if (f.alert !== undefined) where.push(f.alert ? 'severity IS NOT NULL' : 'severity IS NULL');
  const text: readonly (readonly [keyof FlowFilter & ('host' | 'user' | 'process' | 'destination'), string])[] = [
    ['host', 'host_lc'],
    ['user', 'user_lc'],
    ['process', 'process_lc'],
    ['destination', 'destination_lc'],
  ];
  for (const [name, column] of text) {
    const value = f[name];
    if (value === undefined) continue;
    // host: the endpoint's name or its address (as written: addresses are lower-case already).
    if (name === 'host') {
      where.push(`(instr(${column}, ?) > 0 OR instr(source_ip, ?) > 0)`);
      params.push(value.toLowerCase(), value.toLowerCase());
      continue;
    }
    where.push(`instr(${column}, ?) > 0`);
    params.push(value.toLowerCase());
  }
  if (f.rule !== undefined) {
    where.push('(rule = ? OR instr(rules, ?) > 0)');
    params.push(f.rule, encodeList([f.rule]));
  }
  if (f.tag !== undefined) {
    where.push('instr(tags, ?) > 0');
    params.push(encodeList([f.tag]));
  }
  if (f.minScore !== undefined) {
    // compileFilter: `score < NaN` is false, so a NaN minimum keeps every scored flow (SQLite binds NaN as NULL).
    if (Number.isNaN(f.minScore)) where.push('score IS NOT NULL');
    else {
      where.push('score >= ?');
      params.push(f.minScore);
    }
  }
  if (query.beforeMs !== undefined && !Number.isNaN(query.beforeMs)) {
    where.push('time_ms < ?');
    params.push(query.beforeMs);
  }
  if (query.sinceMs !== undefined && !Number.isNaN(query.sinceMs)) {
    where.push('time_ms >= ?');
    params.push(query.sinceMs);
  }
  params.push(clampLimit(query.limit));
  const sql = `SELECT ${COLUMNS} FROM flows${where.length === 0 ? '' : ` WHERE ${where.join(' AND ')}`} ORDER BY time_ms DESC, rowid DESC LIMIT ?`;
  return { sql, params };
}

function clampLimit(limit: number): number {
  if (!Number.isFinite(limit)) return limit > 0 ? MAX_QUERY_ROWS : 1;
  return Math.min(MAX_QUERY_ROWS, Math.max(1, Math.floor(limit)));
}

/** The items of an encodeList text. */
export function decodeList(text: string): string[] {
  if (text === '') return [];
  const items = text.slice(1, -1).split('\n');
  if (!text.includes('\\')) return items;
  return items.map((item) => (item.includes('\\') ? item.replace(ESCAPED, (_m, c: string) => (c === 'n' ? '\n' : c)) : item));
}

const str = (v: unknown): string => (typeof v === 'string' ? v : String(v ?? ''));
/** A follow-up record names the record it completes (egress.followup_of); the file keeps it in the record text. */
const FOLLOWUP_OF = /"followup_of":"([0-9a-f-]{36})"/;
const strOrNull = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** A row of COLUMNS back into a flow (the file is ours, but a hand-edited value must not break the console). */
function flowOfRow(row: unknown): ConsoleFlow | null {
  if (!Array.isArray(row) || row.length < STRIDE) return null;
  const [id, timeMs, action, protocol, severity, sourceIp, user, host, process, rule, rules, tags, destination, score, attribution, record] = row as unknown[];
  return {
    id: str(id),
    timeMs: typeof timeMs === 'number' ? timeMs : Number(timeMs),
    action: action === 'block' ? 'block' : 'allow',
    protocol: str(protocol),
    severity: isSeverity(severity) ? severity : null,
    sourceIp: str(sourceIp),
    user: strOrNull(user),
    host: strOrNull(host),
    process: strOrNull(process),
    rule: strOrNull(rule),
    rules: decodeList(str(rules)),
    tags: decodeList(str(tags)),
    destination: str(destination),
    score: typeof score === 'number' ? score : null,
    attribution: attribution === 'telemetry' || attribution === 'header' ? attribution : 'none',
    followupOf: FOLLOWUP_OF.exec(str(record))?.[1] ?? null,
    record: str(record),
  };
}

function flowsOfRows(rows: unknown): ConsoleFlow[] {
  const out: ConsoleFlow[] = [];
  if (!Array.isArray(rows)) return out;
  for (const row of rows) {
    const flow = flowOfRow(row);
    if (flow !== null) out.push(flow);
  }
  return out;
}

// ---- the queue ------------------------------------------------------------------------------------------------

/** A fixed ring of flow references: push is O(1) and allocates nothing; a full ring overwrites its oldest. */
class FlowRing {
  private readonly slots: (ConsoleFlow | undefined)[];
  private head = 0;
  size = 0;
  /** Characters of record text held (a record is JSON, nearly all ASCII: about its bytes). */
  private chars = 0;

  constructor(
    readonly capacity: number,
    readonly maxChars: number,
  ) {
    this.slots = new Array<ConsoleFlow | undefined>(capacity).fill(undefined);
  }

  /** How many of the oldest flows were dropped to make room (0 when none was). */
  push(flow: ConsoleFlow): number {
    let dropped = 0;
    while (this.size > 0 && (this.size >= this.capacity || this.chars + flow.record.length > this.maxChars)) {
      const oldest = this.slots[this.head] as ConsoleFlow;
      this.chars -= oldest.record.length;
      this.slots[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.size--;
      dropped++;
    }
    this.slots[(this.head + this.size) % this.capacity] = flow;
    this.size++;
    this.chars += flow.record.length;
    return dropped;
  }

  clear(): void {
    this.slots.fill(undefined);
    this.head = 0;
    this.size = 0;
    this.chars = 0;
  }

  /** Takes the oldest `count` flows as a write message's flat values (ITEM_FIELDS order), oldest first. */
  take(count: number): unknown[] {
    const n = Math.min(count, this.size);
    const items = new Array<unknown>(n * STRIDE);
    let j = 0;
    for (let i = 0; i < n; i++) {
      const at = (this.head + i) % this.capacity;
      const f = this.slots[at] as ConsoleFlow;
      this.slots[at] = undefined;
      items[j++] = f.id;
      items[j++] = f.timeMs;
      items[j++] = f.action;
      items[j++] = f.protocol;
      items[j++] = f.severity;
      items[j++] = f.sourceIp;
      items[j++] = f.user;
      items[j++] = f.host;
      items[j++] = f.process;
      items[j++] = f.rule;
      items[j++] = f.rules;
      items[j++] = f.tags;
      items[j++] = f.destination;
      items[j++] = f.score;
      items[j++] = f.attribution;
      items[j++] = f.record;
      this.chars -= f.record.length;
    }
    this.head = (this.head + n) % this.capacity;
    this.size -= n;
    return items;
  }
}

// ---- the thread -----------------------------------------------------------------------------------------------

class StartRefused extends Error {
  constructor(
    readonly kind: string,
    readonly detail: string,
  ) {
    super(`${kind}: ${detail}`);
  }
}

/** The history thread, started; `rows` is what the file held (its ready message), or StartRefused. */
async function startThread(file: string, onDied: (message: string) => void): Promise<{ thread: StoreThread; rows: number }> {
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
  const { thread, ready } = startStoreThread({
    source: HISTORY_WORKER_SOURCE,
    workerData: { file, sqlite },
    name: 'history thread',
    startTimeoutMs: START_TIMEOUT_MS,
    onDied,
  });
  const m = await ready;
  if (typeof m.fatal === 'string') {
    await thread.close({ t: 'close' }); // the store closes its port after a fatal answer; this waits for that
    throw new StartRefused(m.fatal, str(m.detail));
  }
  return { thread, rows: typeof m.rows === 'number' ? m.rows : 0 };
}

// ---- the file -------------------------------------------------------------------------------------------------

function refusal(file: string, err: unknown): EgressError {
  if (err instanceof StartRefused) {
    if (err.kind === 'foreign') {
      return historyError(`history: ${file} belongs to another application (${err.detail}); move it away or choose another history file`, err);
    }
    if (err.kind === 'newer') {
      return historyError(
        `history: ${file} has schema version ${err.detail}, newer than this egress-inspector reads; run the newer version, or move the file away to start a new history`,
        err,
      );
    }
    return historyError(`history: ${file} is not a usable history database (${err.detail}); move it away to start a new history`, err);
  }
  return historyError(`history: cannot start the history thread for ${file}: ${messageOf(err)}`, err);
}

// ---- the store ------------------------------------------------------------------------------------------------

/** The history store: resolves once the file is open and checked; rejects with an EgressError if it is not ours. */
export async function openFlowHistory(options: FlowHistoryOptions): Promise<FlowHistory> {
  const file = options.path;
  const now = options.now ?? Date.now;
  const flushIntervalMs = Math.max(1, options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS);
  const ring = new FlowRing(Math.max(1, Math.floor(options.maxQueue ?? DEFAULT_MAX_QUEUE)), Math.max(1, Math.floor(options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES)));
  const maxRate = Math.max(0, options.maxRate);
  const { retentionMs, maxRows } = options;

  await prepareStoreFile(file, 'history:', historyError);

  let rows = 0;
  let written = 0;
  let sampledOut = 0;
  let dropped = 0;
  let pruned = 0;
  let lastError: string | null = null;

  let thread: StoreThread | null = null;
  let starting: Promise<StoreThread> | null = null;
  let lastStartFailedAt = -Infinity;
  const onDied = (message: string): void => {
    thread = null; // started again by the next flush or query
    lastError = message;
  };
  const begin = async (): Promise<StoreThread> => {
    const started = await startThread(file, onDied);
    rows = started.rows;
    thread = started.thread;
    return started.thread;
  };
  try {
    await begin();
  } catch (err) {
    throw refusal(file, err);
  }

  /** The running thread, started again if it died (not more often than RESTART_BACKOFF_MS). */
  const ensureThread = (): Promise<StoreThread> => {
    if (thread !== null && thread.alive()) return Promise.resolve(thread);
    if (starting !== null) return starting;
    if (Date.now() - lastStartFailedAt < RESTART_BACKOFF_MS) {
      return Promise.reject(new Error(`the history store is not available (${lastError ?? 'restarting'})`));
    }
    starting = begin().then(
      (t) => {
        starting = null;
        return t;
      },
      (err: unknown) => {
        starting = null;
        lastStartFailedAt = Date.now();
        lastError = refusal(file, err).message;
        throw new Error(lastError);
      },
    );
    return starting;
  };

  // ---- writing: one batch in flight at a time ----------------------------------------------------------------
  let closed = false;
  let writing: Promise<void> | null = null;
  let lastPruneAt = Date.now();

  /** Writes the oldest MAX_BATCH queued flows and prunes; false when the thread is not there or the write failed. */
  const writeBatch = async (): Promise<boolean> => {
    let t: StoreThread;
    try {
      t = await ensureThread();
    } catch {
      return false; // the queue stays (bounded); lastError says why
    }
    const count = Math.min(ring.size, MAX_BATCH);
    const items = ring.take(count);
    lastPruneAt = Date.now();
    try {
      const reply = await t.call(
        { t: 'write', items, cutoff: now() - retentionMs, maxRows, pruneLimit: Math.max(PRUNE_LIMIT, 2 * count) },
        { ms: WRITE_TIMEOUT_MS, message: `history: writing ${count} flow(s) to ${file} got no answer in ${WRITE_TIMEOUT_MS / 1000} s; the thread is restarted` },
      );
      written += typeof reply.written === 'number' ? reply.written : 0;
      pruned += typeof reply.pruned === 'number' ? reply.pruned : 0;
      if (typeof reply.rows === 'number') rows = reply.rows;
      if (typeof reply.pruneError === 'string') lastError = `history: pruning ${file} failed: ${reply.pruneError}`;
      return true;
    } catch (err) {
      dropped += count;
      lastError = `history: writing ${count} flow(s) to ${file} failed: ${messageOf(err)}`;
      if (err instanceof NoAnswer) {
        if (thread === t) thread = null;
        await t.kill();
      }
      return false;
    }
  };

  /** Writes batches, one in flight at a time, until the queue is empty (or a write fails: the next tick retries). */
  const flush = (): Promise<void> => {
    writing ??= (async () => {
      while ((await writeBatch()) && ring.size > 0);
    })().finally(() => {
      writing = null;
    });
    return writing;
  };

  const timer = setInterval(() => {
    if (closed || writing !== null) return;
    if (ring.size > 0 || Date.now() - lastPruneAt >= PRUNE_INTERVAL_MS) void flush();
  }, flushIntervalMs);
  timer.unref();

  // ---- sampling: allowed non-alert flows per wall-clock second -----------------------------------------------
  let windowSecond = -1;
  let windowCount = 0;

  const ask = async (msg: Record<string, unknown>): Promise<unknown> => {
    if (closed) throw new Error(`history: ${file} is closed`);
    const t = await ensureThread();
    const reply = await t.call(msg, { ms: QUERY_TIMEOUT_MS, message: `history: a query of ${file} got no answer within ${QUERY_TIMEOUT_MS / 1000} s (the store is busy, or the filter scans too many rows)` });
    return reply.rows;
  };

  let closing: Promise<void> | null = null;

  return {
    add(flow) {
      if (closed) return;
      if (flow.action === 'allow' && flow.severity === null) {
        const second = Math.floor(now() / 1000);
        if (second !== windowSecond) {
          windowSecond = second;
          windowCount = 0;
        }
        if (windowCount >= maxRate) {
          sampledOut++;
          return;
        }
        windowCount++;
      }
      dropped += ring.push(flow);
    },
    async query(query) {
      const { sql, params } = buildQuerySql(query);
      return flowsOfRows(await ask({ t: 'query', sql, params }));
    },
    async get(id) {
      const found = flowsOfRows(await ask({ t: 'query', sql: `SELECT ${COLUMNS} FROM flows WHERE id = ?`, params: [id] }));
      return found[0] ?? null;
    },
    stats: (): HistoryStats => ({ backend: 'sqlite', path: file, rows, written, sampledOut, dropped, pruned, lastError, retentionMs, maxRows }),
    close() {
      closing ??= (async () => {
        closed = true;
        clearInterval(timer);
        while (writing !== null) await writing;
        if (starting !== null) await starting.catch(() => undefined);
        if (ring.size > 0) await flush();
        if (ring.size > 0) {
          dropped += ring.size; // the thread is not there or failed: these are lost
          ring.clear();
        }
        const t = thread;
        thread = null;
        if (t !== null) await t.close({ t: 'close' });
      })();
      return closing;
    },
  };
}

/** The store when the history is off: nothing is kept, nothing is found. */
export function noFlowHistory(): FlowHistory {
  const stats: HistoryStats = { backend: 'none', path: null, rows: 0, written: 0, sampledOut: 0, dropped: 0, pruned: 0, lastError: null, retentionMs: 0, maxRows: 0 };
  return {
    add() {},
    query: () => Promise.resolve([]),
    get: () => Promise.resolve(null),
    stats: () => stats,
    close: () => Promise.resolve(),
  };
}

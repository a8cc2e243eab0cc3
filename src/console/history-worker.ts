/**
 * The history store's source (src/console/history.ts): the only connection to the history file. It runs on the
 * process's store thread (src/store-thread.ts, shared with the baseline writer of
 * src/enrich/baseline/baseline-sqlite.ts) as a CommonJS-style function of (require, parentPort, workerData), so
 * the same string works from `src/` under tsx/vitest and from `dist/`; better-sqlite3 is required by the path the
 * main thread resolved. better-sqlite3 supports one connection per thread and store.
 *
 * What lives here rather than on the proxy's thread: opening and checking the file, every insert, every prune,
 * every query. The main thread only queues flow references, posts one flat array per flush and decodes the rows
 * of an answer.
 *
 * ## Table
 * One row per flow, keyed by event.id. Text filters are case-insensitive substrings with JavaScript's
 * `toLowerCase` (src/console/filter.ts): SQLite's lower() folds ASCII only (https://www.sqlite.org/lang_corefunc.html#lower),
 * so "Ä" or the Kelvin sign would match in the live stream and not in the history. The thread therefore stores
 * a lower-cased copy of each searched field (`*_lc`, made with the same `toLowerCase`) and queries use
 * `instr(col_lc, needle)` — instr has no wildcards, so "a%b" is only ever the literal text. `host_lc` holds
 * host.name, else the source address, exactly as compileFilter reads them.
 * rules and tags are `encodeList` text: "\n" + items + "\n", each item with "\" and newline escaped, so
 * `instr(rules, encodeList([rule]))` is an exact member match (an item cannot contain the delimiter).
 *
 * Indexes are only those a query uses: time (every page, newest first, and pruning), (action, time), and the
 * alerts by time (a partial index: alerts are rare, and "alert: yes" would otherwise scan every allowed flow).
 * The text filters are substrings and rule/tag are list members, which no B-tree index answers; indexes on
 * source_ip, process, rule and severity made inserts 3.4× slower (16.7k vs 57k rows/s, 1 KiB records, 1,000
 * per transaction, measured on the 2-core test machine) and served no query.
 *
 * ## Rows
 * `meta.rows` is the number of rows, kept in the same transaction as each insert and prune (a COUNT(*) per flush
 * would walk an index of the whole table); it is recounted once when the thread starts, and stays exact when
 * several processes share the file.
 *
 * ## Messages
 * Start: the thread answers {id: 0, ready: true, rows} or {id: 0, fatal: 'foreign'|'newer'|'unusable', detail}
 * and exits. Then, one answer per request, in order:
 *   {id, t: 'write', items: [STRIDE values per flow…], cutoff, maxRows, pruneLimit} → {id, written, pruned, rows, pruneError}
 *   {id, t: 'query', sql, params} → {id, rows: [[…COLUMNS], …]}    (sql built by history.ts buildQuerySql)
 *   {t: 'close'} → the connection is closed and the thread exits.
 * A failed request answers {id, error}.
 */

/** "EGH1": PRAGMA application_id of our files (https://www.sqlite.org/pragma.html#pragma_application_id). */
export const HISTORY_APPLICATION_ID = 0x45474831;
export const HISTORY_SCHEMA_VERSION = 1;

/** Values per flow in a write message, in this order (history.ts flattenFlow writes them). */
export const ITEM_FIELDS = [
  'id',
  'timeMs',
  'action',
  'protocol',
  'severity',
  'sourceIp',
  'user',
  'host',
  'process',
  'rule',
  'rules',
  'tags',
  'destination',
  'score',
  'attribution',
  'record',
] as const;
export const STRIDE = ITEM_FIELDS.length;

/** The columns a query returns, in ITEM_FIELDS order (rules and tags as encodeList text). */
export const COLUMNS = 'id, time_ms, action, protocol, severity, source_ip, "user", host, process, rule, rules, tags, destination, score, attribution, record';

const SCHEMA = `
CREATE TABLE meta (
  k TEXT PRIMARY KEY,
  v INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (k, v) VALUES ('rows', 0);
CREATE TABLE flows (
  id TEXT NOT NULL UNIQUE,  -- event.id
  time_ms INTEGER NOT NULL, -- when the record was written, ms since the epoch
  action TEXT NOT NULL,     -- allow | block
  protocol TEXT NOT NULL,
  severity TEXT,            -- null: not an alert
  source_ip TEXT NOT NULL,
  "user" TEXT,
  host TEXT,
  process TEXT,
  rule TEXT,
  rules TEXT NOT NULL,      -- encodeList
  tags TEXT NOT NULL,       -- encodeList
  destination TEXT NOT NULL,
  score REAL,
  attribution TEXT NOT NULL,
  record TEXT NOT NULL,     -- the flow-log line, as written
  host_lc TEXT NOT NULL,    -- toLowerCase(host ?? source_ip)
  user_lc TEXT,
  process_lc TEXT,
  destination_lc TEXT NOT NULL
);
CREATE INDEX flows_by_time ON flows (time_ms);
CREATE INDEX flows_by_action ON flows (action, time_ms);
CREATE INDEX flows_alerts ON flows (time_ms) WHERE severity IS NOT NULL;
`;

/** The thread waits this long for a lock held by another process before a write fails. */
const BUSY_TIMEOUT_MS = 1_000;
/**
 * The thread's page cache: SQLite's default, 2 MiB. Inserts touch the right edges of the table and its three
 * indexes; a larger cache only sped up the console's rare queries, and 16 MiB of it was resident in the proxy's
 * peak RSS once an alert storm had filled it (issue 9, core bench tunnel section).
 */
const CACHE_KIB = 2 * 1024;
/** The WAL is truncated to this after a checkpoint. */
const WAL_LIMIT_BYTES = 64 * 1024 * 1024;
/** Prepared query statements kept (filters combine at most 2^11 ways; in practice a handful). */
const MAX_STATEMENTS = 256;

/**
 * The text of a rules or tags column: "" for none, else "\n" + each item + "\n" after it, with "\" → "\\" and
 * newline → "\n" inside an item. The escaping is injective and leaves no newline inside an item, so the text
 * contains "\n" + encodeItem(x) + "\n" exactly when x is a member. Inserted into the thread's source as text.
 */
export function encodeList(items: readonly string[]): string {
  if (items.length === 0) return '';
  let out = '\n';
  for (const item of items) {
    out += (item.includes('\\') || item.includes('\n') ? item.replaceAll('\\', '\\\\').replaceAll('\n', '\\n') : item) + '\n';
  }
  return out;
}

/** Lower-cases a searched field exactly as compileFilter does (null stays null). Inserted as source too. */
export function lowerOrNull(value: string | null): string | null {
  return value === null ? null : value.toLowerCase();
}

export const HISTORY_WORKER_SOURCE = `
'use strict';
const Database = require(workerData.sqlite);
${encodeList.toString()}
${lowerOrNull.toString()}
const APPLICATION_ID = ${HISTORY_APPLICATION_ID};
const SCHEMA_VERSION = ${HISTORY_SCHEMA_VERSION};
const STRIDE = ${STRIDE};
const SCHEMA = ${JSON.stringify(SCHEMA)};

function messageOf(err) {
  return err && err.message ? err.message : String(err);
}

/** Opens and checks the file, creates the schema on first use; null after posting why it cannot. */
function openChecked() {
  let db = null;
  const refuse = (fatal, detail) => {
    try { if (db !== null) db.close(); } catch {}
    parentPort.postMessage({ id: 0, fatal, detail });
    return null;
  };
  try {
    db = new Database(workerData.file, { timeout: ${BUSY_TIMEOUT_MS} });
    const appId = db.pragma('application_id', { simple: true });
    const version = db.pragma('user_version', { simple: true });
    if (appId !== 0 && appId !== APPLICATION_ID) return refuse('foreign', 'application_id 0x' + appId.toString(16));
    if (version > SCHEMA_VERSION) return refuse('newer', String(version));
    if (appId === 0 && version !== 0) return refuse('foreign', 'user_version ' + version + ' without our application_id');
    if (version === 0) {
      const tables = db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table'").pluck().get();
      if (tables > 0) return refuse('foreign', 'tables without a schema version');
    }
    if (db.pragma('journal_mode = WAL', { simple: true }) !== 'wal') throw new Error('cannot switch to WAL journal mode');
    db.pragma('synchronous = NORMAL');
    db.pragma('cache_size = -${CACHE_KIB}');
    db.pragma('journal_size_limit = ${WAL_LIMIT_BYTES}');
    if (version === 0) {
      // Another process may be creating it at the same moment: decide under the write lock.
      db.exec('BEGIN IMMEDIATE');
      try {
        if (db.pragma('user_version', { simple: true }) === 0) {
          db.exec(SCHEMA + ' PRAGMA application_id = ' + APPLICATION_ID + '; PRAGMA user_version = ' + SCHEMA_VERSION + ';');
        }
        db.exec('COMMIT');
      } catch (err) {
        db.exec('ROLLBACK');
        throw err;
      }
    }
    return db;
  } catch (err) {
    // SQLITE_NOTADB "file is not a database", SQLITE_CORRUPT, I/O errors …
    return refuse('unusable', messageOf(err));
  }
}

function main() {
  const db = openChecked();
  if (db === null) {
    parentPort.close();
    return;
  }
  const insert = db.prepare(
    'INSERT OR IGNORE INTO flows (${COLUMNS}, host_lc, user_lc, process_lc, destination_lc) VALUES (' + new Array(STRIDE + 4).fill('?').join(', ') + ')',
  );
  const addRows = db.prepare("UPDATE meta SET v = v + ? WHERE k = 'rows'");
  const setRows = db.prepare("UPDATE meta SET v = ? WHERE k = 'rows'");
  const rowCount = db.prepare("SELECT v FROM meta WHERE k = 'rows'").pluck();
  const deleteOld = db.prepare('DELETE FROM flows WHERE rowid IN (SELECT rowid FROM flows WHERE time_ms < ? ORDER BY time_ms LIMIT ?)');
  const deleteOldest = db.prepare('DELETE FROM flows WHERE rowid IN (SELECT rowid FROM flows ORDER BY time_ms, rowid LIMIT ?)');

  const write = db.transaction((items) => {
    let written = 0;
    for (let i = 0; i + STRIDE <= items.length; i += STRIDE) {
      const sourceIp = items[i + 5], user = items[i + 6], host = items[i + 7], process = items[i + 8], destination = items[i + 12];
      written += insert.run(
        items[i], items[i + 1], items[i + 2], items[i + 3], items[i + 4], sourceIp, user, host, process, items[i + 9],
        encodeList(items[i + 10]), encodeList(items[i + 11]), destination, items[i + 13], items[i + 14], items[i + 15],
        (host === null ? sourceIp : host).toLowerCase(), lowerOrNull(user), lowerOrNull(process), destination.toLowerCase(),
      ).changes;
    }
    if (written > 0) addRows.run(written);
    return written;
  });

  const prune = db.transaction((cutoff, maxRows, limit) => {
    let pruned = deleteOld.run(cutoff, limit).changes;
    const excess = rowCount.get() - pruned - maxRows;
    if (excess > 0) pruned += deleteOldest.run(Math.min(excess, limit)).changes;
    if (pruned > 0) addRows.run(-pruned);
    return pruned;
  });

  const statements = new Map();
  const statement = (sql) => {
    let s = statements.get(sql);
    if (s === undefined) {
      if (statements.size >= ${MAX_STATEMENTS}) statements.clear();
      s = db.prepare(sql).raw(true);
      statements.set(sql, s);
    }
    return s;
  };

  parentPort.on('message', (m) => {
    if (m.t === 'close') {
      db.close();
      parentPort.close();
      return;
    }
    try {
      if (m.t === 'write') {
        // BEGIN IMMEDIATE: several proxy processes may share the file (see baseline-sqlite.ts).
        const written = write.immediate(m.items);
        let pruned = 0, pruneError = null;
        try {
          pruned = prune.immediate(m.cutoff, m.maxRows, m.pruneLimit);
        } catch (err) {
          pruneError = messageOf(err);
        }
        parentPort.postMessage({ id: m.id, written, pruned, rows: rowCount.get(), pruneError });
      } else if (m.t === 'query') {
        parentPort.postMessage({ id: m.id, rows: statement(m.sql).all(...m.params) });
      } else {
        parentPort.postMessage({ id: m.id, error: 'unknown request ' + String(m.t) });
      }
    } catch (err) {
      parentPort.postMessage({ id: m.id, error: messageOf(err) });
    }
  });
  // Recounted once at start (the stored count could only be off after a hand edit).
  setRows.run(db.prepare('SELECT count(*) FROM flows').pluck().get());
  parentPort.postMessage({ id: 0, ready: true, rows: rowCount.get() });
}

main();
`;

import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { singleKey, type Baseline, type BaselineQuery } from '../../../src/enrich/baseline/baseline.js';
import {
  SQLITE_APPLICATION_ID,
  SQLITE_FILE,
  SQLITE_SCHEMA_VERSION,
  openSqliteBaseline,
  type SqliteBaselineOptions,
} from '../../../src/enrich/baseline/baseline-sqlite.js';
import { isEgressError } from '../../../src/errors.js';
import { rejection, waitFor } from '../../helpers/waits.js';

const DAY = 24 * 3_600_000;
const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);
const HL = 1_000_000;

const q = (over: Partial<BaselineQuery> = {}): BaselineQuery => ({
  host: 'ws001.corp.example',
  process: 'rundll32.exe',
  destination: 'c2-alpha.example',
  ja4: 't13d1516h2_8daaf6152771_e5627efa2ab1',
  ...over,
});

const dirs: string[] = [];
const open: Baseline[] = [];

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'egress-baseline-'));
  dirs.push(d);
  return d;
}

async function openAt(dir: string, opts: SqliteBaselineOptions = {}): Promise<Baseline> {
  const b = await openSqliteBaseline(dir, opts);
  open.push(b);
  return b;
}

/** Reads the file with a second, independent connection. */
function rows(dir: string): Map<string, { c: number; t: number; f: number }> {
  const db = new Database(join(dir, SQLITE_FILE), { readonly: true });
  try {
    const all = db.prepare('SELECT k, c, t, f FROM counters').all() as Array<{ k: string; c: number; t: number; f: number }>;
    return new Map(all.map((r) => [r.k, { c: r.c, t: r.t, f: r.f }]));
  } finally {
    db.close();
  }
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('SQLite baseline', () => {
  it('baselines survive a restart: record → flush → close → reopen → the same counts and first-seen times', async () => {
    const dir = await tempDir();
    const now = { t: T0 };
    const opts = { now: () => now.t, halfLifeMs: HL };
    const a = await openAt(dir, opts);
    for (let i = 0; i < 3; i++) a.record(q(), T0);
    a.record(q({ host: 'ws002.corp.example' }), T0 + 10);
    a.record(q({ host: 'ws003.corp.example', destination: 'cdn.example', process: 'chrome.exe' }), T0 + 20);
    now.t = T0 + 100;
    const before = a.lookup(q());
    expect(before.processDestination.count).toBeCloseTo(4, 3);
    await a.flush();
    expect(a.sizes().pendingWrites).toBe(0);
    await a.close();

    const b = await openAt(dir, opts);
    const after = b.lookup(q());
    expect(after).toEqual(before);
    expect(after.processDestination.firstSeenMs).toBe(T0);
    expect(after.hostDestination.count).toBeCloseTo(3, 3);
    expect(after.destinationHosts).toBe(2);
    expect(after.totalHosts).toBe(3);
    expect(b.lookup(q({ destination: 'never.example' })).processDestination).toEqual({ count: 0, firstSeenMs: null });
    // and it keeps counting from there
    b.record(q(), T0 + 100);
    expect(b.lookup(q()).processDestination.count).toBeCloseTo(before.processDestination.count + 1, 9);
  });

  it('persists the first start: a restart does not restart learning', async () => {
    const dir = await tempDir();
    const now = { t: T0 };
    const a = await openAt(dir, { now: () => now.t });
    expect(a.learningUntilMs).toBe(T0 + 7 * DAY);
    expect(a.lookup(q()).learning).toBe(true);
    await a.close();
    now.t = T0 + 3 * DAY;
    const b = await openAt(dir, { now: () => now.t });
    expect(b.learningUntilMs).toBe(T0 + 7 * DAY);
    expect(b.lookup(q()).learning).toBe(true);
    await b.close();
    now.t = T0 + 8 * DAY;
    const c = await openAt(dir, { now: () => now.t });
    expect(c.lookup(q()).learning).toBe(false);
    // a shorter learning period in the configuration applies from the same first start
    await c.close();
    now.t = T0 + 2 * DAY;
    const d = await openAt(dir, { now: () => now.t, learningMs: DAY });
    expect(d.learningUntilMs).toBe(T0 + DAY);
    expect(d.lookup(q()).learning).toBe(false);
  });

  it('writes on its own timer, off the hot path: record returns at once, the rows appear within the flush interval', async () => {
    const dir = await tempDir();
    const b = await openAt(dir, { flushIntervalMs: 20 });
    b.record(q(), Date.now());
    expect(b.sizes().pendingWrites).toBe(5);
    expect(rows(dir).size).toBe(0);
    await waitFor(() => b.sizes().pendingWrites === 0, 3_000, 'the timer flush');
    // The writer thread's commit and this reader's snapshot are two connections: poll (bounded) for the rows.
    await waitFor(() => rows(dir).has('H'), 3_000, 'the rows in the file');
    const stored = rows(dir);
    expect(stored.get(singleKey('p', 'rundll32.exe'))?.c).toBe(1);
    expect(stored.get(singleKey('dh', 'c2-alpha.example'))?.c).toBe(1);
    expect(stored.get('H')?.c).toBe(1);
  });

  it('under steady traffic writes once per flush interval, not one small transaction per round trip to its thread', async () => {
    const dir = await tempDir();
    const b = await openAt(dir, { flushIntervalMs: 100 });
    // The same flow over and over for ~1 s: its keys are queued again while every batch is out.
    const started = Date.now();
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        for (let i = 0; i < 5; i++) b.record(q(), Date.now());
        if (Date.now() - started >= 1000) {
          clearInterval(tick);
          resolve();
        }
      }, 1);
    });
    await b.flush();
    // Each commit appends the pages it changed to the WAL (a 24-byte header and a 4 KiB page per frame; no
    // checkpoint below 1,000 frames). At most ~11 ticks of ~3 pages: ~33 frames; the write loop that ran until
    // the queue was empty committed back to back (~75 frames here on a quiet machine, more on a faster one).
    const frames = Math.floor(((await stat(join(dir, `${SQLITE_FILE}-wal`))).size - 32) / (4096 + 24));
    expect(frames).toBeLessThan(50);
    expect(rows(dir).get(singleKey('p', 'rundll32.exe'))?.c).toBeGreaterThan(100); // every count arrived
  });

  it('writes a large queue in batches of maxBatch keys on its writer thread, while the event loop keeps running', async () => {
    const dir = await tempDir();
    const b = await openAt(dir, { maxBatch: 100, flushIntervalMs: 60_000 });
    for (let i = 0; i < 2_000; i++) b.record(q({ host: `ws${i}`, process: null }), T0 + i); // 3 keys each
    let turns = 0;
    const tick = setInterval(() => turns++, 0);
    await b.flush();
    clearInterval(tick);
    expect(b.sizes().pendingWrites).toBe(0);
    expect(rows(dir).size).toBe(2 * 2_000 + 2);
    expect(turns).toBeGreaterThan(0); // timers ran while it was writing
    expect(b.lookup(q({ process: null })).destinationHosts).toBe(2_000);
  });

  it('creates the directory 0700 and the file 0600 (it says which process talks to which host)', async () => {
    const parent = await tempDir();
    const dir = join(parent, 'nested', 'baseline');
    const b = await openAt(dir);
    await b.close();
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, SQLITE_FILE))).mode & 0o777).toBe(0o600);
    const db = new Database(join(dir, SQLITE_FILE), { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION);
    expect(db.pragma('application_id', { simple: true })).toBe(SQLITE_APPLICATION_ID);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('counts distinct hosts exactly: a pair the mirror had forgotten is a guess, corrected by the file', async () => {
    const dir = await tempDir();
    const b = await openAt(dir, { maxEntries: 16 });
    for (let i = 0; i < 10; i++) b.record(q({ host: `ws${i}`, process: null }), T0 + i);
    await b.flush();
    expect(b.lookup(q({ process: null })).destinationHosts).toBe(10);
    b.record(q({ host: 'ws0', process: null }), T0 + 100); // evicted from the 16-entry mirror: looks new
    expect(b.lookup(q({ process: null })).destinationHosts).toBe(11);
    await b.flush();
    expect(b.lookup(q({ process: null })).destinationHosts).toBe(10);
    expect(b.lookup(q({ process: null })).totalHosts).toBe(10);
    expect(rows(dir).get(singleKey('dh', 'c2-alpha.example'))?.c).toBe(10);
  });

  it('never holds more than maxEntries in the mirror, and loads the most recently seen rows at start', async () => {
    const dir = await tempDir();
    const a = await openAt(dir, { maxEntries: 50, now: () => T0 + 10_000 });
    for (let i = 0; i < 300; i++) {
      a.record(q({ host: 'ws1', process: `p${i}.exe`, destination: null, ja4: null }), T0 + i);
      expect(a.sizes().entries).toBeLessThanOrEqual(50);
    }
    await a.flush();
    expect(rows(dir).size).toBe(302); // all of them in the file
    await a.close();
    const b = await openAt(dir, { maxEntries: 50, now: () => T0 + 10_000 });
    expect(b.sizes().entries).toBeLessThanOrEqual(50);
    const newest = b.lookup(q({ process: 'p299.exe' })).processTotal;
    expect(newest).toBeGreaterThan(0.99);
    expect(b.lookup(q({ process: 'p0.exe' })).processTotal).toBe(0);
  });

  it('prunes rows whose decayed count fell below 0.01, taking their hosts out of the distinct counts', async () => {
    const dir = await tempDir();
    const now = { t: T0 };
    const b = await openAt(dir, { now: () => now.t, halfLifeMs: HL, pruneIntervalMs: 20 });
    b.record(q({ host: 'once' }), T0);
    for (let i = 0; i < 1_000; i++) b.record(q({ host: 'often', destination: 'busy.example' }), T0);
    await b.flush();
    expect(rows(dir).has(singleKey('h', 'once'))).toBe(true);
    now.t = T0 + 8 * HL; // one contact is at 1/256 now; a thousand at ~3.9
    await waitFor(() => !rows(dir).has(singleKey('h', 'once')), 3_000, 'the prune tick');
    const stored = rows(dir);
    expect(stored.has(singleKey('dh', 'c2-alpha.example'))).toBe(false);
    expect(stored.get(singleKey('dh', 'busy.example'))?.c).toBe(1);
    expect(stored.get('H')?.c).toBe(1);
    const f = b.lookup(q({ host: 'once' }));
    expect(f.hostDestination).toEqual({ count: 0, firstSeenMs: null });
    expect(f.destinationHosts).toBe(0);
    expect(f.totalHosts).toBe(1);
    expect(b.lookup(q({ host: 'often', destination: 'busy.example' })).hostDestination.count).toBeCloseTo(1_000 / 256, 6);
  });

  it('refuses a directory it cannot create, with an EgressError naming it', async () => {
    const parent = await tempDir();
    await writeFile(join(parent, 'a-file'), 'x');
    const err = await rejection(openSqliteBaseline(join(parent, 'a-file', 'baseline')));
    expect(isEgressError(err) && err.code === 'BASELINE_STORE_FAILED').toBe(true);
    expect(err.message).toContain('cannot use the directory');
    expect(err.message).toContain(join(parent, 'a-file', 'baseline'));
  });

  it('refuses a corrupt file (not SQLite) with a clear EgressError, and leaves the file alone', async () => {
    const dir = await tempDir();
    const junk = Buffer.alloc(8192, 0x5a);
    await writeFile(join(dir, SQLITE_FILE), junk);
    const err = await rejection(openSqliteBaseline(dir));
    expect(isEgressError(err) && err.code === 'BASELINE_STORE_FAILED').toBe(true);
    expect(err.message).toMatch(/is not a usable baseline database \(.*not a database.*\); move it away/);
    expect((await stat(join(dir, SQLITE_FILE))).size).toBe(junk.length);
  });

  it('refuses a file written by a newer schema, naming both versions', async () => {
    const dir = await tempDir();
    const b = await openAt(dir);
    await b.close();
    const db = new Database(join(dir, SQLITE_FILE));
    db.pragma('user_version = 7');
    db.close();
    const err = await rejection(openSqliteBaseline(dir));
    expect(isEgressError(err)).toBe(true);
    expect(err.message).toContain(`schema version 7, newer than this egress-inspector reads (${SQLITE_SCHEMA_VERSION})`);
  });

  it("refuses another application's SQLite database", async () => {
    const dir = await tempDir();
    const db = new Database(join(dir, SQLITE_FILE));
    db.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY)');
    db.close();
    const err = await rejection(openSqliteBaseline(dir));
    expect(isEgressError(err)).toBe(true);
    expect(err.message).toContain('not a baseline');
    const other = new Database(join(dir, SQLITE_FILE));
    other.pragma('application_id = 1234');
    other.close();
    expect((await rejection(openSqliteBaseline(dir))).message).toContain('belongs to another application');
  });

  it('flush rejects when the file cannot be written, keeps the counts queued and reports; close never throws', async () => {
    const dir = await tempDir();
    const errors: string[] = [];
    const b = await openAt(dir, { onError: (e) => errors.push(e.message), flushIntervalMs: 60_000, now: () => T0 });
    b.record(q(), T0);
    await b.flush();
    // Another connection holds the write lock: our next transaction fails with SQLITE_BUSY.
    const other = new Database(join(dir, SQLITE_FILE));
    other.exec('BEGIN IMMEDIATE');
    b.record(q({ destination: 'other.example' }), T0);
    const err = await rejection(b.flush());
    expect(isEgressError(err)).toBe(true);
    expect(err.message).toMatch(/writing to .* failed: database is locked/);
    expect(b.sizes().pendingWrites).toBeGreaterThan(0);
    expect(b.lookup(q({ destination: 'other.example' })).processDestination.count).toBe(1);
    expect(errors.some((m) => m.includes('kept queued'))).toBe(true);
    expect(errors.join('\n')).not.toContain('rundll32');
    other.exec('ROLLBACK');
    other.close();
    await b.flush();
    expect(b.sizes().pendingWrites).toBe(0);
    expect(rows(dir).has(singleKey('dh', 'other.example'))).toBe(true);
    // close while the file is locked: resolves, and says what was not written
    const locker = new Database(join(dir, SQLITE_FILE));
    locker.exec('BEGIN IMMEDIATE');
    b.record(q({ destination: 'third.example' }), T0);
    const before = errors.length;
    await expect(b.close()).resolves.toBeUndefined();
    locker.exec('ROLLBACK');
    locker.close();
    expect(errors.length).toBeGreaterThan(before);
  });
});

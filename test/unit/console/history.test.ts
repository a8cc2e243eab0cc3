import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { isEgressError } from '../../../src/errors.js';
import { compileFilter } from '../../../src/console/filter.js';
import { MAX_BATCH, buildQuerySql, decodeList, noFlowHistory, openFlowHistory, type FlowHistoryOptions } from '../../../src/console/history.js';
import { HISTORY_APPLICATION_ID, encodeList } from '../../../src/console/history-worker.js';
import type { ConsoleFlow, FlowFilter, FlowHistory } from '../../../src/console/model.js';
import { rejection, waitFor } from '../../helpers/waits.js';

const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);

const dirs: string[] = [];
const stores: FlowHistory[] = [];

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'egress-history-'));
  dirs.push(d);
  return d;
}

async function openAt(path: string, over: Partial<FlowHistoryOptions> = {}): Promise<FlowHistory> {
  const h = await openFlowHistory({ path, retentionMs: 365 * 86_400_000, maxRows: 1_000_000, maxRate: 1_000_000, flushIntervalMs: 5, now: () => T0, ...over });
  stores.push(h);
  return h;
}

let seq = 0;
function flow(over: Partial<ConsoleFlow> = {}): ConsoleFlow {
  seq++;
  return {
    id: `ev-${seq}`,
    timeMs: T0,
    action: 'block',
    protocol: 'tls',
    severity: null,
    sourceIp: '192.0.2.10',
    user: 'CORP\\alice',
    host: 'WS001.corp.example',
    process: 'rundll32.exe',
    rule: 'c2-rundll32',
    rules: ['c2-rundll32'],
    tags: ['attack.t1218.011'],
    destination: 'c2-alpha.example:443',
    score: 72.5,
    attribution: 'telemetry',
    followupOf: null,
    record: `{"event":{"id":"ev-${seq}"}}`,
    ...over,
  };
}

/** Adds the flows and waits until all of them are written. */
async function addAll(h: FlowHistory, flows: readonly ConsoleFlow[]): Promise<void> {
  const target = h.stats().written + flows.length;
  for (const f of flows) h.add(f);
  await waitFor(() => h.stats().written >= target, 5_000, `${flows.length} flow(s) written`);
}

const ids = (flows: readonly ConsoleFlow[]): string[] => flows.map((f) => f.id);

afterEach(async () => {
  await Promise.all(stores.splice(0).map((h) => h.close()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('encodeList / decodeList', () => {
  it('round-trips any list, and a member is found exactly (never across items)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: fc.constantFrom('a', 'n', '\\', '\n') }), { maxLength: 4 }), fc.string({ unit: fc.constantFrom('a', 'n', '\\', '\n') }), (items, x) => {
        const text = encodeList(items);
        expect(decodeList(text)).toEqual(items);
        expect(text.includes(encodeList([x]))).toBe(items.includes(x));
      }),
      { numRuns: 500 },
    );
  });
});

describe('buildQuerySql', () => {
  it('binds user text as parameters, never as SQL or patterns', () => {
    const { sql, params } = buildQuerySql({ filter: { host: "x' OR 1=1 --", rule: 'a%b' }, limit: 5 });
    expect(sql).not.toContain("OR 1=1");
    expect(sql).not.toMatch(/LIKE/i);
    expect(params).toEqual(["x' or 1=1 --", "x' or 1=1 --", 'a%b', '\na%b\n', 5]);
  });

  it.each([
    [0, 1],
    [-5, 1],
    [2.7, 2],
    [5_000, 1_000],
    [Number.NaN, 1],
    [Number.POSITIVE_INFINITY, 1_000],
  ])('limit %s → %s', (limit, expected) => {
    expect(buildQuerySql({ filter: {}, limit }).params.at(-1)).toBe(expected);
  });
});

describe('SQLite flow history', () => {
  it('add → flush → query: newest first, every field intact, the record byte-identical', async () => {
    const h = await openAt(join(await tempDir(), 'history.sqlite'));
    const big = JSON.stringify({ note: 'ünïcødé \u2028 "quoted" \\ back', pad: 'x'.repeat(200_000), emoji: '🛰️' });
    const a = flow({ timeMs: T0 + 1, record: big, rules: ['c2-rundll32', 'shadow:beacon'], tags: [], score: null, user: null, attribution: 'header' });
    const b = flow({ timeMs: T0 + 2, action: 'allow', severity: 'high', host: null, process: null, rule: null, rules: [], tags: ['a', 'b'], score: 0, attribution: 'none' });
    const c = flow({ timeMs: T0 + 2, protocol: 'dns', severity: 'critical', destination: '[2001:db8::1]:53' });
    await addAll(h, [a, b, c]);
    const rows = await h.query({ filter: {}, limit: 10 });
    // Same time: the later insert first.
    expect(rows).toEqual([c, b, a]);
    expect(rows[2]?.record).toBe(big);
    expect(h.stats()).toMatchObject({ backend: 'sqlite', rows: 3, written: 3, dropped: 0, sampledOut: 0, pruned: 0, lastError: null });
  });

  it('a follow-up record reads back with followupOf, from its egress.followup_of', async () => {
    const h = await openAt(join(await tempDir(), 'history.sqlite'));
    const original = '3f0c9a1e-1b2c-4d5e-8f90-a1b2c3d4e5f6';
    const late = flow({ followupOf: original, record: `{"event":{"id":"x"},"egress":{"followup_of":"${original}","late_verdict":"block"}}` });
    await addAll(h, [late, flow()]);
    expect((await h.get(late.id))?.followupOf).toBe(original);
    expect((await h.query({ filter: {}, limit: 10 })).map((f) => f.followupOf)).toEqual([null, original]);
    await h.close();
  });

  it('get(id) finds one flow by event.id, null when unknown', async () => {
    const h = await openAt(join(await tempDir(), 'history.sqlite'));
    const a = flow();
    await addAll(h, [a, flow()]);
    expect(await h.get(a.id)).toEqual(a);
    expect(await h.get('no-such-id')).toBeNull();
    expect(await h.get("' OR 1=1 --")).toBeNull();
  });

  describe('filters', () => {
    const flows = [
      flow({ id: 'f1', timeMs: T0 + 1, host: 'WS001.Corp.Example', user: 'CORP\\Alice', process: 'RUNDLL32.EXE', destination: 'C2-Alpha.example:443', score: 90 }),
      flow({ id: 'f2', timeMs: T0 + 2, action: 'allow', host: null, sourceIp: '10.1.2.3', user: null, process: null, rule: null, rules: [], tags: [], destination: 'update.example:443', score: null }),
      flow({ id: 'f3', timeMs: T0 + 3, severity: 'high', host: 'a%b', rule: 'builtin:internal-destination', rules: ['c2-mshta', 'shadow-x'], tags: ['c2', 'attack.t1218'], score: 40 }),
      flow({ id: 'f4', timeMs: T0 + 4, action: 'allow', host: 'axb', rules: ['c2-rundll32-extra'], tags: ['c2x'], score: 39.99 }),
      flow({ id: 'f5', timeMs: T0 + 5, host: 'ab', user: 'Ä_user', process: 'wscript.exe', rules: ['a\\b'], tags: ['x_y'] }),
      flow({ id: 'f6', timeMs: T0 + 6, host: 'a\\b', user: 'ä_user', destination: '\u212aELVIN.example:80' }),
    ];

    it.each<[string, FlowFilter, string[]]>([
      ['action block', { action: 'block' }, ['f6', 'f5', 'f3', 'f1']],
      ['action allow', { action: 'allow' }, ['f4', 'f2']],
      ['alert yes', { alert: true }, ['f3']],
      ['alert no', { alert: false }, ['f6', 'f5', 'f4', 'f2', 'f1']],
      ['host substring, any case', { host: 'corp.EXAMPLE' }, ['f1']],
      ['host falls back to the source address', { host: '10.1.2' }, ['f2']],
      ['host: the source address is searched when host.name is set too', { host: '192.0.2' }, ['f6', 'f5', 'f4', 'f3', 'f1']],
      ['host "a%b" is literal', { host: 'a%b' }, ['f3']],
      ['host "a_b"-like underscore is literal', { user: '_user' }, ['f6', 'f5']],
      ['host backslash is literal', { host: 'a\\b' }, ['f6']],
      ['user: non-ASCII letters fold like toLowerCase', { user: 'ä_USER' }, ['f6', 'f5']],
      ['user substring, null never matches', { user: 'alice' }, ['f4', 'f3', 'f1']],
      ['process', { process: 'rundll32' }, ['f6', 'f4', 'f3', 'f1']],
      ['destination: the Kelvin sign folds to k (SQLite lower() folds ASCII only)', { destination: 'kelvin' }, ['f6']],
      ['rule: the deciding rule', { rule: 'builtin:internal-destination' }, ['f3']],
      ['rule: a member of rules', { rule: 'shadow-x' }, ['f3']],
      ['rule: exact, not a prefix', { rule: 'c2-rundll32-ex' }, []],
      ['rule: exact, case-sensitive', { rule: 'C2-MSHTA' }, []],
      ['rule with a backslash', { rule: 'a\\b' }, ['f5']],
      ['tag: exact member', { tag: 'c2' }, ['f3']],
      ['tag: not a substring', { tag: 'attack' }, []],
      ['tag: "_" literal', { tag: 'x_y' }, ['f5']],
      ['tag: "_" is no wildcard', { tag: 'xzy' }, []],
      ['minScore ≥', { minScore: 40 }, ['f6', 'f5', 'f3', 'f1']],
      ['minScore: null scores never match', { minScore: 0 }, ['f6', 'f5', 'f4', 'f3', 'f1']],
      ['every field together', { action: 'block', alert: true, host: 'A%', rule: 'c2-mshta', tag: 'c2', minScore: 40, process: 'rundll', user: 'alice', destination: 'c2-alpha' }, ['f3']],
    ])('%s', async (_name, filter, expected) => {
      const h = await openAt(join(await tempDir(), 'history.sqlite'));
      await addAll(h, flows);
      expect(ids(flows.filter(compileFilter(filter))).reverse()).toEqual(expected);
      expect(ids(await h.query({ filter, limit: 100 }))).toEqual(expected);
    });
  });

  it('property: the SQL answers are compileFilter\'s, in newest-first order (random flows and filters)', async () => {
    const h = await openAt(join(await tempDir(), 'history.sqlite'));
    // Small alphabets, so that needles often match: case pairs whose folding SQLite's lower() gets wrong
    // (Ä, the Kelvin sign, İ), LIKE wildcards and the list delimiter/escape.
    const letter = fc.constantFrom('a', 'A', 'Ä', 'ä', '\u212a', 'k', 'K', 'İ', 'i', '%', '_', '\\', '\n', '.');
    const text = fc.string({ unit: letter, maxLength: 6 });
    const needle = fc.string({ unit: letter, maxLength: 2 });
    const id = fc.string({ unit: fc.constantFrom('r', 'R', 'x', '\\', '\n', 'n', '%'), maxLength: 3 });
    const score = fc.option(fc.oneof(fc.integer({ min: 0, max: 100 }), fc.double({ min: 0, max: 100, noNaN: true })), { nil: null });
    const flowArb = fc.record({
      dt: fc.integer({ min: 0, max: 30 }),
      action: fc.constantFrom('allow' as const, 'block' as const),
      severity: fc.constantFrom(null, 'low' as const, 'critical' as const),
      // source.ip is always an address as Node writes it (lower-case hex for IPv6) or empty.
      sourceIp: fc.oneof(fc.ipV4(), fc.ipV6(), fc.constant('')),
      user: fc.option(text, { nil: null }),
      host: fc.option(text, { nil: null }),
      process: fc.option(text, { nil: null }),
      rule: fc.option(id, { nil: null }),
      rules: fc.array(id, { maxLength: 3 }),
      tags: fc.array(id, { maxLength: 3 }),
      destination: text,
      score,
    });
    const parts = {
      action: fc.constantFrom('allow' as const, 'block' as const),
      alert: fc.boolean(),
      host: needle,
      user: needle,
      process: needle,
      rule: id,
      tag: id,
      destination: needle,
      minScore: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.double({ min: 0, max: 100, noNaN: true })),
    };
    const keys = Object.keys(parts) as (keyof typeof parts)[];
    // Mostly one or two conditions (so each field's own matching decides often), sometimes any combination.
    const filterArb: fc.Arbitrary<FlowFilter> = fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .tuple(fc.record(parts), fc.subarray(keys, { minLength: 1, maxLength: 2 }))
          .map(([all, chosen]) => Object.fromEntries(chosen.map((k) => [k, all[k]])) as FlowFilter),
      },
      { weight: 1, arbitrary: fc.record(parts, { requiredKeys: [] }) },
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(flowArb, { minLength: 60, maxLength: 60 }), fc.array(filterArb, { minLength: 8, maxLength: 8 }), async (specs, filters) => {
        run++;
        const base = T0 + run * 1_000_000;
        const flows = specs.map(({ dt, ...spec }, i) => flow({ ...spec, id: `p${run}-${i}`, timeMs: base + dt }));
        await addAll(h, flows);
        // Newest first; the same time: the later insert (higher rowid) first.
        const newestFirst = flows.map((f, i) => ({ f, i })).sort((x, y) => y.f.timeMs - x.f.timeMs || y.i - x.i).map((x) => x.f);
        for (const filter of filters) {
          const got = await h.query({ filter, limit: 1_000, sinceMs: base, beforeMs: base + 1_000_000 });
          expect(ids(got)).toEqual(ids(newestFirst.filter(compileFilter(filter))));
        }
      }),
      { numRuns: 50 },
    );
  });

  it('pages with beforeMs (exclusive) and sinceMs (inclusive)', async () => {
    const h = await openAt(join(await tempDir(), 'history.sqlite'));
    const flows = Array.from({ length: 10 }, (_, i) => flow({ id: `t${i}`, timeMs: T0 + i * 10 }));
    await addAll(h, flows);
    const page1 = await h.query({ filter: {}, limit: 4 });
    expect(ids(page1)).toEqual(['t9', 't8', 't7', 't6']);
    const page2 = await h.query({ filter: {}, limit: 4, beforeMs: page1.at(-1)?.timeMs ?? 0 });
    expect(ids(page2)).toEqual(['t5', 't4', 't3', 't2']);
    const page3 = await h.query({ filter: {}, limit: 4, beforeMs: page2.at(-1)?.timeMs ?? 0 });
    expect(ids(page3)).toEqual(['t1', 't0']);
    expect(ids(await h.query({ filter: {}, limit: 100, sinceMs: T0 + 30, beforeMs: T0 + 60 }))).toEqual(['t5', 't4', 't3']);
    expect(ids(await h.query({ filter: { action: 'block' }, limit: 2, sinceMs: T0 + 90 }))).toEqual(['t9']);
  });

  it('prunes rows older than the retention', async () => {
    const clock = { t: T0 };
    const h = await openAt(join(await tempDir(), 'history.sqlite'), { retentionMs: 10_000, now: () => clock.t });
    await addAll(h, [flow({ id: 'old1', timeMs: T0 - 5_000 }), flow({ id: 'old2', timeMs: T0 - 3_000 }), flow({ id: 'new', timeMs: T0 })]);
    expect(h.stats()).toMatchObject({ rows: 3, pruned: 0 });
    clock.t = T0 + 6_000; // cut at T0 - 4,000: old1 goes
    await addAll(h, [flow({ id: 'newer', timeMs: clock.t })]);
    expect(h.stats()).toMatchObject({ rows: 3, pruned: 1, written: 4 });
    expect(ids(await h.query({ filter: {}, limit: 10 }))).toEqual(['newer', 'new', 'old2']);
  });

  it('keeps at most maxRows: the oldest go', async () => {
    const h = await openAt(join(await tempDir(), 'history.sqlite'), { maxRows: 5 });
    await addAll(h, Array.from({ length: 8 }, (_, i) => flow({ id: `m${i}`, timeMs: T0 + i })));
    expect(h.stats()).toMatchObject({ rows: 5, pruned: 3, written: 8 });
    expect(ids(await h.query({ filter: {}, limit: 10 }))).toEqual(['m7', 'm6', 'm5', 'm4', 'm3']);
  });

  it('samples allowed non-alert flows to maxRate per second; blocks and alerts are always kept', async () => {
    const clock = { t: T0 + 100 };
    const h = await openAt(join(await tempDir(), 'history.sqlite'), { maxRate: 5, now: () => clock.t });
    const second: ConsoleFlow[] = [];
    for (let i = 0; i < 20; i++) second.push(flow({ action: 'allow', severity: null }));
    for (let i = 0; i < 3; i++) second.push(flow({ action: 'block' }));
    for (let i = 0; i < 2; i++) second.push(flow({ action: 'allow', severity: 'medium' }));
    for (const f of second) {
      h.add(f);
      clock.t += 30; // 25 flows within T0+100 … T0+850: one wall-clock second
    }
    await waitFor(() => h.stats().written === 10, 5_000, '10 written');
    expect(h.stats()).toMatchObject({ written: 10, sampledOut: 15, dropped: 0 });
    const kept = await h.query({ filter: { action: 'allow', alert: false }, limit: 100 });
    expect(ids(kept)).toEqual(ids(second.slice(0, 5)).reverse());
    // The next second starts a new window.
    clock.t = T0 + 1_000;
    await addAll(h, Array.from({ length: 5 }, () => flow({ action: 'allow' })));
    h.add(flow({ action: 'allow' }));
    expect(h.stats().sampledOut).toBe(16);
  });

  it('a full queue drops the oldest and counts them; close() writes what is queued', async () => {
    const path = join(await tempDir(), 'history.sqlite');
    const h = await openAt(path, { maxQueue: 10, flushIntervalMs: 3_600_000 });
    const flows = Array.from({ length: 15 }, (_, i) => flow({ id: `q${i}`, timeMs: T0 + i }));
    for (const f of flows) h.add(f);
    expect(h.stats().dropped).toBe(5);
    await h.close();
    expect(h.stats()).toMatchObject({ written: 10, dropped: 5, rows: 10 });
    await h.close(); // idempotent
    h.add(flow()); // ignored after close, never throws
    expect((await rejection(h.query({ filter: {}, limit: 1 }))).message).toMatch(/closed/);
    const again = await openAt(path);
    expect(ids(await again.query({ filter: {}, limit: 100 }))).toEqual(ids(flows.slice(5)).reverse());
  });

  it('a queue over its byte bound drops the oldest flows and counts them', async () => {
    const path = join(await tempDir(), 'history.sqlite');
    const h = await openAt(path, { maxQueue: 1000, maxQueueBytes: 1000, flushIntervalMs: 3_600_000 });
    const flows = Array.from({ length: 10 }, (_, i) => flow({ id: `m${i}`, timeMs: T0 + i, record: `{"pad":"${'p'.repeat(290)}"}` }));
    for (const f of flows) h.add(f);
    // ~300 characters each: three fit in 1,000.
    expect(h.stats().dropped).toBe(7);
    await h.close();
    expect(h.stats()).toMatchObject({ written: 3, dropped: 7, rows: 3 });
    const again = await openAt(path);
    expect(ids(await again.query({ filter: {}, limit: 100 }))).toEqual(['m9', 'm8', 'm7']);
  });

  it('a queue longer than one message is written as several, oldest first, none lost', async () => {
    const path = join(await tempDir(), 'history.sqlite');
    const h = await openAt(path, { maxQueue: 3 * MAX_BATCH, flushIntervalMs: 3_600_000 });
    const flows = Array.from({ length: 2 * MAX_BATCH + 7 }, (_, i) => flow({ id: `b${i}`, timeMs: T0 + i }));
    for (const f of flows) h.add(f);
    await h.close();
    expect(h.stats()).toMatchObject({ written: flows.length, rows: flows.length, dropped: 0 });
    const again = await openAt(path);
    expect(ids(await again.query({ filter: {}, limit: 3 }))).toEqual([`b${flows.length - 1}`, `b${flows.length - 2}`, `b${flows.length - 3}`]);
    expect(ids(await again.query({ filter: {}, limit: 2, beforeMs: T0 + 2 }))).toEqual(['b1', 'b0']);
  });

  it('rows survive close and reopen', async () => {
    const path = join(await tempDir(), 'history.sqlite');
    const h = await openAt(path);
    const flows = [flow({ timeMs: T0 + 1 }), flow({ timeMs: T0 + 2, severity: 'low' })];
    await addAll(h, flows);
    await h.close();
    const again = await openAt(path);
    expect(again.stats()).toMatchObject({ rows: 2, written: 0 });
    expect(await again.query({ filter: {}, limit: 10 })).toEqual([...flows].reverse());
    expect(await again.get(flows[0]?.id ?? '')).toEqual(flows[0]);
  });

  it('a failed write is counted in dropped with lastError, and the store keeps serving', async () => {
    const path = join(await tempDir(), 'history.sqlite');
    const h = await openAt(path);
    await addAll(h, [flow()]);
    const locker = new Database(path);
    try {
      locker.exec('BEGIN IMMEDIATE'); // holds the write lock past the store's busy timeout
      h.add(flow());
      h.add(flow());
      await waitFor(() => h.stats().dropped === 2, 8_000, 'the failed batch counted');
      expect(h.stats().lastError).toMatch(/writing 2 flow\(s\) to .*history\.sqlite failed: database is locked/);
      locker.exec('ROLLBACK');
    } finally {
      locker.close();
    }
    const later = flow();
    await addAll(h, [later]);
    expect(await h.get(later.id)).toEqual(later);
    expect(h.stats()).toMatchObject({ written: 2, rows: 2, dropped: 2 });
  });

  it('creates the directory 0700 and the file 0600, WAL, marked as ours', async () => {
    const dir = join(await tempDir(), 'state', 'console');
    const path = join(dir, 'history.sqlite');
    await addAll(await openAt(path), [flow()]);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('application_id', { simple: true })).toBe(HISTORY_APPLICATION_ID);
      expect(db.pragma('user_version', { simple: true })).toBe(1);
    } finally {
      db.close();
    }
  });

  describe('refuses a file that is not ours, naming it and what to do', () => {
    it('a SQLite file of another application', async () => {
      const path = join(await tempDir(), 'other.sqlite');
      const db = new Database(path);
      db.exec('CREATE TABLE things (x)');
      db.close();
      const err = await rejection(openFlowHistory({ path, retentionMs: 1, maxRows: 1, maxRate: 1 }));
      expect(isEgressError(err)).toBe(true);
      expect(err.message).toContain(path);
      expect(err.message).toMatch(/belongs to another application .*move it away or choose another history file/);
    });

    it('a SQLite file with another application_id (e.g. the baseline store)', async () => {
      const path = join(await tempDir(), 'baseline.sqlite');
      const db = new Database(path);
      db.pragma('application_id = 1162297905'); // "EGB1"
      db.close();
      const err = await rejection(openFlowHistory({ path, retentionMs: 1, maxRows: 1, maxRate: 1 }));
      expect(isEgressError(err)).toBe(true);
      expect(err.message).toMatch(/application_id 0x45474231/);
    });

    it('a history of a newer schema', async () => {
      const path = join(await tempDir(), 'history.sqlite');
      await (await openAt(path)).close();
      const db = new Database(path);
      db.pragma('user_version = 7');
      db.close();
      const err = await rejection(openFlowHistory({ path, retentionMs: 1, maxRows: 1, maxRate: 1 }));
      expect(isEgressError(err)).toBe(true);
      expect(err.message).toMatch(/schema version 7, newer than this egress-inspector reads; run the newer version, or move the file away/);
    });

    it('a file that is not SQLite, left as it was', async () => {
      const dir = await tempDir();
      await mkdir(dir, { recursive: true });
      const path = join(dir, 'history.sqlite');
      const junk = 'this is a flow log, not a database\n'.repeat(200);
      await writeFile(path, junk);
      const err = await rejection(openFlowHistory({ path, retentionMs: 1, maxRows: 1, maxRate: 1 }));
      expect(isEgressError(err)).toBe(true);
      expect(err.message).toContain(path);
      expect(err.message).toMatch(/not a usable history database \(file is not a database\); move it away/);
      expect(await readFile(path, 'utf8')).toBe(junk);
    });
  });
});

describe('noFlowHistory', () => {
  it('keeps nothing and finds nothing', async () => {
    const h = noFlowHistory();
    h.add(flow());
    expect(await h.query({ filter: {}, limit: 10 })).toEqual([]);
    expect(await h.get('ev-1')).toBeNull();
    expect(h.stats()).toMatchObject({ backend: 'none', path: null, rows: 0, written: 0, dropped: 0 });
    await h.close();
    await h.close();
  });
});

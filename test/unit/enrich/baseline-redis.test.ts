import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pairKey, singleKey, type Baseline, type BaselineQuery } from '../../../src/enrich/baseline/baseline.js';
import {
  DEFAULT_BASELINE_PREFIX,
  REDIS_LAYOUT_VERSION,
  openRedisBaseline,
  parseReadReply,
  parseWriteReply,
  type RedisBaselineOptions,
} from '../../../src/enrich/baseline/baseline-redis.js';
import { isEgressError } from '../../../src/errors.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { rejection, waitFor } from '../../helpers/waits.js';

const DAY = 24 * 3_600_000;

const q = (over: Partial<BaselineQuery> = {}): BaselineQuery => ({
  host: 'ws001.corp.example',
  process: 'rundll32.exe',
  destination: 'c2-alpha.example',
  ja4: 't13d1516h2_8daaf6152771_e5627efa2ab1',
  ...over,
});

let redis: TestRedis;
let admin: Redis;
const open: Baseline[] = [];
let prefixSeq = 0;

/** Each test gets its own key prefix. */
function newPrefix(): string {
  return `test${process.pid}-${++prefixSeq}:`;
}

/** Fast intervals unless the test is about the defaults. */
async function replica(prefix: string, extra: Partial<RedisBaselineOptions> = {}, url = redis.url): Promise<Baseline> {
  const b = await openRedisBaseline(url, { keyPrefix: prefix, flushIntervalMs: 50, pullIntervalMs: 25, ...extra });
  open.push(b);
  return b;
}

beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(n * 50, 500) });
  admin.on('error', () => undefined); // the restart test stops the server under it
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
});

afterAll(async () => {
  admin.disconnect();
  await redis.close();
});

describe('Redis baseline: replicas agree', () => {
  it('a flow recorded on A is in B’s lookups within ~1 s at the default intervals (bounded wait ≤ 3 s)', async () => {
    const prefix = newPrefix();
    const a = await openRedisBaseline(redis.url, { keyPrefix: prefix });
    const b = await openRedisBaseline(redis.url, { keyPrefix: prefix });
    open.push(a, b);
    expect(b.lookup(q()).processDestination.count).toBe(0);
    const t = Date.now();
    a.record(q(), t);
    expect(a.lookup(q()).processDestination).toMatchObject({ firstSeenMs: t }); // A sees it at once
    const waited = await waitFor(() => b.lookup(q()).processDestination.count > 0, 3_000, 'B to see A’s flow');
    expect(waited).toBeLessThan(2_000);
    const f = b.lookup(q());
    expect(f.processDestination.firstSeenMs).toBe(t);
    expect(f.processJa4.count).toBeGreaterThan(0.99);
    expect(f.destinationHosts).toBe(1);
    expect(f.totalHosts).toBe(1);
  });

  it('adds up what both replicas count, each increment once', async () => {
    const prefix = newPrefix();
    const t = Date.now();
    const a = await replica(prefix, { now: () => t });
    const b = await replica(prefix, { now: () => t });
    for (let i = 0; i < 3; i++) a.record(q(), t);
    for (let i = 0; i < 2; i++) b.record(q(), t);
    await Promise.all([a.flush(), b.flush()]);
    await waitFor(() => a.lookup(q()).processDestination.count === 5 && b.lookup(q()).processDestination.count === 5, 3_000, 'both at 5');
    // and stays there: more pulls do not add anything twice
    await new Promise((r) => setTimeout(r, 200));
    expect(a.lookup(q()).processDestination.count).toBe(5);
    expect(b.lookup(q()).processDestination.count).toBe(5);
    expect(await admin.get(`${prefix}k:${pairKey('pd', 'rundll32.exe', 'c2-alpha.example')}`)).toMatch(/^5 \d+ \d+$/);
  });

  it('does not double-count a host that two replicas both saw first (the distinct count is a set)', async () => {
    const prefix = newPrefix();
    const a = await replica(prefix);
    const b = await replica(prefix);
    const t = Date.now();
    a.record(q({ host: 'ws9' }), t);
    b.record(q({ host: 'ws9' }), t + 1);
    expect(a.lookup(q()).destinationHosts).toBe(1);
    expect(b.lookup(q()).destinationHosts).toBe(1);
    await Promise.all([a.flush(), b.flush()]);
    await new Promise((r) => setTimeout(r, 200));
    for (const r of [a, b]) {
      expect(r.lookup(q()).destinationHosts).toBe(1);
      expect(r.lookup(q()).totalHosts).toBe(1);
    }
    expect(await admin.zcard(`${prefix}k:${singleKey('dh', 'c2-alpha.example')}`)).toBe(1);
    // a second host on B reaches A
    b.record(q({ host: 'ws10' }), t + 2);
    await waitFor(() => a.lookup(q()).destinationHosts === 2 && a.lookup(q()).totalHosts === 2, 3_000, 'A to count the second host');
  });

  it('a replica that starts later loads the baseline (catch-up), bounded by maxEntries, and the shared learning start', async () => {
    const prefix = newPrefix();
    const t0 = Date.now() - 2 * DAY;
    const a = await replica(prefix, { now: () => t0 });
    for (let i = 0; i < 300; i++) a.record(q({ process: `p${i}.exe`, destination: null, ja4: null }), Date.now() - 1_000 + i);
    await a.flush();
    const c = await replica(prefix, { maxEntries: 50 });
    expect(c.sizes().entries).toBeLessThanOrEqual(50);
    expect(c.lookup(q({ process: 'p299.exe' })).processTotal).toBeGreaterThan(0.99); // most recent: loaded
    expect(c.lookup(q({ process: 'p0.exe' })).processTotal).toBe(0); // oldest: beyond the bound
    expect(c.learningUntilMs).toBe(a.learningUntilMs);
    expect(c.learningUntilMs).toBe(t0 + 7 * DAY);
    const full = await replica(prefix);
    expect(full.lookup(q({ process: 'p0.exe' })).processTotal).toBeGreaterThan(0.99);
    expect(full.lookup(q()).totalHosts).toBe(1);
  });

  it('keeps the mirror within maxEntries while replicas write more keys than that', async () => {
    const prefix = newPrefix();
    const a = await replica(prefix, { maxEntries: 40 });
    const b = await replica(prefix, { maxEntries: 40 });
    for (let i = 0; i < 500; i++) a.record(q({ host: `ws${i}`, process: `p${i}.exe` }), Date.now());
    await a.flush();
    await new Promise((r) => setTimeout(r, 300));
    expect(a.sizes().entries).toBeLessThanOrEqual(40);
    expect(b.sizes().entries).toBeLessThanOrEqual(40);
    // the most recently changed keys are the ones kept
    expect(b.lookup(q({ host: 'ws499', process: 'p499.exe' })).processJa4.count).toBeGreaterThan(0.99);
    expect(b.lookup(q({ host: 'ws0', process: 'p0.exe' })).processJa4.count).toBe(0);
  });
});

describe('Redis baseline: storage', () => {
  it('keeps its keys under the prefix `egress:baseline:` by default, each counter with a TTL', async () => {
    const url = `${redis.url}/5`;
    const db5 = new Redis(url, { maxRetriesPerRequest: 1 });
    try {
      await db5.flushdb();
      const b = await openRedisBaseline(url, { flushIntervalMs: 50, pullIntervalMs: 25 });
      open.push(b);
      b.record(q(), Date.now());
      await b.flush();
      const keys = await db5.keys('*');
      expect(keys.length).toBeGreaterThan(5);
      expect(keys.every((k) => k.startsWith(DEFAULT_BASELINE_PREFIX))).toBe(true);
      const counter = `${DEFAULT_BASELINE_PREFIX}k:${singleKey('p', 'rundll32.exe')}`;
      // one contact lives ~6.6 half-lives (14 days each): about 93 days
      expect((await db5.pttl(counter)) / DAY).toBeCloseTo(93, 0);
      expect(await db5.pttl(`${DEFAULT_BASELINE_PREFIX}k:${singleKey('dh', 'c2-alpha.example')}`)).toBeGreaterThan(90 * DAY);
    } finally {
      db5.disconnect();
    }
  });

  it('ignores malformed entries another writer put in Redis, and reports them (no crash)', async () => {
    const prefix = newPrefix();
    const errors: string[] = [];
    const b = await replica(prefix, { onError: (e) => errors.push(e.message) });
    await admin.zadd(`${prefix}recent`, 1_000_000, 'not-a-key');
    await admin.set(`${prefix}k:${singleKey('p', 'evil.exe')}`, 'NaN x 1');
    await admin.zadd(`${prefix}recent`, 1_000_001, singleKey('p', 'evil.exe'));
    await waitFor(() => errors.some((m) => m.includes('malformed')), 3_000, 'a report');
    expect(b.lookup(q({ process: 'evil.exe' })).processTotal).toBe(0);
    b.record(q(), Date.now());
    await b.flush();
    expect(b.lookup(q()).processDestination.count).toBeGreaterThan(0.99);
  });

  it('parses read replies strictly', () => {
    expect(parseReadReply(null)).toBeNull();
    expect(parseReadReply(['e'])).toBeNull();
    expect(parseReadReply(['e', 'x'])).toBeNull();
    expect(parseReadReply(['e', '3', 'h:a', '1', 'c', '1', '2'])).toBeNull();
    expect(parseReadReply(['e', '3', 'h:a', '1', 'c', '1', '2', '3', 'dh:x', '2', 'n', '4', '', '', 'p:z', '3', 'x', '', '', ''])).toEqual({
      epoch: 'e',
      seq: 3,
      bad: 0,
      items: [
        { key: 'h:a', seq: 1, type: 'c', c: 1, t: 2, f: 3 },
        { key: 'dh:x', seq: 2, type: 'n', n: 4 },
        { key: 'p:z', seq: 3, type: 'x' },
      ],
    });
    expect(parseReadReply(['e', '3', 'h:a', '1', 'c', '-1', '2', '3', 'dh:x', '2', 'n', '1.5', '', '', 'p:z', '3', '?', '', '', ''])?.bad).toBe(3);
  });

  it('parses write replies strictly', () => {
    expect(parseWriteReply(['5', '7', '1', '2', '3', 'dh:x', '4'], 1)).toEqual({ lo: 5, hi: 7, values: [1, 2, 3], distinct: [['dh:x', 4]] });
    expect(parseWriteReply(['5', '7', '1', '2'], 1)).toBeNull();
    expect(parseWriteReply(['7', '5', '1', '2', '3'], 1)).toBeNull();
    expect(parseWriteReply(['5', '7', '1', 'x', '3'], 1)).toBeNull();
    expect(parseWriteReply(['5', '7', '1', '2', '3', 'dh:x'], 1)).toBeNull();
    expect(parseWriteReply('nope', 0)).toBeNull();
  });

  it('refuses keys written under another layout, naming the prefix', async () => {
    const prefix = newPrefix();
    await admin.set(`${prefix}layout`, '0');
    const err = await rejection(openRedisBaseline(redis.url, { keyPrefix: prefix }));
    expect(isEgressError(err)).toBe(true);
    expect(err.message).toContain(`the keys under "${prefix}" have layout 0, this version reads ${REDIS_LAYOUT_VERSION}`);
  });
});

describe('Redis baseline: failures', () => {
  it('refuses to start when Redis is unreachable, naming the URL without credentials', async () => {
    const err = await rejection(openRedisBaseline('redis://user:s3cret@127.0.0.1:1/0', { connectTimeoutMs: 500 }));
    expect(isEgressError(err) && err.code === 'BASELINE_STORE_FAILED').toBe(true);
    expect(err.message).toContain('cannot use Redis at redis://***@127.0.0.1:1');
    expect(err.message).not.toContain('s3cret');
  });

  it('a Redis restart mid-run does not throw: it keeps counting in memory, bounds the queue, then recovers', async () => {
    const prefix = newPrefix();
    const errors: string[] = [];
    const a = await replica(prefix, { onError: (e) => errors.push(e.message), maxPending: 20, commandTimeoutMs: 500 });
    const b = await replica(prefix);
    a.record(q({ destination: 'before.example' }), Date.now());
    await a.flush();
    await waitFor(() => b.lookup(q({ destination: 'before.example' })).processDestination.count > 0, 3_000, 'B before the restart');

    await redis.stop();
    try {
      const t = Date.now();
      expect(() => a.record(q({ destination: 'during.example' }), t)).not.toThrow();
      expect(a.lookup(q({ destination: 'during.example' })).processDestination.count).toBeCloseTo(1, 6);
      const err = await rejection(a.flush());
      expect(isEgressError(err)).toBe(true);
      expect(err.message).toMatch(/^baseline: Redis at redis:\/\/127\.0\.0\.1:\d+ (is unavailable|failed)/);
      expect(a.sizes().pendingWrites).toBeGreaterThan(0);
      // the queue is bounded: the oldest keys' increments are dropped and counted
      for (let i = 0; i < 30; i++) a.record(q({ host: `ws${i}`, process: null, destination: null }), t);
      expect(a.sizes().pendingWrites).toBeLessThanOrEqual(20);
      expect(a.sizes().droppedWrites).toBeGreaterThan(0);
      // the newest keys are still queued
      a.record(q({ destination: 'during.example' }), t);
      expect(b.lookup(q({ destination: 'before.example' })).processDestination.count).toBeGreaterThan(0); // B's mirror still answers
    } finally {
      await redis.start();
    }
    // Redis came back empty (no persistence): both reload, A sends its queue, B sees it.
    await waitFor(() => b.lookup(q({ destination: 'during.example' })).processDestination.count > 0, 10_000, 'B to see what A counted during the outage');
    await waitFor(() => a.sizes().pendingWrites === 0, 3_000, 'A’s queue to drain');
    expect(errors.some((m) => /unavailable|connection|failed/.test(m))).toBe(true);
    // A's own reset report can come after B already saw the data (two clients, two pull timers): bounded wait.
    await waitFor(() => errors.some((m) => m.includes('reset')), 3_000, 'the reset to be reported');
    expect(errors.some((m) => m.includes('reset'))).toBe(true);
    expect(errors.join('\n')).not.toContain('during.example');
    // and new flows flow again
    a.record(q({ destination: 'after.example' }), Date.now());
    await waitFor(() => b.lookup(q({ destination: 'after.example' })).processDestination.count > 0, 3_000, 'B after the restart');
    expect(await admin.get(`${prefix}first-start`)).toBe(String(a.learningUntilMs - 7 * DAY));
  });

  it('close() quits its connection and is idempotent', async () => {
    const prefix = newPrefix();
    const b = await openRedisBaseline(redis.url, { keyPrefix: prefix });
    const names = async (): Promise<number> => ((await admin.client('LIST')) as string).split('\n').filter((l) => / name=egress-baseline /.test(l)).length;
    expect(await names()).toBeGreaterThanOrEqual(1);
    const before = await names();
    b.record(q(), Date.now());
    await b.close();
    await b.close();
    expect(await names()).toBe(before - 1);
    expect(await admin.exists(`${prefix}k:${singleKey('p', 'rundll32.exe')}`)).toBe(1); // close wrote the queue
  });
});

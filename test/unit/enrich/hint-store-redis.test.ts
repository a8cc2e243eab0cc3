import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { isEgressError } from '../../../src/errors.js';
import type { NetworkHintEvent, ProcessHintEvent } from '../../../src/enrich/hint-event.js';
import { ingestHints } from '../../../src/enrich/hint-ingest.js';
import { createRedisHintStore, parseStoredHintEvent, redactRedisUrl, type RedisHintStoreOptions } from '../../../src/enrich/hint-store-redis.js';
import type { HintStore } from '../../../src/enrich/hint-store.js';
import { startRedis, type TestRedis } from '../../helpers/redis.js';
import { GUID, networkEvent, processEvent } from '../../helpers/hint-events.js';
import { waitFor } from '../../helpers/waits.js';

const net = (over: Partial<NetworkHintEvent> = {}): NetworkHintEvent => networkEvent(Date.now(), over);
const proc = (over: Partial<ProcessHintEvent> = {}): ProcessHintEvent => processEvent(Date.now() - 5_000, over);
const SECRET_IMAGE = 'C:\\Users\\alice\\secret-payload.exe';

let redis: TestRedis;
let admin: Redis;
const open: HintStore[] = [];
let prefixSeq = 0;

/** Each test gets its own key prefix (and so its own streams and channel). */
function newPrefix(): string {
  return `test${process.pid}-${++prefixSeq}:`;
}

async function store(prefix: string, extra: Partial<RedisHintStoreOptions> = {}): Promise<HintStore> {
  const s = await createRedisHintStore({ url: redis.url, windowMs: 120_000, managedWindowMs: 600_000, maxEntries: 10_000, keyPrefix: prefix, ...extra });
  open.push(s);
  return s;
}

beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: (n) => Math.min(n * 50, 500) });
  admin.on('error', () => undefined); // the down/up test stops the server under it
});

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(open.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  admin.disconnect();
  await redis.close();
});

describe('Redis hint store: one replica', () => {
  it('answers lookups from the local mirror at once and writes the event to Redis', async () => {
    const prefix = newPrefix();
    const a = await store(prefix);
    const done = a.put(net());
    // Synchronous lookup, before Redis has even seen it.
    expect(a.findConnection('10.1.2.3', 50000, Date.now())?.processName).toBe('rundll32.exe');
    expect(a.isManaged('10.1.2.3')).toBe(true);
    expect(done).toBeInstanceOf(Promise);
    await done;
    expect(await admin.xlen(`${prefix}net`)).toBe(1);
    const [[, fields]] = (await admin.xrange(`${prefix}net`, '-', '+')) as [[string, string[]]];
    expect(parseStoredHintEvent(JSON.parse(fields[1] ?? ''))).toMatchObject({ kind: 'network', sourcePort: 50000 });
  });

  it('writes an ingest batch of 1,000 events with one pipeline (one round trip), not 1,000', async () => {
    const prefix = newPrefix();
    const a = await store(prefix);
    const pipeline = vi.spyOn(Redis.prototype, 'pipeline');
    const body = Array.from({ length: 1000 }, (_, i) =>
      JSON.stringify({ EventID: 3, UtcTime: new Date().toISOString(), Computer: 'pc1', ProcessGuid: GUID, ProcessId: 4242, Image: 'C:\\x\\a.exe', Protocol: 'tcp', Initiated: 'true', SourceIp: '10.0.0.1', SourcePort: 20000 + i, DestinationIp: '10.9.9.9', DestinationPort: 3128 }),
    ).join('\n');
    const result = await ingestHints(body, 'application/x-ndjson', a, Date.now());
    expect(result.accepted).toBe(1000);
    expect(pipeline).toHaveBeenCalledTimes(1);
    expect(await admin.xlen(`${prefix}net`)).toBe(1000);
  });

  it('refuses to start when Redis is unreachable, naming the URL without credentials', async () => {
    const err: unknown = await createRedisHintStore({ url: 'redis://admin:hunter2-secret@127.0.0.1:1/0', windowMs: 1000, managedWindowMs: 1000, maxEntries: 1000, connectTimeoutMs: 1000 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isEgressError(err)).toBe(true);
    if (!isEgressError(err)) return;
    expect(err.code).toBe('HINT_STORE_FAILED');
    expect(err.message).toContain('127.0.0.1:1');
    expect(err.message).not.toContain('hunter2');
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it('redacts credentials and query options from URLs it shows', () => {
    expect(redactRedisUrl('redis://u:p@h:6379/2?password=x')).toBe('redis://***@h:6379/2');
    expect(redactRedisUrl('rediss://h:6380')).toBe('rediss://h:6380');
  });

  it('close() quits both connections', async () => {
    const prefix = newPrefix();
    const a = await createRedisHintStore({ url: redis.url, windowMs: 1000, managedWindowMs: 1000, maxEntries: 1000, keyPrefix: prefix });
    const names = async (): Promise<number> => ((await admin.client('LIST')) as string).split('\n').filter((l) => / name=egress-hints(-sub)? /.test(l)).length;
    expect(await names()).toBeGreaterThanOrEqual(2);
    await a.close();
    await waitFor(async () => (await names()) === 0, 2000, 'connections to close');
  });
});

describe('Redis hint store: replicas', () => {
  it('a second instance sees hints put by the first (pub/sub), with the EID 1 joined; the writer inserts once', async () => {
    const prefix = newPrefix();
    const a = await store(prefix);
    const b = await store(prefix);
    const heardA: NetworkHintEvent[] = [];
    const heardB: NetworkHintEvent[] = [];
    a.onNetworkEvent((ev) => heardA.push(ev));
    let joinedOnB: string | null | undefined;
    b.onNetworkEvent((ev) => {
      heardB.push(ev);
      joinedOnB = b.findConnection(ev.sourceIp, ev.sourcePort, ev.timeMs)?.parentName;
    });
    // One batch, the network event before its process creation event.
    const n = net({ sourcePort: 50001 });
    void a.put(n);
    await a.put(proc());
    await waitFor(() => heardB.length > 0, 3000, 'the event on replica B');
    expect(b.findConnection('10.1.2.3', 50001, Date.now())?.processName).toBe('rundll32.exe');
    expect(b.isManaged('10.1.2.3')).toBe(true);
    expect(joinedOnB).toBe('cmd.exe'); // the EID 1 of the same batch had been applied when listeners ran
    await new Promise((r) => setTimeout(r, 100)); // the writer's own echo has come back by now
    expect(heardA).toHaveLength(1);
    expect(heardB).toHaveLength(1);
    expect(a.size().network).toBe(1);
    expect(b.size().network).toBe(1);
    expect(b.size().process).toBe(1);
  });

  it('an instance that starts late loads the recent hints already in Redis', async () => {
    const prefix = newPrefix();
    const a = await store(prefix);
    void a.put(net({ sourcePort: 50002, timeMs: Date.now() - 30_000 }));
    await a.put(proc());
    const c = await store(prefix);
    const hit = c.findConnection('10.1.2.3', 50002, Date.now() - 30_000);
    expect(hit?.processName).toBe('rundll32.exe');
    expect(hit?.commandLine).toBe('rundll32.exe evil.dll,Start');
    expect(c.isManaged('10.1.2.3')).toBe(true);
    expect(c.size().network).toBe(1);
  });

  it('events applied from Redis keep their age: the managed window counts from when they were stored', async () => {
    const prefix = newPrefix();
    const opts = { windowMs: 1000, managedWindowMs: 1000 };
    const a = await store(prefix, opts);
    const putAt = Date.now();
    await a.put(net({ sourcePort: 50003 }));
    await new Promise((r) => setTimeout(r, 300));
    const c = await store(prefix, opts);
    const loadedAt = Date.now();
    expect(c.isManaged('10.1.2.3')).toBe(true);
    await new Promise((r) => setTimeout(r, Math.max(0, putAt + 1100 - Date.now())));
    // Counted from the load, the address would stay managed until loadedAt + 1000 (> now): it must not.
    if (Date.now() >= loadedAt + 1000) throw new Error('the machine was too slow for this timing test');
    expect(c.isManaged('10.1.2.3')).toBe(false);
  });

  it('ignores malformed published messages and reports them (no crash)', async () => {
    const prefix = newPrefix();
    const errors: Error[] = [];
    const b = await store(prefix, { onError: (e) => errors.push(e) });
    await admin.publish(`${prefix}events`, 'not json');
    await admin.publish(`${prefix}events`, JSON.stringify({ o: 'other', e: [{ kind: 'network', sourceIp: 7 }, net({ sourcePort: 50004 })] }));
    await waitFor(() => errors.length >= 2, 2000, 'two reported errors');
    expect(b.findConnection('10.1.2.3', 50004, Date.now())).not.toBeNull();
    expect(b.size().network).toBe(1);
  });
});

describe('Redis hint store: bounds', () => {
  it('caps each stream by count (XADD MAXLEN ~) and gives every key a TTL', async () => {
    const prefix = newPrefix();
    const a = await store(prefix, { maxEntries: 1000 });
    const puts: Array<void | Promise<void>> = [];
    for (let i = 0; i < 3000; i++) puts.push(a.put(net({ sourcePort: 10_000 + i })));
    puts.push(a.put(proc()));
    await Promise.all(puts);
    const len = await admin.xlen(`${prefix}net`);
    expect(len).toBeGreaterThanOrEqual(1000);
    expect(len).toBeLessThanOrEqual(1100); // approximate trimming removes whole nodes of 100 entries
    const ttl = await admin.pttl(`${prefix}net`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(600_000 + 5_000);
    const procTtl = await admin.pttl(`${prefix}proc`);
    expect(procTtl).toBeGreaterThan(600_000);
    expect(procTtl).toBeLessThanOrEqual(24 * 3600_000 + 5_000);
  });

  it('drops entries older than the retention (XTRIM MINID ~), and a late instance does not load them', async () => {
    const prefix = newPrefix();
    const opts = { windowMs: 200, managedWindowMs: 200, processTtlMs: 300, maxEntries: 10_000 };
    const a = await store(prefix, opts);
    const puts: Array<void | Promise<void>> = [];
    for (let i = 0; i < 500; i++) puts.push(a.put(net({ sourcePort: 10_000 + i })));
    await Promise.all(puts);
    expect(await admin.xlen(`${prefix}net`)).toBe(500);
    expect(await admin.pttl(`${prefix}net`)).toBeLessThanOrEqual(200 + 5_000);
    await new Promise((r) => setTimeout(r, 400));
    await a.put(net({ sourcePort: 60_000 }));
    expect(await admin.xlen(`${prefix}net`)).toBeLessThanOrEqual(101);
    const c = await store(prefix, opts);
    expect(c.size().network).toBeLessThanOrEqual(1);
  });
});

describe('Redis hint store: Redis going down and coming back', () => {
  it('keeps storing locally and reports through onError while Redis is down, and recovers', async () => {
    const prefix = newPrefix();
    const errorsA: Error[] = [];
    const a = await store(prefix, { onError: (e) => errorsA.push(e) });
    const b = await store(prefix);
    await redis.stop();
    try {
      const done = a.put(net({ sourcePort: 51000, image: SECRET_IMAGE, processName: 'secret-payload.exe' }));
      expect(a.findConnection('10.1.2.3', 51000, Date.now())?.processName).toBe('secret-payload.exe');
      await expect(done).resolves.toBeUndefined(); // accepted locally: the ingest answer stays 202
      await waitFor(() => errorsA.length > 0, 3000, 'onError');
      for (const e of errorsA) expect(e.message).not.toContain('secret-payload');
      expect(b.findConnection('10.1.2.3', 51000, Date.now())).toBeNull(); // what is lost: B never hears it
    } finally {
      await redis.start();
    }
    // Both replicas reconnect and resubscribe; a new hint flows again.
    const heard: NetworkHintEvent[] = [];
    b.onNetworkEvent((ev) => heard.push(ev));
    await waitFor(
      async () => {
        await a.put(net({ sourcePort: 51001, timeMs: Date.now() }));
        await new Promise((r) => setTimeout(r, 50));
        return heard.some((ev) => ev.sourcePort === 51001);
      },
      10_000,
      'replica B to hear replica A again',
    );
    expect(await admin.xlen(`${prefix}net`)).toBeGreaterThanOrEqual(1);
    expect(a.findConnection('10.1.2.3', 51000, Date.now())?.processName).toBe('secret-payload.exe'); // the mirror kept it
  });

  it('after its subscription drops, a replica catches up on what was published meanwhile (from the streams)', async () => {
    const prefix = newPrefix();
    const a = await store(prefix);
    const b = await store(prefix);
    // Drop every subscriber connection; B's put goes out while A's subscription is down (it retries after 100 ms).
    await admin.client('KILL', 'TYPE', 'pubsub');
    await b.put(net({ sourcePort: 52000 }));
    await waitFor(() => a.findConnection('10.1.2.3', 52000, Date.now()) !== null, 5000, 'replica A to catch up');
  });
});

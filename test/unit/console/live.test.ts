/**
 * The console's in-memory parts: the recent-flow ring and its live viewers (rate cut and sampling report), the
 * alert board (grouping, per-minute buckets, bounds), sessions (expiry, bound), the sign-in throttle, cookies,
 * the Origin check, and the filter parser.
 */
import { describe, expect, it } from 'vitest';
import { AlertBoard } from '../../../src/console/alerts.js';
import { compileFilter, filterQuery, parseFilter } from '../../../src/console/filter.js';
import type { ConsoleFlow, ConsoleFlowSummary, LiveSampling } from '../../../src/console/model.js';
import { RecentFlows } from '../../../src/console/recent.js';
import { readCookie, sameOrigin, sessionCookie, Sessions, SignInThrottle } from '../../../src/console/session.js';

const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
let n = 0;
function flow(over: Partial<ConsoleFlow> = {}): ConsoleFlow {
  n += 1;
  return {
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    timeMs: T0 + n,
    action: 'allow',
    protocol: 'http',
    severity: null,
    sourceIp: '10.0.0.5',
    user: 'alice',
    host: 'ws5.corp.local',
    process: 'chrome.exe',
    rule: null,
    rules: [],
    tags: [],
    destination: 'www.example.com:443',
    score: 5,
    attribution: 'telemetry',
    followupOf: null,
    record: '{}',
    ...over,
  };
}

describe('RecentFlows', () => {
  it('keeps the last `capacity` flows, newest first, and finds them by id', () => {
    const ring = new RecentFlows({ capacity: 3, liveRate: 10 });
    const flows = [flow(), flow(), flow(), flow(), flow()];
    for (const f of flows) ring.add(f);
    expect(ring.size).toBe(3);
    expect(ring.list({}, 10).map((f) => f.id)).toEqual([flows[4]?.id, flows[3]?.id, flows[2]?.id]);
    expect(ring.get(flows[3]?.id ?? '')).toBe(flows[3]);
    expect(ring.get(flows[0]?.id ?? '')).toBeUndefined();
    expect(ring.oldestMs()).toBe(flows[2]?.timeMs);
    expect(ring.list({}, 10, flows[3]?.timeMs).map((f) => f.id)).toEqual([flows[2]?.id]);
  });

  it('keeps at most maxChars of record text: the oldest flows go first, the newest always stays', () => {
    const ring = new RecentFlows({ capacity: 100, liveRate: 10, maxChars: 250 });
    const flows = Array.from({ length: 6 }, () => flow({ record: 'x'.repeat(100) }));
    for (const f of flows) ring.add(f);
    // 100 characters each: two fit in 250, the third would make 300.
    expect(ring.size).toBe(2);
    expect(ring.list({}, 10).map((f) => f.id)).toEqual([flows[5]?.id, flows[4]?.id]);
    expect(ring.oldestMs()).toBe(flows[4]?.timeMs);
    expect(ring.get(flows[3]?.id ?? '')).toBeUndefined();
    const big = flow({ record: 'y'.repeat(1000) });
    ring.add(big);
    expect(ring.list({}, 10)).toEqual([big]);
    // Back to small records: the ring fills by count again, and the count bound still holds.
    const small = Array.from({ length: 150 }, () => flow({ record: 'z' }));
    for (const f of small) ring.add(f);
    expect(ring.size).toBe(100);
    expect(ring.oldestMs()).toBe(small[50]?.timeMs);
  });

  it('lists with the filter and the limit', () => {
    const ring = new RecentFlows({ capacity: 100, liveRate: 10 });
    for (let i = 0; i < 20; i++) ring.add(flow({ action: i % 4 === 0 ? 'block' : 'allow', process: i % 4 === 0 ? 'rundll32.exe' : 'chrome.exe' }));
    expect(ring.list({ action: 'block' }, 100)).toHaveLength(5);
    expect(ring.list({ process: 'RUNDLL' }, 3)).toHaveLength(3);
  });

  it('a capacity of 0 keeps nothing but still streams', () => {
    const ring = new RecentFlows({ capacity: 0, liveRate: 10 });
    const got: ConsoleFlowSummary[] = [];
    ring.watch({}, { send: (f) => got.push(f), sampling: () => undefined });
    ring.add(flow());
    expect(ring.size).toBe(0);
    expect(ring.list({}, 10)).toEqual([]);
    expect(got).toHaveLength(1);
    ring.close();
  });

  it('sends each viewer at most liveRate flows a second, without the record, and reports the cut', () => {
    const ring = new RecentFlows({ capacity: 10, liveRate: 5 });
    const blocks: ConsoleFlowSummary[] = [];
    const all: ConsoleFlowSummary[] = [];
    const cuts: LiveSampling[] = [];
    const stopBlocks = ring.watch({ action: 'block' }, { send: (f) => blocks.push(f), sampling: (c) => cuts.push(c) });
    ring.watch({}, { send: (f) => all.push(f), sampling: () => undefined });
    for (let i = 0; i < 100; i++) ring.add(flow({ action: i < 3 ? 'block' : 'allow' }));
    expect(blocks).toHaveLength(3);
    expect(all).toHaveLength(5);
    expect(all[0]).not.toHaveProperty('record');
    ring.everySecond();
    // The blocks viewer got every match: nothing to report. Next second: 8 blocks, 5 sent.
    expect(cuts).toEqual([]);
    for (let i = 0; i < 8; i++) ring.add(flow({ action: 'block' }));
    ring.everySecond();
    expect(cuts).toEqual([{ matched: 8, sent: 5, limit: 5 }]);
    expect(blocks).toHaveLength(8);
    stopBlocks?.();
    expect(ring.viewerCount).toBe(1);
    ring.close();
  });

  it('refuses viewers beyond maxViewers', () => {
    const ring = new RecentFlows({ capacity: 1, liveRate: 1, maxViewers: 2 });
    const out = { send: () => undefined, sampling: () => undefined };
    expect(ring.watch({}, out)).not.toBeNull();
    expect(ring.watch({}, out)).not.toBeNull();
    expect(ring.watch({}, out)).toBeNull();
    ring.close();
  });
});

describe('AlertBoard', () => {
  it('groups alerts by rule and by host/process, with counts, blocks, first/last and per-minute buckets', () => {
    const now = T0 + 10 * 60_000;
    const board = new AlertBoard({ windowMinutes: 60, now: () => now });
    board.add(flow({ severity: 'high', action: 'block', rule: 'lolbin-external', rules: ['lolbin-external'], process: 'rundll32.exe', timeMs: T0 }));
    board.add(flow({ severity: 'critical', action: 'block', rule: 'lolbin-external', rules: ['lolbin-external', 'odd-port'], process: 'rundll32.exe', timeMs: T0 + 60_000 }));
    board.add(flow({ severity: 'low', rules: ['odd-port'], host: null, sourceIp: '10.0.0.9', process: null, timeMs: T0 + 5 * 60_000 }));
    board.add(flow({ severity: null, rules: ['lolbin-external'] }));
    const view = board.view();
    expect(view.total).toBe(3);
    const lolbin = view.byRule.find((g) => g.key === 'lolbin-external');
    expect(lolbin).toMatchObject({ count: 2, blocked: 2, severity: 'critical', firstMs: T0, lastMs: T0 + 60_000 });
    expect(lolbin?.perMinute).toHaveLength(60);
    expect(lolbin?.perMinute.slice(-11)).toEqual([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(view.byRule.find((g) => g.key === 'odd-port')?.count).toBe(2);
    expect(view.byEndpoint.map((g) => g.key).sort()).toEqual(['10.0.0.9 / (unknown process)', 'ws5.corp.local / rundll32.exe']);
  });

  it('is bounded: the least recently alerted group goes first; old groups expire', () => {
    let now = T0;
    const board = new AlertBoard({ maxGroups: 2, ttlMs: 3_600_000, now: () => now });
    for (const rule of ['a', 'b', 'a', 'c']) board.add(flow({ severity: 'low', rules: [rule], timeMs: now }));
    const view = board.view();
    expect(view.byRule.map((g) => g.key).sort()).toEqual(['a', 'c']);
    expect(view.evictedGroups).toBeGreaterThanOrEqual(1);
    now += 2 * 3_600_000;
    expect(board.view().byRule).toEqual([]);
  });

  it('buckets roll over: an alert an hour old is out of the sparkline', () => {
    let now = T0;
    const board = new AlertBoard({ windowMinutes: 60, now: () => now });
    board.add(flow({ severity: 'low', rules: ['r'], timeMs: T0 }));
    now = T0 + 61 * 60_000;
    board.add(flow({ severity: 'low', rules: ['r'], timeMs: now }));
    const [group] = board.view().byRule;
    expect(group?.count).toBe(2);
    expect(group?.perMinute.reduce((a, b) => a + b, 0)).toBe(1);
  });
});

describe('sessions', () => {
  it('a session expires when idle and at its maximum age; the table is bounded', () => {
    let now = 0;
    const sessions = new Sessions({ idleMs: 1_000, maxAgeMs: 5_000, maxSessions: 2, now: () => now });
    const a = sessions.create();
    const cookie = (id: string) => `other=1; ei_session=${id}`;
    expect(sessions.fromCookieHeader(cookie(a.id))).toBe(a);
    now = 900;
    expect(sessions.fromCookieHeader(cookie(a.id))).toBe(a);
    now = 1_800;
    expect(sessions.fromCookieHeader(cookie(a.id))).toBe(a);
    now = 2_900;
    expect(sessions.fromCookieHeader(cookie(a.id))).toBeNull();
    const b = sessions.create();
    for (now = 3_000; now <= 8_000; now += 900) {
      if (now - b.createdMs <= 5_000) expect(sessions.fromCookieHeader(cookie(b.id))).toBe(b);
    }
    expect(sessions.fromCookieHeader(cookie(b.id))).toBeNull();
    const [c, d, e] = [sessions.create(), sessions.create(), sessions.create()];
    expect(sessions.size).toBe(2);
    expect(sessions.fromCookieHeader(cookie(c.id))).toBeNull();
    expect(sessions.fromCookieHeader(cookie(d.id))).toBe(d);
    expect(sessions.fromCookieHeader(cookie(e.id))).toBe(e);
  });

  it('ids and CSRF tokens are random and distinct', () => {
    const sessions = new Sessions({ idleMs: 1_000, maxAgeMs: 1_000 });
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const s = sessions.create();
      expect(s.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(s.csrf).not.toBe(s.id);
      ids.add(s.id);
    }
    expect(ids.size).toBe(50);
  });

  it('reads only well-formed cookie values', () => {
    expect(readCookie('a=1; ei_session=abc_DEF-123', 'ei_session')).toBe('abc_DEF-123');
    expect(readCookie('ei_session=bad value', 'ei_session')).toBeNull();
    expect(readCookie('ei_session="quoted"', 'ei_session')).toBeNull();
    expect(readCookie('xei_session=abc', 'ei_session')).toBeNull();
    expect(readCookie(undefined, 'ei_session')).toBeNull();
    expect(sessionCookie('abc', true)).toBe('ei_session=abc; Path=/ui; HttpOnly; SameSite=Strict; Secure');
  });

  it('same-origin check: Origin, then Referer; "null" and other hosts refused', () => {
    expect(sameOrigin({ host: '127.0.0.1:9180', origin: 'http://127.0.0.1:9180' })).toBe(true);
    expect(sameOrigin({ host: '127.0.0.1:9180', origin: 'http://evil.example' })).toBe(false);
    expect(sameOrigin({ host: '127.0.0.1:9180', origin: 'null' })).toBe(false);
    expect(sameOrigin({ host: '127.0.0.1:9180', referer: 'http://127.0.0.1:9180/ui/policy' })).toBe(true);
    expect(sameOrigin({ host: '127.0.0.1:9180', referer: 'http://127.0.0.1:9181/' })).toBe(false);
    expect(sameOrigin({ host: '127.0.0.1:9180', referer: 'not a url' })).toBe(false);
    expect(sameOrigin({ host: '127.0.0.1:9180' })).toBe(true);
  });

  it('the sign-in throttle makes a client wait after a failure, per address, bounded', () => {
    let now = 0;
    const throttle = new SignInThrottle(1_000, 2, () => now);
    throttle.failed('a');
    expect(throttle.waitMs('a')).toBe(1_000);
    expect(throttle.waitMs('b')).toBe(0);
    now = 600;
    expect(throttle.waitMs('a')).toBe(400);
    now = 1_000;
    expect(throttle.waitMs('a')).toBe(0);
    throttle.failed('a');
    throttle.succeeded('a');
    expect(throttle.waitMs('a')).toBe(0);
  });
});

describe('filter', () => {
  it('parses every field, names what it ignored, and round-trips through filterQuery', () => {
    const parsed = parseFilter(new URLSearchParams('action=block&alert=yes&host=WS5&user=alice&process=rundll32&rule=lolbin&tag=t1218&destination=evil&score=40'));
    expect(parsed.errors).toEqual([]);
    expect(parseFilter(new URLSearchParams(filterQuery(parsed.filter))).filter).toEqual(parsed.filter);
    const bad = parseFilter(new URLSearchParams(`action=maybe&alert=perhaps&score=101&host=${'x'.repeat(300)}`));
    expect(bad.errors).toHaveLength(4);
    expect(bad.filter.host).toHaveLength(200);
    expect(bad.filter.action).toBeUndefined();
  });

  it('host matches the host name or the source address', () => {
    const matches = compileFilter({ host: '10.0.0' });
    expect(matches(flow())).toBe(true);
    expect(compileFilter({ host: 'WS5' })(flow())).toBe(true);
    expect(compileFilter({ host: 'ws6' })(flow())).toBe(false);
    expect(compileFilter({ minScore: 6 })(flow())).toBe(false);
    expect(compileFilter({ rule: 'x' })(flow({ rules: ['x'] }))).toBe(true);
    expect(compileFilter({ alert: true })(flow())).toBe(false);
  });
});

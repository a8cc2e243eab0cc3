import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { normalizeHintEvent, type HintEvent, type NetworkHintEvent, type ProcessHintEvent } from '../../../src/enrich/hint-event.js';
import { createMemoryHintStore, type HintStore } from '../../../src/enrich/hint-store.js';
import { networkEvent, processEvent } from '../../helpers/hint-events.js';

const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);
const W = 120_000;
const net = (over: Partial<NetworkHintEvent> = {}): NetworkHintEvent => networkEvent(T0, over);
const proc = (over: Partial<ProcessHintEvent> = {}): ProcessHintEvent => processEvent(T0 - 5_000, over);

function clock(start = T0): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

function storeAt(start = T0, extra: Parameters<typeof createMemoryHintStore>[0] = {}): { store: HintStore; advance: (ms: number) => void } {
  const c = clock(start);
  return { store: createMemoryHintStore({ windowMs: W, managedWindowMs: 600_000, maxEntries: 10_000, now: c.now, ...extra }), advance: c.advance };
}

describe('findConnection: the correlation window', () => {
  it('matches within ±120 s of the connection time, inclusive, and not beyond', () => {
    const { store } = storeAt();
    store.put(net());
    expect(store.findConnection('10.1.2.3', 50000, T0)?.processName).toBe('rundll32.exe');
    expect(store.findConnection('10.1.2.3', 50000, T0 + W)).not.toBeNull();
    expect(store.findConnection('10.1.2.3', 50000, T0 - W)).not.toBeNull();
    expect(store.findConnection('10.1.2.3', 50000, T0 + W + 1)).toBeNull();
    expect(store.findConnection('10.1.2.3', 50000, T0 - W - 1)).toBeNull();
    expect(store.findConnection('10.1.2.3', 50001, T0)).toBeNull();
    expect(store.findConnection('10.1.2.4', 50000, T0)).toBeNull();
  });

  it('fills every attribution field from EID 3 + EID 1', () => {
    const { store } = storeAt();
    store.put(proc());
    store.put(net());
    expect(store.findConnection('10.1.2.3', 50000, T0 + 10)).toEqual({
      processName: 'rundll32.exe',
      executable: 'C:\\Windows\\System32\\rundll32.exe',
      pid: 4242,
      entityId: '{11111111-2222-3333-4444-555555555555}',
      parentName: 'cmd.exe',
      parentExecutable: 'C:\\Windows\\System32\\cmd.exe',
      commandLine: 'rundll32.exe evil.dll,Start',
      originalFileName: 'RUNDLL32.EXE',
      hashes: { md5: 'a'.repeat(32), sha1: null, sha256: 'b'.repeat(64), imphash: null },
      userName: 'alice',
      userDomain: 'CORP',
      hostName: 'pc1',
      eventTimeMs: T0,
      transport: 'tcp',
      destinationIp: '10.9.9.9',
      destinationPort: 3128,
      join: 'guid',
      matched: 'network',
    });
  });

  it('source port reuse: the event nearest in time to the connection wins', () => {
    const { store } = storeAt();
    store.put(net({ timeMs: T0 - 100_000, processName: 'chrome.exe', image: 'C:\\chrome.exe', processGuid: '{aaaaaaaa-0000-0000-0000-000000000001}' }));
    store.put(net({ timeMs: T0 + 2_000 }));
    store.put(net({ timeMs: T0 + 90_000, processName: 'svchost.exe', image: 'C:\\svchost.exe', processGuid: '{aaaaaaaa-0000-0000-0000-000000000002}' }));
    expect(store.findConnection('10.1.2.3', 50000, T0)?.processName).toBe('rundll32.exe');
    expect(store.findConnection('10.1.2.3', 50000, T0 - 90_000)?.processName).toBe('chrome.exe');
    expect(store.findConnection('10.1.2.3', 50000, T0 + 80_000)?.processName).toBe('svchost.exe');
  });

  it('IPv4-mapped lookups find IPv4 events; IPv6 spellings meet in one canonical form', () => {
    const { store } = storeAt();
    store.put(net());
    store.put(net({ sourceIp: 'a00:20f::18a2:6e00:e0:ffff', sourcePort: 62141 }));
    expect(store.findConnection('::ffff:10.1.2.3', 50000, T0)).not.toBeNull();
    expect(store.findConnection('a00:20f:0:0:18a2:6e00:e0:ffff', 62141, T0)).not.toBeNull();
  });

  it('transport: a UDP event does not attribute a TCP connection on the same port', () => {
    const { store } = storeAt();
    store.put(net({ protocol: 'udp' }));
    expect(store.findConnection('10.1.2.3', 50000, T0, 'tcp')).toBeNull();
    expect(store.findConnection('10.1.2.3', 50000, T0, 'udp')?.transport).toBe('udp');
  });

  it('stores events whose destination is not this proxy (direct connections), and duplicates once', () => {
    const { store } = storeAt();
    store.put(net({ destinationIp: '203.0.113.7', destinationPort: 443 }));
    store.put(net({ destinationIp: '203.0.113.7', destinationPort: 443 })); // at-least-once shipper retry
    expect(store.size().network).toBe(1);
    expect(store.findConnection('10.1.2.3', 50000, T0)?.destinationIp).toBe('203.0.113.7');
  });
});

describe('EID 1 ↔ EID 3 join', () => {
  it('EID 1 first, then EID 3', () => {
    const { store } = storeAt();
    store.put(proc());
    store.put(net());
    expect(store.findConnection('10.1.2.3', 50000, T0)).toMatchObject({ parentName: 'cmd.exe', commandLine: 'rundll32.exe evil.dll,Start', join: 'guid' });
  });

  it('EID 3 first, then EID 1 (Sysmon can log the connection before the process creation)', () => {
    const { store } = storeAt();
    store.put(net());
    expect(store.findConnection('10.1.2.3', 50000, T0)).toMatchObject({ parentName: null, join: null, processName: 'rundll32.exe' });
    store.put(proc({ timeMs: T0 + 500 }));
    expect(store.findConnection('10.1.2.3', 50000, T0)).toMatchObject({ parentName: 'cmd.exe', originalFileName: 'RUNDLL32.EXE', join: 'guid' });
  });

  it('OTRF mshta: the "<unknown process>" EID 3 (event 9) joins the EID 1 (event 8) by host + pid, 0.5 s later', () => {
    const lines = readFileSync(new URL('../../fixtures/telemetry/sysmon-otrf-samples.jsonl', import.meta.url), 'utf8').split('\n');
    const ev = (n: number): HintEvent => {
      const r = normalizeHintEvent(JSON.parse(lines[n - 1] as string));
      if (!r.ok) throw new Error(r.reason);
      return r.event;
    };
    const e9 = ev(9) as NetworkHintEvent;
    const { store } = storeAt(e9.timeMs);
    store.put(e9);
    expect(store.findConnection('192.168.2.5', 52271, e9.timeMs)).toMatchObject({ processName: null, pid: 10076, join: null });
    store.put(ev(8));
    expect(store.findConnection('192.168.2.5', 52271, e9.timeMs)).toMatchObject({
      processName: 'mshta.exe',
      executable: 'C:\\Windows\\System32\\mshta.exe',
      parentName: 'cmd.exe',
      entityId: '{39e4a257-24f1-5f91-0e13-000000000700}',
      userName: 'wardog',
      join: 'pid',
    });
    // The EID 22 of the same unknown process is found by host and by the client address of its EID 3.
    store.put(ev(10));
    expect(store.findDnsQuery('WORKSTATION5', 'Raw.GitHubUserContent.com.', e9.timeMs)?.processName).toBe('mshta.exe');
    expect(store.findDnsQuery('192.168.2.5', 'raw.githubusercontent.com', e9.timeMs)?.matched).toBe('dns');
    expect(store.findDnsQuery('192.168.2.5', 'raw.githubusercontent.com', e9.timeMs + 3 + W + 1)).toBeNull(); // event 10 is 3 ms after event 9
  });

  it('the pid join does not take an EID 1 of another host, nor one created after the window', () => {
    const { store } = storeAt();
    const unknown = net({ processGuid: null, image: null, processName: null });
    store.put(unknown);
    store.put(proc({ host: 'pc2', processGuid: '{99999999-0000-0000-0000-000000000001}' }));
    store.put(proc({ timeMs: T0 + W + 1, processGuid: '{99999999-0000-0000-0000-000000000002}' }));
    expect(store.findConnection('10.1.2.3', 50000, T0)?.join).toBeNull();
  });
});

describe('managed clients', () => {
  it('an address that sent a network event is managed for the managed window, then not', () => {
    const { store, advance } = storeAt();
    expect(store.isManaged('10.1.2.3')).toBe(false);
    store.put(net());
    expect(store.isManaged('10.1.2.3')).toBe(true);
    expect(store.isManaged('::ffff:10.1.2.3')).toBe(true);
    advance(600_000);
    expect(store.isManaged('10.1.2.3')).toBe(true);
    advance(1);
    expect(store.isManaged('10.1.2.3')).toBe(false);
  });

  it('inbound connections (Initiated false) and process events do not make an address managed', () => {
    const { store } = storeAt();
    store.put(net({ initiated: false }));
    store.put(proc());
    expect(store.isManaged('10.1.2.3')).toBe(false);
  });
});

describe('bounds', () => {
  it('TTL: a network event is dropped a window after the later of its time and its arrival', () => {
    const { store, advance } = storeAt();
    store.put(net());
    expect(store.size().network).toBe(1);
    advance(W - 1);
    expect(store.size().network).toBe(1);
    advance(1);
    expect(store.size().network).toBe(0);
    expect(store.findConnection('10.1.2.3', 50000, T0)).toBeNull();
    expect(store.evictions()).toBe(0); // expiry is not an eviction
  });

  it('the entry cap evicts the oldest network events first, counts them, and keeps the index right', () => {
    const { store } = storeAt(T0, { maxEntries: 1_000 }); // network share: 780
    for (let i = 0; i < 1_000; i++) store.put(net({ sourcePort: 1_000 + i, timeMs: T0 + i }));
    const size = store.size();
    expect(size.network).toBe(780);
    expect(store.evictions()).toBe(220);
    expect(size.total).toBeLessThanOrEqual(1_000);
    expect(store.findConnection('10.1.2.3', 1_000, T0)).toBeNull(); // oldest gone
    expect(store.findConnection('10.1.2.3', 1_219, T0)).toBeNull();
    expect(store.findConnection('10.1.2.3', 1_220, T0)?.eventTimeMs).toBe(T0 + 220);
    expect(store.findConnection('10.1.2.3', 1_999, T0)?.eventTimeMs).toBe(T0 + 999);
  });

  it('growing the ring keeps every key and every chain (port reuse across growth)', () => {
    const { store } = storeAt(T0, { maxEntries: 100_000 });
    for (let i = 0; i < 5_000; i++) store.put(net({ sourcePort: i % 2_500, timeMs: T0 + (i < 2_500 ? -60_000 : 60_000) }));
    expect(store.size().network).toBe(5_000);
    expect(store.findConnection('10.1.2.3', 7, T0 - 59_000)?.eventTimeMs).toBe(T0 - 60_000);
    expect(store.findConnection('10.1.2.3', 7, T0 + 59_000)?.eventTimeMs).toBe(T0 + 60_000);
  });

  it('process entries are capped by count and by bytes; evictions counted', () => {
    const { store } = storeAt(T0, { maxEntries: 1_000, maxProcessBytes: 1_000_000 });
    for (let i = 0; i < 300; i++) store.put(proc({ processGuid: `{00000000-0000-0000-0000-${String(i).padStart(12, '0')}}`, commandLine: 'x'.repeat(100) }));
    expect(store.size().process).toBe(100); // 10 % of maxEntries
    const big = createMemoryHintStore({ windowMs: W, maxEntries: 100_000, maxProcessBytes: 200_000, now: () => T0 });
    for (let i = 0; i < 50; i++) big.put(proc({ processGuid: `{00000000-0000-0000-0000-${String(i).padStart(12, '0')}}`, commandLine: 'x'.repeat(30_000) }));
    expect(big.size().process).toBeLessThanOrEqual(3);
    expect(big.evictions()).toBeGreaterThanOrEqual(47);
  });

  it('DNS entries are capped, and expire', () => {
    const { store, advance } = storeAt(T0, { maxEntries: 1_000 });
    for (let i = 0; i < 150; i++) store.put({ ...proc(), kind: 'dns', eventId: 22, queryName: `n${i}.example`, queryStatus: 0, queryResults: [] } as HintEvent);
    expect(store.size().dns).toBe(100);
    advance(W);
    expect(store.size().dns).toBe(0);
  });

  it('process entries expire after their TTL without use', () => {
    const { store, advance } = storeAt(T0, { processTtlMs: 3_600_000 });
    store.put(proc());
    advance(3_600_000);
    expect(store.size().process).toBe(0);
  });
});

describe('onNetworkEvent', () => {
  it('notifies after the batch (a microtask later), so an EID 1 later in the batch has joined; unsubscribe stops it', async () => {
    const { store } = storeAt();
    const seen: Array<string | null> = [];
    const off = store.onNetworkEvent((ev) => seen.push(store.findConnection(ev.sourceIp, ev.sourcePort, ev.timeMs)?.parentName ?? null));
    store.put(net());
    store.put(proc());
    expect(seen).toEqual([]);
    await Promise.resolve();
    expect(seen).toEqual(['cmd.exe']);
    off();
    store.put(net({ sourcePort: 1 }));
    await Promise.resolve();
    expect(seen).toHaveLength(1);
  });

  it('a throwing listener does not stop the others', async () => {
    const { store } = storeAt();
    let heard = 0;
    store.onNetworkEvent(() => {
      throw new Error('bug');
    });
    store.onNetworkEvent(() => heard++);
    store.put(net());
    await Promise.resolve();
    expect(heard).toBe(1);
  });
});

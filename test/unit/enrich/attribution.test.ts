import { afterEach, describe, expect, it, vi } from 'vitest';
import { Flow, type FlowKind } from '../../../src/flow/flow.js';
import { createAttribution, type AttributedWhen } from '../../../src/enrich/attribution.js';
import { createMemoryHintStore, type Attribution, type HintStore } from '../../../src/enrich/hint-store.js';
import type { NetworkHintEvent, ProcessHintEvent } from '../../../src/enrich/hint-event.js';
import { networkEvent, processEvent } from '../../helpers/hint-events.js';

const IP = '10.1.2.3';

function net(port: number, timeMs: number, over: Partial<NetworkHintEvent> = {}): NetworkHintEvent {
  return networkEvent(timeMs, { host: 'pc1.corp.example', sourceIp: IP, sourcePort: port, ...over });
}

const EID1: ProcessHintEvent = processEvent(Date.now() - 1_000, {
  host: 'pc1.corp.example',
  commandLine: 'rundll32.exe payload.dll,Run',
  parentCommandLine: 'cmd.exe /c x',
  hashes: { md5: 'a'.repeat(32), sha1: 'c'.repeat(40), sha256: 'b'.repeat(64), imphash: 'd'.repeat(32) },
});

function flowFrom(port: number, kind: FlowKind = 'connect', ip = IP): Flow {
  const f = new Flow(kind, true);
  f.set('source.ip', ip);
  f.set('source.port', port);
  f.set('network.transport', kind === 'dns' ? 'udp' : 'tcp');
  return f;
}

/** A store where IP is already a managed client (it sent a network event from another port). */
function managedStore(): HintStore {
  const store = createMemoryHintStore({ windowMs: 120_000 });
  store.put(net(1, Date.now()));
  return store;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

afterEach(() => {
  vi.useRealTimers();
});

describe('attach', () => {
  it('fills process.*, user.*, host.name and egress.attribution from the nearest hint, and reports the lag', () => {
    const store = managedStore();
    const lags: Array<[number, AttributedWhen]> = [];
    const attr = createAttribution(store, { onAttributed: (lag, _m, when) => lags.push([lag, when]) });
    const flow = flowFrom(50000);
    store.put(EID1);
    store.put(net(50000, flow.startedMs + 1_500));
    expect(attr.attach(flow)).toBe(true);
    expect(Object.fromEntries(flow.fields())).toMatchObject({
      'process.name': 'rundll32.exe',
      'process.executable': 'C:\\Windows\\System32\\rundll32.exe',
      'process.pid': 4242,
      'process.entity_id': '{11111111-2222-3333-4444-555555555555}',
      'process.parent.name': 'cmd.exe',
      'process.parent.executable': 'C:\\Windows\\System32\\cmd.exe',
      'process.command_line': 'rundll32.exe payload.dll,Run',
      'process.pe.original_file_name': 'RUNDLL32.EXE',
      'process.hash.md5': 'a'.repeat(32),
      'process.hash.sha1': 'c'.repeat(40),
      'process.hash.sha256': 'b'.repeat(64),
      'process.pe.imphash': 'd'.repeat(32),
      'user.name': 'alice',
      'user.domain': 'CORP',
      'host.name': 'pc1.corp.example',
      'egress.attribution': 'telemetry',
    });
    expect(lags).toEqual([[1_500, 'lookup']]);
    attr.attach(flow); // every stage calls attach: the lag is reported once
    expect(lags).toHaveLength(1);
  });

  it('never overwrites: the authenticated user stays, a different telemetry user adds no domain', () => {
    const store = managedStore();
    const attr = createAttribution(store);
    const flow = flowFrom(50001);
    flow.set('user.name', 'bob');
    store.put(net(50001, flow.startedMs));
    expect(attr.attach(flow)).toBe(true);
    expect(flow.get('user.name')).toBe('bob');
    expect(flow.get('user.domain')).toBeUndefined();
    const same = flowFrom(50002);
    same.set('user.name', 'ALICE');
    store.put(net(50002, same.startedMs));
    attr.attach(same);
    expect([same.get('user.name'), same.get('user.domain')]).toEqual(['ALICE', 'CORP']);
  });

  it('a process named by another source (header claim) keeps its process.* and attribution', () => {
    const store = managedStore();
    const attr = createAttribution(store);
    const flow = flowFrom(50003);
    flow.set('process.name', 'chrome.exe');
    flow.set('egress.attribution', 'header');
    store.put(net(50003, flow.startedMs));
    attr.attach(flow);
    expect(flow.get('process.name')).toBe('chrome.exe');
    expect(flow.get('process.executable')).toBeUndefined();
    expect(flow.get('egress.attribution')).toBe('header');
  });

  it('unmanaged clients: no hint, no memory of the flow, isManaged false', () => {
    const store = createMemoryHintStore();
    const attr = createAttribution(store);
    const flow = flowFrom(40000, 'connect', '10.7.7.7');
    expect(attr.isManaged('10.7.7.7')).toBe(false);
    expect(attr.attach(flow)).toBe(false);
    attr.flowEnded(flow);
    expect(attr.stats()).toEqual({ waiting: 0, remembered: 0 });
  });

  it('a DNS flow is attributed by the EID 22 of its host (the UDP packet itself comes from svchost)', () => {
    const store = managedStore();
    const attr = createAttribution(store);
    const flow = flowFrom(53000, 'dns');
    flow.set('dns.question.name', 'c2.example.net');
    store.put(net(53000, flow.startedMs, { protocol: 'udp', image: 'C:\\Windows\\System32\\svchost.exe', processName: 'svchost.exe', processGuid: '{22222222-2222-3333-4444-555555555555}' }));
    store.put({ ...EID1, kind: 'dns', eventId: 22, timeMs: flow.startedMs, queryName: 'c2.example.net', queryStatus: 0, queryResults: [] } as never);
    expect(attr.attach(flow)).toBe(true);
    expect(flow.get('process.name')).toBe('rundll32.exe');
  });
});

describe('waitFor', () => {
  it('resolves true as soon as the matching event is stored, and leaves no timer behind', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const store = managedStore();
    const whens: AttributedWhen[] = [];
    const attr = createAttribution(store, { onAttributed: (_l, _m, w) => whens.push(w) });
    const flow = flowFrom(50010);
    const waiting = attr.waitFor(flow, 250);
    expect(attr.stats().waiting).toBe(1);
    expect(vi.getTimerCount()).toBe(1);
    store.put(net(50010, flow.startedMs + 20));
    expect(await waiting).toBe(true);
    expect(flow.get('process.name')).toBe('rundll32.exe');
    expect(attr.stats().waiting).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(whens).toEqual(['wait']);
  });

  it('resolves false after the budget when nothing matches (an event outside the window does not count)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const store = managedStore();
    const attr = createAttribution(store);
    const flow = flowFrom(50011);
    let settled: boolean | null = null;
    void attr.waitFor(flow, 100).then((v) => (settled = v));
    store.put(net(50011, flow.startedMs - 200_000)); // port reuse long ago: not this flow
    await tick();
    expect(settled).toBeNull();
    vi.advanceTimersByTime(99);
    await tick();
    expect(settled).toBeNull();
    vi.advanceTimersByTime(1);
    await tick();
    expect(settled).toBe(false);
    expect(flow.get('process.name')).toBeUndefined();
    expect(attr.stats().waiting).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('answers at once when the hint is already there, when the client is unmanaged, or when the waiter table is full', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const store = managedStore();
    const attr = createAttribution(store, { maxWaiters: 2 });
    const ready = flowFrom(50020);
    store.put(net(50020, ready.startedMs));
    expect(await attr.waitFor(ready, 1_000)).toBe(true);
    expect(await attr.waitFor(flowFrom(1, 'connect', '10.8.8.8'), 1_000)).toBe(false);
    void attr.waitFor(flowFrom(50021), 1_000);
    void attr.waitFor(flowFrom(50022), 1_000);
    expect(await attr.waitFor(flowFrom(50023), 1_000)).toBe(false);
    expect(attr.stats().waiting).toBe(2);
    expect(vi.getTimerCount()).toBe(2);
    attr.close();
    expect(attr.stats().waiting).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('hintWaitMs caps what a caller asks for', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const attr = createAttribution(managedStore(), { hintWaitMs: 50 });
    let settled: boolean | null = null;
    void attr.waitFor(flowFrom(50030), 10_000).then((v) => (settled = v));
    vi.advanceTimersByTime(50);
    await tick();
    expect(settled).toBe(false);
  });
});

describe('hints that come after the decision or after the record', () => {
  it('a live flow that missed its hint gets it in place when it arrives (replacing attribution none)', async () => {
    const store = managedStore();
    const whens: AttributedWhen[] = [];
    const attr = createAttribution(store, { onAttributed: (_l, _m, w) => whens.push(w) });
    const flow = flowFrom(50040);
    expect(attr.attach(flow)).toBe(false);
    flow.set('egress.attribution', 'none'); // what the pipeline writes when the wait ran out
    store.put(net(50040, flow.startedMs + 1_000));
    await tick();
    expect(flow.get('process.name')).toBe('rundll32.exe');
    expect(flow.get('egress.attribution')).toBe('telemetry');
    expect(whens).toEqual(['live']);
  });

  it('a hint after the record: onLateHint exactly once, the ended flow untouched', async () => {
    const store = managedStore();
    const late: Array<[Flow, Attribution]> = [];
    const attr = createAttribution(store, { onLateHint: (f, a) => late.push([f, a]) });
    const flow = flowFrom(50050);
    attr.attach(flow);
    flow.ended = true;
    attr.flowEnded(flow);
    expect(attr.stats().remembered).toBe(1);
    store.put(net(50050, flow.startedMs + 3_000));
    await tick();
    store.put(net(50050, flow.startedMs + 4_000, { processGuid: '{33333333-2222-3333-4444-555555555555}' }));
    await tick();
    attr.flowEnded(flow);
    expect(late).toHaveLength(1);
    expect(late[0]?.[0]).toBe(flow);
    expect(late[0]?.[1]).toMatchObject({ processName: 'rundll32.exe', eventTimeMs: flow.startedMs + 3_000 });
    expect(flow.get('process.name')).toBeUndefined();
    expect(attr.stats().remembered).toBe(0);
  });

  it('a hint stored but not attached before the record is reported when the flow ends', () => {
    const store = managedStore();
    const late: Flow[] = [];
    const attr = createAttribution(store, { onLateHint: (f) => late.push(f) });
    const flow = flowFrom(50060);
    store.put(net(50060, flow.startedMs));
    attr.flowEnded(flow); // the pipeline never attached (e.g. its hint stage was already closed)
    expect(late).toEqual([flow]);
    const attributed = flowFrom(50061);
    store.put(net(50061, attributed.startedMs));
    attr.attach(attributed);
    attr.flowEnded(attributed);
    expect(late).toHaveLength(1);
  });

  it('ended flows are remembered a window only, in a bounded table', async () => {
    let t = Date.now();
    const store = createMemoryHintStore({ windowMs: 1_000, now: () => t });
    store.put(net(1, t));
    const late: Flow[] = [];
    const attr = createAttribution(store, { onLateHint: (f) => late.push(f), recentFlows: 3, now: () => t });
    for (let p = 60000; p < 60005; p++) attr.flowEnded(flowFrom(p));
    expect(attr.stats().remembered).toBe(3);
    const flow = flowFrom(60010);
    attr.flowEnded(flow);
    t += 1_001;
    store.put(net(60010, flow.startedMs));
    await tick();
    expect(late).toEqual([]);
  });
});

describe('through the pipeline (HintSource contract)', () => {
  it('a Sysmon EID 3 posted 20 ms after the CONNECT decides a process.name rule; the record carries the process', async () => {
    const { Pipeline } = await import('../../../src/flow/pipeline.js');
    const { createPolicyView } = await import('../../../src/policy/evaluate.js');
    const { createDestinationGuard, DEFAULT_INTERNAL_CIDRS } = await import('../../../src/net/address-class.js');
    const { defaultScorers } = await import('../../../src/scoring/scorers.js');
    const { createScoring } = await import('../../../src/scoring/score.js');
    const { compileYaml } = await import('../policy/policy-kit.js');
    const { ingestHints } = await import('../../../src/enrich/hint-ingest.js');
    const store = managedStore();
    const attr = createAttribution(store);
    const records: Flow[] = [];
    const pipeline = new Pipeline({
      policy: () => createPolicyView(compileYaml('version: 1\nrules:\n  - id: lolbin\n    when: { process.name: rundll32.exe }\n    action: block\n')),
      resolver: { resolve: () => Promise.resolve([{ address: '93.184.216.34', family: 4 as const }]) },
      addresses: createDestinationGuard({ internal: DEFAULT_INTERNAL_CIDRS }),
      hints: attr,
      hintWaitMs: 500,
      enrichers: [],
      scoring: createScoring({ extractors: [], scorers: defaultScorers }),
      observe: (f) => {
        records.push(f);
        attr.flowEnded(f);
      },
    });
    const flow = pipeline.open('connect', IP, 51234);
    flow.set('destination.domain', 'c2.example');
    flow.set('destination.port', 8443);
    const utc = new Date(flow.startedMs).toISOString().replace('T', ' ').replace('Z', '');
    setTimeout(() => {
      const body = JSON.stringify({ EventID: 3, UtcTime: utc, Computer: 'PC1', ProcessGuid: '{11111111-2222-3333-4444-555555555555}', ProcessId: '4242', Image: 'C:\\Windows\\System32\\rundll32.exe', User: 'CORP\\alice', Protocol: 'tcp', SourceIp: IP, SourcePort: '51234', DestinationIp: '10.9.9.9', DestinationPort: '3128' });
      ingestHints(body, 'application/x-ndjson', store, Date.now());
    }, 20);
    const started = Date.now();
    expect(await pipeline.decide(flow, 'connect')).toMatchObject({ status: 'final', verdict: 'block', ruleId: 'lolbin' });
    expect(Date.now() - started).toBeLessThan(400);
    pipeline.end(flow);
    expect(Object.fromEntries(records[0]?.fields() ?? [])).toMatchObject({ 'process.name': 'rundll32.exe', 'process.pid': 4242, 'user.name': 'alice', 'egress.attribution': 'telemetry' });
    expect(attr.stats()).toEqual({ waiting: 0, remembered: 0 });
  });
});

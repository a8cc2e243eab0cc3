import { describe, expect, it } from 'vitest';
import { createMemoryHintStore } from '../../../src/enrich/hint-store.js';
import { createDnsMemory } from '../../../src/enrich/dns-memory.js';
import { dnsShares, shareDnsMemory, shareHintStore } from '../../../src/cluster/share.js';
import { createWorkerLink, type WorkerChannel } from '../../../src/cluster/worker-link.js';
import { isWorkerMessage, type PrimaryMessage, type WorkerMessage } from '../../../src/cluster/messages.js';
import { networkEvent } from '../../helpers/hint-events.js';

/**
 * Three workers and a primary that fans `share` out to every worker but the sender (what src/cluster/primary.ts
 * does), connected in memory. `shares` counts the share messages the primary received.
 */
function threeWorkers(): { links: ReturnType<typeof createWorkerLink>[]; shares: () => number; settle: () => Promise<void> } {
  const listeners: ((m: unknown) => void)[] = [];
  let shares = 0;
  const channel = (me: number): WorkerChannel => ({
    send(message: WorkerMessage, done) {
      expect(isWorkerMessage(message)).toBe(true);
      if (message.kind === 'share') {
        shares++;
        const out: PrimaryMessage = { kind: 'share', hints: message.hints, dns: message.dns };
        // structuredClone: what crosses a real channel is a copy.
        listeners.forEach((deliver, i) => i !== me && setImmediate(() => deliver(structuredClone(out))));
      }
      done(null);
    },
    onMessage(listener) {
      listeners[me] = listener;
    },
  });
  const links = [0, 1, 2].map((i) => createWorkerLink(channel(i), i + 1));
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
  };
  return { links, shares: () => shares, settle };
}

describe('hints stored by one worker reach every worker', () => {
  it('a put on worker 1 is found by workers 2 and 3; nothing comes back, nothing is stored twice', async () => {
    const now = { t: 1_000_000 };
    const { links, shares, settle } = threeWorkers();
    const inner = links.map(() => createMemoryHintStore({ now: () => now.t }));
    const stores = links.map((link, i) => shareHintStore(inner[i] ?? createMemoryHintStore(), link));
    stores[0]?.put(networkEvent(now.t, { sourcePort: 50001 }));
    stores[0]?.put(networkEvent(now.t, { sourcePort: 50002 }));
    await settle();
    expect(shares()).toBe(1); // both events of one turn in one message
    for (const s of stores) {
      expect(s.findConnection('10.1.2.3', 50001, now.t)?.processName).toBe('rundll32.exe');
      expect(s.findConnection('10.1.2.3', 50002, now.t)?.processName).toBe('rundll32.exe');
      expect(s.size().network).toBe(2);
      expect(s.isManaged('10.1.2.3')).toBe(true);
    }
  });

  it('listeners of the receiving worker hear the shared event (a flow waiting for its hint gets it)', async () => {
    const now = { t: 2_000_000 };
    const { links, settle } = threeWorkers();
    const stores = links.map((link) => shareHintStore(createMemoryHintStore({ now: () => now.t }), link));
    const heard: number[] = [];
    stores[2]?.onNetworkEvent((e) => heard.push(e.sourcePort));
    stores[1]?.put(networkEvent(now.t, { sourcePort: 50003 }));
    await settle();
    expect(heard).toEqual([50003]);
  });
});

describe('DNS answers given by one worker reach every worker', () => {
  it('only A and AAAA records are shared, one item per address', () => {
    expect(
      dnsShares('10.0.0.5', 'c2.example', [
        { name: 'c2.example', type: 'CNAME', ttl: 60, data: 'cdn.example' },
        { name: 'cdn.example', type: 'A', ttl: 60, data: '192.0.2.7' },
        { name: 'cdn.example', type: 'AAAA', ttl: 60, data: '2001:db8::7' },
        { name: 'cdn.example', type: 'TXT', ttl: 60, data: 'x' },
      ]),
    ).toEqual([
      ['10.0.0.5', 'c2.example', '192.0.2.7'],
      ['10.0.0.5', 'c2.example', '2001:db8::7'],
    ]);
  });

  it('an answer remembered on worker 1 names the address on workers 2 and 3, for that client', async () => {
    const { links, shares, settle } = threeWorkers();
    const inner = links.map(() => createDnsMemory({ maxAddresses: 100, maxClientAddresses: 100, ttlMs: 60_000 }));
    const shared = links.map((link, i) => shareDnsMemory(inner[i] ?? createDnsMemory({ maxAddresses: 1, maxClientAddresses: 1, ttlMs: 1 }), link));
    shared[0]?.rememberAnswers('10.0.0.5', 'c2.example', [
      { name: 'c2.example', type: 'A', ttl: 60, data: '192.0.2.7' },
      { name: 'c2.example', type: 'AAAA', ttl: 60, data: '2001:db8::7' },
    ]);
    shared[0]?.rememberAnswers('10.0.0.5', 'txt.example', [{ name: 'txt.example', type: 'TXT', ttl: 60, data: 'x' }]);
    await settle();
    expect(shares()).toBe(1);
    for (const m of inner) {
      expect(m.namesFor('192.0.2.7')).toEqual(['c2.example']);
      expect(m.namesFor('2001:db8::7')).toEqual(['c2.example']);
      expect(m.wasGiven('10.0.0.5', '192.0.2.7')).toBe(true);
      expect(m.wasGiven('10.0.0.6', '192.0.2.7')).toBe(false);
      expect(m.sizes().addresses).toBe(2);
    }
  });
});

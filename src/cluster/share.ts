/**
 * State that every worker of a cluster must see, whichever worker learnt it (`proxy.workers` > 1):
 *
 *  - hint events (POST /v1/hints lands on one worker; the flow they attribute may land on any other);
 *  - DNS answers the forwarder gave (a client resolves through worker A, then connects through worker B, whose
 *    `destination.domain` and `egress.destination.resolved_before` come from that answer).
 *
 * The wrappers below store locally first, then hand the item to the link, which batches everything of one event
 * loop turn into one message; the primary passes it to every other worker, which stores it in the inner store
 * directly — never through the wrapper again, so nothing loops or arrives twice. A shared (Redis) hint store
 * already reaches every worker and is not wrapped (src/cli/start.ts).
 */
import type { HintEvent } from '../enrich/hint-event.js';
import type { HintStore } from '../enrich/hint-store.js';
import type { DnsMemory } from '../enrich/dns-memory.js';
import type { DnsAnswer } from '../parsers/dns-message.js';
import type { DnsShare } from './messages.js';

/** The part of the worker's link the wrappers use (src/cluster/worker-link.ts). */
export interface SharePort {
  shareHints(events: readonly HintEvent[]): void;
  onHints(apply: (events: readonly HintEvent[]) => void): void;
  shareDns(items: readonly DnsShare[]): void;
  onDns(apply: (items: readonly DnsShare[]) => void): void;
}

/** A hint store whose `put` also reaches the other workers; events from them go to `inner` as they are. */
export function shareHintStore(inner: HintStore, port: SharePort): HintStore {
  port.onHints((events) => {
    for (const event of events) {
      // The memory store is synchronous; a Promise here would be a store this wrapper is never used with.
      const done = inner.put(event);
      if (done !== undefined) done.catch(() => undefined);
    }
  });
  return {
    get windowMs() {
      return inner.windowMs;
    },
    put(event) {
      const done = inner.put(event);
      port.shareHints([event]);
      return done;
    },
    findConnection: (sourceIp, sourcePort, atMs, transport) => inner.findConnection(sourceIp, sourcePort, atMs, transport),
    findDnsQuery: (hostOrSourceIp, name, atMs) => inner.findDnsQuery(hostOrSourceIp, name, atMs),
    isManaged: (sourceIp) => inner.isManaged(sourceIp),
    onNetworkEvent: (listener) => inner.onNetworkEvent(listener),
    size: () => inner.size(),
    evictions: () => inner.evictions(),
    sweep: () => inner.sweep(),
    close: () => inner.close(),
  };
}

/** The A/AAAA answers of one reply, as shared items (other record types say nothing about an address). */
export function dnsShares(client: string, questionName: string, answers: readonly DnsAnswer[]): DnsShare[] {
  const items: DnsShare[] = [];
  for (const a of answers) if (a.type === 'A' || a.type === 'AAAA') items.push([client, questionName, a.data]);
  return items;
}

/**
 * The DNS memory as the DNS listener sees it: answers it remembers also reach the other workers. Lookups (the
 * enricher) keep using `inner`, which holds both this worker's answers and the others'.
 */
export function shareDnsMemory(inner: DnsMemory, port: SharePort): DnsMemory {
  port.onDns((items) => {
    for (const [client, name, address] of items) {
      inner.rememberAnswers(client, name, [{ name, type: address.includes(':') ? 'AAAA' : 'A', ttl: 0, data: address }]);
    }
  });
  return {
    rememberAnswers(client, questionName, answers) {
      inner.rememberAnswers(client, questionName, answers);
      const items = dnsShares(client, questionName, answers);
      if (items.length > 0) port.shareDns(items);
    },
    rememberResolved: (host, addresses) => inner.rememberResolved(host, addresses),
    namesFor: (ip) => inner.namesFor(ip),
    wasGiven: (client, ip) => inner.wasGiven(client, ip),
    enricher: inner.enricher,
    sizes: () => inner.sizes(),
    clear: () => inner.clear(),
  };
}

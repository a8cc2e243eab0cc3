/**
 * The name↔IP memory: which names DNS answers gave for an address, and which client was given which address.
 *
 * Every A/AAAA record the forwarder passes to a client, and every answer the proxy's own resolver gets, is
 * remembered (address → names, most recent first) for `ttlMs` from the last answer that gave it. That lets the
 * proxy judge a CONNECT to a bare IP by the name behind it (`destination.domain`), and tell when a client
 * connects to an address that no DNS answer in the window gave it (`egress.destination.resolved_before: false`) —
 * software that skips DNS, or an address baked into a payload.
 *
 * Both tables are lru-cache instances with a size bound and a TTL: memory stays bounded whatever the traffic.
 * The window is deliberately longer than typical record TTLs: clients keep connections and cached answers past
 * the TTL, and a miss here would raise a false "never resolved".
 */
import { LRUCache } from 'lru-cache';
import type { Enricher } from '../flow/pipeline.js';
import type { Flow } from '../flow/flow.js';
import type { DnsAnswer } from '../parsers/dns-message.js';
import { entryBound } from './bounded-lru.js';

export interface DnsMemoryOptions {
  /** Addresses remembered (address → names). */
  readonly maxAddresses: number;
  /** (client, address) pairs remembered. */
  readonly maxClientAddresses: number;
  /** How long an answer is remembered after it was last given, in milliseconds. */
  readonly ttlMs: number;
  /** Names kept per address (CDNs put many names on one address); default 8. */
  readonly maxNamesPerAddress?: number;
  /**
   * Whether clients get their DNS answers from this proxy's forwarder (dns.listen set). When they do not,
   * "no answer gave this client the address" says nothing, and egress.destination.resolved_before is left unset.
   * Default true.
   */
  readonly clientAnswers?: boolean;
  /** Clock for the TTLs (tests pass a fake one); default performance.now. */
  readonly now?: () => number;
}

export interface DnsMemory {
  /** A/AAAA records of an answer given to `client` for `questionName`. Other record types are ignored. */
  rememberAnswers(client: string, questionName: string, answers: readonly DnsAnswer[]): void;
  /** Addresses the proxy's own resolver got for `host` (no client: the proxy asked for itself). */
  rememberResolved(host: string, addresses: readonly { readonly address: string }[]): void;
  /** Names DNS gave for `ip` within the window, most recent first; undefined when none. */
  namesFor(ip: string): readonly string[] | undefined;
  /** Whether a DNS answer within the window gave `ip` to `client`. */
  wasGiven(client: string, ip: string): boolean;
  readonly enricher: Enricher;
  /** Entries held, for the egress_dns_memory_entries gauge. */
  sizes(): { readonly addresses: number; readonly clientAddresses: number };
  clear(): void;
}

const DEFAULT_NAMES_PER_ADDRESS = 8;
/** A get that also restarts the entry's TTL: "remembered for ttlMs from the last answer that gave it". */
const REFRESH = { updateAgeOnGet: true } as const;

export function createDnsMemory(opts: DnsMemoryOptions): DnsMemory {
  const maxNames = opts.maxNamesPerAddress ?? DEFAULT_NAMES_PER_ADDRESS;
  const perf = opts.now === undefined ? undefined : { now: opts.now };
  const ttl = Math.max(1, Math.floor(opts.ttlMs));
  // ttlResolution 0: with a fake clock, a cached "now" would make expiry depend on call timing.
  const base = { ttl, updateAgeOnGet: false, ...(perf === undefined ? {} : { perf, ttlResolution: 0 }) };
  const names = new LRUCache<string, string[]>({ ...entryBound(Math.max(1, opts.maxAddresses)), ...base });
  const given = new LRUCache<string, true>({ ...entryBound(Math.max(1, opts.maxClientAddresses)), ...base });

  function rememberName(ip: string, name: string): void {
    // One cache operation per answer: the get restarts the entry's TTL, and the list is changed in place.
    const list = names.get(ip, REFRESH);
    if (list === undefined) {
      names.set(ip, [name]);
      return;
    }
    const at = list.indexOf(name);
    if (at === 0) return;
    if (at > 0) list.splice(at, 1);
    list.unshift(name);
    if (list.length > maxNames) list.length = maxNames;
  }

  const memory: DnsMemory = {
    rememberAnswers(client, questionName, answers) {
      for (const answer of answers) {
        if (answer.type !== 'A' && answer.type !== 'AAAA') continue;
        // The name the client asked for is the one its later connection is about (a CNAME chain's last owner
        // is a CDN name nobody wrote a rule for).
        rememberName(answer.data, questionName);
        given.set(`${client} ${answer.data}`, true);
      }
    },
    rememberResolved(host, addresses) {
      for (const a of addresses) rememberName(a.address, host);
    },
    namesFor(ip) {
      const list = names.get(ip);
      return list === undefined || list.length === 0 ? undefined : list;
    },
    wasGiven(client, ip) {
      return given.has(`${client} ${ip}`);
    },
    enricher: {
      name: 'dns-memory',
      stages: ['connect', 'http-request'],
      enrich(flow: Flow): void {
        if (flow.kind === 'dns') return;
        const ip = flow.get('destination.ip');
        // A named target keeps its name, and the proxy resolved it itself: nothing to add.
        if (ip === undefined || flow.get('destination.domain') !== undefined) return;
        const known = memory.namesFor(ip);
        // url.original keeps the target as the client sent it (the bare IP).
        if (known !== undefined) flow.set('destination.domain', known[0]);
        const client = flow.get('source.ip');
        if (client !== undefined && opts.clientAnswers !== false) flow.set('egress.destination.resolved_before', memory.wasGiven(client, ip));
      },
    },
    sizes() {
      return { addresses: names.size, clientAddresses: given.size };
    },
    clear() {
      names.clear();
      given.clear();
    },
  };
  return memory;
}

/**
 * Names whose DNS queries raised a signal for a client (DGA-like, tunnelling, NXDOMAIN burst): the HTTP and TLS
 * flows that follow to the same name from the same client carry that evidence (`dns_flagged`). Bounded: an
 * LRU of clients with a TTL, and a few names per client (the newest kept).
 */
import { LRUCache } from 'lru-cache';

export interface DnsFlagOptions {
  readonly maxClients?: number;
  readonly namesPerClient?: number;
  readonly ttlMs?: number;
}

interface Flagged {
  readonly name: string;
  readonly why: string;
}

export class DnsFlags {
  readonly #clients: LRUCache<string, Flagged[]>;
  readonly #namesPerClient: number;

  constructor(opts: DnsFlagOptions = {}) {
    this.#clients = new LRUCache({ max: opts.maxClients ?? 10_000, ttl: opts.ttlMs ?? 3_600_000, updateAgeOnGet: false });
    this.#namesPerClient = opts.namesPerClient ?? 32;
  }

  /** `domain` is the registrable domain of the flagged query (or the whole name); `why` the signal it raised. */
  remember(client: string, domain: string, why: string): void {
    const name = domain.toLowerCase();
    const names = this.#clients.get(client);
    if (names === undefined) {
      this.#clients.set(client, [{ name, why }]);
      return;
    }
    if (names.some((f) => f.name === name)) return;
    if (names.length >= this.#namesPerClient) names.shift();
    names.push({ name, why });
    this.#clients.set(client, names);
  }

  /** The signal that flagged `host` (a flagged domain of this client or a name under one), or null. */
  flaggedBy(client: string, host: string): string | null {
    const names = this.#clients.get(client);
    if (names === undefined) return null;
    const h = host.toLowerCase();
    for (const { name, why } of names) {
      if (h === name || (h.length > name.length && h.endsWith(name) && h.charCodeAt(h.length - name.length - 1) === 0x2e)) return why;
    }
    return null;
  }

  get size(): number {
    return this.#clients.size;
  }
}

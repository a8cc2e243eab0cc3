/**
 * How the proxy resolves destination names: c-ares (`node:dns` Resolver) against the configured servers, never the
 * OS resolver (getaddrinfo would consult /etc/hosts and nsswitch, block the libuv thread pool, and hide TTLs).
 *
 * The answer it returns is the one the proxy classifies and then connects to; there is no second lookup between
 * check and connect, which is what defeats DNS rebinding (issue 2, item 4). Answers are cached for their TTL
 * (capped), NXDOMAIN/NODATA for a short negative TTL (RFC 2308), and concurrent lookups of one name share a query.
 */
import { Resolver } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { EgressError } from '../errors.js';
import { normalizeHost } from './target.js';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
  /** how long this answer may still be used: min(record TTL, maxTtlMs), counting down while cached. */
  readonly ttlMs: number;
}

export interface ResolverOptions {
  /** "ip:port" (or "[v6]:port", or a bare ip for port 53); empty = the nameservers of /etc/resolv.conf. */
  readonly servers: readonly string[];
  /** c-ares per-try timeout; c-ares backs off, so the total wait is a small multiple of it. */
  readonly timeoutMs: number;
  /** most names kept in the cache; 0 disables caching. */
  readonly cacheSize: number;
  /** cap on how long an answer is cached, whatever its TTL. */
  readonly maxTtlMs: number;
  /** tries per server (c-ares); default 2. */
  readonly tries?: number;
  /** how long NXDOMAIN and "no A or AAAA records" are cached; default 5 s (capped by maxTtlMs). */
  readonly negativeTtlMs?: number;
  /** where the nameservers come from when `servers` is empty; default /etc/resolv.conf (tests point it elsewhere). */
  readonly resolvConfPath?: string;
  /** called with each fresh answer from DNS (not cache hits, not IP literals or localhost). */
  readonly onAnswer?: (host: string, addresses: readonly ResolvedAddress[]) => void;
}

export interface DestinationResolver {
  /**
   * Resolves `host` to its addresses, IPv4 first. IP literals (any spelling normalizeHost accepts) come back as
   * they are, `localhost` and `*.localhost` as loopback, both without a query. Rejects with EgressError
   * RESOLVE_FAILED (no answer) or BAD_TARGET (`host` is not a valid name).
   */
  resolve(host: string): Promise<ResolvedAddress[]>;
  /** the servers queries go to, once they are known (after /etc/resolv.conf was read). */
  servers(): Promise<readonly string[]>;
  /** cancels outstanding queries (they reject) and empties the cache; later calls reject. */
  close(): void;
}

interface CachedAddress {
  readonly address: string;
  readonly family: 4 | 6;
  readonly expiresAt: number;
}

type CacheEntry =
  | { readonly kind: 'answer'; readonly addresses: readonly CachedAddress[] }
  | { readonly kind: 'negative'; readonly reason: string };

const DEFAULT_TRIES = 2;
const DEFAULT_NEGATIVE_TTL_MS = 5_000;
const RESOLV_CONF = '/etc/resolv.conf';
/** resolv.conf(5): "If no nameserver entries are present, the default is to use the name server on the local machine." */
const FALLBACK_SERVERS: readonly string[] = ['127.0.0.1'];
const NAMESERVER_LINE = /^\s*nameserver\s+(\S+)/;

export function createResolver(opts: ResolverOptions): DestinationResolver {
  const tries = opts.tries ?? DEFAULT_TRIES;
  const negativeTtlMs = Math.min(opts.negativeTtlMs ?? DEFAULT_NEGATIVE_TTL_MS, opts.maxTtlMs);
  const dns = new Resolver({ timeout: opts.timeoutMs, tries });
  const cache = opts.cacheSize > 0 ? new LRUCache<string, CacheEntry>({ max: opts.cacheSize }) : null;
  const inflight = new Map<string, Promise<CacheEntry>>();
  let closed = false;

  // No query is sent before this settles: until setServers runs, c-ares would use whatever it read itself.
  const ready: Promise<readonly string[]> =
    opts.servers.length > 0
      ? Promise.resolve(applyServers(dns, opts.servers))
      : readNameservers(opts.resolvConfPath ?? RESOLV_CONF).then((found) => applyServers(dns, found));
  ready.catch(() => undefined); // surfaced by resolve() and servers(); never an unhandled rejection

  async function lookup(name: string): Promise<CacheEntry> {
    const servers = await ready;
    const [v4, v6] = await Promise.allSettled([dns.resolve4(name, { ttl: true }), dns.resolve6(name, { ttl: true })]);
    const now = performance.now();
    const addresses: CachedAddress[] = [];
    let ttlMs = opts.maxTtlMs;
    // IPv4 first: the proxy tries addresses in this order.
    if (v4.status === 'fulfilled') {
      for (const r of v4.value) {
        const ms = Math.min(r.ttl * 1000, opts.maxTtlMs);
        ttlMs = Math.min(ttlMs, ms);
        addresses.push({ address: r.address, family: 4, expiresAt: now + ms });
      }
    }
    if (v6.status === 'fulfilled') {
      for (const r of v6.value) {
        const ms = Math.min(r.ttl * 1000, opts.maxTtlMs);
        ttlMs = Math.min(ttlMs, ms);
        addresses.push({ address: r.address, family: 6, expiresAt: now + ms });
      }
    }
    const v4Code = v4.status === 'rejected' ? errorCode(v4.reason) : null;
    const v6Code = v6.status === 'rejected' ? errorCode(v6.reason) : null;
    if (addresses.length > 0) {
      const entry: CacheEntry = { kind: 'answer', addresses };
      const partial = isTransient(v4Code) || isTransient(v6Code);
      // One family failed for a passing reason (timeout, SERVFAIL): keep the half answer only briefly.
      remember(name, entry, partial ? Math.min(ttlMs, negativeTtlMs) : ttlMs);
      notify(name, entry, now);
      return entry;
    }
    // RFC 2308 §5: NXDOMAIN and NODATA are answers too, and are cached (for a short fixed time: c-ares does not
    // hand us the SOA minimum).
    if (v4Code === 'ENOTFOUND' || v6Code === 'ENOTFOUND') {
      return rememberNegative(name, 'NXDOMAIN');
    }
    if (v4Code === 'ENODATA' && v6Code === 'ENODATA') {
      return rememberNegative(name, 'no A or AAAA records');
    }
    const code = isTransient(v4Code) ? v4Code : v6Code;
    throw resolveFailed(name, describeFailure(code, servers));
  }

  function remember(name: string, entry: CacheEntry, ttlMs: number): void {
    // A TTL of 0 means "use once, do not cache" (RFC 1035 §3.2.1); lru-cache would read 0 as "forever".
    if (cache !== null && ttlMs >= 1) cache.set(name, entry, { ttl: Math.floor(ttlMs) });
  }

  function rememberNegative(name: string, reason: string): CacheEntry {
    const entry: CacheEntry = { kind: 'negative', reason };
    remember(name, entry, negativeTtlMs);
    return entry;
  }

  function notify(name: string, entry: CacheEntry, now: number): void {
    if (opts.onAnswer === undefined) return;
    try {
      opts.onAnswer(name, toAddresses(entry, name, now));
    } catch {
      // A broken observer must not break resolution; the answer stands.
    }
  }

  function toAddresses(entry: CacheEntry, name: string, now: number): ResolvedAddress[] {
    if (entry.kind === 'negative') throw resolveFailed(name, entry.reason);
    return entry.addresses.map((a) => ({
      address: a.address,
      family: a.family,
      ttlMs: Math.max(0, Math.round(a.expiresAt - now)),
    }));
  }

  async function resolve(host: string): Promise<ResolvedAddress[]> {
    if (closed) throw resolveFailed(String(host), 'the resolver is closed');
    const info = normalizeHost(host);
    if (info.ip !== null && info.family !== null) {
      return [{ address: info.ip, family: info.family, ttlMs: opts.maxTtlMs }];
    }
    const name = info.host;
    // RFC 6761 §6.3: "localhost." and names below it are loopback, answered without asking DNS.
    if (name === 'localhost' || name.endsWith('.localhost')) {
      return [
        { address: '127.0.0.1', family: 4, ttlMs: opts.maxTtlMs },
        { address: '::1', family: 6, ttlMs: opts.maxTtlMs },
      ];
    }
    const cached = cache?.get(name);
    if (cached !== undefined) return toAddresses(cached, name, performance.now());
    let pending = inflight.get(name);
    if (pending === undefined) {
      pending = lookup(name).finally(() => inflight.delete(name));
      inflight.set(name, pending);
    }
    const entry = await pending;
    return toAddresses(entry, name, performance.now());
  }

  return {
    resolve,
    servers: () => ready,
    close(): void {
      closed = true;
      dns.cancel();
      cache?.clear();
    },
  };
}

function applyServers(dns: Resolver, servers: readonly string[]): readonly string[] {
  try {
    dns.setServers(servers);
  } catch (err) {
    const list = servers.map((s) => JSON.stringify(s)).join(', ');
    throw new EgressError('CONFIG_INVALID', `resolver servers ${list} are not all "ip" or "ip:port"`, { cause: err });
  }
  return dns.getServers();
}

export async function readNameservers(path: string): Promise<readonly string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return FALLBACK_SERVERS;
  }
  const found: string[] = [];
  for (const line of text.split('\n')) {
    const ip = NAMESERVER_LINE.exec(line)?.[1];
    // A link-local server with a zone ("fe80::1%eth0") cannot be given to c-ares' setServers; skipped.
    if (ip !== undefined && isIP(ip) !== 0 && !ip.includes('%')) found.push(ip);
  }
  return found.length > 0 ? found : FALLBACK_SERVERS;
}

function errorCode(reason: unknown): string {
  if (typeof reason === 'object' && reason !== null && 'code' in reason && typeof reason.code === 'string') {
    return reason.code;
  }
  return 'EUNKNOWN';
}

/** A failure that says nothing about the name (the next query may well succeed), so it is never cached. */
function isTransient(code: string | null): code is string {
  return code !== null && code !== 'ENOTFOUND' && code !== 'ENODATA';
}

function describeFailure(code: string | null, servers: readonly string[]): string {
  const where = servers.join(', ');
  switch (code) {
    case 'ETIMEOUT':
      return `timeout (no answer from ${where})`;
    case 'ESERVFAIL':
      return `SERVFAIL from ${where}`;
    case 'EREFUSED':
      return `REFUSED by ${where}`;
    case 'ECONNREFUSED':
      return `connection refused by ${where}`;
    case 'ECANCELLED':
    case 'EDESTRUCTION':
      return 'cancelled (the resolver was closed)';
    case 'EBADRESP':
    case 'EFORMERR':
      return `malformed answer from ${where}`;
    default:
      return `${code ?? 'unknown error'} from ${where}`;
  }
}

function resolveFailed(name: string, reason: string): EgressError {
  return new EgressError('RESOLVE_FAILED', `could not resolve ${JSON.stringify(name.slice(0, 256))}: ${reason}`);
}

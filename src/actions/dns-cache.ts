/**
 * The DNS forwarder's answer cache (`dns.cache`, off by default): an upstream answer is kept for as long as its
 * records live, and the same question asked again is answered from here instead of upstream.
 *
 * The cache sits after the policy, never before it: a query is decided first (a blocked name is blocked whether
 * or not its answer is cached), and a hit goes through the same reply, record, memory, signal and metric path as
 * a forwarded answer; the record says it was a hit. It is the forwarder's cache for its clients, not a resolver:
 * it keeps whole messages as upstream sent them, not RRsets.
 *
 * - Key: the question (name lower-cased, type, class) and what else changes the answer: RD, CD (RFC 4035 §3.2.2:
 *   checking disabled gets data a validator would refuse), EDNS or not (RFC 6891 §7: an OPT in the answer only
 *   when the query had one) and DO (RFC 3225 §3: DNSSEC records only when asked for). A query with an EDNS Client
 *   Subnet option bypasses the cache (RFC 7871 §7.3.1: such an answer is for that subnet only).
 * - Lifetime: the smallest TTL of the message's records (RFC 1035 §3.2.1, RFC 2181 §5.2 and §8), at most
 *   `maxTtlMs`. Negative answers (NXDOMAIN, or NOERROR without answers: NODATA) live min(SOA TTL, SOA MINIMUM)
 *   (RFC 2308 §5), at most `negativeTtlMs`; without an SOA they are not cached (RFC 2308 §5: "SHOULD NOT").
 * - Never cached: any other RCODE (SERVFAIL, REFUSED …: RFC 2308 §7 allows at most 5 minutes for SERVFAIL, we
 *   keep none), truncated answers (RFC 2181 §9), signed messages (TSIG, SIG(0): signed for one client), a TTL of 0,
 *   answers over 16 KiB.
 * - A hit is a copy of the kept message with the client's ID, the client's spelling of the question (0x20
 *   clients compare the case they sent, draft-vixie-dnsext-dns0x20 §4) and every TTL lowered by the whole
 *   seconds spent in the cache (RFC 1035 §3.2.1: "the time interval that the resource record may be cached").
 * - EDNS options of upstream answers (cookies, padding, extended errors) are not kept: a cookie belongs to the
 *   client that asked (RFC 7873 §5.3), so a kept OPT carries none.
 *
 * Bounded: at most `size` answers (lru-cache, least recently used out first); an answer past its lifetime is
 * dropped when next looked up, and LRU eviction removes the rest.
 */
import { LRUCache } from 'lru-cache';
import {
  DNS_HEADER_LENGTH,
  RCODE,
  isSameQuestion,
  readRecordLayout,
  type DnsAnswer,
  type DnsMessageView,
  type DnsQuery,
  type DnsRecordLayout,
} from '../parsers/dns-message.js';
import { entryBound } from '../enrich/bounded-lru.js';

export type DnsCacheResult = 'hit' | 'miss';

export interface DnsCacheOptions {
  /** Answers kept (least recently used out beyond); 0 turns the cache off. */
  readonly size: number;
  /** Longest time an answer is kept, milliseconds, whatever its TTLs. */
  readonly maxTtlMs: number;
  /** Longest time a negative answer (NXDOMAIN, NODATA) is kept, milliseconds; 0: never kept. */
  readonly negativeTtlMs: number;
  /** Clock in milliseconds (tests pass a fake one). Default performance.now. */
  readonly now?: () => number;
  /** Every lookup's result (for a hit/miss counter). Queries that bypass the cache are not looked up. */
  readonly onLookup?: (result: DnsCacheResult) => void;
}

export interface DnsCacheHit {
  /** The answer for this client: its ID, its question as it spelled it, TTLs aged by the time in the cache. */
  readonly response: Buffer;
  /** The kept answer's view, its answers' TTLs aged the same way (for the record and the name↔IP memory). */
  readonly view: DnsMessageView;
}

export interface DnsCache {
  /** The cached answer to `query` (`raw`: its bytes as received), or null. */
  lookup(raw: Uint8Array, query: DnsQuery): DnsCacheHit | null;
  /**
   * Keeps `response`, the upstream's answer to `query` (`view`: its view with answers), when the rules above let
   * it; true when kept. Any bytes are safe here: what cannot be read is not kept.
   */
  store(query: DnsQuery, response: Uint8Array, view: DnsMessageView): boolean;
  /** Answers held (expired ones included until looked up or evicted). */
  readonly size: number;
  /** Lookups since start. */
  stats(): { readonly hits: number; readonly misses: number };
  clear(): void;
}

/** Messages larger than this are not kept (a DNSKEY set over TCP, say): memory per entry stays small. */
export const MAX_CACHED_MESSAGE = 16_384;

/** Header bits that change the answer (RFC 1035 §4.1.1 RD; RFC 4035 §3.2.2 CD). */
const FLAG_RD = 0x0100;
const FLAG_CD = 0x0010;
const FLAG_QR = 0x8000;
/** Key bits for EDNS and DO, below the header bits used. */
const KEY_EDNS = 1;
const KEY_DO = 2;

interface Entry {
  /** The message as kept: trimmed after its last record, OPT options removed. Never sent itself (copied). */
  readonly bytes: Buffer;
  readonly questionEnd: number;
  readonly ttlOffsets: readonly number[];
  /** The TTL at each offset when kept. */
  readonly ttls: readonly number[];
  readonly storedAt: number;
  readonly expiresAt: number;
  readonly view: DnsMessageView;
  /** The view of the last hit with TTLs aged by `agedBy` seconds: hits within one second share it. */
  agedBy: number;
  agedView: DnsMessageView;
}

/** The cache key of a query, or null when it must bypass the cache (EDNS Client Subnet). */
export function dnsCacheKey(query: DnsQuery): string | null {
  const opt = query.opt;
  if (opt !== null && opt.clientSubnet) return null;
  const bits = (query.header.flags & (FLAG_RD | FLAG_CD)) | (opt === null ? 0 : KEY_EDNS | (opt.dnssecOk ? KEY_DO : 0));
  const q = query.question;
  return `${bits}/${q.type}/${q.qclass}/${q.name}`;
}

function u32(buf: Uint8Array, at: number): number {
  return (((buf[at] as number) << 24) | ((buf[at + 1] as number) << 16) | ((buf[at + 2] as number) << 8) | (buf[at + 3] as number)) >>> 0;
}

function writeU32(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value >>> 24;
  buf[at + 1] = (value >>> 16) & 0xff;
  buf[at + 2] = (value >>> 8) & 0xff;
  buf[at + 3] = value & 0xff;
}

/** ASCII letters compared without case (RFC 4343 §3): the bytes of two spellings of one question. */
function sameIgnoringCase(a: Uint8Array, b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (x === y) continue;
    const lx = x >= 0x41 && x <= 0x5a ? x | 0x20 : x;
    const ly = y >= 0x41 && y <= 0x5a ? y | 0x20 : y;
    if (lx !== ly) return false;
  }
  return true;
}

/**
 * How long a message may be kept, milliseconds (0: not at all), by the rules in the header comment. RCODE and
 * flags come from the message's own bytes, not from what a caller says about them.
 */
export function cacheLifetimeMs(layout: DnsRecordLayout, maxTtlMs: number, negativeTtlMs: number): number {
  const { header, rcode } = layout;
  if ((header.flags & FLAG_QR) === 0 || header.opcode !== 0 || header.truncated || layout.signed) return 0;
  if (rcode !== RCODE.NOERROR && rcode !== RCODE.NXDOMAIN) return 0;
  const negative = rcode === RCODE.NXDOMAIN || header.ancount === 0;
  if (negative) {
    if (negativeTtlMs <= 0 || layout.soaMinimum === null) return 0;
    // RFC 2308 §5: the SOA's TTL and its MINIMUM, whichever is less (the SOA's TTL is among minTtl).
    return Math.min(Math.min(layout.minTtl, layout.soaMinimum) * 1000, negativeTtlMs);
  }
  return Math.min(layout.minTtl * 1000, maxTtlMs);
}

/** The answers of a view with TTLs lowered by `seconds` (never below 0). */
function agedAnswers(answers: readonly DnsAnswer[], seconds: number): DnsAnswer[] {
  return answers.map((a) => ({ name: a.name, type: a.type, ttl: Math.max(0, a.ttl - seconds), data: a.data }));
}

/** A cache, or null when `size` is 0 (the forwarder then asks upstream every time, as without one). */
export function createDnsCache(opts: DnsCacheOptions): DnsCache | null {
  if (!(opts.size > 0)) return null;
  const now = opts.now ?? (() => performance.now());
  const entries = new LRUCache<string, Entry>(entryBound(opts.size));
  let hits = 0;
  let misses = 0;

  function keep(query: DnsQuery, response: Uint8Array, view: DnsMessageView): boolean {
    if (response.length > MAX_CACHED_MESSAGE) return false;
    const key = dnsCacheKey(query);
    if (key === null) return false;
    let layout: DnsRecordLayout;
    try {
      layout = readRecordLayout(response);
    } catch {
      return false; // not a message we can read: not one we would serve again
    }
    // The key is the client's question; only an answer to exactly that question may be kept under it.
    const asked = layout.questions[0];
    if (layout.questions.length !== 1 || asked === undefined || !isSameQuestion(asked, query.question)) return false;
    const lifetime = cacheLifetimeMs(layout, opts.maxTtlMs, opts.negativeTtlMs);
    if (!(lifetime > 0)) return false;
    let bytes: Buffer;
    const opt = layout.opt;
    const optionBytes = opt === null ? 0 : opt.end - (opt.rdlengthAt + 2);
    if (opt !== null && optionBytes > 0) {
      // Options are dropped by cutting the message after the OPT's RDLENGTH, so the OPT must be the last record.
      if (opt.end !== layout.end) return false;
      bytes = Buffer.from(response.subarray(0, opt.rdlengthAt + 2));
      bytes[opt.rdlengthAt] = 0;
      bytes[opt.rdlengthAt + 1] = 0;
    } else {
      bytes = Buffer.from(response.subarray(0, layout.end));
    }
    const t = now();
    const ttls = layout.ttlOffsets.map((at) => u32(bytes, at));
    entries.set(key, {
      bytes,
      questionEnd: layout.questionEnd,
      ttlOffsets: layout.ttlOffsets,
      ttls,
      storedAt: t,
      expiresAt: t + lifetime,
      view,
      agedBy: 0,
      agedView: view,
    });
    return true;
  }

  return {
    lookup(raw, query) {
      const key = dnsCacheKey(query);
      if (key === null) return null;
      const entry = entries.get(key);
      const t = now();
      if (entry === undefined || t >= entry.expiresAt) {
        if (entry !== undefined) entries.delete(key);
        misses++;
        opts.onLookup?.('miss');
        return null;
      }
      hits++;
      opts.onLookup?.('hit');
      const out = Buffer.allocUnsafe(entry.bytes.length);
      entry.bytes.copy(out, 0);
      // The client's ID (RFC 1035 §4.1.1), and its question as it spelled it when that is the same question.
      out[0] = raw[0] as number;
      out[1] = raw[1] as number;
      const qEnd = query.questionEnd;
      if (qEnd === entry.questionEnd && qEnd <= raw.length && sameIgnoringCase(raw, out, DNS_HEADER_LENGTH, qEnd)) {
        for (let i = DNS_HEADER_LENGTH; i < qEnd; i++) out[i] = raw[i] as number;
      }
      const aged = Math.floor((t - entry.storedAt) / 1000);
      if (aged <= 0) return { response: out, view: entry.view };
      const { ttlOffsets, ttls } = entry;
      for (let i = 0; i < ttlOffsets.length; i++) writeU32(out, ttlOffsets[i] as number, Math.max(0, (ttls[i] as number) - aged));
      if (entry.agedBy !== aged) {
        entry.agedView = { ...entry.view, answers: agedAnswers(entry.view.answers, aged) };
        entry.agedBy = aged;
      }
      return { response: out, view: entry.agedView };
    },

    store(query, response, view) {
      return keep(query, response, view);
    },

    get size() {
      return entries.size;
    },

    stats() {
      return { hits, misses };
    },

    clear() {
      entries.clear();
    },
  };
}

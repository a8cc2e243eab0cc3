/**
 * DNS signals: what makes a query look like C2 — a generated name (DGA), data carried in subdomains
 * (tunnelling), bursts of TXT/NULL/ANY queries or of NXDOMAIN answers — each as a scorer with a reason in
 * plain words, folded into egress.score by the pipeline like every other scorer.
 *
 * The counting signals keep state per client and per (client, registrable domain), in lru-caches with a size
 * bound, over fixed windows. A query is counted once, by the `dns-query` enricher; the scorers only read the
 * counts taken then (they may run several times per flow).
 *
 * Unique subdomains are counted with linear counting (Whang et al., 1990) over a 4096-bit bitmap per pair:
 * 512 bytes per pair whatever the traffic, within a few percent up to several thousand distinct names. The
 * thresholds follow RITA's DNS tunnelling scoring (100/500/800/1000 unique subdomains per dataset): `unique`
 * (default 100), 5× and 10× it, within `windowMs` (default 1 h).
 */
import { LRUCache } from 'lru-cache';
import type { Enricher } from '../flow/pipeline.js';
import type { Flow } from '../flow/flow.js';
import type { Scorer, Signal } from './score.js';
import { entryBound } from '../enrich/bounded-lru.js';

export interface DnsSignalOptions {
  /** Window of the unique-subdomain count, milliseconds. */
  readonly windowMs: number;
  /** Unique subdomains of one registrable domain from one client within the window that raise the signal. */
  readonly uniqueSubdomains: number;
  /** Window of the TXT/NULL/ANY and NXDOMAIN counts, milliseconds. */
  readonly burstWindowMs: number;
  /** TXT, NULL and ANY queries from one client within the burst window that raise the signal. */
  readonly txtQueries: number;
  /** NXDOMAIN answers to one client within the burst window that raise the signal. */
  readonly nxdomainAnswers: number;
  /** Clients tracked (LRU beyond). Default 10000. */
  readonly maxClients?: number;
  /** (client, registrable domain) pairs tracked (LRU beyond). Default 20000 (10 MB of bitmaps at most). */
  readonly maxPairs?: number;
  /** Clock, milliseconds; tests pass a fake one. Default performance.now. */
  readonly now?: () => number;
}

export interface DnsSignals {
  /** Counts the query (stage dns-query) and snapshots the counts for the scorers. */
  readonly enricher: Enricher;
  readonly scorers: readonly Scorer[];
  /** The answer's RCODE name for a query from `client` (after forwarding). */
  observeAnswer(client: string, rcode: string): void;
  sizes(): { readonly clients: number; readonly pairs: number };
}

interface ClientCounts {
  start: number;
  txt: number;
  nxdomain: number;
}

interface PairCounts {
  start: number;
  readonly bits: Uint32Array;
  zeros: number;
  /** Queries with a data-like label (dataLikeLabel, or 40+ characters) within the burst window. */
  dataStart: number;
  dataQueries: number;
}

interface Snapshot {
  readonly uniqueSubdomains: number;
  readonly dataQueries: number;
  readonly txt: number;
  readonly nxdomain: number;
}

const BITMAP_BITS = 4096;
/**
 * Queries with data-like labels (hex, base32, random-looking 16+ characters, or 40+ characters) under one
 * registrable domain from one client within the burst window that make a tunnel. Chosen names seldom look like
 * that, and a client seldom asks ten of them of one domain in a minute; dnscat2 and iodine ask hundreds.
 */
const DATA_BURST = 10;
/** Query types that carry data rather than addresses; tunnels and C2 over DNS favour them. */
const DATA_TYPES: ReadonlySet<string> = new Set(['TXT', 'NULL', 'ANY']);

/** FNV-1a, then murmur3's fmix32 so the low bits (the bitmap index) are well mixed. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Linear counting estimate n ≈ −m·ln(V), V the fraction of zero bits; saturates when the bitmap is full. */
function estimate(pair: PairCounts): number {
  if (pair.zeros === 0) return BITMAP_BITS * Math.log(BITMAP_BITS);
  return Math.round(-BITMAP_BITS * Math.log(pair.zeros / BITMAP_BITS));
}

function formatWindow(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Math.round(ms / 1000)} s`;
}

export function createDnsSignals(opts: DnsSignalOptions): DnsSignals {
  const now = opts.now ?? (() => performance.now());
  const clients = new LRUCache<string, ClientCounts>(entryBound(opts.maxClients ?? 10_000));
  const pairs = new LRUCache<string, PairCounts>(entryBound(opts.maxPairs ?? 20_000));
  const snapshots = new WeakMap<Flow, Snapshot>();
  const unique = Math.max(1, opts.uniqueSubdomains);

  function clientCounts(client: string, t: number): ClientCounts {
    let c = clients.get(client);
    if (c === undefined || t - c.start >= opts.burstWindowMs) {
      c = { start: t, txt: 0, nxdomain: 0 };
      clients.set(client, c);
    }
    return c;
  }

  function countSubdomain(client: string, domain: string, subdomain: string, t: number, carriesData: boolean): { unique: number; data: number } {
    const key = `${client} ${domain}`;
    let p = pairs.get(key);
    if (p === undefined || t - p.start >= opts.windowMs) {
      p = { start: t, bits: new Uint32Array(BITMAP_BITS / 32), zeros: BITMAP_BITS, dataStart: t, dataQueries: 0 };
      pairs.set(key, p);
    }
    if (t - p.dataStart >= opts.burstWindowMs) {
      p.dataStart = t;
      p.dataQueries = 0;
    }
    if (carriesData) p.dataQueries++;
    const bit = hash32(subdomain) & (BITMAP_BITS - 1);
    const word = bit >>> 5;
    const mask = 1 << (bit & 31);
    const old = p.bits[word] as number;
    if ((old & mask) === 0) {
      p.bits[word] = old | mask;
      p.zeros--;
    }
    return { unique: estimate(p), data: p.dataQueries };
  }

  const enricher: Enricher = {
    name: 'dns-signals',
    stages: ['dns-query'],
    enrich(flow) {
      const client = flow.get('source.ip');
      if (client === undefined) return;
      const t = now();
      const counts = clientCounts(client, t);
      const type = flow.get('dns.question.type');
      if (type !== undefined && DATA_TYPES.has(type)) counts.txt++;
      const domain = flow.get('dns.question.registered_domain');
      const subdomain = flow.get('dns.question.subdomain');
      let uniqueSubdomains = 0;
      let dataQueries = 0;
      if (domain !== undefined && subdomain !== undefined) {
        // Hash lookups carry data by design; they are not counted as a tunnel's queries.
        const data = dataLikeLabel(subdomain);
        const carriesData = data === null ? (flow.get('egress.dns.longest_label') ?? 0) >= 40 : data.kind !== 'hash';
        ({ unique: uniqueSubdomains, data: dataQueries } = countSubdomain(client, domain, subdomain, t, carriesData));
      }
      snapshots.set(flow, { uniqueSubdomains, dataQueries, txt: counts.txt, nxdomain: counts.nxdomain });
    },
  };

  const tunnelling: Scorer = {
    name: 'dns-tunnelling',
    score(flow) {
      const s = snapshots.get(flow);
      if (s === undefined) return null;
      if (s.uniqueSubdomains < unique) {
        // A burst of queries whose labels look like encoded bytes, under one domain: a tunnel at work, long before
        // the hourly count of unique names fills up.
        if (s.dataQueries < DATA_BURST) return null;
        const domain = flow.get('dns.question.registered_domain') ?? '';
        return {
          signal: 'dns_tunnel',
          strength: 0.7,
          reason: `${s.dataQueries} queries with data-like labels under ${domain} from this client within ${formatWindow(opts.burstWindowMs)} (DNS tunnelling, threshold ${DATA_BURST})`,
        };
      }
      const strength = s.uniqueSubdomains >= unique * 10 ? 1 : s.uniqueSubdomains >= unique * 5 ? 0.7 : 0.4;
      const domain = flow.get('dns.question.registered_domain') ?? '';
      return {
        signal: 'dns_tunnel',
        strength,
        reason: `about ${s.uniqueSubdomains} unique subdomains of ${domain} from this client within ${formatWindow(opts.windowMs)} (DNS tunnelling threshold ${unique})`,
      };
    },
  };

  const dataTypes: Scorer = {
    name: 'dns-txt-volume',
    score(flow) {
      const s = snapshots.get(flow);
      if (s === undefined || s.txt < opts.txtQueries) return null;
      return { signal: 'dns_txt_burst', strength: 1, reason: `${s.txt} TXT/NULL/ANY queries from this client within ${formatWindow(opts.burstWindowMs)} (threshold ${opts.txtQueries})` };
    },
  };

  const nxdomainBurst: Scorer = {
    name: 'dns-nxdomain-burst',
    score(flow) {
      const s = snapshots.get(flow);
      if (s === undefined || s.nxdomain < opts.nxdomainAnswers) return null;
      return {
        signal: 'dns_nxdomain_burst',
        strength: 1,
        reason: `${s.nxdomain} NXDOMAIN answers to this client within ${formatWindow(opts.burstWindowMs)}, as when malware tries generated names (threshold ${opts.nxdomainAnswers})`,
      };
    },
  };

  return {
    enricher,
    scorers: [dgaName, longLabels, tunnelling, dataTypes, nxdomainBurst, unresolvedDestination],
    observeAnswer(client, rcode) {
      if (rcode !== 'NXDOMAIN') return;
      clientCounts(client, now()).nxdomain++;
    },
    sizes() {
      return { clients: clients.size, pairs: pairs.size };
    },
  };
}

// ---- pure signals over the question's own facts ------------------------------------------------------------

const VOWELS: ReadonlySet<number> = new Set([0x61, 0x65, 0x69, 0x6f, 0x75, 0x79]);

export interface DgaFeatures {
  readonly label: string;
  readonly entropy: number;
  readonly highEntropy: boolean;
  readonly fewVowels: boolean;
  readonly consonantRun: boolean;
  readonly digitsMixed: boolean;
  /** How many of the four features hold. */
  readonly hits: number;
}

/**
 * Features of a registrable label that generated names have and chosen names rarely have together: high
 * character entropy, few vowels, long consonant runs, digits mixed into letters. One feature alone is common in
 * real names (`stackoverflow` has high entropy, `xn--` labels have digits), so the scorer wants two or more.
 * Labels shorter than 8 characters carry too little to judge.
 */
export function dgaFeatures(label: string): DgaFeatures | null {
  if (label.length < 8 || label.startsWith('xn--')) return null;
  let letters = 0;
  let vowels = 0;
  let digits = 0;
  let run = 0;
  let longestRun = 0;
  const counts = new Map<number, number>();
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
    if (c >= 0x61 && c <= 0x7a) {
      letters++;
      if (VOWELS.has(c)) {
        vowels++;
        run = 0;
      } else {
        run++;
        if (run > longestRun) longestRun = run;
      }
    } else {
      if (c >= 0x30 && c <= 0x39) digits++;
      run = 0;
    }
  }
  let entropy = 0;
  for (const count of counts.values()) {
    const p = count / label.length;
    entropy -= p * Math.log2(p);
  }
  // A string of n distinct characters has log2(n) bits per character: 3.0 at 8, 3.58 at 12. Judge against
  // what the length allows, so long dictionary names (whose letters repeat) stay below.
  const highEntropy = entropy >= Math.min(3.5, Math.log2(label.length) * 0.95);
  const fewVowels = letters >= 6 && vowels / letters < 0.2;
  const consonantRun = longestRun >= 6; // 5 occurs in real words (schwarzschild, borschts)
  const digitsMixed = digits >= 2 && letters >= 4 && digits / label.length <= 0.7;
  const hits = Number(highEntropy) + Number(fewVowels) + Number(consonantRun) + Number(digitsMixed);
  return { label, entropy, highEntropy, fewVowels, consonantRun, digitsMixed, hits };
}

/** DGA-like registrable label (the part a domain generation algorithm makes up). */
export const dgaName: Scorer = {
  name: 'dns-dga',
  score(flow): Signal | null {
    const domain = flow.get('dns.question.registered_domain');
    if (domain === undefined) return null;
    const dot = domain.indexOf('.');
    const f = dgaFeatures(dot === -1 ? domain : domain.slice(0, dot));
    if (f === null || f.hits < 2) return null;
    const why: string[] = [];
    if (f.highEntropy) why.push(`high entropy (${f.entropy.toFixed(2)} bits/char)`);
    if (f.fewVowels) why.push('few vowels');
    if (f.consonantRun) why.push('long consonant runs');
    if (f.digitsMixed) why.push('digits mixed into letters');
    return { signal: 'dns_dga', strength: f.hits / 4, reason: `DGA-like name: "${f.label}" has ${why.join(', ')}` };
  },
};

/** Hex digits only (a–f, 0–9): how tunnels (dnscat2) and exfiltration tools spell bytes in a label. */
const HEX_LABEL = /^[0-9a-f]+$/;
/**
 * A hex label exactly as long as an MD5, SHA-1 or SHA-256 digest: a hash lookup (Team Cymru's malware hash
 * registry, CIRCL hashlookup, AV reputation services) — data in a label by design, and not a tunnel's.
 */
const HASH_LENGTHS: ReadonlySet<number> = new Set([32, 40, 64]);
type DataLabelKind = 'hex' | 'hash' | 'base32' | 'random';
/** RFC 4648 base32 alphabet, lower-cased (iodine, DNS exfiltration kits). */
const BASE32_LABEL = /^[a-z2-7]+$/;

/**
 * The most data-like label of the name, left of the registrable domain: long enough to carry data (16+) and
 * spelled like encoded bytes (hex, or letters and digits with high entropy). Chosen labels (cdn-edge-01,
 * login, www2) are short or readable.
 */
export function dataLikeLabel(subdomain: string): { label: string; kind: DataLabelKind; entropy: number } | null {
  let best: { label: string; kind: DataLabelKind; entropy: number } | null = null;
  for (const label of subdomain.split('.')) {
    if (label.length < 16 || (best !== null && label.length <= best.label.length)) continue;
    const entropy = labelEntropy(label);
    let digits = 0;
    for (let i = 0; i < label.length; i++) {
      const c = label.charCodeAt(i);
      if (c >= 0x30 && c <= 0x39) digits++;
    }
    if (HEX_LABEL.test(label) && digits >= 2) best = { label, kind: HASH_LENGTHS.has(label.length) ? 'hash' : 'hex', entropy };
    else if (digits >= 2 && entropy >= 3.6 && BASE32_LABEL.test(label)) best = { label, kind: 'base32', entropy };
    else if (digits >= 2 && entropy >= 3.8) best = { label, kind: 'random', entropy };
  }
  return best;
}

function labelEntropy(label: string): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < label.length; i++) counts.set(label.charCodeAt(i), (counts.get(label.charCodeAt(i)) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) h -= (n / label.length) * Math.log2(n / label.length);
  return Math.round(h * 100) / 100;
}

/** Long labels and long names: the room tunnels use to carry data (RFC 1035 allows 63 octets per label). */
export const longLabels: Scorer = {
  name: 'dns-long-labels',
  score(flow): Signal | null {
    const longest = flow.get('egress.dns.longest_label');
    const name = flow.get('dns.question.name');
    if (longest === undefined || name === undefined) return null;
    const entropy = flow.get('egress.dns.question_entropy') ?? 0;
    if (longest >= 40) {
      return { signal: 'dns_long_label', strength: entropy >= 4 ? 1 : 0.6, reason: `a ${longest}-character label${entropy >= 4 ? ` with high entropy (${entropy} bits/char)` : ''}, as DNS tunnels use to carry data` };
    }
    const data = dataLikeLabel(flow.get('dns.question.subdomain') ?? '');
    if (data !== null) {
      const kind = data.kind === 'random' ? 'random-looking' : data.kind === 'hash' ? 'hash-like hex' : data.kind;
      return { signal: 'dns_long_label', strength: data.kind === 'hash' ? 0.3 : 0.8, reason: `a ${data.label.length}-character ${kind} label "${data.label.slice(0, 24)}" (${data.entropy} bits/char), as DNS tunnels and generated names use` };
    }
    if (name.length >= 100) return { signal: 'dns_long_label', strength: 0.4, reason: `a ${name.length}-character name, as DNS tunnels use to carry data` };
    return null;
  },
};

/** A connection to an address no DNS answer gave this client: software that skips DNS, or a hard-coded C2. */
export const unresolvedDestination: Scorer = {
  name: 'unresolved-destination',
  score(flow): Signal | null {
    if (flow.get('egress.destination.resolved_before') !== false) return null;
    return { signal: 'unresolved_ip', strength: 1, reason: 'connects to an IP address that no DNS answer gave this client' };
  },
};

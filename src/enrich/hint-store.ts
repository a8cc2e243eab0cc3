/**
 * Where endpoint telemetry events wait to be joined to proxied flows.
 *
 * Three indexes, all bounded (entry cap + TTL, evictions counted):
 *  - network events (Sysmon Event ID 3) by (source IP, source port). Source ports are reused, so a key keeps its
 *    last few events and a lookup takes the one nearest in time to the connection within ±window (Sysmon batches
 *    and delays events by seconds to tens of seconds, so the event may come before or after the connection);
 *  - processes by ProcessGuid, made from Event ID 1 and from the identity fields of Event ID 3, so the two join
 *    whichever arrives first (an EID 3 can precede its EID 1); when Sysmon could not resolve the process of an
 *    EID 3 (`Image: "<unknown process>"`, zero ProcessGuid) the join falls back to host + ProcessId;
 *  - DNS queries (Event ID 22) by (host, query name), and managed client addresses with their last-seen time.
 *
 * Network events whose destination is not this proxy are stored too: they describe direct connections.
 *
 * ## Contract (for other backends, e.g. Redis)
 * - `put` may return a Promise (durable once it resolves); the memory store is synchronous.
 * - Lookups (`findConnection`, `findDnsQuery`, `isManaged`) are synchronous and must not do I/O: a networked
 *   backend answers them from a local mirror it keeps current (pub/sub), so the proxy's hot path never waits.
 * - `onNetworkEvent` listeners hear every network event stored, from any replica, after the ingest batch that
 *   carried it has been stored completely (a microtask later), so an EID 1 later in the same batch has joined.
 *
 * ## Memory layout
 * Network events are a ring of columns (typed arrays + arrays of interned strings) indexed by
 * Map<source IP, Map<port, newest slot>>, each slot linking to the previous slot of the same key; process identity
 * lives once per process in a side table and slots hold its numeric id. About 100 bytes per stored network event.
 */
import type { DnsHintEvent, HintEvent, NetworkHintEvent, ProcessHashes, ProcessHintEvent } from './hint-event.js';
import { canonicalIp } from './hint-event.js';

/** Everything a hint can tell about the process behind a connection (null = unknown). */
export interface Attribution {
  /** Image basename, lower-cased. */
  readonly processName: string | null;
  /** Image path as the endpoint reported it. */
  readonly executable: string | null;
  readonly pid: number | null;
  /** Sysmon ProcessGuid. */
  readonly entityId: string | null;
  readonly parentName: string | null;
  readonly parentExecutable: string | null;
  readonly commandLine: string | null;
  readonly originalFileName: string | null;
  readonly hashes: ProcessHashes | null;
  readonly userName: string | null;
  readonly userDomain: string | null;
  readonly hostName: string | null;
  /** Time of the network (or DNS) event that matched. */
  readonly eventTimeMs: number;
  readonly transport: 'tcp' | 'udp' | null;
  readonly destinationIp: string | null;
  readonly destinationPort: number | null;
  /** How Event ID 1 details were joined: by ProcessGuid, by host + pid (unknown-process events), or not at all. */
  readonly join: 'guid' | 'pid' | null;
  /** Which event matched: a network connection (EID 3) or a DNS query (EID 22). */
  readonly matched: 'network' | 'dns';
}

export interface HintStoreSize {
  readonly network: number;
  readonly process: number;
  readonly dns: number;
  readonly managed: number;
  readonly total: number;
}

export type NetworkEventListener = (event: NetworkHintEvent) => void;

export interface HintStore {
  /** Correlation window: an event attributes a connection within ±windowMs of it. */
  readonly windowMs: number;
  /** Store one normalized event. Synchronous for memory; a networked store returns a Promise. */
  put(event: HintEvent): void | Promise<void>;
  /** The network event nearest in time to `atMs` (within ±window) for this client address and port. */
  findConnection(sourceIp: string, sourcePort: number, atMs: number, transport?: 'tcp' | 'udp'): Attribution | null;
  /**
   * The DNS query event for `name` nearest to `atMs` within ±window, from the host given by name, or by the client
   * IP address that host sent network events from.
   */
  findDnsQuery(hostOrSourceIp: string, name: string, atMs: number): Attribution | null;
  /** The address sent a network event within the managed window. */
  isManaged(sourceIp: string): boolean;
  /** Subscribe to stored network events; returns the unsubscribe function. */
  onNetworkEvent(listener: NetworkEventListener): () => void;
  size(): HintStoreSize;
  /** Entries dropped because a cap was reached (TTL expiry is not counted). */
  evictions(): number;
  /** Drop expired entries now (also done as a side effect of put and size). */
  sweep(): void;
  close(): void | Promise<void>;
}

export interface MemoryHintStoreOptions {
  /** Correlation window (default 120 s). */
  readonly windowMs?: number;
  /** A client address that sent a network event within this is managed (default 10 min). */
  readonly managedWindowMs?: number;
  /**
   * Hard cap on entries across all indexes (default 1,000,000): 10 % for processes, 10 % for DNS queries, 2 % for
   * managed addresses, the rest for network events.
   */
  readonly maxEntries?: number;
  /** Process entries unused for this long are dropped (default 24 h: processes outlive their EID 1 by far). */
  readonly processTtlMs?: number;
  /** Cap on the (estimated) bytes of process strings — command lines can be 32 KiB each (default 64 MiB). */
  readonly maxProcessBytes?: number;
  readonly now?: () => number;
}

export const DEFAULT_WINDOW_MS = 120_000;
export const DEFAULT_MANAGED_WINDOW_MS = 600_000;
export const DEFAULT_MAX_ENTRIES = 1_000_000;
const DEFAULT_PROCESS_TTL_MS = 24 * 3600_000;
const DEFAULT_MAX_PROCESS_BYTES = 64 * 1024 * 1024;
/** Events kept reachable per (source IP, port): port reuse within a window is rare, a handful is plenty. */
const MAX_PER_KEY = 8;
/** DNS query events kept per (host, name). */
const MAX_DNS_PER_KEY = 4;
const INITIAL_SLOTS = 1_024;
/** Touching an entry moves it to the young end of its LRU at most this often (a Map delete+set per event is waste). */
const TOUCH_INTERVAL_MS = 1_000;
const INTERN_CAP = 65_536;

const FLAG_TCP = 1;
const FLAG_UDP = 2;

/** One process, made from Event ID 3 identity fields and completed by its Event ID 1. */
class ProcessEntry {
  guid: string | null;
  host: string | null;
  pid: number | null;
  image: string | null;
  name: string | null;
  user: string | null;
  userDomain: string | null;
  /** Set once the Event ID 1 has been seen. */
  createdMs: number | null = null;
  parentImage: string | null = null;
  parentName: string | null = null;
  commandLine: string | null = null;
  originalFileName: string | null = null;
  hashes: ProcessHashes | null = null;
  bytes = 0;
  touchedMs: number;

  constructor(
    readonly id: number,
    readonly key: string,
    ev: HintEvent,
    nowMs: number,
  ) {
    this.guid = ev.processGuid;
    this.host = ev.host;
    this.pid = ev.pid;
    this.image = ev.image;
    this.name = ev.processName;
    this.user = ev.user;
    this.userDomain = ev.userDomain;
    this.touchedMs = nowMs;
  }
}

interface IpEntry {
  /** The canonical address; slots reference this very string, so key checks compare one pointer. */
  readonly ip: string;
  readonly ports: Map<number, number>;
}

interface DnsEntry {
  readonly timeMs: number;
  readonly expiresMs: number;
  readonly procId: number;
}

interface ManagedEntry {
  lastSeenMs: number;
  movedMs: number;
  host: string | null;
}

/** The key of a process: its guid, or host|pid|image for events whose guid Sysmon left zero. */
function processKey(ev: HintEvent): string {
  if (ev.processGuid !== null) return ev.processGuid;
  return `${ev.host ?? ''}|${ev.pid ?? ''}|${ev.image?.toLowerCase() ?? ''}`;
}

function hostPidKey(host: string, pid: number): string {
  return `${host}|${pid}`;
}

/** Source addresses from sockets: IPv4 as is (the fast path), the rest through the canonical form. */
function lookupIp(ip: string): string | null {
  if (ip.indexOf(':') < 0) return ip;
  return canonicalIp(ip);
}

function strBytes(s: string | null): number {
  return s === null ? 0 : 2 * s.length + 24;
}

export function createMemoryHintStore(opts: MemoryHintStoreOptions = {}): HintStore {
  const windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
  const managedWindowMs = opts.managedWindowMs ?? DEFAULT_MANAGED_WINDOW_MS;
  const maxEntries = Math.max(opts.maxEntries ?? DEFAULT_MAX_ENTRIES, 100);
  const processTtlMs = opts.processTtlMs ?? DEFAULT_PROCESS_TTL_MS;
  const maxProcessBytes = opts.maxProcessBytes ?? DEFAULT_MAX_PROCESS_BYTES;
  const now = opts.now ?? Date.now;

  const processCap = Math.floor(maxEntries / 10);
  const dnsCap = Math.floor(maxEntries / 10);
  const managedCap = Math.max(1, Math.floor(maxEntries / 50));
  const networkCap = maxEntries - processCap - dnsCap - managedCap;

  let evicted = 0;

  // ---- interning: bounded; on overflow it starts over (dedup is an optimisation, never needed for correctness)
  let interned = new Map<string, string>();
  const intern = (s: string | null): string | null => {
    if (s === null) return null;
    const hit = interned.get(s);
    if (hit !== undefined) return hit;
    if (interned.size >= INTERN_CAP) interned = new Map();
    interned.set(s, s);
    return s;
  };

  // ---- processes ------------------------------------------------------------------------------------------
  const procs = new Map<number, ProcessEntry>(); // oldest-touched first
  const procIds = new Map<string, number>();
  /** host|pid → the newest EID 1 process with that pid on that host (pid join for unknown-process events). */
  const procByHostPid = new Map<string, number>();
  let procBytes = 0;
  let nextProcId = 1;

  const dropProcess = (p: ProcessEntry): void => {
    procs.delete(p.id);
    if (procIds.get(p.key) === p.id) procIds.delete(p.key);
    if (p.host !== null && p.pid !== null) {
      const hp = hostPidKey(p.host, p.pid);
      if (procByHostPid.get(hp) === p.id) procByHostPid.delete(hp);
    }
    procBytes -= p.bytes;
  };

  const accountProcess = (p: ProcessEntry): void => {
    const bytes =
      160 + strBytes(p.key) + strBytes(p.image) + strBytes(p.commandLine) + strBytes(p.parentImage) + strBytes(p.originalFileName);
    procBytes += bytes - p.bytes;
    p.bytes = bytes;
  };

  const trimProcesses = (t: number, keep: number): void => {
    for (const p of procs.values()) {
      const over = procs.size > processCap || procBytes > maxProcessBytes;
      if (!over && p.touchedMs + processTtlMs > t) break;
      if (p.id === keep) break; // never drop the entry being written
      dropProcess(p);
      if (over) evicted++;
    }
  };

  const touch = (p: ProcessEntry, t: number): void => {
    if (t - p.touchedMs >= TOUCH_INTERVAL_MS) {
      procs.delete(p.id);
      procs.set(p.id, p);
    }
    p.touchedMs = t;
  };

  const upsertProcess = (ev: HintEvent, t: number): ProcessEntry => {
    const key = processKey(ev);
    const id = procIds.get(key);
    let p = id === undefined ? undefined : procs.get(id);
    if (p === undefined) {
      p = new ProcessEntry(nextProcId, key, ev, t);
      nextProcId = nextProcId >= 0x7fff_ffff ? 1 : nextProcId + 1;
      p.image = intern(p.image);
      p.name = intern(p.name);
      p.host = intern(p.host);
      p.user = intern(p.user);
      p.userDomain = intern(p.userDomain);
      procs.set(p.id, p);
      procIds.set(key, p.id);
    } else {
      // Later events fill what earlier ones lacked (an EID 3 from before Sysmon knew the image, say).
      p.image ??= intern(ev.image);
      p.name ??= intern(ev.processName);
      p.host ??= intern(ev.host);
      p.pid ??= ev.pid;
      p.user ??= intern(ev.user);
      p.userDomain ??= intern(ev.userDomain);
      touch(p, t);
    }
    return p;
  };

  const putProcess = (ev: ProcessHintEvent, t: number): void => {
    const p = upsertProcess(ev, t);
    // Event ID 1 is the authority on the process: its fields win over what a network event said.
    if (ev.image !== null) {
      p.image = intern(ev.image);
      p.name = intern(ev.processName);
    }
    p.createdMs = ev.timeMs;
    p.parentImage = intern(ev.parentImage);
    p.parentName = intern(ev.parentName);
    p.commandLine = ev.commandLine;
    p.originalFileName = intern(ev.originalFileName);
    p.hashes = ev.hashes;
    if (p.host !== null && p.pid !== null) procByHostPid.set(hostPidKey(p.host, p.pid), p.id);
    accountProcess(p);
    trimProcesses(t, p.id);
  };

  // ---- network events: a ring of columns ------------------------------------------------------------------
  let cap = Math.min(INITIAL_SLOTS, networkCap);
  let start = 0;
  let count = 0;
  let nextSeq = 1;
  let time = new Float64Array(cap);
  let expires = new Float64Array(cap);
  let seq = new Float64Array(cap);
  let prev = new Int32Array(cap);
  let port = new Int32Array(cap);
  let destPort = new Int32Array(cap);
  let flags = new Uint8Array(cap);
  let procOf = new Int32Array(cap);
  let ipOf: Array<string | null> = new Array<string | null>(cap).fill(null);
  let destIpOf: Array<string | null> = new Array<string | null>(cap).fill(null);
  const index = new Map<string, IpEntry>();

  /** `p` is the previous event of the same key as slot `s` (not evicted, not reused). */
  const isChained = (p: number, s: number): boolean =>
    p >= 0 && ipOf[p] !== null && (seq[p] as number) < (seq[s] as number) && ipOf[p] === ipOf[s] && port[p] === port[s];

  const evictOldest = (): void => {
    const s = start;
    const ip = ipOf[s];
    if (ip !== null && ip !== undefined) {
      const entry = index.get(ip);
      if (entry !== undefined && entry.ports.get(port[s] as number) === s) {
        entry.ports.delete(port[s] as number);
        if (entry.ports.size === 0) index.delete(ip);
      }
    }
    ipOf[s] = null;
    destIpOf[s] = null;
    start = (start + 1) % cap;
    count--;
  };

  /** Double the ring, compacting it to slots 0..count-1 and rewriting links and the index. */
  const grow = (): void => {
    const newCap = Math.min(cap * 2, networkCap);
    const moved = new Int32Array(cap).fill(-1);
    const nTime = new Float64Array(newCap);
    const nExpires = new Float64Array(newCap);
    const nSeq = new Float64Array(newCap);
    const nPrev = new Int32Array(newCap);
    const nPort = new Int32Array(newCap);
    const nDestPort = new Int32Array(newCap);
    const nFlags = new Uint8Array(newCap);
    const nProc = new Int32Array(newCap);
    const nIp = new Array<string | null>(newCap).fill(null);
    const nDest = new Array<string | null>(newCap).fill(null);
    for (let i = 0; i < count; i++) {
      const o = (start + i) % cap;
      moved[o] = i;
      nTime[i] = time[o] as number;
      nExpires[i] = expires[o] as number;
      nSeq[i] = seq[o] as number;
      const p = prev[o] as number;
      nPrev[i] = isChained(p, o) ? (moved[p] as number) : -1;
      nPort[i] = port[o] as number;
      nDestPort[i] = destPort[o] as number;
      nFlags[i] = flags[o] as number;
      nProc[i] = procOf[o] as number;
      nIp[i] = ipOf[o] ?? null;
      nDest[i] = destIpOf[o] ?? null;
    }
    for (const entry of index.values()) {
      for (const [k, s] of entry.ports) entry.ports.set(k, moved[s] as number);
    }
    [time, expires, seq, prev, port, destPort, flags, procOf, ipOf, destIpOf] = [nTime, nExpires, nSeq, nPrev, nPort, nDestPort, nFlags, nProc, nIp, nDest];
    cap = newCap;
    start = 0;
  };

  const putNetwork = (ev: NetworkHintEvent, t: number): boolean => {
    const p = upsertProcess(ev, t);
    if (p.bytes === 0) accountProcess(p);
    let entry = index.get(ev.sourceIp);
    const head = entry?.ports.get(ev.sourcePort);
    // Shippers deliver at least once: the same event twice must not push out others.
    for (let s = head ?? -1, steps = 0; s >= 0 && steps < MAX_PER_KEY; steps++) {
      if (time[s] === ev.timeMs && procOf[s] === p.id && destPort[s] === (ev.destinationPort ?? -1) && destIpOf[s] === (ev.destinationIp ?? null)) {
        return false;
      }
      const q = prev[s] as number;
      s = isChained(q, s) ? q : -1;
    }
    if (count === cap) {
      if (cap < networkCap) grow();
      else {
        evictOldest();
        evicted++;
      }
    }
    if (entry === undefined) {
      entry = { ip: ev.sourceIp, ports: new Map() };
      index.set(entry.ip, entry);
    }
    const headNow = entry.ports.get(ev.sourcePort) ?? -1; // the eviction above may have removed the old head
    const s = (start + count) % cap;
    count++;
    time[s] = ev.timeMs;
    expires[s] = Math.max(ev.timeMs, t) + windowMs;
    seq[s] = nextSeq++;
    prev[s] = headNow;
    port[s] = ev.sourcePort;
    destPort[s] = ev.destinationPort ?? -1;
    flags[s] = ev.protocol === 'tcp' ? FLAG_TCP : ev.protocol === 'udp' ? FLAG_UDP : 0;
    procOf[s] = p.id;
    ipOf[s] = entry.ip;
    destIpOf[s] = intern(ev.destinationIp);
    entry.ports.set(ev.sourcePort, s);
    trimProcesses(t, p.id);
    return true;
  };

  const sweepNetwork = (t: number): void => {
    while (count > 0 && (expires[start] as number) <= t) evictOldest();
  };

  // ---- DNS queries ----------------------------------------------------------------------------------------
  const dns = new Map<string, DnsEntry[]>(); // least recently written key first
  let dnsCount = 0;

  const putDns = (ev: DnsHintEvent, t: number): void => {
    if (ev.host === null) return; // nothing to join a proxy-side query to
    const p = upsertProcess(ev, t);
    if (p.bytes === 0) accountProcess(p);
    const key = `${ev.host}|${ev.queryName}`;
    const list = dns.get(key) ?? [];
    dns.delete(key);
    if (list.some((e) => e.timeMs === ev.timeMs && e.procId === p.id)) {
      dns.set(key, list);
      return;
    }
    list.push({ timeMs: ev.timeMs, expiresMs: Math.max(ev.timeMs, t) + windowMs, procId: p.id });
    dnsCount++;
    if (list.length > MAX_DNS_PER_KEY) {
      list.shift();
      dnsCount--;
    }
    dns.set(key, list);
    for (const [k, l] of dns) {
      const expired = (l[l.length - 1]?.expiresMs ?? 0) <= t;
      if (dnsCount <= dnsCap && !expired) break;
      dns.delete(k);
      dnsCount -= l.length;
      if (!expired) evicted += l.length;
    }
    trimProcesses(t, p.id);
  };

  // ---- managed addresses ----------------------------------------------------------------------------------
  const managed = new Map<string, ManagedEntry>(); // least recently moved first

  const markManaged = (ip: string, host: string | null, t: number): void => {
    const m = managed.get(ip);
    if (m !== undefined) {
      m.lastSeenMs = Math.max(m.lastSeenMs, t);
      if (host !== null) m.host = host;
      if (t - m.movedMs >= TOUCH_INTERVAL_MS) {
        managed.delete(ip);
        managed.set(ip, m);
        m.movedMs = t;
      }
      return;
    }
    managed.set(ip, { lastSeenMs: t, movedMs: t, host });
    sweepManaged(t);
  };

  const sweepManaged = (t: number): void => {
    for (const [ip, m] of managed) {
      const over = managed.size > managedCap;
      if (!over && m.lastSeenMs + managedWindowMs > t) break;
      managed.delete(ip);
      if (over) evicted++;
    }
  };

  // ---- notifications --------------------------------------------------------------------------------------
  const listeners = new Set<NetworkEventListener>();
  let queued: NetworkHintEvent[] = [];
  let flushScheduled = false;
  const flush = (): void => {
    flushScheduled = false;
    const batch = queued;
    queued = [];
    for (const ev of batch) {
      for (const l of listeners) {
        try {
          l(ev);
        } catch {
          // A listener's bug must not stop the others or the ingest that triggered it.
        }
      }
    }
  };

  // ---- lookups ----------------------------------------------------------------------------------------------
  const buildAttribution = (
    p: ProcessEntry,
    eventTimeMs: number,
    matched: 'network' | 'dns',
    transport: 'tcp' | 'udp' | null,
    destinationIp: string | null,
    destinationPort: number | null,
  ): Attribution => {
    let detail: ProcessEntry | undefined = p.createdMs !== null ? p : undefined;
    let join: Attribution['join'] = detail === undefined ? null : 'guid';
    // Unknown-process events (zero guid) carry only a pid: take the newest EID 1 of that pid on that host if it
    // was created before the event — or just after, as Sysmon can log the EID 1 later (OTRF mshta sample: 0.5 s).
    if (detail === undefined && p.guid === null && p.host !== null && p.pid !== null) {
      const id = procByHostPid.get(hostPidKey(p.host, p.pid));
      const c = id === undefined ? undefined : procs.get(id);
      if (c !== undefined && c.createdMs !== null && c.createdMs <= eventTimeMs + windowMs && (p.name === null || c.name === p.name)) {
        detail = c;
        join = 'pid';
      }
    }
    const id = detail ?? p;
    return {
      processName: id.name,
      executable: id.image,
      pid: id.pid,
      entityId: id.guid,
      parentName: detail?.parentName ?? null,
      parentExecutable: detail?.parentImage ?? null,
      commandLine: detail?.commandLine ?? null,
      originalFileName: detail?.originalFileName ?? null,
      hashes: detail?.hashes ?? null,
      // The user and host of the matching event itself come first; the EID 1 fills them when it lacked them.
      userName: p.user ?? detail?.user ?? null,
      userDomain: p.user !== null ? p.userDomain : (detail?.userDomain ?? null),
      hostName: p.host ?? detail?.host ?? null,
      eventTimeMs,
      transport,
      destinationIp,
      destinationPort,
      join,
      matched,
    };
  };

  const store: HintStore = {
    windowMs,

    put(event) {
      const t = now();
      sweepNetwork(t);
      if (event.kind === 'network') {
        if (!putNetwork(event, t)) return;
        // Only the endpoint's own outbound connections say "this address is a managed endpoint".
        if (event.initiated !== false) markManaged(event.sourceIp, event.host, t);
        if (listeners.size > 0) {
          queued.push(event);
          if (!flushScheduled) {
            flushScheduled = true;
            queueMicrotask(flush);
          }
        }
      } else if (event.kind === 'process') {
        putProcess(event, t);
      } else {
        putDns(event, t);
      }
    },

    findConnection(sourceIp, sourcePort, atMs, transport) {
      const ip = lookupIp(sourceIp);
      if (ip === null) return null;
      const entry = index.get(ip);
      if (entry === undefined) return null;
      let s = entry.ports.get(sourcePort) ?? -1;
      const want = transport === 'tcp' ? FLAG_TCP : transport === 'udp' ? FLAG_UDP : 0;
      let best = -1;
      let bestDelta = Infinity;
      for (let steps = 0; s >= 0 && steps < MAX_PER_KEY; steps++) {
        const f = (flags[s] as number) & (FLAG_TCP | FLAG_UDP);
        if (want === 0 || f === 0 || f === want) {
          const delta = Math.abs((time[s] as number) - atMs);
          if (delta <= windowMs && delta < bestDelta) {
            best = s;
            bestDelta = delta;
          }
        }
        const q = prev[s] as number;
        s = isChained(q, s) ? q : -1;
      }
      if (best < 0) return null;
      const p = procs.get(procOf[best] as number);
      if (p === undefined) return null; // its process entry was evicted: nothing left to attribute with
      const f = flags[best] as number;
      const dp = destPort[best] as number;
      return buildAttribution(
        p,
        time[best] as number,
        'network',
        f & FLAG_TCP ? 'tcp' : f & FLAG_UDP ? 'udp' : null,
        destIpOf[best] ?? null,
        dp < 0 ? null : dp,
      );
    },

    findDnsQuery(hostOrSourceIp, name, atMs) {
      const ip = canonicalIp(hostOrSourceIp);
      const host = ip === null ? hostOrSourceIp.toLowerCase() : (managed.get(ip)?.host ?? null);
      if (host === null) return null;
      let q = name.toLowerCase();
      if (q.endsWith('.')) q = q.slice(0, -1);
      const list = dns.get(`${host}|${q}`);
      if (list === undefined) return null;
      let best: DnsEntry | undefined;
      let bestDelta = Infinity;
      for (const e of list) {
        const delta = Math.abs(e.timeMs - atMs);
        if (delta <= windowMs && delta < bestDelta) {
          best = e;
          bestDelta = delta;
        }
      }
      const p = best === undefined ? undefined : procs.get(best.procId);
      if (best === undefined || p === undefined) return null;
      return buildAttribution(p, best.timeMs, 'dns', null, null, null);
    },

    isManaged(sourceIp) {
      const ip = lookupIp(sourceIp);
      const m = ip === null ? undefined : managed.get(ip);
      return m !== undefined && now() - m.lastSeenMs <= managedWindowMs;
    },

    onNetworkEvent(listener) {
      const l: NetworkEventListener = (ev) => listener(ev); // a distinct entry even if the same function subscribes twice
      listeners.add(l);
      return () => {
        listeners.delete(l);
      };
    },

    size() {
      store.sweep();
      const total = count + procs.size + dnsCount + managed.size;
      return { network: count, process: procs.size, dns: dnsCount, managed: managed.size, total };
    },

    evictions: () => evicted,

    sweep() {
      const t = now();
      sweepNetwork(t);
      sweepManaged(t);
      trimProcesses(t, -1);
      for (const [k, l] of dns) {
        if ((l[l.length - 1]?.expiresMs ?? 0) > t) break;
        dns.delete(k);
        dnsCount -= l.length;
      }
    },

    close() {
      listeners.clear();
      queued = [];
    },
  };
  return store;
}

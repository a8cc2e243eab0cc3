/**
 * Attribution coverage: which clients' flows the proxy can name a process for, and which it cannot.
 *
 * An egress inspector that cannot say which endpoints it cannot attribute gives a false sense of coverage
 * (issue 13): a rundll32 beacon from a host without Sysmon looks exactly like a browser. This tally answers, over
 * recorded flows (the `coverage` command) or over the flows this process has seen (GET /v1/coverage):
 *  - the share of flows attributed, by method (`egress.attribution`: telemetry | header | none);
 *  - per client address: flows, attributed share, host names, managed or not, last hint and hint lag;
 *  - unmanaged clients that make flows — the endpoints without telemetry;
 *  - stale telemetry: clients whose flows were attributed by telemetry and still make flows, but none of them was
 *    attributed in the last N minutes (Sysmon stopped, was tampered with, or its shipper is stuck — docs/
 *    process-hints.md: "a managed client whose flows stop being attributed is itself a signal").
 *
 * A flow is counted once. A follow-up record (`egress.followup_of`, docs/flow-record.md "Follow-up records")
 * carries the late attribution of a flow already counted as unattributed: it moves that flow to `telemetry`
 * instead of adding a flow. The join keeps the ids of recent unattributed flows in a bounded ring (the oldest is
 * overwritten when full; one older than `pendingTtlMs` no longer joins: late hints come within the hint window);
 * a follow-up whose flow is no longer there is counted as unmatched.
 *
 * Bounded whatever the input: at most `maxClients` clients (least recently seen dropped first) and a TTL;
 * totals are plain counters and stay exact when the client table drops an entry. The report says what the
 * bounds cut. Times are the flows' own (`@timestamp`, or the live flow's start), so a recorded log is judged
 * as of its last record and a live process as of now.
 *
 * Per flow: a few Map operations and no allocation once a client is known (the client's entry, its host-name
 * list and its lag ring are allocated once, when it is first seen). Measured: ~0.55 µs per flow with 1,000
 * clients; ~3 µs when every flow is a new client and the table is full.
 */

export type AttributionMethod = 'telemetry' | 'header' | 'none';

export interface CoverageTallyOptions {
  /** Most client addresses tracked (default 10,000); the least recently seen is dropped first. */
  readonly maxClients?: number;
  /** A client not seen for this long is dropped (default 24 h; Infinity = never). */
  readonly clientTtlMs?: number;
  /** Most unattributed flow ids kept for the follow-up join (default 100,000). */
  readonly maxPending?: number;
  /** An unattributed flow id older than this is no longer awaited (default 30 min). */
  readonly pendingTtlMs?: number;
}

export interface CoverageReportOptions {
  /** "Now": the last flow's time for a recorded log, Date.now() live. Default: the newest flow time seen. */
  readonly nowMs?: number;
  /** Telemetry is stale when no flow of the client was attributed by it for this long (default 15 min). */
  readonly staleMs?: number;
  /**
   * The live hint store's answer (src/enrich/hints.ts `isManaged`). Without it a client is managed when telemetry
   * attributed one of its flows within `managedWindowMs` of now — all a flow log can tell.
   */
  readonly isManaged?: (sourceIp: string) => boolean;
  /** hints.managed_window (default 10 min), for the flow-log reading of "managed". */
  readonly managedWindowMs?: number;
  /** Most entries in `hosts` (default all); the rest are counted in `bounds.hosts_omitted`. */
  readonly hostLimit?: number;
}

export interface MethodCounts {
  telemetry: number;
  header: number;
  none: number;
}

export interface CoverageHost {
  readonly 'source.ip': string;
  readonly managed: boolean;
  readonly flows: number;
  /** Flows attributed by any method (telemetry or header). */
  readonly attributed: number;
  readonly attributed_share: number;
  readonly by_method: MethodCounts;
  readonly first_flow: string;
  readonly last_flow: string;
  /** The last flow attributed by telemetry (late attributions included); null when none was. */
  readonly last_telemetry: string | null;
  /** host.name values seen (at most MAX_HOST_NAMES); `host_names_more` when more were. */
  readonly host_names: readonly string[];
  readonly host_names_more: boolean;
  /** Live only: the last telemetry network event received from this address. */
  readonly last_hint: string | null;
  /** Live only: median of (received − event time) over this address's last LAG_SAMPLES network events, ms. */
  readonly hint_lag_p50_ms: number | null;
}

export interface StaleTelemetry {
  readonly 'source.ip': string;
  readonly host_names: readonly string[];
  readonly last_telemetry: string;
  readonly last_flow: string;
  readonly minutes_since_telemetry: number;
  readonly flows: number;
}

export interface CoverageBounds {
  readonly max_clients: number;
  /** Clients dropped because the table was full. */
  readonly evicted_clients: number;
  /** Clients dropped because they were not seen within the TTL. */
  readonly expired_clients: number;
  /** Flows of dropped clients: in the totals, but in no `hosts` entry. */
  readonly flows_of_dropped_clients: number;
  /** Unattributed flow ids dropped from the follow-up join because the table was full. */
  readonly evicted_pending: number;
  /** Follow-up records whose flow was not (or no longer) known: their attribution is not counted. */
  readonly followups_unmatched: number;
  readonly hosts_omitted: number;
  /** true when anything above cut the report. */
  readonly cut: boolean;
}

export interface CoverageReport {
  readonly generated_at: string;
  /** Times of the first and last flow counted (null when none). */
  readonly first_flow: string | null;
  readonly last_flow: string | null;
  readonly flows: number;
  readonly attributed: number;
  /** attributed / flows, 0–1 (0 when there is no flow). */
  readonly attributed_share: number;
  readonly by_method: MethodCounts;
  /** Flows attributed after their record was written (follow-up records), within by_method.telemetry. */
  readonly late_attributed: number;
  /** Where `managed` comes from: the live hint store, or what the flow records show. */
  readonly managed_source: 'hint-store' | 'flow-records';
  readonly stale_minutes: number;
  readonly clients: { readonly tracked: number; readonly managed: number; readonly unmanaged: number };
  /** Every tracked client with flows, most flows first. */
  readonly hosts: readonly CoverageHost[];
  /** Unmanaged clients that make flows, most flows first. */
  readonly unmanaged: readonly CoverageHost[];
  readonly stale_telemetry: readonly StaleTelemetry[];
  readonly bounds: CoverageBounds;
}

export const DEFAULT_MAX_CLIENTS = 10_000;
export const DEFAULT_CLIENT_TTL_MS = 24 * 3_600_000;
export const DEFAULT_MAX_PENDING = 100_000;
export const DEFAULT_PENDING_TTL_MS = 30 * 60_000;
export const DEFAULT_STALE_MS = 15 * 60_000;
/** hints.managed_window's default (docs/process-hints.md "Managed endpoints"). */
export const DEFAULT_MANAGED_WINDOW_MS = 10 * 60_000;
/** Host names kept per client: a client address is one host, a few more cover DHCP reuse and NAT. */
export const MAX_HOST_NAMES = 4;
/** Hint lag samples kept per client (a ring): enough for a median, 256 bytes per client. */
export const LAG_SAMPLES = 32;
/** A client moves to the young end of the LRU at most this often (a Map delete+set per flow is waste). */
const TOUCH_INTERVAL_MS = 1_000;
/** A full client table drops 1/100 of its entries at once (see evictOldest). */
const EVICT_BATCH_DIVISOR = 100;

interface ClientEntry {
  readonly ip: string;
  flows: number;
  telemetry: number;
  header: number;
  firstFlowMs: number;
  lastFlowMs: number;
  /** Last time anything (flow or hint) was seen from it, for the TTL and the LRU. */
  lastSeenMs: number;
  movedMs: number;
  /** -Infinity when telemetry never attributed a flow of it. */
  lastTelemetryMs: number;
  readonly hostNames: string[];
  hostNamesMore: boolean;
  /** -Infinity when no hint was heard (flow logs never know). */
  lastHintMs: number;
  lags: Float64Array | null;
  lagCount: number;
}

function canonicalIp(ip: string): string {
  // Dual-stack sockets report IPv4 clients as ::ffff:a.b.c.d; the hint store keys them as a.b.c.d.
  return ip.startsWith('::ffff:') && ip.indexOf('.') > 0 ? ip.slice(7) : ip;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function share(part: number, whole: number): number {
  return whole === 0 ? 0 : Math.round((part / whole) * 10_000) / 10_000;
}

/** Median of the first `n` values (n ≥ 1): the mean of the two middle ones for an even n. */
export function median(values: Float64Array, n: number): number {
  const sorted = Array.from(values.subarray(0, n)).sort((a, b) => a - b);
  const mid = n >> 1;
  return n % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The pure aggregator behind `coverage` and GET /v1/coverage: fed flows, follow-ups and hints; reports. */
export class CoverageTally {
  private readonly maxClients: number;
  private readonly clientTtlMs: number;
  private readonly maxPending: number;
  private readonly pendingTtlMs: number;
  /** Least recently seen first (Map insertion order). */
  private readonly clients = new Map<string, ClientEntry>();
  /**
   * Unattributed flows awaited by a follow-up: a ring of slots (the oldest is overwritten when full) holding the
   * flow's id, client, time and whether a header attributed it, and a Map from id to slot. No object per flow, and
   * no walk over a Map's deleted entries (V8 iterates a Map from its start, holes included).
   */
  private readonly pendingSlot = new Map<string, number>();
  private readonly ringId: Array<string | undefined>;
  private readonly ringIp: string[];
  private readonly ringAt: Float64Array;
  private readonly ringHeader: Uint8Array;
  private ringNext = 0;
  /** Record time of the last TTL sweep of the client table: it runs at most once a second. */
  private sweptMs = -Infinity;
  private readonly totals: MethodCounts = { telemetry: 0, header: 0, none: 0 };
  private flowCount = 0;
  private lateCount = 0;
  private firstMs = Infinity;
  private lastMs = -Infinity;
  private evictedClients = 0;
  private expiredClients = 0;
  private droppedFlows = 0;
  private evictedPending = 0;
  private unmatched = 0;

  constructor(options: CoverageTallyOptions = {}) {
    this.maxClients = Math.max(1, options.maxClients ?? DEFAULT_MAX_CLIENTS);
    this.clientTtlMs = options.clientTtlMs ?? DEFAULT_CLIENT_TTL_MS;
    this.maxPending = Math.max(0, options.maxPending ?? DEFAULT_MAX_PENDING);
    this.pendingTtlMs = options.pendingTtlMs ?? DEFAULT_PENDING_TTL_MS;
    this.ringId = new Array<string | undefined>(this.maxPending).fill(undefined);
    this.ringIp = new Array<string>(this.maxPending).fill('');
    this.ringAt = new Float64Array(this.maxPending);
    this.ringHeader = new Uint8Array(this.maxPending);
  }

  /**
   * One flow record (not a follow-up). Positional arguments, so the live path allocates nothing per flow.
   * `eventId` joins a later follow-up; `hostName` may be undefined; `atMs` is the flow's start.
   */
  addFlow(eventId: string | undefined, sourceIp: string | undefined, method: AttributionMethod, hostName: string | undefined, atMs: number): void {
    this.flowCount++;
    this.totals[method]++;
    if (atMs < this.firstMs) this.firstMs = atMs;
    if (atMs > this.lastMs) this.lastMs = atMs;
    this.expire(this.lastMs);
    if (sourceIp === undefined || sourceIp === '') return;
    const ip = canonicalIp(sourceIp);
    const c = this.touch(ip, atMs);
    c.flows++;
    if (atMs < c.firstFlowMs) c.firstFlowMs = atMs;
    if (atMs > c.lastFlowMs) c.lastFlowMs = atMs;
    if (method === 'telemetry') {
      c.telemetry++;
      if (atMs > c.lastTelemetryMs) c.lastTelemetryMs = atMs;
    } else if (method === 'header') {
      c.header++;
    }
    if (hostName !== undefined && hostName !== '' && !c.hostNames.includes(hostName)) {
      if (c.hostNames.length < MAX_HOST_NAMES) c.hostNames.push(hostName);
      else c.hostNamesMore = true;
    }
    if (method !== 'telemetry' && eventId !== undefined && this.maxPending > 0) {
      // Header-attributed flows are awaited too: a late telemetry hint still makes them telemetry-attributed.
      const slot = this.ringNext;
      this.ringNext = slot + 1 === this.maxPending ? 0 : slot + 1;
      const old = this.ringId[slot];
      if (old !== undefined) {
        this.pendingSlot.delete(old);
        if (atMs - this.ringAt[slot]! <= this.pendingTtlMs) this.evictedPending++;
      }
      this.ringId[slot] = eventId;
      this.ringIp[slot] = ip;
      this.ringAt[slot] = atMs;
      this.ringHeader[slot] = method === 'header' ? 1 : 0;
      this.pendingSlot.set(eventId, slot);
    }
  }

  /**
   * A follow-up record: the flow `originalId`, counted before without telemetry, was attributed late (it only
   * ever carries telemetry: src/observe/follow-up.ts). Returns false when that flow is not known (unmatched).
   */
  addFollowUp(originalId: string): boolean {
    const slot = this.pendingSlot.get(originalId);
    if (slot === undefined) {
      this.unmatched++;
      return false;
    }
    this.pendingSlot.delete(originalId);
    this.ringId[slot] = undefined;
    const atMs = this.ringAt[slot]!;
    if (this.lastMs - atMs > this.pendingTtlMs) {
      // Awaited too long: late hints come within the hint window, so this one no longer joins.
      this.unmatched++;
      return false;
    }
    const c = this.clients.get(this.ringIp[slot]!);
    const was: AttributionMethod = this.ringHeader[slot] === 1 ? 'header' : 'none';
    this.totals[was]--;
    this.totals.telemetry++;
    this.lateCount++;
    if (c !== undefined) {
      if (was === 'header') c.header--;
      c.telemetry++;
      if (atMs > c.lastTelemetryMs) c.lastTelemetryMs = atMs;
    }
    return true;
  }

  /**
   * A telemetry network event from `sourceIp` was stored (live: the hint store's onNetworkEvent). Only clients
   * already tracked are updated: endpoints that never use the proxy do not fill the table.
   */
  noteHint(sourceIp: string, eventTimeMs: number, receivedMs: number): void {
    const c = this.clients.get(canonicalIp(sourceIp));
    if (c === undefined) return;
    if (receivedMs > c.lastHintMs) c.lastHintMs = receivedMs;
    c.lags ??= new Float64Array(LAG_SAMPLES);
    c.lags[c.lagCount % LAG_SAMPLES] = receivedMs - eventTimeMs;
    c.lagCount++;
  }

  /** Clients tracked and unattributed flows awaited (for tests and the bounds). */
  sizes(): { readonly clients: number; readonly pending: number } {
    return { clients: this.clients.size, pending: this.pendingSlot.size };
  }

  report(options: CoverageReportOptions = {}): CoverageReport {
    const nowMs = options.nowMs ?? (Number.isFinite(this.lastMs) ? this.lastMs : Date.now());
    const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
    const managedWindowMs = options.managedWindowMs ?? DEFAULT_MANAGED_WINDOW_MS;
    const isManaged = options.isManaged ?? ((ip: string) => nowMs - (this.clients.get(ip)?.lastTelemetryMs ?? -Infinity) <= managedWindowMs);
    this.sweptMs = -Infinity;
    this.expire(nowMs);
    const hosts: CoverageHost[] = [];
    const stale: StaleTelemetry[] = [];
    for (const c of this.clients.values()) {
      if (c.flows === 0) continue;
      hosts.push(this.hostOf(c, isManaged(c.ip)));
      // Telemetry once attributed its flows, none in the last staleMs, and it still makes flows in them.
      if (Number.isFinite(c.lastTelemetryMs) && nowMs - c.lastTelemetryMs >= staleMs && nowMs - c.lastFlowMs < staleMs) {
        stale.push({
          'source.ip': c.ip,
          host_names: [...c.hostNames],
          last_telemetry: iso(c.lastTelemetryMs),
          last_flow: iso(c.lastFlowMs),
          minutes_since_telemetry: Math.floor((nowMs - c.lastTelemetryMs) / 60_000),
          flows: c.flows,
        });
      }
    }
    const byFlows = (a: { flows: number; 'source.ip': string }, b: { flows: number; 'source.ip': string }): number =>
      b.flows - a.flows || (a['source.ip'] < b['source.ip'] ? -1 : a['source.ip'] > b['source.ip'] ? 1 : 0);
    hosts.sort(byFlows);
    stale.sort(byFlows);
    const unmanaged = hosts.filter((h) => !h.managed);
    const limit = options.hostLimit ?? Infinity;
    const omitted = Math.max(0, hosts.length - limit);
    const attributed = this.totals.telemetry + this.totals.header;
    const bounds: CoverageBounds = {
      max_clients: this.maxClients,
      evicted_clients: this.evictedClients,
      expired_clients: this.expiredClients,
      flows_of_dropped_clients: this.droppedFlows,
      evicted_pending: this.evictedPending,
      followups_unmatched: this.unmatched,
      hosts_omitted: omitted,
      cut: this.evictedClients + this.expiredClients + this.evictedPending + this.unmatched + omitted > 0,
    };
    return {
      generated_at: iso(Date.now()),
      first_flow: Number.isFinite(this.firstMs) ? iso(this.firstMs) : null,
      last_flow: Number.isFinite(this.lastMs) ? iso(this.lastMs) : null,
      flows: this.flowCount,
      attributed,
      attributed_share: share(attributed, this.flowCount),
      by_method: { ...this.totals },
      late_attributed: this.lateCount,
      managed_source: options.isManaged === undefined ? 'flow-records' : 'hint-store',
      stale_minutes: staleMs / 60_000,
      clients: { tracked: hosts.length, managed: hosts.length - unmanaged.length, unmanaged: unmanaged.length },
      hosts: omitted > 0 ? hosts.slice(0, limit) : hosts,
      unmanaged: omitted > 0 ? unmanaged.slice(0, limit) : unmanaged,
      stale_telemetry: stale,
      bounds,
    };
  }

  private hostOf(c: ClientEntry, managed: boolean): CoverageHost {
    const attributed = c.telemetry + c.header;
    const lagN = Math.min(c.lagCount, LAG_SAMPLES);
    return {
      'source.ip': c.ip,
      managed,
      flows: c.flows,
      attributed,
      attributed_share: share(attributed, c.flows),
      by_method: { telemetry: c.telemetry, header: c.header, none: c.flows - attributed },
      first_flow: iso(c.firstFlowMs),
      last_flow: iso(c.lastFlowMs),
      last_telemetry: Number.isFinite(c.lastTelemetryMs) ? iso(c.lastTelemetryMs) : null,
      host_names: [...c.hostNames],
      host_names_more: c.hostNamesMore,
      last_hint: Number.isFinite(c.lastHintMs) ? iso(c.lastHintMs) : null,
      hint_lag_p50_ms: c.lags === null || lagN === 0 ? null : median(c.lags, lagN),
    };
  }

  /** The client's entry, created (evicting the least recently seen when full) and moved to the young end. */
  private touch(ip: string, atMs: number): ClientEntry {
    let c = this.clients.get(ip);
    if (c === undefined) {
      c = {
        ip,
        flows: 0,
        telemetry: 0,
        header: 0,
        firstFlowMs: atMs,
        lastFlowMs: atMs,
        lastSeenMs: atMs,
        movedMs: atMs,
        lastTelemetryMs: -Infinity,
        hostNames: [],
        hostNamesMore: false,
        lastHintMs: -Infinity,
        lags: null,
        lagCount: 0,
      };
      this.clients.set(ip, c);
      if (this.clients.size > this.maxClients) this.evictOldest(c);
      return c;
    }
    if (atMs > c.lastSeenMs) c.lastSeenMs = atMs;
    if (atMs - c.movedMs >= TOUCH_INTERVAL_MS) {
      c.movedMs = atMs;
      this.clients.delete(ip);
      this.clients.set(ip, c);
    }
    return c;
  }

  /**
   * The table is full: drop the least recently seen 1 % (at least one) in one walk. V8 walks a Map from its start,
   * over the holes earlier deletes left, so one walk per dropped client made a stream of new clients cost ~10 µs
   * each; one walk per batch costs well under 1 µs per client.
   */
  private evictOldest(keep: ClientEntry): void {
    let n = Math.max(1, Math.ceil(this.maxClients / EVICT_BATCH_DIVISOR)) + this.clients.size - this.maxClients - 1;
    for (const c of this.clients.values()) {
      if (n <= 0) break;
      if (c === keep) continue;
      this.drop(c);
      this.evictedClients++;
      n--;
    }
  }

  private drop(c: ClientEntry): void {
    this.clients.delete(c.ip);
    this.droppedFlows += c.flows;
  }

  /** Drop clients past their TTL, from the old end; at most once a second of record time. */
  private expire(nowMs: number): void {
    if (!Number.isFinite(this.clientTtlMs) || nowMs - this.sweptMs < TOUCH_INTERVAL_MS) return;
    this.sweptMs = nowMs;
    for (const c of this.clients.values()) {
      if (nowMs - c.lastSeenMs <= this.clientTtlMs) break;
      this.drop(c);
      this.expiredClients++;
    }
  }
}

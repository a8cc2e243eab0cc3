/**
 * Telemetry attribution: joins flows to the Sysmon events in a HintStore, in either order (SPEC "Endpoint process
 * hints"; issue 4 item 3).
 *
 * - Hint first: `attach` (called by the pipeline at each stage and at the end) finds it by (source.ip,
 *   source.port) nearest to the flow's start.
 * - Flow first, decision waiting: `waitFor` resolves as soon as a matching network event is stored; one store
 *   subscription serves all waiters (no polling), each waiter has one timer, cleared when it settles.
 * - Flow first, hint after the decision: unattributed flows of managed clients are remembered (bounded LRU), and a
 *   matching event fills the live flow in place, so the record written at the end carries it.
 * - Hint after the record was written: `flowEnded` keeps the flow a window longer; a matching event then calls
 *   `onLateHint(flow, attribution)` exactly once (the caller writes a follow-up record). The ended flow itself is
 *   not modified.
 *
 * Fields already set are never overwritten: proxy authentication names `user.name` first, and a process named by
 * another source (a verified header claim) keeps its `process.*` — the disagreement is for the identity layer to
 * report, not for telemetry to paper over.
 */
import type { FieldName, FieldValueOf } from '../flow/fields.js';
import type { Flow } from '../flow/flow.js';
import type { HintSource } from './hints.js';
import type { NetworkHintEvent } from './hint-event.js';
import type { Attribution, HintStore } from './hint-store.js';
import { noteNeutralized } from './neutralize.js';

/** When a flow got its telemetry: looked up, after a wait, while running after the decision, or after its record. */
export type AttributedWhen = 'lookup' | 'wait' | 'live' | 'late';

export interface AttributionOptions {
  /** Longest wait `waitFor` grants, whatever the caller asks (default: what the caller asks). */
  readonly hintWaitMs?: number;
  /** A hint matched a flow whose record was already written. Called once per flow. */
  readonly onLateHint?: (flow: Flow, attribution: Attribution) => void;
  /**
   * A flow was attributed by telemetry (once per flow): lagMs = event time − flow start (negative when the
   * event is older), for the correlation-lag histogram.
   */
  readonly onAttributed?: (lagMs: number, method: 'telemetry', when: AttributedWhen) => void;
  /** How many unattributed flows of managed clients to remember (default 10,000). */
  readonly recentFlows?: number;
  /** How many flows may wait for a hint at once; more are answered "no hint" at once (default 10,000). */
  readonly maxWaiters?: number;
  readonly now?: () => number;
}

export interface TelemetryAttribution extends HintSource {
  /** The flow's record has been written: watch a window longer for a hint that arrives late. */
  flowEnded(flow: Flow): void;
  /** The attribution telemetry would give this flow now (no side effects). */
  lookup(flow: Flow): Attribution | null;
  /** Waiters and remembered flows (for tests and metrics). */
  stats(): { readonly waiting: number; readonly remembered: number };
  /** Unsubscribe from the store and settle every waiter with false. */
  close(): void;
}

interface Waiter {
  readonly flow: Flow;
  readonly key: string;
  readonly resolve: (attached: boolean) => void;
  timer: ReturnType<typeof setTimeout> | null;
  done: boolean;
}

interface Remembered {
  readonly flow: Flow;
  readonly ended: boolean;
  readonly expiresMs: number;
}

const DEFAULT_RECENT_FLOWS = 10_000;
const DEFAULT_MAX_WAITERS = 10_000;

function canonicalSourceIp(ip: string): string {
  // Dual-stack sockets report IPv4 clients as ::ffff:a.b.c.d; the store keys them as a.b.c.d.
  return ip.startsWith('::ffff:') && ip.indexOf('.') > 0 ? ip.slice(7) : ip;
}

function keyOf(flow: Flow): string | null {
  const ip = flow.get('source.ip');
  const port = flow.get('source.port');
  return ip === undefined || port === undefined ? null : `${canonicalSourceIp(ip)}|${port}`;
}

export function createAttribution(store: HintStore, opts: AttributionOptions = {}): TelemetryAttribution {
  const now = opts.now ?? Date.now;
  const recentFlows = Math.max(1, opts.recentFlows ?? DEFAULT_RECENT_FLOWS);
  const maxWaiters = Math.max(0, opts.maxWaiters ?? DEFAULT_MAX_WAITERS);
  const windowMs = store.windowMs;

  const waiters = new Map<string, Set<Waiter>>();
  let waiting = 0;
  /** Unattributed flows of managed clients, least recently remembered first. */
  const remembered = new Map<string, Remembered>();
  /** Flows already handed to onLateHint: exactly once, whatever arrives later. Weak: dies with the flow. */
  const reported = new WeakSet<Flow>();
  /** Flows telemetry has filled (whatever attribution they ended with): nothing late to report for them. */
  const applied = new WeakSet<Flow>();

  const lookup = (flow: Flow): Attribution | null => {
    const ip = flow.get('source.ip');
    const port = flow.get('source.port');
    if (ip === undefined || port === undefined) return null;
    // A DNS flow: Sysmon's EID 22 names the process that asked; the UDP packet itself comes from the DNS Client
    // service (svchost), so the EID 3 of the query's port is only the fallback.
    if (flow.kind === 'dns') {
      const name = flow.get('dns.question.name');
      const byQuery = name === undefined ? null : store.findDnsQuery(ip, name, flow.startedMs);
      if (byQuery !== null) return byQuery;
    }
    const t = flow.get('network.transport');
    return store.findConnection(ip, port, flow.startedMs, t === 'tcp' || t === 'udp' ? t : undefined);
  };

  const forget = (flow: Flow, key: string): void => {
    if (remembered.get(key)?.flow === flow) remembered.delete(key);
  };

  const remember = (flow: Flow, key: string, ended: boolean): void => {
    const t = now();
    remembered.delete(key); // port reuse: the newest flow on a key replaces the older one
    remembered.set(key, { flow, ended, expiresMs: t + (ended ? windowMs : 2 * windowMs) });
    for (const [k, r] of remembered) {
      if (remembered.size <= recentFlows && r.expiresMs > t) break;
      remembered.delete(k);
    }
  };

  /** Fill what is not set yet; true when this call made the flow telemetry-attributed. */
  const apply = (flow: Flow, a: Attribution, when: AttributedWhen): boolean => {
    fillFromAttribution(flow, a);
    applied.add(flow);

    const key = keyOf(flow);
    if (key !== null) forget(flow, key);
    const current = flow.get('egress.attribution');
    // 'none' is what the pipeline writes when the wait ran out; a hint that came later replaces it.
    if (current !== undefined && current !== 'none') return false;
    flow.set('egress.attribution', 'telemetry');
    opts.onAttributed?.(a.eventTimeMs - flow.startedMs, 'telemetry', when);
    return true;
  };

  const settle = (w: Waiter, attached: boolean): void => {
    if (w.done) return;
    w.done = true;
    if (w.timer !== null) clearTimeout(w.timer);
    w.timer = null;
    const set = waiters.get(w.key);
    if (set !== undefined) {
      set.delete(w);
      if (set.size === 0) waiters.delete(w.key);
    }
    waiting--;
    w.resolve(attached);
  };

  const onNetworkEvent = (ev: NetworkHintEvent): void => {
    const key = `${ev.sourceIp}|${ev.sourcePort}`;
    const set = waiters.get(key);
    if (set !== undefined) {
      for (const w of [...set]) {
        const a = lookup(w.flow);
        if (a === null) continue; // outside this flow's window (port reuse): keep waiting
        apply(w.flow, a, 'wait');
        settle(w, true);
      }
    }
    const r = remembered.get(key);
    if (r === undefined) return;
    if (r.expiresMs <= now()) {
      remembered.delete(key);
      return;
    }
    const a = lookup(r.flow);
    if (a === null) return;
    remembered.delete(key);
    if (!r.ended) {
      apply(r.flow, a, 'live');
    } else if (!reported.has(r.flow)) {
      reported.add(r.flow);
      opts.onAttributed?.(a.eventTimeMs - r.flow.startedMs, 'telemetry', 'late');
      opts.onLateHint?.(r.flow, a);
    }
  };

  const unsubscribe = store.onNetworkEvent(onNetworkEvent);

  const attribution: TelemetryAttribution = {
    isManaged: (ip) => store.isManaged(ip),

    attach(flow) {
      // Already attributed and named: nothing a second lookup could add (an unnamed one may still gain its EID 1).
      if (applied.has(flow) && flow.get('process.name') !== undefined) return true;
      const a = lookup(flow);
      if (a === null) {
        const key = keyOf(flow);
        const ip = flow.get('source.ip');
        if (key !== null && ip !== undefined && !flow.ended && remembered.get(key)?.flow !== flow && store.isManaged(ip)) {
          remember(flow, key, false);
        }
        return false;
      }
      apply(flow, a, 'lookup');
      return true;
    },

    waitFor(flow, ms) {
      if (attribution.attach(flow)) return Promise.resolve(true);
      const key = keyOf(flow);
      const ip = flow.get('source.ip');
      const budget = Math.min(ms, opts.hintWaitMs ?? ms);
      // Unmanaged clients never wait (SPEC); a full waiter table answers "no hint" rather than grow.
      if (key === null || ip === undefined || !(budget > 0) || waiting >= maxWaiters || !store.isManaged(ip)) {
        return Promise.resolve(false);
      }
      return new Promise<boolean>((resolve) => {
        const w: Waiter = { flow, key, resolve, timer: null, done: false };
        w.timer = setTimeout(() => settle(w, false), budget);
        w.timer.unref();
        let set = waiters.get(key);
        if (set === undefined) {
          set = new Set();
          waiters.set(key, set);
        }
        set.add(w);
        waiting++;
      });
    },

    flowEnded(flow) {
      const key = keyOf(flow);
      const ip = flow.get('source.ip');
      if (key === null || ip === undefined) return;
      if (applied.has(flow) || reported.has(flow) || !store.isManaged(ip)) {
        forget(flow, key);
        return;
      }
      const a = lookup(flow);
      if (a !== null) {
        // Stored, but not in the record (e.g. it came after the last attach): report it now.
        forget(flow, key);
        reported.add(flow);
        opts.onAttributed?.(a.eventTimeMs - flow.startedMs, 'telemetry', 'late');
        opts.onLateHint?.(flow, a);
        return;
      }
      remember(flow, key, true);
    },

    lookup,

    stats: () => ({ waiting, remembered: remembered.size }),

    close() {
      unsubscribe();
      for (const set of [...waiters.values()]) for (const w of [...set]) settle(w, false);
      remembered.clear();
    },
  };
  return attribution;
}

/**
 * Copy an attribution's facts into a flow without overwriting anything already set: another source that
 * named a different process keeps its name (telemetry's other fields are not mixed in), and proxy
 * authentication keeps naming the user (the telemetry domain is added only for the same user).
 */
export function fillFromAttribution(flow: Flow, a: Attribution): void {
  const namedByOther = flow.get('process.name');
  if (namedByOther === undefined || a.processName === null || namedByOther === a.processName) {
    fill(flow, 'process.name', a.processName);
    fill(flow, 'process.executable', a.executable);
    fill(flow, 'process.pid', a.pid);
    fill(flow, 'process.entity_id', a.entityId);
    fill(flow, 'process.parent.name', a.parentName);
    fill(flow, 'process.parent.executable', a.parentExecutable);
    fill(flow, 'process.command_line', a.commandLine);
    fill(flow, 'process.pe.original_file_name', a.originalFileName);
    if (a.hashes !== null) {
      fill(flow, 'process.hash.md5', a.hashes.md5);
      fill(flow, 'process.hash.sha1', a.hashes.sha1);
      fill(flow, 'process.hash.sha256', a.hashes.sha256);
      fill(flow, 'process.pe.imphash', a.hashes.imphash);
    }
  }
  const user = flow.get('user.name');
  if (user === undefined) {
    fill(flow, 'user.name', a.userName);
    fill(flow, 'user.domain', a.userDomain);
  } else if (a.userName !== null && user.toLowerCase() === a.userName.toLowerCase()) {
    fill(flow, 'user.domain', a.userDomain);
  }
  fill(flow, 'host.name', a.hostName);
  // The hint's text was neutralised at ingestion (hint-event.ts); say which record fields carry marks.
  let listed = flow.get('egress.neutralized');
  for (const name of NEUTRALIZABLE) listed = noteNeutralized(listed, name, flow.get(name));
  flow.set('egress.neutralized', listed);
}

/** Flow fields filled from hint text that ingestion neutralises. */
const NEUTRALIZABLE = [
  'process.name',
  'process.executable',
  'process.command_line',
  'process.parent.name',
  'process.parent.executable',
  'process.pe.original_file_name',
  'user.name',
  'user.domain',
  'host.name',
] as const;

function fill<K extends FieldName>(flow: Flow, name: K, value: FieldValueOf<K> | null): void {
  if (value !== null && flow.get(name) === undefined) flow.set(name, value);
}

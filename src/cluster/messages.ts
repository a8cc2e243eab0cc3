/**
 * The IPC messages between the cluster primary and its workers (`proxy.workers` > 1), declared once.
 *
 * The channel uses Node's `advanced` serialization (the structured clone algorithm; https://nodejs.org/api/
 * child_process.html#advanced-serialization): flow-log batches travel as Buffers without JSON escaping, hint
 * events as plain objects. Messages come from our own processes, but every receiver still checks the shape with
 * the guards below before it acts (a wrong message is ignored, never thrown on): the two ends are separate
 * processes, and a restarted worker may briefly talk to a primary of another build during an upgrade.
 *
 * Who sends what (docs/deployment.md "Workers"):
 *
 *   worker → primary                              primary → worker
 *   hello            (ready for `start`)          start            (the config, this worker's id)
 *   ready / start-failed                          share            (state another worker saw)
 *   flow-lines       (a batch of whole lines)     reload           (reload now, answer `reloaded`)
 *   share            (hints, DNS answers)         reload-all-done  (answer to `reload-all`)
 *   reload-all       (POST /v1/policy/reload)     collect          (send your metrics, answer `collected`)
 *   reloaded         (answer to `reload`)         metrics-text     (answer to `metrics`)
 *   metrics / status (a scrape, /v1/cluster)      status-report    (answer to `status`)
 *   collected        (answer to `collect`)        stop             (drain and exit)
 *   drained          (last message before exit)
 */
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import type { HintEvent } from '../enrich/hint-event.js';
import type { WorkerStateLabel } from '../observe/metrics.js';

/** A worker's metrics as prom-client's `getMetricsAsJSON()` gives them (the input of AggregatorRegistry.aggregate). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** One DNS answer shared between workers: the client it was given to, the question name, one A/AAAA address. */
export type DnsShare = readonly [client: string, name: string, address: string];

/** What a worker answers to `reload`. */
export interface WorkerReload {
  readonly ok: boolean;
  /** The sha256 of the policy in force after the attempt (the last good one when it failed). */
  readonly sha256: string;
  /** `file:line:col: message` lines of a failed load. */
  readonly errors: readonly string[];
}

/** The answer to POST /v1/policy/reload in a cluster: ok once every worker runs the same good policy. */
export interface ClusterReload {
  readonly ok: boolean;
  /** The policy every worker runs; null when they do not agree (or none answered). */
  readonly sha256: string | null;
  readonly errors: readonly string[];
  readonly workers: readonly { readonly id: number; readonly pid: number; readonly ok: boolean; readonly sha256: string | null; readonly errors: readonly string[] }[];
}

/** A worker slot's state (declared with the metric label, egress_workers{state}). */
export type WorkerState = WorkerStateLabel;

/** GET /v1/cluster: one entry per worker slot. */
export interface WorkerStatus {
  readonly id: number;
  readonly pid: number | null;
  readonly state: WorkerState;
  /** Restarts of this slot since the primary started. */
  readonly restarts: number;
  /** When the current process of the slot started (ms since the epoch); null while none runs. */
  readonly startedMs: number | null;
  /** egress_flows_total of this worker (all actions and protocols); null when it did not answer. */
  readonly flows: number | null;
  /** egress_active_flows of this worker; null when it did not answer. */
  readonly activeFlows: number | null;
}

export interface ClusterStatus {
  readonly primaryPid: number;
  readonly workers: readonly WorkerStatus[];
}

export type WorkerMessage =
  | { readonly kind: 'hello' }
  | { readonly kind: 'ready'; readonly proxy: AddressInfo; readonly admin: AddressInfo; readonly dns: AddressInfo | null }
  | { readonly kind: 'start-failed'; readonly code: ErrorCode | null; readonly message: string }
  | { readonly kind: 'flow-lines'; readonly lines: Uint8Array; readonly count: number }
  | { readonly kind: 'share'; readonly hints: readonly HintEvent[]; readonly dns: readonly DnsShare[] }
  | { readonly kind: 'reload-all'; readonly id: number }
  | { readonly kind: 'reloaded'; readonly id: number; readonly result: WorkerReload }
  | { readonly kind: 'metrics'; readonly id: number }
  | { readonly kind: 'status'; readonly id: number }
  | { readonly kind: 'collected'; readonly id: number; readonly metrics: MetricsJson }
  | { readonly kind: 'drained' };

export type PrimaryMessage =
  | { readonly kind: 'start'; readonly workerId: number; readonly config: Config }
  | { readonly kind: 'share'; readonly hints: readonly HintEvent[]; readonly dns: readonly DnsShare[] }
  | { readonly kind: 'reload'; readonly id: number }
  | { readonly kind: 'reload-all-done'; readonly id: number; readonly result: ClusterReload }
  | { readonly kind: 'collect'; readonly id: number }
  | { readonly kind: 'metrics-text'; readonly id: number; readonly contentType: string; readonly text: string }
  | { readonly kind: 'status-report'; readonly id: number; readonly status: ClusterStatus }
  | { readonly kind: 'stop' };

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStrings = (v: unknown): v is readonly string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

function isAddress(v: unknown): v is AddressInfo {
  return isObj(v) && typeof v.address === 'string' && typeof v.family === 'string' && typeof v.port === 'number';
}

function isDnsShares(v: unknown): v is readonly DnsShare[] {
  return Array.isArray(v) && v.every((x) => Array.isArray(x) && x.length === 3 && x.every((s) => typeof s === 'string'));
}

/** Hint events were normalised by the worker that took them; the shape check here is the cheap part of it. */
function isHintEvents(v: unknown): v is readonly HintEvent[] {
  return Array.isArray(v) && v.every((e) => isObj(e) && (e.kind === 'network' || e.kind === 'process' || e.kind === 'dns') && typeof e.timeMs === 'number');
}

function isWorkerReload(v: unknown): v is WorkerReload {
  return isObj(v) && typeof v.ok === 'boolean' && typeof v.sha256 === 'string' && isStrings(v.errors);
}

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  if (!isObj(m)) return false;
  switch (m.kind) {
    case 'hello':
    case 'drained':
      return true;
    case 'ready':
      return isAddress(m.proxy) && isAddress(m.admin) && (m.dns === null || isAddress(m.dns));
    case 'start-failed':
      return typeof m.message === 'string' && (m.code === null || (typeof m.code === 'string' && Object.hasOwn(ERROR_CODES, m.code)));
    case 'flow-lines':
      return m.lines instanceof Uint8Array && isId(m.count);
    case 'share':
      return isHintEvents(m.hints) && isDnsShares(m.dns);
    case 'reload-all':
    case 'metrics':
    case 'status':
      return isId(m.id);
    case 'reloaded':
      return isId(m.id) && isWorkerReload(m.result);
    case 'collected':
      return isId(m.id) && Array.isArray(m.metrics);
    default:
      return false;
  }
}

export function isPrimaryMessage(m: unknown): m is PrimaryMessage {
  if (!isObj(m)) return false;
  switch (m.kind) {
    case 'stop':
      return true;
    case 'start':
      return isId(m.workerId) && isObj(m.config) && isObj(m.config.proxy);
    case 'share':
      return isHintEvents(m.hints) && isDnsShares(m.dns);
    case 'reload':
    case 'collect':
      return isId(m.id);
    case 'reload-all-done':
      return isId(m.id) && isObj(m.result) && typeof m.result.ok === 'boolean' && isStrings(m.result.errors) && Array.isArray(m.result.workers);
    case 'metrics-text':
      return isId(m.id) && typeof m.contentType === 'string' && typeof m.text === 'string';
    case 'status-report':
      return isId(m.id) && isObj(m.status) && Array.isArray(m.status.workers);
    default:
      return false;
  }
}

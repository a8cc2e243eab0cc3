/**
 * The console's live side: the last `capacity` flows in a ring (the flows page's first screen and the row
 * details), and the live stream's viewers, each with its own filter and a rate cut.
 *
 * Cost per flow record (the flow recorder's afterRecord hook, src/cli/start.ts): `toConsoleFlow` reads a dozen
 * fields the record just set and builds one small object; the ring overwrites a slot; each viewer's compiled
 * filter runs, and a flow is serialised only for a viewer that is under its rate. A browser renders a few
 * dozen rows a second usefully; at 5,000 flows/s the stream sends `liveRate` of them per viewer and says so once a
 * second (`LiveSampling`), rather than falling behind or buffering without bound.
 */
import { readRecordField } from '../observe/read-record.js';
import type { Flow } from '../flow/flow.js';
import type { FieldName } from '../flow/fields.js';
import type { Severity } from '../policy/decision.js';
import { compileFilter } from './filter.js';
import type { ConsoleAttribution, ConsoleFlow, ConsoleFlowSummary, FlowFilter, LiveSampling } from './model.js';

const SEVERITIES: ReadonlySet<string> = new Set<Severity>(['low', 'medium', 'high', 'critical']);
const SEVERITY_OF_NUMBER: readonly (Severity | null)[] = [null, 'low', 'medium', 'high', 'critical'];

const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const texts = (v: unknown): readonly string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * A console flow from a record's fields, read through `get` (dotted ECS names): the same for a live flow (its
 * fields, just set by the serializer) and a record read back from its JSON. Every value is type-checked, so a
 * record with unexpected shapes gives empty fields, never a throw.
 */
function consoleFlowOf(get: (name: string) => unknown, id: string, line: string, nowMs: number): ConsoleFlow {
  const target = text(get('destination.domain')) ?? text(get('destination.ip')) ?? '';
  const port = get('destination.port');
  const shadow = get('egress.shadow');
  const shadowRules = Array.isArray(shadow) ? shadow.map((m: unknown) => (isObject(m) ? text(m['rule']) : null)).filter((x): x is string => x !== null) : [];
  const rules = texts(get('egress.rules'));
  const severity = get('event.severity');
  const score = get('egress.score');
  const attribution = get('egress.attribution');
  return {
    id,
    timeMs: nowMs,
    action: get('event.action') === 'allow' ? 'allow' : 'block',
    protocol: text(get('network.protocol')) ?? 'unknown',
    severity: typeof severity === 'number' ? SEVERITY_OF_NUMBER[severity] ?? null : null,
    sourceIp: text(get('source.ip')) ?? '',
    user: text(get('user.name')),
    host: text(get('host.name')),
    process: text(get('process.name')),
    rule: text(get('rule.id')),
    rules: shadowRules.length === 0 ? rules : [...rules, ...shadowRules],
    tags: texts(get('tags')),
    destination: typeof port !== 'number' ? target : target.includes(':') ? `[${target}]:${port}` : `${target}:${port}`,
    score: typeof score === 'number' ? score : null,
    attribution: attribution === 'telemetry' || attribution === 'header' ? attribution : ('none' satisfies ConsoleAttribution),
    followupOf: text(get('egress.followup_of')),
    record: line,
  };
}

/** The console's view of a flow whose record was just written as `line` (serializeEcsRecord set the fields). */
export function toConsoleFlow(flow: Flow, line: string, nowMs: number): ConsoleFlow {
  return consoleFlowOf((name) => flow.get(name as FieldName), flow.id, line, nowMs);
}

/**
 * The console's view of a record read back from its JSON (a follow-up record, which telemetry writes straight to
 * the flow log); null when it is not a flow record (no event.id).
 */
export function consoleFlowFromRecord(parsed: unknown, line: string, nowMs: number): ConsoleFlow | null {
  if (!isObject(parsed)) return null;
  const id = text(readRecordField(parsed, 'event.id'));
  return id === null ? null : consoleFlowOf((name) => readRecordField(parsed, name), id, line, nowMs);
}

export function isSeverity(value: unknown): value is Severity {
  return typeof value === 'string' && SEVERITIES.has(value);
}

/** A flow without its record text (what goes to the browser in lists and the live stream). */
export function summaryOf(flow: ConsoleFlow): ConsoleFlowSummary {
  const { record: _record, ...summary } = flow;
  return summary;
}

export interface LiveViewer {
  /** A flow to send (already counted against the viewer's rate). */
  readonly send: (flow: ConsoleFlowSummary) => void;
  /** Once a second while the rate cut flows in the last second. */
  readonly sampling: (cut: LiveSampling) => void;
}

interface Viewer {
  readonly matches: (flow: ConsoleFlowSummary) => boolean;
  readonly out: LiveViewer;
  matched: number;
  sent: number;
}

export interface RecentFlowsOptions {
  /** Flows kept in memory (console.recent). */
  readonly capacity: number;
  /** Record text kept at most (characters ≈ bytes; default RECENT_MAX_CHARS): the oldest flows go first. */
  readonly maxChars?: number;
  /** The most flows a second sent to one viewer (console.live_rate). */
  readonly liveRate: number;
  /** The most viewers at once (each holds an open response). */
  readonly maxViewers?: number;
}

export const DEFAULT_MAX_VIEWERS = 32;
/**
 * Record text the ring keeps at most, whatever `console.recent` says: 2,000 plain-HTTP records are ~4 MB, but an
 * alert storm of TLS tunnels (~4.5 KB records with JA3/JA4 strings and cipher lists) made 2,000 of them ~16 MB of
 * the proxy's peak RSS in the core bench (issue 9, peak ≤ 150 MB). Older flows are in the history store.
 */
export const RECENT_MAX_CHARS = 4 * 1024 * 1024;

export class RecentFlows {
  readonly capacity: number;
  readonly liveRate: number;
  readonly maxViewers: number;
  readonly maxChars: number;
  private readonly ring: (ConsoleFlow | undefined)[];
  /** Index of the next slot to write; the ring holds the `count` flows before it. */
  private next = 0;
  private count = 0;
  /** Characters of record text the ring holds. */
  private chars = 0;
  private readonly viewers = new Set<Viewer>();
  private tick: NodeJS.Timeout | null = null;

  constructor(options: RecentFlowsOptions) {
    this.capacity = options.capacity;
    this.liveRate = options.liveRate;
    this.maxViewers = options.maxViewers ?? DEFAULT_MAX_VIEWERS;
    this.maxChars = options.maxChars ?? RECENT_MAX_CHARS;
    this.ring = new Array<ConsoleFlow | undefined>(options.capacity);
  }

  get size(): number {
    return this.count;
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  /** A new flow: kept in the ring unless `keep` is false (sampled out), and streamed to the viewers it matches. */
  add(flow: ConsoleFlow, keep = true): void {
    if (keep && this.capacity > 0) {
      const overwritten = this.ring[this.next];
      if (overwritten !== undefined) {
        this.chars -= overwritten.record.length;
        this.count -= 1;
      }
      this.ring[this.next] = flow;
      this.next = (this.next + 1) % this.capacity;
      this.count += 1;
      this.chars += flow.record.length;
      // The byte bound: drop the oldest until the text fits (the newest flow always stays).
      while (this.chars > this.maxChars && this.count > 1) {
        const oldest = (this.next - this.count + this.capacity) % this.capacity;
        this.chars -= (this.ring[oldest] as ConsoleFlow).record.length;
        this.ring[oldest] = undefined;
        this.count -= 1;
      }
    }
    for (const viewer of this.viewers) {
      if (!viewer.matches(flow)) continue;
      viewer.matched += 1;
      if (viewer.sent >= this.liveRate) continue;
      viewer.sent += 1;
      viewer.out.send(summaryOf(flow));
    }
  }

  /** Newest first: at most `limit` flows that match, written before `beforeMs` when given. */
  list(filter: FlowFilter, limit: number, beforeMs?: number): ConsoleFlow[] {
    const matches = compileFilter(filter);
    const found: ConsoleFlow[] = [];
    for (let i = 1; i <= this.size && found.length < limit; i += 1) {
      const flow = this.ring[(this.next - i + this.capacity) % this.capacity];
      if (flow === undefined) break;
      if (beforeMs !== undefined && flow.timeMs >= beforeMs) continue;
      if (matches(flow)) found.push(flow);
    }
    return found;
  }

  /** The oldest flow's time in the ring, or null when empty (older pages come from the history store). */
  oldestMs(): number | null {
    if (this.count === 0) return null;
    return this.ring[(this.next - this.count + this.capacity) % this.capacity]?.timeMs ?? null;
  }

  /** Follow-up records of the flow `id` still in the ring, newest first. */
  followUpsOf(id: string): ConsoleFlow[] {
    const found: ConsoleFlow[] = [];
    for (let i = 1; i <= this.size; i += 1) {
      const flow = this.ring[(this.next - i + this.capacity) % this.capacity];
      if (flow?.followupOf === id) found.push(flow);
    }
    return found;
  }

  get(id: string): ConsoleFlow | undefined {
    for (let i = 1; i <= this.size; i += 1) {
      const flow = this.ring[(this.next - i + this.capacity) % this.capacity];
      if (flow?.id === id) return flow;
    }
    return undefined;
  }

  /** A new viewer of the live stream; returns its unsubscribe function, or null when maxViewers watch already. */
  watch(filter: FlowFilter, out: LiveViewer): (() => void) | null {
    if (this.viewers.size >= this.maxViewers) return null;
    const viewer: Viewer = { matches: compileFilter(filter), out, matched: 0, sent: 0 };
    this.viewers.add(viewer);
    if (this.tick === null) {
      this.tick = setInterval(() => this.everySecond(), 1000);
      this.tick.unref();
    }
    return () => {
      this.viewers.delete(viewer);
      if (this.viewers.size === 0 && this.tick !== null) {
        clearInterval(this.tick);
        this.tick = null;
      }
    };
  }

  /** Report each viewer's cut of the last second, and open the next second's budget. */
  everySecond(): void {
    for (const viewer of this.viewers) {
      if (viewer.matched > viewer.sent) viewer.out.sampling({ matched: viewer.matched, sent: viewer.sent, limit: this.liveRate });
      viewer.matched = 0;
      viewer.sent = 0;
    }
  }

  close(): void {
    if (this.tick !== null) clearInterval(this.tick);
    this.tick = null;
    this.viewers.clear();
  }
}

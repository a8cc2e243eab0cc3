/**
 * The operator console, put together (docs/console.md): the recent-flow ring and live stream (recent.ts), the
 * history store (history.ts, SQLite on its own thread), the alert board (alerts.ts), sessions (session.ts), and
 * the page data read from the policy store, the coverage tally and the metrics — served by routes.ts on the admin
 * listener.
 *
 * On the hot path only `flowRecorded` runs, once per record, after the record is written (the flow recorder's
 * tap): one ConsoleFlow built, the ring, the alert board, the live viewers, the history queue and a per-second
 * counter. Everything else runs when a page is asked for.
 */
import type { Flow } from '../flow/flow.js';
import type { Metrics } from '../observe/metrics.js';
import type { Logger } from '../observe/logger.js';
import type { PolicyStore, ReloadReport } from '../policy/policy-store.js';
import { explainFlow } from '../policy/explain.js';
import { explainFacts, parseFlowJson } from '../cli/policy-explain.js';
import type { CoverageReport } from '../coverage/tally.js';
import { AlertBoard } from './alerts.js';
import type { ConsoleFlow, FlowDetail, FlowHistory, HealthView, PolicyView, ReloadView } from './model.js';
import { consoleFlowFromRecord, RecentFlows, summaryOf, toConsoleFlow } from './recent.js';
import { tapFlowLog, type FlowLog } from '../observe/flow-log.js';
import { createConsoleHandler } from './routes.js';
import { Sessions } from './session.js';

/** Reload attempts the policy page lists. */
const RELOADS_KEPT = 20;
/** Seconds of history of the rate counters (the health page's "last minute"). */
const RATE_SECONDS = 60;

export interface ConsoleOptions {
  readonly secret: string;
  readonly secureCookie: boolean;
  readonly recent: number;
  readonly liveRate: number;
  /** Allowed, non-alert flows kept (ring, alert board, history) per second at most; blocks and alerts always are. */
  readonly maxRate: number;
  readonly sessionIdleMs: number;
  readonly sessionMaxAgeMs: number;
  readonly version: string;
  readonly startedMs: number;
}

export interface ConsoleSources {
  readonly history: FlowHistory;
  readonly policy: PolicyStore;
  readonly reloadPolicy: () => Promise<boolean>;
  readonly metrics: Metrics;
  readonly coverage: () => CoverageReport;
  readonly logger: Logger;
  readonly isReady: () => boolean;
  /** name → address of each listener, read when the health page is asked for (they listen after the console is built). */
  readonly listeners: () => readonly { readonly name: string; readonly address: string }[];
  readonly stores: () => readonly { readonly name: string; readonly backend: string; readonly state: string; readonly detail: string }[];
  readonly dnsEnabled: boolean;
  /** Where flow records go: "stdout" or the file. */
  readonly flowLog: string;
}

export interface OperatorConsole {
  /** The flow recorder's tap: a record was written as `line`. */
  flowRecorded(flow: Flow, line: string): void;
  /** A policy reload attempt ended. */
  reloadEnded(report: ReloadReport): void;
  /** The flow log telemetry writes follow-up records to, tapped: they become rows too (late attribution). */
  tapFollowUps(log: FlowLog): FlowLog;
  readonly handler: ReturnType<typeof createConsoleHandler>;
  readonly recent: RecentFlows;
  close(): Promise<void>;
}

/**
 * Which flows the console keeps (ring, alert board, history): every block and every alert, and allowed flows up
 * to `maxRate` a second. Keeping every flow at proxy speed would hold thousands of record strings long enough for
 * the garbage collector to promote them (measured: GC time 3 % → 8 % of the proxy's CPU at ~5,000 flows/s with a
 * 2,000-flow ring); at a few hundred a second that cost disappears, and an operator loses nothing a page of
 * flows could show.
 */
class KeepGate {
  private second = -1;
  private allowedThisSecond = 0;
  sampledOut = 0;

  constructor(private readonly maxRate: number) {}

  decide(flow: Flow, nowMs: number): boolean {
    if (flow.get('event.action') !== 'allow' || flow.get('event.severity') !== undefined) return true;
    return this.allowOne(nowMs);
  }

  /** One more allowed, non-alert flow this second: true while under maxRate. */
  allowOne(nowMs: number): boolean {
    const second = Math.floor(nowMs / 1000);
    if (second !== this.second) {
      this.second = second;
      this.allowedThisSecond = 0;
    }
    if (this.allowedThisSecond < this.maxRate) {
      this.allowedThisSecond += 1;
      return true;
    }
    this.sampledOut += 1;
    return false;
  }
}

/** Counts per second over the last RATE_SECONDS seconds, in a ring (no timer: advanced when touched). */
class RateCounter {
  private readonly slots = new Array<number>(RATE_SECONDS).fill(0);
  private second = Math.floor(Date.now() / 1000);
  total = 0;

  add(nowMs: number): void {
    this.advance(Math.floor(nowMs / 1000));
    this.slots[this.second % RATE_SECONDS] = (this.slots[this.second % RATE_SECONDS] ?? 0) + 1;
    this.total += 1;
  }

  /** Mean per second over the last minute (the current, partial second left out). */
  perSecond(nowMs: number): number {
    const second = Math.floor(nowMs / 1000);
    this.advance(second);
    let sum = 0;
    for (let i = 1; i < RATE_SECONDS; i += 1) sum += this.slots[(second - i) % RATE_SECONDS] ?? 0;
    return sum / (RATE_SECONDS - 1);
  }

  private advance(second: number): void {
    if (second <= this.second) return;
    const gap = Math.min(second - this.second, RATE_SECONDS);
    for (let i = 1; i <= gap; i += 1) this.slots[(this.second + i) % RATE_SECONDS] = 0;
    this.second = second;
  }
}

type Values = { value: number; labels: Partial<Record<string, string | number>> }[];

async function counterValues(metric: { get(): Promise<{ values: Values }> }): Promise<Values> {
  return (await metric.get()).values;
}

function sum(values: readonly { value: number }[]): number {
  return values.reduce((total, v) => total + v.value, 0);
}

export function createOperatorConsole(options: ConsoleOptions, sources: ConsoleSources): OperatorConsole {
  const recent = new RecentFlows({ capacity: options.recent, liveRate: options.liveRate });
  const alerts = new AlertBoard();
  const sessions = new Sessions({ idleMs: options.sessionIdleMs, maxAgeMs: options.sessionMaxAgeMs });
  const flows = new RateCounter();
  const keep = new KeepGate(options.maxRate);
  const reloads: ReloadView[] = [];
  const { history, metrics, policy } = sources;

  const explain = (flow: ConsoleFlow): FlowDetail => {
    const current = policy.current();
    let record: unknown;
    try {
      record = JSON.parse(flow.record);
    } catch {
      record = flow.record;
    }
    const read = parseFlowJson(flow.record);
    const followUps = recent.followUpsOf(flow.id).map(summaryOf);
    if (!read.ok) return { flow, record, policySha256: current.sha256, rules: [], explainError: read.errors.join('; '), followUps };
    const explained = explainFlow(current, explainFacts(read.values, new Set()), { closed: true });
    return { flow, record, policySha256: current.sha256, rules: explained.rules, explainError: null, followUps };
  };

  const policyView = async (): Promise<PolicyView> => {
    const current = policy.current();
    const hits = new Map<string, number>();
    for (const { value, labels } of await counterValues(metrics.ruleMatches)) hits.set(`${String(labels['rule'])}|${String(labels['mode'])}`, value);
    const rules = [...current.rules, ...current.shadowRules]
      .sort((a, b) => current.files.indexOf(a.file) - current.files.indexOf(b.file) || a.line - b.line)
      .map((r) => ({ id: r.id, mode: r.mode, action: r.action, file: r.file, line: r.line, severity: r.severity, tags: r.tags, hits: hits.get(`${r.id}|${r.mode}`) ?? 0 }));
    const builtinHits = [...hits]
      .filter(([key]) => key.startsWith('builtin:'))
      .map(([key, value]) => ({ id: key.split('|', 1)[0] ?? key, hits: value }));
    return { sha256: current.sha256, files: current.files, rules, builtinHits, tests: current.tests.length, reloads: [...reloads], lastErrors: policy.lastErrors() };
  };

  const health = async (): Promise<HealthView> => {
    const nowMs = Date.now();
    const flowValues = await counterValues(metrics.flows);
    const hintValues = await counterValues(metrics.hints);
    const hintsBy = (result: string): number => sum(hintValues.filter((v) => v.labels['result'] === result));
    const dnsValues = await counterValues(metrics.dnsQueries);
    const dropped = sum(await counterValues(metrics.flowLogDropped));
    return {
      version: options.version,
      startedMs: options.startedMs,
      nowMs,
      ready: sources.isReady(),
      listeners: sources.listeners(),
      flowRate: { lastMinute: flows.perSecond(nowMs), total: sum(flowValues) },
      activeFlows: sum(await counterValues(metrics.activeFlows)),
      blocked: sum(flowValues.filter((v) => v.labels['action'] === 'block')),
      hints: { perSecond: hintRate.perSecond(hintsBy('accepted'), nowMs), accepted: hintsBy('accepted'), rejected: [{ reason: 'rejected (unreadable, invalid or unauthorised)', count: hintsBy('rejected') }] },
      dns: {
        enabled: sources.dnsEnabled,
        queries: sum(dnsValues),
        upstreamErrors: sum(dnsValues.filter((v) => v.labels['action'] === 'error')),
      },
      stores: [
        ...sources.stores(),
        { name: 'flow log', backend: sources.flowLog, state: dropped > 0 ? `dropped ${dropped} records` : 'ok', detail: dropped > 0 ? 'the destination was slower than the flows (backlog over 64 MiB)' : 'every record written' },
        { name: 'console history', backend: history.stats().backend, state: history.stats().lastError ?? 'ok', detail: `${history.stats().rows} flows` },
      ],
      flowLogDropped: dropped,
      console: { viewers: recent.viewerCount, ringSize: recent.size, ringCapacity: recent.capacity, maxRate: options.maxRate, sampledOut: keep.sampledOut, history: history.stats() },
    };
  };

  /** Accepted hints per second, from two readings of the counter at least 10 s apart. */
  const hintRate = (() => {
    let last: { at: number; total: number } | null = null;
    let rate = 0;
    return {
      perSecond(total: number, nowMs: number): number {
        if (last === null) last = { at: options.startedMs, total: 0 };
        if (nowMs - last.at >= 10_000) {
          rate = (total - last.total) / ((nowMs - last.at) / 1000);
          last = { at: nowMs, total };
        }
        return rate;
      },
    };
  })();

  const handler = createConsoleHandler({
    secret: options.secret,
    secureCookie: options.secureCookie,
    sessions,
    recent,
    history,
    alerts,
    coverage: sources.coverage,
    policy: policyView,
    reloadPolicy: sources.reloadPolicy,
    health,
    explain,
    logger: sources.logger,
  });

  return {
    flowRecorded(flow, line) {
      const nowMs = Date.now();
      flows.add(nowMs);
      const kept = keep.decide(flow, nowMs);
      // A flow neither kept nor watched costs nothing more.
      if (!kept && recent.viewerCount === 0) return;
      const item = toConsoleFlow(flow, line, nowMs);
      recent.add(item, kept);
      if (!kept) return;
      alerts.add(item);
      history.add(item);
    },
    tapFollowUps(log) {
      return tapFlowLog(log, (line) => {
        // Follow-ups are rare (a hint later than the flow's end): parsing the record is affordable here.
        let parsed: unknown;
        try {
          parsed = JSON.parse(line);
        } catch {
          return;
        }
        const nowMs = Date.now();
        const item = consoleFlowFromRecord(parsed, line, nowMs);
        if (item === null) return;
        flows.add(nowMs);
        // A follow-up is kept like any record: always when it is an alert (a late detection), else within max_rate.
        const kept = item.severity !== null || item.action === 'block' || keep.allowOne(nowMs);
        recent.add(item, kept);
        if (!kept) return;
        alerts.add(item);
        history.add(item);
      });
    },
    reloadEnded(report) {
      reloads.unshift({ atMs: Date.now(), trigger: report.trigger, outcome: report.outcome, sha256: report.sha256, errors: report.errors, reason: report.reason });
      if (reloads.length > RELOADS_KEPT) reloads.length = RELOADS_KEPT;
    },
    handler,
    recent,
    async close() {
      recent.close();
      await history.close();
    },
  };
}

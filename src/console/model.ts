/**
 * What the operator console (docs/console.md) shows, as plain data: the recent-flow store fills `ConsoleFlow`s,
 * the routes (src/console/routes.ts) build one view model per page, and the views (src/console/views/) turn a
 * view model into HTML. Nothing here runs on the proxy's hot path except `ConsoleFlow` construction, which the
 * flow recorder's tap does once per record (src/console/recent.ts).
 */
import type { CoverageReport } from '../coverage/tally.js';
import type { RuleExplanation } from '../policy/explain.js';
import type { RuleAction, RuleMode, Severity } from '../policy/decision.js';

export type ConsoleAction = 'allow' | 'block';
export type ConsoleAttribution = 'telemetry' | 'header' | 'none';

/** One flow as the console lists and filters it. `record` is the whole ECS record, as written to the flow log. */
export interface ConsoleFlow {
  /** event.id */
  readonly id: string;
  /** When the record was written, ms since the epoch. */
  readonly timeMs: number;
  readonly action: ConsoleAction;
  /** network.protocol: http, tls, dns or unknown. */
  readonly protocol: string;
  /** The highest severity of the matched rules: the flow is an alert when it is not null. */
  readonly severity: Severity | null;
  readonly sourceIp: string;
  readonly user: string | null;
  /** host.name (the endpoint). */
  readonly host: string | null;
  /** process.name */
  readonly process: string | null;
  /** rule.id: the rule that decided (built-in rules too), null when the default applied. */
  readonly rule: string | null;
  /** Every live rule that matched, then every shadow rule that matched. */
  readonly rules: readonly string[];
  readonly tags: readonly string[];
  /** destination.domain, else destination.ip; with ":port". */
  readonly destination: string;
  readonly score: number | null;
  readonly attribution: ConsoleAttribution;
  /**
   * A follow-up record (docs/flow-record.md "Follow-up records": a hint that came after the flow's record was
   * written): the event.id of the record it completes; null for a flow's own record.
   */
  readonly followupOf: string | null;
  /** The ECS record's JSON text (one flow-log line without its newline). */
  readonly record: string;
}

/** A console flow without its record: what the live stream and the list send to the browser. */
export type ConsoleFlowSummary = Omit<ConsoleFlow, 'record'>;

/**
 * A filter of the flow list and the live stream. Text fields match a case-insensitive substring (`host`: the
 * host name or the source address); `rule` and
 * `tag` match one of the flow's rules / tags exactly; every given field must match.
 */
export interface FlowFilter {
  readonly action?: ConsoleAction;
  /** true: only alerts (severity set); false: only flows that are not alerts. */
  readonly alert?: boolean;
  readonly host?: string;
  readonly user?: string;
  readonly process?: string;
  readonly rule?: string;
  readonly tag?: string;
  readonly destination?: string;
  /** Only flows whose score is at least this. */
  readonly minScore?: number;
}

/** Query of older flows (the history store): newest first. */
export interface FlowQuery {
  readonly filter: FlowFilter;
  /** At most this many rows (1–1000). */
  readonly limit: number;
  /** Only flows written strictly before this time (ms) — the next page. */
  readonly beforeMs?: number;
  /** Only flows written at or after this time (ms). */
  readonly sinceMs?: number;
}

/** The history store (embedded SQLite, on its own thread) as the console uses it. */
export interface FlowHistory {
  /** Queue one flow; never blocks and never throws (a full queue drops the oldest and counts it). */
  add(flow: ConsoleFlow): void;
  query(query: FlowQuery): Promise<ConsoleFlow[]>;
  /** One flow by event.id, or null. */
  get(id: string): Promise<ConsoleFlow | null>;
  stats(): HistoryStats;
  close(): Promise<void>;
}

export interface HistoryStats {
  readonly backend: 'sqlite' | 'none';
  /** Where the file is (null for none). */
  readonly path: string | null;
  /** Rows in the file at the last write (approximate between writes). */
  readonly rows: number;
  /** Flows written to the file since start. */
  readonly written: number;
  /** Allowed, non-alert flows not written because they came faster than max_rate (sampling). */
  readonly sampledOut: number;
  /** Flows lost: queue full, or a write failed. */
  readonly dropped: number;
  /** Rows deleted because they were older than the retention or over max_rows. */
  readonly pruned: number;
  /** The last write or prune error, or null. */
  readonly lastError: string | null;
  readonly retentionMs: number;
  readonly maxRows: number;
}

/** The rate cut of the live stream for one viewer, sent every second while it is cutting. */
export interface LiveSampling {
  /** Flows that matched the viewer's filter in the last second. */
  readonly matched: number;
  /** Flows sent of those. */
  readonly sent: number;
  /** The most flows sent per second to one viewer (console.live_rate). */
  readonly limit: number;
}

/** Alerts grouped by one key, over the alert board's window. */
export interface AlertGroup {
  /** The rule id, or "host.name / process.name" (or the source address when no host name is known). */
  readonly key: string;
  readonly rule: string | null;
  readonly host: string | null;
  readonly process: string | null;
  readonly sourceIp: string | null;
  readonly severity: Severity;
  readonly count: number;
  readonly blocked: number;
  readonly firstMs: number;
  readonly lastMs: number;
  /** Alerts per minute over the last `minutes` minutes, oldest first (for the sparkline). */
  readonly perMinute: readonly number[];
}

export interface AlertsView {
  readonly byRule: readonly AlertGroup[];
  readonly byEndpoint: readonly AlertGroup[];
  /** Alerts counted since start (groups may have been dropped when the board was full). */
  readonly total: number;
  readonly windowMinutes: number;
  /** Groups dropped because the board was full (bounded). */
  readonly evictedGroups: number;
}

export interface PolicyRuleView {
  readonly id: string;
  readonly mode: RuleMode;
  readonly action: RuleAction;
  readonly file: string;
  readonly line: number;
  readonly severity: Severity | null;
  readonly tags: readonly string[];
  /** Matches since start (egress_rule_matches_total{rule,mode}). */
  readonly hits: number;
}

export interface ReloadView {
  readonly atMs: number;
  readonly trigger: string;
  readonly outcome: 'success' | 'failure' | 'refused' | 'unchanged';
  readonly sha256: string | null;
  readonly errors: readonly string[];
  readonly reason: string | null;
}

export interface PolicyView {
  readonly sha256: string;
  readonly files: readonly string[];
  readonly rules: readonly PolicyRuleView[];
  /** Hits of the proxy's own rules (builtin:internal-destination …). */
  readonly builtinHits: readonly { readonly id: string; readonly hits: number }[];
  readonly tests: number;
  /** Last reload attempts, newest first (at most 20); empty when none happened since start. */
  readonly reloads: readonly ReloadView[];
  /** Errors of the files as they are on disk now, if the last attempt failed (else empty). */
  readonly lastErrors: readonly string[];
}

export interface HealthView {
  readonly version: string;
  readonly startedMs: number;
  readonly nowMs: number;
  readonly ready: boolean;
  readonly listeners: readonly { readonly name: string; readonly address: string }[];
  /** Records per second over the last minute, and since start. */
  readonly flowRate: { readonly lastMinute: number; readonly total: number };
  readonly activeFlows: number;
  readonly blocked: number;
  readonly hints: { readonly perSecond: number; readonly accepted: number; readonly rejected: readonly { readonly reason: string; readonly count: number }[] };
  readonly dns: { readonly queries: number; readonly upstreamErrors: number; readonly enabled: boolean };
  /** Hint store, baseline store, flow log, history: backend, state (`ok` or what is wrong) and what it holds. */
  readonly stores: readonly { readonly name: string; readonly backend: string; readonly state: string; readonly detail: string }[];
  readonly flowLogDropped: number;
  readonly console: {
    readonly viewers: number;
    readonly ringSize: number;
    readonly ringCapacity: number;
    /** Allowed, non-alert flows kept per second at most (console.max_rate), and how many were not kept since start. */
    readonly maxRate: number;
    readonly sampledOut: number;
    readonly history: HistoryStats;
  };
}

/** The explanation of one flow, for the expanded row: every rule in file order with its status. */
export interface FlowDetail {
  readonly flow: ConsoleFlow;
  /** The record, parsed. */
  readonly record: unknown;
  /** Explained against the policy in force now (which may differ from the one that decided). */
  readonly policySha256: string;
  readonly rules: readonly RuleExplanation[];
  /** Why the explanation could not be made (e.g. a field the record lacks), or null. */
  readonly explainError: string | null;
  /** Follow-up records that completed this flow later (late attribution), from the recent ring. */
  readonly followUps: readonly ConsoleFlowSummary[];
}

/** What every page's frame needs. */
export interface PageFrame {
  readonly title: string;
  /** The nav entry to mark as current. */
  readonly active: 'flows' | 'alerts' | 'endpoints' | 'policy' | 'health';
  /** The session's CSRF token, put in every form that POSTs. */
  readonly csrf: string;
  /** A one-line message at the top (e.g. "policy reloaded"), or null. */
  readonly notice: { readonly kind: 'ok' | 'error'; readonly text: string } | null;
}

export interface FlowsPageView {
  readonly frame: PageFrame;
  readonly filter: FlowFilter;
  /** Newest first. */
  readonly rows: readonly ConsoleFlowSummary[];
  /** Where the rows came from: the in-memory ring (live), or the history store (older pages). */
  readonly source: 'ring' | 'history';
  /** The page shows flows before this time (an older page: not live), or null for the newest flows. */
  readonly beforeMs: number | null;
  /** The `beforeMs` of the next (older) page, or null when there is none. */
  readonly olderBeforeMs: number | null;
  readonly liveRate: number;
}

export interface EndpointsPageView {
  readonly frame: PageFrame;
  readonly coverage: CoverageReport;
}

/**
 * The alerts page's board: alerts (flows whose matched rules carry a severity) grouped by rule and by endpoint
 * (host name and process), with first/last seen, counts, and per-minute counts for a sparkline.
 *
 * Bounded: at most `maxGroups` groups per grouping, least recently alerted dropped first (a Map kept in recency
 * order: delete + set on every alert), and a group not seen for `ttlMs` is dropped when the board is read. A flow
 * counts once under each rule that matched it, so the per-rule counts add up to more than the alert total when
 * two rules match one flow.
 */
import type { Severity } from '../policy/decision.js';
import type { AlertGroup, AlertsView, ConsoleFlowSummary } from './model.js';

const RANK: Readonly<Record<Severity, number>> = { low: 1, medium: 2, high: 3, critical: 4 };

export interface AlertBoardOptions {
  readonly maxGroups?: number;
  readonly windowMinutes?: number;
  readonly ttlMs?: number;
  readonly now?: () => number;
}

interface Group {
  readonly key: string;
  readonly rule: string | null;
  readonly host: string | null;
  readonly process: string | null;
  readonly sourceIp: string | null;
  severity: Severity;
  count: number;
  blocked: number;
  readonly firstMs: number;
  lastMs: number;
  /** Counts per minute; slot = minute % window. `minute` is the last minute written. */
  readonly buckets: number[];
  minute: number;
}

export class AlertBoard {
  private readonly byRule = new Map<string, Group>();
  private readonly byEndpoint = new Map<string, Group>();
  private readonly maxGroups: number;
  private readonly window: number;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private total = 0;
  private evicted = 0;

  constructor(options: AlertBoardOptions = {}) {
    this.maxGroups = options.maxGroups ?? 1_000;
    this.window = options.windowMinutes ?? 60;
    this.ttlMs = options.ttlMs ?? 24 * 3_600_000;
    this.now = options.now ?? Date.now;
  }

  /** Count a flow if it is an alert. */
  add(flow: ConsoleFlowSummary): void {
    const severity = flow.severity;
    if (severity === null) return;
    this.total += 1;
    const at = flow.timeMs;
    const rules = flow.rules.length > 0 ? flow.rules : [flow.rule ?? '(no rule)'];
    for (const rule of rules) this.count(this.byRule, rule, { rule, host: null, process: null, sourceIp: null }, flow, severity, at);
    const who = flow.host ?? flow.sourceIp;
    const endpointKey = `${who} / ${flow.process ?? '(unknown process)'}`;
    this.count(this.byEndpoint, endpointKey, { rule: null, host: flow.host, process: flow.process, sourceIp: flow.sourceIp }, flow, severity, at);
  }

  view(): AlertsView {
    const nowMs = this.now();
    return {
      byRule: this.groups(this.byRule, nowMs),
      byEndpoint: this.groups(this.byEndpoint, nowMs),
      total: this.total,
      windowMinutes: this.window,
      evictedGroups: this.evicted,
    };
  }

  private count(
    map: Map<string, Group>,
    key: string,
    who: Pick<Group, 'rule' | 'host' | 'process' | 'sourceIp'>,
    flow: ConsoleFlowSummary,
    severity: Severity,
    at: number,
  ): void {
    const minute = Math.floor(at / 60_000);
    let group = map.get(key);
    if (group === undefined) {
      if (map.size >= this.maxGroups) {
        const oldest = map.keys().next().value;
        if (oldest !== undefined) map.delete(oldest);
        this.evicted += 1;
      }
      group = { key, ...who, severity, count: 0, blocked: 0, firstMs: at, lastMs: at, buckets: new Array<number>(this.window).fill(0), minute };
    } else {
      map.delete(key);
    }
    map.set(key, group);
    this.advance(group, minute);
    group.buckets[minute % this.window] = (group.buckets[minute % this.window] ?? 0) + 1;
    group.count += 1;
    if (flow.action === 'block') group.blocked += 1;
    if (RANK[severity] > RANK[group.severity]) group.severity = severity;
    group.lastMs = Math.max(group.lastMs, at);
  }

  /** Zero the buckets of the minutes between the group's last minute and `minute`. */
  private advance(group: Group, minute: number): void {
    if (minute <= group.minute) return;
    const gap = Math.min(minute - group.minute, this.window);
    for (let i = 1; i <= gap; i += 1) group.buckets[(group.minute + i) % this.window] = 0;
    group.minute = minute;
  }

  private groups(map: Map<string, Group>, nowMs: number): AlertGroup[] {
    const minute = Math.floor(nowMs / 60_000);
    const out: AlertGroup[] = [];
    for (const [key, group] of map) {
      if (group.lastMs < nowMs - this.ttlMs) {
        map.delete(key);
        continue;
      }
      this.advance(group, minute);
      const perMinute: number[] = [];
      for (let i = this.window - 1; i >= 0; i -= 1) perMinute.push(group.buckets[(minute - i) % this.window] ?? 0);
      const { buckets: _b, minute: _m, ...rest } = group;
      out.push({ ...rest, perMinute });
    }
    return out.sort((a, b) => b.count - a.count || b.lastMs - a.lastMs);
  }
}

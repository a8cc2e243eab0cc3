/**
 * The decisions of the cluster primary, as pure functions so they can be tested without forking: when to
 * restart a crashed worker, how the workers' reload answers become one answer, how their metrics become one
 * scrape.
 */
import { AggregatorRegistry } from 'prom-client';
import type { ClusterReload, MetricsJson, WorkerReload } from './messages.js';

export interface RestartPolicy {
  /** Delay before the first restart of a crashed worker; doubled for each crash in a row. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** A worker that ran this long before it crashed starts a new series (its crash counts as the first). */
  readonly stableMs: number;
  /** Crashes in a row after which the slot is given up (bounded restarts). */
  readonly maxConsecutive: number;
}

/** 0.25 s, 0.5 s, 1 s … 30 s: eight quick crashes in a row (about a minute) give the slot up. */
export const DEFAULT_RESTART_POLICY: RestartPolicy = Object.freeze({ baseDelayMs: 250, maxDelayMs: 30_000, stableMs: 30_000, maxConsecutive: 8 });

export type RestartDecision =
  | { readonly restart: true; readonly delayMs: number; readonly consecutive: number }
  | { readonly restart: false; readonly consecutive: number };

/**
 * What to do after a worker crashed: `consecutive` is the slot's count of crashes in a row before this one,
 * `uptimeMs` how long the crashed process ran. Exponential backoff, reset by a stable run, capped in count.
 */
export function decideRestart(policy: RestartPolicy, consecutive: number, uptimeMs: number): RestartDecision {
  const n = uptimeMs >= policy.stableMs ? 1 : consecutive + 1;
  if (n > policy.maxConsecutive) return { restart: false, consecutive: n };
  return { restart: true, delayMs: Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (n - 1)), consecutive: n };
}

/**
 * One answer from the workers' answers to `reload`: ok only when every asked worker answered ok with the same
 * policy. A worker that did not answer is named in `errors`; error lines every worker reported (the same broken
 * file) are listed once.
 */
export function combineReloads(asked: readonly { readonly id: number; readonly pid: number }[], answers: ReadonlyMap<number, WorkerReload>, timeoutMs: number): ClusterReload {
  const errors: string[] = [];
  const seen = new Set<string>();
  const hashes = new Set<string>();
  let ok = asked.length > 0;
  const workers = asked.map(({ id, pid }) => {
    const a = answers.get(id);
    if (a === undefined) {
      ok = false;
      const line = `worker ${id} (pid ${pid}): no answer within ${timeoutMs} ms`;
      errors.push(line);
      return { id, pid, ok: false, sha256: null, errors: [line] };
    }
    if (!a.ok) ok = false;
    hashes.add(a.sha256);
    for (const line of a.errors) {
      if (seen.has(line)) continue;
      seen.add(line);
      errors.push(line);
    }
    return { id, pid, ok: a.ok, sha256: a.sha256, errors: a.errors };
  });
  if (hashes.size > 1) {
    ok = false;
    errors.push(`workers run different policies (${[...hashes].map((h) => h.slice(0, 12)).join(', ')}); a file changed during the reload: reload again`);
  }
  const agreed = hashes.size === 1 && workers.every((w) => w.sha256 !== null) ? ([...hashes][0] ?? null) : null;
  return { ok, sha256: agreed, errors, workers };
}

/** egress_flows_total (every label set) and egress_active_flows of one worker's metrics, for GET /v1/cluster. */
export function workerCounts(metrics: MetricsJson): { readonly flows: number; readonly activeFlows: number } {
  let flows = 0;
  let activeFlows = 0;
  for (const m of metrics) {
    if (m.name === 'egress_flows_total') for (const v of m.values) flows += v.value;
    else if (m.name === 'egress_active_flows') for (const v of m.values) activeFlows += v.value;
  }
  return { flows, activeFlows };
}

/**
 * The cluster's scrape: prom-client's aggregation over the processes' metrics, each metric combined by the
 * `aggregator` it was declared with (sum unless src/observe/metrics.ts says otherwise).
 */
export async function aggregateMetrics(all: readonly MetricsJson[]): Promise<{ readonly contentType: string; readonly text: string }> {
  const registry = AggregatorRegistry.aggregate([...all]);
  return { contentType: registry.contentType, text: await registry.metrics() };
}

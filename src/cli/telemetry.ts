import type { Config } from '../config/schema.js';
import { createAttribution, type TelemetryAttribution } from '../enrich/attribution.js';
import { withProcessClaims } from '../enrich/claims.js';
import type { HintSource } from '../enrich/hints.js';
import { createMemoryHintStore, type HintStore } from '../enrich/hint-store.js';
import type { Flow } from '../flow/flow.js';
import type { PolicyView } from '../flow/pipeline.js';
import { createHintsApi } from '../listeners/hints-api.js';
import type { ApiHandler } from '../listeners/admin.js';
import type { FlowLog } from '../observe/flow-log.js';
import { buildFollowUpRecord } from '../observe/follow-up.js';
import type { Logger } from '../observe/logger.js';
import { label, type Metrics } from '../observe/metrics.js';

export interface Telemetry {
  readonly store: HintStore;
  readonly attribution: TelemetryAttribution;
  /** What the pipeline consults: telemetry first, then verified process claims. */
  readonly hints: HintSource;
  /** POST /v1/hints. */
  readonly api: ApiHandler;
  /** Called after each flow record is written: watches for hints that come late. */
  flowEnded(flow: Flow): void;
  close(): Promise<void>;
}

/** Redis errors are logged at most this often (a down Redis errors on every reconnect attempt and every batch). */
const STORE_ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * The hint store `hints.store` names: "memory", or a redis:// URL (shared by replicas). An unreachable Redis
 * rejects (HINT_STORE_FAILED, the URL without credentials): the proxy refuses to start.
 *
 * The Redis store is imported only when configured: ioredis and its dependencies (~40 modules) cost a
 * proxy that keeps hints in memory (the default) about 10 MB of RSS for code it never runs (issue 9).
 */
export async function createHintStore(config: Config, logger?: Logger): Promise<HintStore> {
  const options = {
    windowMs: config.hints.window,
    managedWindowMs: config.hints.managed_window,
    maxEntries: config.hints.max_entries,
  };
  if (config.hints.store === 'memory') return createMemoryHintStore(options);
  const { createRedisHintStore } = await import('../enrich/hint-store-redis.js');
  let lastLogged = -Infinity;
  let suppressed = 0;
  return createRedisHintStore({
    url: config.hints.store,
    ...options,
    // Messages only (the store never puts hint contents in them), and rate-limited.
    onError: (err) => {
      const t = Date.now();
      if (t - lastLogged < STORE_ERROR_LOG_INTERVAL_MS) {
        suppressed++;
        return;
      }
      logger?.warn({ err: err.message, suppressed }, 'hint store: Redis error; hints stay on this replica until it is back');
      lastLogged = t;
      suppressed = 0;
    },
  });
}

/** Endpoint telemetry (issue 4): the hint store, attribution, the hints API and follow-up records. */
export async function createTelemetry(
  config: Config,
  deps: {
    metrics: Metrics;
    flowLog: FlowLog;
    policy: () => PolicyView;
    logger?: Logger;
    /** Features and score of a follow-up record's flow (the detection engine, built after telemetry). */
    rescore?: (flow: Flow) => void;
    /**
     * Wraps the store before anything uses it: a cluster worker with the memory store shares every event it
     * stores with the other workers (src/cluster/share.ts).
     */
    wrapStore?: (store: HintStore) => HintStore;
  },
): Promise<Telemetry> {
  const { metrics } = deps;
  const own = await createHintStore(config, deps.logger);
  const store = deps.wrapStore === undefined ? own : deps.wrapStore(own);
  const attribution = createAttribution(store, {
    hintWaitMs: config.policy.hint_wait,
    onAttributed: (lagMs) => metrics.hintCorrelationLag.observe(lagMs / 1000),
    onLateHint: (flow, a) => {
      deps.flowLog.write(JSON.stringify(buildFollowUpRecord(flow, a, deps.policy(), deps.rescore)));
      label.followUp(metrics);
    },
  });
  // Store sizes are read when Prometheus scrapes, so they are current even when no hints arrive.
  metrics.hintStoreStats.sizes = () => {
    const size = store.size();
    return { network: size.network, process: size.process, dns: size.dns, managed: size.managed };
  };
  metrics.hintStoreStats.evictions = () => store.evictions();
  const api = createHintsApi({
    store,
    maxBodyBytes: config.hints.max_body_bytes,
    onIngested: (result) => {
      label.hint(metrics, 'accepted', result.accepted);
      label.hint(metrics, 'rejected', result.rejected);
    },
  });
  return {
    store,
    attribution,
    hints: withProcessClaims(attribution),
    api,
    flowEnded: (flow) => attribution.flowEnded(flow),
    async close() {
      attribution.close();
      await store.close();
    },
  };
}

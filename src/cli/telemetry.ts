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

/** Endpoint telemetry (issue 4): the hint store, attribution, the hints API and follow-up records. */
export function createTelemetry(
  config: Config,
  deps: { metrics: Metrics; flowLog: FlowLog; policy: () => PolicyView },
): Telemetry {
  const { metrics } = deps;
  const store = createMemoryHintStore({
    windowMs: config.hints.window,
    managedWindowMs: config.hints.managed_window,
    maxEntries: config.hints.max_entries,
  });
  const attribution = createAttribution(store, {
    hintWaitMs: config.policy.hint_wait,
    onAttributed: (lagMs) => metrics.hintCorrelationLag.observe(lagMs / 1000),
    onLateHint: (flow, a) => {
      deps.flowLog.write(buildFollowUpRecord(flow, a, deps.policy()));
      label.attributed(metrics, 'telemetry');
    },
  });
  let lastEvictions = 0;
  const api = createHintsApi({
    store,
    maxBodyBytes: config.hints.max_body_bytes,
    onIngested: (result) => {
      label.hint(metrics, 'accepted', result.accepted);
      label.hint(metrics, 'rejected', result.rejected);
      const size = store.size();
      label.hintStore(metrics, 'network', size.network);
      label.hintStore(metrics, 'process', size.process);
      label.hintStore(metrics, 'dns', size.dns);
      label.hintStore(metrics, 'managed', size.managed);
      const evictions = store.evictions();
      if (evictions > lastEvictions) metrics.hintStoreEvictions.inc(evictions - lastEvictions);
      lastEvictions = evictions;
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

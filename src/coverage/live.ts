/**
 * Coverage of the flows this process has seen, for GET /v1/coverage: a CoverageTally fed beside the record path,
 * never in it.
 *
 * - `flowRecorded` runs after each record is written (the flow recorder.s afterRecord hook, src/cli/start.ts): it
 *   reads four fields the flow already holds and does a few Map operations; nothing is allocated once the client
 *   is known (an unattributed flow adds one entry to the bounded follow-up table).
 * - Follow-up records (late hints) are written by telemetry straight to the flow log (src/cli/telemetry.ts), so
 *   `tapFollowUps` wraps the flow log telemetry writes to: it sees only follow-ups (rare), reads their
 *   `egress.followup_of` and moves the flow to telemetry. It must be called before the original flow could be
 *   reported late, i.e. `flowRecorded` runs before telemetry's `flowEnded` (which may write the follow-up at once).
 * - `watchHints` subscribes to the hint store's network events (last hint time, hint lag per client) and answers
 *   "managed" from the store's own `isManaged` (hints.managed_window, docs/process-hints.md), as the pipeline does.
 */
import type http from 'node:http';
import type { Flow } from '../flow/flow.js';
import type { HintStore } from '../enrich/hint-store.js';
import { sendJson, type ApiHandler } from '../listeners/admin.js';
import { tapFlowLog, type FlowLog } from '../observe/flow-log.js';
import { readCoverageLine } from './record.js';
import { CoverageTally, DEFAULT_STALE_MS, type AttributionMethod, type CoverageReport, type CoverageTallyOptions } from './tally.js';

export interface LiveCoverage {
  readonly tally: CoverageTally;
  /** A flow record was written. Call before telemetry's flowEnded. */
  flowRecorded(flow: Flow): void;
  /** The flow log telemetry writes follow-up records to, tapped. */
  tapFollowUps(log: FlowLog): FlowLog;
  /** Hear the store's network events and take "managed" from it; returns the unsubscribe function. */
  watchHints(store: Pick<HintStore, 'isManaged' | 'onNetworkEvent'>): () => void;
  /** GET /v1/coverage[?stale=MINUTES][&limit=N]. */
  readonly api: ApiHandler;
  /** The report as GET /v1/coverage gives it with no query (the console's endpoints page). */
  report(): CoverageReport;
}

export interface LiveCoverageOptions extends CoverageTallyOptions {
  readonly now?: () => number;
}

/** Clients listed by default in the API answer (`limit` changes it); the rest are counted in bounds.hosts_omitted. */
export const DEFAULT_API_HOST_LIMIT = 1_000;
const STALE_QUERY = /[?&]stale=(\d+(?:\.\d+)?)(?:&|$)/;
const LIMIT_QUERY = /[?&]limit=(\d+)(?:&|$)/;
const MAX_STALE_MINUTES = 7 * 24 * 60;

function methodOf(value: string | undefined): AttributionMethod {
  return value === 'telemetry' || value === 'header' ? value : 'none';
}

/** `?stale=` in minutes and `?limit=`; null when one is given but out of range. */
function queryOptions(url: string): { staleMs: number; limit: number } | null {
  const stale = STALE_QUERY.exec(url)?.[1];
  const limit = LIMIT_QUERY.exec(url)?.[1];
  const staleMinutes = stale === undefined ? DEFAULT_STALE_MS / 60_000 : Number(stale);
  const hostLimit = limit === undefined ? DEFAULT_API_HOST_LIMIT : Number(limit);
  if (!(staleMinutes > 0 && staleMinutes <= MAX_STALE_MINUTES) || !Number.isSafeInteger(hostLimit)) return null;
  return { staleMs: staleMinutes * 60_000, limit: hostLimit };
}

export function createLiveCoverage(options: LiveCoverageOptions = {}): LiveCoverage {
  const tally = new CoverageTally(options);
  const now = options.now ?? Date.now;
  let isManaged: (ip: string) => boolean = () => false;

  const api: ApiHandler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const query = queryOptions(req.url ?? '');
    if (query === null) return sendJson(res, 400, { error: `stale takes minutes (more than 0, at most ${MAX_STALE_MINUTES}); limit a whole number` });
    sendJson(res, 200, tally.report({ nowMs: now(), staleMs: query.staleMs, isManaged, hostLimit: query.limit }));
  };

  return {
    tally,
    flowRecorded(flow) {
      const ip = flow.get('source.ip');
      // Only a managed client's flow can get a follow-up (telemetry watches for late hints only for those:
      // src/enrich/attribution.ts flowEnded), so only its id is kept for the join.
      const awaited = ip !== undefined && isManaged(ip) ? flow.id : undefined;
      tally.addFlow(awaited, ip, methodOf(flow.get('egress.attribution')), flow.get('host.name'), flow.startedMs);
    },
    tapFollowUps(log) {
      return tapFlowLog(log, (line) => {
        const read = readCoverageLine(line);
        if (read.kind === 'followup') tally.addFollowUp(read.originalId);
      });
    },
    watchHints(store) {
      isManaged = (ip) => store.isManaged(ip);
      return store.onNetworkEvent((event) => tally.noteHint(event.sourceIp, event.timeMs, now()));
    },
    api,
    report: () => tally.report({ nowMs: now(), staleMs: DEFAULT_STALE_MS, isManaged, hostLimit: DEFAULT_API_HOST_LIMIT }),
  };
}

/**
 * What the proxy remembers across flows, as feature families: the baselines (has this process talked to this
 * destination before? how many of the fleet's hosts have?) and the beacon tracker (does this host/process/
 * destination pair check in on a timer?). Reads are synchronous, from bounded memory; the flow is learned
 * from when it ends (`learnFromFlow`), after its own score, so a flow is always judged against the past.
 */
import type { Flow } from '../flow/flow.js';
import type { Baseline, BaselineQuery } from '../enrich/baseline/baseline.js';
import type { BeaconResult, BeaconTracker } from './beacon.js';
import { processSettled } from './extractors.js';
import type { FeatureExtractor } from './score.js';

/** Below this many known hosts a share of the fleet means nothing (RITA's 2 % of 5 hosts is no host at all). */
const MIN_HOSTS_FOR_PREVALENCE = 10;
/** A JA4 seen in at most this share of a process's flows (and at most twice) is rare for it. */
const RARE_JA4_SHARE = 0.02;
/** The process must have this many flows before one of its fingerprints can be called rare. */
const MIN_PROCESS_FLOWS = 20;

/** The baseline key of a flow: who (host, process), where (registrable domain, else IP), with what (JA4). */
export function baselineQuery(flow: Flow): BaselineQuery | null {
  const destination = flow.get('destination.registered_domain') ?? flow.get('destination.ip');
  if (destination === undefined || flow.kind === 'dns') return null;
  return {
    host: flow.get('host.name') ?? flow.get('source.ip') ?? '',
    process: flow.get('process.name') ?? null,
    destination,
    ja4: flow.get('tls.client.ja4') ?? null,
  };
}

export function baselineExtractor(baseline: Baseline): FeatureExtractor {
  return {
    name: 'baseline',
    extract(flow) {
      if (flow.kind === 'dns') return true;
      // Wait for every fact the key is made of: the destination, the process, the ClientHello.
      if (flow.resolving || !processSettled(flow) || (flow.kind === 'connect' && flow.canStillReach('client-hello'))) return false;
      const query = baselineQuery(flow);
      if (query === null) return !flow.canStillReach('connect') && !flow.canStillReach('http-request');
      const facts = baseline.lookup(query);
      if (facts.learning) {
        // Rarity means nothing while the baseline is young: say so, and claim nothing.
        flow.set('egress.baseline.learning', true);
        return true;
      }
      if (facts.totalHosts >= MIN_HOSTS_FOR_PREVALENCE) {
        flow.set('egress.features.prevalence', Math.round((facts.destinationHosts / facts.totalHosts) * 1000) / 1000);
      }
      if (query.process !== null) {
        flow.set('egress.features.first_seen', facts.processDestination.count <= 0);
        if (query.ja4 !== null && facts.processTotal >= MIN_PROCESS_FLOWS) {
          const count = facts.processJa4.count;
          flow.set('egress.features.rare_for_process', count <= 2 && count / facts.processTotal <= RARE_JA4_SHARE);
        }
      }
      return true;
    },
  };
}

/** Key of the beacon ring: host, process (or `-` when unattributed), destination. */
function beaconKey(flow: Flow): string | null {
  const destination = flow.get('destination.domain') ?? flow.get('destination.ip');
  if (destination === undefined || flow.kind === 'dns') return null;
  return `${flow.get('host.name') ?? flow.get('source.ip') ?? ''}|${flow.get('process.name') ?? '-'}|${destination}:${flow.get('destination.port') ?? 0}`;
}

function setBeacon(flow: Flow, result: BeaconResult | null): void {
  if (result === null) return;
  flow.set('egress.beacon.score', result.score);
  flow.set('egress.beacon.connections', result.connections);
  flow.set('egress.beacon.interval_ms', Math.round(result.intervalMs));
  flow.set('egress.beacon.jitter_ms', Math.round(result.jitterMs));
}

/** At decision time: the score of the key's earlier connections (the policy can block the next check-in). */
export function beaconExtractor(tracker: BeaconTracker): FeatureExtractor {
  return {
    name: 'beacon',
    extract(flow) {
      if (flow.kind === 'dns') return true;
      if (!processSettled(flow)) return false;
      const key = beaconKey(flow);
      if (key !== null) setBeacon(flow, tracker.peek(key));
      return true;
    },
  };
}

/** At the end: this connection joins its ring (time it started, bytes it sent), and the record gets the new score. */
export function beaconObserver(tracker: BeaconTracker): FeatureExtractor {
  return {
    name: 'beacon-observe',
    extract(flow) {
      const key = beaconKey(flow);
      // Only flows that reached their destination are check-ins; a blocked attempt is not a connection.
      if (key === null || flow.decision === null || flow.decision.status !== 'final' || flow.decision.verdict !== 'allow') return true;
      setBeacon(flow, tracker.observe(key, flow.startedMs, flow.sourceBytes));
      return true;
    },
  };
}

/** After the flow's last score: the baseline learns it (queued; persisted in batches off the hot path). */
export function learnFromFlow(baseline: Baseline, flow: Flow): void {
  const query = baselineQuery(flow);
  if (query !== null && flow.decision !== null && flow.decision.status === 'final' && flow.decision.verdict === 'allow') {
    baseline.record(query, flow.startedMs);
  }
}

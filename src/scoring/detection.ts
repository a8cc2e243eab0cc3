/**
 * The detection engine, assembled from the config: the data files (C2 URI shapes, process catalogue,
 * User-Agents, TLS families), the baseline store, the beacon tracker, GeoIP, and the signal scorers. Everything
 * that reads a file or opens a store does it here, once, at start; the pipeline only calls `scoring`.
 */
import type { Config } from '../config/schema.js';
import type { Flow } from '../flow/flow.js';
import { createMemoryBaseline, type Baseline } from '../enrich/baseline/baseline.js';
import { openGeoIp, type GeoIp } from '../enrich/geoip.js';
import { BeaconTracker } from './beacon.js';
import { DnsFlags } from './dns-flags.js';
import {
  bodyExtractor,
  destinationExtractor,
  fitExtractor,
  httpExtractor,
  processExtractor,
  tlsExtractor,
  uriExtractor,
} from './extractors.js';
import { loadC2UriShapes, SHIPPED_C2_URI_SHAPES } from './features/c2-uri-shapes.js';
import { loadProcessCatalogue, SHIPPED_PROCESS_CATALOGUE } from './features/process.js';
import { loadTlsFamilies, SHIPPED_TLS_FAMILIES } from './features/tls-family.js';
import { loadUserAgents, SHIPPED_USER_AGENTS } from './features/user-agent.js';
import { baselineExtractor, beaconExtractor, beaconObserver, learnFromFlow } from './history.js';
import { createScoring, type Scorer, type Scoring } from './score.js';
import { defaultScorers, featureScorers } from './scorers.js';
import type { SignalName, Weights } from './signals.js';

export interface Detection {
  readonly scoring: Scoring;
  /** Run once the destination address is known (GeoIP/ASN). */
  readonly destinationEnrichers: readonly ((flow: Flow) => void)[];
  /** null when scoring is off. */
  readonly beacons: BeaconTracker | null;
  readonly baseline: Baseline | null;
  close(): Promise<void>;
}

export interface DetectionDeps {
  /** The weights in force (policy `scoring.weights` over the defaults). */
  readonly weights: () => Weights;
  /** The DNS signal scorers (they count queries in the DNS forwarder's enricher). */
  readonly dnsScorers: readonly Scorer[];
  /** Called with every finished flow's signals (metrics). */
  readonly onSignals?: (flow: Flow, signals: readonly SignalName[]) => void;
}

/** Signals raised by a DNS query that make later flows to the same name suspect. */
const DNS_FLAG_SIGNALS: ReadonlySet<SignalName> = new Set<SignalName>(['dns_dga', 'dns_long_label', 'dns_tunnel', 'dns_nxdomain_burst']);

async function openBaseline(config: Config): Promise<Baseline> {
  const b = config.baseline;
  const opts = { halfLifeMs: b.half_life, learningMs: b.learning, maxEntries: b.max_entries };
  if (b.store === 'memory') return createMemoryBaseline(opts);
  // Loaded on demand: each backend pulls in a native module or a client library the others do not need (RSS).
  if (b.store === 'sqlite') return (await import('../enrich/baseline/baseline-sqlite.js')).openSqliteBaseline(b.dir, opts);
  return (await import('../enrich/baseline/baseline-redis.js')).openRedisBaseline(b.store, opts);
}

function geoEnricher(geo: GeoIp): (flow: Flow) => void {
  return (flow) => {
    const ip = flow.get('destination.ip');
    if (ip === undefined || flow.get('egress.destination.internal') === true) return;
    const facts = geo.lookup(ip);
    if (facts === null) return;
    flow.set('destination.geo.country_iso_code', facts.countryIso);
    flow.set('destination.as.number', facts.asNumber);
    flow.set('destination.as.organization.name', facts.asOrganization);
  };
}

export async function createDetection(config: Config, deps: DetectionDeps): Promise<Detection> {
  const geo = await openGeoIp({ city: config.geoip.city, asn: config.geoip.asn });
  const destinationEnrichers = geo === null ? [] : [geoEnricher(geo)];
  if (!config.scoring.enabled) {
    return {
      scoring: createScoring({ extractors: [], scorers: [...defaultScorers, ...deps.dnsScorers], weights: deps.weights, ...(deps.onSignals ? { onFinished: deps.onSignals } : {}) }),
      destinationEnrichers,
      beacons: null,
      baseline: null,
      close: async () => geo?.close(),
    };
  }
  const s = config.scoring;
  const [shapes, processes, agents, families] = await Promise.all([
    loadC2UriShapes(s.c2_uri_shapes ?? SHIPPED_C2_URI_SHAPES),
    loadProcessCatalogue(s.processes ?? SHIPPED_PROCESS_CATALOGUE),
    loadUserAgents(s.user_agents ?? SHIPPED_USER_AGENTS),
    loadTlsFamilies(s.tls_families ?? SHIPPED_TLS_FAMILIES),
  ]);
  const baseline = await openBaseline(config);
  const beacons = new BeaconTracker({ minConnections: s.beacon.min_connections, maxKeys: s.beacon.max_keys, ttlMs: s.beacon.ttl });
  const flags = new DnsFlags();
  const scoring = createScoring({
    // Order matters only where one family reads another's output: process before fit, destination before baseline.
    extractors: [
      destinationExtractor(flags),
      uriExtractor(shapes),
      httpExtractor(agents),
      tlsExtractor(families),
      processExtractor(processes),
      fitExtractor(families, agents),
      baselineExtractor(baseline),
      beaconExtractor(beacons),
    ],
    endExtractors: [bodyExtractor, beaconObserver(beacons)],
    scorers: [...featureScorers, ...deps.dnsScorers],
    weights: deps.weights,
    onFinished(flow, signals) {
      learnFromFlow(baseline, flow);
      const why = flow.kind === 'dns' ? signals.find((signal) => DNS_FLAG_SIGNALS.has(signal)) : undefined;
      if (why !== undefined) {
        const client = flow.get('source.ip');
        const domain = flow.get('dns.question.registered_domain') ?? flow.get('dns.question.name');
        if (client !== undefined && domain !== undefined) flags.remember(client, domain, why);
      }
      deps.onSignals?.(flow, signals);
    },
  });
  return {
    scoring,
    destinationEnrichers,
    beacons,
    baseline,
    async close() {
      geo?.close();
      await baseline.close();
    },
  };
}

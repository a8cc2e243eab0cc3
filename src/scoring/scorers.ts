/**
 * Signal scorers: each reads facts and `egress.features.*` (computed once by extractors.ts) and says, in words
 * a SOC analyst reads, what is unusual. Their weights live in signals.ts; docs/scoring.md explains each one,
 * its known false positives and how to tune it. Scorers run at every stage, so they only read the flow.
 */
import type { Flow } from '../flow/flow.js';
import type { FieldName, FIELDS } from '../flow/fields.js';
import type { Scorer } from './score.js';
import type { SignalName } from './signals.js';

/**
 * Whether the client named its destination by IP. destination.domain alone cannot tell: the DNS memory
 * (src/enrich/dns-memory.ts) names a bare-IP destination from earlier answers. The listener records what the
 * request target was (egress.destination.ip_literal, from the parsed target, so `2130706433` counts as an IP too);
 * flows without request facts (unit tests) fall back to "no destination.domain".
 */
function isIpLiteralTarget(flow: Flow): boolean {
  const literal = flow.get('egress.destination.ip_literal');
  return literal ?? flow.get('destination.domain') === undefined;
}

/** Ports that web clients use; anything else from a browser-less process is worth a look (AN0922). */
export const WEB_PORTS: ReadonlySet<number> = new Set([80, 443, 8080, 8443]);

/** Script hosts and LOLBins have almost no legitimate egress; admin tools (PowerShell) are judged on the rest. */
const PROCESS_CATEGORY_SIGNAL = { 'script-host': 'process_script_host', lolbin: 'process_lolbin' } as const;

const destinationName = (flow: Flow): string => flow.get('destination.domain') ?? flow.get('destination.ip') ?? 'the destination';
const processName = (flow: Flow): string => flow.get('process.name') ?? 'the process';

export const uncommonPort: Scorer = {
  name: 'uncommon-port',
  score(flow) {
    const port = flow.get('destination.port');
    if (flow.kind === 'dns' || port === undefined || WEB_PORTS.has(port)) return null;
    return { signal: 'uncommon_port', strength: 1, reason: `uncommon destination port ${port}` };
  },
};

/** Malware often connects to bare IPs to avoid DNS; legitimate software almost always uses names. */
export const ipLiteralDestination: Scorer = {
  name: 'ip-literal',
  score(flow) {
    if (flow.kind === 'dns' || flow.get('destination.ip') === undefined) return null;
    if (!isIpLiteralTarget(flow)) return null;
    return { signal: 'ip_literal', strength: 1, reason: 'destination is a bare IP address, not a name' };
  },
};

/**
 * The endpoint agent's header names one process and Sysmon names another for the same connection: either
 * the agent is lying (malware spoofing chrome.exe) or something injected into the process. Both are signals.
 */
export const processClaimMismatch: Scorer = {
  name: 'process-claim-mismatch',
  score(flow) {
    const claimed = flow.get('egress.claim.process_name');
    const observed = flow.get('process.name');
    if (claimed === undefined || observed === undefined || flow.get('egress.attribution') !== 'telemetry') return null;
    if (claimed === observed) return null;
    return { signal: 'process_claim_mismatch', strength: 1, reason: `process claim mismatch: the header says ${claimed}, telemetry says ${observed}` };
  },
};

/** A ClientHello that no mainstream TLS stack would send: a custom or broken implementation. */
export const malformedClientHello: Scorer = {
  name: 'malformed-client-hello',
  score(flow) {
    const why = flow.get('egress.tls.malformed');
    return why === undefined ? null : { signal: 'malformed_client_hello', strength: 1, reason: `malformed TLS ClientHello (${why})` };
  },
};

/**
 * A scorer for a boolean feature: its signal at full strength when the feature is true. Most signals are this
 * shape; the others (strengths, extra conditions) are written out below.
 */
function whenTrue(name: string, field: BooleanFeature, signal: SignalName, reason: (flow: Flow) => string): Scorer {
  return {
    name,
    score: (flow) => (flow.get(field) === true ? { signal, strength: 1, reason: reason(flow) } : null),
  };
}

type BooleanFeature = {
  [K in FieldName]: (typeof FIELDS)[K]['type'] extends 'boolean' ? K : never;
}[FieldName];

// ---- URI and HTTP --------------------------------------------------------------------------------------------

export const uriC2Shape: Scorer = {
  name: 'uri-c2-shape',
  score(flow) {
    const shape = flow.get('egress.features.uri_c2_shape');
    return shape === undefined ? null : { signal: 'uri_c2_shape', strength: 1, reason: `URI matches the known C2 shape ${shape}` };
  },
};

export const uriRandom: Scorer = {
  name: 'uri-random',
  score(flow) {
    if (flow.get('egress.features.uri_random') !== true) return null;
    const entropy = flow.get('egress.features.uri_entropy') ?? 0;
    const length = flow.get('egress.features.uri_max_segment_length') ?? 0;
    return { signal: 'uri_random', strength: 1, reason: `uri segment entropy ${entropy.toFixed(1)} bits/char (${length} characters)` };
  },
};

export const uriEncoded: Scorer = {
  name: 'uri-encoded',
  score(flow) {
    const encoding = flow.get('egress.features.uri_encoding');
    if (encoding === undefined || encoding === 'guid') return null;
    return { signal: 'uri_encoded', strength: 1, reason: `${encoding} data in the URI` };
  },
};

export const executableDownload: Scorer = {
  name: 'executable-download',
  score(flow) {
    const ext = flow.get('egress.features.uri_executable');
    if (ext === undefined) return null;
    const bare = isIpLiteralTarget(flow);
    return { signal: 'executable_download', strength: bare ? 1 : 0.4, reason: `fetches a .${ext} file${bare ? ' from a bare IP address' : ''}` };
  },
};

export const uaMissing: Scorer = {
  name: 'ua-missing',
  score(flow) {
    return flow.get('egress.features.ua_missing') === true ? { signal: 'ua_missing', strength: 1, reason: 'no User-Agent header' } : null;
  },
};

export const uaC2: Scorer = {
  name: 'ua-c2',
  score(flow) {
    const c2 = flow.get('egress.features.ua_c2');
    return c2 === undefined ? null : { signal: 'ua_c2', strength: 1, reason: `User-Agent is the ${c2} default` };
  },
};

export const uaOutdated = whenTrue('ua-outdated', 'egress.features.ua_outdated', 'ua_outdated',
  (flow) => `long-outdated browser User-Agent "${(flow.get('user_agent.original') ?? '').slice(0, 60)}"`,
);

export const uaProcessMismatch = whenTrue('ua-process-mismatch', 'egress.features.ua_process_mismatch', 'ua_process_mismatch',
  (flow) => `${flow.get('egress.features.ua_family') ?? 'unknown'} User-Agent from ${processName(flow)}`,
);

export const hostMismatch = whenTrue('host-mismatch', 'egress.features.host_mismatch', 'host_mismatch',
  (flow) => `Host header "${flow.requestHost ?? ''}" differs from the request target ${flow.get('url.domain') ?? ''}`,
);

export const bodyEncrypted = whenTrue('body-encrypted', 'egress.features.body_encrypted', 'body_encrypted',
  (flow) => `request body entropy ${(flow.get('egress.features.body_entropy') ?? 0).toFixed(2)} bits/byte (encrypted or compressed)`,
);

// ---- process -------------------------------------------------------------------------------------------------

export const processCategory: Scorer = {
  name: 'process-category',
  score(flow) {
    const category = flow.get('egress.features.process_category');
    if (category !== 'script-host' && category !== 'lolbin') return null;
    return { signal: PROCESS_CATEGORY_SIGNAL[category], strength: 1, reason: `${processName(flow)} is a ${category === 'lolbin' ? 'LOLBin' : 'script host'}` };
  },
};

/**
 * Per-user installs of known applications live in AppData (Teams, Chrome, VS Code, Zoom): normal. An unknown
 * program there, or a script host, LOLBin or admin tool copied there, is what droppers leave behind.
 */
const USER_WRITABLE_SUSPECT: ReadonlySet<string> = new Set(['unknown', 'script-host', 'lolbin', 'admin-tool', 'transfer']);

export const processUserWritable: Scorer = {
  name: 'process-user-writable',
  score(flow) {
    if (flow.get('egress.features.process_user_writable') !== true) return null;
    if (!USER_WRITABLE_SUSPECT.has(flow.get('egress.features.process_category') ?? 'unknown')) return null;
    return { signal: 'process_user_writable', strength: 1, reason: `${processName(flow)} runs from a user-writable folder` };
  },
};

export const processDoubleExtension = whenTrue('process-double-extension', 'egress.features.process_double_extension', 'process_double_extension',
  (flow) => `${processName(flow)} has a double extension`,
);

export const processSuspiciousParent: Scorer = {
  name: 'process-suspicious-parent',
  score(flow) {
    const parent = flow.get('egress.features.process_suspicious_parent');
    return parent === undefined ? null : { signal: 'process_suspicious_parent', strength: 1, reason: `${parent} started ${processName(flow)}` };
  },
};

export const processMasquerade = whenTrue('process-masquerade', 'egress.features.process_masquerade', 'process_masquerade',
  (flow) => `${processName(flow)} runs outside the system folders (${flow.get('process.executable') ?? ''})`,
);

export const processRenamed = whenTrue('process-renamed', 'egress.features.process_renamed', 'process_renamed',
  (flow) => `${processName(flow)} is a renamed ${flow.get('process.pe.original_file_name') ?? 'system binary'}`,
);

// ---- destination and TLS ---------------------------------------------------------------------------------------

export const destinationDga = whenTrue('dest-dga', 'egress.features.dest_dga', 'dest_dga',
  (flow) => `destination name ${destinationName(flow)} looks generated (entropy ${(flow.get('egress.features.dest_label_entropy') ?? 0).toFixed(2)} bits/char)`,
);

const DNS_SIGNAL_WORDS: Readonly<Record<string, string>> = {
  dns_dga: 'a DGA-like name signal',
  dns_long_label: 'a data-like label signal',
  dns_tunnel: 'a DNS tunnelling signal',
  dns_nxdomain_burst: 'an NXDOMAIN burst signal',
};

export const dnsFlagged: Scorer = {
  name: 'dns-flagged',
  score(flow) {
    const why = flow.get('egress.features.dns_flagged');
    if (why === undefined) return null;
    return { signal: 'dns_flagged', strength: 1, reason: `this client's DNS queries for ${destinationName(flow)} raised ${DNS_SIGNAL_WORDS[why] ?? why}` };
  },
};

export const protocolMismatch: Scorer = {
  name: 'protocol-mismatch',
  score(flow) {
    const mismatch = flow.get('egress.features.protocol_mismatch');
    if (mismatch === undefined) return null;
    return { signal: 'protocol_mismatch', strength: 1, reason: mismatch === 'tls-on-80' ? 'TLS on port 80' : 'not TLS on port 443' };
  },
};

export const sniMissing = whenTrue('sni-missing', 'egress.features.sni_missing', 'sni_missing',
  () => 'TLS ClientHello without SNI',
);

export const serverSelfSigned = whenTrue('server-self-signed', 'egress.tls.self_signed', 'server_self_signed',
  (flow) => `the destination's certificate is self-signed (CN "${(flow.get('tls.server.x509.subject.common_name') ?? '').slice(0, 60)}")`,
);

export const sniMismatch = whenTrue('sni-mismatch', 'egress.features.sni_mismatch', 'sni_mismatch',
  (flow) => `SNI ${flow.get('tls.client.server_name') ?? ''} differs from the CONNECT host ${flow.get('destination.domain') ?? ''} (fronting)`,
);

export const sniOnIp = whenTrue('sni-on-ip', 'egress.features.sni_on_ip', 'sni_on_ip',
  (flow) => `CONNECT to a bare IP presents SNI ${flow.get('tls.client.server_name') ?? ''}`,
);

export const tlsProcessMismatch = whenTrue('tls-process-mismatch', 'egress.features.tls_process_mismatch', 'tls_process_mismatch',
  (flow) => `${flow.get('egress.features.tls_family') ?? 'unexpected'} TLS stack from ${processName(flow)}`,
);

// ---- baselines and beacons -------------------------------------------------------------------------------------

export const firstSeen = whenTrue('first-seen', 'egress.features.first_seen', 'first_seen',
  (flow) => `${processName(flow)} never contacted ${destinationName(flow)} before`,
);

export const rareForProcess = whenTrue('rare-for-process', 'egress.features.rare_for_process', 'rare_for_process',
  (flow) => `TLS fingerprint ${flow.get('tls.client.ja4') ?? ''} is rare for ${processName(flow)}`,
);

/** RITA: a destination that at most 2 % of the hosts contact is rare. */
const RARE_PREVALENCE = 0.02;

export const rareDestination: Scorer = {
  name: 'rare-destination',
  score(flow) {
    const prevalence = flow.get('egress.features.prevalence');
    if (prevalence === undefined || prevalence > RARE_PREVALENCE) return null;
    return { signal: 'rare_destination', strength: 1, reason: `${destinationName(flow)} is contacted by ${(prevalence * 100).toFixed(1)} % of hosts` };
  },
};

/** Categories whose regular heartbeats to their vendors are normal (Teams presence, update polls). */
const HEARTBEAT_CATEGORIES: ReadonlySet<string> = new Set(['browser', 'collaboration', 'office', 'mail', 'updater', 'system', 'security']);
/** Below this RITA score connections are not regular enough to call a beacon; full weight at 0.9. */
const BEACON_FLOOR = 0.6;
const BEACON_FULL = 0.9;

export const beacon: Scorer = {
  name: 'beacon',
  score(flow) {
    const score = flow.get('egress.beacon.score');
    if (score === undefined || score < BEACON_FLOOR) return null;
    const connections = flow.get('egress.beacon.connections') ?? 0;
    const interval = (flow.get('egress.beacon.interval_ms') ?? 0) / 1000;
    const jitter = (flow.get('egress.beacon.jitter_ms') ?? 0) / 1000;
    // A known-benign process's heartbeat counts half: a beacon alone should not flag Teams to its own servers.
    const category = flow.get('egress.features.process_category');
    const strength = Math.min(1, (score - BEACON_FLOOR) / (BEACON_FULL - BEACON_FLOOR)) * (category !== undefined && HEARTBEAT_CATEGORIES.has(category) ? 0.5 : 1);
    return {
      signal: 'beacon',
      strength,
      reason: `beacon: ${connections} connections every ${interval.toFixed(1)} s ± ${jitter.toFixed(1)} s (score ${score.toFixed(2)})`,
    };
  },
};

/** Every signal scorer of the flow features, in the order their reasons read best. */
export const featureScorers: readonly Scorer[] = [
  uriC2Shape,
  uaC2,
  processDoubleExtension,
  processMasquerade,
  processRenamed,
  processSuspiciousParent,
  hostMismatch,
  sniMismatch,
  sniOnIp,
  protocolMismatch,
  beacon,
  uriRandom,
  executableDownload,
  processCategory,
  tlsProcessMismatch,
  uaProcessMismatch,
  destinationDga,
  dnsFlagged,
  uncommonPort,
  ipLiteralDestination,
  processClaimMismatch,
  malformedClientHello,
  serverSelfSigned,
  processUserWritable,
  sniMissing,
  uaOutdated,
  bodyEncrypted,
  uriEncoded,
  uaMissing,
  firstSeen,
  rareDestination,
  rareForProcess,
];

/** The scorers that need no catalogue or store (unit tests, and the base of every pipeline). */
export const defaultScorers: readonly Scorer[] = [uncommonPort, ipLiteralDestination, processClaimMismatch, malformedClientHello];

/**
 * The feature families as the pipeline runs them: each reads the facts of the flow, calls the pure analysis of
 * its family (src/scoring/features/*), and writes `egress.features.*` once its inputs are final. Scorers
 * (scorers.ts) then turn features into weighted signals. Splitting the two keeps the features visible in the
 * record and usable in policy even when their signal weighs nothing.
 */
import { parse as parseHost } from 'tldts';
import type { Flow } from '../flow/flow.js';
import { TLDTS_OPTIONS } from '../enrich/dns-question.js';
import { dgaFeatures } from './dns-signals.js';
import { analyzeUri } from './features/uri.js';
import type { C2UriShapeSet } from './features/c2-uri-shapes.js';
import { analyzeProcess, type ProcessCatalogue, type ProcessCategory } from './features/process.js';
import type { UaFamily, UserAgentCatalogue } from './features/user-agent.js';
import { fingerprintMismatch, type TlsFamilyMap } from './features/tls-family.js';
import { byteEntropy, looksEncrypted } from './features/entropy.js';
import type { FeatureExtractor } from './score.js';
import { WEB_PORTS } from './scorers.js';


/** Bytes of the request body sampled for its entropy (the first ones: headers of encrypted blobs come first). */
export const BODY_SAMPLE_BYTES = 4096;
/** Smallest sample judged: below it the entropy estimate of 256 symbols is meaningless. */
const BODY_MIN_BYTES = 256;

/**
 * Files that run when opened or loaded: PE images, installers, scripts Windows runs by extension, disk images
 * and shortcuts that deliver them (MITRE T1105 ingress tool transfer). `.js` is left out: the web is made of it.
 */
const EXECUTABLE_PATH = /\.(exe|dll|scr|com|pif|cpl|msi|msp|msix|appx|ps1|psm1|hta|vbs|vbe|jse|wsf|wsh|bat|cmd|sct|jar|lnk|iso|img|vhdx?|xll)$/i;

/** No more process facts can come: the hint is in, or its stage is over. */
export function processSettled(flow: Flow): boolean {
  return flow.get('process.name') !== undefined || !flow.canStillReach('hint');
}

/** The ClientHello facts of a tunnel are in (or it can no longer send one). */
function helloSettled(flow: Flow): boolean {
  return flow.kind !== 'connect' || !flow.canStillReach('client-hello');
}

/** Registrable domain of a host name (tldts, public suffix list); the host itself for an IP or a bare label. */
export function registrableDomain(host: string): { domain: string; label: string } {
  const parsed = parseHost(host, TLDTS_OPTIONS);
  if (parsed.domain === null || parsed.isIp === true) return { domain: host, label: '' };
  return { domain: parsed.domain, label: parsed.domainWithoutSuffix ?? '' };
}

/** URI family: path segments, query values, encodings, known C2 shapes (plain HTTP; bumped requests later). */
export function uriExtractor(shapes: C2UriShapeSet): FeatureExtractor {
  return {
    name: 'uri',
    extract(flow) {
      const path = flow.get('url.path');
      if (path === undefined) return flow.kind !== 'http' || !flow.canStillReach('http-request');
      const query = flow.get('url.query');
      const facts = analyzeUri(path, query);
      flow.set('egress.features.uri_segment_count', facts.segmentCount);
      flow.set('egress.features.uri_max_segment_length', Math.max(facts.maxSegmentLength, facts.maxQueryValueLength));
      if (facts.maxSegmentEntropy > 0) flow.set('egress.features.uri_entropy', facts.maxSegmentEntropy);
      if (facts.encoding !== null) flow.set('egress.features.uri_encoding', facts.encoding);
      flow.set('egress.features.uri_random', facts.randomSegment);
      if (facts.benignShape !== null) flow.set('egress.features.uri_benign_shape', facts.benignShape);
      const executable = EXECUTABLE_PATH.exec(path);
      if (executable !== null) flow.set('egress.features.uri_executable', (executable[1] ?? '').toLowerCase());
      const shape = shapes.match(flow.get('http.request.method') ?? 'GET', path, query, flow.get('user_agent.original'));
      if (shape !== null) flow.set('egress.features.uri_c2_shape', shape.id);
      return true;
    },
  };
}

/** HTTP family: the User-Agent and the Host header against the request target. */
export function httpExtractor(agents: UserAgentCatalogue): FeatureExtractor {
  return {
    name: 'http',
    extract(flow) {
      if (flow.kind !== 'http') return true;
      if (flow.get('url.path') === undefined) return !flow.canStillReach('http-request');
      const ua = agents.classify(flow.get('user_agent.original'));
      flow.set('egress.features.ua_family', ua.family);
      flow.set('egress.features.ua_missing', ua.family === 'empty');
      if (ua.knownC2 !== null) flow.set('egress.features.ua_c2', ua.knownC2);
      flow.set('egress.features.ua_outdated', ua.outdatedBrowser);
      const host = flow.requestHost;
      const target = flow.get('url.domain');
      if (host !== null && target !== undefined) flow.set('egress.features.host_mismatch', !sameHost(host, target));
      return true;
    },
  };
}

/** `Host` may carry a port and differ in case; a trailing dot names the same host (RFC 1034 §3.1). */
function sameHost(hostHeader: string, target: string): boolean {
  let host = hostHeader.toLowerCase();
  if (host.startsWith('[')) host = host.slice(1, host.indexOf(']') === -1 ? host.length : host.indexOf(']'));
  else {
    const colon = host.lastIndexOf(':');
    if (colon !== -1 && host.indexOf(':') === colon) host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  let t = target.toLowerCase();
  if (t.startsWith('[')) t = t.slice(1, -1);
  if (t.endsWith('.')) t = t.slice(0, -1);
  return host === t;
}

/** Process family: category, where the image runs from, how it was started. */
export function processExtractor(catalogue: ProcessCatalogue): FeatureExtractor {
  return {
    name: 'process',
    extract(flow) {
      const name = flow.get('process.name');
      // Not done until the flow ends: a hint can still land in the record at the end (pipeline.end).
      if (name === undefined) return flow.ended;
      const facts = analyzeProcess(catalogue, {
        name,
        executable: flow.get('process.executable'),
        parentName: flow.get('process.parent.name'),
        originalFileName: flow.get('process.pe.original_file_name'),
      });
      flow.set('egress.features.process_category', facts.category);
      flow.set('egress.features.process_user_writable', facts.userWritable);
      flow.set('egress.features.process_double_extension', facts.doubleExtension);
      if (facts.suspiciousParent !== null) flow.set('egress.features.process_suspicious_parent', facts.suspiciousParent);
      flow.set('egress.features.process_masquerade', facts.masquerade);
      flow.set('egress.features.process_renamed', facts.renamed);
      return true;
    },
  };
}

/** A flagged-name memory: names whose DNS queries raised a signal for a client (see dns-flags.ts). */
export interface FlaggedNames {
  flaggedBy(client: string, host: string): string | null;
}

/** Destination family: port, generated-looking names, names this client's DNS traffic flagged. */
export function destinationExtractor(flagged: FlaggedNames): FeatureExtractor {
  return {
    name: 'destination',
    extract(flow) {
      if (flow.kind === 'dns') return true;
      const port = flow.get('destination.port');
      if (port === undefined) return !flow.canStillReach(flow.kind === 'http' ? 'http-request' : 'connect');
      flow.set('egress.features.uncommon_port', !WEB_PORTS.has(port));
      const domain = flow.get('destination.domain');
      if (domain !== undefined && flow.get('egress.destination.ip_literal') !== true) {
        const { domain: registered, label } = registrableDomain(domain);
        flow.set('destination.registered_domain', registered);
        const dga = dgaFeatures(label);
        if (dga !== null) {
          flow.set('egress.features.dest_label_entropy', Math.round(dga.entropy * 100) / 100);
          flow.set('egress.features.dest_dga', dga.hits >= 2);
        }
        const client = flow.get('source.ip');
        const why = client === undefined ? null : flagged.flaggedBy(client, domain);
        if (why !== null) flow.set('egress.features.dns_flagged', why);
      }
      return true;
    },
  };
}

/** TLS family: SNI against the CONNECT target, the TLS stack's family, what the port promised. */
export function tlsExtractor(families: TlsFamilyMap): FeatureExtractor {
  return {
    name: 'tls',
    extract(flow) {
      if (flow.kind !== 'connect') return true;
      const protocol = flow.get('network.protocol');
      if (protocol === undefined) return !flow.canStillReach('client-hello');
      const port = flow.get('destination.port');
      if (protocol !== 'tls') {
        // Only a judgement when the hello stage really happened: a tunnel cut before any byte says nothing.
        if (port === 443 && flow.get('egress.tls.malformed') === undefined) flow.set('egress.features.protocol_mismatch', 'not-tls-on-443');
        return true;
      }
      if (port === 80) flow.set('egress.features.protocol_mismatch', 'tls-on-80');
      const sni = flow.get('tls.client.server_name');
      const literal = flow.get('egress.destination.ip_literal') === true;
      flow.set('egress.features.sni_missing', sni === undefined);
      if (sni !== undefined) {
        if (literal) flow.set('egress.features.sni_on_ip', true);
        else flow.set('egress.features.sni_mismatch', flow.get('egress.tls.sni_matches_destination') === false);
      }
      const ja4 = flow.get('tls.client.ja4');
      if (ja4 !== undefined) {
        const family = families.familyOf(ja4);
        if (family !== null) flow.set('egress.features.tls_family', family);
      }
      return true;
    },
  };
}

/** Process ↔ client fingerprint: does the TLS stack or the User-Agent fit the process that made the flow? */
export function fitExtractor(families: TlsFamilyMap, agents: UserAgentCatalogue): FeatureExtractor {
  return {
    name: 'process-fit',
    extract(flow) {
      if (!processSettled(flow) || !helloSettled(flow)) return false;
      const name = flow.get('process.name');
      const category = flow.get('egress.features.process_category') as ProcessCategory | undefined;
      if (name === undefined || category === undefined) return flow.ended;
      const ja4 = flow.get('tls.client.ja4');
      if (ja4 !== undefined) flow.set('egress.features.tls_process_mismatch', fingerprintMismatch(families, ja4, name, category) !== null);
      const family = flow.get('egress.features.ua_family') as UaFamily | undefined;
      if (family !== undefined && family !== 'empty') {
        const fits = agents.fitsProcess(family, category, name);
        if (fits !== null) flow.set('egress.features.ua_process_mismatch', !fits);
      }
      return true;
    },
  };
}

/** Request body (end of the flow): entropy of the first bytes forwarded. */
export const bodyExtractor: FeatureExtractor = {
  name: 'body',
  extract(flow) {
    const sample = flow.bodySample;
    if (sample === null || flow.bodySampleLength < BODY_MIN_BYTES) return true;
    const entropy = byteEntropy(sample, flow.bodySampleLength);
    flow.set('egress.features.body_entropy', Math.round(entropy * 100) / 100);
    flow.set('egress.features.body_encrypted', looksEncrypted(sample, flow.bodySampleLength));
    return true;
  },
};

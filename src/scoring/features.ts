import type { Flow } from '../flow/flow.js';
import type { Scorer } from './score.js';

/** Ports that web clients use; anything else from a browser-less process is worth a look (AN0922). */
const WEB_PORTS: ReadonlySet<number> = new Set([80, 443, 8080, 8443]);

export const uncommonPort: Scorer = {
  name: 'uncommon-port',
  score(flow) {
    const port = flow.get('destination.port');
    if (port === undefined || WEB_PORTS.has(port)) return null;
    return { points: 25, reason: `uncommon destination port ${port}` };
  },
};

/**
 * Whether the client named its destination by IP. destination.domain alone cannot tell: the DNS memory
 * (src/enrich/dns-memory.ts) names a bare-IP destination from earlier answers. The listener records what the
 * request target was (destination.ip_literal, from the parsed target, so `2130706433` counts as an IP too);
 * flows without request facts (unit tests) fall back to "no destination.domain".
 */
function isIpLiteralTarget(flow: Flow): boolean {
  const literal = flow.get('destination.ip_literal');
  return literal ?? flow.get('destination.domain') === undefined;
}

/** Malware often connects to bare IPs to avoid DNS; legitimate software almost always uses names. */
export const ipLiteralDestination: Scorer = {
  name: 'ip-literal',
  score(flow) {
    if (flow.kind === 'dns' || flow.get('destination.ip') === undefined) return null;
    if (!isIpLiteralTarget(flow)) return null;
    return { points: 20, reason: 'destination is a bare IP address, not a name' };
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
    return { points: 40, reason: `process claim mismatch: the header says ${claimed}, telemetry says ${observed}` };
  },
};

/** A ClientHello that no mainstream TLS stack would send: a custom or broken implementation. */
export const malformedClientHello: Scorer = {
  name: 'malformed-client-hello',
  score(flow) {
    const why = flow.get('tls.client.malformed');
    return why === undefined ? null : { points: 30, reason: `malformed TLS ClientHello (${why})` };
  },
};

/** The built-in scorers, in the order their reasons are most useful to a reader. */
export const defaultScorers: readonly Scorer[] = [uncommonPort, ipLiteralDestination, processClaimMismatch, malformedClientHello];

/**
 * Domain-fronting triangulation (issue 10 item 7): a TLS tunnel names its destination up to four times — the
 * CONNECT authority, the ClientHello's SNI, the inner request's Host header (bumped tunnels) and the names of
 * the certificate the server presented. Legitimate clients keep them consistent; fronting hides the real
 * destination in the inner Host behind an innocuous SNI (Fifield et al., "Blocking-resistant communication
 * through domain fronting", PETS 2015), and some implants send an SNI that the CONNECT host does not match.
 * This names which pair disagreed, so a record says *how* the names differ, not only that they do.
 */
import { isIP } from 'node:net';

export interface TunnelNames {
  /** CONNECT authority host (no port). */
  readonly connect: string | null;
  readonly sni: string | null;
  /** Host header of the inner request (a port is ignored). */
  readonly host: string | null;
  /** dNSName / iPAddress SANs of the server certificate (ECS `tls.server.x509.alternative_names`). */
  readonly certificate: readonly string[] | null;
}

/** Lower case, no trailing dot, no port, no IPv6 brackets. */
export function normaliseHost(value: string): string {
  let host = value.trim().toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    host = host.slice(1, end === -1 ? host.length : end);
  } else {
    const colon = host.lastIndexOf(':');
    if (colon !== -1 && host.indexOf(':') === colon) host = host.slice(0, colon);
  }
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/**
 * Does a certificate name cover the host? RFC 6125 §6.4.3: a wildcard stands for exactly one whole left-most
 * label (`*.example.com` covers `a.example.com`, not `example.com` nor `a.b.example.com`).
 */
export function certificateCovers(pattern: string, host: string): boolean {
  const p = normaliseHost(pattern);
  if (!p.startsWith('*.')) return p === host;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot + 1) === p.slice(2);
}

/** The pairs that disagree, in a fixed order: `connect≠sni`, `sni≠host`, `sni≠certificate`; empty when none do. */
export function frontingPairs(names: TunnelNames): string[] {
  const pairs: string[] = [];
  const connect = names.connect === null ? null : normaliseHost(names.connect);
  const sni = names.sni === null ? null : normaliseHost(names.sni);
  const host = names.host === null ? null : normaliseHost(names.host);
  // A CONNECT to a bare address says nothing about the name: only names are compared with the SNI.
  if (connect !== null && sni !== null && isIP(connect) === 0 && connect !== sni) pairs.push('connect≠sni');
  if (sni !== null && host !== null && sni !== host) pairs.push('sni≠host');
  if (sni !== null && names.certificate !== null && names.certificate.length > 0 && !names.certificate.some((n) => certificateCovers(n, sni))) {
    pairs.push('sni≠certificate');
  }
  return pairs;
}

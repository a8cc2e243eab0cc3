import type { IncomingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1: connection-specific fields a proxy must not forward (plus the legacy Proxy-Connection). */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

/**
 * Identity and hint headers: they describe the client to *us*. Forwarding them would leak internal user
 * names, addresses and process names to the destination — possibly the C2 server itself.
 */
export const IDENTITY_HEADERS: readonly string[] = [
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'forwarded',
  'x-real-ip',
  'x-authenticated-user',
  'x-authenticated-groups',
  'x-egress-process',
];

/** Drop the headers named by `Connection` (RFC 9110 §7.6.1) and the fixed hop-by-hop set. */
function stripHopByHop(headers: IncomingHttpHeaders): void {
  const connection = headers.connection;
  if (connection !== undefined) {
    for (const token of connection.split(',')) {
      const name = token.trim().toLowerCase();
      if (name !== '') delete headers[name];
    }
  }
  for (const name of HOP_BY_HOP) delete headers[name];
}

/**
 * Scrub a client request's headers in place before it is forwarded. This must run before
 * `proxy.web()`: scrubbing in `proxyReq` is bypassed for `Expect: 100-continue` (DEPENDENCIES.md).
 */
export function scrubRequestHeaders(headers: IncomingHttpHeaders, extraIdentity: readonly string[] = []): void {
  stripHopByHop(headers);
  for (const name in headers) {
    // Proxy-Authorization and every other Proxy-* field is for this hop only: never forwarded.
    if (name.startsWith('proxy-') || name.startsWith('x-egress-')) delete headers[name];
  }
  for (const name of IDENTITY_HEADERS) delete headers[name];
  for (const name of extraIdentity) delete headers[name];
}

/** Scrub an upstream response's headers in place before they reach the client. */
export function scrubResponseHeaders(headers: IncomingHttpHeaders): void {
  stripHopByHop(headers);
  delete headers['proxy-authenticate'];
  delete headers['proxy-authentication-info'];
}

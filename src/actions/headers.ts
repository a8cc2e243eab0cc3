/**
 * The heads the proxy writes when it forwards: the request to the destination and the answer to the client,
 * each built once as one string from the received field list (names and order as sent), minus what must not
 * cross this hop.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestHead, ResponseHead } from '../parsers/http1.js';

/**
 * RFC 9110 §7.6.1: connection-specific fields a proxy must not forward (plus the legacy Proxy-Connection).
 * Transfer-Encoding is connection-specific too, but we relay bodies with their framing, so it goes with them.
 */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade'];

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

/** Fields that frame the message: never dropped because `Connection` names them (that would unframe the body). */
const FRAMING = new Set(['content-length', 'transfer-encoding', 'host']);

/** Lower-cased field names listed in `Connection` (RFC 9110 §7.6.1), except the framing fields. */
function connectionListed(headers: IncomingHttpHeaders): Set<string> | null {
  const value = headers.connection;
  if (value === undefined) return null;
  let listed: Set<string> | null = null;
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || name === 'close' || name === 'keep-alive' || FRAMING.has(name)) continue;
    (listed ??= new Set()).add(name);
  }
  return listed;
}

/** What a request must lose before it leaves: built once per listener from the configured identity headers. */
export class RequestScrubber {
  private readonly drop: Set<string>;

  constructor(extraIdentity: readonly string[] = []) {
    this.drop = new Set([...HOP_BY_HOP, ...IDENTITY_HEADERS, ...extraIdentity.map((h) => h.toLowerCase())]);
  }

  /** Would this (lower-cased) field be removed? */
  drops(name: string): boolean {
    // Proxy-Authorization and every other Proxy-* field is for this hop only; X-Egress-* are our hint headers.
    return this.drop.has(name) || name.startsWith('proxy-') || name.startsWith('x-egress-');
  }

  /**
   * The request head for the destination: origin-form target (RFC 9112 §3.2.1), HTTP/1.1, the client's fields
   * in their order minus hop-by-hop, Proxy-*, identity and hint fields. `host` is the Host to send:
   * `replace` (an absolute-form request, RFC 9112 §3.2.2: the proxy ignores the client's Host and sends the
   * target's authority, so the origin serves the host the policy judged) or `default` (keep the client's
   * Host, supply this one when it sent none).
   */
  requestHead(head: RequestHead, originForm: string, host: string, hostMode: 'replace' | 'default' = 'default'): string {
    const listed = connectionListed(head.headers);
    const raw = head.rawHeaders;
    let out = `${head.method} ${originForm} HTTP/1.1\r\n`;
    let sawHost = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      const lower = name.toLowerCase();
      if (this.drops(lower) || (listed !== null && listed.has(lower))) continue;
      if (lower === 'host') {
        sawHost = true;
        if (hostMode === 'replace') {
          out += `${name}: ${host}\r\n`; // in the client's place and spelling (JA4H-neutral for the origin)
          continue;
        }
      }
      out += `${name}: ${raw[i + 1] as string}\r\n`;
    }
    if (!sawHost) out += `host: ${host}\r\n`;
    return `${out}\r\n`;
  }
}

/** Response fields that never reach the client: hop-by-hop and the proxy's own authentication fields. */
const RESPONSE_DROP = new Set([...HOP_BY_HOP, 'proxy-authenticate', 'proxy-authentication-info']);

/**
 * The answer's head for the client: the destination's status and fields in their order, minus hop-by-hop
 * fields, with our own `Connection`. `dechunk` (an HTTP/1.0 client of a chunked answer): the payload is
 * relayed without its chunk framing and ends with the connection, so Transfer-Encoding and Trailer go.
 */
export function responseHead(head: ResponseHead, close: boolean, dechunk: boolean): string {
  const listed = connectionListed(head.headers);
  const raw = head.rawHeaders;
  let out = `HTTP/1.1 ${head.status} ${head.reason}\r\n`;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (RESPONSE_DROP.has(lower) || (listed !== null && listed.has(lower))) continue;
    if (dechunk && (lower === 'transfer-encoding' || lower === 'trailer')) continue;
    out += `${name}: ${raw[i + 1] as string}\r\n`;
  }
  return `${out}${close ? 'connection: close' : 'connection: keep-alive'}\r\n\r\n`;
}

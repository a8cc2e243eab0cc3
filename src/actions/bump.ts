/**
 * `bump`: terminate the client's TLS inside a CONNECT tunnel with a certificate for the name it asked for,
 * minted by the gateway's CA (src/net/leaf-certs.ts), so the inner HTTP requests can be inspected one by one
 * (src/listeners/proxy.ts serves them with the HTTP/1.1 engine and forwards them over verified TLS,
 * src/actions/upstream-tls.ts). Squid calls this ssl_bump, mitmproxy "intercept".
 *
 * The ClientHello has already been read to decide (peekClientHello): its bytes are put back in front of the
 * socket, and Node's TLS server consumes what the socket holds before reading more (TLSSocket initRead).
 *
 * A client that aborts the handshake against our certificate (certificate pinning, or a trust store without
 * the gateway's CA) is remembered per client address and name for a while (PinnedClients): its next tunnel to
 * that name is spliced instead, so pinned applications keep working and the record says why.
 */
import type net from 'node:net';
import tls from 'node:tls';
import { LRUCache } from 'lru-cache';
import { EgressError } from '../errors.js';
import { entryBound } from '../enrich/bounded-lru.js';

export type TerminateResult =
  | { readonly kind: 'bumped'; readonly socket: tls.TLSSocket }
  /**
   * The handshake failed: why, in words. `pinning`: the client refused our certificate — an alert about the
   * certificate, or it hung up once it had seen it — as opposed to a handshake that broke on malformed bytes.
   */
  | { readonly kind: 'rejected'; readonly error: EgressError; readonly pinning: boolean }
  | { readonly kind: 'closed' };

/** ALPN we answer: the inner requests are served by the HTTP/1.1 engine (h2 is not offered, see docs/interception.md). */
const ALPN = ['http/1.1'];

/**
 * Answer the client's TLS as the destination. Resolves when the handshake completed, failed or timed out; on
 * failure the socket is destroyed.
 */
export function terminateClientTls(socket: net.Socket, replay: Buffer, context: tls.SecureContext, timeoutMs: number): Promise<TerminateResult> {
  return new Promise((resolve) => {
    if (replay.length > 0) socket.unshift(replay);
    const secure = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: context,
      ALPNProtocols: ALPN,
      // A client certificate is never asked for: the proxy is not the destination's authority on clients.
      requestCert: false,
    });
    let settled = false;
    const done = (result: TerminateResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      secure.off('secure', onSecure);
      secure.off('error', onError);
      secure.off('close', onClose);
      secure.off('end', onClose);
      if (result.kind !== 'bumped') {
        secure.destroy();
        socket.destroy();
      }
      resolve(result);
    };
    const onSecure = (): void => done({ kind: 'bumped', socket: secure });
    const onError = (err: NodeJS.ErrnoException): void => {
      const reason = describeTlsError(err);
      if (CERTIFICATE_ALERT.test(reason)) {
        done({ kind: 'rejected', pinning: true, error: new EgressError('TLS_CLIENT_REJECTED', `the client refused the interception certificate: ${reason}`) });
      } else {
        // Garbage or a broken handshake is not a client that pins: it says nothing about our certificate.
        done({ kind: 'rejected', pinning: false, error: new EgressError('BAD_REQUEST', `the client's TLS handshake failed: ${reason}`) });
      }
    };
    const onClose = (): void =>
      done({ kind: 'rejected', pinning: true, error: new EgressError('TLS_CLIENT_REJECTED', 'the client closed the connection during the TLS handshake with the interception certificate') });
    const timer = setTimeout(
      () => done({ kind: 'rejected', pinning: false, error: new EgressError('TLS_CLIENT_REJECTED', `the client did not finish the TLS handshake within ${timeoutMs} ms`) }),
      timeoutMs,
    );
    secure.once('secure', onSecure);
    secure.once('error', onError);
    secure.once('close', onClose);
    // The client socket allows half-open connections (CONNECT passes half-closes through): a client that gives
    // up on our certificate and sends FIN without an alert ends the stream without closing it.
    secure.once('end', onClose);
  });
}

/**
 * Alerts a client sends when it does not accept the server's certificate (RFC 8446 §6.2: bad_certificate,
 * unsupported_certificate, certificate_revoked, certificate_expired, certificate_unknown, unknown_ca,
 * access_denied), as OpenSSL words them ("tlsv1 alert unknown ca", "sslv3 alert bad certificate").
 */
const CERTIFICATE_ALERT = /alert (unknown ca|bad certificate|unsupported certificate|certificate revoked|certificate expired|certificate unknown|access denied)/i;

/** OpenSSL's reason without the library's prefix noise, e.g. "tlsv1 alert unknown ca". */
function describeTlsError(err: NodeJS.ErrnoException): string {
  const reason = (err as { reason?: unknown }).reason;
  if (typeof reason === 'string' && reason !== '') return reason;
  return err.code ?? err.message;
}

export interface PinnedClientsOptions {
  /** How long a refused name is spliced for that client (default 1 h). */
  readonly ttlMs?: number;
  /** Bound on remembered client/name pairs (default 10,000). */
  readonly maxEntries?: number;
}

/** Client address + name pairs whose client refused our certificate: spliced until the entry expires. */
export class PinnedClients {
  readonly #pairs: LRUCache<string, true>;

  constructor(opts: PinnedClientsOptions = {}) {
    this.#pairs = new LRUCache<string, true>({ ...entryBound(opts.maxEntries ?? 10_000), ttl: Math.max(1, opts.ttlMs ?? 3_600_000) });
  }

  remember(clientIp: string, name: string): void {
    this.#pairs.set(`${clientIp}|${name.toLowerCase()}`, true);
  }

  has(clientIp: string, name: string): boolean {
    return this.#pairs.has(`${clientIp}|${name.toLowerCase()}`);
  }

  get size(): number {
    return this.#pairs.size;
  }
}

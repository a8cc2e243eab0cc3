/**
 * TLS to the destination of a bumped tunnel (issue 10): the proxy is now the TLS client, so it must verify the
 * server as a browser would — a chain to a trusted root, and a certificate for the name the client asked for —
 * and it must never pass a failure silently. A destination that fails is answered `502` inside the client's
 * TLS (src/listeners/proxy.ts) and recorded with `egress.tls.verification: failed` and why.
 *
 * Trust: the operating system's bundle (the first of SYSTEM_BUNDLES that exists; Node's own Mozilla list when
 * none does) plus the PEM files of `tls.upstream_ca`, read once at start into one SecureContext shared by every
 * connection. The handshake runs with `rejectUnauthorized: false` and the checks are made right after it, before
 * a single request byte is written, so the record can say which check failed (chain or name) instead of a
 * generic socket error.
 */
import { readFile } from 'node:fs/promises';
import type net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { LRUCache } from 'lru-cache';
import { EgressError } from '../errors.js';
import { entryBound } from '../enrich/bounded-lru.js';
import { serverFlightObserver, type ServerHello } from '../parsers/server-hello.js';
import { tlsServerFactsOf, type TlsServerFacts } from '../fingerprint/tls-server-facts.js';

/** CA bundles of the common Linux distributions (Debian/Ubuntu/Alpine, RHEL/Fedora, openSUSE). */
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/ca-bundle.pem'];

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export interface UpstreamTrust {
  readonly context: tls.SecureContext;
  /** Where the roots came from, for the start-up log. */
  readonly sources: readonly string[];
  readonly roots: number;
}

/** What the proxy learnt of the destination's TLS: on the records of the tunnel and of its inner requests. */
export interface UpstreamTlsInfo {
  readonly verification: 'ok' | 'failed';
  /** Why verification failed (OpenSSL's reason or the name check's message); null when it passed. */
  readonly error: string | null;
  /** The leaf certificate (DER), when the server sent one. */
  readonly certDer: Buffer | null;
  readonly protocol: string | null;
  readonly cipher: string | null;
  /** The server side as fingerprints and certificate facts (JA3S/JA4S, JA4X, tls.server.x509.*), computed once per connection. */
  readonly serverFacts: TlsServerFacts;
}

/** A failed upstream handshake or verification, with what was learnt before it failed. */
export class UpstreamTlsError extends EgressError {
  readonly info: UpstreamTlsInfo;
  constructor(message: string, info: UpstreamTlsInfo) {
    super('TLS_UPSTREAM_FAILED', message);
    this.info = info;
  }
}

/**
 * Read the trust roots once. A file of `tls.upstream_ca` that is missing or holds no certificate is a start
 * error naming it (a typo there would otherwise turn into 502s for the one destination it was meant for).
 */
export async function loadUpstreamTrust(extraFiles: readonly string[]): Promise<UpstreamTrust> {
  const sources: string[] = [];
  let roots: string[] = [];
  for (const file of SYSTEM_BUNDLES) {
    const text = await readFile(file, 'utf8').catch(() => null);
    if (text === null) continue;
    const found = text.match(PEM_CERT) ?? [];
    if (found.length === 0) continue;
    roots = found;
    sources.push(file);
    break;
  }
  if (roots.length === 0) {
    roots = [...tls.rootCertificates];
    sources.push("Node's bundled Mozilla roots");
  }
  for (const file of extraFiles) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new EgressError('CONFIG_INVALID', `tls.upstream_ca: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const found = text.match(PEM_CERT) ?? [];
    if (found.length === 0) throw new EgressError('CONFIG_INVALID', `tls.upstream_ca: ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
    roots.push(...found);
    sources.push(file);
  }
  let context: tls.SecureContext;
  try {
    context = tls.createSecureContext({ ca: roots });
  } catch (err) {
    throw new EgressError('CONFIG_INVALID', `tls.upstream_ca: a certificate could not be loaded: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { context, sources, roots: roots.length };
}

const infos = new WeakMap<net.Socket, UpstreamTlsInfo>();

/** What was learnt when this (pooled) socket was opened; undefined for a plain TCP socket. */
export function upstreamTlsInfo(socket: net.Socket): UpstreamTlsInfo | undefined {
  return infos.get(socket);
}

export interface UpstreamTlsTarget {
  /** SNI to send: the client's SNI (or the CONNECT host); null for an IP literal (RFC 6066 §3: no IP in SNI). */
  readonly servername: string | null;
  /** The name (or IP literal) the certificate must be valid for. */
  readonly checkName: string;
}

/**
 * TLS over an open TCP socket to the destination, verified. Resolves once the handshake passed both checks;
 * rejects with an UpstreamTlsError (the socket destroyed) otherwise, or when the handshake takes longer than
 * `timeoutMs`. ALPN offers only http/1.1: the inner requests are relayed by the HTTP/1.1 engine.
 */
export function connectUpstreamTls(raw: net.Socket, target: UpstreamTlsTarget, trust: UpstreamTrust, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    // JA3S/JA4S need the ServerHello's bytes, which Node's TLS client does not expose. The first connection to a
    // server (address and port) reads through a tap that sees them; later ones reuse what it saw (HELLOS), so
    // only that connection pays for reading through JavaScript (a JSStreamSocket: ~14 % of a new bumped name's
    // CPU in bench/bump.bench.ts). The ServerHello answers our own, constant ClientHello, so what a server says
    // depends on its TLS stack, not on the name asked for: one entry per address serves every name on it.
    const helloKey = `${raw.remoteAddress ?? ''}|${raw.remotePort ?? 0}`;
    let hello: ServerHello | null = HELLOS.get(helloKey) ?? null;
    const tap =
      hello !== null
        ? null
        : tapFirstBytes(raw, (result) => {
            if (result.kind === 'complete') {
              hello = result.hello;
              HELLOS.set(helloKey, result.hello);
            }
          });
    const socket = tls.connect({
      socket: tap ?? raw,
      ...(target.servername === null ? {} : { servername: target.servername }),
      ALPNProtocols: ['http/1.1'],
      secureContext: trust.context,
      // Checked below, so that the record can say what failed.
      rejectUnauthorized: false,
      // Node builds the peer certificate object (with its chain) for this call on every new connection: keep it
      // and the name check's verdict instead of asking for the certificate a second time.
      checkServerIdentity: (_host, cert) => {
        peer = cert;
        mismatch = tls.checkServerIdentity(target.checkName, cert);
        return undefined;
      },
    });
    let peer: tls.PeerCertificate | null = null;
    let mismatch: Error | undefined;
    let settled = false;
    const timer = setTimeout(() => fail(`TLS handshake with the destination took longer than ${timeoutMs} ms`, null), timeoutMs);
    const fail = (message: string, info: UpstreamTlsInfo | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      raw.destroy();
      reject(new UpstreamTlsError(message, info ?? { verification: 'failed', error: message, certDer: null, protocol: null, cipher: null, serverFacts: {} }));
    };
    socket.once('error', (err: NodeJS.ErrnoException) => fail(`TLS handshake with the destination failed: ${err.code ?? err.message}`, null));
    socket.once('close', () => fail('the destination closed the connection during the TLS handshake', null));
    socket.once('secureConnect', () => {
      if (settled) return;
      if (peer === null) {
        // Not called by Node (a resumed session): ask for the certificate and check the name here.
        const cert = socket.getPeerCertificate();
        peer = cert;
        if (Buffer.isBuffer(cert.raw)) mismatch = tls.checkServerIdentity(target.checkName, cert);
      }
      const certDer = Buffer.isBuffer(peer.raw) ? peer.raw : null;
      const cipher = socket.getCipher();
      const base = {
        certDer,
        protocol: socket.getProtocol(),
        cipher: cipher.standardName ?? cipher.name ?? null,
        serverFacts: serverFactsOf(hello, certDer, peer.fingerprint256),
      };
      let error: string | null = null;
      const nameCheck = certDer === null ? undefined : mismatch;
      if (nameCheck !== undefined) {
        // Node reports a name mismatch as an authorization error too (ERR_TLS_CERT_ALTNAME_INVALID): say it in words.
        error = `certificate name mismatch: ${nameCheck.message}`;
      } else if (!socket.authorized) {
        error = `certificate not trusted: ${String(socket.authorizationError ?? 'unknown reason')}`;
      } else if (certDer === null) {
        error = 'the destination sent no certificate';
      }
      if (error !== null) {
        fail(`the destination's certificate did not verify (${error})`, { verification: 'failed', error, ...base });
        return;
      }
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      infos.set(socket, { verification: 'ok', error: null, ...base });
      resolve(socket);
    });
  });
}

/** ServerHellos seen per destination address and port: bounded, and refreshed every 10 minutes by a new tap. */
const HELLOS = new LRUCache<string, ServerHello>({ ...entryBound(1_000), ttl: 10 * 60_000 });

/**
 * A stream in front of `raw` that shows its first bytes to the ServerHello reader, for tls.connect({ socket }).
 * (Given the net.Socket itself, Node's TLS reads its handle in C++ and JavaScript never sees the bytes.)
 */
function tapFirstBytes(raw: net.Socket, onResult: Parameters<typeof serverFlightObserver>[0]): Duplex {
  const observer = serverFlightObserver(onResult, { throughRetry: true });
  const tap = new Duplex({
    read() {
      raw.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      raw.write(chunk, callback);
    },
    final(callback) {
      raw.end();
      callback();
    },
    destroy(err, callback) {
      raw.destroy();
      callback(err);
    },
  });
  raw.on('data', (chunk: Buffer) => {
    if (!observer.done) observer.push(chunk);
    if (!tap.push(chunk)) raw.pause();
  });
  raw.on('end', () => {
    observer.end();
    tap.push(null);
  });
  raw.on('error', (err) => tap.destroy(err));
  raw.on('close', () => tap.destroy());
  return tap;
}

/** Certificate facts by the certificate's SHA-256: a server's certificate is read once, not on every connection. */
const CERT_FACTS = new LRUCache<string, TlsServerFacts>({ ...entryBound(1_000), ttl: 10 * 60_000 });

/** The ServerHello's facts (a few µs) with the certificate's (~190 µs to read: X509Certificate and our DER walk), cached. */
function serverFactsOf(hello: ServerHello | null, certDer: Buffer | null, fingerprint: string | undefined): TlsServerFacts {
  if (certDer === null || fingerprint === undefined) return tlsServerFactsOf(hello, certDer, Date.now());
  let certFacts = CERT_FACTS.get(fingerprint);
  if (certFacts === undefined) {
    // The certificate's age moves by at most the cache's TTL (10 min), below the field's precision of 0.1 day.
    certFacts = tlsServerFactsOf(null, certDer, Date.now());
    CERT_FACTS.set(fingerprint, certFacts);
  }
  return hello === null ? certFacts : { ...tlsServerFactsOf(hello, null, 0), ...certFacts };
}

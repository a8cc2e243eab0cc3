/**
 * POST /v1/hints (SPEC "Endpoint process hints"): NDJSON or a JSON array of Sysmon events, raw or as Winlogbeat
 * ships them. The bearer token is checked by the admin listener before this runs. Answers (docs/process-hints.md
 * "Status codes"):
 *  - 202 with the counts and a reason per rejected event; one bad event never loses the good ones;
 *  - 400 when nothing in the body can be read as an event (src/enrich/hint-ingest.ts says exactly when), with
 *    the reason naming the line and byte offset; 415 for a content type that is not JSON or NDJSON;
 *  - 413 when the body is over `hints.max_body_bytes`, whether announced by Content-Length or found while
 *    reading a chunked body — a JSON answer the client can read, then the connection closes (below).
 */
import type http from 'node:http';
import { bodyFailure, ingestHints, type IngestResult } from '../enrich/hint-ingest.js';
import type { HintStore } from '../enrich/hint-store.js';
import { sendJson, type ApiHandler } from './admin.js';

export interface HintsApiOptions {
  store: HintStore;
  maxBodyBytes: number;
  /** Called with each answer (metrics). */
  onIngested?: (result: IngestResult) => void;
  /** Lingering close after a 413 (defaults LINGER_MS, LINGER_BYTES); tests shorten them. */
  lingerMs?: number;
  lingerBytes?: number;
}

/**
 * After a 413 the client may still be sending. Closing a socket with unread bytes makes the kernel answer RST,
 * and a client that gets the RST before reading can lose the 413 from its receive buffer (RFC 9112 §9.6:
 * a server closing a connection "SHOULD ... continue to read and discard data" — the "lingering close" of
 * Apache httpd and nginx's lingering_time/lingering_timeout). So the rest of the body is read and discarded —
 * never kept — for at most LINGER_MS and LINGER_BYTES, then the connection closes.
 */
export const LINGER_MS = 5_000;
export const LINGER_BYTES = 64 * 1024 * 1024;

/**
 * Collects a body's chunks up to `max` bytes, pure over the chunks it is given (property-tested over random
 * chunkings). Once over the limit it keeps nothing more and frees what it had.
 */
export class BodyCollector {
  private chunks: Buffer[] = [];
  private received = 0;

  constructor(readonly max: number) {}

  /** Add a chunk; false once the body is over the limit (then the chunk is not kept). */
  push(chunk: Buffer): boolean {
    this.received += chunk.length;
    if (this.received > this.max) {
      this.chunks = [];
      return false;
    }
    this.chunks.push(chunk);
    return true;
  }

  get size(): number {
    return this.received;
  }

  get tooLarge(): boolean {
    return this.received > this.max;
  }

  /** The whole body (only meaningful when not tooLarge). */
  body(): Buffer {
    return this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
  }
}

export type BodyRead =
  | { readonly kind: 'complete'; readonly body: Buffer }
  /** `declared`: the Content-Length said so before any byte was read; else a (chunked) body grew over it. */
  | { readonly kind: 'too-large'; readonly declared: boolean }
  /** The client went away before the body ended: nobody to answer. */
  | { readonly kind: 'aborted' };

/** Read a request body up to `max` bytes. Stops keeping bytes at the limit; the caller answers and lingers. */
export function readBody(req: http.IncomingMessage, max: number): Promise<BodyRead> {
  // Node's parser has already refused a malformed Content-Length or one beside Transfer-Encoding (RFC 9112 §6.3).
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) return Promise.resolve({ kind: 'too-large', declared: true });
  if (req.complete) return Promise.resolve({ kind: 'complete', body: Buffer.alloc(0) });
  return new Promise((resolve) => {
    const collector = new BodyCollector(max);
    const done = (r: BodyRead): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onGone);
      resolve(r);
    };
    const onData = (chunk: Buffer): void => {
      if (!collector.push(chunk)) done({ kind: 'too-large', declared: false });
    };
    const onEnd = (): void => done({ kind: 'complete', body: collector.body() });
    const onGone = (): void => done({ kind: 'aborted' });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onGone);
  });
}

/**
 * Answer 413 and close the connection once the client has had the chance to read it: the whole answer is
 * written at once, with Content-Length and `Connection: close`; the response is *ended* — which makes Node close
 * the socket — only when the request body has been read to its end, or after the linger bounds.
 */
export function answerTooLarge(req: http.IncomingMessage, res: http.ServerResponse, body: unknown, lingerMs = LINGER_MS, lingerBytes = LINGER_BYTES): void {
  const text = `${JSON.stringify(body)}\n`;
  // RFC 9110 §15.5.14: 413, and the server may close the connection to stop the client sending.
  res.writeHead(413, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', connection: 'close' });
  res.write(text);
  let discarded = 0;
  const finish = (): void => {
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', finish);
    req.off('error', finish);
    req.off('close', finish);
    if (!res.writableEnded && !res.destroyed) res.end();
    // Past the byte or time bound the client is still sending: stop reading (the RST it gets is deserved).
    if (!req.complete && !req.destroyed) req.socket.destroy();
  };
  const onData = (chunk: Buffer): void => {
    discarded += chunk.length; // read and dropped, never kept
    if (discarded > lingerBytes) finish();
  };
  const timer = setTimeout(finish, lingerMs);
  timer.unref();
  if (req.complete) return finish();
  req.on('data', onData);
  req.on('end', finish);
  req.on('error', finish);
  req.on('close', finish);
  req.resume();
}

export function createHintsApi(opts: HintsApiOptions): ApiHandler {
  return async (req, res) => {
    const read = await readBody(req, opts.maxBodyBytes);
    if (read.kind === 'aborted') {
      res.destroy();
      return;
    }
    if (read.kind === 'too-large') {
      const error = read.declared
        ? `Content-Length is over hints.max_body_bytes (${opts.maxBodyBytes} bytes)`
        : `body grew over hints.max_body_bytes (${opts.maxBodyBytes} bytes) while it was read`;
      answerTooLarge(req, res, { error, code: 'BODY_TOO_LARGE', limit: opts.maxBodyBytes }, opts.lingerMs, opts.lingerBytes);
      return;
    }
    const result = await ingestHints(read.body, req.headers['content-type'], opts.store, Date.now());
    opts.onIngested?.(result);
    const failure = bodyFailure(result);
    if (failure === null) return sendJson(res, 202, result);
    // RFC 9110 §15.5.16 (415) for a media type we do not read, §15.5.1 (400) for a body we cannot read.
    sendJson(res, failure.code === 'HINT_CONTENT_TYPE' ? 415 : 400, { error: failure.reason, code: failure.code, ...result });
  };
}

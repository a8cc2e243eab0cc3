/**
 * Lines of flow logs, streamed: a file or stdin, gzip-compressed or not (told by the gzip magic bytes 1f 8b,
 * RFC 1952 §2.3.1, never by the file name: rotated logs are often `flows.log.1.gz` or have no suffix at all).
 * Several gzip members one after the other (what `cat a.gz b.gz` and logrotate's `delaycompress` give) are one
 * stream, as gunzip reads them (RFC 1952 §2.2).
 *
 * Lines are handed over synchronously, a chunk at a time, so the caller's loop runs without an await per line.
 * Memory is bounded by the chunk size and `maxLineBytes`: a longer line is dropped (reported, not buffered).
 */
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

/** Longest line kept; the proxy's records are a few KB (a DNS answer list or a long URL make them longer). */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;
/** Decompressed chunk size: large chunks keep the per-chunk work (decode, concatenate) small per line. */
const GUNZIP_CHUNK = 256 * 1024;

export interface LineHandler {
  /** A line without its `\n` (a trailing `\r` is left: JSON allows it as whitespace). */
  line(text: string, lineNo: number): void;
  /** A line longer than the limit, dropped. */
  overlong(lineNo: number, bytes: number): void;
}

export interface ReadLinesOptions {
  /** Called with the count of raw (compressed, for gzip) bytes read, as they are read. */
  readonly onBytes?: (bytes: number) => void;
  readonly maxLineBytes?: number;
}

/** true when the bytes start with the gzip magic (RFC 1952 §2.3.1: ID1 = 31, ID2 = 139). */
export function isGzip(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

function noop(): void {}

/** Reads every line of `input` (a byte stream) into `handler`. Rejects on a read or decompression error. */
export async function readLines(input: Readable, handler: LineHandler, options: ReadLinesOptions = {}): Promise<void> {
  const onBytes = options.onBytes ?? noop;
  const maxLine = options.maxLineBytes ?? MAX_LINE_BYTES;
  const source = input[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  // Enough bytes to see the magic (a pipe may deliver a single byte first).
  let head: Buffer = Buffer.alloc(0) as Buffer;
  let done = false;
  while (head.length < 2) {
    const next = await source.next();
    if (next.done === true) {
      done = true;
      break;
    }
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    onBytes(chunk.length);
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
  }
  if (head.length === 0) return;
  const rest = async function* (): AsyncGenerator<Buffer> {
    yield head;
    if (done) return;
    for (;;) {
      const next = await source.next();
      if (next.done === true) return;
      const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
      onBytes(chunk.length);
      yield chunk;
    }
  };
  const raw = Readable.from(rest(), { objectMode: false });
  const bytes: Readable = isGzip(head) ? pipeline(raw, createGunzip({ chunkSize: GUNZIP_CHUNK }), noop) : raw;

  // Split the bytes at newlines (a UTF-8 multi-byte sequence never holds 0x0a, RFC 3629 §3) and decode line by
  // line: Buffer.indexOf is memchr, and V8 decodes a short string several times faster than a 1 MB one
  // (measured: ~1.3–2.7 GB/s per line against ~0.3 GB/s per chunk, StringDecoder included).
  let carry: Buffer | null = null;
  let lineNo = 0;
  /** Bytes of an overlong line dropped so far (its line number is lineNo + 1); 0 when none. */
  let dropping = 0;
  for await (const chunk of bytes as AsyncIterable<Buffer>) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) break;
      lineNo++;
      if (dropping > 0) {
        handler.overlong(lineNo, dropping + nl - start);
        dropping = 0;
      } else if (carry !== null) {
        const whole = Buffer.concat([carry, chunk.subarray(start, nl)]);
        carry = null;
        if (whole.length > maxLine) handler.overlong(lineNo, whole.length);
        else handler.line(whole.toString('utf8'), lineNo);
      } else if (nl - start > maxLine) {
        handler.overlong(lineNo, nl - start);
      } else {
        handler.line(chunk.toString('utf8', start, nl), lineNo);
      }
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.length - start;
      if (dropping > 0) dropping += rest;
      else if ((carry?.length ?? 0) + rest > maxLine) {
        dropping = (carry?.length ?? 0) + rest;
        carry = null;
      } else {
        // Copied: the chunk's memory is not kept alive by a small tail.
        carry = carry === null ? Buffer.from(chunk.subarray(start)) : Buffer.concat([carry, chunk.subarray(start)]);
      }
    }
  }
  // The last line without a newline.
  if (dropping > 0) handler.overlong(lineNo + 1, dropping);
  else if (carry !== null && carry.length > 0) handler.line(carry.toString('utf8'), lineNo + 1);
}

/**
 * The server's first flight of a TLS connection: its ServerHello and, for TLS 1.2 and older, the cleartext
 * Certificate message that follows it. A pure, synchronous reader over the front of the server's bytes
 * (`readServerFlight`) and a small streaming helper (`serverFlightObserver`) that copies at most
 * `MAX_SERVER_FLIGHT_BYTES` from a socket and calls back once.
 *
 * Why: the server's answer fingerprints the C2 server (JA3S, JA4S) and its certificate (JA4X, self-signed,
 * short validity), which catches C2 frameworks whose client side is disguised as a browser. In a spliced
 * tunnel the proxy sees these bytes without terminating TLS.
 *
 * Strictness follows client-hello.ts: the ServerHello's structure is checked strictly (lengths agree, no
 * trailing bytes, no duplicate extensions: RFC 8446 §4.2), because a lenient parser is what an evasive
 * server would aim at. A broken *Certificate* message after a good ServerHello does not throw the hello away:
 * the result is `complete` with `certificates: null` and `certificateError` saying why.
 */
import { Cursor, ParseError, isParseError } from './cursor.js';
import { EXT, LazyExtension, MAX_TLS_PLAINTEXT_FRAGMENT, TLS_RECORD_HEADER_BYTES } from './client-hello.js';
import type { TlsExtension } from './client-hello.js';

/**
 * Most bytes of the server's flight we buffer, record headers included. A ServerHello is ~100 B and a
 * certificate chain 2–10 KiB (post-quantum chains a little more); a flight that needs more is refused so a
 * hostile server cannot make the proxy buffer without bound.
 */
export const MAX_SERVER_FLIGHT_BYTES = 64 * 1024;
/**
 * Most TLS records we walk before a decision. Real servers use 1–5 (20-odd with a 512-byte
 * max_fragment_length, RFC 6066 §4); the cap keeps a server that sends 1-byte records from making each
 * re-read walk thousands of records.
 */
export const MAX_SERVER_FLIGHT_RECORDS = 256;

const CONTENT_TYPE_CHANGE_CIPHER_SPEC = 20;
const CONTENT_TYPE_ALERT = 21;
const CONTENT_TYPE_HANDSHAKE = 22;
const CONTENT_TYPE_APPLICATION_DATA = 23;
const HANDSHAKE_TYPE_SERVER_HELLO = 2;
const HANDSHAKE_TYPE_CERTIFICATE = 11;
/** RFC 8446 §4: msg_type (1) + uint24 length (3). */
const HANDSHAKE_HEADER_BYTES = 4;
/** legacy_version (2) + random (32) + session id length (1) + cipher_suite (2) + compression (1). */
const MIN_SERVER_HELLO_BODY = 38;

/**
 * RFC 8446 §4.1.3: a HelloRetryRequest is a ServerHello whose Random is SHA-256("HelloRetryRequest"):
 * CF 21 AD 74 E5 9A 61 11 BE 1D 8C 02 1E 65 B8 91 C2 A2 11 16 7A BB 8C 5E 07 9E 09 E2 C8 A8 33 9C.
 */
const HELLO_RETRY_REQUEST_RANDOM = Uint8Array.from([
  0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a,
  0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
]);

export interface ServerHello {
  /** legacy_version: 0x0303 for TLS 1.2 *and* TLS 1.3 (RFC 8446 §4.1.3); the real one is `selectedVersion`. */
  readonly legacyVersion: number;
  readonly random: Uint8Array;
  readonly sessionId: Uint8Array;
  readonly cipherSuite: number;
  readonly compressionMethod: number;
  /** Every extension in wire order (views into the input bytes). */
  readonly extensions: readonly TlsExtension[];
  /** supported_versions' selected_version (RFC 8446 §4.2.1), null when the extension is absent (≤ TLS 1.2). */
  readonly selectedVersion: number | null;
  /** The ALPN protocol the server chose (RFC 7301 §3.1), Latin-1 decoded; null without the extension. */
  readonly alpn: string | null;
  /** RFC 8446 §4.1.3: the special Random marks a HelloRetryRequest, not a real ServerHello. */
  readonly helloRetryRequest: boolean;
}

export type ServerFlightResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid'; readonly error: ParseError }
  | {
      readonly kind: 'complete';
      readonly hello: ServerHello;
      /**
       * DER certificates of the TLS ≤ 1.2 Certificate message, leaf first (RFC 5246 §7.4.2). Null when TLS 1.3
       * is selected (the Certificate is encrypted), for a HelloRetryRequest, when the server sent no
       * Certificate (resumption, anonymous or PSK suites), or when the message was broken or over the cap.
       */
      readonly certificates: Uint8Array[] | null;
      /** Why a Certificate message that was there could not be used; null otherwise. */
      readonly certificateError: string | null;
      /** Bytes of `buf` (whole records) that the decision was made from. */
      readonly consumed: number;
    };

/** The version the server selected: supported_versions when present (TLS 1.3), else legacy_version. */
export function negotiatedVersion(hello: ServerHello): number {
  return hello.selectedVersion ?? hello.legacyVersion;
}

// ---------------------------------------------------------------------------------------------------------
// The ServerHello body.

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i] as number);
  return s;
}

function isHelloRetryRandom(random: Uint8Array): boolean {
  for (let i = 0; i < 32; i++) if (random[i] !== HELLO_RETRY_REQUEST_RANDOM[i]) return false;
  return true;
}

/**
 * Parses a complete ServerHello handshake *body* (after msg_type and length). Throws `ParseError` (always
 * `invalid`); offsets are relative to `body`.
 */
export function parseServerHello(body: Uint8Array): ServerHello {
  // RFC 8446 §4.1.3 (RFC 5246 §7.4.1.3 is the same on the wire):
  //   ProtocolVersion legacy_version; Random random; opaque legacy_session_id_echo<0..32>;
  //   CipherSuite cipher_suite; uint8 legacy_compression_method; Extension extensions<6..2^16-1>;
  const c = new Cursor(body, 0, body.length, true);
  const legacyVersion = c.u16('server_hello.legacy_version');
  const random = c.take(32, 'server_hello.random');
  const sessionIdAt = c.offset;
  const sessionId = c.vec8('server_hello.legacy_session_id_echo');
  if (sessionId.remaining > 32) {
    throw c.invalid('server_hello.legacy_session_id_echo', `length ${sessionId.remaining} exceeds 32`, sessionIdAt);
  }
  const cipherSuite = c.u16('server_hello.cipher_suite');
  const compressionMethod = c.u8('server_hello.legacy_compression_method');

  const extensions: TlsExtension[] = [];
  let selectedVersion: number | null = null;
  let alpn: string | null = null;
  let seen: Set<number> | null = null;
  // RFC 5246 §7.4.1.3: a TLS ≤ 1.2 ServerHello may end here, without an extensions block.
  if (!c.isAtEnd) {
    const block = c.vec16('server_hello.extensions');
    c.expectEnd('server_hello');
    while (!block.isAtEnd) {
      const typeAt = block.offset;
      const type = block.u16('extension.type');
      const data = block.vec16('extension.extension_data');
      // RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type in a given extension block."
      // A linear scan is fastest for the usual 2–8 extensions; a Set keeps a hostile 16k-extension hello linear.
      let duplicate = false;
      if (extensions.length < 16) {
        for (let i = 0; i < extensions.length; i++) if ((extensions[i] as TlsExtension).type === type) duplicate = true;
      } else {
        seen ??= new Set(extensions.map((e) => e.type));
        duplicate = seen.has(type);
      }
      if (duplicate) throw block.invalid('extension.type', `duplicate extension 0x${type.toString(16).padStart(4, '0')}`, typeAt);
      seen?.add(type);
      extensions.push(new LazyExtension(type, data.bytes, data.offset, data.offset + data.remaining));
      if (type === EXT.supportedVersions) {
        // RFC 8446 §4.2.1: in a ServerHello, `ProtocolVersion selected_version;` — one value, no list.
        selectedVersion = data.u16('supported_versions.selected_version');
        data.expectEnd('supported_versions');
      } else if (type === EXT.alpn) {
        // RFC 7301 §3.1: the server's "ProtocolNameList" … "MUST contain exactly one "ProtocolName"".
        const list = data.vec16('alpn.protocol_name_list');
        data.expectEnd('alpn');
        const nameAt = list.offset;
        const name = list.vec8('alpn.protocol_name');
        if (!list.isAtEnd) throw list.invalid('alpn.protocol_name_list', 'a server must choose exactly one protocol', nameAt);
        alpn = latin1(name.take(name.remaining, 'alpn.protocol_name'));
      }
    }
  }
  return {
    legacyVersion,
    random,
    sessionId: sessionId.take(sessionId.remaining, 'server_hello.legacy_session_id_echo'),
    cipherSuite,
    compressionMethod,
    extensions,
    selectedVersion,
    alpn,
    helloRetryRequest: isHelloRetryRandom(random),
  };
}

/**
 * Parses a complete Certificate handshake body of TLS ≤ 1.2 (RFC 5246 §7.4.2):
 *   opaque ASN.1Cert<1..2^24-1>; struct { ASN.1Cert certificate_list<0..2^24-1>; } Certificate;
 * Returns views into `body`. Throws `ParseError`.
 */
export function parseCertificateList(body: Uint8Array): Uint8Array[] {
  const c = new Cursor(body, 0, body.length, true);
  const list = c.vec24('certificate.certificate_list');
  c.expectEnd('certificate');
  const out: Uint8Array[] = [];
  while (!list.isAtEnd) {
    const at = list.offset;
    const cert = list.vec24('certificate.asn1_cert');
    if (cert.remaining === 0) throw list.invalid('certificate.asn1_cert', 'empty certificate (minimum length 1)', at);
    out.push(cert.take(cert.remaining, 'certificate.asn1_cert'));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// The reader over the front of the server's bytes.

const INCOMPLETE: ServerFlightResult = Object.freeze({ kind: 'incomplete' });

function hex2(n: number): string {
  return `0x${n.toString(16).padStart(2, '0')}`;
}

/** The handshake bytes carried by the complete records seen so far, with a map back to `buf` offsets. */
class HandshakeStream {
  private readonly buf: Uint8Array;
  private readonly starts: number[] = [];
  private readonly lens: number[] = [];
  length = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  add(start: number, len: number): void {
    this.starts.push(start);
    this.lens.push(len);
    this.length += len;
  }

  byteAt(i: number): number {
    let rest = i;
    for (let k = 0; k < this.starts.length; k++) {
      const len = this.lens[k] as number;
      if (rest < len) return this.buf[(this.starts[k] as number) + rest] as number;
      rest -= len;
    }
    return -1;
  }

  /** Offset in `buf` of handshake-stream byte `i` (for error messages). */
  bufOffsetOf(i: number): number {
    let rest = i;
    for (let k = 0; k < this.starts.length; k++) {
      const len = this.lens[k] as number;
      if (rest < len) return (this.starts[k] as number) + rest;
      rest -= len;
    }
    const last = this.starts.length - 1;
    return last < 0 ? 0 : (this.starts[last] as number) + (this.lens[last] as number);
  }

  /** Bytes [from, from + n) of the stream: a view when one record holds them all, else a copy. */
  slice(from: number, n: number): Uint8Array {
    let rest = from;
    let out: Uint8Array | null = null;
    let w = 0;
    for (let k = 0; k < this.starts.length && w < n; k++) {
      const len = this.lens[k] as number;
      if (rest >= len) {
        rest -= len;
        continue;
      }
      const s = (this.starts[k] as number) + rest;
      const take = Math.min(len - rest, n - w);
      if (out === null) {
        if (take === n) return this.buf.subarray(s, s + n);
        out = new Uint8Array(n);
      }
      out.set(this.buf.subarray(s, s + take), w);
      w += take;
      rest = 0;
    }
    return out ?? new Uint8Array(0);
  }

  /** msg_type and length of the handshake message at `at`, or null when its 4-byte header is not all here. */
  headerAt(at: number): { type: number; length: number } | null {
    if (this.length - at < HANDSHAKE_HEADER_BYTES) return null;
    return { type: this.byteAt(at), length: this.byteAt(at + 1) * 65536 + this.byteAt(at + 2) * 256 + this.byteAt(at + 3) };
  }
}

/**
 * Looks at the front of `buf` (the server's bytes so far) and says whether the first flight can be decided.
 * Call it again with the grown buffer after `incomplete`. Never throws.
 *
 * `complete` as soon as the ServerHello is complete and either TLS 1.3 is selected (or it is a
 * HelloRetryRequest), or the next handshake message is complete (a Certificate) or is not a Certificate,
 * or the next record is not a handshake record (ChangeCipherSpec of a resumed session). `invalid` for a
 * non-TLS answer, an alert, a first message that is not a ServerHello, a broken ServerHello, or more than
 * `MAX_SERVER_FLIGHT_BYTES` / `MAX_SERVER_FLIGHT_RECORDS` before the ServerHello is complete. Offsets in the
 * error are into `buf`.
 */
export function readServerFlight(buf: Uint8Array): ServerFlightResult {
  try {
    return readServerFlightUnsafe(buf);
  } catch (err) {
    if (isParseError(err)) return err.isIncomplete ? INCOMPLETE : { kind: 'invalid', error: err };
    // Defensive: the parser throws only ParseError, but "never throws" is the contract.
    return { kind: 'invalid', error: new ParseError('invalid', 0, 'server_flight', err instanceof Error ? err.message : String(err)) };
  }
}

function complete(
  hello: ServerHello,
  certificates: Uint8Array[] | null,
  certificateError: string | null,
  consumed: number,
): ServerFlightResult {
  return { kind: 'complete', hello, certificates, certificateError, consumed };
}

/** RFC 8446 §6: struct { AlertLevel level; AlertDescription description; } Alert. */
function alertError(buf: Uint8Array, at: number): ParseError {
  const level = buf[at + TLS_RECORD_HEADER_BYTES];
  const description = buf[at + TLS_RECORD_HEADER_BYTES + 1];
  const what = level === undefined || description === undefined ? '' : ` (level ${level}, description ${description})`;
  return new ParseError('invalid', at, 'record.content_type', `the server sent an alert${what} instead of a ServerHello`);
}

function readServerFlightUnsafe(buf: Uint8Array): ServerFlightResult {
  const n = buf.length;
  if (n === 0) return INCOMPLETE;
  const type0 = buf[0] as number;
  if (type0 !== CONTENT_TYPE_HANDSHAKE && type0 !== CONTENT_TYPE_ALERT) {
    // A plain-text answer (an HTTP error page, an SSH banner) to a ClientHello: not a TLS server.
    throw new ParseError('invalid', 0, 'record.content_type', `first byte ${hex2(type0)} is not a TLS handshake record (0x16)`);
  }
  const hs = new HandshakeStream(buf);
  let hello: ServerHello | null = null;
  /** Handshake-stream offset just past the ServerHello, once parsed. */
  let helloEnd = -1;
  let pos = 0;
  for (let record = 0; ; record++) {
    // Decide from what the complete records hold so far.
    if (hello === null) {
      const header = hs.headerAt(0);
      if (header !== null) {
        if (header.type !== HANDSHAKE_TYPE_SERVER_HELLO) {
          throw new ParseError('invalid', hs.bufOffsetOf(0), 'handshake.msg_type', `expected server_hello (2), got ${header.type}`);
        }
        if (header.length < MIN_SERVER_HELLO_BODY) {
          throw new ParseError('invalid', hs.bufOffsetOf(1), 'handshake.length', `${header.length} is too short for a ServerHello`);
        }
        if (header.length + HANDSHAKE_HEADER_BYTES > MAX_SERVER_FLIGHT_BYTES) {
          throw new ParseError('invalid', hs.bufOffsetOf(1), 'handshake.length', `${header.length} exceeds the ${MAX_SERVER_FLIGHT_BYTES}-byte cap`);
        }
        if (hs.length >= HANDSHAKE_HEADER_BYTES + header.length) {
          hello = parseHelloAt(hs, header.length);
          helloEnd = HANDSHAKE_HEADER_BYTES + header.length;
          // RFC 8446 §4.4.2: from TLS 1.3 on, everything after the ServerHello is encrypted; a
          // HelloRetryRequest is followed by the client's second ClientHello, not by a Certificate.
          if (hello.selectedVersion !== null || hello.helloRetryRequest) return complete(hello, null, null, pos);
        }
      }
    }
    if (hello !== null) {
      const next = hs.headerAt(helloEnd);
      if (next === null && hs.length > helloEnd && hs.byteAt(helloEnd) !== HANDSHAKE_TYPE_CERTIFICATE) {
        return complete(hello, null, null, pos);
      }
      if (next !== null) {
        if (next.type !== HANDSHAKE_TYPE_CERTIFICATE) return complete(hello, null, null, pos);
        const total = helloEnd + HANDSHAKE_HEADER_BYTES + next.length;
        if (total > MAX_SERVER_FLIGHT_BYTES) {
          return complete(hello, null, `Certificate message of ${next.length} bytes exceeds the ${MAX_SERVER_FLIGHT_BYTES}-byte cap`, pos);
        }
        if (hs.length >= total) {
          try {
            const certificates = parseCertificateList(hs.slice(helloEnd + HANDSHAKE_HEADER_BYTES, next.length));
            return complete(hello, certificates, null, pos);
          } catch (err) {
            if (!isParseError(err)) throw err;
            const at = hs.bufOffsetOf(helloEnd + HANDSHAKE_HEADER_BYTES + err.offset);
            return complete(hello, null, `invalid ${err.field} at offset ${at}: ${err.reason}`, pos);
          }
        }
      }
    }
    if (pos >= n) return INCOMPLETE;
    if (record >= MAX_SERVER_FLIGHT_RECORDS) {
      if (hello !== null) return complete(hello, null, `more than ${MAX_SERVER_FLIGHT_RECORDS} records before the Certificate was complete`, pos);
      throw new ParseError('invalid', pos, 'record', `more than ${MAX_SERVER_FLIGHT_RECORDS} records without a complete ServerHello`);
    }

    // The next record. A header still arriving (common: the first read of a slow server, or a one-byte answer) is
    // `incomplete` without building an error: this runs on every spliced tunnel's first read (issue 9, tunnel cost).
    if (n - pos < TLS_RECORD_HEADER_BYTES && buf[pos] === CONTENT_TYPE_HANDSHAKE && (n - pos < 2 || buf[pos + 1] === 0x03)) return INCOMPLETE;
    const c = new Cursor(buf, pos, n, false);
    const contentType = c.u8('record.content_type');
    if (contentType !== CONTENT_TYPE_HANDSHAKE) {
      if (
        hello !== null &&
        (contentType === CONTENT_TYPE_CHANGE_CIPHER_SPEC || contentType === CONTENT_TYPE_ALERT || contentType === CONTENT_TYPE_APPLICATION_DATA)
      ) {
        // An abbreviated (resumed) TLS 1.2 handshake: ServerHello, then ChangeCipherSpec (RFC 5246 §7.3).
        return complete(hello, null, null, pos);
      }
      if (contentType === CONTENT_TYPE_ALERT) {
        if (n - pos < TLS_RECORD_HEADER_BYTES + 2) return INCOMPLETE;
        throw alertError(buf, pos);
      }
      // RFC 8446 §5.1: handshake messages may be fragmented over records, but nothing may be interleaved.
      throw c.invalid('record.content_type', `record ${record} has content type ${contentType} before the ServerHello was complete`, pos);
    }
    const major = c.u8('record.legacy_record_version');
    if (major !== 0x03) throw c.invalid('record.legacy_record_version', `major ${hex2(major)} is not 3`, pos + 1);
    c.u8('record.legacy_record_version');
    const lengthAt = c.offset;
    const length = c.u16('record.length');
    // RFC 8446 §5.1: "Implementations MUST NOT send zero-length fragments of Handshake types".
    if (length === 0) throw c.invalid('record.length', 'zero-length handshake fragment', lengthAt);
    if (length > MAX_TLS_PLAINTEXT_FRAGMENT) throw c.invalid('record.length', `${length} exceeds 2^14`, lengthAt);
    const end = pos + TLS_RECORD_HEADER_BYTES + length;
    if (end > MAX_SERVER_FLIGHT_BYTES) {
      if (hello !== null) return complete(hello, null, `server flight records exceed the ${MAX_SERVER_FLIGHT_BYTES}-byte cap`, pos);
      throw c.invalid('record.length', `server flight records exceed the ${MAX_SERVER_FLIGHT_BYTES}-byte cap`, lengthAt);
    }
    if (end > n) {
      // Refuse a non-ServerHello first message as soon as its type byte is here, before buffering the record.
      if (hello === null && hs.length === 0 && n > pos + TLS_RECORD_HEADER_BYTES) {
        const msgType = buf[pos + TLS_RECORD_HEADER_BYTES] as number;
        if (msgType !== HANDSHAKE_TYPE_SERVER_HELLO) {
          throw new ParseError('invalid', pos + TLS_RECORD_HEADER_BYTES, 'handshake.msg_type', `expected server_hello (2), got ${msgType}`);
        }
      }
      return INCOMPLETE;
    }
    hs.add(pos + TLS_RECORD_HEADER_BYTES, length);
    pos = end;
  }
}

function parseHelloAt(hs: HandshakeStream, length: number): ServerHello {
  try {
    return parseServerHello(hs.slice(HANDSHAKE_HEADER_BYTES, length));
  } catch (err) {
    if (isParseError(err)) {
      // Re-anchor the body-relative offset onto the caller's buffer.
      throw new ParseError('invalid', hs.bufOffsetOf(HANDSHAKE_HEADER_BYTES + err.offset), err.field, err.reason);
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Streaming helper for socket code.

export type ServerFlightDecision = Exclude<ServerFlightResult, { readonly kind: 'incomplete' }>;

export interface ServerFlightObserver {
  /** Feeds the next chunk the server sent. Cheap after the decision (ignored). */
  push(chunk: Uint8Array): void;
  /** The server's stream ended (or the tunnel closed): decides `invalid` if nothing was decided yet. */
  end(): void;
  /** true once the callback has been called. */
  readonly done: boolean;
}

/**
 * Collects the server's first bytes (copying at most `MAX_SERVER_FLIGHT_BYTES`) and calls `onResult`
 * exactly once, with the first non-`incomplete` result. The reader runs only when a new TLS record is
 * complete, so a server dribbling bytes costs one header check per chunk.
 */
export function serverFlightObserver(onResult: (result: ServerFlightDecision) => void, opts: { readonly throughRetry?: boolean } = {}): ServerFlightObserver {
  let buf = new Uint8Array(0);
  let have = 0;
  /** Offset of the next record header not yet known to be complete. */
  let scan = 0;
  let done = false;
  /** A HelloRetryRequest was seen and skipped (opts.throughRetry): the next ServerHello is the one to decide on. */
  let retried = false;
  const dropFront = (k: number): void => {
    buf.copyWithin(0, k, have);
    have -= k;
    scan = Math.max(0, scan - k);
  };
  /** Reads what is buffered; true once decided. */
  const attempt = (): boolean => {
    if (retried) {
      // RFC 8446 §D.4: in middlebox-compatibility mode a ChangeCipherSpec record follows the HelloRetryRequest.
      while (have >= TLS_RECORD_HEADER_BYTES && buf[0] === CONTENT_TYPE_CHANGE_CIPHER_SPEC) {
        const length = TLS_RECORD_HEADER_BYTES + (((buf[3] as number) << 8) | (buf[4] as number));
        if (length > have) break;
        dropFront(length);
      }
      // Nothing yet, or a ChangeCipherSpec record still arriving.
      if (have === 0 || buf[0] === CONTENT_TYPE_CHANGE_CIPHER_SPEC) return false;
    }
    const result = readServerFlight(buf.subarray(0, have));
    if (opts.throughRetry === true && !retried && result.kind === 'complete' && result.hello.helloRetryRequest) {
      // RFC 8446 §4.1.4: the client sends a second ClientHello and the server answers with the real ServerHello,
      // the one JA3S and JA4S describe (FoxIO's tools report the later one for the stream). Keep reading.
      retried = true;
      dropFront(result.consumed);
      return attempt();
    }
    if (result.kind === 'incomplete') return false;
    // The result's views point into `buf`; copy so that releasing the buffer cannot change them.
    decide(result.kind === 'complete' ? detach(result) : result);
    return true;
  };

  const decide = (result: ServerFlightDecision): void => {
    done = true;
    buf = new Uint8Array(0); // release the copy; the result's views keep only what they need alive
    onResult(result);
  };

  return {
    get done() {
      return done;
    },
    push(chunk: Uint8Array): void {
      if (done || chunk.length === 0) return;
      const take = Math.min(chunk.length, MAX_SERVER_FLIGHT_BYTES - have);
      if (have + take > buf.length) {
        const grown = new Uint8Array(Math.min(MAX_SERVER_FLIGHT_BYTES, Math.max(have + take, buf.length * 2, 4096)));
        grown.set(buf.subarray(0, have));
        buf = grown;
      }
      buf.set(take === chunk.length ? chunk : chunk.subarray(0, take), have);
      have += take;
      let recordCompleted = false;
      while (have - scan >= TLS_RECORD_HEADER_BYTES) {
        const end = scan + TLS_RECORD_HEADER_BYTES + (((buf[scan + 3] as number) << 8) | (buf[scan + 4] as number));
        if (end > have) break;
        scan = end;
        recordCompleted = true;
      }
      // Also run on the very first bytes, so that a non-TLS answer or a wrong first message is refused early.
      if ((recordCompleted || have === take) && attempt()) return;
      if (have >= MAX_SERVER_FLIGHT_BYTES) {
        decide({
          kind: 'invalid',
          error: new ParseError('invalid', have, 'server_flight', `no complete ServerHello within ${MAX_SERVER_FLIGHT_BYTES} bytes`),
        });
      }
    },
    end(): void {
      if (done) return;
      decide({
        kind: 'invalid',
        error: new ParseError('invalid', have, 'server_flight', `the server's stream ended after ${have} bytes, before its first flight was complete`),
      });
    },
  };
}

/** A complete result whose byte views no longer share the observer's buffer. */
function detach(result: Extract<ServerFlightResult, { readonly kind: 'complete' }>): ServerFlightDecision {
  const h = result.hello;
  const extensions: TlsExtension[] = h.extensions.map((e) => {
    const data = e.data.slice();
    return new LazyExtension(e.type, data, 0, data.length);
  });
  return {
    kind: 'complete',
    hello: { ...h, random: h.random.slice(), sessionId: h.sessionId.slice(), extensions },
    certificates: result.certificates === null ? null : result.certificates.map((der) => der.slice()),
    certificateError: result.certificateError,
    consumed: result.consumed,
  };
}

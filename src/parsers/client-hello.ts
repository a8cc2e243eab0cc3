/**
 * TLS ClientHello: a pure, synchronous parser over complete bytes (`parseClientHello`) and a reader that
 * tells, from the front of a growing socket buffer, whether a complete ClientHello has arrived
 * (`readClientHello`). Socket code only collects bytes and re-calls the reader; it never parses.
 *
 * Strictness: structure is checked strictly (every length field must agree with its container, no trailing
 * bytes, no duplicate extensions) because a server would reject such a hello and a lenient parser is where
 * SNI-smuggling tricks live. Semantic minimums that real-world oddballs break (an empty cipher list, no
 * compression method, an empty ALPN name) are accepted so that they can still be fingerprinted.
 */
import { Cursor, ParseError, isParseError } from './cursor.js';

/** TLS record header: content type (1), legacy_record_version (2), length (2) — RFC 8446 §5.1. */
export const TLS_RECORD_HEADER_BYTES = 5;
/** RFC 8446 §5.1: "The length MUST NOT exceed 2^14 bytes." */
export const MAX_TLS_PLAINTEXT_FRAGMENT = 16_384;
/**
 * Most record bytes (headers included) we buffer for one ClientHello before giving up. Real hellos are
 * 200 B – 2 KiB (post-quantum key shares push Chrome to ~1.8 KiB); 64 KiB leaves room for large PSK
 * identities while keeping a slow-loris client from growing the buffer without bound.
 */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;

const CONTENT_TYPE_HANDSHAKE = 0x16;
const HANDSHAKE_TYPE_CLIENT_HELLO = 0x01;

/** Extension type code points (IANA "TLS ExtensionType Values"). */
export const EXT = {
  serverName: 0x0000,
  supportedGroups: 0x000a,
  ecPointFormats: 0x000b,
  signatureAlgorithms: 0x000d,
  alpn: 0x0010,
  padding: 0x0015,
  preSharedKey: 0x0029,
  supportedVersions: 0x002b,
  pskKeyExchangeModes: 0x002d,
  signatureAlgorithmsCert: 0x0032,
  keyShare: 0x0033,
  quicTransportParameters: 0x0039,
  encryptedClientHello: 0xfe0d,
} as const;

export interface TlsExtension {
  readonly type: number;
  /** The extension_data bytes (a view into the input; copy it if the input buffer will be reused). */
  readonly data: Uint8Array;
}

/**
 * An extension that makes its `data` view only when asked: most callers only read `type`, and creating
 * ~17 typed-array views per hello was a measurable share of the parse time.
 */
export class LazyExtension implements TlsExtension {
  readonly type: number;
  private readonly bytes: Uint8Array;
  private readonly start: number;
  private readonly end: number;

  constructor(type: number, bytes: Uint8Array, start: number, end: number) {
    this.type = type;
    this.bytes = bytes;
    this.start = start;
    this.end = end;
  }

  get data(): Uint8Array {
    return this.bytes.subarray(this.start, this.end);
  }

  toJSON(): { type: number; data: string } {
    return { type: this.type, data: Buffer.from(this.data).toString('hex') };
  }
}

export interface KeyShareEntry {
  readonly group: number;
  /** Only the length is kept: the key itself is random per connection and useless for policy. */
  readonly keyExchangeLength: number;
}

/** The extensions we decode. `null` means the extension is absent. */
export interface DecodedExtensions {
  /** First host_name of server_name, decoded as Latin-1 (one char per byte, lossless). */
  serverName: string | null;
  /** ALPN protocol names in wire order, decoded as Latin-1 so `charCodeAt` gives back each byte. */
  alpn: readonly string[] | null;
  supportedVersions: readonly number[] | null;
  supportedGroups: readonly number[] | null;
  ecPointFormats: readonly number[] | null;
  signatureAlgorithms: readonly number[] | null;
  signatureAlgorithmsCert: readonly number[] | null;
  keyShares: readonly KeyShareEntry[] | null;
  pskKeyExchangeModes: readonly number[] | null;
  /** encrypted_client_hello (0xfe0d) present, outer or inner form. */
  hasEncryptedClientHello: boolean;
}

export interface ClientHello extends Readonly<DecodedExtensions> {
  readonly legacyVersion: number;
  readonly random: Uint8Array;
  readonly sessionId: Uint8Array;
  readonly cipherSuites: readonly number[];
  readonly compressionMethods: readonly number[];
  /** Every extension, GREASE included, in wire order. */
  readonly extensions: readonly TlsExtension[];
}

export type ReadResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'complete'; readonly hello: ClientHello; readonly consumed: number }
  | { readonly kind: 'not-tls'; readonly reason: string }
  | { readonly kind: 'invalid'; readonly error: ParseError };

// ---------------------------------------------------------------------------------------------------------
// Extension decoders: one pure function per extension, looked up by type.

/** A list of 16-bit values filling the cursor (odd byte counts are invalid). */
function readU16List(c: Cursor, field: string): number[] {
  if ((c.remaining & 1) !== 0) throw c.invalid(field, `odd length ${c.remaining} for a list of 16-bit values`);
  const out = new Array<number>(c.remaining >> 1);
  for (let i = 0; i < out.length; i++) out[i] = c.u16(field);
  return out;
}

function readU8List(c: Cursor, field: string): number[] {
  const out = new Array<number>(c.remaining);
  for (let i = 0; i < out.length; i++) out[i] = c.u8(field);
  return out;
}

function latin1(bytes: Uint8Array): string {
  // Short strings: a loop beats creating a Buffer view; names here are at most 255 (ALPN) or 65535 bytes.
  if (bytes.length <= 64) {
    let s = '';
    for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i] as number);
    return s;
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

function decodeServerName(c: Cursor): string | null {
  // RFC 6066 §3: struct { NameType name_type; select (name_type) { case host_name: HostName; } name; }
  //   ServerName; struct { ServerName server_name_list<1..2^16-1> } ServerNameList;
  // A ClientHello MAY carry an empty extension_data (RFC 6066 §3, server side) — treat it as "no name".
  if (c.isAtEnd) return null;
  const list = c.vec16('server_name.server_name_list');
  c.expectEnd('server_name');
  let first: string | null = null;
  while (!list.isAtEnd) {
    const nameType = list.u8('server_name.name_type');
    // RFC 6066 §3: HostName opaque<1..2^16-1>. Only host_name (0) is defined; other types share the layout.
    const name = list.vec16('server_name.host_name');
    if (nameType === 0 && first === null) first = latin1(name.take(name.remaining, 'server_name.host_name'));
  }
  return first;
}

function decodeAlpn(c: Cursor): readonly string[] {
  // RFC 7301 §3.1: opaque ProtocolName<1..2^8-1>; struct { ProtocolName protocol_name_list<2..2^16-1> }.
  // Empty names are accepted (JA4.md defines "the first ALPN value is empty" → "00").
  const list = c.vec16('alpn.protocol_name_list');
  c.expectEnd('alpn');
  const out: string[] = [];
  while (!list.isAtEnd) {
    const name = list.vec8('alpn.protocol_name');
    out.push(latin1(name.take(name.remaining, 'alpn.protocol_name')));
  }
  return out;
}

function decodeSupportedVersions(c: Cursor): readonly number[] {
  // RFC 8446 §4.2.1: in a ClientHello, ProtocolVersion versions<2..254> (1-byte length).
  const list = c.vec8('supported_versions.versions');
  c.expectEnd('supported_versions');
  return readU16List(list, 'supported_versions.versions');
}

function decodeSupportedGroups(c: Cursor): readonly number[] {
  // RFC 8446 §4.2.7 (RFC 8422 §5.1.1 "elliptic_curves"): NamedGroup named_group_list<2..2^16-1>.
  const list = c.vec16('supported_groups.named_group_list');
  c.expectEnd('supported_groups');
  return readU16List(list, 'supported_groups.named_group_list');
}

function decodeEcPointFormats(c: Cursor): readonly number[] {
  // RFC 8422 §5.1.2: ECPointFormat ec_point_format_list<1..2^8-1>.
  const list = c.vec8('ec_point_formats.ec_point_format_list');
  c.expectEnd('ec_point_formats');
  return readU8List(list, 'ec_point_formats.ec_point_format_list');
}

function decodeSignatureAlgorithms(c: Cursor): readonly number[] {
  // RFC 8446 §4.2.3: SignatureScheme supported_signature_algorithms<2..2^16-2>.
  const list = c.vec16('signature_algorithms.supported_signature_algorithms');
  c.expectEnd('signature_algorithms');
  return readU16List(list, 'signature_algorithms.supported_signature_algorithms');
}

function decodeSignatureAlgorithmsCert(c: Cursor): readonly number[] {
  // RFC 8446 §4.2.3: "signature_algorithms_cert" has the same SignatureSchemeList layout.
  const list = c.vec16('signature_algorithms_cert.supported_signature_algorithms');
  c.expectEnd('signature_algorithms_cert');
  return readU16List(list, 'signature_algorithms_cert.supported_signature_algorithms');
}

function decodeKeyShare(c: Cursor): readonly KeyShareEntry[] {
  // RFC 8446 §4.2.8: KeyShareEntry client_shares<0..2^16-1>;
  //   struct { NamedGroup group; opaque key_exchange<1..2^16-1>; } KeyShareEntry.
  const list = c.vec16('key_share.client_shares');
  c.expectEnd('key_share');
  const out: KeyShareEntry[] = [];
  while (!list.isAtEnd) {
    const group = list.u16('key_share.group');
    const key = list.vec16('key_share.key_exchange');
    out.push({ group, keyExchangeLength: key.remaining });
  }
  return out;
}

function decodePskKeyExchangeModes(c: Cursor): readonly number[] {
  // RFC 8446 §4.2.9: PskKeyExchangeMode ke_modes<1..255>.
  const list = c.vec8('psk_key_exchange_modes.ke_modes');
  c.expectEnd('psk_key_exchange_modes');
  return readU8List(list, 'psk_key_exchange_modes.ke_modes');
}

function decodeEncryptedClientHello(c: Cursor): boolean {
  // draft-ietf-tls-esni §5: ECHClientHello starts with ECHClientHelloType (outer = 0, inner = 1). Presence is
  // the fact we report; the payload is encrypted (outer) or empty (inner) and says nothing stable.
  c.u8('encrypted_client_hello.type');
  return true;
}

interface Decoder<K extends keyof DecodedExtensions> {
  readonly key: K;
  readonly decode: (c: Cursor) => DecodedExtensions[K];
}
type AnyDecoder = { [K in keyof DecodedExtensions]: Decoder<K> }[keyof DecodedExtensions];

const decoder = <K extends keyof DecodedExtensions>(key: K, decode: (c: Cursor) => DecodedExtensions[K]): Decoder<K> => ({
  key,
  decode,
});

/** Extension type → the pure function that decodes it and the ClientHello property it fills. */
const EXTENSION_DECODERS: ReadonlyMap<number, AnyDecoder> = new Map<number, AnyDecoder>([
  [EXT.serverName, decoder('serverName', decodeServerName)],
  [EXT.alpn, decoder('alpn', decodeAlpn)],
  [EXT.supportedVersions, decoder('supportedVersions', decodeSupportedVersions)],
  [EXT.supportedGroups, decoder('supportedGroups', decodeSupportedGroups)],
  [EXT.ecPointFormats, decoder('ecPointFormats', decodeEcPointFormats)],
  [EXT.signatureAlgorithms, decoder('signatureAlgorithms', decodeSignatureAlgorithms)],
  [EXT.signatureAlgorithmsCert, decoder('signatureAlgorithmsCert', decodeSignatureAlgorithmsCert)],
  [EXT.keyShare, decoder('keyShares', decodeKeyShare)],
  [EXT.pskKeyExchangeModes, decoder('pskKeyExchangeModes', decodePskKeyExchangeModes)],
  [EXT.encryptedClientHello, decoder('hasEncryptedClientHello', decodeEncryptedClientHello)],
]);

function applyDecoder<K extends keyof DecodedExtensions>(out: DecodedExtensions, d: Decoder<K>, c: Cursor): void {
  out[d.key] = d.decode(c);
}

// ---------------------------------------------------------------------------------------------------------
// The ClientHello body.

/**
 * Parses a complete ClientHello handshake message *body* (the bytes after the 4-byte handshake header:
 * msg_type and length). Pure and synchronous. Throws `ParseError` (always `invalid`: the body is complete,
 * so a short read means a length field lies); offsets are relative to the start of `body`.
 */
export function parseClientHello(body: Uint8Array): ClientHello {
  // RFC 8446 §4.1.2 (and RFC 5246 §7.4.1.2, identical on the wire):
  //   ProtocolVersion legacy_version; Random random; opaque legacy_session_id<0..32>;
  //   CipherSuite cipher_suites<2..2^16-2>; opaque legacy_compression_methods<1..2^8-1>;
  //   Extension extensions<8..2^16-1>;
  const c = new Cursor(body, 0, body.length, true);
  const legacyVersion = c.u16('client_hello.legacy_version');
  const random = c.take(32, 'client_hello.random');
  const sessionIdAt = c.offset;
  const sessionId = c.vec8('client_hello.legacy_session_id');
  if (sessionId.remaining > 32) {
    throw c.invalid('client_hello.legacy_session_id', `length ${sessionId.remaining} exceeds 32`, sessionIdAt);
  }
  const suites = c.vec16('client_hello.cipher_suites');
  const cipherSuites = readU16List(suites, 'client_hello.cipher_suites');
  const compressionMethods = readU8List(c.vec8('client_hello.legacy_compression_methods'), 'client_hello.legacy_compression_methods');

  const decoded: DecodedExtensions = {
    serverName: null,
    alpn: null,
    supportedVersions: null,
    supportedGroups: null,
    ecPointFormats: null,
    signatureAlgorithms: null,
    signatureAlgorithmsCert: null,
    keyShares: null,
    pskKeyExchangeModes: null,
    hasEncryptedClientHello: false,
  };
  const extensions: TlsExtension[] = [];
  const types: number[] = [];
  // RFC 5246 §7.4.1.2: a hello without the extensions block at all is legal (SSL 3.0-era clients).
  if (!c.isAtEnd) {
    const block = c.vec16('client_hello.extensions');
    c.expectEnd('client_hello');
    while (!block.isAtEnd) {
      const typeAt = block.offset;
      const type = block.u16('extension.type');
      const data = block.vec16('extension.extension_data');
      // RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type in a given extension
      // block." Servers abort on it; a proxy that read the first SNI while the server read the second
      // would be fooled, so a duplicate makes the hello invalid.
      for (let i = 0; i < types.length; i++) {
        if (types[i] === type) {
          throw block.invalid('extension.type', `duplicate extension 0x${type.toString(16).padStart(4, '0')}`, typeAt);
        }
      }
      types.push(type);
      extensions.push(new LazyExtension(type, data.bytes, data.offset, data.offset + data.remaining));
      const d = EXTENSION_DECODERS.get(type);
      if (d !== undefined) applyDecoder(decoded, d, data);
    }
  }
  // Every field set explicitly, in one shape, so that V8 keeps one hidden class for all hellos.
  return {
    legacyVersion,
    random,
    sessionId: sessionId.take(sessionId.remaining, 'client_hello.legacy_session_id'),
    cipherSuites,
    compressionMethods,
    extensions,
    serverName: decoded.serverName,
    alpn: decoded.alpn,
    supportedVersions: decoded.supportedVersions,
    supportedGroups: decoded.supportedGroups,
    ecPointFormats: decoded.ecPointFormats,
    signatureAlgorithms: decoded.signatureAlgorithms,
    signatureAlgorithmsCert: decoded.signatureAlgorithmsCert,
    keyShares: decoded.keyShares,
    pskKeyExchangeModes: decoded.pskKeyExchangeModes,
    hasEncryptedClientHello: decoded.hasEncryptedClientHello,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The reader over the front of a socket buffer.

function notTls(reason: string): ReadResult {
  return { kind: 'not-tls', reason };
}

function invalid(error: ParseError): ReadResult {
  return { kind: 'invalid', error };
}

const INCOMPLETE: ReadResult = Object.freeze({ kind: 'incomplete' });

function hex2(n: number): string {
  return `0x${n.toString(16).padStart(2, '0')}`;
}

/**
 * Looks at the front of `buf` (the client's bytes so far) and says whether it holds a complete ClientHello.
 * Call it again with the grown buffer after `incomplete`. Never throws.
 *
 * - `not-tls`: decided from the first 1–3 bytes (content type 22, record version major 3, minor 0–4).
 * - `incomplete`: a prefix of a plausible ClientHello; more bytes are needed.
 * - `invalid`: TLS-looking but broken, a handshake message that is not a ClientHello, or more than
 *   `MAX_CLIENT_HELLO_BYTES` of records without a complete hello. Offsets in the error are into `buf`.
 * - `complete`: `consumed` counts the bytes of every TLS record that carried the hello, headers included;
 *   bytes after them (early data, a second flight) stay for the caller.
 */
export function readClientHello(buf: Uint8Array): ReadResult {
  try {
    return readClientHelloUnsafe(buf);
  } catch (err) {
    if (isParseError(err)) return err.isIncomplete ? INCOMPLETE : invalid(err);
    // Defensive: the parser throws only ParseError, but "never throws" is the contract.
    return invalid(new ParseError('invalid', 0, 'client_hello', err instanceof Error ? err.message : String(err)));
  }
}

function readClientHelloUnsafe(buf: Uint8Array): ReadResult {
  const n = buf.length;
  if (n === 0) return INCOMPLETE;
  // RFC 8446 §5.1: ContentType handshake(22). Anything else first is not a TLS client (HTTP, SSH, …);
  // 0x80 with a length is the SSL 2.0-compatible hello (RFC 5246 appendix E.2), which we do not decode.
  const type0 = buf[0] as number;
  if (type0 !== CONTENT_TYPE_HANDSHAKE) {
    return notTls(
      (type0 & 0x80) !== 0 && n >= 3 && buf[2] === 0x01
        ? 'SSL 2.0-compatible ClientHello is not supported'
        : `first byte ${hex2(type0)} is not a TLS handshake record (0x16)`,
    );
  }
  // RFC 8446 §5.1 legacy_record_version: 0x0301 for an initial ClientHello, 0x0300–0x0304 seen in practice.
  if (n >= 2 && buf[1] !== 0x03) return notTls(`record version major ${hex2(buf[1] as number)} is not 3`);
  if (n >= 3 && (buf[2] as number) > 0x04) return notTls(`record version ${hex2(buf[2] as number)} is implausible`);

  // Walk the records, collecting handshake fragments, until the ClientHello's declared length is covered.
  const fragStarts: number[] = [];
  const fragLens: number[] = [];
  let pos = 0;
  let collected = 0;
  let helloLength = -1;
  for (let record = 0; ; record++) {
    const c = new Cursor(buf, pos, n, false);
    const contentType = c.u8('record.content_type');
    if (contentType !== CONTENT_TYPE_HANDSHAKE) {
      // RFC 8446 §5.1: handshake messages may be fragmented over records, but nothing may be interleaved.
      throw c.invalid('record.content_type', `record ${record} has content type ${contentType}, the ClientHello is not complete`, pos);
    }
    const major = c.u8('record.legacy_record_version');
    if (major !== 0x03) throw c.invalid('record.legacy_record_version', `major ${hex2(major)} is not 3`, pos + 1);
    c.u8('record.legacy_record_version');
    const lengthAt = c.offset;
    const length = c.u16('record.length');
    if (length === 0) {
      // RFC 8446 §5.1: "Implementations MUST NOT send zero-length fragments of Handshake types".
      throw c.invalid('record.length', 'zero-length handshake fragment', lengthAt);
    }
    if (length > MAX_TLS_PLAINTEXT_FRAGMENT) {
      throw c.invalid('record.length', `${length} exceeds 2^14`, lengthAt);
    }
    if (pos + TLS_RECORD_HEADER_BYTES + length > MAX_CLIENT_HELLO_BYTES) {
      throw c.invalid('record.length', `ClientHello records exceed the ${MAX_CLIENT_HELLO_BYTES}-byte cap`, lengthAt);
    }
    const fragStart = pos + TLS_RECORD_HEADER_BYTES;
    const available = Math.min(length, n - fragStart);
    // Check the handshake header as soon as its bytes are here, even before the record is complete, so
    // that a non-ClientHello or an oversized one is refused early rather than buffered.
    const headerResult = checkHandshakeHeader(buf, fragStarts, fragLens, collected, fragStart, available);
    if (headerResult !== null) throw headerResult;
    if (available < length) return INCOMPLETE;
    fragStarts.push(fragStart);
    fragLens.push(length);
    collected += length;
    pos = fragStart + length;
    if (collected >= 4) {
      if (helloLength < 0) {
        // RFC 8446 §4: struct { HandshakeType msg_type; uint24 length; … } Handshake.
        helloLength =
          handshakeByte(buf, fragStarts, fragLens, 1) * 65536 +
          handshakeByte(buf, fragStarts, fragLens, 2) * 256 +
          handshakeByte(buf, fragStarts, fragLens, 3);
      }
      if (collected >= 4 + helloLength) {
        return { kind: 'complete', hello: parseBody(buf, fragStarts, fragLens, helloLength), consumed: pos };
      }
    }
    if (pos >= n) return INCOMPLETE;
  }
}

/** Byte `i` of the handshake stream formed by the fragments. */
function handshakeByte(buf: Uint8Array, starts: readonly number[], lens: readonly number[], i: number): number {
  let rest = i;
  for (let k = 0; k < starts.length; k++) {
    const len = lens[k] as number;
    if (rest < len) return buf[(starts[k] as number) + rest] as number;
    rest -= len;
  }
  return -1;
}

/** Maps an offset in the handshake stream back to an offset in `buf` (for error messages). */
function bufOffsetOf(starts: readonly number[], lens: readonly number[], i: number): number {
  let rest = i;
  for (let k = 0; k < starts.length; k++) {
    const len = lens[k] as number;
    if (rest < len) return (starts[k] as number) + rest;
    rest -= len;
  }
  const last = starts.length - 1;
  return last < 0 ? 0 : (starts[last] as number) + (lens[last] as number);
}

/**
 * Validates the handshake header (msg_type, length) using the fragments collected so far plus the part
 * of the current record that has arrived. Returns an error, or null when fine or not yet decidable.
 */
function checkHandshakeHeader(
  buf: Uint8Array,
  starts: readonly number[],
  lens: readonly number[],
  collected: number,
  curStart: number,
  curAvailable: number,
): ParseError | null {
  if (collected >= 4) return null; // already checked when the header completed
  const have = collected + curAvailable;
  if (have >= 1 && collected === 0) {
    const msgType = buf[curStart] as number;
    // RFC 8446 §4: HandshakeType client_hello(1). A server's hello or anything else is not what a client sends first.
    if (msgType !== HANDSHAKE_TYPE_CLIENT_HELLO) {
      return new ParseError('invalid', curStart, 'handshake.msg_type', `expected client_hello (1), got ${msgType}`);
    }
  }
  if (have >= 4) {
    const length =
      headerByte(buf, starts, lens, collected, curStart, 1) * 65536 +
      headerByte(buf, starts, lens, collected, curStart, 2) * 256 +
      headerByte(buf, starts, lens, collected, curStart, 3);
    const at = collected > 1 ? bufOffsetOf(starts, lens, 1) : curStart + 1 - collected;
    if (length + 4 > MAX_CLIENT_HELLO_BYTES) {
      return new ParseError('invalid', at, 'handshake.length', `${length} exceeds the ${MAX_CLIENT_HELLO_BYTES}-byte cap`);
    }
    if (length < 38) {
      // legacy_version (2) + random (32) + three length prefixes (1 + 2 + 1) is the smallest possible body.
      return new ParseError('invalid', at, 'handshake.length', `${length} is too short for a ClientHello`);
    }
  }
  return null;
}

/** Byte `i` of the handshake header: from the collected fragments, or from the current record's bytes. */
function headerByte(
  buf: Uint8Array,
  starts: readonly number[],
  lens: readonly number[],
  collected: number,
  curStart: number,
  i: number,
): number {
  return i < collected ? handshakeByte(buf, starts, lens, i) : (buf[curStart + i - collected] as number);
}

function parseBody(buf: Uint8Array, starts: readonly number[], lens: readonly number[], helloLength: number): ClientHello {
  let body: Uint8Array;
  const first = starts[0] as number;
  if ((lens[0] as number) >= 4 + helloLength) {
    // The common case: the whole hello sits in one record; parse a view, copy nothing.
    body = buf.subarray(first + 4, first + 4 + helloLength);
  } else {
    body = new Uint8Array(helloLength);
    let w = 0;
    let skip = 4; // the handshake header
    for (let k = 0; k < starts.length && w < helloLength; k++) {
      const s = starts[k] as number;
      const len = lens[k] as number;
      const from = Math.min(skip, len);
      skip -= from;
      const take = Math.min(len - from, helloLength - w);
      body.set(buf.subarray(s + from, s + from + take), w);
      w += take;
    }
  }
  try {
    return parseClientHello(body);
  } catch (err) {
    if (isParseError(err)) {
      // Re-anchor the body-relative offset onto the caller's buffer.
      const at = bufOffsetOf(starts, lens, err.offset + 4);
      throw new ParseError('invalid', at, err.field, err.reason);
    }
    throw err;
  }
}

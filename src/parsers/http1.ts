/**
 * HTTP/1.x message heads — request line or status line plus header fields — parsed strictly from bytes, for
 * the plain-HTTP forwarding engine that replaces Node's http.Server + http-proxy-3.
 *
 * Why our own parser: Node's llhttp refuses extension methods (RFC 9110 §9.1: methods are an open set of
 * tokens), so SCCM's `CCM_POST` and BITS' `BITS_POST` could not pass the proxy. Everything else follows llhttp
 * 9.3 (Node 20) in strict mode (`insecureHTTPParser: false`), byte for byte: what llhttp refuses we refuse, at
 * the same byte, so a message that some server behind us would frame differently never gets through
 * (request smuggling, RFC 9112 §11.2). test/unit/parsers/http1.fuzz.test.ts checks this against Node's own
 * llhttp binding on 100,000+ generated messages; the llhttp grammar quoted in comments is src/llhttp/http.ts
 * and url.ts of nodejs/llhttp v9.3.1.
 *
 * Deliberate differences from llhttp, each asserted by name in the differential fuzz:
 *  - any RFC 9110 token is a method (llhttp: a fixed list; `PRI`, the HTTP/2 preface, stays refused);
 *  - versions other than HTTP/1.0 and HTTP/1.1 are refused (llhttp also takes HTTP/0.9, HTTP/2.0, RTSP/x.y
 *    and ICE/x.y, none of which this API can represent or an HTTP proxy should forward);
 *  - a Content-Length above 2^53 − 1 is refused (llhttp: up to 2^64 − 1; a JS number cannot hold it);
 *  - responses: a status below 100 is refused, and every 1xx has no content (RFC 9110 §15.2; llhttp reads
 *    a body after 1xx other than 100–103), 101 is not keep-alive (the connection switched protocols).
 *
 * The parsers are pure functions of their input: one synchronous pass over the bytes (byte-class table built
 * once, no regex per field), offsets recorded in a module-level scratch array that no call reads from an
 * earlier one, strings decoded once per head (one latin1 slice, then substrings). The engine calls them again
 * from the start whenever more bytes arrive. An incomplete or invalid head allocates nothing but the error.
 */
import type { IncomingHttpHeaders } from 'node:http';

export type Http1ErrorCode =
  | 'HEADERS_TOO_LARGE' // → 431
  | 'BAD_METHOD'
  | 'BAD_TARGET'
  | 'BAD_VERSION'
  | 'BAD_HEADER'
  | 'BAD_LINE_ENDING'
  | 'BAD_CONTENT_LENGTH'
  | 'BAD_TRANSFER_ENCODING'
  | 'AMBIGUOUS_FRAMING'
  | 'BAD_STATUS';

export interface Http1Error {
  readonly code: Http1ErrorCode;
  readonly message: string;
  /**
   * Suggested status for requests: 400, 431, 501 (TE not chunked), 505 (version). For responses every error
   * suggests 502 (RFC 9110 §15.6.3: the proxy got an invalid response from the inbound server).
   */
  readonly status: number;
}

export type BodyFraming =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' }
  | { readonly kind: 'close' }; // responses only: read until the connection closes

export interface RequestHead {
  /** As sent (case-sensitive token). */
  readonly method: string;
  /** The request-target as sent (absolute-form, authority-form, origin-form, '*'). */
  readonly target: string;
  readonly versionMinor: 0 | 1;
  /** [name, value, name, value, …]: names as sent, values with OWS trimmed (like Node's req.rawHeaders). */
  readonly rawHeaders: readonly string[];
  /** Lower-cased names, duplicates combined exactly as Node's IncomingMessage does (joinDuplicateHeaders off). */
  readonly headers: IncomingHttpHeaders;
  /** 'none' | 'length' | 'chunked' (RFC 9112 §6.3). */
  readonly framing: BodyFraming;
  /** RFC 9112 §9.3: HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`. */
  readonly keepAlive: boolean;
  /** `Expect: 100-continue` on an HTTP/1.1 request (RFC 9110 §10.1.1: ignored in HTTP/1.0). */
  readonly expectContinue: boolean;
  /** `Connection: upgrade` plus a non-empty `Upgrade` field (the engine answers 501). */
  readonly upgrade: boolean;
  /** Bytes of the head from `offset`, leading empty lines and the final empty line included. */
  readonly headBytes: number;
}

export type RequestHeadResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'head'; readonly head: RequestHead }
  | { readonly kind: 'invalid'; readonly error: Http1Error };

export interface ResponseHead {
  /** 100–999 (three digits, as llhttp allows; below 100 is refused). */
  readonly status: number;
  readonly reason: string;
  readonly versionMinor: 0 | 1;
  readonly rawHeaders: readonly string[];
  readonly headers: IncomingHttpHeaders;
  /** RFC 9112 §6.3 for the request method: HEAD / 1xx / 204 / 304 → none; TE chunked final → chunked; other TE → close; CL → length; else close. */
  readonly framing: BodyFraming;
  /** The upstream connection can carry another request after this response (false when framing is 'close'). */
  readonly keepAlive: boolean;
  readonly headBytes: number;
}

export type ResponseHeadResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'head'; readonly head: ResponseHead }
  | { readonly kind: 'invalid'; readonly error: Http1Error };

// ---------------------------------------------------------------------------------------------------------
// Character classes, one table built at load.

/** RFC 9110 §5.6.2 tchar (llhttp TOKEN). */
export const CC_TOKEN = 1;
/** llhttp URL_CHAR: VCHAR except '#' and '?' (path, query and fragment characters). */
export const CC_URL = 2;
/** llhttp USERINFO_CHARS plus '[' and ']': the characters of an authority (no '@', '/', '?'). */
export const CC_SERVER = 4;
/** RFC 9110 §5.5 field-vchar / SP / HTAB, obs-text included (llhttp HEADER_CHARS). */
export const CC_VALUE = 8;
/** ALPHA (a URL scheme, as llhttp reads it). */
export const CC_ALPHA = 16;
/** DIGIT. */
export const CC_DIGIT = 32;
/** HEXDIG, both cases (chunk-size). */
export const CC_HEX = 64;
/** RFC 9110 §5.6.4 qdtext (chunk extension quoted values). */
export const CC_QDTEXT = 128;

function buildCharClasses(): Uint8Array {
  const t = new Uint8Array(256);
  const add = (chars: string, flag: number): void => {
    for (let k = 0; k < chars.length; k++) t[chars.charCodeAt(k)]! |= flag;
  };
  const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  const digit = '0123456789';
  add(alpha, CC_ALPHA);
  add(digit, CC_DIGIT);
  add(digit + 'abcdefABCDEF', CC_HEX);
  // RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
  add(alpha + digit + "!#$%&'*+-.^_`|~", CC_TOKEN);
  // llhttp constants.ts USERINFO_CHARS = ALPHANUM MARK % ; : & = + $ , — with '[' ']' allowed by url.ts `server`
  add(alpha + digit + "-_.!~*'()%;:&=+$,[]", CC_SERVER);
  for (let c = 0x21; c <= 0x7e; c++) {
    // llhttp URL_CHAR: every VCHAR but '#' and '?', which delimit fragment and query
    if (c !== 0x23 && c !== 0x3f) t[c]! |= CC_URL;
    t[c]! |= CC_VALUE;
    // RFC 9110 §5.6.4: qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
    if (c !== 0x22 && c !== 0x5c) t[c]! |= CC_QDTEXT;
  }
  for (let c = 0x80; c <= 0xff; c++) t[c]! |= CC_VALUE | CC_QDTEXT; // obs-text
  t[0x20]! |= CC_VALUE | CC_QDTEXT;
  t[0x09]! |= CC_VALUE | CC_QDTEXT;
  return t;
}

/** Byte → CC_* flags. Shared with the chunked framer. */
export const CHAR_CLASS: Uint8Array = buildCharClasses();
const T = CHAR_CLASS;

const HTAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HASH = 0x23;
const STAR = 0x2a;
const COMMA = 0x2c;
const DOT = 0x2e;
const SLASH = 0x2f;
const COLON = 0x3a;
const QMARK = 0x3f;
const AT = 0x40;

/** `1.0` or `1.1`, as ECS `http.version` and JA4H spell it. */
export function httpVersionOf(head: { readonly versionMinor: 0 | 1 }): '1.0' | '1.1' {
  return head.versionMinor === 1 ? '1.1' : '1.0';
}

/** RFC 9110 §5.6.2 token check, exported for the engine. */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c > 0xff || (T[c]! & CC_TOKEN) === 0) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// Errors.

function err(code: Http1ErrorCode, message: string, status: number): Http1Error {
  return { code, message, status };
}

function describeByte(c: number): string {
  return c >= 0x21 && c <= 0x7e ? `'${String.fromCharCode(c)}'` : `0x${c.toString(16).padStart(2, '0')}`;
}

const INCOMPLETE = Object.freeze({ kind: 'incomplete' as const });

// Scan results below zero.
const NEED = -1;
const BAD = -2;

// The failure recorded by the scanners when they return BAD (module scratch: the parsers never re-enter).
let failCode: Http1ErrorCode = 'BAD_HEADER';
let failMessage = '';
let failStatus = 400;

function fail(code: Http1ErrorCode, message: string, status = 400): number {
  failCode = code;
  failMessage = message;
  failStatus = status;
  return BAD;
}

function invalidFromFail(statusOverride: number): { readonly kind: 'invalid'; readonly error: Http1Error } {
  return { kind: 'invalid', error: err(failCode, failMessage, statusOverride > 0 ? statusOverride : failStatus) };
}

/** Out of bytes: incomplete while the head may still fit, else too large (never wait beyond the limit). */
function needMore(available: number, maxHeaderBytes: number, forResponse: boolean): { readonly kind: 'incomplete' } | { readonly kind: 'invalid'; readonly error: Http1Error } {
  if (available < maxHeaderBytes) return INCOMPLETE;
  return {
    kind: 'invalid',
    error: err('HEADERS_TOO_LARGE', `the message head is larger than ${maxHeaderBytes} bytes`, forResponse ? 502 : 431),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Header fields (RFC 9112 §5), shared by requests, responses.

// Flags gathered while scanning the fields (llhttp's F_* flags).
const F_CONTENT_LENGTH = 1;
const F_TRANSFER_ENCODING = 2;
const F_CHUNKED = 4;
const F_CONN_CLOSE = 8;
const F_CONN_KEEP_ALIVE = 16;
const F_CONN_UPGRADE = 32;
const F_UPGRADE = 64;
const F_EXPECT = 128;
/** Some Transfer-Encoding value named the chunked coding (decides 400 versus 501). */
const F_TE_NAMED_CHUNKED = 256;
const F_HOST = 512;

// What a field name means to the framing: llhttp's SPECIAL_HEADERS, plus Expect.
const K_OTHER = 0;
const K_CONTENT_LENGTH = 1;
const K_TRANSFER_ENCODING = 2;
const K_CONNECTION = 3; // Connection and Proxy-Connection (llhttp treats both alike)
const K_UPGRADE = 4;
const K_EXPECT = 5;
const K_HOST = 6;

// How Node's IncomingMessage combines duplicates (lib/_http_incoming.js matchKnownFields / _addHeaderLine,
// joinDuplicateHeaders off): a list joined with ', ', the first value kept, cookie joined with '; ',
// set-cookie as an array.
const R_JOIN = 0;
const R_FIRST = 1;
const R_COOKIE = 2;
const R_SET_COOKIE = 3;

function asciiBytes(s: string): Uint8Array {
  return Uint8Array.from(s, (ch) => ch.charCodeAt(0));
}

/**
 * Field names recognised from their bytes, so the common ones cost no toLowerCase and key the headers
 * object with an interned string. Every name with a rule other than R_JOIN must be here (all of Node's
 * first-value fields, cookie, set-cookie), and every name with a kind; the rest are frequent request and
 * response fields. Names are lower-case letters and '-' only (see matchLower).
 */
const KNOWN_FIELDS: ReadonlyArray<readonly [name: string, kind: number, rule: number]> = [
  ['content-length', K_CONTENT_LENGTH, R_FIRST],
  ['transfer-encoding', K_TRANSFER_ENCODING, R_JOIN],
  ['connection', K_CONNECTION, R_JOIN],
  ['proxy-connection', K_CONNECTION, R_JOIN],
  ['upgrade', K_UPGRADE, R_JOIN],
  ['expect', K_EXPECT, R_JOIN],
  ['host', K_HOST, R_FIRST],
  ['cookie', K_OTHER, R_COOKIE],
  ['set-cookie', K_OTHER, R_SET_COOKIE],
  // matchKnownFields' first-value-wins fields
  ...(
    [
      'age', 'authorization', 'content-type', 'etag', 'expires', 'from', 'if-modified-since', 'if-unmodified-since',
      'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent',
    ] as const
  ).map((n) => [n, K_OTHER, R_FIRST] as const),
  // frequent list fields
  ...(
    [
      'accept', 'accept-encoding', 'accept-language', 'accept-ranges', 'cache-control', 'content-encoding', 'content-language',
      'content-disposition', 'content-range', 'date', 'dnt', 'forwarded', 'if-match', 'if-none-match', 'if-range', 'keep-alive',
      'link', 'origin', 'pragma', 'priority', 'range', 'te', 'trailer', 'vary', 'via', 'warning', 'www-authenticate',
      'proxy-authenticate', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-requested-with', 'sec-fetch-dest',
      'sec-fetch-mode', 'sec-fetch-site', 'sec-fetch-user', 'sec-ch-ua', 'sec-ch-ua-mobile', 'sec-ch-ua-platform',
      'upgrade-insecure-requests', 'strict-transport-security', 'access-control-allow-origin', 'content-security-policy',
      'x-content-type-options', 'x-frame-options', 'alt-svc',
    ] as const
  ).map((n) => [n, K_OTHER, R_JOIN] as const),
];
const KNOWN_NAME = KNOWN_FIELDS.map(([name]) => name);
const KNOWN_BYTES = KNOWN_FIELDS.map(([name]) => asciiBytes(name));
const KNOWN_KIND = Uint8Array.from(KNOWN_FIELDS, ([, kind]) => kind);
const KNOWN_RULE = Uint8Array.from(KNOWN_FIELDS, ([, , rule]) => rule);
/** Known field indices by name length. */
const KNOWN_BY_LENGTH: number[][] = [];
for (const [k, name] of KNOWN_NAME.entries()) (KNOWN_BY_LENGTH[name.length] ??= []).push(k);

const W_CHUNKED = asciiBytes('chunked');
const W_CLOSE = asciiBytes('close');
const W_KEEP_ALIVE = asciiBytes('keep-alive');
const W_UPGRADE = asciiBytes('upgrade');

/**
 * Case-insensitive compare of buf[at…] with a lower-case literal of letters and '-'. `c | 0x20` is exact
 * here: the bytes compared are token or field-value characters, among which only the upper-case letters
 * map onto the literal's letters, and '-' only onto itself.
 */
function matchLower(buf: Uint8Array, at: number, lit: Uint8Array): boolean {
  for (let k = 0; k < lit.length; k++) {
    if ((buf[at + k]! | 0x20) !== lit[k]) return false;
  }
  return true;
}

/** The KNOWN_FIELDS index of the name buf[start, end), or -1. */
function knownField(buf: Uint8Array, start: number, end: number): number {
  const candidates = KNOWN_BY_LENGTH[end - start];
  if (candidates === undefined) return -1;
  const first = buf[start]! | 0x20;
  for (let c = 0; c < candidates.length; c++) {
    const k = candidates[c]!;
    const lit = KNOWN_BYTES[k]!;
    if (lit[0] === first && matchLower(buf, start, lit)) return k;
  }
  return -1;
}

// scanTransferEncoding results (bits), besides BAD.
const TE_CHUNKED_LAST = 1;
const TE_NAMED_CHUNKED = 2;

/**
 * Is `chunked` the final transfer coding of this Transfer-Encoding value? llhttp's automaton
 * (header_value_te_chunked / _te_chunked_last / _te_token / _te_token_ows), run over the value bytes
 * [p, end) with leading OWS already skipped: "chunked" then spaces at the end of the value counts — a tab
 * does not (llhttp quirk) — and in a request "chunked" followed by a comma is refused at once
 * (RFC 9112 §6.1: chunked MUST be final). Returns BAD, or TE_CHUNKED_LAST when chunked is last, plus
 * TE_NAMED_CHUNKED when a coding was named chunked at all.
 */
function scanTransferEncoding(buf: Uint8Array, p: number, end: number, isRequest: boolean): number {
  let state = 0; // 0 te_chunked, 1 te_chunked_last, 2 te_token, 3 te_token_ows
  let named = false;
  while (p < end) {
    const c = buf[p]!;
    if (state === 0) {
      if (end - p >= 7 && matchLower(buf, p, W_CHUNKED)) {
        p += 7;
        state = 1;
        named = true;
      } else state = 2;
    } else if (state === 1) {
      if (c === SP) p++;
      else if (c === COMMA) {
        if (isRequest) return fail('BAD_TRANSFER_ENCODING', 'Transfer-Encoding: chunked must be the final coding (RFC 9112 §6.1)');
        state = 0;
      } else state = 2;
    } else if (state === 2) {
      p++;
      if (c === COMMA) state = 3;
    } else if (c === SP || c === HTAB) p++;
    else state = 0;
  }
  return (state === 1 ? TE_CHUNKED_LAST : 0) | (named ? TE_NAMED_CHUNKED : 0);
}

/**
 * The connection options of a Connection (or Proxy-Connection) value, as llhttp finds them
 * (header_value_connection / _connection_ws / _connection_token): comma-separated items, each counted
 * only when it is exactly close / keep-alive / upgrade (any case) followed by spaces — not a tab, a quirk
 * fixed after llhttp 9.3 — up to the next comma or the end.
 */
function scanConnection(buf: Uint8Array, p: number, end: number): number {
  let flags = 0;
  let pending = 0;
  let state = 0; // 0 header_value_connection, 1 _connection_ws, 2 _connection_token
  while (p < end) {
    const c = buf[p]!;
    if (state === 0) {
      if (c === SP || c === HTAB) {
        p++;
      } else if (end - p >= 5 && matchLower(buf, p, W_CLOSE)) {
        p += 5;
        pending = F_CONN_CLOSE;
        state = 1;
      } else if (end - p >= 7 && matchLower(buf, p, W_UPGRADE)) {
        p += 7;
        pending = F_CONN_UPGRADE;
        state = 1;
      } else if (end - p >= 10 && matchLower(buf, p, W_KEEP_ALIVE)) {
        p += 10;
        pending = F_CONN_KEEP_ALIVE;
        state = 1;
      } else state = 2;
    } else if (state === 1) {
      if (c === COMMA) {
        flags |= pending;
        pending = 0;
        p++;
        state = 0;
      } else if (c === SP) p++;
      else {
        pending = 0;
        state = 2;
      }
    } else {
      p++;
      if (c === COMMA) state = 0;
    }
  }
  return state === 1 ? flags | pending : flags;
}

// Scratch, written by scanFields for the caller: per field [nameStart, nameEnd, valueStart, valueEnd (OWS
// trimmed), known-field index or -1], grown on demand; the field count, flags and Content-Length.
let marks = new Int32Array(5 * 64);
let fieldCount = 0;
let scanFlags = 0;
let contentLength = 0;

/**
 * Scans header fields from `i` (the first byte after the start line's CRLF) to the empty line.
 * Returns the index just after the head's final LF, NEED, or BAD (failCode/failMessage set).
 *
 * RFC 9112 §5: field-line = field-name ":" OWS field-value OWS, CRLF only (§2.2: a bare LF or a CR not
 * followed by LF is refused, as llhttp strict does), no whitespace before the colon (§5.1), no obs-fold
 * (§5.2), field values of VCHAR / obs-text / SP / HTAB (RFC 9110 §5.5). Every error is raised at the byte
 * where llhttp raises it, so an incomplete head is "incomplete" exactly when llhttp is still waiting.
 */
function scanFields(buf: Uint8Array, i: number, limit: number, isRequest: boolean): number {
  const t = T; // a local alias: no module-context load (and hole check) per byte
  let flags = 0;
  let length = 0;
  let count = 0;
  let out = marks;
  for (;;) {
    if (i >= limit) return NEED;
    let c = buf[i]!;
    if (c === CR) {
      if (i + 1 >= limit) return NEED;
      if (buf[i + 1] !== LF) return fail('BAD_LINE_ENDING', `CR not followed by LF at the end of the head (offset ${i + 1})`);
      fieldCount = count;
      scanFlags = flags;
      contentLength = length;
      return i + 2;
    }
    if (c === LF) return fail('BAD_LINE_ENDING', `bare LF at offset ${i} (RFC 9112 §2.2: CRLF only)`);
    if (c === SP || c === HTAB) {
      return fail('BAD_HEADER', `whitespace at the start of a field line at offset ${i} (obs-fold, RFC 9112 §5.2)`);
    }
    const nameStart = i;
    while (i < limit && (t[buf[i]!]! & CC_TOKEN) !== 0) i++;
    if (i >= limit) return NEED;
    if (buf[i] !== COLON) {
      return fail('BAD_HEADER', `invalid character ${describeByte(buf[i]!)} in a field name at offset ${i} (RFC 9112 §5.1)`);
    }
    if (i === nameStart) return fail('BAD_HEADER', `empty field name at offset ${i}`);
    const nameEnd = i;
    i++;
    const known = knownField(buf, nameStart, nameEnd);
    const kind = known < 0 ? K_OTHER : KNOWN_KIND[known]!;
    // RFC 9112 §6.3 item 3: Content-Length with Transfer-Encoding "ought to be handled as an error" — llhttp
    // refuses it when the second of the two field names is complete (a non-empty TE, or any CL, before it).
    if (kind === K_CONTENT_LENGTH && (flags & F_TRANSFER_ENCODING) !== 0) {
      return fail('AMBIGUOUS_FRAMING', 'both Transfer-Encoding and Content-Length (RFC 9112 §6.3)');
    }
    if (kind === K_TRANSFER_ENCODING && (flags & F_CONTENT_LENGTH) !== 0) {
      return fail('AMBIGUOUS_FRAMING', 'both Content-Length and Transfer-Encoding (RFC 9112 §6.3)');
    }
    // RFC 9112 §3.2: a request with more than one Host field line gets 400 — a proxy that kept one of them
    // and an origin that read the other would judge and serve different hosts.
    if (kind === K_HOST && isRequest) {
      if ((flags & F_HOST) !== 0) return fail('BAD_HEADER', 'more than one Host field (RFC 9112 §3.2)');
      flags |= F_HOST;
    }
    while (i < limit && (buf[i] === SP || buf[i] === HTAB)) i++;
    if (i >= limit) return NEED;
    const valueStart = i;
    const empty = buf[i] === CR;
    if (!empty && kind !== K_OTHER) {
      if (kind === K_CONTENT_LENGTH) {
        // RFC 9110 §8.6: Content-Length = 1*DIGIT; llhttp also allows trailing spaces (not tabs) and refuses
        // a second Content-Length field even with the same value.
        if ((flags & F_CONTENT_LENGTH) !== 0) return fail('BAD_CONTENT_LENGTH', 'more than one Content-Length field');
        let n = 0;
        while (i < limit && (t[buf[i]!]! & CC_DIGIT) !== 0) {
          const d = buf[i]! - 0x30;
          if (n > (Number.MAX_SAFE_INTEGER - d) / 10) return fail('BAD_CONTENT_LENGTH', 'Content-Length is larger than 2^53 - 1');
          n = n * 10 + d;
          i++;
        }
        while (i < limit && buf[i] === SP) i++;
        if (i >= limit) return NEED;
        if (buf[i] !== CR && buf[i] !== LF) {
          return fail('BAD_CONTENT_LENGTH', `invalid character ${describeByte(buf[i]!)} in Content-Length at offset ${i}`);
        }
        if (i === valueStart) return fail('BAD_CONTENT_LENGTH', 'Content-Length has no digits');
        flags |= F_CONTENT_LENGTH;
        length = n;
      } else if (kind === K_TRANSFER_ENCODING) {
        if ((flags & F_CHUNKED) !== 0 && isRequest) {
          return fail('BAD_TRANSFER_ENCODING', 'a Transfer-Encoding field after chunked (RFC 9112 §6.1: chunked MUST be final)');
        }
        flags = (flags | F_TRANSFER_ENCODING) & ~F_CHUNKED;
      } else if (kind === K_UPGRADE) flags |= F_UPGRADE;
    }
    while (i < limit && (t[buf[i]!]! & CC_VALUE) !== 0) i++;
    // The Transfer-Encoding automaton can refuse before the end of the value: run it on what is there.
    let te = 0;
    if (kind === K_TRANSFER_ENCODING && !empty) {
      te = scanTransferEncoding(buf, valueStart, i, isRequest);
      if (te === BAD) return BAD;
    }
    if (i >= limit) return NEED;
    c = buf[i]!;
    if (c !== CR) {
      if (c === LF) return fail('BAD_LINE_ENDING', `bare LF at offset ${i} (RFC 9112 §2.2: CRLF only)`);
      return fail('BAD_HEADER', `invalid character ${describeByte(c)} in a field value at offset ${i} (RFC 9110 §5.5)`);
    }
    if (i + 1 >= limit) return NEED;
    if (buf[i + 1] !== LF) return fail('BAD_LINE_ENDING', `CR not followed by LF at offset ${i + 1}`);
    let valueEnd = i;
    i += 2;
    if (kind !== K_OTHER) {
      if (empty && kind === K_CONTENT_LENGTH) {
        // llhttp refuses an empty Content-Length when it sees the byte after the line (header_value_discard_lws).
        if (i >= limit) return NEED;
        return fail('BAD_CONTENT_LENGTH', 'empty Content-Length');
      }
      if ((te & TE_CHUNKED_LAST) !== 0) flags |= F_CHUNKED;
      if ((te & TE_NAMED_CHUNKED) !== 0) flags |= F_TE_NAMED_CHUNKED;
      if (kind === K_CONNECTION) flags |= scanConnection(buf, valueStart, valueEnd);
      else if (kind === K_EXPECT) flags |= F_EXPECT;
    }
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
    const m = count * 5;
    if (m + 5 > out.length) {
      const grown = new Int32Array(out.length * 2);
      grown.set(out);
      marks = out = grown;
    }
    out[m] = nameStart;
    out[m + 1] = nameEnd;
    out[m + 2] = valueStart;
    out[m + 3] = valueEnd;
    out[m + 4] = known;
    count++;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Headers object, the way Node builds IncomingMessage.headers (lib/_http_incoming.js, _addHeaderLine with
// matchKnownFields, joinDuplicateHeaders off).

type MutableHeaders = Record<string, string | string[] | undefined>;

function addHeader(dest: MutableHeaders, lower: string, rule: number, value: string): void {
  if (rule === R_JOIN) {
    // Node tests `typeof dest[field] === 'string'` on a plain object, so a field named __proto__ is lost
    // there (the assignment is a no-op); the same object shape gives the same result here.
    const prev = dest[lower];
    dest[lower] = typeof prev === 'string' ? `${prev}, ${value}` : value;
  } else if (rule === R_FIRST) {
    if (dest[lower] === undefined) dest[lower] = value;
  } else if (rule === R_COOKIE) {
    const prev = dest.cookie;
    dest.cookie = typeof prev === 'string' ? `${prev}; ${value}` : value;
  } else {
    const prev = dest['set-cookie'];
    if (Array.isArray(prev)) prev.push(value);
    else dest['set-cookie'] = [value];
  }
}

interface LatinSliceable {
  latin1Slice(start: number, end: number): string;
}
const hasLatin1Slice = typeof (Buffer.prototype as unknown as Partial<LatinSliceable>).latin1Slice === 'function';

function decodeLatin1(buf: Buffer, start: number, end: number): string {
  return hasLatin1Slice ? (buf as unknown as LatinSliceable).latin1Slice(start, end) : buf.toString('latin1', start, end);
}

/** rawHeaders and headers from the marks, substrings of `text`, which starts at byte `base`. */
function buildHeaders(text: string, base: number): { rawHeaders: string[]; headers: IncomingHttpHeaders } {
  const n = fieldCount;
  const m = marks;
  const rawHeaders = new Array<string>(n * 2);
  const headers: MutableHeaders = {};
  for (let k = 0, j = 0; k < n; k++, j += 5) {
    const name = text.slice(m[j]! - base, m[j + 1]! - base);
    const value = text.slice(m[j + 2]! - base, m[j + 3]! - base);
    rawHeaders[2 * k] = name;
    rawHeaders[2 * k + 1] = value;
    const known = m[j + 4]!;
    // Unknown names are never first-value, cookie or set-cookie fields (KNOWN_FIELDS has them all).
    if (known >= 0) addHeader(headers, KNOWN_NAME[known]!, KNOWN_RULE[known]!, value);
    else addHeader(headers, name.toLowerCase(), R_JOIN, value);
  }
  return { rawHeaders, headers: headers as IncomingHttpHeaders };
}

// ---------------------------------------------------------------------------------------------------------
// Request line (RFC 9112 §3).

/** Node's test for Expect (lib/_http_server.js continueExpression), applied to the combined Expect value. */
const CONTINUE_EXPECTATION = /(?:^|\W)100-continue(?:$|\W)/i;

/**
 * The request-target as llhttp's URL automaton reads it (src/llhttp/url.ts): origin-form and '*' start
 * with '/' or '*'; absolute-form is ALPHA+ "://" authority [path] — any other scheme form is refused;
 * CONNECT (authority-form) starts in the authority state. Fragments are accepted, as llhttp does.
 * Returns the index of the SP, CR or LF that ends the target, NEED or BAD.
 */
function scanTarget(buf: Uint8Array, i: number, limit: number, connect: boolean): number {
  const t = T;
  // llhttp url.ts states: 0 start, 1 schema, 2 schema_delim '/', 3 schema_delim second '/', 4 server,
  // 5 server_with_at, 6 path, 7 query, 8 fragment.
  let state = connect ? 4 : 0;
  while (i < limit) {
    const c = buf[i]!;
    const cls = t[c]!;
    switch (state) {
      case 0:
        if (c === SLASH || c === STAR) state = 6;
        else if ((cls & CC_ALPHA) !== 0) state = 1;
        else return fail('BAD_TARGET', `request-target starts with ${describeByte(c)} (RFC 9112 §3.2)`);
        break;
      case 1:
        if (c === COLON) state = 2;
        else if ((cls & CC_ALPHA) === 0) return fail('BAD_TARGET', `invalid character ${describeByte(c)} in the URI scheme at offset ${i}`);
        break;
      case 2:
      case 3:
        if (c !== SLASH) return fail('BAD_TARGET', `absolute-form target without "//" at offset ${i}`);
        state++;
        break;
      case 4:
      case 5:
        if ((cls & CC_SERVER) !== 0) state = 4;
        else if (c === AT) {
          if (state === 5) return fail('BAD_TARGET', `"@@" in the authority at offset ${i}`);
          state = 5;
        } else if (c === SLASH) state = 6;
        else if (c === QMARK) state = 7;
        else if (c === SP || c === CR || c === LF) return i;
        else return fail('BAD_TARGET', `invalid character ${describeByte(c)} in the authority at offset ${i}`);
        break;
      case 6:
        // The hot loop: most targets are a path.
        while (i < limit && (t[buf[i]!]! & CC_URL) !== 0) i++;
        if (i >= limit) return NEED;
        {
          const d = buf[i]!;
          if (d === QMARK) state = 7;
          else if (d === HASH) state = 8;
          else if (d === SP || d === CR || d === LF) return i;
          else return fail('BAD_TARGET', `invalid character ${describeByte(d)} in the request-target at offset ${i}`);
        }
        break;
      case 7:
        if ((cls & CC_URL) !== 0 || c === QMARK) break;
        if (c === HASH) state = 8;
        else if (c === SP || c === CR || c === LF) return i;
        else return fail('BAD_TARGET', `invalid character ${describeByte(c)} in the query at offset ${i}`);
        break;
      default:
        if ((cls & CC_URL) !== 0 || c === QMARK || c === HASH) break;
        if (c === SP || c === CR || c === LF) return i;
        return fail('BAD_TARGET', `invalid character ${describeByte(c)} in the fragment at offset ${i}`);
    }
    i++;
  }
  return NEED;
}

/** The minor version found by the last scanVersion. */
let scannedMinor: 0 | 1 = 1;
const HTTP_SLASH = asciiBytes('HTTP/');

/**
 * "HTTP/" DIGIT "." DIGIT at buf[i…] (RFC 9112 §2.3). Returns the index after the minor digit with the
 * version in `scannedMinor`, NEED or BAD. Only 1.0 and 1.1 pass; a well-formed other version is refused with
 * `unsupportedStatus` (llhttp accepts 0.9 and 2.0 as well, refuses the rest), anything else with
 * `malformedStatus`. RTSP/ and ICE/, which llhttp also takes, are not HTTP (refused at their first byte).
 */
function scanVersion(buf: Uint8Array, i: number, limit: number, malformedStatus: number, unsupportedStatus: number): number {
  for (let k = 0; k < 5; k++, i++) {
    if (i >= limit) return NEED;
    if (buf[i] !== HTTP_SLASH[k]) return fail('BAD_VERSION', `expected "HTTP/" at offset ${i}`, malformedStatus);
  }
  if (i >= limit) return NEED;
  const major = buf[i]! - 0x30;
  if (major < 0 || major > 9) return fail('BAD_VERSION', `invalid major version at offset ${i}`, malformedStatus);
  i++;
  if (i >= limit) return NEED;
  if (buf[i] !== DOT) return fail('BAD_VERSION', `expected "." in the version at offset ${i}`, malformedStatus);
  i++;
  if (i >= limit) return NEED;
  const minor = buf[i]! - 0x30;
  if (minor < 0 || minor > 9) return fail('BAD_VERSION', `invalid minor version at offset ${i}`, malformedStatus);
  if (major !== 1 || minor > 1) return fail('BAD_VERSION', `HTTP/${major}.${minor} is not supported`, unsupportedStatus);
  scannedMinor = minor === 0 ? 0 : 1;
  return i + 1;
}
/** RFC 9113 §3.4: the rest of the HTTP/2 connection preface after "PRI * HTTP/2.0". */
const H2_PREFACE_TAIL = asciiBytes('\r\n\r\nSM\r\n\r\n');

/** Is buf[start, end) exactly `word` (case-sensitive; methods are case-sensitive, RFC 9110 §9.1)? */
function isWord(buf: Uint8Array, start: number, end: number, word: Uint8Array): boolean {
  if (end - start !== word.length) return false;
  for (let k = 0; k < word.length; k++) if (buf[start + k] !== word[k]) return false;
  return true;
}
const M_CONNECT = asciiBytes('CONNECT');
const M_PRI = asciiBytes('PRI');

const FRAMING_NONE: BodyFraming = Object.freeze({ kind: 'none' });
const FRAMING_CHUNKED: BodyFraming = Object.freeze({ kind: 'chunked' });
const FRAMING_CLOSE: BodyFraming = Object.freeze({ kind: 'close' });
const FRAMING_LENGTH_ZERO: BodyFraming = Object.freeze({ kind: 'length', length: 0 });

function lengthFraming(n: number): BodyFraming {
  return n === 0 ? FRAMING_LENGTH_ZERO : { kind: 'length', length: n };
}

/** Parse the head at buf[offset…]. Leading empty lines (CRLF) before a request line are skipped as llhttp does (count them in headBytes). */
export function parseRequestHead(buf: Buffer, offset: number, maxHeaderBytes: number): RequestHeadResult {
  const available = buf.length - offset;
  const limit = offset + Math.min(available, maxHeaderBytes);
  let i = offset;
  // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line; llhttp skips any
  // run of CR and LF bytes.
  while (i < limit && (buf[i] === CR || buf[i] === LF)) i++;
  if (i >= limit) return needMore(available, maxHeaderBytes, false);

  // method = token (RFC 9110 §9.1), then exactly one SP — llhttp then skips further spaces.
  const methodStart = i;
  while (i < limit && (T[buf[i]!]! & CC_TOKEN) !== 0) i++;
  if (i >= limit) return needMore(available, maxHeaderBytes, false);
  if (i === methodStart) return { kind: 'invalid', error: err('BAD_METHOD', `the request line does not start with a method token (${describeByte(buf[i]!)})`, 400) };
  if (buf[i] !== SP) return { kind: 'invalid', error: err('BAD_METHOD', `invalid character ${describeByte(buf[i]!)} after the method at offset ${i}`, 400) };
  const methodEnd = i;
  const connect = isWord(buf, methodStart, methodEnd, M_CONNECT);
  const pri = !connect && isWord(buf, methodStart, methodEnd, M_PRI);
  i++;
  while (i < limit && buf[i] === SP) i++;
  if (i >= limit) return needMore(available, maxHeaderBytes, false);

  const targetStart = i;
  i = scanTarget(buf, i, limit, connect);
  if (i === NEED) return needMore(available, maxHeaderBytes, false);
  if (i === BAD) return invalidFromFail(0);
  const targetEnd = i;
  if (buf[i] !== SP) {
    // llhttp reads `GET /` CRLF as an HTTP/0.9 request (RFC 9112 Appendix C.1): not supported here.
    return { kind: 'invalid', error: err('BAD_VERSION', 'the request line has no HTTP version (HTTP/0.9 is not supported)', 400) };
  }
  i++;
  while (i < limit && buf[i] === SP) i++;
  i = scanVersion(buf, i, limit, 400, 505);
  if (i === NEED) return needMore(available, maxHeaderBytes, false);
  if (i === BAD) return invalidFromFail(0);
  const versionMinor = scannedMinor;
  if (pri) {
    // llhttp knows PRI only as the HTTP/2 preface and refuses it (HPE_PAUSED_H2_UPGRADE or a bad preface),
    // at the end of the preface or at its first wrong byte.
    for (let k = 0; k < H2_PREFACE_TAIL.length; k++, i++) {
      if (i >= limit) return needMore(available, maxHeaderBytes, false);
      if (buf[i] !== H2_PREFACE_TAIL[k]) break;
    }
    return { kind: 'invalid', error: err('BAD_METHOD', 'PRI is the HTTP/2 connection preface (RFC 9113 §3.4), not an HTTP/1.1 method', 400) };
  }
  if (i >= limit) return needMore(available, maxHeaderBytes, false);
  if (buf[i] !== CR) {
    if (buf[i] === LF) return { kind: 'invalid', error: err('BAD_LINE_ENDING', 'bare LF after the request line (RFC 9112 §2.2)', 400) };
    return { kind: 'invalid', error: err('BAD_VERSION', `unexpected ${describeByte(buf[i]!)} after the HTTP version at offset ${i}`, 400) };
  }
  i++;
  if (i >= limit) return needMore(available, maxHeaderBytes, false);
  if (buf[i] !== LF) return { kind: 'invalid', error: err('BAD_LINE_ENDING', `CR not followed by LF after the request line at offset ${i}`, 400) };
  i++;

  const end = scanFields(buf, i, limit, true);
  if (end === NEED) return needMore(available, maxHeaderBytes, false);
  if (end === BAD) return invalidFromFail(0);
  const flags = scanFlags;

  // Framing, llhttp's llhttp__after_headers_complete for requests (RFC 9112 §6.3):
  //  - CONNECT, and an upgrade request with no body, end at the head (the rest is another protocol);
  //  - chunked last → chunked; a Transfer-Encoding without chunked last → 400 (§6.3 item 4; 501 when no
  //    coding named chunked at all, §6.1: a coding the proxy does not understand);
  //  - Content-Length → length; else no body.
  if (versionMinor === 0 && (flags & F_TRANSFER_ENCODING) !== 0) {
    // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding MUST be treated as having faulty framing (an
    // HTTP/1.0 hop would read the body by Content-Length or to the close — a smuggling gap).
    return { kind: 'invalid', error: err('BAD_TRANSFER_ENCODING', 'Transfer-Encoding in an HTTP/1.0 request: faulty framing (RFC 9112 §6.1)', 400) };
  }
  const upgrade = (flags & (F_UPGRADE | F_CONN_UPGRADE)) === (F_UPGRADE | F_CONN_UPGRADE);
  let framing: BodyFraming;
  if (connect || (upgrade && (flags & F_CHUNKED) === 0 && contentLength === 0)) framing = FRAMING_NONE;
  else if ((flags & F_CHUNKED) !== 0) framing = FRAMING_CHUNKED;
  else if ((flags & F_TRANSFER_ENCODING) !== 0) {
    const named = (flags & F_TE_NAMED_CHUNKED) !== 0;
    return {
      kind: 'invalid',
      error: err(
        'BAD_TRANSFER_ENCODING',
        named ? 'Transfer-Encoding without chunked as the final coding (RFC 9112 §6.3)' : 'Transfer-Encoding has no chunked coding (RFC 9112 §6.1)',
        named ? 400 : 501,
      ),
    };
  } else if ((flags & F_CONTENT_LENGTH) !== 0) framing = lengthFraming(contentLength);
  else framing = FRAMING_NONE;

  const text = decodeLatin1(buf, methodStart, end);
  const { rawHeaders, headers } = buildHeaders(text, methodStart);
  const expect = (flags & F_EXPECT) !== 0 ? headers.expect : undefined;
  const head: RequestHead = {
    method: text.slice(0, methodEnd - methodStart),
    target: text.slice(targetStart - methodStart, targetEnd - methodStart),
    versionMinor,
    rawHeaders,
    headers,
    framing,
    // RFC 9112 §9.3 as llhttp_should_keep_alive computes it (any close option wins in 1.1, any keep-alive
    // option wins in 1.0).
    keepAlive: versionMinor === 1 ? (flags & F_CONN_CLOSE) === 0 : (flags & F_CONN_KEEP_ALIVE) !== 0,
    expectContinue: versionMinor === 1 && typeof expect === 'string' && CONTINUE_EXPECTATION.test(expect),
    upgrade,
    headBytes: end - offset,
  };
  return { kind: 'head', head };
}

// ---------------------------------------------------------------------------------------------------------
// Status line (RFC 9112 §4).

export function parseResponseHead(buf: Buffer, offset: number, maxHeaderBytes: number, requestMethod: string): ResponseHeadResult {
  const available = buf.length - offset;
  const limit = offset + Math.min(available, maxHeaderBytes);
  let i = offset;
  while (i < limit && (buf[i] === CR || buf[i] === LF)) i++;
  if (i >= limit) return needMore(available, maxHeaderBytes, true);
  const lineStart = i;
  i = scanVersion(buf, i, limit, 502, 502);
  if (i === NEED) return needMore(available, maxHeaderBytes, true);
  if (i === BAD) return invalidFromFail(502);
  const versionMinor = scannedMinor;
  if (i >= limit) return needMore(available, maxHeaderBytes, true);
  if (buf[i] !== SP) return { kind: 'invalid', error: err('BAD_VERSION', `expected SP after the HTTP version at offset ${i}`, 502) };
  i++;
  // status-code = 3DIGIT
  let status = 0;
  for (let k = 0; k < 3; k++, i++) {
    if (i >= limit) return needMore(available, maxHeaderBytes, true);
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return { kind: 'invalid', error: err('BAD_STATUS', `invalid status code digit ${describeByte(buf[i]!)} at offset ${i}`, 502) };
    status = status * 10 + d;
  }
  if (status < 100) return { kind: 'invalid', error: err('BAD_STATUS', `status code ${String(status).padStart(3, '0')} is below 100 (RFC 9110 §15)`, 502) };
  if (i >= limit) return needMore(available, maxHeaderBytes, true);
  let reasonStart = i;
  let reasonEnd = i;
  if (buf[i] === SP) {
    // reason-phrase: llhttp takes any byte up to CR (control characters included) — matched.
    i++;
    reasonStart = i;
    while (i < limit && buf[i] !== CR && buf[i] !== LF) i++;
    if (i >= limit) return needMore(available, maxHeaderBytes, true);
    if (buf[i] === LF) return { kind: 'invalid', error: err('BAD_LINE_ENDING', 'bare LF after the status line (RFC 9112 §2.2)', 502) };
    reasonEnd = i;
  } else if (buf[i] !== CR) {
    return { kind: 'invalid', error: err('BAD_STATUS', `unexpected ${describeByte(buf[i]!)} after the status code at offset ${i}`, 502) };
  }
  i++;
  if (i >= limit) return needMore(available, maxHeaderBytes, true);
  // llhttp 9.3 res_line_almost_done takes CR or LF after the CR (CR CR is fixed in llhttp 9.4): matched.
  if (buf[i] !== LF && buf[i] !== CR) return { kind: 'invalid', error: err('BAD_LINE_ENDING', `CR not followed by LF after the status line at offset ${i}`, 502) };
  i++;

  const end = scanFields(buf, i, limit, false);
  if (end === NEED) return needMore(available, maxHeaderBytes, true);
  if (end === BAD) return invalidFromFail(502);
  const flags = scanFlags;

  // RFC 9112 §6.3: responses to HEAD, 1xx, 204 and 304 have no content (item 1); a 2xx to CONNECT turns the
  // connection into a tunnel (item 2); chunked last → chunked (item 4); another Transfer-Encoding → read
  // until close (item 4); Content-Length → length (item 6); else until close (item 8).
  let framing: BodyFraming;
  let tunnel = false;
  const faulty = versionMinor === 0 && (flags & F_TRANSFER_ENCODING) !== 0;
  if (requestMethod === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304) framing = FRAMING_NONE;
  else if (requestMethod === 'CONNECT' && status >= 200 && status < 300) {
    framing = FRAMING_NONE;
    tunnel = true;
  } else if (faulty) {
    // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing: neither chunked nor Content-Length is
    // trusted; the body runs to the close and the connection is not reused.
    framing = FRAMING_CLOSE;
  } else if ((flags & F_CHUNKED) !== 0) framing = FRAMING_CHUNKED;
  else if ((flags & F_TRANSFER_ENCODING) !== 0) framing = FRAMING_CLOSE;
  else if ((flags & F_CONTENT_LENGTH) !== 0) framing = lengthFraming(contentLength);
  else framing = FRAMING_CLOSE;

  const text = decodeLatin1(buf, lineStart, end);
  const { rawHeaders, headers } = buildHeaders(text, lineStart);
  const persistent = versionMinor === 1 ? (flags & F_CONN_CLOSE) === 0 : (flags & F_CONN_KEEP_ALIVE) !== 0;
  const head: ResponseHead = {
    status,
    reason: text.slice(reasonStart - lineStart, reasonEnd - lineStart),
    versionMinor,
    rawHeaders,
    headers,
    framing,
    keepAlive: persistent && framing !== FRAMING_CLOSE && status !== 101 && !tunnel && !faulty,
    headBytes: end - offset,
  };
  return { kind: 'head', head };
}

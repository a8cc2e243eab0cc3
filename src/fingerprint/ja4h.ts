/**
 * JA4H (HTTP client fingerprint) of one plain HTTP request as the proxy receives it, from FoxIO's
 * specification: technical_details/JA4H.md and JA4H.png in FoxIO-LLC/ja4 (commit 0e54bc8). Where the short
 * spec is silent we follow FoxIO's reference code (python/ja4h.py, rust/ja4/src/http.rs and the Wireshark
 * plugin wireshark/source/packet-ja4.c), choosing what two of the three agree on, and say so at the line.
 *
 * LICENCE: JA4H is part of JA4+, "licenced under the FoxIO License 1.1" and "Patent Pending" (FoxIO's
 * headers). That licence allows non-commercial use only; commercial use needs an OEM licence from FoxIO.
 * This file is our own code written from the spec, but the method is theirs. See
 * test/fixtures/vectors/ja4-foxio/README.md ("License") before shipping a product that computes it.
 *
 *   JA4H = a_b_c_d                                   e.g. ge11cr04da00_8ddaef5d77af_280f366eaa04_c2fb0fe53442
 *   a = method(2) version(2) cookie(c|n) referer(r|n) header count(2) Accept-Language(4)
 *   b = sha256 of the header names in wire order (Cookie, Referer, HTTP/2 pseudo-headers left out), 12 hex
 *   c = sha256 of the cookie names, sorted, 12 hex              (000000000000 without cookies)
 *   d = sha256 of the cookie name=value pairs, sorted, 12 hex   (000000000000 without cookies)
 *
 * Raw forms, as FoxIO's Rust and Wireshark code render them (always four '_'-separated parts):
 *   ja4h_r  = a_<header names, wire order, ','>_<cookie names sorted, ','>_<name=value sorted, ','>
 *   ja4h_ro = a_<header names, wire order, ','>_<cookie names wire order>_<name=value wire order>
 * (FoxIO's Python prints a_<headers>_ with no cookie parts when there are no cookies; the hashed JA4H is
 * the same in all three.) Header names keep their wire case in both forms and in the hash of part b.
 *
 * PRIVACY: ja4h_r and ja4h_ro contain the Cookie values verbatim, i.e. session tokens. Do not put them in
 * flow records or logs by default; the hashed `ja4h` is safe to log.
 *
 * Seen from a forward proxy, the request carries the headers the client sends *to the proxy*
 * (Proxy-Connection, Proxy-Authorization, an absolute URI), so a client's JA4H here can differ from the JA4H
 * a server-side sensor sees for the same client. Compare JA4H values taken at the same vantage point.
 */
import * as crypto from 'node:crypto';

export interface Ja4hParts {
  /** The fingerprint, a_b_c_d, hashed. */
  readonly ja4h: string;
  /** Raw, cookies sorted (FoxIO "JA4H_r"). Contains cookie values: do not log by default. */
  readonly ja4h_r: string;
  /**
   * Raw, cookies in wire order (FoxIO "JA4H_ro"). Always set; it equals ja4h_r when the request has fewer
   * than two cookies. Contains cookie values: do not log by default.
   */
  readonly ja4h_ro: string;
}

/** JA4H.png: parts c and d are "000000000000" when there is no cookie (all three FoxIO tools agree). */
const EMPTY_HASH = '000000000000';

/** Code unit → the character we print for it in parts of JA4H_a taken from the request; '0' if unsafe. */
function buildCharTable(keep: string): readonly string[] {
  const table: string[] = Array.from({ length: 128 }, () => '0');
  for (let c = 0x30; c <= 0x39; c++) table[c] = String.fromCharCode(c);
  for (let c = 0x61; c <= 0x7a; c++) table[c] = String.fromCharCode(c);
  for (let c = 0x41; c <= 0x5a; c++) table[c] = String.fromCharCode(c + 0x20); // ASCII lower-case only
  for (const ch of keep) table[ch.charCodeAt(0)] = ch;
  return table;
}

/**
 * Method characters: letters lower-cased, digits and '-' kept ("M-SEARCH" → "m-", as Python's
 * `method.lower()[:2]`). Anything else, '_' above all, would break the a_b_c_d shape or the fixed width, so
 * it becomes '0'; Node's HTTP/1 parser accepts only registered methods, which never contain one.
 */
const METHOD_CHARS = buildCharTable('-');
/**
 * Accept-Language characters: letters lower-cased, digits and '*' kept (the characters of an RFC 4647
 * language range once '-' is dropped). Anything else cannot appear in a valid value and becomes '0'.
 */
const LANGUAGE_CHARS = buildCharTable('*');

/** HTTP version as the request line or Node's `httpVersion` spells it: "1.1", "HTTP/1.1", "2.0", "2", "3". */
const VERSION_RE = /^(?:HTTP\/)?(\d)(?:\.(\d))?$/i;
/** A string that is not plain Latin-1 (Node decodes header bytes as Latin-1, so this is rare). */
const NON_LATIN1_RE = /[\u0100-\uffff]/;

/**
 * JA4H.png: "HTTP Method, GET = “ge”, PUT = “pu”, POST = “po”, etc" — the first two letters, lower-cased
 * (python/ja4h.py `http_method`: `method.lower()[:2]`). A method shorter than two characters is padded with
 * '0' so JA4H_a keeps its width. (Wireshark's plugin uses a table with a few irregular codes, e.g. CHECKIN =
 * "cn", and "00" for unknown methods; we follow the spec and Python.)
 */
export function methodCode(method: string): string {
  const c0 = method.length > 0 ? method.charCodeAt(0) : 0x30;
  const c1 = method.length > 1 ? method.charCodeAt(1) : 0x30;
  return (METHOD_CHARS[c0] ?? '0') + (METHOD_CHARS[c1] ?? '0');
}

/**
 * JA4H.png: "HTTP Version, 2.0 = “20”, 1.1 = “11”" — major and minor digit; a bare major gets minor 0
 * ("HTTP/2" → "20", "3" → "30", as Wireshark's decode_http_version). Anything else is "00", the value
 * JA4 uses for an unknown version.
 */
export function versionCode(httpVersion: string): string {
  switch (httpVersion) {
    case '1.1':
      return '11';
    case '1.0':
      return '10';
    case '2.0':
      return '20';
    default: {
      const m = VERSION_RE.exec(httpVersion);
      return m === null ? '00' : `${m[1] ?? '0'}${m[2] ?? '0'}`;
    }
  }
}

/**
 * JA4H.png: "First 4 characters of primary Accept-Language (0000 if no Accept-Language)". The primary
 * language is the first entry of the list, without its ";q=" weight; '-' is removed, letters are
 * lower-cased and the result is cut to 4 characters or padded with '0' (python/ja4h.py `http_language`:
 * `lang.replace('-','').replace(';',',').lower().split(',')[0][:4]` + "0" padding; Rust and Wireshark the
 * same for valid values). "en-US,en;q=0.9" → "enus", "da, en-GB;q=0.8" → "da00", "es-419" → "es41".
 * Whitespace is skipped (Rust trims, Wireshark skips it; the value tshark hands Python is already trimmed).
 */
export function languageCode(acceptLanguage: string | undefined): string {
  if (acceptLanguage === undefined) return '0000';
  let out = '';
  for (let i = 0; i < acceptLanguage.length && out.length < 4; i++) {
    const c = acceptLanguage.charCodeAt(i);
    if (c === 0x2c || c === 0x3b) break; // ',' ends the first entry; ';' starts its weight
    if (c === 0x2d || c === 0x20 || c === 0x09) continue; // '-' removed; OWS skipped
    out += c < 128 ? (LANGUAGE_CHARS[c] as string) : '0';
  }
  return out.length === 4 ? out : out + '0000'.slice(out.length);
}

/** JA4H.md: "2 digit number of headers … If there are more than 99, the output is 99." */
function count2(n: number): string {
  return n > 99 ? '99' : n < 10 ? `0${n}` : String(n);
}

/**
 * SHA-256, first 12 hex characters, of the bytes FoxIO's tools hash. Node decodes HTTP header bytes as
 * Latin-1, so encoding back as Latin-1 hashes exactly the bytes on the wire, which is what FoxIO's tools hash
 * for valid UTF-8; a string with characters above U+00FF (possible only from a non-wire caller) is hashed
 * as UTF-8, like Python's `.encode('utf8')`.
 */
function sha256Prefix12(s: string): string {
  const encoding = NON_LATIN1_RE.test(s) ? 'utf8' : 'latin1';
  return crypto.createHash('sha256').update(s, encoding).digest('hex').slice(0, 12);
}

/**
 * Part b memoised: clients of one kind send the same header list on every request, so most requests skip the
 * SHA-256. A pure function's memo cannot go stale, so it needs no TTL; it is bounded by emptying it when full.
 */
const HEADER_HASHES = new Map<string, string>();
const HEADER_HASHES_MAX = 4096;

function headerNamesHash(headerNames: string): string {
  let hash = HEADER_HASHES.get(headerNames);
  if (hash === undefined) {
    hash = sha256Prefix12(headerNames);
    if (HEADER_HASHES.size >= HEADER_HASHES_MAX) HEADER_HASHES.clear();
    HEADER_HASHES.set(headerNames, hash);
  }
  return hash;
}

/** ASCII case-insensitive equality with a lower-case literal, without allocating a lower-cased copy. */
function equalsLowerAscii(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * Order by Unicode code point, which is the byte order of UTF-8 and of Latin-1: what Python's `sorted`,
 * Rust's `sort_unstable` and Wireshark's strcmp use. JS `<` compares UTF-16 code units, which differs only
 * when a surrogate (part of a code point ≥ U+10000) meets a unit ≥ U+E000.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** Cookie pairs in wire order, filled by `addCookiePairs`. */
interface CookieList {
  readonly names: string[];
  /** The pair as sent, trimmed: "name=value", or just "name" for a cookie without '='. */
  readonly pairs: string[];
}

/**
 * Splits one Cookie field value into its pairs (RFC 6265 §4.2.1: cookie-pair *( ";" SP cookie-pair )), OWS
 * trimmed, empty pieces dropped. Python takes the name as the text before the first '=' and the pair as the
 * whole trimmed piece; Rust rebuilds the same "name=value" (and "name" for a piece without '='). Every
 * Cookie field counts: HTTP/2 clients send one field per cookie (RFC 9113 §8.2.3), and FoxIO's tools take
 * the pairs of all of them (tshark's http.cookie_pair / http2.headers.cookie).
 */
function addCookiePairs(value: string, into: CookieList): void {
  let start = 0;
  while (start <= value.length) {
    let end = value.indexOf(';', start);
    if (end < 0) end = value.length;
    let s = start;
    let e = end;
    while (s < e && isOws(value.charCodeAt(s))) s++;
    while (e > s && isOws(value.charCodeAt(e - 1))) e--;
    if (e > s) {
      const pair = value.slice(s, e);
      const eq = pair.indexOf('=');
      let name = eq < 0 ? pair : pair.slice(0, eq);
      if (eq >= 0 && name.length > 0 && isOws(name.charCodeAt(name.length - 1))) name = name.trimEnd();
      into.names.push(name);
      into.pairs.push(pair);
    }
    start = end + 1;
  }
}

/**
 * Indices of the cookies sorted by name, then by the whole pair. JA4H.png: "Cookie Fields, sorted" and
 * "Cookie Fields + Values, sorted". Sorting by name is what all three FoxIO tools do; the tie-break for a
 * name sent twice is Rust's (it sorts (name, value) tuples). Python keeps wire order among equal names,
 * which would make part d depend on order — the thing sorting is there to remove.
 */
function sortedCookieOrder(cookies: CookieList): number[] {
  const order = cookies.names.map((_, i) => i);
  if (order.length < 2) return order;
  return order.sort((i, j) => {
    const byName = compareCodePoints(cookies.names[i] as string, cookies.names[j] as string);
    return byName !== 0 ? byName : compareCodePoints(cookies.pairs[i] as string, cookies.pairs[j] as string);
  });
}

function joinAt(values: readonly string[], order: readonly number[]): string {
  let out = '';
  for (let k = 0; k < order.length; k++) out = k === 0 ? (values[order[k] as number] as string) : `${out},${values[order[k] as number] as string}`;
  return out;
}

/**
 * JA4H of one request. `method` and `httpVersion` are Node's `req.method` and `req.httpVersion` ("1.1",
 * "2.0"); `rawHeaders` is Node's `req.rawHeaders`: [name, value, name, value, …] in wire order and case.
 * Total: never throws on any array of strings (an odd trailing name gets an empty value).
 */
export function computeJa4h(method: string, httpVersion: string, rawHeaders: readonly string[]): Ja4hParts {
  let headerNames = '';
  let headerCount = 0;
  let hasCookie = false;
  let hasReferer = false;
  let acceptLanguage: string | undefined;
  const cookies: CookieList = { names: [], pairs: [] };

  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const value = rawHeaders[i + 1] ?? '';
    // Python drops empty names and HTTP/2 pseudo-headers (`not h.startswith(':')`); so does Wireshark (its
    // http2-with-cookies.pcapng output counts 19 headers where Rust, which keeps :method etc., counts 23).
    if (name.length === 0 || name.charCodeAt(0) === 0x3a) continue;
    // JA4H.md: "2 digit number of headers, not counting Cookie and Referer." Field names are
    // case-insensitive (RFC 9110 §5.1), as Rust compares them.
    if (equalsLowerAscii(name, 'cookie')) {
      // JA4H.png: "Cookie, if there’s a Cookie “c”, if no Cookie “n”".
      hasCookie = true;
      addCookiePairs(value, cookies);
      continue;
    }
    if (equalsLowerAscii(name, 'referer')) {
      // JA4H.png: "Referer, if there’s a Referer “r” if no Referer “n”".
      hasReferer = true;
      continue;
    }
    // JA4H.png: "Truncated SHA256 hash of Headers, in the order they appear" — names only, as sent (all
    // three tools hash "Host,User-Agent,…" for HTTP/1 and the lower-case names for HTTP/2).
    headerNames = headerCount === 0 ? name : `${headerNames},${name}`;
    headerCount++;
    // The first Accept-Language field is the one tshark reports as http.accept_language.
    if (acceptLanguage === undefined && equalsLowerAscii(name, 'accept-language')) acceptLanguage = value;
  }

  const a =
    methodCode(method) +
    versionCode(httpVersion) +
    (hasCookie ? 'c' : 'n') +
    (hasReferer ? 'r' : 'n') +
    count2(headerCount) +
    languageCode(acceptLanguage);

  // Part b of a request with no headers at all hashes the empty string (e3b0c44298fc), as Python and
  // Wireshark do; Rust prints 000000000000 there. Such requests (HTTP/1.0 with no fields) are rare.
  const b = headerNamesHash(headerNames);

  const n = cookies.names.length;
  if (n === 0) {
    // No Cookie field, or one with nothing in it: Rust's hash12("") and Python's "0"*12 both give zeros.
    const raw = `${a}_${headerNames}__`;
    return { ja4h: `${a}_${b}_${EMPTY_HASH}_${EMPTY_HASH}`, ja4h_r: raw, ja4h_ro: raw };
  }

  const sorted = sortedCookieOrder(cookies);
  const sortedNames = joinAt(cookies.names, sorted);
  const sortedPairs = joinAt(cookies.pairs, sorted);
  const ja4h = `${a}_${b}_${sha256Prefix12(sortedNames)}_${sha256Prefix12(sortedPairs)}`;
  const ja4h_r = `${a}_${headerNames}_${sortedNames}_${sortedPairs}`;
  const ja4h_ro = n === 1 ? ja4h_r : `${a}_${headerNames}_${cookies.names.join(',')}_${cookies.pairs.join(',')}`;
  return { ja4h, ja4h_r, ja4h_ro };
}

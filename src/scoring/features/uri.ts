/**
 * URI features: what the path and query of a plain HTTP request say about the software that sent it. C2
 * implants carry session ids, tasking and output in the URI — long random tokens, base64 or hex — where
 * browsers and updaters send words, numbers and a few well-known hashed names. This module measures the
 * parts (segment count and lengths, the entropy of the most random-looking part, the encoding seen) and
 * judges whether a random-looking part is a known benign shape before calling it random.
 *
 * The benign shapes are what a SOC analyst would wave through in a proxy log: bundler chunk and asset
 * content hashes, OAuth/OIDC and SAML parameters, OCSP GETs, Google Analytics beacons, signed-URL
 * signatures, Windows Update / Delivery Optimization content, package-registry and git object paths, GUID and
 * ObjectId resource ids. Each is named in `benignShape` so a reason text can say why a part was let go.
 *
 * Pure and synchronous; the hot path allocates only the result object (and a decoded copy of a part that
 * holds percent-escapes). Regexes are module constants. Known C2 *default* URIs (Cobalt Strike's `/submit.php`,
 * Empire's `/login/process.php` …) are shapes, not randomness: they live in `c2-uri-shapes.ts`.
 */
import { rangeEntropy } from './entropy.js';

export type UriEncoding = 'base64' | 'base64url' | 'hex' | 'guid';

export type BenignShape =
  | 'webpack-chunk'
  | 'asset-hash'
  | 'oauth'
  | 'saml'
  | 'ocsp'
  | 'analytics'
  | 'signed-url'
  | 'uuid-resource'
  | 'api-key'
  | 'windows-update'
  | 'package-registry'
  | 'git-object';

export interface UriFacts {
  /** Non-empty path segments. */
  readonly segmentCount: number;
  readonly maxSegmentLength: number;
  /** Bits/char of the most random-looking path segment (extension left out) or query value of ≥ 8 chars; 0 if none; 2 decimals. */
  readonly maxSegmentEntropy: number;
  readonly maxQueryValueLength: number;
  /** Most suspicious encoding among the parts not judged benign (base64 > base64url > hex > guid); GUIDs always count. */
  readonly encoding: UriEncoding | null;
  /** A long high-entropy machine-made part that is not a benign shape. */
  readonly randomSegment: boolean;
  /** Why a random-looking (or encoded) part was let go: the first such reason, a GUID giving way to any other. */
  readonly benignShape: BenignShape | null;
  /** The part that set maxSegmentEntropy, cut to 48 characters, for a reason text. */
  readonly hottest: string | null;
}

/** Parts shorter than this carry too little to measure. */
const MIN_MEASURED = 8;
/** Encodings are named from 16 characters on (a GUID at its own length). */
const MIN_ENCODED = 16;
const HOTTEST_MAX = 48;

// ---- one pass over a part: character classes ----------------------------------------------------------------

/**
 * What one pass over a part finds. Reused between calls (module scratch: the analyser is synchronous and not
 * re-entrant), so measuring a part allocates nothing.
 */
const scan = {
  upper: 0,
  lower: 0,
  digit: 0,
  plus: 0,
  slash: 0,
  /** '=' anywhere, and how many of them trail the part (base64 padding). */
  equals: 0,
  trailingEquals: 0,
  dash: 0,
  underscore: 0,
  /** Characters outside [A-Za-z0-9+/=_-]. */
  other: 0,
  /** Letters a–f/A–F: with digits only, the part is hex. */
  hexLetters: 0,
  vowels: 0,
  /** Adjacent alphanumeric pairs, and how many of them change class (upper/lower/digit; upper→lower excepted). */
  alnumPairs: 0,
  transitions: 0,
};

/** Share of class-changing alphanumeric pairs from which a part counts as machine-made (see isMachineMade). */
const MACHINE_TRANSITIONS = 0.25;

const CLASS_NONE = 0;
const CLASS_UPPER = 1;
const CLASS_LOWER = 2;
const CLASS_DIGIT = 3;

function scanPart(text: string, start: number, end: number): void {
  scan.upper = scan.lower = scan.digit = scan.plus = scan.slash = scan.equals = scan.trailingEquals = 0;
  scan.dash = scan.underscore = scan.other = scan.hexLetters = scan.vowels = scan.alnumPairs = scan.transitions = 0;
  let previous = CLASS_NONE;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    let cls = CLASS_NONE;
    if (c >= 0x41 && c <= 0x5a) {
      cls = CLASS_UPPER;
      scan.upper++;
      if (c <= 0x46) scan.hexLetters++;
      if (c === 0x41 || c === 0x45 || c === 0x49 || c === 0x4f || c === 0x55) scan.vowels++;
    } else if (c >= 0x61 && c <= 0x7a) {
      cls = CLASS_LOWER;
      scan.lower++;
      if (c <= 0x66) scan.hexLetters++;
      if (c === 0x61 || c === 0x65 || c === 0x69 || c === 0x6f || c === 0x75) scan.vowels++;
    } else if (c >= 0x30 && c <= 0x39) {
      cls = CLASS_DIGIT;
      scan.digit++;
    } else if (c === 0x2b) scan.plus++;
    else if (c === 0x2f) scan.slash++;
    else if (c === 0x3d) scan.equals++;
    else if (c === 0x2d) scan.dash++;
    else if (c === 0x5f) scan.underscore++;
    else scan.other++;
    if (cls !== CLASS_NONE && previous !== CLASS_NONE) {
      scan.alnumPairs++;
      // A capital followed by lower case starts a word (camelCase, Title Case): not a class change that counts.
      if (cls !== previous && !(previous === CLASS_UPPER && cls === CLASS_LOWER)) scan.transitions++;
    }
    previous = cls;
  }
  for (let i = end - 1; i >= start && text.charCodeAt(i) === 0x3d; i--) scan.trailingEquals++;
}

/**
 * Made by a machine rather than typed by a person: hex digits, or alphanumerics that change class (upper,
 * lower, digit — a capital followed by lower case does not count, it starts a word) at least every fourth
 * pair — uniform base62 text changes at ~47 % of pairs, hex at ~47 %, camelCase names at under 20 %, slugs
 * and numbers at 0 % — or a single-case letter string with almost no vowels.
 */
function isMachineMade(length: number): boolean {
  const letters = scan.upper + scan.lower;
  if (isHexScan(length) && scan.digit > 0 && scan.hexLetters > 0) return true;
  if (scan.alnumPairs > 0 && scan.transitions / scan.alnumPairs >= MACHINE_TRANSITIONS) return true;
  // English text is ~38 % vowels; uniform random letters ~19 %.
  return letters >= MIN_ENCODED && scan.digit === 0 && (scan.upper === 0 || scan.lower === 0) && scan.vowels / letters < 0.2;
}

function isHexScan(length: number): boolean {
  return scan.digit + scan.hexLetters === length && (scan.upper === 0 || scan.lower === 0);
}

const GUID = /^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$/;
/** MongoDB ObjectId (12 bytes, 24 hex): the other id that REST paths carry everywhere. */
const OBJECT_ID = /^[0-9a-f]{24}$/;

const ENCODING_RANK: Readonly<Record<UriEncoding, number>> = { guid: 1, hex: 2, base64url: 3, base64: 4 };

/**
 * The encoding of a part just scanned, or null. base64 needs its own alphabet (RFC 4648 §4) with `+`, `/` or
 * `=` padding to tell it from base64url (§5, `-` `_`); a token of plain letters and digits of all three classes
 * is reported as base64url, the alphabet random URL tokens are drawn from. All need upper, lower and digits
 * and machine-made class changes, so words and slugs never qualify.
 */
function classifyEncoding(text: string, start: number, end: number): UriEncoding | null {
  const length = end - start;
  if ((length === 36 || length === 38) && GUID.test(start === 0 && end === text.length ? text : text.slice(start, end))) return 'guid';
  if (length < MIN_ENCODED) return null;
  if (isHexScan(length) && scan.digit > 0 && scan.hexLetters > 0) return 'hex';
  if (scan.other > 0 || scan.upper === 0 || scan.lower === 0 || scan.digit === 0) return null;
  if (scan.alnumPairs === 0 || scan.transitions / scan.alnumPairs < MACHINE_TRANSITIONS) return null;
  const base64Only = scan.dash === 0 && scan.underscore === 0 && scan.equals === scan.trailingEquals && scan.trailingEquals <= 2;
  if (base64Only && (scan.plus > 0 || scan.slash > 0 || scan.trailingEquals > 0)) return 'base64';
  if (scan.plus === 0 && scan.slash === 0 && scan.equals === 0) return 'base64url';
  return null;
}

// ---- benign shapes ------------------------------------------------------------------------------------------

/** Static file extensions whose names bundlers and CDNs fill with content hashes. */
const STATIC_EXTENSIONS: ReadonlySet<string> = new Set([
  'js', 'mjs', 'cjs', 'css', 'map', 'json', 'wasm', 'html',
  'woff', 'woff2', 'ttf', 'otf', 'eot',
  'svg', 'png', 'jpg', 'jpeg', 'gif', 'webp', 'avif', 'ico', 'bmp',
  'mp4', 'webm', 'mp3', 'ogg', 'txt', 'xml',
]);
const SCRIPT_EXTENSIONS: ReadonlySet<string> = new Set(['js', 'mjs', 'cjs', 'map']);

/** Folders whose hex-named children are content digests (Gravatar `/avatar/<md5>`, blob stores, CDNs). */
const DIGEST_FOLDERS: ReadonlySet<string> = new Set([
  'avatar', 'avatars', 'blob', 'blobs', 'content', 'digest', 'download', 'downloads', 'file', 'files',
  'hash', 'image', 'images', 'img', 'md5', 'media', 'objects', 'sha1', 'sha256', 'static', 'assets', 'cache',
]);

/**
 * A hash token inside a bundled file name: webpack `[contenthash]` (hex, 8–20 by default, up to 32 when
 * configured), Vite/Rollup `[hash]` (8 chars of base64url, e.g. `index-DiwFRf3T.css`), esbuild chunk names
 * (8 chars of base32, `chunk-5QXQ4J3N.js`).
 */
const HEX_HASH_TOKEN = /^[0-9a-f]{8,32}$/;
const SHORT_HASH_TOKEN = /^[A-Za-z0-9_]{8}$/;
/** The name part before the hash: a word-like file name (`main`, `runtime~main`, `_app`, `vendors-node_modules`). */
const NAME_TOKEN = /^[A-Za-z_][A-Za-z0-9_~]{0,63}$/;
/** OCI distribution (`/v2/<name>/blobs/sha256:<digest>`) and other content-addressed stores. */
const DIGEST_SEGMENT = /^sha(?:256|384|512):[0-9a-f]{64,128}$/;

interface PathContext {
  readonly shape: BenignShape;
  /** First path segment (0-based, non-empty segments) the shape covers. */
  readonly fromSegment: number;
  /** The shape covers the query values too. */
  readonly coversQuery: boolean;
}

/**
 * Benign shapes recognised from the whole path, with the first segment they cover. Evaluated once per request,
 * and only when a part looked random or encoded.
 */
const PATH_CONTEXTS: readonly { readonly re: RegExp; readonly shape: BenignShape; readonly fromSegment: number; readonly coversQuery: boolean }[] = [
  // Next.js (`/_next/static/<buildId>/…`, `/_next/static/chunks/…`), Nuxt (`/_nuxt/`), SvelteKit (`/_app/immutable/`).
  { re: /^\/(?:_next\/static|_nuxt|_app\/immutable)\//, shape: 'webpack-chunk', fromSegment: 1, coversQuery: false },
  // Delivery Optimization content (`/filestreamingservice/files/<guid>?P1=…&P4=<signature>`) and Windows
  // Update payloads named by their SHA-1 (`/d/msdownload/update/software/…/<name>_<sha1>.cab`).
  { re: /^\/filestreamingservice\/files\//i, shape: 'windows-update', fromSegment: 2, coversQuery: true },
  { re: /^\/(?:[a-z]\/)?msdownload\//i, shape: 'windows-update', fromSegment: 0, coversQuery: true },
  // PyPI files (`/packages/ab/cd/<60 hex>/name-1.0.tar.gz`, files.pythonhosted.org) and npm tarballs
  // (`/<pkg>/-/<pkg>-<version>.tgz`, registry.npmjs.org).
  { re: /^\/packages\/[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{60}\//, shape: 'package-registry', fromSegment: 1, coversQuery: false },
  { re: /\/-\/[^/]+\.tgz$/, shape: 'package-registry', fromSegment: 0, coversQuery: false },
  // Git's dumb HTTP protocol (`objects/ab/<38 hex>`, `objects/pack/pack-<40 hex>.pack`) and Git LFS object ids.
  { re: /\/objects\/(?:[0-9a-f]{2}\/[0-9a-f]{38}|pack\/pack-[0-9a-f]{40}\.(?:pack|idx)|[0-9a-f]{64})$/, shape: 'git-object', fromSegment: 0, coversQuery: false },
  // Google Fonts (`/s/roboto/v30/KFOmCnqEu92Fr1Mu4mxK.woff2`): fonts.gstatic.com names files by a hash.
  { re: /^\/s\/[a-z0-9]+\/v\d+\//, shape: 'asset-hash', fromSegment: 3, coversQuery: false },
];

/** Google Analytics beacons: classic ga.js `/__utm.gif?utmwv=…`, Universal/GA4 `/collect`, `/g/collect` … */
const GA_UTM_PATH = /\/__utm\.gif$/;
const GA_COLLECT_PATH = /\/(?:[gjr]\/|mp\/)?collect$/;
/** Paths where an OAuth/OIDC client receives or sends codes and tokens. */
const AUTH_PATH = /(?:oauth|auth|callback|signin|sign-in|login|token|authorize|sso|openid|connect)/i;

/**
 * Query parameter names whose values are random by design, lower-cased. Each needs the anchor noted beside
 * it, so that one `?code=<payload>` on an arbitrary path is not waved through.
 */
const OAUTH_PARAMS: ReadonlySet<string> = new Set([
  'code', 'state', // RFC 6749 §4.1.2
  'access_token', 'refresh_token', 'id_token', // RFC 6749 §4.2.2, OIDC Core §3.2.2.5
  'nonce', 'id_token_hint', 'login_hint', // OIDC Core §3.1.2.1
  'code_challenge', 'code_verifier', // RFC 7636 §4.3
  'session_state', // OIDC Session Management §2
  'client_assertion', 'assertion', // RFC 7521 §4.2
]);
/** Parameters that only an OAuth/OIDC exchange sends: one of them anchors the OAuth values above. */
const OAUTH_ANCHORS: ReadonlySet<string> = new Set(['client_id', 'redirect_uri', 'response_type', 'grant_type', 'scope', 'response_mode']);
/** SAML HTTP-Redirect binding (SAML Bindings §3.4.4.1): deflated base64 message, relay state, signature. */
const SAML_PARAMS: ReadonlySet<string> = new Set(['samlrequest', 'samlresponse', 'relaystate', 'sigalg', 'signature']);
/** Query-string signing: AWS SigV4 (`X-Amz-*`), GCS V4 (`X-Goog-*`), legacy S3/CloudFront, Azure SAS (`sig`). */
const SIGNED_PARAMS: ReadonlySet<string> = new Set([
  'x-amz-signature', 'x-amz-credential', 'x-amz-security-token',
  'x-goog-signature', 'x-goog-credential',
  'signature', 'policy', 'key-pair-id', 'awsaccesskeyid', 'googleaccessid',
  'sig',
]);

/**
 * Cache-busting parameters on static files (`/app.css?v=8f3a2b1c9d0e`): a build hash or version, benign when
 * it is hex or short. A long non-hex value on them is still judged like any other value.
 */
const CACHE_BUST_PARAMS: ReadonlySet<string> = new Set(['v', 'ver', 'version', 'hash', 'h', 'rev', 'build', 'cb', 'cachebust', '_', 't', 'ts']);
const CACHE_BUST_MAX = 20;
const STATIC_FILE = /\.([A-Za-z0-9]{1,5})$/;

/** What the query as a whole tells the per-value judgement (one scan of the keys, only when needed). */
interface QueryContext {
  readonly oauthKeys: number;
  readonly oauthAnchor: boolean;
  readonly saml: boolean;
  /** A signing scheme is present: X-Amz/X-Goog signature, Signature with Expires, or Azure `sig` with `sv`/`se`. */
  readonly signed: boolean;
  readonly gaUtm: boolean;
  readonly gaCollect: boolean;
  /** The path names a static file (`.js`, `.css`, `.woff2` …): cache-busting values are expected. */
  readonly staticFile: boolean;
}

/** Index of `code` in `text[start, end)`, or −1 (indexOf would run on past `end`: quadratic over many pairs). */
function indexWithin(text: string, code: number, start: number, end: number): number {
  for (let i = start; i < end; i++) if (text.charCodeAt(i) === code) return i;
  return -1;
}

function readQueryContext(query: string, path: string): QueryContext {
  let oauthKeys = 0;
  let oauthAnchor = false;
  let saml = false;
  let amzGoog = false;
  let signature = false;
  let expires = false;
  let azureSig = false;
  let azureVersion = false;
  let utmwv = false;
  let v = false;
  let tid = false;
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end === -1) end = query.length;
    const eq = indexWithin(query, 0x3d, start, end);
    const keyEnd = eq === -1 ? end : eq;
    if (keyEnd > start && keyEnd - start <= 32) {
      const key = query.slice(start, keyEnd).toLowerCase();
      if (OAUTH_PARAMS.has(key)) oauthKeys++;
      else if (OAUTH_ANCHORS.has(key)) oauthAnchor = true;
      if (key === 'samlrequest' || key === 'samlresponse') saml = true;
      if (key === 'x-amz-signature' || key === 'x-goog-signature') amzGoog = true;
      else if (key === 'signature') signature = true;
      else if (key === 'expires') expires = true;
      else if (key === 'sig') azureSig = true;
      else if (key === 'sv' || key === 'se') azureVersion = true;
      else if (key === 'utmwv') utmwv = true;
      else if (key === 'v') v = true;
      else if (key === 'tid') tid = true;
    }
    start = end + 1;
  }
  return {
    oauthKeys,
    oauthAnchor: oauthAnchor || oauthKeys >= 2 || AUTH_PATH.test(path),
    saml,
    signed: amzGoog || (signature && expires) || (azureSig && azureVersion),
    gaUtm: utmwv && GA_UTM_PATH.test(path),
    gaCollect: v && tid && GA_COLLECT_PATH.test(path),
    staticFile: STATIC_EXTENSIONS.has((STATIC_FILE.exec(path)?.[1] ?? '').toLowerCase()),
  };
}

// ---- OCSP over GET ------------------------------------------------------------------------------------------

const B64_VALUES = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64_VALUES['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

/** Base64 text is [A-Za-z0-9+/] with at most two '=' at the end. */
const BASE64_TEXT = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * RFC 6960 Appendix A.1: an OCSP request over GET is `{url}/{url-encoding of base64 of the DER OCSPRequest}`.
 * DER starts with a SEQUENCE (0x30) and a length, so the base64 starts `ME`/`MF` (short lengths), `MG`/`MH`,
 * or `MI` (long form); unencoded `/` of the base64 may split it over several path segments. Returns true
 * when `encoded` decodes to exactly one DER SEQUENCE whose length covers all of it, holding another SEQUENCE
 * (the tbsRequest): a real OCSPRequest, not a look-alike that merely starts with `MF`.
 */
export function isOcspGetRequest(encoded: string): boolean {
  const text = encoded.indexOf('%') === -1 ? encoded : percentDecode(encoded, 0, encoded.length);
  if (text.length < 8 || text.length % 4 !== 0 || !BASE64_TEXT.test(text)) return false;
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const decodedLength = (text.length / 4) * 3 - padding;
  const bytes = decodeBase64Prefix(text);
  if (bytes === null || bytes[0] !== 0x30) return false;
  const lengthByte = bytes[1] as number;
  let header: number;
  let contentLength: number;
  if (lengthByte < 0x80) {
    header = 2;
    contentLength = lengthByte;
  } else if (lengthByte === 0x81) {
    header = 3;
    contentLength = bytes[2] as number;
  } else if (lengthByte === 0x82) {
    header = 4;
    contentLength = ((bytes[2] as number) << 8) | (bytes[3] as number);
  } else {
    return false;
  }
  return header + contentLength === decodedLength && bytes[header] === 0x30;
}

/** The first 6 bytes of base64 text (8 characters), or null on a character outside the alphabet. */
function decodeBase64Prefix(text: string): number[] | null {
  const out: number[] = [];
  for (let i = 0; i < 8; i += 4) {
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = text.charCodeAt(i + j);
      const value = c === 0x3d ? 0 : c < 128 ? (B64_VALUES[c] as number) : -1;
      if (value < 0) return null;
      n = (n << 6) | value;
    }
    out.push((n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
  }
  return out;
}

/** OCSP GETs put the request right after the responder's path; a few candidate segments are plenty. */
const OCSP_MAX_CANDIDATES = 3;

/** Where an OCSP request starts in the path (a segment starting `ME`–`MI`), covering the rest of the path. */
function findOcsp(path: string): PathContext | null {
  let segment = 0;
  let start = 0;
  let candidates = 0;
  while (start < path.length && candidates < OCSP_MAX_CANDIDATES) {
    if (path.charCodeAt(start) === 0x2f) {
      start++;
      continue;
    }
    const c1 = path.charCodeAt(start + 1);
    if (path.charCodeAt(start) === 0x4d && c1 >= 0x45 && c1 <= 0x49) {
      candidates++;
      if (isOcspGetRequest(path.slice(start))) return { shape: 'ocsp', fromSegment: segment, coversQuery: false };
    }
    const next = path.indexOf('/', start);
    if (next === -1) break;
    segment++;
    start = next + 1;
  }
  return null;
}

// ---- percent-escapes ----------------------------------------------------------------------------------------

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Decodes `%XX` escapes in `text[start, end)` into one character per byte (Latin-1: entropy and class counts
 * work on bytes, so UTF-8 need not be decoded). A malformed escape stays as written. `+` stays `+`: in a
 * C2 query it is more often base64 than a form-encoded space, and keeping it keeps base64 recognisable.
 */
export function percentDecode(text: string, start: number, end: number): string {
  let out = '';
  let from = start;
  for (let i = start; i < end - 2; i++) {
    if (text.charCodeAt(i) !== 0x25) continue;
    const hi = hexValue(text.charCodeAt(i + 1));
    const lo = hexValue(text.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) continue;
    out += text.slice(from, i) + String.fromCharCode((hi << 4) | lo);
    from = i + 3;
    i += 2;
  }
  return out + text.slice(from, end);
}

// ---- the analysis -------------------------------------------------------------------------------------------

/** Per-call state, reset at the start of each call (synchronous, not re-entrant). */
const state = {
  path: '',
  query: '',
  maxEntropy: 0,
  hottestSource: '',
  hottestStart: 0,
  hottestEnd: 0,
  encodingRank: 0,
  encoding: null as UriEncoding | null,
  randomSegment: false,
  benign: null as BenignShape | null,
  pathContext: undefined as PathContext | null | undefined,
  queryContext: undefined as QueryContext | undefined,
  /** The segment before the one being measured (its folder), as a range of `path`; empty when none. */
  previousStart: 0,
  previousEnd: 0,
};

function pathContext(): PathContext | null {
  if (state.pathContext !== undefined) return state.pathContext;
  let found: PathContext | null = null;
  for (const context of PATH_CONTEXTS) {
    if (context.re.test(state.path)) {
      found = context;
      break;
    }
  }
  state.pathContext = found ?? findOcsp(state.path);
  return state.pathContext;
}

function queryContext(): QueryContext {
  state.queryContext ??= readQueryContext(state.query, state.path);
  return state.queryContext;
}

/** The benign shape of a random-looking path segment, or null. `stemEnd` excludes the extension. */
function benignSegment(text: string, start: number, end: number, stemEnd: number, extension: string, index: number): BenignShape | null {
  const context = pathContext();
  if (context !== null && index >= context.fromSegment) return context.shape;
  const part = start === 0 && end === text.length ? text : text.slice(start, end);
  if (GUID.test(part) || OBJECT_ID.test(part)) return 'uuid-resource';
  if (DIGEST_SEGMENT.test(part)) return 'asset-hash';
  const stemLength = stemEnd - start;
  // A hex name in a digest folder (Gravatar `/avatar/<md5>`, `/static/<sha1>.woff2`), or any hex file name with
  // a static extension: content-addressed files.
  scanPart(text, start, stemEnd);
  const hexStem = stemLength >= MIN_ENCODED && isHexScan(stemLength) && scan.digit > 0;
  if (hexStem && (extension !== '' ? STATIC_EXTENSIONS.has(extension) : isDigestFolder())) return 'asset-hash';
  if (extension === '' || !STATIC_EXTENSIONS.has(extension)) return null;
  return bundledName(text, start, stemEnd) ? (SCRIPT_EXTENSIONS.has(extension) ? 'webpack-chunk' : 'asset-hash') : null;
}

function isDigestFolder(): boolean {
  const length = state.previousEnd - state.previousStart;
  return length > 0 && length <= 16 && DIGEST_FOLDERS.has(state.path.slice(state.previousStart, state.previousEnd).toLowerCase());
}

/**
 * A bundler's output name: a word-like name followed by a hash token, separated by `.` or `-`
 * (`main.3f2a1b9c`, `main.3f2a1b9c.chunk`, `index-DiwFRf3T`, `chunk-5QXQ4J3N`, `vendors~main.8f3a2b1c9d0e4f5a6b7c`).
 * The name itself must not be random: a random stem with a hash glued on is not a bundle.
 */
function bundledName(text: string, start: number, stemEnd: number): boolean {
  const stem = text.slice(start, stemEnd);
  const tokens = stem.split(/[.-]/);
  const name = tokens[0] ?? '';
  if (!NAME_TOKEN.test(name)) return false;
  if (name.length >= MIN_ENCODED) {
    scanPart(name, 0, name.length);
    if (isMachineMade(name.length)) return false;
  }
  for (let i = 1; i < tokens.length; i++) {
    const token = tokens[i] as string;
    if (HEX_HASH_TOKEN.test(token) && /[0-9]/.test(token) && /[a-f]/.test(token)) return true;
    if (SHORT_HASH_TOKEN.test(token) && /[0-9A-Z]/.test(token) && /[A-Za-z]/.test(token) && token !== token.toLowerCase()) return true;
  }
  return false;
}

/** Google API keys: `AIza` and 35 more base64url characters (Google Cloud docs, "API keys"), sent in `key=`. */
const GOOGLE_API_KEY = /^AIza[0-9A-Za-z_-]{35}$/;

/** The benign shape of a random-looking query value (`text[from, to)`, just scanned), or null. */
function benignQueryValue(key: string, text: string, from: number, to: number, encoding: UriEncoding | null): BenignShape | null {
  const context = pathContext();
  if (context !== null && context.coversQuery) return context.shape;
  // Client, request and correlation ids are GUIDs everywhere (client-request-id, uid, sessionId …).
  if (encoding === 'guid') return 'uuid-resource';
  const length = to - from;
  if (length === 39 && GOOGLE_API_KEY.test(from === 0 && to === text.length ? text : text.slice(from, to))) return 'api-key';
  const q = queryContext();
  if (q.gaUtm || q.gaCollect) return 'analytics';
  const name = key.toLowerCase();
  if (q.staticFile && CACHE_BUST_PARAMS.has(name) && (length <= CACHE_BUST_MAX || isHexScan(length))) return 'asset-hash';
  if (q.signed && SIGNED_PARAMS.has(name)) return 'signed-url';
  if (q.saml && SAML_PARAMS.has(name)) return 'saml';
  if (OAUTH_PARAMS.has(name) && q.oauthAnchor) return 'oauth';
  return null;
}

/**
 * Measures one part: a path segment (`key` null, `segmentIndex` its place) or a query value (`key` its
 * parameter name, '' for a bare value).
 */
function measurePart(text: string, start: number, end: number, segmentIndex: number, key: string | null): void {
  let source = text;
  let from = start;
  let to = end;
  for (let i = start; i < end; i++) {
    if (text.charCodeAt(i) === 0x25) {
      source = percentDecode(text, start, end);
      from = 0;
      to = source.length;
      break;
    }
  }
  if (to - from < MIN_MEASURED) return;
  // A path segment is measured without its extension (`.js`, `.woff2`): the name is what carries data.
  let stemEnd = to;
  let extension = '';
  if (key === null) {
    // Look back at most 6 characters: an unbounded lastIndexOf would rescan the whole path per segment.
    let dot = -1;
    for (let i = to - 2; i >= from + 1 && i >= to - 6; i--) {
      if (source.charCodeAt(i) === 0x2e) {
        dot = i;
        break;
      }
    }
    if (dot > from) {
      let alnum = true;
      for (let i = dot + 1; i < to && alnum; i++) {
        const c = source.charCodeAt(i) | 0x20;
        alnum = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39);
      }
      if (alnum) {
        stemEnd = dot;
        extension = source.slice(dot + 1, to).toLowerCase();
      }
    }
  }
  const length = stemEnd - from;
  if (length < MIN_MEASURED) return;
  const entropy = rangeEntropy(source, from, stemEnd);
  if (entropy > state.maxEntropy) {
    state.maxEntropy = entropy;
    state.hottestSource = text;
    state.hottestStart = start;
    state.hottestEnd = end;
  }
  scanPart(source, from, stemEnd);
  // Long and high-entropy (the thresholds of the feature's definition), and machine-made rather than a slug.
  const randomLooking = (length >= 24 && entropy >= 3.5) || (length >= MIN_ENCODED && entropy >= 4.0) ? isMachineMade(length) : false;
  const encoding = classifyEncoding(source, from, stemEnd);
  if (!randomLooking && encoding === null) return;
  const benign = key === null ? benignSegment(source, from, to, stemEnd, extension, segmentIndex) : benignQueryValue(key, source, from, to, encoding);
  if (benign !== null) {
    // The first reason wins, except that a GUID (the most mundane) gives way to a more telling one.
    if (state.benign === null || (state.benign === 'uuid-resource' && benign !== 'uuid-resource')) state.benign = benign;
    // A GUID is an identifier shape rather than a payload: report it even when it was let go.
    if (encoding === 'guid') noteEncoding('guid');
    return;
  }
  if (randomLooking) state.randomSegment = true;
  if (encoding !== null) noteEncoding(encoding);
}

function noteEncoding(encoding: UriEncoding): void {
  const rank = ENCODING_RANK[encoding];
  if (rank > state.encodingRank) {
    state.encodingRank = rank;
    state.encoding = encoding;
  }
}

/**
 * Analyses the path (as sent, percent-escapes allowed) and the query (without `?`). Pure; never throws.
 */
export function analyzeUri(path: string, query: string | undefined): UriFacts {
  state.path = path;
  state.query = query ?? '';
  state.maxEntropy = 0;
  state.hottestSource = '';
  state.hottestStart = state.hottestEnd = 0;
  state.encodingRank = 0;
  state.encoding = null;
  state.randomSegment = false;
  state.benign = null;
  state.pathContext = undefined;
  state.queryContext = undefined;
  state.previousStart = state.previousEnd = 0;

  let segmentCount = 0;
  let maxSegmentLength = 0;
  let start = 0;
  let previousStart = 0;
  let previousEnd = 0;
  while (start <= path.length) {
    let end = path.indexOf('/', start);
    if (end === -1) end = path.length;
    if (end > start) {
      if (end - start > maxSegmentLength) maxSegmentLength = end - start;
      if (end - start >= MIN_MEASURED) {
        // The folder a part sits in decides some shapes (`/avatar/<md5>`).
        state.previousStart = previousStart;
        state.previousEnd = previousEnd;
        measurePart(path, start, end, segmentCount, null);
      }
      segmentCount++;
      previousStart = start;
      previousEnd = end;
    }
    start = end + 1;
  }

  let maxQueryValueLength = 0;
  const q = state.query;
  start = 0;
  while (start < q.length) {
    let end = q.indexOf('&', start);
    if (end === -1) end = q.length;
    const eq = indexWithin(q, 0x3d, start, end);
    // Base64 with `=` padding and no key (`?dGhpcy…QzI=`) looks like "key=" with an empty value.
    let paddingOnly = eq !== -1 && eq - start >= MIN_MEASURED;
    for (let i = eq + 1; paddingOnly && i < end; i++) paddingOnly = q.charCodeAt(i) === 0x3d;
    if (eq !== -1 && !paddingOnly) {
      if (end - eq - 1 > maxQueryValueLength) maxQueryValueLength = end - eq - 1;
      if (end - eq - 1 >= MIN_MEASURED) measurePart(q, eq + 1, end, -1, q.slice(start, eq));
    } else {
      // A bare value (`?U2FsdGVkX1…`, `?dGhpcy…QzI=`): measured whole, like any other value.
      if (end - start > maxQueryValueLength) maxQueryValueLength = end - start;
      if (end - start >= MIN_MEASURED) measurePart(q, start, end, -1, '');
    }
    start = end + 1;
  }

  const hottest = state.maxEntropy > 0 ? state.hottestSource.slice(state.hottestStart, Math.min(state.hottestEnd, state.hottestStart + HOTTEST_MAX)) : null;
  // Drop the references to this request's text, so the scratch state does not keep a large URI alive.
  state.path = state.query = state.hottestSource = '';
  return {
    segmentCount,
    maxSegmentLength,
    maxSegmentEntropy: Math.round(state.maxEntropy * 100) / 100,
    maxQueryValueLength,
    encoding: state.encoding,
    randomSegment: state.randomSegment,
    benignShape: state.benign,
    hottest,
  };
}

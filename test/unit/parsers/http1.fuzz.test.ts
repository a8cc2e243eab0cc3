/**
 * Property tests for the HTTP/1.x head parsers and the chunked framer, and the differential fuzz against
 * Node's own llhttp (strict flags, through the internal HTTPParser binding the way Node's tests use it):
 * 100,000 generated requests and 5,000 responses, mutated at the grammar level (methods, targets, versions,
 * CTLs, obs-fold, bare LF/CR, duplicate CL, CL+TE, TE lists, whitespace before the colon, chunked bodies with
 * bad sizes, extensions and trailers) and at the byte level. For every message both must agree on: accept /
 * refuse / need more, method, target, version, header list, framing (the CL value is checked by where llhttp
 * completes the message), keep-alive, upgrade, and for chunked bodies where the body ends.
 *
 * Allowed disagreements, each recognised from the input bytes and asserted by name (src/parsers/http1.ts
 * explains why): an unknown-but-valid token method; a version the API cannot carry (HTTP/0.9, HTTP/2.0,
 * RTSP/, ICE/); a Content-Length or chunk-size above 2^53 − 1; responses with a status below 100, a 1xx other
 * than 100–103 (no content here), and 101 (not keep-alive here).
 */
import { createRequire } from 'node:module';
import { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { parseRequestHead, parseResponseHead, isToken } from '../../../src/parsers/http1.js';
import type { RequestHead, RequestHeadResult, ResponseHead, ResponseHeadResult } from '../../../src/parsers/http1.js';
import { ChunkedFramer, Http1FramingError } from '../../../src/parsers/http1-chunked.js';
import { mulberry32 } from '../../helpers/prng.js';

// -----------------------------------------------------------------------------------------------------------
// Node's llhttp, through the binding lib/_http_common.js exposes (test/parallel/test-http-parser.js does the same).

interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenientFlags: number): void;
  execute(data: Buffer): number | (Error & { code: string; reason: string; bytesParsed: number });
  finish(): undefined | (Error & { code: string; reason: string });
  [callback: number]: unknown;
}
interface LlhttpParserClass {
  new (): LlhttpParser;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kLenientNone: number;
}

function loadHttpParser(): LlhttpParserClass {
  // Node may flag internal modules as deprecated in later versions: keep any such warning inside this test.
  const saved = process.noDeprecation === true;
  process.noDeprecation = true;
  try {
    return (createRequire(import.meta.url)('_http_common') as { HTTPParser: LlhttpParserClass }).HTTPParser;
  } finally {
    process.noDeprecation = saved;
  }
}
const HTTPParser = loadHttpParser();

/** llhttp's method numbers (src/llhttp/constants.ts METHODS): index → name. */
const LL_METHODS = [
  'DELETE', 'GET', 'HEAD', 'POST', 'PUT', 'CONNECT', 'OPTIONS', 'TRACE', 'COPY', 'LOCK', 'MKCOL', 'MOVE', 'PROPFIND',
  'PROPPATCH', 'SEARCH', 'UNLOCK', 'BIND', 'REBIND', 'UNBIND', 'ACL', 'REPORT', 'MKACTIVITY', 'CHECKOUT', 'MERGE',
  'M-SEARCH', 'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE', 'PATCH', 'PURGE', 'MKCALENDAR', 'LINK', 'UNLINK', 'SOURCE', 'PRI',
  'DESCRIBE', 'ANNOUNCE', 'SETUP', 'PLAY', 'PAUSE', 'TEARDOWN', 'GET_PARAMETER', 'SET_PARAMETER', 'REDIRECT', 'RECORD',
  'FLUSH', 'QUERY',
] as const;
/** The methods llhttp takes with HTTP/x.y (METHODS_HTTP: 0–34 and QUERY); the rest are RTSP-only. */
const LL_HTTP_METHODS: ReadonlySet<string> = new Set([...LL_METHODS.slice(0, 35), 'QUERY']);
const RTSP_ONLY_METHODS = LL_METHODS.slice(35, 46);

interface LlHead {
  major: number;
  minor: number;
  rawHeaders: string[];
  method: string | undefined;
  url: string;
  status: number;
  reason: string;
  upgrade: boolean;
  keepAlive: boolean;
}

interface LlRun {
  error: string | null; // HPE_* code
  reason: string;
}

/** One reusable llhttp parser with the callbacks Node installs, recording what a message produced. */
class Llhttp {
  private readonly parser = new HTTPParser();
  head: LlHead | null = null;
  completes = 0;
  private pendingHeaders: string[] = [];
  private pendingUrl = '';
  private skipBody = false;

  constructor() {
    const p = this.parser;
    p[HTTPParser.kOnHeaders] = (headers: string[], url: string): void => {
      // Before the head: >32 fields are flushed here; after it: trailers (not compared).
      if (this.head === null) {
        this.pendingHeaders.push(...headers);
        this.pendingUrl += url;
      }
    };
    p[HTTPParser.kOnHeadersComplete] = (
      major: number,
      minor: number,
      headers: string[] | undefined,
      method: number | undefined,
      url: string | undefined,
      status: number | undefined,
      reason: string | undefined,
      upgrade: boolean,
      keepAlive: boolean,
    ): number => {
      if (headers !== undefined) this.pendingHeaders.push(...headers);
      if (url !== undefined) this.pendingUrl += url;
      this.head = {
        major,
        minor,
        rawHeaders: this.pendingHeaders,
        method: method === undefined ? undefined : LL_METHODS[method],
        url: this.pendingUrl,
        status: status ?? 0,
        reason: reason ?? '',
        upgrade,
        keepAlive,
      };
      return this.skipBody ? 1 : 0; // 1: no body (Node's client does this for HEAD)
    };
    p[HTTPParser.kOnBody] = (): void => {};
    p[HTTPParser.kOnMessageComplete] = (): void => {
      this.completes++;
    };
  }

  reset(type: 'request' | 'response', skipBody = false): void {
    this.parser.initialize(type === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, 1 << 30, HTTPParser.kLenientNone);
    this.head = null;
    this.completes = 0;
    this.pendingHeaders = [];
    this.pendingUrl = '';
    this.skipBody = skipBody;
  }

  exec(data: Buffer): LlRun {
    if (data.length === 0) return { error: null, reason: '' };
    const before = this.completes;
    const r = this.parser.execute(data);
    if (typeof r !== 'number') return { error: r.code, reason: r.reason };
    // Once llhttp has flagged an upgrade (CONNECT, or Connection: upgrade + Upgrade), Node's binding returns
    // the error position as a count instead of an error: stopping short without completing a message is one.
    if (r < data.length && this.completes === before) return { error: 'HPE_HIDDEN_BY_UPGRADE', reason: `stopped at ${r}` };
    return { error: null, reason: '' };
  }

  finish(): LlRun {
    const r = this.parser.finish();
    return r === undefined ? { error: null, reason: '' } : { error: r.code, reason: r.reason };
  }
}

/** Node's IncomingMessage.headers for a raw header list: the oracle for our `headers`. */
function nodeHeaders(raw: string[]): Record<string, unknown> {
  const m = new IncomingMessage(null as unknown as Socket) as IncomingMessage & { _addHeaderLines(h: string[], n: number): void };
  m._addHeaderLines(raw, raw.length);
  return m.headers as Record<string, unknown>;
}
/** lib/_http_server.js continueExpression. */
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;

// -----------------------------------------------------------------------------------------------------------
// Generators (seeded: the seed is printed on failure).

class Gen {
  /** A clean message: no junk choices, no mutation (keeps a good share of accepted messages). */
  clean = false;
  constructor(readonly next: () => number) {}
  /** A chance to break something, never in a clean message. */
  bad(p: number): boolean {
    return !this.clean && this.next() < p;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<V>(items: readonly V[]): V {
    return items[Math.floor(this.next() * items.length)] as V;
  }
  fromChars(chars: string, min: number, max: number): string {
    let s = '';
    const n = this.int(min, max);
    for (let k = 0; k < n; k++) s += chars[Math.floor(this.next() * chars.length)];
    return s;
  }
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const TCHAR = ALNUM + "!#$%&'*+-.^_`|~";
const PATH_CHARS = ALNUM + "/-._~!$&'()*+,;=:@%";
const ODD_URL_CHARS = '"<>\\^`{|}[]';
const CTLS = [0x00, 0x01, 0x08, 0x0b, 0x0c, 0x0e, 0x1b, 0x1f, 0x7f].map((c) => String.fromCharCode(c));
const OBS = ['\x80', '\xa0', '\xe9', '\xff'];

const COMMON_METHODS = ['GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'HEAD', 'OPTIONS', 'DELETE', 'PATCH', 'CONNECT'];
const OTHER_LL_METHODS = ['COPY', 'LOCK', 'MKCOL', 'PROPFIND', 'M-SEARCH', 'NOTIFY', 'PURGE', 'QUERY', 'SOURCE', 'TRACE', 'LINK', 'MKCALENDAR'];
const EXTENSION_METHODS = ['CCM_POST', 'BITS_POST', 'get', 'Get', 'X-MS-ENUMATTS', 'RPC_IN_DATA', 'GETX', 'POSTS', 'CONNECTION', 'PRIX', 'HEADS'];
const JUNK_METHODS = ['', 'GE T', 'G\x00T', 'GET\t', '\x80GET', 'GET:', 'G(T', 'GET\r\n'];

function genMethod(g: Gen): string {
  const r = g.clean ? g.next() * 0.93 : g.next();
  if (r < 0.62) return g.pick(COMMON_METHODS);
  if (r < 0.72) return g.pick(OTHER_LL_METHODS);
  if (r < 0.75 && !g.clean) return g.pick(RTSP_ONLY_METHODS);
  if (r < 0.76 && !g.clean) return 'PRI';
  if (r < 0.93) return g.chance(0.5) ? g.pick(EXTENSION_METHODS) : g.fromChars(TCHAR, 1, 12);
  return g.pick(JUNK_METHODS);
}

function genHost(g: Gen): string {
  const r = g.next();
  if (r < 0.5) return `${g.fromChars('abcdefghij', 1, 8)}.${g.pick(['com', 'example', 'local'])}${g.chance(0.3) ? `:${g.int(1, 65535)}` : ''}`;
  if (r < 0.6) return `[::${g.int(1, 9)}]:${g.int(1, 9999)}`;
  if (r < 0.7) return `user:pw@${g.fromChars(ALNUM, 1, 6)}`;
  if (r < 0.75) return g.pick(['a@b@c', 'a@@b', '', 'a%20b', "a!$&'()*+,;=b"]);
  if (r < 0.85 && !g.clean) return g.fromChars(ALNUM + '.-:', 1, 10) + g.pick(CTLS.concat(OBS, ['#', '"', '<', '\\', '{', ' ']));
  return g.fromChars(ALNUM + '-._~!$&\'()*+,;=:%[]', 1, 12);
}

function genPath(g: Gen): string {
  let s = '/' + g.fromChars(PATH_CHARS, 0, 20);
  if (g.chance(0.3)) s += '?' + g.fromChars(PATH_CHARS + '?/', 0, 16);
  if (g.chance(0.05)) s += '#' + g.fromChars(PATH_CHARS + '?#', 0, 6);
  if (g.chance(0.08)) s += g.pick(ODD_URL_CHARS.split(''));
  if (g.bad(0.06)) {
    const at = g.int(0, s.length);
    s = s.slice(0, at) + g.pick(CTLS.concat(OBS, ['\t', '#', '?', '\f'])) + s.slice(at);
  }
  return s;
}

function genTarget(g: Gen, method: string): string {
  if (method === 'CONNECT' && g.chance(0.8)) return g.chance(0.9) ? `${g.fromChars('abcdefgh', 1, 8)}.com:${g.int(1, 65535)}` : genHost(g);
  const r = g.next();
  if (r < 0.6) return genPath(g);
  if (r < 0.8) {
    const scheme = g.pick(['http', 'http', 'HTTP', 'https', 'ftp', 'svn+ssh', 'h2', 'a1', 'x-y']);
    const sep = !g.bad(0.08) ? '://' : g.pick([':/', ':', '//', ':///']);
    return scheme + sep + genHost(g) + (g.chance(0.7) ? genPath(g) : g.chance(0.3) ? '?q' : '');
  }
  if (r < 0.85) return g.pick(['*', '*', '*x', '**']);
  if (r < 0.92 || g.clean) return g.clean ? '/' : `${g.fromChars('abcdefgh', 1, 8)}.com:${g.int(1, 65535)}`;
  return g.pick(['', '\t/', '/\t', 'x y', '\x00', '/a\x7fb', '/\x80', '%', 'a:b', '://x', '/\r/', '/\n']);
}

const BAD_VERSIONS = ['HTTP/0.9', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/3.0', 'HTTP/1.10', 'HTTP/11', 'http/1.1', 'HTTP/1.', 'HTTP/a.1', 'RTSP/1.0', 'ICE/1.0', 'HTTPS/1.1', 'HTTP /1.1', '', 'HTTP/1.1 ', 'HTTP/2', 'HTTP/9.9'];

function genVersion(g: Gen): string {
  const r = g.next();
  if (r < 0.72) return 'HTTP/1.1';
  if (r < 0.9 || g.clean) return 'HTTP/1.0';
  return g.pick(BAD_VERSIONS);
}

function genEol(g: Gen, p = 0.95): string {
  return !g.bad(1 - p) ? '\r\n' : g.pick(['\n', '\r', '\r\r\n', ' \r\n', '\r \n', '\n\r']);
}

function genValue(g: Gen): string {
  let v = g.fromChars(ALNUM + ' -_.,;:/=()"?!@*+\'[]{}<>\\|~`#$%&^', 0, 24);
  const r = g.next();
  if (r < 0.04 && !g.clean) v += g.pick(CTLS);
  else if (r < 0.08) v = g.pick(OBS) + v;
  else if (r < 0.12) v = g.pick([' ', '\t', '  ', ' \t']) + v + g.pick([' ', '\t', '']);
  return v;
}

const CL_VALUES = [
  '0', '0', '5', '42', '7', '007', '00', ' 5', '5 ', '5  ', '5\t', '\t5', '-1', '+5', '0x5', '5,5', '5, 5', '5 5', '',
  '18446744073709551615', '18446744073709551616', '9007199254740991', '9007199254740992', '1e3', '12345678901234567890123',
];
const TE_VALUES = [
  'chunked', 'chunked', 'chunked', 'Chunked', 'CHUNKED', 'gzip, chunked', 'gzip,chunked', 'deflate,\tchunked', 'chunked, gzip', 'gzip',
  'identity', 'chunked,chunked', 'chunked , gzip', 'chunked\t', 'chunked ', 'x,chunked', ',chunked', '', ' ', 'gzip,  chunked',
  'chunkedx', 'chunk', 'chunk,chunked', 'chunked;q=1', 'gzip chunked', 'chunked\t, gzip',
];
const CONNECTION_VALUES = [
  'close', 'keep-alive', 'Keep-Alive', 'upgrade', 'Upgrade', 'close, upgrade', 'foo, close', 'foo close', 'close\t', 'closed',
  'keep-alive, close', 'TE, close', ' , close', 'clos', 'upgrade\t', 'keep-alive ,upgrade', 'CLOSE ', 'keep-alive,\tUpgrade', '',
];

/** The names Node's matchKnownFields treats specially (lib/_http_incoming.js), and a few it does not. */
const NODE_KNOWN_FIELDS = [
  'Age', 'Host', 'From', 'ETag', 'Date', 'Vary', 'Server', 'Cookie', 'Origin', 'Expect', 'Accept', 'Referer', 'Expires', 'Upgrade',
  'Location', 'If-Match', 'User-Agent', 'Set-Cookie', 'Connection', 'Retry-After', 'Content-Type', 'Max-Forwards', 'Authorization',
  'Last-Modified', 'Cache-Control', 'If-None-Match', 'Content-Length', 'Accept-Encoding', 'Accept-Language', 'X-Forwarded-For',
  'X-Forwarded-Host', 'If-Modified-Since', 'Transfer-Encoding', 'X-Forwarded-Proto', 'Proxy-Authorization', 'If-Unmodified-Since',
  'Via', 'Content-Disposition', 'Keep-Alive', 'TE', 'Referrer', '__proto__', 'constructor', 'Cookies', 'Hosts',
];

interface GeneratedHead {
  chunked: boolean;
  contentLength: number;
  framing: boolean;
}

function genField(g: Gen, out: GeneratedHead): string {
  const r = g.next();
  let name: string;
  let value: string;
  if (r < 0.12 && !(g.clean && out.framing)) {
    name = g.pick(['Content-Length', 'content-length', 'CONTENT-LENGTH']);
    value = g.clean ? g.pick(['0', '5', '42', '007', '5 ']) : g.pick(CL_VALUES);
    if (/^\d{1,3}$/.test(value.trim())) out.contentLength = Number(value.trim());
    out.framing = true;
  } else if (r < 0.26 && !(g.clean && out.framing)) {
    name = g.pick(['Transfer-Encoding', 'transfer-encoding', 'Transfer-encoding']);
    value = g.clean ? g.pick(['chunked', 'Chunked', 'gzip, chunked', 'chunked ']) : g.pick(TE_VALUES);
    if (/chunked/i.test(value)) out.chunked = true;
    out.framing = true;
  } else if (r < 0.36) {
    name = g.pick(['Connection', 'Connection', 'connection', 'Proxy-Connection', 'Connection-Foo']);
    value = g.pick(CONNECTION_VALUES);
  } else if (r < 0.4) {
    name = g.pick(['Upgrade', 'upgrade']);
    value = g.pick(['websocket', 'h2c', '', ' ']);
  } else if (r < 0.44) {
    name = 'Expect';
    value = g.pick(['100-continue', '100-Continue', 'foo', '100-continue, foo', '', 'x100-continue']);
  } else if (r < 0.62) {
    name = g.pick(NODE_KNOWN_FIELDS);
    if (g.chance(0.3)) name = g.chance(0.5) ? name.toLowerCase() : name.toUpperCase();
    value = genValue(g);
  } else if (r < 0.95 || g.clean) {
    name = g.fromChars(TCHAR, 1, 16);
    value = genValue(g);
  } else {
    name = g.pick(['', 'Bad Name', 'Bad\tName', 'Bad\x01', 'Caf\xe9', 'X:Y', '(x)', 'a"b']);
    value = genValue(g);
  }
  const beforeColon = g.bad(0.03) ? g.pick([' ', '\t', '  ']) : '';
  const ows = g.pick(['', ' ', ' ', ' ', '  ', '\t', ' \t ']);
  let line = name + beforeColon + ':' + ows + value + genEol(g, 0.96);
  if (g.bad(0.02)) line += g.pick([' ', '\t']) + 'folded' + '\r\n'; // obs-fold
  return line;
}

function genChunkSize(g: Gen, n: number): string {
  if (g.bad(0.04)) return g.pick(['', 'g', '-1', '+1', ' 1', '1 ', '0x1', 'ffffffffffffffff', '20000000000000', '10000000000000000', '1\t']);
  let s = n.toString(16);
  if (g.chance(0.2)) s = s.toUpperCase();
  if (g.chance(0.1)) s = '0'.repeat(g.int(1, 5)) + s;
  return s;
}

const EXTENSIONS = [';a', ';a=b', ';a="x y"', ';a="\\"q"', ';a=', ';=b', ';;a', ';', '; a', ';a =b', ';a= b', ';a=b"c"', ';a="x"y', ';a="\x01"', ';\x01', ';a=b;c', ';a="\\\x01"', ';a="\xe9"'];

function genChunkedBody(g: Gen): string {
  let s = '';
  const chunks = g.int(0, 4);
  for (let k = 0; k < chunks; k++) {
    const n = g.chance(0.05) ? 256 : g.int(1, 20);
    s += genChunkSize(g, n) + (g.chance(0.2) ? g.pick(g.clean ? EXTENSIONS.slice(0, 3) : EXTENSIONS) : '') + genEol(g, 0.96);
    let data = '';
    for (let b = 0; b < n; b++) data += String.fromCharCode(g.int(0, 255));
    s += data + (!g.bad(0.05) ? '\r\n' : g.pick(['\n', '', 'x\r\n', '\r', '\r\r\n']));
  }
  s += g.pick(['0', '0', '0', '000']) + (g.chance(0.1) ? g.pick(g.clean ? EXTENSIONS.slice(0, 3) : EXTENSIONS) : '') + genEol(g, 0.96);
  const trailers = g.chance(0.8) ? 0 : g.int(1, 2);
  const trailerLines = g.clean ? ['X-T: v\r\n', 'Checksum: abc\r\n', 'X:\r\n'] : TRAILERS;
  for (let k = 0; k < trailers; k++) {
    s += g.pick(trailerLines);
  }
  s += !g.bad(0.07) ? '\r\n' : g.pick(['\n', '', '\r', 'x']);
  if (g.chance(0.1)) s += g.pick(['GET / HTTP/1.1\r\n\r\n', 'junk', '\r\n']);
  return s;
}

const TRAILERS = [
  'X-T: v\r\n', 'Checksum: abc\r\n', 'Content-Length: 0\r\n', 'Transfer-Encoding: x\r\n', 'Transfer-Encoding:\r\n', ' X: y\r\n',
  'X : y\r\n', 'X: a\x01\r\n', 'X: y\n', 'content-length: 1\r\n', 'X:\r\n', 'X: y\r\n z\r\n', 'transfer-encoding: chunked\r\n',
  'Connection: close\r\n', 'Proxy-Connection: x, Close \r\n', 'connection: closed\r\n', 'Connection: close\t\r\n', 'Connection: keep-alive\r\n',
  'Transfer-Encoding: gzip, chunked\r\n', 'Transfer-Encoding: chunked, gzip\r\n', 'Transfer-Encoding: chunk\r\n', 'Connection: clo,close\r\n',
  'Connection: close, x\r\n', 'Connection: Close ,\r\n', 'Transfer-Encoding: chunked,chunked\r\n', 'Transfer-Encoding: chunked , chunked \r\n',
];

const INTERESTING_BYTES = [0x00, 0x01, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x23, 0x2c, 0x3a, 0x3b, 0x3f, 0x40, 0x7f, 0x80, 0xff];

function mutateBytes(g: Gen, input: Buffer): Buffer {
  let b: Buffer = Buffer.from(input);
  const n = g.int(1, 3);
  for (let k = 0; k < n && b.length > 0; k++) {
    const at = g.int(0, b.length - 1);
    const byte = g.chance(0.8) ? g.pick(INTERESTING_BYTES) : g.int(0, 255);
    const op = g.int(0, 4);
    if (op === 0) b[at] = byte;
    else if (op === 1) b = Buffer.concat([b.subarray(0, at), Buffer.from([byte]), b.subarray(at)]);
    else if (op === 2) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    else if (op === 3) {
      const len = g.int(1, 8);
      b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
    } else b[at] = b[at]! ^ 0x20;
  }
  return b;
}

function genRequest(g: Gen): Buffer {
  g.clean = g.chance(0.45);
  let s = g.chance(0.05) ? g.pick(['\r\n', '\n', '\r', '\r\n\r\n', '\n\r']) : '';
  const method = genMethod(g);
  const sep1 = !g.bad(0.1) ? ' ' : g.pick(['  ', '\t', '', '   ']);
  const sep2 = !g.bad(0.07) ? ' ' : g.pick(['  ', '\t', '']);
  s += method + sep1 + genTarget(g, method) + sep2 + genVersion(g) + genEol(g, 0.94);
  const head: GeneratedHead = { chunked: false, contentLength: -1, framing: false };
  const fields = g.int(0, 9);
  for (let k = 0; k < fields; k++) s += genField(g, head);
  if (g.chance(0.01)) for (let k = 0; k < 40; k++) s += `X-Many-${k}: ${k}\r\n`; // > 32 fields: llhttp flushes early
  if (g.chance(0.005)) s += `X-Huge: ${'v'.repeat(g.int(10_000, 70_000))}\r\n`;
  s += genEol(g, 0.97);
  if (head.chunked) s += genChunkedBody(g);
  else if (head.contentLength > 0) s += 'b'.repeat(g.int(0, head.contentLength + 3));
  let buf: Buffer = Buffer.from(s, 'latin1');
  if (g.bad(0.15)) buf = mutateBytes(g, buf);
  if (g.bad(0.05)) buf = buf.subarray(0, g.int(0, buf.length));
  return buf;
}

function genResponse(g: Gen): Buffer {
  g.clean = g.chance(0.3);
  let s = g.chance(0.03) ? g.pick(['\r\n', '\n']) : '';
  const version = !g.bad(0.1) ? g.pick(['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0']) : g.pick(BAD_VERSIONS);
  const status = !g.bad(0.1)
    ? String(g.pick([200, 200, 200, 201, 204, 206, 301, 304, 400, 404, 500, 100, 101, 103, 199, 600, 999]))
    : g.pick(['099', '000', '20', '2000', 'abc', '2 0', '']);
  const reason = g.chance(0.85) ? ' ' + g.pick(['OK', 'Not Found', 'Caf\xe9', 'a\x01b', '', 'Partial Content']) : g.pick(['', ' ', '  x']);
  s += version + (!g.bad(0.03) ? ' ' : g.pick(['  ', '\t', ''])) + status + reason + (!g.bad(0.05) ? '\r\n' : g.pick(['\n', '\r\r', '\r', '\r\r\n']));
  const head: GeneratedHead = { chunked: false, contentLength: -1, framing: false };
  const fields = g.int(0, 7);
  for (let k = 0; k < fields; k++) s += genField(g, head);
  if (g.chance(0.25)) {
    s += 'Transfer-Encoding: chunked\r\n';
    head.chunked = true;
  }
  s += genEol(g, 0.97);
  if (head.chunked) s += genChunkedBody(g);
  else if (head.contentLength > 0) s += 'b'.repeat(g.int(0, head.contentLength + 3));
  let buf: Buffer = Buffer.from(s, 'latin1');
  if (g.bad(0.12)) buf = mutateBytes(g, buf);
  if (g.bad(0.04)) buf = buf.subarray(0, g.int(0, buf.length));
  return buf;
}

// -----------------------------------------------------------------------------------------------------------
// The comparison.

const BIG = 1 << 30;
const FILLER = Buffer.alloc(65_536, 0x78);

interface Stats {
  total: number;
  accepted: number;
  refused: number;
  incomplete: number;
  chunkedBodies: number;
  lengthBodies: number;
  unknownMethod: number;
  unrepresentableVersion: number;
  hugeNumber: number;
  responseOnly: number;
  /** RFC 9112 rules we apply and llhttp does not: two Host lines (§3.2), Transfer-Encoding in HTTP/1.0 (§6.1). */
  stricter: number;
}

function newStats(): Stats {
  return { total: 0, accepted: 0, refused: 0, incomplete: 0, chunkedBodies: 0, lengthBodies: 0, unknownMethod: 0, unrepresentableVersion: 0, hugeNumber: 0, responseOnly: 0, stricter: 0 };
}

class Mismatch extends Error {}

function check(ok: boolean, what: string, detail: () => unknown = () => ''): void {
  if (!ok) throw new Mismatch(`${what} ${JSON.stringify(detail())}`);
}

/** The method token at the start of a request (after the CR/LF llhttp skips), or null. */
function leadingToken(input: Buffer): { start: number; end: number } | null {
  let i = 0;
  while (i < input.length && (input[i] === 0x0d || input[i] === 0x0a)) i++;
  const start = i;
  while (i < input.length && isToken(String.fromCharCode(input[i]!))) i++;
  return i > start ? { start, end: i } : null;
}

/**
 * Is the version of this request line one the API cannot carry (HTTP/0.9 with or without "HTTP/0.9",
 * HTTP/2.0, RTSP/, ICE/), possibly truncated? Then we refuse where llhttp may accept or wait.
 */
function hasUnrepresentableVersion(input: Buffer, isRequest: boolean): boolean {
  const text = input.toString('latin1').replace(/^[\r\n]+/, '');
  if (isRequest) {
    const m = /^[^ ]+ +([^ \r\n]*)([ \r\n])? *([^\r\n]*)/.exec(text);
    if (m === null) return false;
    if (m[2] === '\r' || m[2] === '\n') return true; // `GET /` CRLF: HTTP/0.9
    if (m[2] === undefined) return false;
    return /^(R(T(S(P(\/.*)?)?)?)?|I(C(E(\/.*)?)?)?|HTTP\/0\.9|HTTP\/2\.0)/.test(m[3] ?? '') && (m[3] ?? '').length > 0;
  }
  return /^(R|I|HTTP\/0\.9|HTTP\/2\.0)/.test(text);
}

/** Some chunk-size line in the body has a value above 2^53 − 1 (and below 2^64, where llhttp refuses too). */
function hasHugeChunkSize(body: Buffer): boolean {
  for (const m of body.toString('latin1').matchAll(/(?:^|\n)0*([0-9a-fA-F]{14,16})(?=[;\r])/g)) {
    if (BigInt('0x' + m[1]) > BigInt(Number.MAX_SAFE_INTEGER)) return true;
  }
  return false;
}

/** Compares our framer with llhttp (already past the head) on a chunked body; returns the framer if it ended. */
function compareChunked(ll: Llhttp, body: Buffer, message: 'request' | 'response', g: Gen, stats: Stats): ChunkedFramer | null {
  stats.chunkedBodies++;
  const framer = new ChunkedFramer({ maxLineBytes: 1 << 20, message });
  let end = -1;
  let thrown: unknown = null;
  try {
    // Two pushes at a random split, to exercise carried state (every split is tested separately).
    const cut = g.int(0, body.length);
    end = framer.push(body.subarray(0, cut), 0);
    if (end < 0) {
      const rest = framer.push(body, cut);
      end = rest;
    }
  } catch (e) {
    thrown = e;
  }
  if (thrown !== null) {
    check(thrown instanceof Http1FramingError, 'framer threw something else', () => String(thrown));
    if ((thrown as Error).message.includes('2^53') && hasHugeChunkSize(body)) {
      stats.hugeNumber++;
      return null;
    }
    const r = ll.exec(body);
    check(r.error !== null && ll.completes === 0, 'llhttp accepted a chunked body we refused', () => ({ ours: (thrown as Error).message, completes: ll.completes, r }));
    return null;
  }
  if (end < 0) {
    const r = ll.exec(body);
    check(r.error === null && ll.completes === 0, 'llhttp disagrees on an unfinished chunked body', () => ({ r, completes: ll.completes }));
    check(framer.done === false, 'framer says done without an end');
    return null;
  }
  const r1 = ll.exec(body.subarray(0, end - 1));
  check(r1.error === null && ll.completes === 0, 'llhttp ended or refused the chunked body before our end', () => ({ end, r1, completes: ll.completes }));
  const r2 = ll.exec(body.subarray(end - 1, end));
  check(r2.error === null && ll.completes === 1, 'llhttp did not end the chunked body where we did', () => ({ end, r2, completes: ll.completes }));
  check(framer.done, 'framer not done at its end');
  return framer;
}

/**
 * Checks framing by where llhttp completes the message after the head (`ll` has consumed exactly the head).
 * Returns the framer of a chunked body that ended (its trailers may end the connection), else null.
 */
function compareFraming(ll: Llhttp, framing: RequestHead['framing'], rest: Buffer, message: 'request' | 'response', g: Gen, stats: Stats): ChunkedFramer | null {
  switch (framing.kind) {
    case 'none':
      check(ll.completes === 1, 'llhttp expects a body where we see none', () => ({ completes: ll.completes }));
      return null;
    case 'length': {
      stats.lengthBodies++;
      const n = framing.length;
      if (n === 0) {
        check(ll.completes === 1, 'llhttp expects a body after Content-Length: 0');
        return null;
      }
      check(ll.completes === 0, 'llhttp has no body where we read Content-Length', () => ({ n }));
      let left = n - 1;
      while (left > 0 && n <= 4 * FILLER.length) {
        const take = Math.min(left, FILLER.length);
        ll.exec(FILLER.subarray(0, take));
        left -= take;
      }
      if (n <= 4 * FILLER.length) {
        check(ll.completes === 0, 'llhttp ended the body before Content-Length bytes', () => ({ n }));
        const r = ll.exec(FILLER.subarray(0, 1));
        check(r.error === null && ll.completes === 1, 'llhttp did not end the body at Content-Length bytes', () => ({ n, r }));
      } else {
        const r = ll.exec(FILLER);
        check(r.error === null && ll.completes === 0, 'llhttp ended a long body early', () => ({ n, r }));
      }
      return null;
    }
    case 'chunked':
      check(ll.completes === 0, 'llhttp has no body where we see chunked');
      return compareChunked(ll, rest.length > 0 ? rest : Buffer.from('0\r\n\r\n'), message, g, stats);
    case 'close': {
      check(ll.completes === 0, 'llhttp has no body where we read until close');
      const r = ll.exec(FILLER.subarray(0, 300));
      check(r.error === null && ll.completes === 0, 'llhttp ended a read-until-close body', () => ({ r }));
      const f = ll.finish();
      check(f.error === null && ll.completes === 1, 'llhttp did not end the body at EOF', () => ({ f }));
      return null;
    }
  }
}

/**
 * After a complete message, llhttp's own verdict on the connection (llhttp__after_message_complete, which
 * also sees trailer fields): one more byte is the start of the next message, or "data after close".
 * `ours` is head.keepAlive and not framer.closeConnection. The one allowed difference, on the safe side:
 * Connection trailers of an HTTP/1.0 message, where llhttp lets keep-alive re-open the connection and
 * ignores close; the framer does not know the version and closes on any close option.
 */
function compareKeepAliveAfter(ll: Llhttp, probe: string, ours: boolean, versionMinor: number, trailers: Buffer): void {
  const r = ll.exec(Buffer.from(probe));
  const llKeepAlive = r.error === null;
  if (llKeepAlive && !ours && versionMinor === 0 && /\n(proxy-)?connection:/i.test(trailers.toString('latin1'))) return;
  check(llKeepAlive === ours, 'keep-alive after the message', () => ({ r, ours }));
}

/** Replaces the method token with GET (a method llhttp knows and treats like any non-CONNECT method). */
function withGet(input: Buffer, tok: { start: number; end: number }): Buffer {
  return Buffer.concat([input.subarray(0, tok.start), Buffer.from('GET'), input.subarray(tok.end)]);
}

function sameExceptMethod(a: RequestHeadResult, b: RequestHeadResult, delta: number): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'invalid' && b.kind === 'invalid') return a.error.code === b.error.code && a.error.status === b.error.status;
  if (a.kind === 'head' && b.kind === 'head') {
    const { method: _m1, headBytes: h1, ...rest1 } = a.head;
    const { method: _m2, headBytes: h2, ...rest2 } = b.head;
    return h1 === h2 + delta && JSON.stringify(rest1) === JSON.stringify(rest2);
  }
  return true;
}

function diffRequest(ll: Llhttp, input: Buffer, g: Gen, stats: Stats): void {
  const ours = parseRequestHead(input, 0, BIG);
  stats.total++;
  stats[ours.kind === 'head' ? 'accepted' : ours.kind === 'invalid' ? 'refused' : 'incomplete']++;

  // Allowed disagreement 1: an unknown-but-valid token method. We parse it like any method; llhttp refuses
  // (or waits, on a truncated token). Everything else is compared on the same request with GET.
  const tok = leadingToken(input);
  if (tok !== null) {
    const method = input.toString('latin1', tok.start, tok.end);
    if (!LL_HTTP_METHODS.has(method)) {
      stats.unknownMethod++;
      ll.reset('request');
      ll.exec(input);
      check(
        ll.head === null || (ours.kind === 'invalid' && ours.error.code === 'BAD_VERSION'),
        'llhttp accepted a method it does not know',
        () => ({ method, head: ll.head }),
      );
      const asGet = withGet(input, tok);
      const ours2 = parseRequestHead(asGet, 0, BIG);
      check(sameExceptMethod(ours, ours2, tok.end - tok.start - 3), 'an extension method changed the parse', () => ({ ours, ours2 }));
      if (ours.kind === 'head') check(ours.head.method === method, 'method not as sent', () => ours.head.method);
      diffKnownMethod(ll, asGet, ours2, g, stats);
      return;
    }
  }
  diffKnownMethod(ll, input, ours, g, stats);
}

function diffKnownMethod(ll: Llhttp, input: Buffer, ours: RequestHeadResult, g: Gen, stats: Stats): void {
  ll.reset('request');
  if (ours.kind === 'incomplete') {
    const r = ll.exec(input);
    check(r.error === null && ll.head === null, 'llhttp decided a head we find incomplete', () => ({ r, head: ll.head }));
    return;
  }
  if (ours.kind === 'invalid') {
    // Allowed disagreement 2: a version the API cannot carry.
    if (ours.error.code === 'BAD_VERSION' && hasUnrepresentableVersion(input, true)) {
      stats.unrepresentableVersion++;
      return;
    }
    // Allowed disagreement 3: Content-Length above 2^53 − 1 (llhttp takes up to 2^64 − 1).
    if (ours.error.code === 'BAD_CONTENT_LENGTH' && ours.error.message.includes('2^53')) {
      stats.hugeNumber++;
      check(/content-length:[ \t]*\d{16,20}/i.test(input.toString('latin1')), 'a 2^53 refusal without a huge Content-Length');
      return;
    }
    // Allowed disagreements 6 and 7: two Host field lines (RFC 9112 §3.2: 400) and Transfer-Encoding in an
    // HTTP/1.0 request (§6.1: faulty framing), both of which llhttp accepts.
    if (ours.error.message.startsWith('more than one Host field')) {
      stats.stricter++;
      check((input.toString('latin1').match(/\r\nhost:/gi) ?? []).length >= 2, 'a Host refusal without two Host lines');
      return;
    }
    if (ours.error.message.startsWith('Transfer-Encoding in an HTTP/1.0 request')) {
      stats.stricter++;
      check(/ HTTP\/1\.0\r\n/.test(input.toString('latin1')) && /\r\ntransfer-encoding:/i.test(input.toString('latin1')), 'an HTTP/1.0 TE refusal without both');
      return;
    }
    const r = ll.exec(input);
    const refusedInHead = ll.head === null || (r.error === 'HPE_INVALID_TRANSFER_ENCODING' && ours.error.code === 'BAD_TRANSFER_ENCODING' && ll.completes === 0);
    check(r.error !== null && refusedInHead, 'llhttp accepted a head we refused', () => ({ ours: ours.error, r, head: ll.head }));
    return;
  }
  const head = ours.head;
  const h = head.headBytes;
  const r1 = ll.exec(input.subarray(0, h - 1));
  check(r1.error === null && ll.head === null, 'llhttp refused or ended the head before our end', () => ({ r1, head: ll.head, ours: head }));
  const r2 = ll.exec(input.subarray(h - 1, h));
  check(r2.error === null && ll.head !== null, 'llhttp did not end the head where we did', () => ({ r2, ours: head }));
  const lh = ll.head!;
  check(lh.method === head.method, 'method', () => [lh.method, head.method]);
  check(lh.url === head.target, 'target', () => [lh.url, head.target]);
  check(lh.major === 1 && lh.minor === head.versionMinor, 'version', () => [lh.major, lh.minor, head.versionMinor]);
  check(JSON.stringify(lh.rawHeaders) === JSON.stringify(head.rawHeaders), 'raw headers', () => [lh.rawHeaders, head.rawHeaders]);
  check(lh.keepAlive === head.keepAlive, 'keep-alive', () => [lh.keepAlive, head.keepAlive]);
  // llhttp's flag is also set for every CONNECT; ours only for Connection: upgrade + Upgrade.
  if (head.method !== 'CONNECT') check(lh.upgrade === head.upgrade, 'upgrade', () => [lh.upgrade, head.upgrade]);
  const expected = nodeHeaders(lh.rawHeaders);
  check(JSON.stringify(expected) === JSON.stringify(head.headers), 'headers object', () => [expected, head.headers]);
  const expect100 = head.versionMinor === 1 && typeof expected.expect === 'string' && CONTINUE.test(expected.expect);
  check(expect100 === head.expectContinue, 'expect-continue', () => expected.expect);
  const hasBody = head.framing.kind === 'chunked' || (head.framing.kind === 'length' && head.framing.length > 0);
  if (lh.upgrade && hasBody) {
    // Once llhttp flags an upgrade, Node's binding stops reporting errors (an error on the last byte given
    // looks like success). The body of an upgrade request is framed like any other, so compare it on the
    // same head with the Upgrade field renamed (same length: offsets unchanged) and no upgrade flag.
    const renamed = Buffer.from(input.subarray(0, h));
    for (const m of renamed.toString('latin1').matchAll(/\r\nupgrade:/gi)) renamed[m.index + 8] = 0x78;
    ll.reset('request');
    const r = ll.exec(renamed);
    check(r.error === null && ll.head !== null && !ll.head.upgrade, 'the renamed upgrade request does not parse', () => ({ r, head: ll.head }));
  }
  const framer = compareFraming(ll, head.framing, input.subarray(h), 'request', g, stats);
  // (After CONNECT or an upgrade the bytes that follow belong to another protocol: nothing to probe.)
  if (ll.completes === 1 && !lh.upgrade) compareKeepAliveAfter(ll, 'G', head.keepAlive && !(framer?.closeConnection ?? false), head.versionMinor, input.subarray(h));
}

function diffResponse(ll: Llhttp, input: Buffer, requestMethod: string, g: Gen, stats: Stats): void {
  const ours: ResponseHeadResult = parseResponseHead(input, 0, BIG, requestMethod);
  stats.total++;
  stats[ours.kind === 'head' ? 'accepted' : ours.kind === 'invalid' ? 'refused' : 'incomplete']++;
  ll.reset('response', requestMethod === 'HEAD');
  if (ours.kind === 'incomplete') {
    const r = ll.exec(input);
    check(r.error === null && ll.head === null, 'llhttp decided a response head we find incomplete', () => ({ r, head: ll.head }));
    return;
  }
  if (ours.kind === 'invalid') {
    if (ours.error.code === 'BAD_VERSION' && hasUnrepresentableVersion(input, false)) {
      stats.unrepresentableVersion++;
      return;
    }
    if (ours.error.code === 'BAD_CONTENT_LENGTH' && ours.error.message.includes('2^53')) {
      stats.hugeNumber++;
      return;
    }
    if (ours.error.code === 'BAD_STATUS' && /below 100/.test(ours.error.message)) {
      // Allowed disagreement 4 (responses): llhttp takes 000–099.
      stats.responseOnly++;
      return;
    }
    const r = ll.exec(input);
    check(r.error !== null && ll.head === null, 'llhttp accepted a response head we refused', () => ({ ours: ours.error, r, head: ll.head }));
    return;
  }
  const head: ResponseHead = ours.head;
  const h = head.headBytes;
  const r1 = ll.exec(input.subarray(0, h - 1));
  check(r1.error === null && ll.head === null, 'llhttp refused or ended the response head before our end', () => ({ r1, head: ll.head }));
  const r2 = ll.exec(input.subarray(h - 1, h));
  check(r2.error === null && ll.head !== null, 'llhttp did not end the response head where we did', () => ({ r2 }));
  const lh = ll.head!;
  check(lh.status === head.status, 'status', () => [lh.status, head.status]);
  check(lh.reason === head.reason, 'reason', () => [lh.reason, head.reason]);
  check(lh.major === 1 && lh.minor === head.versionMinor, 'version', () => [lh.major, lh.minor]);
  check(JSON.stringify(lh.rawHeaders) === JSON.stringify(head.rawHeaders), 'raw headers', () => [lh.rawHeaders, head.rawHeaders]);
  check(JSON.stringify(nodeHeaders(lh.rawHeaders)) === JSON.stringify(head.headers), 'headers object');
  const oddInformational = head.status >= 100 && head.status < 200 && ![100, 102, 103].includes(head.status);
  if (oddInformational) {
    // Allowed disagreement 5 (responses): every 1xx has no content here, 101 is not keep-alive.
    stats.responseOnly++;
    check(head.framing.kind === 'none' && (head.status !== 101 || !head.keepAlive), '1xx framing');
    return;
  }
  if (head.versionMinor === 0 && head.rawHeaders.some((name, i) => i % 2 === 0 && name.toLowerCase() === 'transfer-encoding')) {
    // Allowed disagreement 7 (responses): HTTP/1.0 with Transfer-Encoding is faulty framing (RFC 9112 §6.1):
    // read to the close, never kept alive, where llhttp honours chunked.
    stats.stricter++;
    check((head.framing.kind === 'close' || head.framing.kind === 'none') && !head.keepAlive, 'HTTP/1.0 + Transfer-Encoding framing');
    return;
  }
  const framer = compareFraming(ll, head.framing, input.subarray(h), 'response', g, stats);
  // Keep-alive as llhttp decides it after the message (its headers-complete flag is computed before a HEAD
  // response's "no body" is known, and before the trailers).
  if (head.framing.kind === 'close') {
    check(!head.keepAlive && !lh.keepAlive, 'keep-alive on a close-delimited response');
  } else if (ll.completes === 1) {
    compareKeepAliveAfter(ll, 'H', head.keepAlive && !(framer?.closeConnection ?? false), head.versionMinor, input.subarray(h));
  }
}

function runDifferential(kind: 'request' | 'response', count: number, seed: number): Stats {
  const g = new Gen(mulberry32(seed));
  const ll = new Llhttp();
  const stats = newStats();
  for (let n = 0; n < count; n++) {
    const input = kind === 'request' ? genRequest(g) : genResponse(g);
    const method = kind === 'response' ? g.pick(['GET', 'GET', 'POST', 'HEAD']) : '';
    try {
      if (kind === 'request') diffRequest(ll, input, g, stats);
      else diffResponse(ll, input, method, g, stats);
    } catch (e) {
      throw new Error(
        `differential ${kind} #${n} (seed ${seed}${kind === 'response' ? `, request method ${method}` : ''}): ${(e as Error).message}\n` +
          `input: ${JSON.stringify(input.toString('latin1'))}`,
        { cause: e },
      );
    }
  }
  return stats;
}

// -----------------------------------------------------------------------------------------------------------

describe('differential fuzz against Node llhttp (strict)', () => {
  it('knows llhttp method numbers (sanity of the harness)', () => {
    const ll = new Llhttp();
    for (const [index, name] of LL_METHODS.entries()) {
      if (name === 'PRI') continue;
      ll.reset('request');
      ll.exec(Buffer.from(`${name} / ${RTSP_ONLY_METHODS.includes(name) ? 'RTSP' : 'HTTP'}/1.0\r\n\r\n`));
      expect(ll.head?.method, name).toBe(LL_METHODS[index]);
    }
  });

  // A fixed seed; HTTP1_FUZZ_SEED=n explores another stream (the failing seed is in every failure message).
  const baseSeed = Number(process.env.HTTP1_FUZZ_SEED ?? 0x5eed1);

  it('agrees on 100,000 generated requests', () => {
    const seed = baseSeed;
    const stats = runDifferential('request', 100_000, seed);
    console.info(`http1 differential (requests, seed ${seed}): ${JSON.stringify(stats)}`);
    // The generator must keep producing a useful mix (a regression here means the fuzz went blind).
    expect(stats.accepted).toBeGreaterThan(25_000);
    expect(stats.refused).toBeGreaterThan(25_000);
    expect(stats.incomplete).toBeGreaterThan(1_000);
    expect(stats.chunkedBodies).toBeGreaterThan(5_000);
    expect(stats.lengthBodies).toBeGreaterThan(3_000);
    expect(stats.unknownMethod).toBeGreaterThan(10_000);
  }, 60_000);

  it('agrees on 5,000 generated responses', () => {
    const seed = baseSeed + 1;
    const stats = runDifferential('response', 5_000, seed);
    console.info(`http1 differential (responses, seed ${seed}): ${JSON.stringify(stats)}`);
    expect(stats.accepted).toBeGreaterThan(1_500);
    expect(stats.refused).toBeGreaterThan(1_000);
    expect(stats.chunkedBodies).toBeGreaterThan(200);
  }, 30_000);
});

describe('allowed disagreements with llhttp, asserted explicitly', () => {
  function llRequest(text: string): { head: LlHead | null; error: string | null } {
    const ll = new Llhttp();
    ll.reset('request');
    const r = ll.exec(Buffer.from(text, 'latin1'));
    return { head: ll.head, error: r.error };
  }

  it.each(['CCM_POST', 'BITS_POST', 'RPC_IN_DATA', 'X-MS-ENUMATTS', 'get', 'DESCRIBE', 'PLAY'])('%s: we accept, llhttp refuses', (method) => {
    const text = `${method} /ccm_system/request HTTP/1.1\r\nHost: sccm.example\r\nContent-Length: 0\r\n\r\n`;
    const ours = parseRequestHead(Buffer.from(text), 0, 16384);
    expect(ours.kind).toBe('head');
    if (ours.kind === 'head') expect(ours.head.method).toBe(method);
    const ll = llRequest(text);
    expect(ll.head).toBeNull();
    expect(ll.error).toMatch(/^HPE_INVALID_(METHOD|CONSTANT)$/);
  });

  it.each([
    ['GET / HTTP/0.9\r\n\r\n', 0, 9],
    ['GET / HTTP/2.0\r\n\r\n', 2, 0],
    ['GET /\r\n\r\n', 0, 9],
    ['GET / RTSP/1.0\r\n\r\n', 1, 0],
    ['SOURCE / ICE/1.0\r\n\r\n', 1, 0],
  ])('%j: llhttp accepts, we refuse with BAD_VERSION', (text, major, minor) => {
    const ours = parseRequestHead(Buffer.from(text), 0, 16384);
    expect(ours.kind === 'invalid' && ours.error.code).toBe('BAD_VERSION');
    const ll = llRequest(text);
    expect([ll.head?.major, ll.head?.minor]).toEqual([major, minor]);
  });

  it('Content-Length above 2^53 - 1: llhttp accepts up to 2^64 - 1, we refuse', () => {
    for (const n of ['9007199254740992', '18446744073709551615']) {
      const text = `POST / HTTP/1.1\r\nContent-Length: ${n}\r\n\r\n`;
      const ours = parseRequestHead(Buffer.from(text), 0, 16384);
      expect(ours.kind === 'invalid' && ours.error.code).toBe('BAD_CONTENT_LENGTH');
      expect(llRequest(text).head?.rawHeaders).toEqual(['Content-Length', n]);
    }
    const max = parseRequestHead(Buffer.from('POST / HTTP/1.1\r\nContent-Length: 9007199254740991\r\n\r\n'), 0, 16384);
    expect(max.kind === 'head' && max.head.framing).toEqual({ kind: 'length', length: Number.MAX_SAFE_INTEGER });
  });

  it('chunk-size above 2^53 - 1: llhttp accepts up to 2^64 - 1, we refuse', () => {
    const ll = new Llhttp();
    ll.reset('request');
    const r = ll.exec(Buffer.from('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20000000000000\r\nab'));
    expect(r.error).toBeNull();
    expect(() => new ChunkedFramer().push(Buffer.from('20000000000000\r\n'), 0)).toThrow(/2\^53/);
    expect(new ChunkedFramer().push(Buffer.from('1fffffffffffff\r\nab'), 0)).toBe(-1);
  });

  it('responses: status below 100 and odd 1xx', () => {
    const ll = new Llhttp();
    ll.reset('response');
    ll.exec(Buffer.from('HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n'));
    expect(ll.head?.status).toBe(99);
    const low = parseResponseHead(Buffer.from('HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n'), 0, 16384, 'GET');
    expect(low.kind === 'invalid' && low.error.code).toBe('BAD_STATUS');

    ll.reset('response');
    ll.exec(Buffer.from('HTTP/1.1 150 Odd\r\nContent-Length: 3\r\n\r\n'));
    expect(ll.completes).toBe(0); // llhttp waits for 3 bytes of content
    const odd = parseResponseHead(Buffer.from('HTTP/1.1 150 Odd\r\nContent-Length: 3\r\n\r\n'), 0, 16384, 'GET');
    expect(odd.kind === 'head' && odd.head.framing).toEqual({ kind: 'none' }); // RFC 9110 §15.2

    ll.reset('response');
    ll.exec(Buffer.from('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n'));
    expect(ll.head?.keepAlive).toBe(true);
    const sw = parseResponseHead(Buffer.from('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n'), 0, 16384, 'GET');
    expect(sw.kind === 'head' && sw.head.keepAlive).toBe(false);
  });
});

// -----------------------------------------------------------------------------------------------------------
// Properties.

const REQUEST_KINDS = new Set(['incomplete', 'head', 'invalid']);

function parseRequestSafely(buf: Buffer, offset: number, max: number): RequestHeadResult {
  let r: RequestHeadResult;
  try {
    r = parseRequestHead(buf, offset, max);
  } catch (e) {
    throw new Error(`parseRequestHead threw on ${JSON.stringify(buf.toString('latin1'))}: ${String(e)}`, { cause: e });
  }
  expect(REQUEST_KINDS.has(r.kind)).toBe(true);
  if (r.kind === 'head') {
    expect(r.head.headBytes).toBeGreaterThan(0);
    expect(r.head.headBytes).toBeLessThanOrEqual(Math.min(max, buf.length - offset));
  }
  if (r.kind === 'incomplete') expect(buf.length - offset).toBeLessThan(max);
  if (r.kind === 'invalid') {
    expect(r.error.message.length).toBeGreaterThan(0);
    expect([400, 431, 501, 505]).toContain(r.error.status);
  }
  return r;
}

function parseResponseSafely(buf: Buffer, max: number, method: string): ResponseHeadResult {
  let r: ResponseHeadResult;
  try {
    r = parseResponseHead(buf, 0, max, method);
  } catch (e) {
    throw new Error(`parseResponseHead threw: ${String(e)}`, { cause: e });
  }
  expect(REQUEST_KINDS.has(r.kind)).toBe(true);
  if (r.kind === 'head') expect(r.head.headBytes).toBeLessThanOrEqual(max);
  if (r.kind === 'incomplete') expect(buf.length).toBeLessThan(max);
  if (r.kind === 'invalid') expect(r.error.status).toBe(502);
  return r;
}

const VALID_REQUESTS = [
  'GET http://example.com/index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n',
  'CCM_POST /ccm_system/request HTTP/1.1\r\nHost: sccm\r\nContent-Length: 12\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n',
  '\r\nPOST /upload HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n',
  'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic dXNlcjpwdw==\r\n\r\n',
];

/** Byte strings near HTTP: fragments of messages and the bytes that break them. */
const nearHttp = fc
  .array(
    fc.oneof(
      fc.constantFrom('GET', 'POST', 'CCM_POST', 'CONNECT', ' ', '/', 'http://a', 'HTTP/1.1', 'HTTP/1.0', '\r\n', '\n', '\r', ':', ': ', 'Host', 'Content-Length', 'Transfer-Encoding', 'chunked', 'close', '0', '5', ',', '\t', '\x00', '\x7f', '\xff'),
      fc.string({ maxLength: 6 }),
    ),
    { maxLength: 40 },
  )
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));

describe('parseRequestHead / parseResponseHead properties', () => {
  it('never throws on arbitrary bytes, and respects maxHeaderBytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1024 }), fc.integer({ min: 1, max: 2048 }), fc.nat(8), (bytes, max, offset) => {
        const buf = Buffer.from(bytes);
        parseRequestSafely(buf, Math.min(offset, buf.length), max);
        parseResponseSafely(buf, max, 'GET');
      }),
      { numRuns: 5000 },
    );
  });

  it('never throws on near-HTTP byte strings, at any limit', () => {
    fc.assert(
      fc.property(nearHttp, fc.integer({ min: 1, max: 400 }), (buf, max) => {
        parseRequestSafely(buf, 0, max);
        parseRequestSafely(buf, 0, BIG);
        parseResponseSafely(buf, max, 'HEAD');
      }),
      { numRuns: 5000 },
    );
  });

  it('is incomplete (never invalid) for every prefix of a valid head, and too large only past the limit', () => {
    for (const text of VALID_REQUESTS) {
      const buf = Buffer.from(text, 'latin1');
      for (let n = 0; n < buf.length; n++) expect(parseRequestSafely(buf.subarray(0, n), 0, BIG).kind, `prefix ${n}`).toBe('incomplete');
      const full = parseRequestSafely(buf, 0, BIG);
      expect(full.kind).toBe('head');
      expect(parseRequestSafely(buf, 0, buf.length).kind).toBe('head');
      const over = parseRequestSafely(buf, 0, buf.length - 1);
      expect(over.kind === 'invalid' && over.error.code).toBe('HEADERS_TOO_LARGE');
      expect(over.kind === 'invalid' && over.error.status).toBe(431);
    }
  });

  it('finds the same head at any offset, with anything after it', () => {
    fc.assert(
      fc.property(fc.constantFrom(...VALID_REQUESTS), fc.uint8Array({ maxLength: 16 }), fc.uint8Array({ maxLength: 64 }), (text, before, after) => {
        const head = Buffer.from(text, 'latin1');
        const buf = Buffer.concat([before, head, after]);
        const alone = parseRequestSafely(head, 0, BIG);
        const inside = parseRequestSafely(buf, before.length, BIG);
        expect(inside).toEqual(alone);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('ChunkedFramer properties', () => {
  const VALID_BODIES = [
    '5\r\nhello\r\n0\r\n\r\n',
    '3;ext=1\r\nabc\r\nA;a="q\\"d";b\r\n0123456789\r\n0\r\nChecksum: x\r\nX-T: y\r\n\r\n',
    '000\r\n\r\n',
    '1\r\n\r\r\n2\r\n\n\n\r\n0;last\r\n\r\n',
    '2\r\nab\r\n0\r\nConnection: TE, close\r\nProxy-Connection: closed\r\nTransfer-Encoding: gzip,chunked\r\n\r\n',
  ];

  function outcome(pushes: (f: ChunkedFramer) => number): string {
    const f = new ChunkedFramer({ message: 'response' });
    try {
      return `end:${pushes(f)} close:${String(f.closeConnection)}`;
    } catch (e) {
      expect(e).toBeInstanceOf(Http1FramingError);
      expect((e as Http1FramingError).code).toBe('BAD_CHUNK');
      return 'error';
    }
  }

  it('throws only Http1FramingError on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        outcome((f) => f.push(Buffer.from(bytes), 0));
      }),
      { numRuns: 5000 },
    );
  });

  it('gives the same answer for every split of near-valid bodies into pieces', () => {
    const nearBody = fc
      .tuple(fc.constantFrom(...VALID_BODIES), fc.nat(), fc.constantFrom(0x00, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x3b, 0x3d, 0x30, 0x41, 0x7f, 0xff), fc.boolean())
      .map(([text, at, byte, mutate]) => {
        const b = Buffer.from(text, 'latin1');
        if (mutate) b[at % b.length] = byte;
        return b;
      });
    fc.assert(
      fc.property(nearBody, fc.array(fc.nat(), { maxLength: 6 }), (body, cuts) => {
        const whole = outcome((f) => f.push(body, 0));
        const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
        const split = outcome((f) => {
          let start = 0;
          for (const p of [...points, body.length]) {
            // Each piece is its own buffer, as from a socket.
            const piece = Buffer.from(body.subarray(start, p));
            const end = f.push(piece, 0);
            if (end >= 0) return start + end;
            start = p;
          }
          return -1;
        });
        expect(split).toBe(whole);
      }),
      { numRuns: 3000 },
    );
  });
});

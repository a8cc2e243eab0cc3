/**
 * Table tests for the HTTP/1.x head parsers, by RFC 9112 section. Where llhttp (Node 20, strict) does
 * something the RFC leaves open or gets wrong, the case says so: the parser matches llhttp on purpose
 * (http1.fuzz.test.ts proves it on generated input), and these rows pin the behaviour down by name.
 */
import { describe, it, expect } from 'vitest';
import { isToken, parseRequestHead, parseResponseHead } from '../../../src/parsers/http1.js';
import type { Http1ErrorCode, RequestHead, ResponseHead } from '../../../src/parsers/http1.js';

const MAX = 16_384;

function req(text: string, max = MAX): ReturnType<typeof parseRequestHead> {
  return parseRequestHead(Buffer.from(text, 'latin1'), 0, max);
}

function head(text: string): RequestHead {
  const r = req(text);
  if (r.kind !== 'head') throw new Error(`expected a head, got ${JSON.stringify(r)}`);
  return r.head;
}

function refusal(text: string): { code: Http1ErrorCode; status: number } {
  const r = req(text);
  if (r.kind !== 'invalid') throw new Error(`expected a refusal, got ${JSON.stringify(r)}`);
  return { code: r.error.code, status: r.error.status };
}

function res(text: string, method = 'GET'): ResponseHead {
  const r = parseResponseHead(Buffer.from(text, 'latin1'), 0, MAX, method);
  if (r.kind !== 'head') throw new Error(`expected a response head, got ${JSON.stringify(r)}`);
  return r.head;
}

function resRefusal(text: string, method = 'GET'): Http1ErrorCode {
  const r = parseResponseHead(Buffer.from(text, 'latin1'), 0, MAX, method);
  if (r.kind !== 'invalid') throw new Error(`expected a refusal, got ${JSON.stringify(r)}`);
  expect(r.error.status).toBe(502);
  return r.error.code;
}

describe('request line (RFC 9112 §3)', () => {
  it('parses a typical proxy request', () => {
    const text =
      'GET http://example.com/a/b?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nProxy-Connection: Keep-Alive\r\n\r\nBODY';
    const h = head(text);
    expect(h).toEqual({
      method: 'GET',
      target: 'http://example.com/a/b?q=1',
      versionMinor: 1,
      rawHeaders: ['Host', 'example.com', 'User-Agent', 'curl/8.5.0', 'Accept', '*/*', 'Proxy-Connection', 'Keep-Alive'],
      headers: { host: 'example.com', 'user-agent': 'curl/8.5.0', accept: '*/*', 'proxy-connection': 'Keep-Alive' },
      framing: { kind: 'none' },
      keepAlive: true,
      expectContinue: false,
      upgrade: false,
      headBytes: text.length - 4,
    });
  });

  // RFC 9110 §9.1: methods are an open set of tokens; llhttp knows a fixed list. The reason this parser exists.
  it.each(['CCM_POST', 'BITS_POST', 'RPC_IN_DATA', 'X-MS-ENUMATTS', 'get', 'M-SEARCH', 'SOURCE', 'QUERY', "A!#$%&'*+-.^_`|~9"])(
    'accepts the method %s as a token, case kept',
    (method) => {
      expect(head(`${method} /x HTTP/1.1\r\n\r\n`).method).toBe(method);
    },
  );

  it.each([
    ['an empty method', ' / HTTP/1.1\r\n\r\n', 'BAD_METHOD'],
    ['a tab after the method', 'GET\t/ HTTP/1.1\r\n\r\n', 'BAD_METHOD'],
    ['a non-token character in the method', 'GE(T / HTTP/1.1\r\n\r\n', 'BAD_METHOD'],
    ['obs-text in the method', 'G\xe9T / HTTP/1.1\r\n\r\n', 'BAD_METHOD'],
    ['PRI, the HTTP/2 preface (RFC 9113 §3.4)', 'PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n', 'BAD_METHOD'],
  ] as const)('refuses %s', (_intent, text, code) => {
    expect(refusal(text).code).toBe(code);
  });

  it('accepts several spaces around the target, as llhttp does (RFC 9112 §3 allows a single SP)', () => {
    expect(head('GET   /a   HTTP/1.1\r\n\r\n').target).toBe('/a');
  });

  it('skips empty lines before the request line and counts them (RFC 9112 §2.2; llhttp skips any CR/LF run)', () => {
    const h = head('\r\n\r\n\nGET / HTTP/1.1\r\n\r\n');
    expect(h.headBytes).toBe(23);
  });

  // RFC 9112 §3.2 request-target forms, as llhttp's URL automaton takes them.
  it.each([
    ['origin-form', 'GET', '/where?q=now'],
    ['absolute-form', 'GET', 'http://www.example.org/pub/WWW/TheProject.html'],
    ['absolute-form with userinfo, IPv6 and port', 'GET', 'http://u:p@[::1]:8080/'],
    ['absolute-form without a path', 'GET', 'HTTP://example.com'],
    ['absolute-form with an empty authority (llhttp accepts)', 'GET', 'http:///x'],
    ['authority-form for CONNECT', 'CONNECT', 'www.example.com:443'],
    ['asterisk-form', 'OPTIONS', '*'],
    ['a fragment (not allowed by RFC 9112 §3.2, accepted by llhttp)', 'GET', '/a#frag?x#y'],
    ['"a@b@c" in the authority (only "@@" is refused by llhttp)', 'GET', 'http://a@b@c/'],
    ['URL characters llhttp allows in paths', 'GET', '/"<>\\^`{|}[]%'],
  ])('accepts %s', (_intent, method, target) => {
    expect(head(`${method} ${target} HTTP/1.1\r\n\r\n`).target).toBe(target);
  });

  it.each([
    ['authority-form for a method other than CONNECT', 'GET example.com:80 HTTP/1.1\r\n\r\n'],
    ['a scheme with digits or "+" (llhttp takes ALPHA only)', 'GET svn+ssh://h/ HTTP/1.1\r\n\r\n'],
    ['a scheme without "//"', 'GET http:x HTTP/1.1\r\n\r\n'],
    ['"@@" in the authority', 'GET http://a@@b/ HTTP/1.1\r\n\r\n'],
    ['a control character in the path', 'GET /a\x01b HTTP/1.1\r\n\r\n'],
    ['DEL in the path', 'GET /a\x7f HTTP/1.1\r\n\r\n'],
    ['obs-text in the path', 'GET /caf\xe9 HTTP/1.1\r\n\r\n'],
    ['a tab in the path', 'GET /a\tb HTTP/1.1\r\n\r\n'],
    ['a target starting with a digit', 'GET 1/ HTTP/1.1\r\n\r\n'],
    ['"#" in the authority', 'GET http://a#b HTTP/1.1\r\n\r\n'],
  ])('refuses %s with BAD_TARGET', (_intent, text) => {
    expect(refusal(text)).toEqual({ code: 'BAD_TARGET', status: 400 });
  });

  // RFC 9112 §2.3 HTTP-version = HTTP-name "/" DIGIT "." DIGIT
  it.each([
    ['HTTP/1.0', 0],
    ['HTTP/1.1', 1],
  ] as const)('accepts %s', (version, minor) => {
    expect(head(`GET / ${version}\r\n\r\n`).versionMinor).toBe(minor);
  });

  it.each([
    ['HTTP/2.0', 505],
    ['HTTP/0.9', 505],
    ['HTTP/1.2', 505],
    ['HTTP/3.0', 505],
    ['HTTP/1.10', 400],
    ['HTTP/11', 400],
    ['http/1.1', 400],
    ['RTSP/1.0', 400],
    ['HTTP/1.1 ', 400],
  ] as const)('refuses %j with BAD_VERSION %i', (version, status) => {
    expect(refusal(`GET / ${version}\r\n\r\n`)).toEqual({ code: 'BAD_VERSION', status });
  });

  it('refuses an HTTP/0.9 request line (no version; RFC 9112 Appendix C.1)', () => {
    expect(refusal('GET /\r\n\r\n')).toEqual({ code: 'BAD_VERSION', status: 400 });
  });
});

describe('line endings (RFC 9112 §2.2: CRLF only, as llhttp strict)', () => {
  it.each([
    ['a bare LF after the request line', 'GET / HTTP/1.1\n\r\n'],
    ['a CR without LF after the request line', 'GET / HTTP/1.1\r\r\n\r\n'],
    ['a bare LF after a field', 'GET / HTTP/1.1\r\nA: b\n\r\n'],
    ['a CR without LF after a field', 'GET / HTTP/1.1\r\nA: b\rX\r\n\r\n'],
    ['a bare LF ending the head', 'GET / HTTP/1.1\r\nA: b\r\n\n'],
    ['a CR without LF ending the head', 'GET / HTTP/1.1\r\nA: b\r\n\rX'],
  ])('refuses %s with BAD_LINE_ENDING', (_intent, text) => {
    expect(refusal(text)).toEqual({ code: 'BAD_LINE_ENDING', status: 400 });
  });
});

describe('field lines (RFC 9112 §5, RFC 9110 §5.5)', () => {
  it('trims OWS around values and keeps names as sent, like Node rawHeaders', () => {
    expect(head('GET / HTTP/1.1\r\nX-A: \t v a l \t \r\nx-b:v\r\nX-Empty:\r\nX-Ws:   \r\n\r\n').rawHeaders).toEqual([
      'X-A',
      'v a l',
      'x-b',
      'v',
      'X-Empty',
      '',
      'X-Ws',
      '',
    ]);
  });

  it('keeps obs-text in values as latin1 (RFC 9110 §5.5 obs-text)', () => {
    expect(head('GET / HTTP/1.1\r\nX: caf\xe9 \xff\r\n\r\n').rawHeaders[1]).toBe('caf\xe9 \xff');
  });

  it.each([
    ['whitespace between name and colon (§5.1)', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n'],
    ['whitespace before a special field colon (§5.1)', 'GET / HTTP/1.1\r\nContent-Length : 1\r\n\r\n'],
    ['obs-fold (§5.2)', 'GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n'],
    ['obs-fold after an empty value (§5.2)', 'GET / HTTP/1.1\r\nX:\r\n b\r\n\r\n'],
    ['a space at the start of the first field line (§2.2)', 'GET / HTTP/1.1\r\n Host: a\r\n\r\n'],
    ['a tab at the start of a field line', 'GET / HTTP/1.1\r\n\tHost: a\r\n\r\n'],
    ['an empty field name', 'GET / HTTP/1.1\r\n: a\r\n\r\n'],
    ['a non-token character in a name', 'GET / HTTP/1.1\r\nX(y): a\r\n\r\n'],
    ['a field line without a colon', 'GET / HTTP/1.1\r\nHost\r\n\r\n'],
    ['NUL in a value', 'GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n'],
    ['another control character in a value', 'GET / HTTP/1.1\r\nX: a\x1bb\r\n\r\n'],
    ['DEL in a value', 'GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n'],
  ])('refuses %s with BAD_HEADER', (_intent, text) => {
    expect(refusal(text)).toEqual({ code: 'BAD_HEADER', status: 400 });
  });

  it('combines duplicates exactly as Node IncomingMessage does', () => {
    const h = head(
      'GET / HTTP/1.1\r\nHost: a\r\nCookie: x=1\r\ncookie: y=2\r\nSet-Cookie: s1\r\nSet-Cookie: s2\r\n' +
        'Accept: a\r\nAccept: b\r\nUser-Agent: u1\r\nUser-Agent: u2\r\nX-Y: 1\r\nx-y: 2\r\n__proto__: p\r\nconstructor: c\r\n\r\n',
    );
    expect(h.headers).toEqual({ host: 'a', cookie: 'x=1; y=2', 'set-cookie': ['s1', 's2'], accept: 'a, b', 'user-agent': 'u1', 'x-y': '1, 2', constructor: 'c' });
    expect(Object.prototype.hasOwnProperty.call(h.headers, '__proto__')).toBe(false);
    expect(h.rawHeaders).toContain('__proto__');
  });

  it.each([
    ['two Host lines', 'GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    ['two Host lines in other cases', 'GET http://a/ HTTP/1.1\r\nhost: a\r\nHOST: a\r\n\r\n'],
    ['an empty Host after a Host', 'GET http://a/ HTTP/1.1\r\nHost: a\r\nHost:\r\n\r\n'],
    ['two Host lines in HTTP/1.0', 'GET http://a/ HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n'],
  ])('refuses %s with 400 (RFC 9112 §3.2)', (_intent, text) => {
    expect(refusal(text)).toEqual({ code: 'BAD_HEADER', status: 400 });
  });

  it('takes one Host line, and a response may carry any number (the rule is for requests)', () => {
    expect(head('GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n').headers.host).toBe('a');
    expect(res('HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n').status).toBe(200);
  });

  it('handles more fields than Node passes in one batch (32)', () => {
    const fields = Array.from({ length: 100 }, (_, k) => `X-${k}: ${k}\r\n`).join('');
    const h = head(`GET / HTTP/1.1\r\n${fields}\r\n`);
    expect(h.rawHeaders).toHaveLength(200);
    expect(h.headers['x-99']).toBe('99');
  });
});

describe('message body length (RFC 9112 §6)', () => {
  it.each([
    ['no framing field: no body (§6.3 item 7)', 'POST / HTTP/1.1\r\n\r\n', { kind: 'none' }],
    ['Content-Length (§6.3 item 6)', 'POST / HTTP/1.1\r\nContent-Length: 42\r\n\r\n', { kind: 'length', length: 42 }],
    ['Content-Length: 0', 'POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n', { kind: 'length', length: 0 }],
    ['Content-Length with leading zeros and trailing spaces', 'POST / HTTP/1.1\r\nContent-Length: \t007  \r\n\r\n', { kind: 'length', length: 7 }],
    ['Content-Length 2^53 - 1', 'POST / HTTP/1.1\r\nContent-Length: 9007199254740991\r\n\r\n', { kind: 'length', length: 9007199254740991 }],
    ['chunked (§6.3 item 4)', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n', { kind: 'chunked' }],
    ['chunked in any case, with trailing spaces', 'POST / HTTP/1.1\r\nTransfer-Encoding: CHUNKED  \r\n\r\n', { kind: 'chunked' }],
    ['chunked as the final coding of a list', 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip,\tchunked\r\n\r\n', { kind: 'chunked' }],
    ['chunked in a second Transfer-Encoding field', 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n', { kind: 'chunked' }],
    ['an empty Transfer-Encoding after chunked (llhttp ignores empty TE values)', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n', { kind: 'chunked' }],
    ['CONNECT ignores Content-Length (the rest is the tunnel)', 'CONNECT a:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\n', { kind: 'none' }],
    ['an upgrade request without a body skips the TE check (llhttp quirk)', 'GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\nTransfer-Encoding: gzip\r\n\r\n', { kind: 'none' }],
    ['an empty Transfer-Encoding before Content-Length (llhttp quirk)', 'POST / HTTP/1.1\r\nTransfer-Encoding:\r\nContent-Length: 3\r\n\r\n', { kind: 'length', length: 3 }],
  ] as const)('%s', (_intent, text, framing) => {
    expect(head(text).framing).toEqual(framing);
  });

  it.each([
    ['Content-Length and Transfer-Encoding (§6.3 item 3)', 'POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', 'AMBIGUOUS_FRAMING', 400],
    ['Transfer-Encoding and Content-Length', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n', 'AMBIGUOUS_FRAMING', 400],
    ['Content-Length then an empty Transfer-Encoding', 'POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n\r\n', 'AMBIGUOUS_FRAMING', 400],
    ['two Content-Length fields, even equal (§6.3 item 5)', 'POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n', 'BAD_CONTENT_LENGTH', 400],
    ['a Content-Length list', 'POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n', 'BAD_CONTENT_LENGTH', 400],
    ['an empty Content-Length', 'POST / HTTP/1.1\r\nContent-Length:\r\nX: y\r\n\r\n', 'BAD_CONTENT_LENGTH', 400],
    ['a signed Content-Length', 'POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n', 'BAD_CONTENT_LENGTH', 400],
    ['a hex Content-Length', 'POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n', 'BAD_CONTENT_LENGTH', 400],
    ['a tab after the Content-Length digits (llhttp allows spaces only)', 'POST / HTTP/1.1\r\nContent-Length: 5\t\r\n\r\n', 'BAD_CONTENT_LENGTH', 400],
    ['Content-Length above 2^53 - 1', 'POST / HTTP/1.1\r\nContent-Length: 9007199254740992\r\n\r\n', 'BAD_CONTENT_LENGTH', 400],
    ['chunked not final (§6.3 item 4)', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 'BAD_TRANSFER_ENCODING', 400],
    ['chunked twice', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', 'BAD_TRANSFER_ENCODING', 400],
    ['a second Transfer-Encoding after chunked', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n', 'BAD_TRANSFER_ENCODING', 400],
    ['"chunked" then a tab (llhttp does not take it as chunked)', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\t\r\n\r\n', 'BAD_TRANSFER_ENCODING', 400],
    ['a coding that is not chunked (§6.1: 501)', 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n', 'BAD_TRANSFER_ENCODING', 501],
    ['identity (no longer a coding)', 'POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n', 'BAD_TRANSFER_ENCODING', 501],
    ['Transfer-Encoding in HTTP/1.0 (§6.1: faulty framing)', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 'BAD_TRANSFER_ENCODING', 400],
    ['Transfer-Encoding with Content-Length in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n', 'AMBIGUOUS_FRAMING', 400],
  ] as const)('refuses %s', (_intent, text, code, status) => {
    expect(refusal(text)).toEqual({ code, status });
  });
});

describe('connection persistence (RFC 9112 §9.3), expectations and upgrade', () => {
  it.each([
    ['HTTP/1.1 by default', 'GET / HTTP/1.1\r\n\r\n', true],
    ['HTTP/1.1 with close', 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n', false],
    ['HTTP/1.1 with close in a list, any case', 'GET / HTTP/1.1\r\nConnection: TE, CLOSE \r\n\r\n', false],
    ['Proxy-Connection: close (llhttp treats it as Connection)', 'GET / HTTP/1.1\r\nProxy-Connection: close\r\n\r\n', false],
    ['"closed" is not close', 'GET / HTTP/1.1\r\nConnection: closed\r\n\r\n', true],
    ['"foo close" is one option, not close', 'GET / HTTP/1.1\r\nConnection: foo close\r\n\r\n', true],
    ['close followed by a tab is not seen by llhttp 9.3 (fixed in 9.4)', 'GET / HTTP/1.1\r\nConnection: close\t\r\n\r\n', true],
    ['HTTP/1.0 by default', 'GET / HTTP/1.0\r\n\r\n', false],
    ['HTTP/1.0 with keep-alive', 'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n', true],
    ['HTTP/1.0 with keep-alive and close (llhttp: keep-alive wins in 1.0)', 'GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n', true],
  ])('%s', (_intent, text, keepAlive) => {
    expect(head(text).keepAlive).toBe(keepAlive);
  });

  it.each([
    ['Expect: 100-continue in HTTP/1.1 (RFC 9110 §10.1.1)', 'POST / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n', true],
    ['a list with 100-continue, as Node matches it', 'POST / HTTP/1.1\r\nExpect: foo, 100-continue\r\n\r\n', true],
    ['another expectation', 'POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n', false],
    ['100-continue in HTTP/1.0 (ignored, RFC 9110 §10.1.1)', 'POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n', false],
  ])('expectContinue: %s', (_intent, text, expected) => {
    expect(head(text).expectContinue).toBe(expected);
  });

  it.each([
    ['Connection: upgrade + Upgrade', 'GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', true],
    ['Upgrade without Connection: upgrade', 'GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n', false],
    ['Connection: upgrade with an empty Upgrade', 'GET / HTTP/1.1\r\nUpgrade: \r\nConnection: upgrade\r\n\r\n', false],
    ['CONNECT alone', 'CONNECT a:443 HTTP/1.1\r\n\r\n', false],
  ])('upgrade: %s', (_intent, text, expected) => {
    expect(head(text).upgrade).toBe(expected);
  });
});

describe('incomplete, limits and offsets', () => {
  it('is incomplete until the empty line, and never past maxHeaderBytes', () => {
    const text = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    expect(req(text.slice(0, -1)).kind).toBe('incomplete');
    expect(req(text, text.length).kind).toBe('head');
    const tooLarge = req(text, text.length - 1);
    expect(tooLarge.kind === 'invalid' && tooLarge.error).toMatchObject({ code: 'HEADERS_TOO_LARGE', status: 431 });
    // Waiting for more bytes never goes beyond the limit either.
    const waiting = req('GET / HTTP/1.1\r\nX: aaaaaaaaaaaaaaaa', 20);
    expect(waiting.kind === 'invalid' && waiting.error.code).toBe('HEADERS_TOO_LARGE');
  });

  it('refuses as soon as the offending byte arrives, before the head ends', () => {
    expect(req('GET / HTTP/1.1\r\nX: a\x00').kind).toBe('invalid');
    expect(req('GET / HTTP/1.1\r\nTransfer-Encoding: chunked ,').kind).toBe('invalid');
  });

  it('parses at an offset and stops at the empty line (pipelining)', () => {
    const first = 'GET /1 HTTP/1.1\r\n\r\n';
    const buf = Buffer.from(`junk${first}GET /2 HTTP/1.1\r\n\r\n`);
    const r = parseRequestHead(buf, 4, MAX);
    expect(r.kind === 'head' && [r.head.target, r.head.headBytes]).toEqual(['/1', first.length]);
    const next = parseRequestHead(buf, 4 + first.length, MAX);
    expect(next.kind === 'head' && next.head.target).toBe('/2');
  });

  it('is incomplete at an offset at or past the end of the buffer', () => {
    expect(parseRequestHead(Buffer.from('GET'), 3, MAX).kind).toBe('incomplete');
  });
});

describe('status line (RFC 9112 §4) and response framing (RFC 9112 §6.3)', () => {
  it('parses a status line', () => {
    const h = res('HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nSet-Cookie: a\r\n\r\n');
    expect(h).toMatchObject({ status: 404, reason: 'Not Found', versionMinor: 1, framing: { kind: 'length', length: 9 }, keepAlive: true });
    expect(h.headers['set-cookie']).toEqual(['a']);
  });

  it.each([
    ['no reason phrase, no space', 'HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n', ''],
    ['an empty reason phrase', 'HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n', ''],
    ['control characters and obs-text in the reason (llhttp takes any byte but CR/LF)', 'HTTP/1.1 200 a\x01\xe9b\r\nContent-Length: 0\r\n\r\n', 'a\x01\xe9b'],
    ['CR CR ending the status line (llhttp 9.3 quirk, fixed in 9.4)', 'HTTP/1.1 200 OK\r\rContent-Length: 0\r\n\r\n', 'OK'],
  ])('accepts %s', (_intent, text, reason) => {
    expect(res(text).reason).toBe(reason);
  });

  it.each([
    ['a two-digit status', 'HTTP/1.1 20 OK\r\n\r\n', 'BAD_STATUS'],
    ['a four-digit status', 'HTTP/1.1 2000 OK\r\n\r\n', 'BAD_STATUS'],
    ['a status below 100', 'HTTP/1.1 099 X\r\n\r\n', 'BAD_STATUS'],
    ['two spaces before the status', 'HTTP/1.1  200 OK\r\n\r\n', 'BAD_STATUS'],
    ['HTTP/2.0', 'HTTP/2.0 200 OK\r\n\r\n', 'BAD_VERSION'],
    ['RTSP', 'RTSP/1.0 200 OK\r\n\r\n', 'BAD_VERSION'],
    ['a bare LF after the status line', 'HTTP/1.1 200 OK\n\r\n', 'BAD_LINE_ENDING'],
    ['Content-Length with Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n', 'AMBIGUOUS_FRAMING'],
  ])('refuses %s', (_intent, text, code) => {
    expect(resRefusal(text)).toBe(code);
  });

  it.each([
    ['HEAD: no content whatever the fields (item 1)', 'HEAD', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', { kind: 'none' }, true],
    ['HEAD without Content-Length is still reusable', 'HEAD', 'HTTP/1.1 200 OK\r\n\r\n', { kind: 'none' }, true],
    ['204 (item 1)', 'GET', 'HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n', { kind: 'none' }, true],
    ['304 (item 1)', 'GET', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n', { kind: 'none' }, true],
    ['1xx (item 1)', 'GET', 'HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n', { kind: 'none' }, true],
    ['101 switches protocols: not reusable for HTTP', 'GET', 'HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n', { kind: 'none' }, false],
    ['2xx to CONNECT: a tunnel (item 2)', 'CONNECT', 'HTTP/1.1 200 Connection Established\r\n\r\n', { kind: 'none' }, false],
    ['407 to CONNECT has a body', 'CONNECT', 'HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 3\r\n\r\n', { kind: 'length', length: 3 }, true],
    ['chunked final (item 4)', 'GET', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', { kind: 'chunked' }, true],
    ['chunked not final: read until close (item 4)', 'GET', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', { kind: 'close' }, false],
    ['chunked then another TE field: read until close', 'GET', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: br\r\n\r\n', { kind: 'close' }, false],
    ['Content-Length (item 6)', 'GET', 'HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n', { kind: 'length', length: 12 }, true],
    ['nothing: read until close (item 8)', 'GET', 'HTTP/1.1 200 OK\r\n\r\n', { kind: 'close' }, false],
    ['HTTP/1.0 with a length is not kept alive by default', 'GET', 'HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n', { kind: 'length', length: 0 }, false],
    ['HTTP/1.0 with keep-alive', 'GET', 'HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n', { kind: 'length', length: 0 }, true],
    ['HTTP/1.1 with close', 'GET', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', { kind: 'length', length: 0 }, false],
  ] as const)('%s', (_intent, method, text, framing, keepAlive) => {
    const h = res(text, method);
    expect(h.framing).toEqual(framing);
    expect(h.keepAlive).toBe(keepAlive);
  });

  it('is incomplete until the empty line and too large past the limit (502)', () => {
    const text = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n';
    expect(parseResponseHead(Buffer.from(text.slice(0, -2)), 0, MAX, 'GET').kind).toBe('incomplete');
    const big = parseResponseHead(Buffer.from(text), 0, 10, 'GET');
    expect(big.kind === 'invalid' && big.error).toMatchObject({ code: 'HEADERS_TOO_LARGE', status: 502 });
  });
});

describe('HTTP/1.0 response with Transfer-Encoding (RFC 9112 §6.1: faulty framing)', () => {
  it('reads the body to the close and never reuses the connection, whatever the coding says', () => {
    const r = res('HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n');
    expect(r.framing).toEqual({ kind: 'close' });
    expect(r.keepAlive).toBe(false);
  });
});

describe('isToken (RFC 9110 §5.6.2)', () => {
  it.each([
    ['GET', true],
    ['CCM_POST', true],
    ["!#$%&'*+-.^_`|~", true],
    ['', false],
    ['A B', false],
    ['a:b', false],
    ['caf\xe9', false],
    ['\u0100', false],
    ['x\r', false],
  ])('%j → %s', (s, expected) => {
    expect(isToken(s)).toBe(expected);
  });
});

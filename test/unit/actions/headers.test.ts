import { describe, expect, it } from 'vitest';
import { RequestScrubber, responseHead } from '../../../src/actions/headers.js';
import { parseRequestHead, parseResponseHead, type RequestHead, type ResponseHead } from '../../../src/parsers/http1.js';

function request(text: string): RequestHead {
  const r = parseRequestHead(Buffer.from(text, 'latin1'), 0, 65_536);
  if (r.kind !== 'head') throw new Error(`fixture did not parse: ${JSON.stringify(r)}`);
  return r.head;
}

function response(text: string, method = 'GET'): ResponseHead {
  const r = parseResponseHead(Buffer.from(text, 'latin1'), 0, 65_536, method);
  if (r.kind !== 'head') throw new Error(`fixture did not parse: ${JSON.stringify(r)}`);
  return r.head;
}

describe('request head for the destination (RFC 9110 §7.6.1, RFC 9112 §3.2.1)', () => {
  it('removes hop-by-hop fields, the fields Connection names, Proxy-*, identity and hint headers; keeps order and case', () => {
    const head = request(
      'GET http://example.test/a?b HTTP/1.1\r\n' +
        'Host: example.test\r\n' +
        'Connection: keep-alive, X-Hop, close\r\n' +
        'X-Hop: secret\r\n' +
        'Keep-Alive: timeout=5\r\n' +
        'Proxy-Connection: keep-alive\r\n' +
        'Proxy-Authorization: Basic dXNlcjpwYXNz\r\n' +
        'Proxy-Foo: bar\r\n' +
        'TE: trailers\r\n' +
        'Upgrade: websocket\r\n' +
        'X-Forwarded-For: 10.1.1.1\r\n' +
        'Forwarded: for=10.1.1.1\r\n' +
        'X-Authenticated-User: alice\r\n' +
        'X-Egress-Process: name=chrome.exe\r\n' +
        'X-Egress-Anything: 1\r\n' +
        'X-Custom-Identity: bob\r\n' +
        'User-Agent: ua\r\n' +
        'content-type: text/plain\r\n\r\n',
    );
    const out = new RequestScrubber(['X-Custom-Identity']).requestHead(head, '/a?b', 'example.test');
    expect(out).toBe('GET /a?b HTTP/1.1\r\nHost: example.test\r\nUser-Agent: ua\r\ncontent-type: text/plain\r\n\r\n');
  });

  it('keeps the body framing even when Connection names it (dropping it would unframe the body: smuggling)', () => {
    const head = request('POST http://h/ HTTP/1.1\r\nHost: h\r\nConnection: Content-Length, Transfer-Encoding\r\nContent-Length: 3\r\n\r\n');
    expect(new RequestScrubber().requestHead(head, '/', 'h')).toBe('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n');
    const chunked = request('POST http://h/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n');
    expect(new RequestScrubber().requestHead(chunked, '/', 'h')).toContain('Transfer-Encoding: chunked\r\n');
  });

  it('supplies Host for an HTTP/1.0 client that sent none, and sends HTTP/1.1 upstream', () => {
    const head = request('CCM_POST http://mp.corp.test:8080/ccm_system/request HTTP/1.0\r\nContent-Length: 0\r\n\r\n');
    expect(new RequestScrubber().requestHead(head, '/ccm_system/request', 'mp.corp.test:8080')).toBe(
      'CCM_POST /ccm_system/request HTTP/1.1\r\nContent-Length: 0\r\nhost: mp.corp.test:8080\r\n\r\n',
    );
  });
});

describe('answer head for the client', () => {
  it('removes hop-by-hop fields and Proxy-Authenticate, keeps end-to-end fields, sets our Connection', () => {
    const head = response(
      'HTTP/1.1 200 OK\r\nConnection: close, X-R\r\nX-R: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nContent-Length: 10\r\nSet-Cookie: a=1\r\n\r\n',
    );
    expect(responseHead(head, false, false)).toBe('HTTP/1.1 200 OK\r\nContent-Length: 10\r\nSet-Cookie: a=1\r\nconnection: keep-alive\r\n\r\n');
    expect(responseHead(head, true, false)).toMatch(/connection: close\r\n\r\n$/);
  });

  it('keeps Transfer-Encoding for a chunked answer relayed as is, drops it when de-chunking for an HTTP/1.0 client', () => {
    const head = response('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n');
    expect(responseHead(head, false, false)).toBe('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nconnection: keep-alive\r\n\r\n');
    expect(responseHead(head, true, true)).toBe('HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n');
  });
});

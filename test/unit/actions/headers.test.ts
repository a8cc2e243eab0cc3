import { describe, expect, it } from 'vitest';
import type { IncomingHttpHeaders } from 'node:http';
import { scrubRequestHeaders, scrubResponseHeaders } from '../../../src/actions/headers.js';

describe('header scrubbing (RFC 9110 §7.6.1)', () => {
  it('removes hop-by-hop fields, the fields Connection names, Proxy-* and identity headers', () => {
    const headers: IncomingHttpHeaders = {
      host: 'example.test',
      connection: 'keep-alive, X-Hop, close',
      'x-hop': 'secret',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      'proxy-authorization': 'Basic dXNlcjpwYXNz',
      'proxy-foo': 'bar',
      te: 'trailers',
      trailer: 'x',
      'transfer-encoding': 'chunked',
      upgrade: 'websocket',
      'x-forwarded-for': '10.1.1.1',
      forwarded: 'for=10.1.1.1',
      'x-authenticated-user': 'alice',
      'x-egress-process': 'name=chrome.exe',
      'x-egress-anything': '1',
      'user-agent': 'ua',
      'content-type': 'text/plain',
    };
    scrubRequestHeaders(headers, ['x-custom-identity']);
    expect(headers).toEqual({ host: 'example.test', 'user-agent': 'ua', 'content-type': 'text/plain' });
  });

  it('removes configured extra identity headers', () => {
    const headers: IncomingHttpHeaders = { host: 'h', 'x-custom-identity': 'bob' };
    scrubRequestHeaders(headers, ['x-custom-identity']);
    expect(headers).toEqual({ host: 'h' });
  });

  it('removes hop-by-hop and Proxy-Authenticate from responses, keeps end-to-end fields', () => {
    const headers: IncomingHttpHeaders = {
      connection: 'close, x-r',
      'x-r': '1',
      'keep-alive': 'timeout=5',
      'proxy-authenticate': 'Basic',
      'content-length': '10',
      'set-cookie': ['a=1'],
    };
    scrubResponseHeaders(headers);
    expect(headers).toEqual({ 'content-length': '10', 'set-cookie': ['a=1'] });
  });
});

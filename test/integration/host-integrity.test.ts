/**
 * The policy and the origin must see the same host (issue 11). Raw sockets, so the exact bytes are under test:
 *  - an absolute-form target wins over the Host header: the origin gets Host = the target's authority
 *    (RFC 9112 §3.2.2), and the record keeps the mismatch as a fronting fact;
 *  - two Host field lines are refused with 400 (RFC 9112 §3.2) before anything is forwarded;
 *  - Transfer-Encoding in an HTTP/1.0 request is faulty framing (RFC 9112 §6.1): 400, nothing forwarded;
 *  - an HTTP/1.0 response with Transfer-Encoding is read to the close, not de-chunked by the coding it names.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { echoHandler, rawExchange, startOrigin, startTcpServer, type TestServer } from '../helpers/servers.js';

/** The Host the echo origin received (its JSON answer may come chunked, so read it by pattern). */
function hostSeen(answer: string): string | undefined {
  return /"host":"([^"]*)"/.exec(answer)?.[1];
}

const POLICY = `version: 1
rules:
  - id: block-evil
    when: { url.domain: evil.example }
    action: block
`;

describe('Host integrity (RFC 9112 §3.2, §3.2.2, §6.1)', () => {
  let h: Harness;
  let origin: TestServer;
  let legacy: TestServer;

  beforeAll(async () => {
    origin = await startOrigin(echoHandler());
    // An HTTP/1.0 origin that names a transfer coding it does not use: the bytes after the head are the body.
    legacy = await startTcpServer((s: net.Socket) => {
      s.once('data', () => s.end('HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'));
      s.on('error', () => undefined);
    });
    h = await startHarness({ policy: POLICY, dns: { 'origin.test': { A: ['127.0.0.1'] } } });
  });
  afterAll(async () => {
    await h?.stop();
    await origin?.close();
    await legacy?.close();
  });

  it('forwards Host = the absolute-form authority, whatever Host the client sent', async () => {
    const answer = await rawExchange(h.port, `GET http://127.0.0.1:${origin.port}/x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(hostSeen(answer)).toBe(`127.0.0.1:${origin.port}`);
    const rec = await h.waitForRecord((r) => field(r, 'url.original') === `http://127.0.0.1:${origin.port}/x`);
    expect(field(rec, 'url.domain')).toBe('127.0.0.1');
    expect(field(rec, 'egress.features.host_mismatch')).toBe(true);
  });

  it('a Host naming a blocked host does not help a request to another target, nor hurt one to it', async () => {
    const viaName = await rawExchange(h.port, `GET http://origin.test:${origin.port}/y HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`);
    expect(viaName).toMatch(/^HTTP\/1\.1 200 /);
    expect(viaName).toContain(`"host":"origin.test:${origin.port}"`);
    const blocked = await rawExchange(h.port, `GET http://evil.example:${origin.port}/z HTTP/1.1\r\nHost: origin.test:${origin.port}\r\nConnection: close\r\n\r\n`);
    expect(blocked).toMatch(/^HTTP\/1\.1 403 /);
  });

  it('keeps the Host line in place and spelling, with the port only when it is not 80', async () => {
    const answer = await rawExchange(h.port, `GET http://origin.test:${origin.port}/h HTTP/1.1\r\nUser-Agent: t\r\nHOST: other\r\nAccept: */*\r\nConnection: close\r\n\r\n`);
    const order = ['"user-agent"', '"host"', '"accept"'].map((name) => answer.indexOf(name));
    expect(order.every((at, i) => at > 0 && (i === 0 || at > (order[i - 1] ?? 0)))).toBe(true);
    expect(hostSeen(answer)).toBe(`origin.test:${origin.port}`);
  });

  it('supplies Host for an HTTP/1.0 client that sent none', async () => {
    const answer = await rawExchange(h.port, `GET http://origin.test:${origin.port}/old HTTP/1.0\r\n\r\n`);
    expect(answer).toContain(`"host":"origin.test:${origin.port}"`);
  });

  it.each([
    ['two Host lines', 'Host: a.example\r\nHost: b.example\r\n'],
    ['two Host lines, differently spelled', 'host: a.example\r\nHOST: a.example\r\n'],
  ])('refuses %s with 400 and forwards nothing', async (_intent, hosts) => {
    const before = origin.connections();
    const answer = await rawExchange(h.port, `GET http://origin.test:${origin.port}/dup HTTP/1.1\r\n${hosts}Connection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('more than one Host field');
    expect(origin.connections()).toBe(before);
  });

  it('refuses an HTTP/1.0 request with Transfer-Encoding (faulty framing) and forwards nothing', async () => {
    const before = origin.connections();
    const answer = await rawExchange(
      h.port,
      `POST http://origin.test:${origin.port}/te HTTP/1.0\r\nHost: origin.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('HTTP/1.0');
    expect(origin.connections()).toBe(before);
    const rec = await h.waitForRecord((r) => String(field(r, 'error.message') ?? '').includes('Transfer-Encoding in an HTTP/1.0 request'));
    expect(field(rec, 'event.action')).toBe('block');
  });

  it('reads an HTTP/1.0 response with Transfer-Encoding to the close, chunk lines and all', async () => {
    const answer = await rawExchange(h.port, `GET http://origin.test:${legacy.port}/legacy HTTP/1.1\r\nHost: origin.test\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    // The body is what the origin sent until it closed: the "chunk" framing is content, not framing.
    expect(answer).toContain('5\r\nhello\r\n0\r\n\r\n');
  });
});

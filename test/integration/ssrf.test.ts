/**
 * SSRF through addresses that mean "this host" (issue 11). The operator's `network.internal` replaces the
 * defaults; here it is a minimal list without loopback, 0.0.0.0/8, ::/128 or multicast. A victim service
 * listens on every address of the proxy host (`::` dual-stack, so 0.0.0.0, 127.0.0.1, ::1 and this host's
 * interface addresses all reach it, as they would on a real gateway). Whatever the spelling — IP literal in
 * any form, IPv6 embedding, or a name resolving to it — over plain HTTP or CONNECT, nothing reaches the victim
 * unless an allow rule names the destination; and the unspecified, multicast and broadcast addresses are
 * never dialled even then.
 */
import net from 'node:net';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { openTunnel, rawExchange } from '../helpers/servers.js';

/** A TCP service on every address of this host that counts whoever connects. */
interface Victim {
  readonly port: number;
  connections: number;
  close(): Promise<void>;
}

async function startVictim(): Promise<Victim> {
  const sockets = new Set<net.Socket>();
  const victim = { port: 0, connections: 0, close: () => Promise.resolve() };
  const server = net.createServer((s) => {
    victim.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.end('HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nsecret');
  });
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '::', ipv6Only: false }, resolve));
  victim.port = (server.address() as net.AddressInfo).port;
  victim.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return victim;
}

/** This host's own non-loopback unicast addresses (IPv4, and global IPv6 without a zone). */
function interfaceAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(os.networkInterfaces())) {
    for (const info of list ?? []) {
      if (info.internal) continue;
      if (info.family === 'IPv4') out.push(info.address);
      else if (info.scopeid === 0) out.push(`[${info.address}]`);
    }
  }
  return out;
}

// Host spellings as a URL authority (without the port). The comment says what the socket layer would reach.
const UNSPECIFIED = ['0.0.0.0', '0', '0x0', '00', '0.0', '0.0.0', '[::]', '[0:0:0:0:0:0:0:0]', '[::0]', '[::ffff:0.0.0.0]', '[::ffff:0:0]', '[64:ff9b::]', '[2002::]'];
const LOOPBACK = ['127.0.0.1', '127.1', '127.0.1', '2130706433', '0x7f000001', '0177.0.0.1', '0x7f.1', '127.255.255.254', '[::1]', '[0:0:0:0:0:0:0:1]', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '[::127.0.0.1]', '[64:ff9b::127.0.0.1]', '[2002:7f00:1::]', 'localhost'];
const MULTICAST_BROADCAST = ['224.0.0.1', '239.255.255.250', '255.255.255.255', '[ff02::1]', '[::ffff:224.0.0.1]'];
/** Names that resolve to the addresses above (the test DNS server answers them). */
const NAMES = ['zero.ssrf.test', 'zero6.ssrf.test', 'mapped-zero.ssrf.test', 'loop.ssrf.test', 'loop6.ssrf.test', 'mapped-loop.ssrf.test', 'multi.ssrf.test'];
const DNS = {
  'zero.ssrf.test': { A: ['0.0.0.0'] },
  'zero6.ssrf.test': { AAAA: ['::'] },
  'mapped-zero.ssrf.test': { AAAA: ['::ffff:0.0.0.0'] },
  'loop.ssrf.test': { A: ['127.0.0.1'] },
  'loop6.ssrf.test': { AAAA: ['::1'] },
  'mapped-loop.ssrf.test': { AAAA: ['::ffff:127.0.0.1'] },
  'multi.ssrf.test': { A: ['224.0.0.1'] },
};
const MINIMAL_INTERNAL = 'network:\n  internal: [10.0.0.0/8, 192.168.0.0/16]';

describe('SSRF: nothing on the proxy host is reached unless a rule names it', () => {
  let victim: Victim;
  let h: Harness;
  const hosts = [...UNSPECIFIED, ...LOOPBACK, ...MULTICAST_BROADCAST, ...interfaceAddresses(), ...NAMES];

  beforeAll(async () => {
    victim = await startVictim();
    // An empty policy: the default is allow, so only the address checks stand between a client and the victim.
    h = await startHarness({ policy: 'version: 1\nrules: []\n', config: { network: MINIMAL_INTERNAL }, dns: DNS });
  });
  afterAll(async () => {
    await h?.stop();
    await victim?.close();
  });

  it.each(hosts)('plain HTTP to %s is refused and never dialled', async (host) => {
    const before = victim.connections;
    const authority = `${host}:${victim.port}`;
    const answer = await rawExchange(h.port, `GET http://${authority}/ HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 (403|400|502) /);
    expect(answer).not.toContain('secret');
    expect(victim.connections).toBe(before);
  });

  it.each(hosts)('CONNECT to %s is refused and never dialled', async (host) => {
    const before = victim.connections;
    const { socket, head } = await openTunnel(h.port, `${host}:${victim.port}`);
    socket.destroy();
    expect(head).toMatch(/^HTTP\/1\.1 (403|400|502) /);
    expect(victim.connections).toBe(before);
  });

  it('records say why: the unspecified address is never dialled, loopback is internal', async () => {
    await rawExchange(h.port, `GET http://0.0.0.0:${victim.port}/why HTTP/1.1\r\nHost: x\r\n\r\n`);
    const zero = await h.waitForRecord((r) => field(r, 'url.original') === `http://0.0.0.0:${victim.port}/why`);
    expect(field(zero, 'rule.id')).toBe('builtin:unroutable-destination');
    expect(field(zero, 'event.action')).toBe('block');
    expect(String(field(zero, 'egress.explanation'))).toContain('the unspecified address ("this host"): never dialled');
    await rawExchange(h.port, `GET http://[::ffff:127.0.0.1]:${victim.port}/why HTTP/1.1\r\nHost: x\r\n\r\n`);
    const loop = await h.waitForRecord((r) => field(r, 'url.original') === `http://[::ffff:127.0.0.1]:${victim.port}/why`);
    expect(field(loop, 'rule.id')).toBe('builtin:internal-destination');
    expect(field(loop, 'egress.destination.internal')).toBe(true);
  });
});

describe('SSRF: a rule that names the destination opens loopback, never the unspecified address', () => {
  let victim: Victim;
  let h: Harness;

  beforeAll(async () => {
    victim = await startVictim();
    const policy = [
      'version: 1',
      'rules:',
      '  - id: local-agent',
      '    when: { destination.ip: { cidr: [127.0.0.1/32, 0.0.0.0/8, "::/128"] } }',
      '    action: allow',
    ].join('\n');
    h = await startHarness({ policy, config: { network: MINIMAL_INTERNAL }, dns: DNS });
  });
  afterAll(async () => {
    await h?.stop();
    await victim?.close();
  });

  it('reaches the named loopback address (the victim is reachable: the refusals above are real)', async () => {
    const before = victim.connections;
    const answer = await rawExchange(h.port, `GET http://127.0.0.1:${victim.port}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain('secret');
    expect(victim.connections).toBe(before + 1);
  });

  it.each(['0.0.0.0', '0', '[::]', '[::ffff:0.0.0.0]', 'zero.ssrf.test', 'zero6.ssrf.test'])('still never dials %s', async (host) => {
    const before = victim.connections;
    const answer = await rawExchange(h.port, `GET http://${host}:${victim.port}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    const { socket, head } = await openTunnel(h.port, `${host}:${victim.port}`);
    socket.destroy();
    expect(head).toMatch(/^HTTP\/1\.1 403 /);
    expect(victim.connections).toBe(before);
  });
});

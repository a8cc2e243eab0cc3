import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { closedPort, curl, openTunnel, rawExchange, startTcpServer, type TestServer } from '../helpers/servers.js';
import { makeCert, startTlsServer, tlsOverTunnel, type TestCert, type TestTlsServer } from '../helpers/tls.js';

describe('CONNECT tunnels decided at CONNECT time', () => {
  let h: Harness;
  let echo: TestServer;
  let cert: TestCert;
  let tlsServer: TestTlsServer;

  beforeAll(async () => {
    echo = await startTcpServer();
    cert = makeCert(['tls.test']);
    tlsServer = await startTlsServer(cert);
    h = await startHarness({
      policy: `version: 1
rules:
  - id: block-bad-domain
    when: { destination.domain: { endswith: .bad.test } }
    action: block
    severity: medium
`,
      dns: { 'echo.test': { A: ['127.0.0.1'] }, 'tls.test': { A: ['127.0.0.1'] }, 'c2.bad.test': { A: ['127.0.0.1'] } },
    });
  });

  afterAll(async () => {
    await h.stop();
    await echo.close();
    await tlsServer.close();
  });

  it('relays bytes both ways and records counts, protocol unknown for non-TLS', async () => {
    const { socket, head } = await openTunnel(h.port, `echo.test:${echo.port}`);
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    const reply = await new Promise<string>((resolve) => {
      let got = '';
      socket.on('data', (c: Buffer) => {
        got += c.toString();
        if (got.length >= 11) socket.end();
      });
      socket.on('close', () => resolve(got));
      socket.write('hello there');
    });
    expect(reply).toBe('hello there');
    const rec = await h.waitForRecord((x) => field(x, 'destination.domain') === 'echo.test');
    expect(field(rec, 'http.request.method')).toBe('CONNECT');
    expect(field(rec, 'url.original')).toBe(`echo.test:${echo.port}`);
    expect(field(rec, 'event.action')).toBe('allow');
    expect(field(rec, 'network.protocol')).toBe('unknown');
    expect(field(rec, 'source.bytes')).toBe(11);
    expect(field(rec, 'destination.bytes')).toBe(11);
    expect(field(rec, 'egress.tunnel')).toBe('splice');
  });

  it('a destination that closes first does not leave the tunnel half-open: each curl ends its flow at once', async () => {
    // The TLS server answers and closes; curl then closes too. A tunnel whose relay stopped reading the
    // client once the destination was gone never saw curl's FIN and lingered until the idle timeout.
    for (let i = 0; i < 5; i++) {
      const before = h.records.length;
      await curl(['-x', h.proxyUrl, '-k', `https://tls.test:${tlsServer.port}/half-open-${i}`]);
      const started = Date.now();
      await h.waitForRecord((x) => h.records.indexOf(x) >= before && field(x, 'tls.client.server_name') === 'tls.test', 2000);
      expect(Date.now() - started).toBeLessThan(2000);
    }
  });

  it('blocks a CONNECT by rule with 403 naming the rule, before any connection', async () => {
    const before = echo.connections();
    const reply = await rawExchange(h.port, `CONNECT c2.bad.test:${echo.port} HTTP/1.1\r\nHost: c2.bad.test\r\n\r\n`);
    expect(reply).toMatch(/^HTTP\/1\.1 403/);
    expect(reply).toContain('block-bad-domain');
    expect(echo.connections()).toBe(before);
    const rec = await h.waitForRecord((x) => field(x, 'destination.domain') === 'c2.bad.test');
    expect(field(rec, 'event.kind')).toBe('alert');
    expect(field(rec, 'rule.id')).toBe('block-bad-domain');
  });

  it('answers 502 when the destination refuses the tunnel', async () => {
    const port = await closedPort();
    const reply = await rawExchange(h.port, `CONNECT echo.test:${port} HTTP/1.1\r\n\r\n`);
    expect(reply).toMatch(/^HTTP\/1\.1 502/);
    const rec = await h.waitForRecord((x) => field(x, 'destination.port') === port);
    expect(field(rec, 'error.code')).toBe('UPSTREAM_CONNECT_FAILED');
  });

  it('observes the ClientHello of an allowed tunnel: SNI, JA3, JA4 in the record', async () => {
    const { socket } = await openTunnel(h.port, `tls.test:${tlsServer.port}`);
    const said = await tlsOverTunnel(socket, 'tls.test', cert.cert, ['h2', 'http/1.1']);
    expect(said).toBe('hello tls.test\n');
    const rec = await h.waitForRecord((x) => field(x, 'destination.domain') === 'tls.test' && field(x, 'network.protocol') === 'tls');
    expect(field(rec, 'tls.client.server_name')).toBe('tls.test');
    expect(field(rec, 'tls.client.ja3')).toMatch(/^[0-9a-f]{32}$/);
    expect(field(rec, 'tls.client.ja4')).toMatch(/^t13d\d{4}h2_[0-9a-f]{12}_[0-9a-f]{12}$/);
    expect(field(rec, 'egress.tls.alpn')).toEqual(['h2', 'http/1.1']);
    expect(field(rec, 'egress.tls.sni_matches_destination')).toBe(true);
  });

  it('works for curl https through the tunnel', async () => {
    const r = await curl(['-x', h.proxyUrl, '--cacert', '/dev/null', '-k', `https://tls.test:${tlsServer.port}/`]);
    // The test TLS server speaks no HTTP; what matters is that curl's handshake went through the tunnel.
    expect(r.stderr).not.toContain('CONNECT tunnel failed');
    const rec = await h.waitForRecord((x) => field(x, 'tls.client.server_name') === 'tls.test' && field(x, 'user_agent.original') !== undefined);
    expect(field(rec, 'tls.client.ja4')).toMatch(/^t13d/);
  });
});

describe('CONNECT tunnels that wait for the ClientHello', () => {
  let h: Harness;
  let cert: TestCert;
  let tlsServer: TestTlsServer;
  let echo: TestServer;

  beforeAll(async () => {
    cert = makeCert(['good.test', 'evil.test']);
    tlsServer = await startTlsServer(cert);
    echo = await startTcpServer();
    h = await startHarness({
      policy: `version: 1
rules:
  - id: block-evil-sni
    when: { tls.client.server_name: evil.test }
    action: block
    severity: high
    tags: [c2]
  - id: block-non-tls-on-tunnel
    when: { network.protocol: unknown, destination.port: ${echo.port} }
    action: block
`,
      dns: { 'good.test': { A: ['127.0.0.1'] }, 'evil.test': { A: ['127.0.0.1'] }, 'echo.test': { A: ['127.0.0.1'] } },
      config: { proxy: 'proxy:\n  listen: "127.0.0.1:0"\n  timeouts: { client_hello: 500ms }' },
    });
  });

  afterAll(async () => {
    await h.stop();
    await tlsServer.close();
    await echo.close();
  });

  it('a blocked hello never reaches the destination, not even as a TCP handshake', async () => {
    const { socket, head } = await openTunnel(h.port, `evil.test:${tlsServer.port}`);
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    await expect(tlsOverTunnel(socket, 'evil.test', cert.cert)).rejects.toThrow();
    expect(tlsServer.connections()).toBe(0);
    const rec = await h.waitForRecord((x) => field(x, 'tls.client.server_name') === 'evil.test');
    expect(field(rec, 'event.action')).toBe('block');
    expect(field(rec, 'rule.id')).toBe('block-evil-sni');
    expect(field(rec, 'event.kind')).toBe('alert');
    expect(field(rec, 'tags')).toEqual(['c2']);
    expect(field(rec, 'destination.bytes')).toBe(0);
  });

  it('an allowed hello is replayed verbatim and the tunnel works', async () => {
    const { socket } = await openTunnel(h.port, `good.test:${tlsServer.port}`);
    expect(await tlsOverTunnel(socket, 'good.test', cert.cert)).toBe('hello good.test\n');
    expect(tlsServer.connections()).toBe(1);
    const rec = await h.waitForRecord((x) => field(x, 'tls.client.server_name') === 'good.test');
    expect(field(rec, 'event.action')).toBe('allow');
    expect(field(rec, 'source.bytes') as number).toBeGreaterThan(200);
    expect(field(rec, 'destination.bytes') as number).toBeGreaterThan(200);
  });

  it('non-TLS bytes on a tunnel become network.protocol unknown, and a rule can block them', async () => {
    const { socket } = await openTunnel(h.port, `echo.test:${echo.port}`);
    socket.write('SSH-2.0-OpenSSH_9.0\r\n');
    await new Promise((r) => socket.on('close', r));
    expect(echo.connections()).toBe(0);
    const rec = await h.waitForRecord((x) => field(x, 'destination.domain') === 'echo.test');
    expect(field(rec, 'network.protocol')).toBe('unknown');
    expect(field(rec, 'rule.id')).toBe('block-non-tls-on-tunnel');
    expect(field(rec, 'source.bytes')).toBe(21);
  });
});

describe('FoxIO vector ClientHellos sent through the live proxy', () => {
  interface Vector {
    pcap: string;
    record_hex: string;
    sni: string | null;
    ja3: string;
    ja4_wireshark_4_4_19: string;
    ja4_r_wireshark_4_4_19: string;
  }
  const vectors = readFileSync(new URL('../fixtures/vectors/ja4-foxio/derived/clienthellos.jsonl', import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Vector)
    // One hello per capture, minus the one whose JA4 the references disagree on (tested in the unit tests).
    .filter((v, i, all) => all.findIndex((w) => w.pcap === v.pcap) === i && v.pcap !== 'tls-non-ascii-alpn.pcapng');

  let sink: TestServer;
  const received: Buffer[] = [];
  const sinks: Array<{ policy: string; name: string }> = [
    { name: 'decided at CONNECT (hello observed beside the relay)', policy: 'version: 1\n' },
    { name: 'pending on JA4 (hello held, then replayed)', policy: 'version: 1\nrules:\n  - id: never\n    when: { tls.client.ja4: t00i000000_000000000000_000000000000 }\n    action: block\n' },
  ];

  beforeAll(async () => {
    sink = await startTcpServer((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => {
        received.push(Buffer.concat(chunks));
        s.end();
      });
    });
  });
  afterAll(async () => sink.close());

  it('a rule on JA3 or JA4 blocks the hello before any byte (or TCP handshake) reaches the destination', async () => {
    const [a, b] = vectors as [Vector, Vector];
    const h = await startHarness({
      policy: `version: 1\nrules:\n  - id: bad-ja3\n    when: { tls.client.ja3: ${a.ja3} }\n    action: block\n  - id: bad-ja4\n    when: { tls.client.ja4: ${b.ja4_wireshark_4_4_19} }\n    action: block\n`,
    });
    try {
      const before = sink.connections();
      for (const [v, rule] of [[a, 'bad-ja3'], [b, 'bad-ja4']] as const) {
        const { socket } = await openTunnel(h.port, `127.0.0.1:${sink.port}`);
        const clientPort = socket.localPort;
        socket.write(Buffer.from(v.record_hex, 'hex'));
        await new Promise((r) => socket.on('close', r));
        const rec = await h.waitForRecord((x) => field(x, 'source.port') === clientPort);
        expect(field(rec, 'rule.id')).toBe(rule);
        expect(field(rec, 'event.action')).toBe('block');
      }
      expect(sink.connections()).toBe(before);
    } finally {
      await h.stop();
    }
  });

  it('a malformed ClientHello is a fact: recorded with why, scored, and blockable before any byte is forwarded', async () => {
    const hello = Buffer.from((vectors[0] as Vector).record_hex, 'hex');
    // Record header (5) + handshake header (4) + version (2) + random (32): the session id length byte.
    expect(hello[43]).toBe(32);
    hello[43] = 33; // RFC 8446 §4.1.2: legacy_session_id is at most 32 bytes
    const h = await startHarness({ policy: 'version: 1\nrules:\n  - id: broken-tls\n    when: { egress.tls.malformed: { exists: true } }\n    action: block\n' });
    try {
      const before = sink.connections();
      const { socket } = await openTunnel(h.port, `127.0.0.1:${sink.port}`);
      const clientPort = socket.localPort;
      socket.write(hello);
      await new Promise((r) => socket.on('close', r));
      const rec = await h.waitForRecord((x) => field(x, 'source.port') === clientPort);
      expect(field(rec, 'network.protocol')).toBe('tls');
      expect(field(rec, 'egress.tls.malformed')).toMatch(/legacy_session_id at offset 43/);
      expect(field(rec, 'rule.id')).toBe('broken-tls');
      expect((field(rec, 'egress.reasons') as string[]).some((r) => r.startsWith('malformed TLS ClientHello'))).toBe(true);
      expect(sink.connections()).toBe(before);
    } finally {
      await h.stop();
    }
  });

  for (const mode of sinks) {
    it(`${mode.name}: the record's SNI, JA3 and JA4 equal the references, bytes arrive verbatim`, async () => {
      const h = await startHarness({ policy: mode.policy });
      try {
        for (const v of vectors) {
          const hello = Buffer.from(v.record_hex, 'hex');
          received.length = 0;
          const { socket } = await openTunnel(h.port, `127.0.0.1:${sink.port}`);
          const clientPort = socket.localPort;
          // Split the hello across TCP segments: the reader must reassemble it.
          const cut = Math.max(1, Math.floor(hello.length / 3));
          socket.write(hello.subarray(0, cut));
          await new Promise((r) => setTimeout(r, 5));
          socket.end(hello.subarray(cut));
          await new Promise((r) => socket.on('close', r));
          const rec = await h.waitForRecord((x) => field(x, 'tls.client.ja3') === v.ja3 && field(x, 'source.port') === clientPort);
          expect(field(rec, 'tls.client.ja4'), v.pcap).toBe(v.ja4_wireshark_4_4_19);
          expect(field(rec, 'egress.tls.ja4_r'), v.pcap).toBe(v.ja4_r_wireshark_4_4_19);
          if (v.sni !== null) expect(field(rec, 'tls.client.server_name'), v.pcap).toBe(v.sni);
          expect(field(rec, 'network.protocol')).toBe('tls');
          expect(field(rec, 'source.bytes')).toBe(hello.length);
          await expect.poll(() => received.length).toBe(1);
          expect(received[0]?.equals(hello), v.pcap).toBe(true);
        }
      } finally {
        await h.stop();
      }
    });
  }
});

describe('CONNECT decided before the ClientHello when its outcome is already fixed (SPEC: 403 before 200)', () => {
  let h: Harness;
  let sink: TestServer;

  beforeAll(async () => {
    sink = await startTcpServer();
    // 127.0.0.2 plays an internal address (loopback only); the policy has a rule on ClientHello facts.
    h = await startHarness({
      policy: `version: 1
rules:
  - id: block-evil-sni
    when: { tls.client.server_name: evil.test }
    action: block
  - id: allow-partner-sni
    when: { tls.client.server_name: partner.test }
    action: allow
  - id: open-wiki
    when: { destination.ip: 127.0.0.3, tls.client.server_name: wiki.test }
    action: allow
`,
      config: { network: 'network:\n  internal: [127.0.0.2/32, 127.0.0.3/32]\n  allow_loopback: true' },
    });
  });
  afterAll(async () => {
    await h.stop();
    await sink.close();
  });

  it('an internal destination that no rule can open gets 403 before any 200, and nothing is dialled', async () => {
    const { socket, head } = await openTunnel(h.port, `127.0.0.2:${sink.port}`);
    socket.destroy();
    expect(head).toMatch(/^HTTP\/1\.1 403/);
    expect(sink.connections()).toBe(0);
    const rec = await h.waitForRecord((x) => field(x, 'destination.ip') === '127.0.0.2');
    expect(field(rec, 'http.response.status_code')).toBe(403);
    expect(field(rec, 'event.action')).toBe('block');
    expect(field(rec, 'rule.id')).toBe('builtin:internal-destination');
  });

  it('an internal destination that a pending rule naming it could still open waits for the hello', async () => {
    const { socket, head } = await openTunnel(h.port, `127.0.0.3:${sink.port}`);
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    socket.destroy();
    const rec = await h.waitForRecord((x) => field(x, 'destination.ip') === '127.0.0.3');
    expect(field(rec, 'event.action')).toBe('block');
  });
});

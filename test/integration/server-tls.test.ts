/**
 * The server side of spliced tunnels (issue 10 item 6): an `openssl s_server` behind the proxy, a real Node
 * TLS client through a CONNECT tunnel, and the record's JA3S compared with tshark's own JA3S of the very bytes
 * the server sent (Wireshark's TLS dissector, `tls.handshake.ja3s`, an independent implementation). tshark
 * reads them from a pcap this test writes (one synthetic TCP stream from port 443), so no capture privilege or
 * timing is involved. With TLS 1.2 the certificate is in clear: its facts must match `openssl x509`'s.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { openTunnel } from '../helpers/servers.js';

/** One TCP stream 127.0.0.2:443 → 127.0.0.1:50000 holding `payload`, in 1,400-byte segments, as a classic pcap. */
function pcapOf(payload: Buffer): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20); // Ethernet
  parts.push(header);
  let seq = 1000;
  for (let at = 0, n = 0; at < payload.length; at += 1400, n++) {
    const data = payload.subarray(at, Math.min(payload.length, at + 1400));
    const eth = Buffer.alloc(14);
    eth.writeUInt16BE(0x0800, 12);
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + 20 + data.length, 2);
    ip[8] = 64;
    ip[9] = 6;
    Buffer.from([127, 0, 0, 2]).copy(ip, 12);
    Buffer.from([127, 0, 0, 1]).copy(ip, 16);
    const tcp = Buffer.alloc(20);
    tcp.writeUInt16BE(443, 0);
    tcp.writeUInt16BE(50000, 2);
    tcp.writeUInt32BE(seq, 4);
    tcp.writeUInt32BE(1, 8);
    tcp[12] = 5 << 4;
    tcp[13] = 0x18; // PSH, ACK
    tcp.writeUInt16BE(65535, 14);
    seq += data.length;
    const frame = Buffer.concat([eth, ip, tcp, data]);
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(1_700_000_000 + n, 0);
    rec.writeUInt32LE(frame.length, 8);
    rec.writeUInt32LE(frame.length, 12);
    parts.push(rec, frame);
  }
  return Buffer.concat(parts);
}

/** JA3S of every ServerHello in the capture, in order (a HelloRetryRequest is one too). */
function tsharkJa3s(pcap: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('tshark', ['-r', pcap, '-Y', 'tls.handshake.type == 2', '-T', 'fields', '-e', 'tls.handshake.ja3s'], { timeout: 30_000 }, (err, stdout) =>
      err === null ? resolve(stdout.trim()) : reject(err),
    );
  });
}

/** TLS through the tunnel, with a tap on the tunnel that keeps the first bytes the server sent. */
async function handshakeThrough(socket: net.Socket, servername: string): Promise<Buffer> {
  const seen: Buffer[] = [];
  const tap = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    destroy(err, cb) {
      socket.destroy();
      cb(err);
    },
  });
  socket.on('data', (c: Buffer) => {
    seen.push(c);
    if (!tap.push(c)) socket.pause();
  });
  socket.on('end', () => tap.push(null));
  const client = tls.connect({ socket: tap, servername, rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => {
    client.once('secureConnect', () => resolve());
    client.once('error', reject);
  });
  client.destroy();
  return Buffer.concat(seen);
}

describe('server side of spliced tunnels: JA3S against tshark, certificate facts against openssl', () => {
  let dir: string;
  let server12: ChildProcess;
  let server13: ChildProcess;
  let serverHrr: ChildProcess;
  let portHrr = 0;
  let port12 = 0;
  let port13 = 0;
  let h: Harness;

  const startServer = async (args: string[]): Promise<{ child: ChildProcess; port: number }> => {
    // A port the kernel just gave out is free; s_server then binds it (a random pick collided under CI load).
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer();
      probe.listen(0, '127.0.0.1', () => {
        const p = (probe.address() as net.AddressInfo).port;
        probe.close(() => resolve(p));
      });
    });
    return new Promise((resolve, reject) => {
      const child = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', join(dir, 'cert.pem'), '-key', join(dir, 'key.pem'), '-www', '-quiet', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
      child.stdout?.resume();
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`openssl s_server exited (${String(code)}): ${stderr}`)));
      // Poll the port with a real handshake until s_server answers (bounded: 20 s on a loaded machine).
      const started = Date.now();
      const poll = (): void => {
        const probe = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
        probe.once('secureConnect', () => {
          probe.destroy();
          resolve({ child, port });
        });
        probe.once('error', () => {
          probe.destroy();
          if (Date.now() - started > 20_000) reject(new Error(`openssl s_server did not start: ${stderr}`));
          else setTimeout(poll, 50);
        });
      };
      setTimeout(poll, 50);
    });
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'egress-s-server-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '3', '-subj', '/CN=teamserver.test/O=Test Ops', '-addext', 'subjectAltName=DNS:teamserver.test'], { stdio: 'ignore' });
    ({ child: server12, port: port12 } = await startServer(['-tls1_2']));
    ({ child: server13, port: port13 } = await startServer(['-tls1_3']));
    // Only P-256 for key exchange: Node's client sends an X25519 key share first, so the server asks again.
    ({ child: serverHrr, port: portHrr } = await startServer(['-tls1_3', '-groups', 'P-256']));
    h = await startHarness({ policy: 'version: 1\n', dns: { 'teamserver.test': { A: ['127.0.0.1'] }, 'other.test': { A: ['127.0.0.1'] } } });
  }, 60_000);

  afterAll(async () => {
    await h?.stop();
    server12?.kill();
    server13?.kill();
    serverHrr?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const version of ['1.2', '1.3'] as const) {
    it(`TLS ${version}: the record's JA3S equals tshark's for the bytes the server sent`, async () => {
      const port = version === '1.2' ? port12 : port13;
      const { socket } = await openTunnel(h.port, `teamserver.test:${port}`);
      const flight = await handshakeThrough(socket, 'teamserver.test');
      const rec = await h.waitForRecord((x) => field(x, 'url.original') === `teamserver.test:${port}` && field(x, 'tls.server.ja3s') !== undefined);
      const pcap = join(dir, `flight-${version}.pcap`);
      writeFileSync(pcap, pcapOf(flight));
      const expected = await tsharkJa3s(pcap);
      expect(expected).toMatch(/^[0-9a-f]{32}$/);
      expect(field(rec, 'tls.server.ja3s')).toBe(expected);
      expect(field(rec, 'tls.version')).toBe(version);
      expect(String(field(rec, 'tls.server.ja4s'))).toMatch(new RegExp(`^t${version === '1.2' ? '12' : '13'}\\d{2}\\d{2}_[0-9a-f]{4}_[0-9a-f]{12}$`));
      expect(field(rec, 'egress.tunnel')).toBe('splice');
    });
  }

  it('after a HelloRetryRequest the record has the JA3S of the real ServerHello (the second one), as tshark sees it', async () => {
    const { socket } = await openTunnel(h.port, `teamserver.test:${portHrr}`);
    const flight = await handshakeThrough(socket, 'teamserver.test');
    const rec = await h.waitForRecord((x) => field(x, 'url.original') === `teamserver.test:${portHrr}` && field(x, 'tls.server.ja3s') !== undefined);
    const pcap = join(dir, 'flight-hrr.pcap');
    writeFileSync(pcap, pcapOf(flight));
    // One line per frame; several ServerHellos in one frame are comma-separated.
    const all = (await tsharkJa3s(pcap)).split(/[\n,]/).filter((l) => l !== '');
    expect(all).toHaveLength(2);
    expect(field(rec, 'tls.server.ja3s')).toBe(all[1]);
    expect(field(rec, 'tls.version')).toBe('1.3');
  });

  it('TLS 1.2: the certificate sent in clear gives JA4X and the facts openssl x509 prints; a mismatching SNI is named', async () => {
    const { socket } = await openTunnel(h.port, `other.test:${port12}`);
    await handshakeThrough(socket, 'other.test');
    const rec = await h.waitForRecord((x) => field(x, 'url.original') === `other.test:${port12}` && field(x, 'tls.server.ja4x') !== undefined);
    const serial = execFileSync('openssl', ['x509', '-in', join(dir, 'cert.pem'), '-noout', '-serial'], { encoding: 'utf8' }).trim().replace(/^serial=/, '');
    expect(field(rec, 'tls.server.x509.serial_number')).toBe(serial.toUpperCase());
    expect(field(rec, 'tls.server.x509.subject.common_name')).toEqual(['teamserver.test']); // ECS: an array
    expect(field(rec, 'tls.server.x509.alternative_names')).toEqual(['teamserver.test']);
    expect(field(rec, 'egress.tls.self_signed')).toBe(true);
    // The final score counts it.
    expect(field(rec, 'egress.signals')).toContain('server_self_signed');
    expect(field(rec, 'egress.tls.validity_days')).toBe(3);
    expect(Number(field(rec, 'egress.tls.cert_age_days'))).toBeLessThan(1);
    // The client asked for other.test; the server's certificate names teamserver.test.
    expect(field(rec, 'egress.tls.fronting')).toBe('sni≠certificate');
  });
});

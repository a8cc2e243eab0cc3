/** A TLS server on loopback with a throwaway certificate made by the openssl CLI, and a client through a tunnel. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type net from 'node:net';
import tls from 'node:tls';

export interface TestCert {
  key: string;
  cert: string;
}

/** A self-signed P-256 certificate for the given names (subjectAltName DNS entries). */
export function makeCert(names: string[]): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'egress-cert-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2',
      '-subj', `/CN=${names[0] ?? 'test'}`, '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
    ], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TestTlsServer {
  port: number;
  /** TCP connections accepted (a blocked hello must leave this at 0). */
  connections(): number;
  close(): Promise<void>;
}

/** A TLS server that answers "hello <sni>\n" and closes. */
export async function startTlsServer(cert: TestCert): Promise<TestTlsServer> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ key: cert.key, cert: cert.cert, ALPNProtocols: ['h2', 'http/1.1'] }, (s) => {
    s.on('error', () => s.destroy());
    s.end(`hello ${s.servername || '-'}\n`);
  });
  server.on('connection', (s: net.Socket) => {
    count++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => count,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** TLS over an open tunnel socket; resolves with what the server said, or rejects when the tunnel is cut. */
export function tlsOverTunnel(socket: net.Socket, servername: string, ca: string, alpn: string[] = ['http/1.1']): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = tls.connect({ socket, servername, ca, ALPNProtocols: alpn });
    let out = '';
    const settle = (): void => {
      // Close our side too, as a real client would, so the proxy ends the tunnel and writes its record.
      client.destroy();
      socket.destroy();
      if (out === '') reject(new Error('tunnel closed before any TLS data'));
      else resolve(out);
    };
    client.on('data', (c: Buffer) => (out += c.toString()));
    client.on('end', settle);
    client.on('close', settle);
    client.on('error', (err) => {
      socket.destroy();
      reject(err);
    });
  });
}

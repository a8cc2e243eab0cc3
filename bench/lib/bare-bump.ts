/**
 * "bare-node" for TLS interception: the bumping proxy a Node developer would write with `node:tls` and no
 * inspection at all — the platform's figure for issue 10's benchmark (bench/bump.bench.ts), as bench/lib/bare-node.ts
 * is for plain HTTP and CONNECT. It answers CONNECT with 200, terminates the client's TLS with one fixed leaf
 * (a wildcard for the bench's parent domain, made once at start: no minting), then opens TLS to the CONNECT
 * authority with the client's SNI, verifying the origin against the given CA through one secure context made at
 * start, and pipes both ways. No policy, no records, no metrics, no fingerprints, no timeouts beyond Node's.
 *
 * Runs as its own plain-JavaScript process (so its CPU is its own): prints `BARE_BUMP {"port":N}` once listening
 * on 127.0.0.1 and exits when stdin closes or on SIGTERM.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnChild, waitForOutput, type Child, type Endpoint } from './proc.js';

const SOURCE = `
import fs from 'node:fs';
import http from 'node:http';
import tls from 'node:tls';
const [certFile, keyFile, upstreamCaFile] = process.argv.slice(2);
const leaf = tls.createSecureContext({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) });
const upstreamTrust = tls.createSecureContext({ ca: fs.readFileSync(upstreamCaFile) });
const server = http.createServer((req, res) => {
  res.writeHead(405);
  res.end();
});
server.on('connect', (req, socket, head) => {
  const at = req.url.lastIndexOf(':');
  const host = req.url.slice(0, at);
  const port = Number(req.url.slice(at + 1));
  socket.on('error', () => socket.destroy());
  socket.write('HTTP/1.1 200 Connection established\\r\\n\\r\\n');
  if (head.length > 0) socket.unshift(head);
  const client = new tls.TLSSocket(socket, { isServer: true, secureContext: leaf, ALPNProtocols: ['http/1.1'] });
  client.on('error', () => socket.destroy());
  client.once('secure', () => {
    const upstream = tls.connect({ host, port, servername: client.servername || host, secureContext: upstreamTrust, ALPNProtocols: ['http/1.1'] });
    upstream.on('error', () => {
      upstream.destroy();
      client.destroy();
    });
    upstream.once('secureConnect', () => {
      client.pipe(upstream);
      upstream.pipe(client);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write('BARE_BUMP ' + JSON.stringify({ port: server.address().port }) + '\\n'));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
`;

export interface BareBump {
  readonly child: Child;
  readonly proxy: Endpoint;
}

/**
 * Makes a P-256 leaf for `*.<domain>` signed by the CA (openssl CLI, once, in `dir`) and starts the bare bumping
 * proxy with it, trusting `upstreamCaFile` for the origin.
 */
export async function startBareBump(opts: { dir: string; caCertFile: string; caKeyFile: string; domain: string; upstreamCaFile: string }): Promise<BareBump> {
  const key = join(opts.dir, 'bare-bump-key.pem');
  const csr = join(opts.dir, 'bare-bump.csr');
  const cert = join(opts.dir, 'bare-bump-cert.pem');
  const ext = join(opts.dir, 'bare-bump.ext');
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  execFileSync('openssl', ['req', '-new', '-key', key, '-subj', `/CN=*.${opts.domain}`, '-out', csr]);
  writeFileSync(ext, `subjectAltName=DNS:*.${opts.domain}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', opts.caCertFile, '-CAkey', opts.caKeyFile, '-CAcreateserial', '-days', '2', '-sha256', '-extfile', ext, '-out', cert], {
    stdio: 'ignore',
  });
  const file = join(opts.dir, 'bare-bump.mjs');
  writeFileSync(file, SOURCE);
  const child = spawnChild('bare-node bump', process.execPath, [file, cert, key, opts.upstreamCaFile], { stdio: ['pipe', 'pipe', 'pipe'] });
  const m = await waitForOutput(child, /BARE_BUMP (\{.*\})/, 10_000);
  return { child, proxy: { host: '127.0.0.1', port: (JSON.parse(m[1] ?? '{}') as { port: number }).port } };
}

/**
 * The HTTPS origin of the interception benchmark (bench/bump.bench.ts): our own nginx instance (Debian's
 * nginx-light) on loopback, one worker, keep-alive, a 1 KiB body, with a certificate from a throwaway test CA
 * made with the openssl CLI. nginx rather than a Node server: the origin shares CPU 0 with the load generator,
 * and nginx's TLS costs a fraction of Node's, so the origin is not what limits the proxies under test.
 * The Debian service (/etc/nginx) is never touched: `-p DIR -c DIR/nginx.conf -e DIR/error.log`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, run, spawnChild, waitForPort, type Child, type Endpoint } from './proc.js';

/** The body every GET of BODY_PATH answers: 1 KiB, as issue 10 measured. */
export const BODY_BYTES = 1024;
export const BODY_PATH = '/1k';

export interface TestPki {
  /** PEM file of the test CA that signed the origin's certificate (what the proxies are told to trust). */
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  const r = await run('openssl', args, { cwd, timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
}

/**
 * A test CA and a server certificate for `dnsNames` (wildcards allowed, RFC 6125 §6.4.3) plus the IP SAN
 * 127.0.0.1, both ECDSA P-256, valid two days. Written to `dir` (ca.pem, ca.key, server.pem, server.key).
 */
export async function makeTestPki(dir: string, dnsNames: readonly string[]): Promise<TestPki> {
  mkdirSync(dir, { recursive: true });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  // RFC 5280 §4.2.1.9 / §4.2.1.3: a CA certificate needs basicConstraints CA:TRUE and keyCertSign.
  await openssl(
    ['req', '-x509', ...ecKey, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=egress-inspector bench origin CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  await openssl(['req', '-new', ...ecKey, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=bench origin'], dir);
  const san = [...dnsNames.map((n) => `DNS:${n}`), 'IP:127.0.0.1'].join(',');
  writeFileSync(
    join(dir, 'server.ext'),
    `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`,
  );
  await openssl(
    ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-sha256', '-extfile', 'server.ext', '-out', 'server.pem'],
    dir,
  );
  return { caFile: join(dir, 'ca.pem'), certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key') };
}

export function nginxConfig(dir: string, port: number, pki: TestPki): string {
  return [
    'daemon off;',
    // One process, one worker: the origin must not spread over both cores.
    'master_process off;',
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} warn;`,
    'events { worker_connections 4096; }',
    'http {',
    '  access_log off;',
    '  default_type application/octet-stream;',
    // The compiled-in temp paths are under /var/lib/nginx; keep everything in our directory.
    `  client_body_temp_path ${join(dir, 'body')};`,
    `  proxy_temp_path ${join(dir, 'proxy')};`,
    `  fastcgi_temp_path ${join(dir, 'fastcgi')};`,
    `  uwsgi_temp_path ${join(dir, 'uwsgi')};`,
    `  scgi_temp_path ${join(dir, 'scgi')};`,
    // Keep-alive without a request cap: a connection lives as long as the client keeps it.
    '  keepalive_timeout 120s;',
    '  keepalive_requests 10000000;',
    '  server {',
    `    listen 127.0.0.1:${port} ssl;`,
    `    ssl_certificate ${pki.certFile};`,
    `    ssl_certificate_key ${pki.keyFile};`,
    '    ssl_protocols TLSv1.2 TLSv1.3;',
    `    root ${join(dir, 'www')};`,
    '    location / { }',
    '  }',
    '}',
    '',
  ].join('\n');
}

export interface NginxInstance {
  readonly endpoint: Endpoint;
  readonly pki: TestPki;
  readonly child: Child;
  stop(): Promise<void>;
}

/** Starts nginx (the binary at `binary`) in `dir`, serving BODY_PATH over HTTPS for `dnsNames`. */
export async function startNginx(opts: { binary: string; dir: string; dnsNames: readonly string[] }): Promise<NginxInstance> {
  const { dir } = opts;
  mkdirSync(join(dir, 'www'), { recursive: true });
  writeFileSync(join(dir, 'www', BODY_PATH.slice(1)), Buffer.alloc(BODY_BYTES, 'x'));
  const pki = await makeTestPki(join(dir, 'pki'), opts.dnsNames);
  const port = await freePort();
  const configFile = join(dir, 'nginx.conf');
  writeFileSync(configFile, nginxConfig(dir, port, pki));
  const child = spawnChild('nginx', opts.binary, ['-p', `${dir}/`, '-c', configFile, '-e', join(dir, 'error.log')], { cwd: dir });
  const endpoint = { host: '127.0.0.1', port };
  try {
    await waitForPort(endpoint, 10_000, () => child.proc.exitCode === null && child.proc.signalCode === null);
  } catch (err) {
    await child.stop(1000);
    throw new Error(`nginx did not start: ${(err as Error).message}\n${child.output()}\n(see ${join(dir, 'error.log')})`, { cause: err });
  }
  // nginx stops at once on SIGTERM (fast shutdown); SIGQUIT would wait for keep-alive clients.
  return { endpoint, pki, child, stop: () => child.stop(3000) };
}

/**
 * Our own Squid instance for the comparison: loopback only, no cache, access log to a temp file,
 * foreground (-N), one worker. The Debian service (and its /etc/squid config) is never touched.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { countLines } from './start-proxy.js';
import { freePort, spawnChild, waitForPort, type Child, type Endpoint } from './proc.js';

export interface SquidInstance {
  readonly proxy: Endpoint;
  /** Squid's own temp directory (config, logs, pid file); the caller removes it. */
  readonly dir: string;
  readonly accessLog: string;
  readonly child: Child;
  /** Requests and tunnels logged so far (lines of access.log; Squid logs a tunnel when it closes). */
  accessRecords(): Promise<number>;
  stop(): Promise<void>;
}

export function squidConfig(port: number, dir: string): string {
  return [
    `http_port 127.0.0.1:${port}`,
    'workers 1',
    'visible_hostname egress-bench',
    `pid_filename ${join(dir, 'squid.pid')}`,
    `coredump_dir ${dir}`,
    `cache_log ${join(dir, 'cache.log')}`,
    `access_log stdio:${join(dir, 'access.log')}`,
    'cache_store_log none',
    'netdb_filename none',
    'pinger_enable off',
    // Origins are IP literals, so Squid never needs DNS; should it ask anyway, only loopback.
    'dns_nameservers 127.0.0.1',
    // A forwarding proxy only, like ours: nothing is cached.
    'cache_mem 0 MB',
    'cache deny all',
    'shutdown_lifetime 1 second',
    'acl bench_clients src 127.0.0.1/32',
    'acl CONNECT method CONNECT',
    // The stock config allows CONNECT only to 443 (SSL_ports); the bench tunnels to ephemeral ports.
    'acl SSL_ports port 1-65535',
    'http_access deny CONNECT !SSL_ports',
    'http_access allow bench_clients',
    'http_access deny all',
    '',
  ].join('\n');
}

export async function startSquid(opts: { binary: string }): Promise<SquidInstance> {
  // Started as root, Squid drops to its effective user (proxy on Debian), which must be able to reach and
  // write its logs and pid file: a directory of its own directly under the temp dir, removed at the end.
  const dir = mkdtempSync(join(os.tmpdir(), 'egress-bench-squid-'));
  chmodSync(dir, 0o777);
  const port = await freePort();
  const configFile = join(dir, 'squid.conf');
  writeFileSync(configFile, squidConfig(port, dir));
  const child = spawnChild('squid', opts.binary, ['-N', '-f', configFile], { cwd: dir });
  const proxy = { host: '127.0.0.1', port };
  try {
    await waitForPort(proxy, 20_000, () => child.proc.exitCode === null && child.proc.signalCode === null);
  } catch (err) {
    await child.stop(1000);
    // The directory is kept: cache.log says why.
    throw new Error(`squid did not start: ${(err as Error).message}\n${child.output()}\n(see ${join(dir, 'cache.log')})`, { cause: err });
  }
  const accessLog = join(dir, 'access.log');
  return {
    proxy,
    dir,
    accessLog,
    child,
    accessRecords: () => countLines(accessLog),
    // shutdown_lifetime is 1 s.
    stop: () => child.stop(5000),
  };
}

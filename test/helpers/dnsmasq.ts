/**
 * A real upstream for DNS tests: Debian's dnsmasq on 127.0.0.1, on a free port (UDP and TCP), answering only
 * from local records (--no-resolv --no-hosts: it never asks anybody else). Each instance runs in the
 * foreground with its own pid file in a temp dir, and is stopped by pid; the system service is never touched.
 *
 * dnsmasq missing is a failure with a clear message, not a skip: CI installs it (.ci/run).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { access, constants, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';

export interface DnsmasqOptions {
  /** name → IPv4 (or IPv6) address; every name below it answers too (dnsmasq --address=/name/ip). */
  readonly addresses?: Record<string, string>;
  /** name → TXT strings. */
  readonly txt?: Record<string, string>;
  /** Extra command-line options. */
  readonly args?: readonly string[];
}

export interface Dnsmasq {
  readonly port: number;
  /** "127.0.0.1:port", as dns.upstream takes it. */
  readonly server: string;
  /** The dnsmasq process (benchmarks read its CPU time and pin it). */
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

const CANDIDATES = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq', '/sbin/dnsmasq'];

async function findDnsmasq(): Promise<string> {
  for (const path of CANDIDATES) {
    try {
      await access(path, constants.X_OK);
      return path;
    } catch {
      // try the next one
    }
  }
  throw new Error('dnsmasq is not installed: the DNS tests need it as a real upstream (apt-get install dnsmasq; CI installs it in .ci/run)');
}

/** A port free for both UDP and TCP on 127.0.0.1 (bound, then released). */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = createSocket('udp4');
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => resolve(udp.address().port));
    });
    const tcp = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((r) => udp.close(() => r()));
    if (ok) {
      await new Promise<void>((r) => tcp.close(() => r()));
      return port;
    }
  }
  throw new Error('no free port for dnsmasq');
}

/** Waits until dnsmasq answers a query on `port` (it may take a moment to bind). */
async function waitUntilAnswering(port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 5000;
  const query = dnsPacket.encode({ type: 'query', id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'ready.invalid' }] });
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`dnsmasq exited with ${child.exitCode}: ${stderr()}`);
    const answered = await new Promise<boolean>((resolve) => {
      const s = createSocket('udp4');
      const timer = setTimeout(() => {
        s.close();
        resolve(false);
      }, 200);
      s.on('message', () => {
        clearTimeout(timer);
        s.close();
        resolve(true);
      });
      s.send(query, port, '127.0.0.1');
    });
    if (answered) return;
  }
  throw new Error(`dnsmasq did not answer on 127.0.0.1:${port}: ${stderr()}`);
}

export async function startDnsmasq(opts: DnsmasqOptions = {}): Promise<Dnsmasq> {
  const bin = await findDnsmasq();
  const dir = await mkdtemp(join(tmpdir(), 'egress-dnsmasq-'));
  const port = await freePort();
  const args = [
    '--keep-in-foreground',
    '--no-resolv',
    '--no-hosts',
    '--no-poll',
    `--port=${port}`,
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    `--pid-file=${join(dir, 'dnsmasq.pid')}`,
    '--conf-file=/dev/null',
    '--user=', // do not drop privileges to "nobody" (the tests may run unprivileged or as root in CI)
    '--cache-size=0',
    '--log-facility=-',
    ...Object.entries(opts.addresses ?? {}).map(([name, ip]) => `--address=/${name}/${ip}`),
    ...Object.entries(opts.txt ?? {}).map(([name, text]) => `--txt-record=${name},${text}`),
    ...(opts.args ?? []),
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitUntilAnswering(port, child, () => stderr);
  } catch (err) {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    server: `127.0.0.1:${port}`,
    pid: child.pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

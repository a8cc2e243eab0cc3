/**
 * mitmdump (Debian's mitmproxy 8.x), the reference of issue 10's interception figures, as our own instance on
 * loopback: quiet (`-q`, no flow printing), its confdir — and so the CA it creates there on first start,
 * mitmproxy-ca-cert.pem — in a temp dir, and the origin's test CA trusted upstream
 * (`ssl_verify_upstream_trusted_ca`), so it verifies the origin as egress-inspector does. Everything else is
 * mitmproxy's default (upstream certificate sniffing on, eager upstream connection), as a user would run it.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, sleep, spawnChild, waitForPort, type Child, type Endpoint } from './proc.js';

export interface MitmdumpInstance {
  readonly proxy: Endpoint;
  /** PEM of the CA mitmdump mints its leaves with (what the load generator trusts). */
  readonly caPem: string;
  readonly child: Child;
  stop(): Promise<void>;
}

export async function startMitmdump(opts: { binary: string; dir: string; upstreamCaFile: string }): Promise<MitmdumpInstance> {
  mkdirSync(opts.dir, { recursive: true });
  const port = await freePort();
  const args = [
    '-q',
    '--listen-host', '127.0.0.1',
    '--listen-port', String(port),
    '--set', `confdir=${opts.dir}`,
    '--set', `ssl_verify_upstream_trusted_ca=${opts.upstreamCaFile}`,
  ];
  const child = spawnChild('mitmdump', opts.binary, args, { cwd: opts.dir });
  const proxy = { host: '127.0.0.1', port };
  const alive = (): boolean => child.proc.exitCode === null && child.proc.signalCode === null;
  try {
    // Python start-up plus CA generation on the first run: seconds, not milliseconds.
    await waitForPort(proxy, 30_000, alive);
    const caFile = join(opts.dir, 'mitmproxy-ca-cert.pem');
    // The CA is written before the listener opens; the poll is bounded all the same.
    for (let i = 0; i < 50 && !existsSync(caFile); i++) await sleep(100);
    if (!existsSync(caFile)) throw new Error(`${caFile} did not appear`);
    return { proxy, caPem: readFileSync(caFile, 'utf8'), child, stop: () => child.stop(5000) };
  } catch (err) {
    await child.stop(1000);
    throw new Error(`mitmdump did not start: ${(err as Error).message}\n${child.output()}`, { cause: err });
  }
}

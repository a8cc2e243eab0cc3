/**
 * The deployment kit against a running proxy:
 *  - deploy/logrotate/egress-inspector, run by the real logrotate (paths moved to a temp directory, the
 *    postrotate's `systemctl kill` replaced by the `kill -USR1` it amounts to): records written before the
 *    rotation are in the rotated file, records after it in a new file the proxy opened itself.
 *  - deploy/container/healthcheck.mjs: follows the admin port of the config the proxy runs with.
 *
 * The proxy runs as `node --import tsx src/main.ts` (not through the tsx CLI, which would stand between the
 * signal and the proxy), on free ports only.
 */
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { closedPort } from '../helpers/servers.js';

const HEALTHCHECK = join(ROOT, 'deploy', 'container', 'healthcheck.mjs');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, env, timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

function healthcheck(env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', HEALTHCHECK], { ...process.env, ...env });
}

/** One request through the proxy; the answer's status. */
function viaProxy(port: number, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: url, headers: { host: new URL(url).host } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const contains = (file: string, text: string) => async (): Promise<boolean> => existsSync(file) && (await readFile(file, 'utf8')).includes(text);
/** How a record names its URL path (the rule's explanation quotes the list, so a bare path would match any record). */
const BEFORE = '"path":"/before-rotation"';
const AFTER = '"path":"/after-rotation"';

describe('deployment kit against a running proxy', () => {
  let dir: string;
  let dns: TestDnsServer;
  let child: ChildProcessWithoutNullStreams;
  let exited: Promise<number | null>;
  let proxyPort: number;
  let adminPort: number;
  let config: string;
  let flows: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'egress-deploy-'));
    dns = await startDnsServer({ 'rotate.test': { A: ['192.0.2.1'] } });
    adminPort = await closedPort();
    flows = join(dir, 'log', 'flows.jsonl');
    const policy = join(dir, 'policy.yaml');
    await writeFile(policy, 'version: 1\nrules:\n  - id: marker\n    when: { url.path: { in: [/before-rotation, /after-rotation] } }\n    action: block\n');
    config = join(dir, 'egress.yaml');
    await writeFile(
      config,
      [
        'proxy: { listen: "127.0.0.1:0" }',
        // The container's form: the admin port from the environment, which the healthcheck must follow.
        'admin: { listen: "127.0.0.1:${EGRESS_ADMIN_PORT}" }',
        'dns: { listen: null }',
        `resolver: { servers: ["${dns.server}"] }`,
        `policy: { files: ["${policy}"] }`,
        'baseline: { store: memory }',
        `log: { flows: "${flows}", level: warn }`,
      ].join('\n'),
    );
    child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'main.ts'), 'start', '--config', config], {
      cwd: ROOT,
      env: { ...process.env, EGRESS_ADMIN_PORT: String(adminPort), EGRESS_CONFIG: '' },
    });
    exited = new Promise((r) => child.on('close', (code) => r(code)));
    let stderr = '';
    child.stdout.resume();
    proxyPort = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`proxy did not start:\n${stderr}`)), 20_000);
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
        const m = /proxy on [^ ]*:(\d+)/.exec(stderr);
        if (m !== null) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      void exited.then((code) => reject(new Error(`proxy exited with ${code}:\n${stderr}`)));
    });
  });

  afterAll(async () => {
    child.kill('SIGTERM');
    await exited;
    await dns.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('logrotate rotates the flow log and SIGUSR1 makes the proxy write a new one', async () => {
    expect(await viaProxy(proxyPort, 'http://rotate.test/before-rotation')).toBe(403);
    await waitFor('the first record', contains(flows, BEFORE));

    const shipped = await readFile(join(ROOT, 'deploy', 'logrotate', 'egress-inspector'), 'utf8');
    expect(shipped).toContain('systemctl kill --kill-whom=main --signal=SIGUSR1 egress-inspector.service');
    const conf = join(dir, 'logrotate.conf');
    await writeFile(
      conf,
      shipped
        .replace('/var/log/egress-inspector/flows.jsonl', flows)
        .replace(/systemctl kill --kill-whom=main --signal=SIGUSR1 egress-inspector\.service/, `kill -USR1 ${child.pid}`),
      { mode: 0o644 },
    );
    // -f: rotate now, whatever `daily` says; -s: a private state file.
    const r = await run('logrotate', ['-s', join(dir, 'logrotate.state'), '-f', conf]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const rotated = `${flows}.1`; // delaycompress: the first rotation stays uncompressed
    expect(await readFile(rotated, 'utf8')).toContain(BEFORE);
    // kill(1) has returned, but the proxy handles the signal on its event loop: give it a moment.
    await new Promise((r) => setTimeout(r, 100));

    expect(await viaProxy(proxyPort, 'http://rotate.test/after-rotation')).toBe(403);
    await waitFor('a record in the new file', contains(flows, AFTER));
    expect(await readFile(rotated, 'utf8')).not.toContain(AFTER);
    expect(await readFile(flows, 'utf8')).not.toContain(BEFORE);
    // Every line of both files is a whole record.
    for (const f of [rotated, flows]) {
      for (const line of (await readFile(f, 'utf8')).trim().split('\n')) expect(() => JSON.parse(line) as unknown).not.toThrow();
    }
  });

  it('the container healthcheck follows the configured admin port', async () => {
    const ok = await healthcheck({ EGRESS_CONFIG: config, EGRESS_ADMIN_PORT: String(adminPort) });
    expect(ok.stdout).toContain(`ready: /readyz on 127.0.0.1:${adminPort} answered 200`);
    expect(ok.code).toBe(0);
    // The same config with another port in the environment: the check goes there, and finds nothing.
    const elsewhere = await closedPort();
    const moved = await healthcheck({ EGRESS_CONFIG: config, EGRESS_ADMIN_PORT: String(elsewhere) });
    expect(moved.stdout).toContain(`not ready: /readyz on 127.0.0.1:${elsewhere}`);
    expect(moved.code).toBe(1);
    // A config the proxy could not load is unhealthy, with the loader's reason.
    const unset = await healthcheck({ EGRESS_CONFIG: config, EGRESS_ADMIN_PORT: undefined });
    expect(unset.stdout).toContain('EGRESS_ADMIN_PORT is not set');
    expect(unset.code).toBe(1);
  });

  it('the container healthcheck reports a 503 (starting or draining) as unhealthy', async () => {
    const server = createServer((req, res) => {
      res.statusCode = req.url === '/readyz' ? 503 : 404;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const cfg = join(dir, 'draining.yaml');
    await mkdir(dir, { recursive: true });
    await writeFile(cfg, `admin: { listen: "0.0.0.0:${port}" }\n`); // a wildcard address is asked over loopback
    try {
      const r = await healthcheck({ EGRESS_CONFIG: cfg });
      expect(r.stdout).toContain(`not ready: /readyz on 127.0.0.1:${port}: HTTP 503`);
      expect(r.code).toBe(1);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

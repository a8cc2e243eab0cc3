import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';
import { join } from 'node:path';
import { runCli, startDaemon, ROOT } from '../helpers/cli.js';
import { curl, startOrigin, type TestServer } from '../helpers/servers.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';

describe('egress-inspector CLI', () => {
  let dir: string;
  let dns: TestDnsServer;
  let slow: TestServer;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'egress-cli-'));
    dns = await startDnsServer({ 'slow.test': { A: ['127.0.0.1'] } });
    slow = await startOrigin((_req, res) => setTimeout(() => res.end('finally\n'), 800));
  });
  afterAll(async () => {
    await slow.close();
    await dns.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('prints its version', async () => {
    const r = await runCli(['--version']);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(r.stdout.trim()).toBe(pkg.version);
    expect(r.code).toBe(0);
  });

  it('refuses to start on a broken config, listing every error with its key path', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'proxy:\n  listen: "nowhere"\n  timeouts:\n    connect: ten\nbogus: 1\n');
    const r = await runCli(['start', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('proxy.listen');
    expect(r.stderr).toContain('proxy.timeouts.connect');
    expect(r.stderr).toContain('bogus');
    expect(r.stderr).toContain(`${file}:4:`);
  });

  it('refuses to start on a broken policy, naming file:line:col', async () => {
    const policy = join(dir, 'broken-policy.yaml');
    await writeFile(policy, 'version: 1\nrules:\n  - id: x\n    when: { proces.name: rundll32.exe }\n    action: block\n');
    const file = join(dir, 'cfg-broken-policy.yaml');
    await writeFile(file, `proxy: { listen: "127.0.0.1:0" }\nadmin: { listen: "127.0.0.1:0" }\ndns: { listen: null }\npolicy: { files: ["${policy}"] }\n`);
    const r = await runCli(['start', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${policy.replace(/[.]/g, '\\.')}:4:\\d+: .*proces\\.name`));
  });

  it('policy check: exit 0 on the shipped default policy, 1 with file:line:col on a broken one', async () => {
    const ok = await runCli(['policy', 'check', join(ROOT, 'policies', 'default.yaml')]);
    expect(ok.code).toBe(0);
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, 'version: 2\n');
    const bad = await runCli(['policy', 'check', broken]);
    expect(bad.code).toBe(1);
    expect(bad.stdout + bad.stderr).toMatch(new RegExp(`${broken.replace(/[.]/g, '\\.')}:1:\\d+: `));
  });

  it('fingerprint: one JSON object per hex ClientHello line, an error object for a bad line (exit 1)', async () => {
    const vectors = readFileSync(join(ROOT, 'test', 'fixtures', 'vectors', 'ja4-foxio', 'derived', 'clienthellos.jsonl'), 'utf8');
    const first = JSON.parse(vectors.split('\n')[0] ?? '{}') as { record_hex: string; ja3: string };
    const good = await runCli(['fingerprint'], { input: `${first.record_hex}\n` });
    expect(good.code).toBe(0);
    // A bad line gets its own error object, the run goes on, and the exit code says something failed.
    const r = await runCli(['fingerprint'], { input: `${first.record_hex}\nnot hex at all\n` });
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]?.ja3).toBe(first.ja3);
    expect(lines[1]?.error).toEqual(expect.any(String));
  });

  it('SIGTERM drains: the in-flight request completes and its record is written before exit', async () => {
    const policy = join(dir, 'allow.yaml');
    await writeFile(policy, 'version: 1\n');
    const flows = join(dir, 'flows.jsonl');
    const file = join(dir, 'cfg-drain.yaml');
    await writeFile(
      file,
      [
        'proxy: { listen: "127.0.0.1:0", drain: 5s }',
        'admin: { listen: "127.0.0.1:0" }',
        'dns: { listen: null }',
        `resolver: { servers: ["${dns.server}"] }`,
        'network: { internal: [10.0.0.0/8], allow_loopback: true }',
        `policy: { files: ["${policy}"] }`,
        `log: { flows: "${flows}", level: warn }`,
      ].join('\n'),
    );
    const daemon = await startDaemon(['--config', file]);
    const request = curl(['-x', `http://127.0.0.1:${daemon.proxyPort}`, `http://slow.test:${slow.port}/drain-me`]);
    await new Promise((r) => setTimeout(r, 300));
    daemon.child.kill('SIGTERM');
    const r = await request;
    expect(r.status).toBe(200);
    expect(r.body).toBe('finally\n');
    expect(await daemon.exited).toBe(0);
    const records = (await readFile(flows, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { url?: { path?: string }; event?: { action?: string } });
    const rec = records.find((x) => x.url?.path === '/drain-me');
    expect(rec?.event?.action).toBe('allow');
  });

  // `npm start` (no config) listens on 0.0.0.0:3128, 0.0.0.0:5300 and 127.0.0.1:9180. These tests must pass while such
  // a quick-start instance runs (issue 11), so none of them needs those ports free: the first proves that the no-config
  // path picks the defaults by finding them taken, the second runs the embedded defaults on free ports.
  it('with no config it binds the embedded default addresses (refused cleanly while they are taken)', async () => {
    const held = await holdDefaultPorts();
    try {
      const r = await runCli(['start'], { env: { EGRESS_CONFIG: '' } });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/EADDRINUSE\b.*(?:0\.0\.0\.0:3128|0\.0\.0\.0:5300|127\.0\.0\.1:9180)/);
    } finally {
      await held.release();
    }
  });

  it('starts on the embedded defaults (the README quick start), on free ports', async () => {
    // A file that sets only the listen addresses, placed in the package root: every other key, and every relative path
    // (policies/, certs/, data/), resolves exactly as the embedded defaults do, since relative paths are relative to the
    // config file's directory (src/config/load.ts) and the defaults' to the package root (src/main.ts).
    const file = join(ROOT, `.cli-test-defaults-${process.pid}.yaml`);
    await writeFile(file, 'proxy: { listen: "127.0.0.1:0" }\ndns: { listen: "127.0.0.1:0" }\nadmin: { listen: "127.0.0.1:0" }\n');
    const token = 'cli-test-token-0123456789';
    try {
      const daemon = await startDaemon(['--config', file], { env: { EGRESS_CONFIG: '', EGRESS_ADMIN_TOKEN: token } });
      try {
        expect(daemon.proxyPort).not.toBe(3128);
        expect(daemon.stderr()).toMatch(/dns on 127\.0\.0\.1:\d+/);
        const health = await fetch(`http://127.0.0.1:${daemon.adminPort}/readyz`);
        expect(health.status).toBe(200);
        // The shipped policies are the ones in force, as with no config.
        const policy = (await (await fetch(`http://127.0.0.1:${daemon.adminPort}/v1/policy`, { headers: { authorization: `Bearer ${token}` } })).json()) as { files: string[] };
        expect(policy.files).toEqual([join(ROOT, 'policies', 'never-bump.yaml'), join(ROOT, 'policies', 'default.yaml')]);
      } finally {
        daemon.child.kill('SIGTERM');
        expect(await daemon.exited).toBe(0);
      }
    } finally {
      await rm(file, { force: true });
    }
  });
});

/**
 * Takes the embedded defaults' listen addresses (TCP 0.0.0.0:3128, UDP and TCP 0.0.0.0:5300, TCP 127.0.0.1:9180) for the
 * duration of a test. One already taken — by a quick-start instance, say — is simply left to its owner: taken is taken.
 */
async function holdDefaultPorts(): Promise<{ release(): Promise<void> }> {
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  const tcp = (host: string, port: number): Promise<void> =>
    new Promise((resolve) => {
      const s = createServer();
      s.once('error', () => resolve()); // EADDRINUSE: someone else holds it
      s.listen({ host, port, exclusive: true }, () => {
        servers.push(s);
        resolve();
      });
    });
  const udp = (host: string, port: number): Promise<void> =>
    new Promise((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => {
        s.close();
        resolve();
      });
      s.bind(port, host, () => {
        sockets.push(s);
        resolve();
      });
    });
  await Promise.all([tcp('0.0.0.0', 3128), tcp('0.0.0.0', 5300), udp('0.0.0.0', 5300), tcp('127.0.0.1', 9180)]);
  return {
    async release() {
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
      await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

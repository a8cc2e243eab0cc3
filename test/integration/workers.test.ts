/**
 * `proxy.workers: 2` end to end: the real CLI (src/main.ts through tsx) as a child process, a cluster primary and
 * two workers on loopback. Which worker served a flow is read from GET /v1/cluster (each worker's
 * egress_flows_total): a request is made, and the worker whose count went up served it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { runCli, startDaemon, type Daemon } from '../helpers/cli.js';
import { curl, startOrigin, echoHandler, type TestServer } from '../helpers/servers.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { eid3, freeSourcePort } from '../helpers/sysmon.js';
import { field, startHarness } from '../helpers/harness.js';
import type { EcsRecord } from '../../src/observe/ecs.js';
import type { ClusterStatus } from '../../src/cluster/messages.js';

const TOKEN = 'workers-test-token';
const START_MS = 90_000;
const auth = { authorization: `Bearer ${TOKEN}` };

interface Cluster {
  daemon: Daemon;
  proxyUrl: string;
  adminUrl: string;
  dnsPort: number | null;
}

async function startCluster(dir: string, name: string, lines: string[]): Promise<Cluster> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, lines.join('\n'));
  const daemon = await startDaemon(['--config', file], { timeoutMs: START_MS });
  const dns = /dns on [^ ]*:(\d+)/.exec(daemon.stderr());
  return { daemon, proxyUrl: `http://127.0.0.1:${daemon.proxyPort}`, adminUrl: `http://127.0.0.1:${daemon.adminPort}`, dnsPort: dns === null ? null : Number(dns[1]) };
}

async function status(c: Cluster): Promise<ClusterStatus> {
  // Bounded: a connection the primary hands to a worker that is dying or still starting must fail, not hang.
  const res = await fetch(`${c.adminUrl}/v1/cluster`, { headers: auth, signal: AbortSignal.timeout(5000) });
  expect(res.status).toBe(200);
  return (await res.json()) as ClusterStatus;
}

function flowsById(s: ClusterStatus): Map<number, number> {
  return new Map(s.workers.map((w) => [w.id, w.flows ?? 0]));
}

/** Runs `request`, then waits until one worker's flow count went up by one: that worker's id. */
async function servedBy(c: Cluster, request: () => Promise<unknown>): Promise<number> {
  const before = flowsById(await status(c));
  await request();
  const deadline = Date.now() + 5000;
  for (;;) {
    const after = flowsById(await status(c));
    const grew = [...after].filter(([id, n]) => n > (before.get(id) ?? 0)).map(([id]) => id);
    if (grew.length === 1 && grew[0] !== undefined) return grew[0];
    if (grew.length > 1) throw new Error('two workers counted a flow: requests overlap');
    if (Date.now() > deadline) throw new Error('no worker counted the flow');
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function records(file: string): Promise<EcsRecord[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as EcsRecord);
}

async function waitForRecords(file: string, pred: (r: EcsRecord) => boolean, n: number, ms = 8000): Promise<EcsRecord[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = (await records(file)).filter(pred);
    if (found.length >= n) return found;
    if (Date.now() > deadline) throw new Error(`only ${found.length} of ${n} records within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** GET through the proxy on a fresh connection (so that node:cluster hands each request to the next worker). */
function proxyGet(proxyPort: number, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, method: 'GET', path: url, agent: false, headers: { host: new URL(url).host } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** `count` GETs, `concurrency` at a time. */
async function load(proxyPort: number, urls: readonly string[], concurrency: number): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < urls.length) {
        const url = urls[next++] ?? '';
        statuses.push(await proxyGet(proxyPort, url));
      }
    }),
  );
  return statuses;
}

function dig(port: number, name: string): Promise<string> {
  return new Promise((resolve) => {
    execFile('dig', ['@127.0.0.1', '-p', String(port), name, 'A', '+tcp', '+short', '+tries=1', '+time=3'], { timeout: 10_000 }, (_err, stdout) => resolve(stdout.trim()));
  });
}

/** A path long enough that its record is larger than PIPE_BUF (4096): interleaving would cut it. */
const LONG = 'p'.repeat(5000);

describe('proxy.workers: 2', () => {
  let dir: string;
  let origin: TestServer;
  let slow: TestServer;
  let dnsServer: TestDnsServer;
  let c: Cluster;
  let flows: string;
  let policy: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'egress-workers-'));
    origin = await startOrigin(echoHandler());
    slow = await startOrigin((_req, res) => setTimeout(() => res.end('finally\n'), 1500));
    const names: Record<string, { A: string[] }> = {};
    for (let i = 1; i <= 12; i++) names[`w${i}.workers.test`] = { A: [`127.0.0.${10 + i}`] };
    dnsServer = await startDnsServer(names);
    policy = join(dir, 'policy.yaml');
    flows = join(dir, 'flows.jsonl');
    await writeFile(policy, 'version: 1\n');
    c = await startCluster(dir, 'cluster', [
      'proxy: { listen: "127.0.0.1:0", drain: 5s, workers: 2, timeouts: { connect: 2s } }',
      `admin: { listen: "127.0.0.1:0", token: "${TOKEN}" }`,
      `dns: { listen: "127.0.0.1:0", upstream: ["${dnsServer.server}"] }`,
      `resolver: { servers: ["${dnsServer.server}"], timeout: 500ms }`,
      'network: { internal: [10.0.0.0/8], allow_loopback: true }',
      `policy: { files: ["${policy}"], hint_wait: 1s }`,
      `log: { flows: "${flows}", level: warn }`,
      `baseline: { dir: "${join(dir, 'data')}" }`,
    ]);
  }, START_MS + 10_000);

  afterAll(async () => {
    if (c !== undefined && c.daemon.child.exitCode === null) c.daemon.child.kill('SIGKILL');
    await origin.close();
    await slow.close();
    await dnsServer.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts two worker processes, and both serve requests on the one proxy port', async () => {
    const s = await status(c);
    expect(s.workers.map((w) => w.state)).toEqual(['up', 'up']);
    const pids = new Set(s.workers.map((w) => w.pid));
    expect(pids.size).toBe(2);
    expect(pids.has(s.primaryPid)).toBe(false);
    const served = new Set<number>();
    for (let i = 0; i < 4; i++) {
      served.add(await servedBy(c, async () => expect((await curl(['-x', c.proxyUrl, `http://127.0.0.1:${origin.port}/hello-${i}`])).status).toBe(200)));
    }
    expect([...served].sort()).toEqual([1, 2]);
  }, 30_000);

  it('the operator console is not served with workers (each holds its own flows): 503 that says why', async () => {
    const res = await fetch(`${c.adminUrl}/ui/login`, { signal: AbortSignal.timeout(5000) });
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('proxy.workers > 1');
  });

  it('a hint posted once attributes flows on either worker', async () => {
    const ports = await Promise.all(Array.from({ length: 6 }, () => freeSourcePort()));
    const body = ports.map((p) => JSON.stringify(eid3(p, 'C:\\Windows\\System32\\rundll32.exe'))).join('\n');
    const res = await fetch(`${c.adminUrl}/v1/hints`, { method: 'POST', headers: { ...auth, 'content-type': 'application/x-ndjson' }, body });
    expect(res.status).toBe(202);
    expect(((await res.json()) as { accepted: number }).accepted).toBe(6);
    await new Promise((r) => setTimeout(r, 300)); // the fan-out is asynchronous (one IPC hop through the primary)
    const byWorker = new Map<number, string[]>();
    for (const [i, port] of ports.entries()) {
      const id = await servedBy(c, () => curl(['-x', c.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}/hinted-${i}`]));
      byWorker.set(id, [...(byWorker.get(id) ?? []), `/hinted-${i}`]);
    }
    expect([...byWorker.keys()].sort()).toEqual([1, 2]);
    const recs = await waitForRecords(flows, (r) => String(field(r, 'url.path')).startsWith('/hinted-'), 6);
    for (const r of recs) {
      expect(field(r, 'process.name')).toBe('rundll32.exe');
      expect(field(r, 'egress.attribution')).toBe('telemetry');
    }
    // Every worker holds the six events once: the scrape shows six (max over workers), not twelve (a sum).
    const metrics = await (await fetch(`${c.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/^egress_hint_store_entries\{kind="network"\} 6$/m);
    expect(metrics).toMatch(/^egress_hints_total\{result="accepted"\} 6$/m);
  }, 30_000);

  it('a DNS answer given by one worker names the bare-IP flow served by the other', async () => {
    expect(c.dnsPort).not.toBeNull();
    const dnsPort = c.dnsPort ?? 0;
    let crossed = 0;
    for (let i = 1; i <= 12 && crossed < 2; i++) {
      const name = `w${i}.workers.test`;
      let answer = '';
      const dnsWorker = await servedBy(c, async () => (answer = await dig(dnsPort, name)));
      expect(answer).toBe(`127.0.0.${10 + i}`);
      const httpWorker = await servedBy(c, () => curl(['-x', c.proxyUrl, `http://${answer}:${origin.port}/dns-${i}`]));
      if (dnsWorker === httpWorker) {
        // Both listeners hand connections out in turn: one more query shifts the DNS side by one worker.
        await servedBy(c, () => dig(dnsPort, name));
        continue;
      }
      crossed++;
      const [rec] = await waitForRecords(flows, (r) => field(r, 'url.path') === `/dns-${i}`, 1);
      expect(rec === undefined ? undefined : field(rec, 'destination.domain')).toBe(name);
      expect(rec === undefined ? undefined : field(rec, 'egress.destination.resolved_before')).toBe(true);
    }
    expect(crossed).toBe(2);
  }, 60_000);

  it('POST /v1/policy/reload on any worker reloads both, answers once both agree, and both decide by the new policy', async () => {
    await writeFile(policy, 'version: 1\nrules:\n  - id: no-secret\n    when: { url.path: { startswith: /secret } }\n    action: block\n');
    const res = await fetch(`${c.adminUrl}/v1/policy/reload`, { method: 'POST', headers: auth });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { ok: boolean; sha256: string; workers: { id: number; ok: boolean; sha256: string }[] };
    expect(body.ok).toBe(true);
    expect(body.workers.map((w) => w.id).sort()).toEqual([1, 2]);
    for (const w of body.workers) expect(w.sha256).toBe(body.sha256);
    const blockedOn = new Set<number>();
    for (let i = 0; i < 4; i++) {
      blockedOn.add(await servedBy(c, async () => expect((await curl(['-x', c.proxyUrl, `http://127.0.0.1:${origin.port}/secret-${i}`])).status).toBe(403)));
    }
    expect([...blockedOn].sort()).toEqual([1, 2]);

    // A broken file: 422 with file:line:col, and both workers keep the last good policy.
    await writeFile(policy, 'version: 1\nrules:\n  - id: broken\n    when: { nosuch.field: 1 }\n    action: block\n');
    const bad = await fetch(`${c.adminUrl}/v1/policy/reload`, { method: 'POST', headers: auth });
    expect(bad.status).toBe(422);
    const badBody = (await bad.json()) as { ok: boolean; errors: string[]; workers: { ok: boolean; sha256: string }[] };
    expect(badBody.ok).toBe(false);
    expect(badBody.errors.join('\n')).toContain(`${policy}:4:`);
    for (const w of badBody.workers) expect(w.sha256).toBe(body.sha256);
    expect((await curl(['-x', c.proxyUrl, `http://127.0.0.1:${origin.port}/secret-kept`])).status).toBe(403);
    await writeFile(policy, 'version: 1\nrules:\n  - { id: keep-one-block, when: { url.domain: never.example }, action: block }\n');
    expect((await fetch(`${c.adminUrl}/v1/policy/reload`, { method: 'POST', headers: auth })).status).toBe(200);
  }, 40_000);

  it('one flow log of whole JSON lines under concurrent load on both workers, /metrics the sum of both', async () => {
    const urls = Array.from({ length: 300 }, (_, i) => `http://127.0.0.1:${origin.port}/load-${i}/${LONG}`);
    const statuses = await load(c.daemon.proxyPort, urls, 16);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const recs = await waitForRecords(flows, (r) => String(field(r, 'url.path')).startsWith('/load-'), 300);
    // readFile + JSON.parse of every line (records()) already proved each line whole; now: each request once.
    const paths = recs.map((r) => String(field(r, 'url.path')).split('/')[1]);
    expect(new Set(paths).size).toBe(300);
    expect(paths.length).toBe(300);

    const s = await status(c);
    const perWorker = s.workers.map((w) => w.flows ?? 0);
    for (const n of perWorker) expect(n).toBeGreaterThan(0);
    const metrics = await (await fetch(`${c.adminUrl}/metrics`)).text();
    const total = [...metrics.matchAll(/^egress_flows_total\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    expect(total).toBe(perWorker.reduce((a, b) => a + b, 0));
    expect(metrics).toMatch(/^egress_workers\{state="up"\} 2$/m);
  }, 60_000);

  it('SIGUSR1 to the primary reopens the flow log after rotation: later records from both workers in the new file', async () => {
    const { primaryPid } = await status(c);
    const before = (await records(flows)).length;
    await rename(flows, `${flows}.1`);
    process.kill(primaryPid, 'SIGUSR1');
    await new Promise((r) => setTimeout(r, 300));
    const served = new Set<number>();
    for (let i = 0; i < 4; i++) served.add(await servedBy(c, () => curl(['-x', c.proxyUrl, `http://127.0.0.1:${origin.port}/rotated-${i}`])));
    expect([...served].sort()).toEqual([1, 2]);
    const fresh = await waitForRecords(flows, (r) => String(field(r, 'url.path')).startsWith('/rotated-'), 4);
    expect(fresh).toHaveLength(4);
    expect((await records(`${flows}.1`)).length).toBe(before);
  }, 30_000);

  it('a worker that crashes is started again, and the proxy keeps serving', async () => {
    const before = await status(c);
    const victim = before.workers[0];
    expect(victim?.pid).toBeTypeOf('number');
    process.kill(victim?.pid ?? 0, 'SIGKILL');
    // A connection the primary handed to the victim just before it died is reset (the client sees the crash);
    // once the primary has seen the exit, the other worker serves. Retry only that window, bounded.
    const afterCrash = async <T>(what: () => Promise<T>): Promise<T> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await what();
        } catch (err) {
          if (attempt >= 5) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    const during = await afterCrash(async () => {
      const r = await curl(['-x', c.proxyUrl, `http://127.0.0.1:${origin.port}/during-crash`]);
      if (r.status !== 200) throw new Error(`during the crash: ${r.status} ${r.stderr}`);
      return r;
    });
    expect(during.status).toBe(200);
    // A restarted worker loads the program again (through tsx here): allow it what a first start is allowed.
    const deadline = Date.now() + START_MS;
    let after = await afterCrash(() => status(c));
    while (!(after.workers[0]?.state === 'up' && after.workers[0].pid !== victim?.pid)) {
      if (Date.now() > deadline) throw new Error(`worker 1 not back: ${JSON.stringify(after)}`);
      await new Promise((r) => setTimeout(r, 200));
      after = await afterCrash(() => status(c));
    }
    expect(after.workers[0]?.restarts).toBe(1);
    expect(c.daemon.stderr()).toContain('worker exited; starting it again');
    const served = new Set<number>();
    for (let i = 0; i < 4; i++) served.add(await servedBy(c, () => curl(['-x', c.proxyUrl, `http://127.0.0.1:${origin.port}/after-crash-${i}`])));
    expect([...served].sort()).toEqual([1, 2]);
  }, START_MS + 30_000);

  it('SIGTERM drains both workers: in-flight requests complete, their records are written, exit 0', async () => {
    const requests = Array.from({ length: 4 }, (_, i) => curl(['-x', c.proxyUrl, `http://127.0.0.1:${slow.port}/drain-${i}`]));
    const deadline = Date.now() + 5000;
    let s = await status(c);
    // All four in flight (a connection whose request has not arrived yet is idle, and drain closes idle ones).
    while (!(s.workers.every((w) => (w.activeFlows ?? 0) > 0) && s.workers.reduce((n, w) => n + (w.activeFlows ?? 0), 0) >= requests.length)) {
      if (Date.now() > deadline) throw new Error(`not both workers busy: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 50));
      s = await status(c);
    }
    c.daemon.child.kill('SIGTERM');
    for (const r of await Promise.all(requests)) {
      expect(r.status).toBe(200);
      expect(r.body).toBe('finally\n');
    }
    expect(await c.daemon.exited).toBe(0);
    const drained = (await records(flows)).filter((r) => String(field(r, 'url.path')).startsWith('/drain-'));
    expect(drained.map((r) => field(r, 'url.path')).sort()).toEqual(['/drain-0', '/drain-1', '/drain-2', '/drain-3']);
  }, 40_000);
});

describe('proxy.workers: 1 (the default): one process, no cluster', () => {
  it('GET /v1/cluster names this process alone; the reload answer keeps its one-process shape', async () => {
    const origin = await startOrigin(echoHandler());
    const h = await startHarness({ policy: 'version: 1\n' });
    try {
      expect((await curl(['-x', h.proxyUrl, `http://127.0.0.1:${origin.port}/one`])).status).toBe(200);
      await h.waitForRecord((r) => field(r, 'url.path') === '/one');
      const s = (await (await fetch(`${h.adminUrl}/v1/cluster`, { headers: { authorization: 'Bearer test-token' } })).json()) as ClusterStatus;
      expect(s.primaryPid).toBeNull();
      expect(s.workers).toMatchObject([{ id: 0, pid: process.pid, state: 'up', flows: 1 }]);
      const reload = (await (await fetch(`${h.adminUrl}/v1/policy/reload`, { method: 'POST', headers: { authorization: 'Bearer test-token' } })).json()) as Record<string, unknown>;
      expect(Object.keys(reload).sort()).toEqual(['errors', 'ok', 'sha256']);
    } finally {
      await h.stop();
      await origin.close();
    }
  });
});

describe('proxy.workers: 2 that cannot start', () => {
  it('a broken policy: the workers say why, the primary prints it as one process would, exit 1, nothing left running', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'egress-workers-broken-'));
    try {
      const policy = join(dir, 'broken.yaml');
      await writeFile(policy, 'version: 1\nrules:\n  - id: x\n    when: { proces.name: rundll32.exe }\n    action: block\n');
      const file = join(dir, 'cfg-broken.yaml');
      await writeFile(file, `proxy: { listen: "127.0.0.1:0", workers: 2 }\nadmin: { listen: "127.0.0.1:0" }\ndns: { listen: null }\npolicy: { files: ["${policy}"] }\nbaseline: { dir: "${join(dir, 'data')}" }\n`);
      const r = await runCli(['start', '--config', file], { timeoutMs: START_MS });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`egress-inspector: POLICY_INVALID: ${policy.replace(/[.]/g, '\\.')}:4:\\d+: .*proces\\.name`));
      const left = await new Promise<string>((resolve) => execFile('pgrep', ['-f', file], (_err, stdout) => resolve(stdout.trim())));
      expect(left).toBe('');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, START_MS + 10_000);
});

describe('proxy.workers: 2 with the flow log on stdout', () => {
  let dir: string;
  let origin: TestServer;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'egress-workers-stdout-'));
    origin = await startOrigin(echoHandler());
  });
  afterAll(async () => {
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('whole lines on a pipe with records larger than PIPE_BUF, every record once, exit 0', async () => {
    await writeFile(join(dir, 'policy.yaml'), 'version: 1\n');
    const c = await startCluster(dir, 'stdout', [
      'proxy: { listen: "127.0.0.1:0", drain: 2s, workers: 2 }',
      `admin: { listen: "127.0.0.1:0", token: "${TOKEN}" }`,
      'dns: { listen: null }',
      'resolver: { servers: ["127.0.0.1:9"], timeout: 200ms }',
      'network: { internal: [10.0.0.0/8], allow_loopback: true }',
      `policy: { files: ["${join(dir, 'policy.yaml')}"] }`,
      'log: { flows: "-", level: warn }',
      `baseline: { dir: "${join(dir, 'data')}" }`,
    ]);
    let out = '';
    c.daemon.child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    try {
      // A reader that stops reading fills the pipe: then writers get partial writes, and two writers would cut
      // each other's lines (writes over PIPE_BUF are not atomic on a pipe). Read again once the load is done.
      c.daemon.child.stdout.pause();
      const urls = Array.from({ length: 200 }, (_, i) => `http://127.0.0.1:${origin.port}/pipe-${i}/${LONG}`);
      const statuses = await load(c.daemon.proxyPort, urls, 16);
      c.daemon.child.stdout.resume();
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      const s = await status(c);
      for (const w of s.workers) expect(w.flows ?? 0).toBeGreaterThan(0);
    } finally {
      c.daemon.child.kill('SIGTERM');
    }
    expect(await c.daemon.exited).toBe(0);
    const lines = out.split('\n');
    expect(lines.pop()).toBe(''); // ends with a newline
    const paths = lines.map((l) => String(field(JSON.parse(l) as EcsRecord, 'url.path')).split('/')[1]);
    expect(paths.filter((p) => p?.startsWith('pipe-')).length).toBe(200);
    expect(new Set(paths).size).toBe(paths.length);
  }, START_MS + 60_000);
});

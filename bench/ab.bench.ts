/**
 * A/B of two builds of egress-inspector on the keep-alive HTTP path (or, with `--load tunnels`, on new CONNECT
 * tunnels: 16 loops of CONNECT + ClientHello + one byte back + close, as the core bench's tunnel section): CPU
 * time of the proxy process per request (tunnel) and req/s (tunnels/s), rounds alternating A and B so that whatever else the machine does hits both alike. For "no figure
 * drops by more than 3 %" checks across a change (issue 11), where two separate core-bench runs minutes apart
 * differ by more than that on a shared machine.
 *
 *   npx tsx bench/ab.bench.ts --a /path/to/old-checkout --b . [--rounds 6] [--seconds 4] [--load http|tunnels]
 *                             [--connections 64]     (http: wrk -c; 1 measures added latency: p50 is reported)
 *                             [--close]              (http: `Connection: close`, a new client connection per request)
 *                             [--cpu-prof DIR]       (B runs under V8's profiler; its .cpuprofile lands in DIR at the end)
 *                             [--b-node-args="…"]    (more node flags for B, e.g. --b-node-args="--require ./sampler.cjs")
 *                             [--b-policy empty|F,…] (B's policy files instead of the shipped two; `empty`: no rules — with
 *                                                     AB_B_CONFIG='{"scoring":{"enabled":false},"console":{"enabled":false}}'
 *                                                     the engine without inspection)
 *   npx tsx bench/ab.bench.ts --a bare-node --b . …   (A is bench/lib/bare-node.ts, the platform's own cost, in the
 *                                                      same alternating rounds: what of B's cost is ours)
 *
 * Each checkout must hold a build (dist/) and node_modules/. The proxy runs pinned to CPU 1 with the shipped
 * default policy and its flow log to a file; wrk (-t1 -c64, 1 KiB answers) and the origin run on CPU 0.
 * Prints per-round figures and the medians; exit 0.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startOrigin } from './lib/origin.js';
import { pinToCpus, readCpuSeconds, readMemory, readThreadCpuSeconds, which } from './lib/proc.js';
import { startProxy } from './lib/start-proxy.js';
import { startBareNode } from './lib/bare-node.js';
import type { Child, Endpoint } from './lib/proc.js';
import { runWrk } from './lib/wrk.js';
import { captureClientHello, tunnelRate } from './lib/tunnel-client.js';
import { startWatchdog } from './lib/report.js';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: '.' },
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '4' },
    load: { type: 'string', default: 'http' },
    connections: { type: 'string', default: '64' },
    close: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    'b-node-args': { type: 'string', default: '' },
    'b-policy': { type: 'string' },
  },
});
if (values.load !== 'http' && values.load !== 'tunnels') throw new Error(`--load must be http or tunnels (got ${values.load})`);
if (values.a === undefined) throw new Error('--a <checkout> is required');
/** `--a bare-node`: A is the idiomatic Node forward proxy with no inspection (bench/lib/bare-node.ts). */
const aIsBare = values.a === 'bare-node';
const roots = { A: aIsBare ? 'bare-node' : resolve(values.a), B: resolve(values.b) } as const;
const rounds = Math.min(20, Math.max(1, Number(values.rounds)));
const seconds = Math.min(30, Math.max(1, Number(values.seconds)));
const wrk = which('wrk');
if (wrk === null && values.load === 'http') throw new Error('wrk is not installed (apt-get install wrk)');
startWatchdog(rounds * 2 * (seconds + 8) + 60, (text) => process.stderr.write(`${text}\n`));

await pinToCpus(process.pid, '0');
const dir = mkdtempSync(join(os.tmpdir(), 'egress-ab-'));
const origin = await startOrigin();
const target = `http://127.0.0.1:${origin.http.port}/`;

/** B's policy files: `--b-policy`, else the shipped pair (as A's). `empty` is a file with no rules. */
function policyFilesOf(label: 'A' | 'B', root: string): string[] {
  const chosen = label === 'B' ? values['b-policy'] : undefined;
  if (chosen === undefined) return [join(root, 'policies', 'never-bump.yaml'), join(root, 'policies', 'default.yaml')];
  if (chosen !== 'empty') return chosen.split(',').map((f) => resolve(f));
  // In a directory of its own: the policy store watches its files' directory, and the flow log (in `dir`) would
  // wake that watcher on every write.
  const empty = join(dir, 'policy', 'empty.yaml');
  mkdirSync(dirname(empty), { recursive: true });
  writeFileSync(empty, 'version: 1\nrules: []\n');
  return [empty];
}

const bNodeArgs = [
  ...(values['cpu-prof'] !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${resolve(values['cpu-prof'])}`] : []),
  ...(values['b-node-args'] ?? '').split(' ').filter((a) => a !== ''),
];

/** Whether the build's config schema names `key` (builds older than a key refuse it). */
function knowsKey(root: string, key: string): boolean {
  const schema = join(root, 'dist', 'config', 'schema.js');
  return existsSync(schema) && readFileSync(schema, 'utf8').includes(key);
}

/** What a round needs of either side. */
interface Side {
  readonly proxy: Endpoint;
  readonly child: Child;
  stop(): Promise<void>;
}

async function start(label: 'A' | 'B'): Promise<Side> {
  const root = roots[label];
  if (label === 'A' && aIsBare) {
    const bare = await startBareNode({ dir });
    await pinToCpus(bare.child.proc.pid ?? 0, '1');
    return bare;
  }
  const proxy = await startProxy({
    root,
    dir,
    name: label,
    observe: true,
    ...(label === 'B' ? { nodeArgs: bNodeArgs } : {}),
    policyFiles: policyFilesOf(label, root),
    // The origin is on loopback: builds that know network.allow_loopback (issue 11) refuse loopback without it
    // (every request would be a 403, a much cheaper path); builds before it refuse the key and treat loopback
    // as external anyway. The build's own config schema says which it is.
    extraConfig: {
      network: { internal: ['10.0.0.0/8'], ...(knowsKey(root, 'allow_loopback') ? { allow_loopback: true } : {}) },
      // The console's history file in the run's temp directory, one per side: by default it is <root>/data, which
      // two sides from one checkout (`--a . --b .`) would share, and the repository's own data/ is not the bench's.
      ...(knowsKey(root, 'history') ? { console: { history: { dir: join(dir, `${label}.data`) } } } : {}),
      // AB_B_CONFIG: JSON merged into B's config, e.g. '{"console":{"enabled":false}}' to leave out a part A lacks.
      ...(label === 'B' && process.env.AB_B_CONFIG !== undefined ? (JSON.parse(process.env.AB_B_CONFIG) as Record<string, unknown>) : {}),
    },
  });
  await pinToCpus((proxy.child.proc.pid ?? 0), '1');
  return proxy;
}

const connections = Math.min(1024, Math.max(1, Number(values.connections)));
const results: Record<'A' | 'B', { cpuUs: number[]; rps: number[]; p50Ms: number[] }> = { A: { cpuUs: [], rps: [], p50Ms: [] }, B: { cpuUs: [], rps: [], p50Ms: [] } };
/** CPU µs per request (tunnel) of each thread name, one entry per round: where the process's CPU went. */
const threadUs: Record<'A' | 'B', Map<string, number[]>> = { A: new Map(), B: new Map() };
const proxies = { A: await start('A'), B: await start('B') };
// VmRSS 1 s after start, as the core bench's "idle after start" (both builds started just before).
await new Promise((r) => setTimeout(r, 1000));
const idleMb: Record<'A' | 'B', number> = { A: NaN, B: NaN };
for (const label of ['A', 'B'] as const) idleMb[label] = ((await readMemory(proxies[label].child.proc.pid ?? 0))?.rssKiB ?? NaN) / 1024;
const hello = await captureClientHello('bench.example');
/** VmHWM of each proxy at the end (MiB): both carried the same alternating load. */
const peakMb: Record<'A' | 'B', number> = { A: NaN, B: NaN };
/** One measured load: the count of requests (tunnels) done and their rate. */
async function load(p: Side, durationS: number): Promise<{ n: number; perSec: number; p50Ms: number }> {
  if (values.load === 'tunnels') {
    const r = await tunnelRate({ via: p.proxy, echo: origin.echo, hello, concurrency: 16, durationMs: durationS * 1000, maxTunnels: 20_000 * durationS });
    if (r.tunnels === 0) throw new Error('no tunnel completed: that build did not forward (its config or policy refuses the loopback origin)');
    return { n: r.tunnels, perSec: r.perSec, p50Ms: r.p50Ms };
  }
  const r = await runWrk({ binary: wrk ?? 'wrk', url: `http://${p.proxy.host}:${p.proxy.port}/`, absoluteUri: target, threads: 1, connections, durationS, ...(values.close === true ? { headers: ['Connection: close'] } : {}) });
  // A build that refused the requests (403) or failed them measured another path: no figure from it.
  if (r.non2xx3xx > r.requests * 0.01) throw new Error(`${r.non2xx3xx} of ${r.requests} answers were not 2xx/3xx: that build did not forward (its config or policy refuses the loopback origin)`);
  return { n: r.requests, perSec: r.reqPerSec, p50Ms: r.latency.p50Ms };
}
try {
  for (const label of ['A', 'B'] as const) await load(proxies[label], 1);
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? (['A', 'B'] as const) : (['B', 'A'] as const);
    for (const label of order) {
      const p = proxies[label];
      const threadsBefore = await readThreadCpuSeconds(p.child.proc.pid ?? 0);
      const before = (await readCpuSeconds((p.child.proc.pid ?? 0))) ?? 0;
      const r = await load(p, seconds);
      const after = (await readCpuSeconds((p.child.proc.pid ?? 0))) ?? 0;
      for (const [name, s] of await readThreadCpuSeconds(p.child.proc.pid ?? 0)) {
        const per = threadUs[label].get(name) ?? [];
        per.push(((s - (threadsBefore.get(name) ?? 0)) * 1e6) / Math.max(1, r.n));
        threadUs[label].set(name, per);
      }
      results[label].cpuUs.push(((after - before) * 1e6) / Math.max(1, r.n));
      results[label].rps.push(r.perSec);
      results[label].p50Ms.push(r.p50Ms);
      process.stderr.write(
        `round ${round + 1} ${label}: ${r.perSec.toFixed(0)} ${values.load === 'tunnels' ? 'tunnels' : 'req'}/s, ${(((after - before) * 1e6) / Math.max(1, r.n)).toFixed(1)} µs CPU each, p50 ${r.p50Ms.toFixed(3)} ms\n`,
      );
    }
  }
  for (const label of ['A', 'B'] as const) {
    const mem = await readMemory(proxies[label].child.proc.pid ?? 0);
    peakMb[label] = mem === null ? NaN : mem.hwmKiB / 1024;
  }
} finally {
  await proxies.A.stop();
  await proxies.B.stop();
  await origin.stop();
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)] ?? NaN;
};
const out = {
  A: { root: roots.A, cpu_us_per_req: median(results.A.cpuUs), req_per_s: median(results.A.rps), p50_ms: median(results.A.p50Ms), idle_rss_mib: idleMb.A, peak_rss_mib: peakMb.A },
  B: { root: roots.B, cpu_us_per_req: median(results.B.cpuUs), req_per_s: median(results.B.rps), p50_ms: median(results.B.p50Ms), idle_rss_mib: idleMb.B, peak_rss_mib: peakMb.B },
};
process.stdout.write(
  `A ${out.A.cpu_us_per_req.toFixed(1)} µs CPU/req, ${out.A.req_per_s.toFixed(0)} req/s, p50 ${out.A.p50_ms.toFixed(3)} ms\n` +
    `B ${out.B.cpu_us_per_req.toFixed(1)} µs CPU/req, ${out.B.req_per_s.toFixed(0)} req/s, p50 ${out.B.p50_ms.toFixed(3)} ms\n` +
    `B/A CPU per request ${(out.B.cpu_us_per_req / out.A.cpu_us_per_req).toFixed(3)}, req/s ${(out.B.req_per_s / out.A.req_per_s).toFixed(3)}, ` +
    `idle RSS ${out.A.idle_rss_mib.toFixed(1)} → ${out.B.idle_rss_mib.toFixed(1)} MiB (${(out.B.idle_rss_mib / out.A.idle_rss_mib).toFixed(3)}), ` +
    `peak RSS ${out.A.peak_rss_mib.toFixed(1)} → ${out.B.peak_rss_mib.toFixed(1)} MiB (${(out.B.peak_rss_mib / out.A.peak_rss_mib).toFixed(3)})\n` +
    (['A', 'B'] as const)
      .map((label) => `${label} by thread, µs each (median): ${[...threadUs[label]].map(([name, us]) => ({ name, us: median(us) })).sort((x, y) => y.us - x.us).map((t) => `${t.name} ${t.us.toFixed(1)}`).join(', ')}\n`)
      .join('') +
    `${JSON.stringify(out)}\n`,
);

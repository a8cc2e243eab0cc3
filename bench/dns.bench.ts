/**
 * DNS forwarder throughput and added latency (issue 5: queries/s ≥ 0.5× dnsmasq's, added p50 ≤ 0.2 ms; issue 9
 * item 6: the answer cache).
 *
 * One run, side by side, every instance up for the whole run:
 *
 *   - dnsmasq (Debian package, loopback, local records only, `--cache-size=0`) measured directly;
 *   - the forwarder without a cache (`dns.cache.size: 0`, the default) forwarding to a second, identical dnsmasq
 *     (the upstream) — the target comparison (both sides without a cache);
 *   - bare-node (bench/lib/bare-dns.ts): a `node:dgram` relay with no inspection to the same upstream — the
 *     platform's figure: what Node's own UDP path costs a forwarder per query;
 *   - the forwarder with its answer cache on (`dns.cache.size: 10000`), its own figure: after the first round
 *     over the names every query is a hit, so it measures the hit path, not the upstream.
 *
 * Both forwarders are the real CLI from dist/ (build first: npx tsc -p tsconfig.build.json), default policy,
 * flow records to temp files. dnsmasq's local records get `--local-ttl=300` (its default is 0, which nothing
 * may cache).
 *
 *   1. throughput: dnsperf for DURATION seconds against each (UDP, 1000 distinct names, up to 100 queries
 *      outstanding), ROUNDS rounds interleaved (dnsmasq, forwarder, cached forwarder, dnsmasq, …) so that load
 *      from elsewhere on the machine spreads over all three; medians reported, each round listed;
 *   2. latency: a small Node client asks one query at a time (no queueing) and takes the p50/p90/p99 of the
 *      round trips — dnsperf prints no percentiles. Added latency = forwarder p50 − dnsmasq p50.
 *
 * Placement (2 or more cores, taskset present): each subject (the measured dnsmasq, the forwarders, the bare
 * relay) is pinned to CPU 1; dnsperf and the upstream dnsmasq to CPU 0, so a forwarder never shares its core with
 * the server that answers it. Besides queries/s, each subject's CPU time per query (utime + stime from
 * /proc/<pid>/stat over its dnsperf runs ÷ queries completed) — the figure that does not depend on what else
 * the machine runs. Read the medians, and the rounds.
 *
 * Run: npx tsx bench/dns.bench.ts [seconds=10] [rounds=3]   → a table on stderr, one JSON line on stdout.
 * EGRESS_ENTRY=/path/to/main.js picks another build than dist/main.js; BENCH_NODE_ARGS adds node flags to the
 * forwarders (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
 */
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import dnsPacket from 'dns-packet';
import os from 'node:os';
import { pinToCpus, readCpuSeconds, run, spawnChild, waitForOutput, which, type Child } from './lib/proc.js';
import { startBareDns } from './lib/bare-dns.js';
import { countLines } from './lib/start-proxy.js';
import { startDnsmasq } from '../test/helpers/dnsmasq.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DURATION = Math.max(1, Math.min(120, Number(process.argv[2] ?? 10)));
const ROUNDS = Math.max(1, Math.min(15, Number(process.argv[3] ?? 3)));
const NAMES = 1000;
const LATENCY_SAMPLES = 5000;
const CACHE_SIZE = 10_000;

interface Throughput {
  qps: number;
  avgLatencyMs: number;
  completed: number;
  lost: number;
  /** The subject's CPU µs per completed query over this run (null when its pid is unknown). */
  cpuUsPerQuery: number | null;
}

interface Latency {
  p50: number;
  p90: number;
  p99: number;
}

interface Forwarder {
  readonly child: Child;
  readonly port: number;
  readonly adminPort: number;
  readonly flowLog: string;
}

/** dnsperf against `port`, with the CPU time `pid` (the subject) used meanwhile. */
async function measured(port: number, dataFile: string, pid: number | undefined): Promise<Throughput> {
  const before = pid === undefined ? null : await readCpuSeconds(pid);
  const r = await dnsperf(port, dataFile);
  const after = pid === undefined ? null : await readCpuSeconds(pid);
  r.cpuUsPerQuery = before === null || after === null || !(r.completed > 0) ? null : ((after - before) * 1e6) / r.completed;
  return r;
}

async function dnsperf(port: number, dataFile: string): Promise<Throughput> {
  const r = await run('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', dataFile, '-l', String(DURATION), '-c', '4', '-q', '100', '-t', '2'], {
    timeoutMs: (DURATION + 15) * 1000,
  });
  const out = r.stdout + r.stderr;
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? Number.NaN);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    avgLatencyMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    cpuUsPerQuery: null,
  };
}

/** One query at a time over UDP; round-trip percentiles in milliseconds. */
async function sequentialLatency(port: number, samples: number): Promise<Latency> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const times: number[] = [];
  let waiting: ((id: number) => void) | null = null;
  socket.on('message', (msg: Buffer) => waiting?.(msg.readUInt16BE(0)));
  for (let i = 0; i < samples + 500; i++) {
    const id = i & 0xffff;
    const q = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: `h${i % NAMES}.x.test` }] });
    const started = process.hrtime.bigint();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to query ${i} on port ${port}`)), 2000);
      waiting = (got) => {
        if (got !== id) return;
        clearTimeout(timer);
        resolve();
      };
      socket.send(q, port, '127.0.0.1');
    });
    if (i >= 500) times.push(Number(process.hrtime.bigint() - started) / 1e6); // the first 500 warm up
  }
  socket.close();
  times.sort((a, b) => a - b);
  const at = (p: number): number => times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? Number.NaN;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? Number.NaN) + (sorted[mid] ?? Number.NaN)) / 2;
}

/** The median round by queries/s, with every round's queries/s. */
function summarise(rounds: readonly Throughput[]): Throughput & { rounds: number[] } {
  const qps = median(rounds.map((r) => r.qps));
  const cpu = rounds.map((r) => r.cpuUsPerQuery).filter((x): x is number => x !== null);
  return {
    qps,
    cpuUsPerQuery: cpu.length === 0 ? null : median(cpu),
    avgLatencyMs: median(rounds.map((r) => r.avgLatencyMs)),
    completed: rounds.reduce((n, r) => n + r.completed, 0),
    lost: rounds.reduce((n, r) => n + r.lost, 0),
    rounds: rounds.map((r) => Math.round(r.qps)),
  };
}

async function startForwarder(entry: string, dir: string, name: string, upstream: string, cacheSize: number): Promise<Forwarder> {
  const flowLog = join(dir, `${name}.flows.jsonl`);
  const config = join(dir, `${name}.config.json`);
  // JSON is YAML; every address on loopback, the upstream is the local dnsmasq.
  await writeFile(
    config,
    JSON.stringify({
      proxy: { listen: '127.0.0.1:0' },
      admin: { listen: '127.0.0.1:0' },
      dns: { listen: '127.0.0.1:0', upstream: [upstream], cache: { size: cacheSize } },
      resolver: { servers: [upstream] },
      policy: { files: [join(ROOT, 'policies', 'default.yaml')] },
      log: { flows: flowLog, level: 'warn' },
    }),
  );
  // BENCH_NODE_ARGS: extra node flags for the forwarders, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const child = spawnChild(`egress-inspector (${name})`, process.execPath, [...nodeArgs, entry, 'start', '--config', config], { cwd: ROOT });
  const m = await waitForOutput(child, /admin on 127\.0\.0\.1:(\d+).*, dns on 127\.0\.0\.1:(\d+)/, 20_000);
  return { child, port: Number(m[2]), adminPort: Number(m[1]), flowLog };
}

/** Cache hits the forwarder counted (egress_dns_cache_lookups_total), or null when it exports no such metric. */
async function cacheHits(adminPort: number): Promise<number | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('egress_dns_cache_lookups_total{result="hit"}'));
    return line === undefined ? null : Number(line.split(' ')[1]);
  } catch {
    return null;
  }
}

/** Lines of a flow log, streamed: after a full run it can exceed V8's longest string (~512 MB), which read whole gave 0. */
async function recordCount(file: string): Promise<number> {
  return countLines(file);
}

function row(cells: readonly string[]): string {
  return `${(cells[0] ?? '').padEnd(34)}${cells
    .slice(1)
    .map((c) => c.padStart(14))
    .join('')}\n`;
}

async function main(): Promise<void> {
  if (which('dnsperf') === null) throw new Error('dnsperf is not installed (apt-get install dnsperf)');
  // EGRESS_ENTRY: another build of main.js (e.g. one built to a private outDir while others use dist/).
  const entry = process.env.EGRESS_ENTRY ?? join(ROOT, 'dist', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: build first (npx tsc -p tsconfig.build.json)`);
  const dir = await mkdtemp(join(tmpdir(), 'egress-dns-bench-'));
  // Two identical dnsmasq: `dnsmasq` is measured directly (a subject, on CPU 1), `upstream` answers the forwarders
  // (on CPU 0 with dnsperf), so a forwarder never shares its core with the server answering it.
  const dnsmasq = await startDnsmasq({ addresses: { 'x.test': '127.0.0.2' }, args: ['--local-ttl=300'] });
  const upstream = await startDnsmasq({ addresses: { 'x.test': '127.0.0.2' }, args: ['--local-ttl=300'] });
  const dataFile = join(dir, 'queries.txt');
  await writeFile(dataFile, Array.from({ length: NAMES }, (_, i) => `h${i}.x.test A\n`).join(''));
  const started: { stop(): Promise<void> }[] = [];
  try {
    const plain = await startForwarder(entry, dir, 'no-cache', upstream.server, 0);
    started.push(plain.child);
    const cached = await startForwarder(entry, dir, 'cache', upstream.server, CACHE_SIZE);
    started.push(cached.child);
    const bare = await startBareDns(dir, upstream.server);
    started.push(bare.child);
    const canPin = os.cpus().length >= 2 && which('taskset') !== null;
    if (canPin) {
      await pinToCpus(process.pid, '0'); // dnsperf inherits it
      if (upstream.pid !== undefined) await pinToCpus(upstream.pid, '0');
      for (const pid of [dnsmasq.pid, plain.child.proc.pid, cached.child.proc.pid, bare.child.proc.pid]) if (pid !== undefined) await pinToCpus(pid, '1');
    }
    process.stderr.write(canPin ? 'pinning: subjects on CPU 1; dnsperf and the upstream dnsmasq on CPU 0\n' : 'pinning: none (fewer than 2 CPUs or no taskset)\n');

    const rounds: { direct: Throughput[]; bare: Throughput[]; forwarded: Throughput[]; cached: Throughput[] } = { direct: [], bare: [], forwarded: [], cached: [] };
    for (let i = 0; i < ROUNDS; i++) {
      process.stderr.write(`round ${i + 1}/${ROUNDS} …\n`);
      rounds.direct.push(await measured(dnsmasq.port, dataFile, dnsmasq.pid));
      rounds.bare.push(await measured(bare.port, dataFile, bare.child.proc.pid));
      rounds.forwarded.push(await measured(plain.port, dataFile, plain.child.proc.pid));
      rounds.cached.push(await measured(cached.port, dataFile, cached.child.proc.pid));
    }
    const direct = summarise(rounds.direct);
    const bareRun = summarise(rounds.bare);
    const forwarded = summarise(rounds.forwarded);
    const cachedRun = summarise(rounds.cached);
    const directLatency = await sequentialLatency(dnsmasq.port, LATENCY_SAMPLES);
    const bareLatency = await sequentialLatency(bare.port, LATENCY_SAMPLES);
    const forwardedLatency = await sequentialLatency(plain.port, LATENCY_SAMPLES);
    const cachedLatency = await sequentialLatency(cached.port, LATENCY_SAMPLES);
    const hits = await cacheHits(cached.adminPort);
    const records = await recordCount(plain.flowLog);
    const cachedRecords = await recordCount(cached.flowLog);
    const ratio = forwarded.qps / direct.qps;
    const cachedRatio = cachedRun.qps / direct.qps;
    const bareRatio = bareRun.qps / direct.qps;
    const cpu = (t: Throughput): string => (t.cpuUsPerQuery === null ? '—' : t.cpuUsPerQuery.toFixed(1));
    const addedP50 = forwardedLatency.p50 - directLatency.p50;
    const out = [
      row(['', 'dnsmasq', 'bare-node', 'forwarder', 'fwd + cache']),
      row(['queries/s (dnsperf, median)', direct.qps.toFixed(0), bareRun.qps.toFixed(0), forwarded.qps.toFixed(0), cachedRun.qps.toFixed(0)]),
      row(['CPU µs per query (median)', cpu(direct), cpu(bareRun), cpu(forwarded), cpu(cachedRun)]),
      row(['avg latency ms (dnsperf, loaded)', direct.avgLatencyMs.toFixed(3), bareRun.avgLatencyMs.toFixed(3), forwarded.avgLatencyMs.toFixed(3), cachedRun.avgLatencyMs.toFixed(3)]),
      row(['lost', String(direct.lost), String(bareRun.lost), String(forwarded.lost), String(cachedRun.lost)]),
      row(['p50 ms (1 outstanding)', directLatency.p50.toFixed(3), bareLatency.p50.toFixed(3), forwardedLatency.p50.toFixed(3), cachedLatency.p50.toFixed(3)]),
      row(['p90 ms', directLatency.p90.toFixed(3), bareLatency.p90.toFixed(3), forwardedLatency.p90.toFixed(3), cachedLatency.p90.toFixed(3)]),
      row(['p99 ms', directLatency.p99.toFixed(3), bareLatency.p99.toFixed(3), forwardedLatency.p99.toFixed(3), cachedLatency.p99.toFixed(3)]),
      row(['flow records', '', '', String(records), String(cachedRecords)]),
    ];
    process.stderr.write(`\n${out.join('')}\n`);
    process.stderr.write(
      `queries/s of each round: dnsmasq ${direct.rounds.join(' ')}; bare-node ${bareRun.rounds.join(' ')}; forwarder ${forwarded.rounds.join(' ')}; with cache ${cachedRun.rounds.join(' ')}\n`,
    );
    process.stderr.write(`queries/s ratio, bare-node relay (the platform, no inspection) / dnsmasq: ${bareRatio.toFixed(2)}\n`);
    process.stderr.write(`queries/s ratio, both without a cache: ${ratio.toFixed(2)} (target ≥ 0.5): ${ratio >= 0.5 ? 'met' : 'MISSED'}\n`);
    process.stderr.write(`queries/s ratio, forwarder with its cache: ${cachedRatio.toFixed(2)}\n`);
    process.stderr.write(
      hits === null
        ? 'cache hits: no egress_dns_cache_lookups_total metric in this build (is dns.cache wired in src/cli/start.ts?)\n'
        : `cache hits: ${hits} of ${cachedRun.completed + LATENCY_SAMPLES + 500} queries\n`,
    );
    process.stderr.write(`added p50 ${(addedP50 * 1000).toFixed(0)} µs (target ≤ 200 µs): ${addedP50 <= 0.2 ? 'met' : 'MISSED'}\n`);
    process.stderr.write(`${ROUNDS} rounds of ${DURATION} s; a shared machine makes these noisy — compare medians and rounds.\n`);
    process.stdout.write(
      `${JSON.stringify({
        bench: 'dns',
        seconds: DURATION,
        rounds: ROUNDS,
        dnsmasq: { ...direct, ...directLatency },
        bareNode: { ...bareRun, ...bareLatency },
        forwarder: { ...forwarded, ...forwardedLatency, records },
        forwarderCache: { ...cachedRun, ...cachedLatency, records: cachedRecords, hits },
        qpsRatio: ratio,
        bareQpsRatio: bareRatio,
        cachedQpsRatio: cachedRatio,
        addedP50Ms: addedP50,
      })}\n`,
    );
  } finally {
    for (const c of started) await c.stop();
    await dnsmasq.stop();
    await upstream.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});

/**
 * DNS forwarder throughput and added latency (issue 5: queries/s ≥ 0.5× dnsmasq's, added p50 ≤ 0.2 ms).
 *
 * One run, side by side: dnsmasq (Debian package, loopback, local records only) measured directly, and the
 * forwarder — the real CLI from dist/ (build first: npx tsc -p tsconfig.build.json), default policy, flow
 * records to a temp file — forwarding to that same dnsmasq.
 *
 *   1. throughput: dnsperf for DURATION seconds against each (UDP, 1000 distinct names, up to 100 queries
 *      outstanding), queries/s and dnsperf's average latency;
 *   2. latency: a small Node client asks one query at a time (no queueing) and takes the p50/p90/p99 of the
 *      round trips — dnsperf prints no percentiles. Added latency = forwarder p50 − dnsmasq p50.
 *
 * Run: npx tsx bench/dns.bench.ts [seconds]   → a table on stderr, one JSON line on stdout.
 * EGRESS_ENTRY=/path/to/main.js picks another build than dist/main.js.
 */
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import dnsPacket from 'dns-packet';
import { run, spawnChild, waitForOutput, which } from './lib/proc.js';
import { startDnsmasq } from '../test/helpers/dnsmasq.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DURATION = Number(process.argv[2] ?? 10);
const NAMES = 1000;
const LATENCY_SAMPLES = 5000;

interface Throughput {
  qps: number;
  avgLatencyMs: number;
  completed: number;
  lost: number;
}

interface Latency {
  p50: number;
  p90: number;
  p99: number;
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

async function main(): Promise<void> {
  if (which('dnsperf') === null) throw new Error('dnsperf is not installed (apt-get install dnsperf)');
  // EGRESS_ENTRY: another build of main.js (e.g. one built to a private outDir while others use dist/).
  const entry = process.env.EGRESS_ENTRY ?? join(ROOT, 'dist', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: build first (npx tsc -p tsconfig.build.json)`);
  const dir = await mkdtemp(join(tmpdir(), 'egress-dns-bench-'));
  const dnsmasq = await startDnsmasq({ addresses: { 'x.test': '127.0.0.2' } });
  const dataFile = join(dir, 'queries.txt');
  await writeFile(dataFile, Array.from({ length: NAMES }, (_, i) => `h${i}.x.test A\n`).join(''));
  const flowLog = join(dir, 'flows.jsonl');
  const config = join(dir, 'config.json');
  // JSON is YAML; every address on loopback, the upstream is the local dnsmasq.
  await writeFile(
    config,
    JSON.stringify({
      proxy: { listen: '127.0.0.1:0' },
      admin: { listen: '127.0.0.1:0' },
      dns: { listen: '127.0.0.1:0', upstream: [dnsmasq.server] },
      resolver: { servers: [dnsmasq.server] },
      policy: { files: [join(ROOT, 'policies', 'default.yaml')] },
      log: { flows: flowLog, level: 'warn' },
    }),
  );
  const child = spawnChild('egress-inspector', process.execPath, [entry, 'start', '--config', config], { cwd: ROOT });
  try {
    const m = await waitForOutput(child, /, dns on 127\.0\.0\.1:(\d+)/, 20_000);
    const forwarderPort = Number(m[1]);

    const direct = await dnsperf(dnsmasq.port, dataFile);
    const forwarded = await dnsperf(forwarderPort, dataFile);
    const directLatency = await sequentialLatency(dnsmasq.port, LATENCY_SAMPLES);
    const forwardedLatency = await sequentialLatency(forwarderPort, LATENCY_SAMPLES);
    const records = (await readFile(flowLog, 'utf8')).split('\n').filter((l) => l !== '').length;

    const ratio = forwarded.qps / direct.qps;
    const addedP50 = forwardedLatency.p50 - directLatency.p50;
    const rows = [
      ['', 'dnsmasq', 'forwarder'],
      ['queries/s (dnsperf)', direct.qps.toFixed(0), forwarded.qps.toFixed(0)],
      ['avg latency ms (dnsperf, loaded)', direct.avgLatencyMs.toFixed(3), forwarded.avgLatencyMs.toFixed(3)],
      ['lost', String(direct.lost), String(forwarded.lost)],
      ['p50 ms (1 outstanding)', directLatency.p50.toFixed(3), forwardedLatency.p50.toFixed(3)],
      ['p90 ms', directLatency.p90.toFixed(3), forwardedLatency.p90.toFixed(3)],
      ['p99 ms', directLatency.p99.toFixed(3), forwardedLatency.p99.toFixed(3)],
    ];
    for (const row of rows) process.stderr.write(`${(row[0] ?? '').padEnd(34)}${(row[1] ?? '').padStart(12)}${(row[2] ?? '').padStart(12)}\n`);
    process.stderr.write(`\nqueries/s ratio ${ratio.toFixed(2)} (target ≥ 0.5): ${ratio >= 0.5 ? 'met' : 'MISSED'}\n`);
    process.stderr.write(`added p50 ${(addedP50 * 1000).toFixed(0)} µs (target ≤ 200 µs): ${addedP50 <= 0.2 ? 'met' : 'MISSED'}\n`);
    process.stderr.write(`flow records written: ${records}\n`);
    process.stdout.write(
      `${JSON.stringify({ bench: 'dns', seconds: DURATION, dnsmasq: { ...direct, ...directLatency }, forwarder: { ...forwarded, ...forwardedLatency }, qpsRatio: ratio, addedP50Ms: addedP50, records })}\n`,
    );
  } finally {
    await child.stop();
    await dnsmasq.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});

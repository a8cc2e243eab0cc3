/**
 * Process-hint ingest and lookup (issue 4 "Performance"): ingest ≥ 50,000 events/s on one core (NDJSON batches of
 * 1,000 through ingestHints into the memory store), lookup ≤ 2 µs median per flow, and ≤ 300 MB RSS with
 * 1,000,000 stored network hints.
 *
 * Run: npx tsx bench/hints.bench.ts        → JSON lines on stdout, one per figure.
 *
 * The events are raw Sysmon Event ID 3 as NXLog / OTRF exports ship them (all values strings), from 4,000 client
 * addresses, 400 processes, mostly to the proxy and some direct. The RSS figure comes from a child process
 * (`node --expose-gc --import tsx`) so that the ingest run's garbage and JIT state do not count: RSS after a full
 * GC with the store filled, minus RSS after a full GC before it.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { normalizeHintEvent } from '../src/enrich/hint-event.js';
import { ingestHints } from '../src/enrich/hint-ingest.js';
import { createMemoryHintStore } from '../src/enrich/hint-store.js';

const CLIENTS = 4_000;
const PROCESSES = 400;
const IMAGES = [
  'C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe',
  'C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe',
  'C:\\Windows\\System32\\svchost.exe',
  'C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE',
  'C:\\Windows\\System32\\rundll32.exe',
  'C:\\Users\\alice\\AppData\\Local\\Microsoft\\Teams\\current\\Teams.exe',
  'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe',
  'C:\\Windows\\System32\\mshta.exe',
];

function clientIp(c: number): string {
  return `10.${(c >> 16) & 255}.${(c >> 8) & 255}.${c & 255}`;
}

/** Event i of a deterministic stream: each client cycles through source ports like Windows' ephemeral range. */
function rawEvent(i: number, baseMs: number): Record<string, string | number> {
  const c = i % CLIENTS;
  const p = (i * 7919) % PROCESSES;
  const port = 49_152 + (Math.floor(i / CLIENTS) % 16_384);
  const time = new Date(baseMs + (i % 60_000)).toISOString().replace('T', ' ').replace('Z', '');
  const direct = i % 10 === 0;
  return {
    EventID: 3,
    UtcTime: time,
    Computer: `WS${String(c).padStart(5, '0')}.corp.example`,
    ProcessGuid: `{b59756a9-b238-5f17-${(p & 0xffff).toString(16).padStart(4, '0')}-${String(c).padStart(12, '0')}}`,
    ProcessId: String(1_000 + p),
    Image: IMAGES[p % IMAGES.length] as string,
    User: `CORP\\user${c}`,
    Protocol: 'tcp',
    Initiated: 'true',
    SourceIsIpv6: 'false',
    SourceIp: clientIp(c),
    SourceHostname: '-',
    SourcePort: String(port),
    SourcePortName: '-',
    DestinationIsIpv6: 'false',
    DestinationIp: direct ? `203.0.113.${i % 250}` : '10.255.0.1',
    DestinationHostname: '-',
    DestinationPort: direct ? '443' : '3128',
    DestinationPortName: '-',
  };
}

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

function pct(sorted: Float64Array, p: number): number {
  return Number((sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0).toFixed(3));
}

// ---- RSS child ----------------------------------------------------------------------------------------------
if (process.argv.includes('--rss-child')) {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  const n = Number(process.argv[process.argv.indexOf('--rss-child') + 1] ?? 1_000_000);
  const baseMs = Date.now();
  gc();
  gc();
  const before = process.memoryUsage();
  // Network share of maxEntries is 78 %: 1.3 M entries hold 1.014 M network hints.
  const store = createMemoryHintStore({ maxEntries: Math.ceil(n / 0.78) + 1_000, now: () => baseMs });
  for (let i = 0; i < n; i++) {
    const r = normalizeHintEvent(rawEvent(i, baseMs));
    if (!r.ok) throw new Error(r.reason);
    store.put(r.event);
  }
  gc();
  gc();
  const after = process.memoryUsage();
  const size = store.size();
  process.stdout.write(
    `${JSON.stringify({ stored: size.network, processes: size.process, evictions: store.evictions(), rss_mb: (after.rss - before.rss) / 2 ** 20, heap_mb: (after.heapUsed - before.heapUsed) / 2 ** 20, array_buffers_mb: (after.arrayBuffers - before.arrayBuffers) / 2 ** 20, total_rss_mb: after.rss / 2 ** 20 })}\n`,
  );
  process.exit(0);
}

// ---- ingest ---------------------------------------------------------------------------------------------------
const BATCH = 1_000;
const BATCHES = 200;
const baseMs = Date.now();
const bodies: Buffer[] = [];
for (let b = 0; b < BATCHES; b++) {
  const lines: string[] = [];
  for (let k = 0; k < BATCH; k++) lines.push(JSON.stringify(rawEvent(b * BATCH + k, baseMs)));
  bodies.push(Buffer.from(`${lines.join('\n')}\n`));
}
const bodyBytes = bodies.reduce((s, b) => s + b.length, 0);
const store = createMemoryHintStore({ maxEntries: 1_000_000 });

// Warm-up on a throwaway store, so the JIT has tiered up the parsers before the timed run.
const warm = createMemoryHintStore({ maxEntries: 100_000 });
for (let b = 0; b < 20; b++) ingestHints(bodies[b] as Buffer, 'application/x-ndjson', warm, Date.now());

let accepted = 0;
const t0 = process.hrtime.bigint();
for (const body of bodies) {
  const r = ingestHints(body, 'application/x-ndjson', store, Date.now());
  if (r instanceof Promise) throw new Error('memory store is synchronous');
  accepted += r.accepted;
}
const ingestMs = Number(process.hrtime.bigint() - t0) / 1e6;
const perSec = Math.round((accepted / ingestMs) * 1000);
emit({
  bench: 'hints ingest (NDJSON batches of 1,000 EID 3 → ingestHints → memory store)',
  node: process.version,
  events: accepted,
  batches: BATCHES,
  mean_event_bytes: Math.round(bodyBytes / (BATCH * BATCHES)),
  ms: Number(ingestMs.toFixed(1)),
  events_per_s: perSec,
  target_events_per_s: 50_000,
  ok: perSec >= 50_000,
});

// ---- lookup ---------------------------------------------------------------------------------------------------
const ITER = 400_000;
const probes: Array<[string, number, number]> = [];
for (let i = 0; i < 4_096; i++) {
  const j = (i * 104_729) % (BATCH * BATCHES);
  const ev = rawEvent(j, baseMs);
  const hit = i % 4 !== 0; // one in four misses (unknown port)
  probes.push([ev['SourceIp'] as string, hit ? Number(ev['SourcePort']) : 1_024 + i, baseMs + (j % 60_000) + 250]);
}
let found = 0;
for (let i = 0; i < 200_000; i++) {
  const [ip, port, at] = probes[i & 4095] as [string, number, number];
  if (store.findConnection(ip, port, at, 'tcp') !== null) found++;
}
const samples = new Float64Array(ITER);
found = 0;
for (let i = 0; i < ITER; i++) {
  const [ip, port, at] = probes[i & 4095] as [string, number, number];
  const a = process.hrtime.bigint();
  const r = store.findConnection(ip, port, at, 'tcp');
  const b = process.hrtime.bigint();
  samples[i] = Number(b - a) / 1000;
  if (r !== null) found++;
}
samples.sort();
emit({
  bench: 'hints lookup (findConnection per flow, 75 % hits, store of 200,000 events)',
  iterations: ITER,
  hit_rate: Number((found / ITER).toFixed(3)),
  median_us: pct(samples, 0.5),
  p99_us: pct(samples, 0.99),
  target_median_us: 2,
  ok: pct(samples, 0.5) <= 2,
  note: 'per-call hrtime, timer cost (~0.05–0.1 µs) included',
});

// ---- RSS ------------------------------------------------------------------------------------------------------
const N = 1_000_000;
const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--rss-child', String(N)], {
  encoding: 'utf8',
  maxBuffer: 1 << 20,
});
if (child.status !== 0) {
  emit({ bench: 'hints RSS', error: child.stderr.slice(0, 500) });
  process.exitCode = 1;
} else {
  const r = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as { stored: number; rss_mb: number; heap_mb: number; array_buffers_mb: number; total_rss_mb: number; processes: number; evictions: number };
  emit({
    bench: 'hints RSS (1,000,000 stored network hints, child process, after full GC)',
    stored_network_hints: r.stored,
    processes: r.processes,
    evictions: r.evictions,
    rss_delta_mb: Number(r.rss_mb.toFixed(1)),
    heap_delta_mb: Number(r.heap_mb.toFixed(1)),
    array_buffers_delta_mb: Number(r.array_buffers_mb.toFixed(1)),
    process_rss_mb: Number(r.total_rss_mb.toFixed(1)),
    target_mb: 300,
    ok: r.rss_mb <= 300,
  });
}

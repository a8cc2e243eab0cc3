/**
 * `proxy.workers` (issue 9 item 5): what a second worker buys, and what the flow log's design costs.
 *
 *  1. proxy — wrk through egress-inspector (the build in dist/, default policy, records to a file) to a local
 *     keep-alive origin, with 1 worker (one process, no cluster) and with 2 workers (cluster, round-robin
 *     hand-out; also with NODE_CLUSTER_SCHED_POLICY=none, where the workers accept on the shared socket
 *     themselves). Per run: requests/s, and CPU time per request = utime + stime of every proxy process (the
 *     primary and its workers, from /proc) over the measured run, divided by the requests wrk completed.
 *  2. flowlog — the two designs for one flow log written by several workers, in isolation: (a) "ipc": workers
 *     batch whole lines and send them to the primary, the only writer (what src/cluster/ does); (b) "append":
 *     each worker appends its own batches to the file (O_APPEND; whole lines on a regular file, not on a pipe).
 *     Two workers each write COUNT realistic records (~1.1 KB) at RATE records/s; CPU µs per record of all
 *     processes, minus a run that builds the records and writes nothing ("none").
 *
 * Rounds alternate the subjects (1, 2, 2-none, 1, …) and the medians are reported: the machine is shared and
 * has 2 cores, which wrk, the origin and the proxy share — the figures are noisy, the ratios less so.
 *
 *   npx tsx bench/workers.bench.ts [--rounds 3] [--seconds 8] [--only proxy,flowlog]
 *
 * Build first (npx tsc -p tsconfig.build.json); EGRESS_ENTRY=/path/to/dist/main.js picks another build (its
 * directory's parent must hold package.json, policies/ and node_modules/). Table on stderr, one JSON line on stdout.
 */
import cluster from 'node:cluster';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createIpcFlowLog } from '../src/cluster/ipc-flow-log.js';
import { openFlowLog } from '../src/observe/flow-log.js';
import type { FlowLog } from '../src/observe/flow-log.js';
import { startOrigin } from './lib/origin.js';
import { which } from './lib/proc.js';
import { startProxy, type ProxyInstance } from './lib/start-proxy.js';
import { runWrk, wrkProblems } from './lib/wrk.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// ---- shared --------------------------------------------------------------------------------------------------

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0 ? Number.NaN : s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** utime + stime (ms) of `pid` and its direct children (the cluster's workers), from /proc/<pid>/stat. */
function processTreeCpuMs(pid: number): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // Fields after "(comm)": state ppid … utime(14) stime(15), 1-based over the whole line (proc(5)).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(f[1]);
    if (Number(entry) !== pid && ppid !== pid) continue;
    ticks += Number(f[11]) + Number(f[12]);
  }
  return (ticks * 1000) / CLK_TCK;
}

// ---- section 1: proxy -----------------------------------------------------------------------------------------

type ProxySubject = '1 worker' | '2 workers' | '2 workers, sched none';

interface ProxyRun {
  readonly subject: ProxySubject;
  readonly reqPerSec: number;
  readonly cpuUsPerRequest: number;
  readonly p99Ms: number;
  readonly problems: readonly string[];
}

async function proxySection(rounds: number, seconds: number): Promise<ProxyRun[]> {
  const wrk = which('wrk');
  if (wrk === null) throw new Error('wrk is not installed (apt-get install wrk)');
  const entry = process.env.EGRESS_ENTRY ?? join(ROOT, 'dist', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: build first (npx tsc -p tsconfig.build.json)`);
  const root = resolve(dirname(entry), '..');
  const dir = mkdtempSync(join(tmpdir(), 'egress-workers-bench-'));
  const origin = await startOrigin();
  const target = `http://${origin.http.host}:${origin.http.port}/`;
  const runs: ProxyRun[] = [];
  const subjects: { subject: ProxySubject; workers: number; sched?: string }[] = [
    { subject: '1 worker', workers: 1 },
    { subject: '2 workers', workers: 2 },
    { subject: '2 workers, sched none', workers: 2, sched: 'none' },
  ];
  try {
    for (let round = 0; round < rounds; round++) {
      for (const s of subjects) {
        process.stderr.write(`proxy round ${round + 1}/${rounds}: ${s.subject}\n`);
        const saved = process.env.NODE_CLUSTER_SCHED_POLICY;
        if (s.sched === undefined) delete process.env.NODE_CLUSTER_SCHED_POLICY;
        else process.env.NODE_CLUSTER_SCHED_POLICY = s.sched;
        let proxy: ProxyInstance;
        try {
          const start = (attempt: number): Promise<ProxyInstance> =>
            startProxy({
              root,
              dir,
              name: `p${round}-${s.workers}${s.sched ?? ''}-${attempt}`,
              observe: true,
              policyFiles: [join(root, 'policies', 'default.yaml')],
              extraConfig: { proxy: { listen: '127.0.0.1:0', drain: '1s', workers: s.workers } },
            });
          // start-proxy.ts waits 20 s for the listening line; a busy 2-core machine starting two workers (one after
          // the other) can take longer: one more try.
          proxy = await start(1).catch(() => start(2));
        } finally {
          if (saved === undefined) delete process.env.NODE_CLUSTER_SCHED_POLICY;
          else process.env.NODE_CLUSTER_SCHED_POLICY = saved;
        }
        try {
          const url = `http://${proxy.proxy.host}:${proxy.proxy.port}/`;
          await runWrk({ binary: wrk, url, absoluteUri: target, threads: 2, connections: 32, durationS: 2 }); // warm-up
          const pid = proxy.child.proc.pid ?? 0;
          const cpu0 = processTreeCpuMs(pid);
          const r = await runWrk({ binary: wrk, url, absoluteUri: target, threads: 2, connections: 32, durationS: seconds });
          const cpuMs = processTreeCpuMs(pid) - cpu0;
          runs.push({ subject: s.subject, reqPerSec: r.reqPerSec, cpuUsPerRequest: (cpuMs * 1000) / Math.max(1, r.requests), p99Ms: r.latency.p99Ms, problems: wrkProblems(r) });
        } finally {
          await proxy.stop();
        }
      }
    }
  } finally {
    await origin.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return runs;
}

// ---- section 2: flowlog ---------------------------------------------------------------------------------------

type LogMode = 'none' | 'ipc' | 'append';

interface LogRun {
  readonly mode: LogMode;
  readonly records: number;
  readonly broken: number;
  readonly cpuUsPerRecord: number;
  readonly primaryCpuUsPerRecord: number;
}

/** A flow record of the usual size (~1.1 KB), different per worker and index. */
function sampleRecord(worker: string, i: number): string {
  return JSON.stringify({
    '@timestamp': new Date().toISOString(),
    event: { id: `${worker}-${i}`, kind: 'event', action: 'allow', outcome: 'success', duration: 1_234_567 },
    network: { protocol: 'http', transport: 'tcp' },
    source: { ip: '10.1.2.3', port: 40_000 + (i % 20_000), bytes: 312 },
    destination: { domain: 'updates.example.com', registered_domain: 'example.com', ip: '192.0.2.10', port: 80, bytes: 4567 },
    url: { original: `http://updates.example.com/v2/check/${i}?client=${'a1b2c3'.repeat(30)}`, scheme: 'http', domain: 'updates.example.com', port: 80, path: `/v2/check/${i}` },
    http: { version: '1.1', request: { method: 'GET' }, response: { status_code: 200, body: { bytes: 4096 } } },
    user_agent: { original: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36' },
    egress: { score: 12, reasons: ['uri_random'], signals: { uri_random: 12 }, rules: ['default-allow'], attribution: 'none' },
    rule: { id: 'default-allow' },
    tags: [],
  });
}

/** One flowlog run: this process is the primary, two forks of this file are the workers. */
async function flowLogRun(mode: LogMode, count: number, rate: number, dir: string): Promise<LogRun> {
  const file = join(dir, `${mode}.jsonl`);
  rmSync(file, { force: true });
  cluster.setupPrimary({ exec: fileURLToPath(import.meta.url), args: [], serialization: 'advanced' });
  const primaryLog = mode === 'ipc' ? openFlowLog(file, () => undefined) : null;
  const cpu0 = process.cpuUsage();
  let workerCpuMs = 0;
  await Promise.all(
    ['A', 'B'].map(
      (name) =>
        new Promise<void>((resolveRun, reject) => {
          const w = cluster.fork({ BENCH_FLOWLOG: mode, BENCH_FILE: file, BENCH_NAME: name, BENCH_COUNT: String(count), BENCH_RATE: String(rate) });
          w.on('message', (m: { kind?: string; lines?: Uint8Array; cpuMs?: number }) => {
            if (m.kind === 'flow-lines' && m.lines !== undefined) primaryLog?.writeLines(m.lines);
            else if (m.kind === 'done') workerCpuMs += m.cpuMs ?? 0;
          });
          w.on('exit', (code) => (code === 0 ? resolveRun() : reject(new Error(`flowlog worker exited with ${code}`))));
        }),
    ),
  );
  primaryLog?.flush();
  await primaryLog?.close();
  const c = process.cpuUsage(cpu0);
  const primaryCpuMs = (c.user + c.system) / 1000;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const lines = text.split('\n');
  lines.pop();
  let broken = 0;
  for (const l of lines) {
    try {
      JSON.parse(l);
    } catch {
      broken++;
    }
  }
  const n = 2 * count;
  return { mode, records: lines.length, broken, cpuUsPerRecord: ((primaryCpuMs + workerCpuMs) * 1000) / n, primaryCpuUsPerRecord: (primaryCpuMs * 1000) / n };
}

/** The worker side of a flowlog run. */
async function flowLogWorker(): Promise<void> {
  const mode = process.env.BENCH_FLOWLOG as LogMode;
  const name = process.env.BENCH_NAME ?? 'W';
  const count = Number(process.env.BENCH_COUNT);
  const rate = Number(process.env.BENCH_RATE);
  const send = (m: object, done: (err: Error | null) => void): void => void process.send?.(m, undefined, {}, (err: Error | null) => done(err ?? null));
  const log: FlowLog =
    mode === 'append'
      ? openFlowLog(process.env.BENCH_FILE ?? '', () => undefined)
      : mode === 'ipc'
        ? createIpcFlowLog((lines, n, done) => send({ kind: 'flow-lines', lines, count: n }, done), () => undefined)
        : { write: () => undefined, flush: () => undefined, close: () => Promise.resolve() };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    log.write(sampleRecord(name, i));
    // Paced like a proxy under steady load: yield to the event loop every 100 records.
    if (i % 100 === 99) {
      const wait = t0 + ((i + 1) / rate) * 1000 - performance.now();
      await new Promise((r) => (wait > 0 ? setTimeout(r, wait) : setImmediate(r)));
    }
  }
  log.flush();
  await log.close();
  const c = process.cpuUsage(cpu0);
  await new Promise<void>((r) => send({ kind: 'done', cpuMs: (c.user + c.system) / 1000 }, () => r()));
  process.exit(0);
}

async function flowLogSection(rounds: number): Promise<LogRun[]> {
  const dir = mkdtempSync(join(tmpdir(), 'egress-flowlog-bench-'));
  const runs: LogRun[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      for (const mode of ['none', 'ipc', 'append'] as const) {
        process.stderr.write(`flowlog round ${round + 1}/${rounds}: ${mode}\n`);
        runs.push(await flowLogRun(mode, 60_000, 15_000, dir));
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return runs;
}

// ---- main -----------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '8' }, only: { type: 'string', default: 'proxy,flowlog' } } });
  const rounds = Math.max(1, Number(values.rounds));
  const seconds = Math.max(2, Number(values.seconds));
  const only = new Set(values.only.split(','));
  const result: Record<string, unknown> = { bench: 'workers', rounds, seconds };

  if (only.has('flowlog')) {
    const runs = await flowLogSection(rounds);
    const none = median(runs.filter((r) => r.mode === 'none').map((r) => r.cpuUsPerRecord));
    const rows = (['ipc', 'append'] as const).map((mode) => {
      const mine = runs.filter((r) => r.mode === mode);
      return {
        mode,
        cpuUsPerRecord: median(mine.map((r) => r.cpuUsPerRecord)) - none,
        primaryCpuUsPerRecord: median(mine.map((r) => r.primaryCpuUsPerRecord)),
        broken: mine.reduce((s, r) => s + r.broken, 0),
        lost: mine.reduce((s, r) => s + (120_000 - r.records), 0),
      };
    });
    process.stderr.write('\nflow log, 2 workers × 60,000 records at 15,000/s each (medians; CPU over building the records):\n');
    for (const r of rows) {
      process.stderr.write(`  ${r.mode.padEnd(8)} ${r.cpuUsPerRecord.toFixed(1).padStart(6)} µs/record (primary ${r.primaryCpuUsPerRecord.toFixed(1)})  broken lines ${r.broken}, lost ${r.lost}\n`);
    }
    result.flowlog = { rows, runs };
  }

  if (only.has('proxy')) {
    const runs = await proxySection(rounds, seconds);
    const subjects: ProxySubject[] = ['1 worker', '2 workers', '2 workers, sched none'];
    const rows = subjects.map((subject) => {
      const mine = runs.filter((r) => r.subject === subject);
      return {
        subject,
        reqPerSec: median(mine.map((r) => r.reqPerSec)),
        cpuUsPerRequest: median(mine.map((r) => r.cpuUsPerRequest)),
        p99Ms: median(mine.map((r) => r.p99Ms)),
        problems: mine.flatMap((r) => r.problems),
      };
    });
    process.stderr.write(`\nproxy, wrk -t2 -c32 -d${seconds}s, plain HTTP GET, 1 KiB answers (medians of ${rounds}):\n`);
    for (const r of rows) {
      process.stderr.write(
        `  ${r.subject.padEnd(22)} ${r.reqPerSec.toFixed(0).padStart(7)} req/s  ${r.cpuUsPerRequest.toFixed(1).padStart(6)} µs CPU/request  p99 ${r.p99Ms.toFixed(1)} ms` +
          `${r.problems.length > 0 ? `  PROBLEMS: ${r.problems.join('; ')}` : ''}\n`,
      );
    }
    result.proxy = { rows, runs };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (cluster.isWorker) {
  flowLogWorker().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
} else {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      // exit() runs bench/lib/proc.ts' hook that kills every child still running (a proxy that failed to start).
      process.exit(1);
    },
  );
}

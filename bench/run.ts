/**
 * `npm run bench`: egress-inspector side by side with a direct connection and with Squid, in one run, on
 * loopback only (issue 2 "Performance", issue 3 "Performance"; method and figures in docs/performance.md).
 *
 *   npm run bench                              everything, about 3–4 minutes
 *   npm run bench -- --quick                   shorter runs, about 1.5 minutes (smoke test; noisier)
 *   npm run bench -- --only http,connect       sections: hello, http, latency, connect, observe
 *   npm run bench -- --no-build                use the existing dist/ instead of running tsc first
 *   npm run bench -- --cpu-prof                write V8 CPU profiles of the proxies to bench/results/profiles
 *   npm run bench -- --keep-temp               keep configs, flow logs and Squid's logs (path printed)
 *
 * Needs the Debian packages wrk and squid (`apt-get install -y wrk squid`; stop the squid service the
 * package starts — this script runs its own instance). Prints a table and writes bench/results/latest.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startOrigin, type Origin } from './lib/origin.js';
import { run, which, type Endpoint } from './lib/proc.js';
import { distEntry, startProxy, type ProxyInstance } from './lib/start-proxy.js';
import { startSquid, type SquidInstance } from './lib/start-squid.js';
import { bulkTransfer, captureClientHello, tunnelRate, type BulkResult, type RateResult } from './lib/tunnel-client.js';
import { runWrk, wrkProblems, type WrkResult } from './lib/wrk.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS_DIR = join(ROOT, 'bench', 'results');

const SECTIONS = ['hello', 'http', 'latency', 'connect', 'observe'] as const;
type Section = (typeof SECTIONS)[number];

// ---- settings -------------------------------------------------------------------------------------------

interface Settings {
  readonly http: { readonly connections: number; readonly warmupS: number; readonly durationS: number };
  readonly latency: { readonly warmupS: number; readonly durationS: number };
  readonly bulk: { readonly rounds: number; readonly maxBytes: number; readonly maxMs: number; readonly warmupBytes: number };
  readonly observe: {
    readonly rounds: number;
    readonly bulkMaxBytes: number;
    readonly bulkMaxMs: number;
    readonly rateMs: number;
    /** Direct and Squid tunnel rates, measured once for context. */
    readonly contextRateMs: number;
    readonly concurrency: number;
    readonly maxTunnels: number;
  };
  readonly helloIterations: number;
}

const MiB = 1024 * 1024;

const FULL: Settings = {
  http: { connections: 32, warmupS: 2, durationS: 10 },
  latency: { warmupS: 1, durationS: 5 },
  bulk: { rounds: 3, maxBytes: 4096 * MiB, maxMs: 2000, warmupBytes: 256 * MiB },
  observe: { rounds: 6, bulkMaxBytes: 2048 * MiB, bulkMaxMs: 1200, rateMs: 1500, contextRateMs: 2500, concurrency: 8, maxTunnels: 20_000 },
  helloIterations: 200_000,
};

const QUICK: Settings = {
  http: { connections: 32, warmupS: 1, durationS: 4 },
  latency: { warmupS: 1, durationS: 2 },
  bulk: { rounds: 1, maxBytes: 1024 * MiB, maxMs: 2000, warmupBytes: 64 * MiB },
  observe: { rounds: 2, bulkMaxBytes: 1024 * MiB, bulkMaxMs: 800, rateMs: 1000, contextRateMs: 1000, concurrency: 8, maxTunnels: 10_000 },
  helloIterations: 50_000,
};

/** The issues' targets. */
const TARGETS = {
  httpVsSquid: 1.5,
  addedP50Ms: 0.3,
  connectVsDirect: 0.8,
  observeCost: 0.05,
  helloMedianUs: 10,
} as const;

// ---- result shapes ----------------------------------------------------------------------------------------

type Subject = 'direct' | 'egress-inspector' | 'squid';

interface WrkRow {
  readonly subject: Subject;
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  readonly problems: string[];
  readonly raw: string;
}

interface BulkRow {
  readonly subject: string;
  /** Median over rounds. */
  readonly mbPerSec: number;
  readonly rounds: BulkResult[];
}

interface ObserveRow {
  readonly subject: string;
  /** Median over rounds. */
  readonly bulkMbPerSec: number | null;
  readonly tunnelsPerSec: number;
  readonly tunnelP50Ms: number;
  readonly tunnelP99Ms: number;
  readonly tunnelErrors: number;
  readonly firstError: string | null;
  readonly rounds: { readonly bulk: BulkResult | null; readonly rate: RateResult }[];
}

interface ObserveResult {
  readonly settings: string;
  readonly rows: ObserveRow[];
  /** Medians over rounds of the paired ratios (same round, back to back). */
  readonly bulkOnVsOff: number;
  readonly rateOnVsOff: number;
  readonly bulkPendVsOff: number;
  readonly ratePendVsOff: number;
}

interface TargetCheck {
  readonly id: string;
  readonly what: string;
  readonly value: number;
  readonly target: string;
  readonly ok: boolean;
}

interface Results {
  readonly bench: 'egress-inspector';
  readonly startedAt: string;
  finishedAt?: string;
  durationS?: number;
  readonly mode: 'full' | 'quick';
  readonly sections: readonly Section[];
  readonly machine: Record<string, unknown>;
  hello?: Record<string, unknown> | { error: string };
  http?: { settings: string; rows: WrkRow[]; proxyVsSquid: number } | { error: string };
  latency?: { settings: string; rows: WrkRow[]; addedP50Ms: number; squidAddedP50Ms: number } | { error: string };
  connect?: { settings: string; rows: BulkRow[]; proxyVsDirect: number; squidVsDirect: number } | { error: string };
  observe?: ObserveResult | { error: string };
  records?: Record<string, number>;
  targets: TargetCheck[];
}

// ---- small helpers ------------------------------------------------------------------------------------

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const fix = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');
const round = (n: number, digits: number): number => Number(n.toFixed(digits));

function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(headers), ...rows.map(line)].map((l) => `  ${l}`).join('\n');
}

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

function progress(text: string): void {
  process.stderr.write(`· ${text}\n`);
}

function check(id: string, what: string, value: number, target: string, ok: boolean): TargetCheck {
  return { id, what, value: round(value, 3), target, ok: Number.isFinite(value) && ok };
}

function verdict(c: TargetCheck): string {
  return c.ok ? 'met' : 'MISSED';
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---- flags and prerequisites --------------------------------------------------------------------------

interface Flags {
  readonly sections: readonly Section[];
  readonly quick: boolean;
  readonly build: boolean;
  readonly cpuProf: boolean;
  readonly keepTemp: boolean;
  readonly out: string;
}

function parseFlags(argv: string[]): Flags {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      'keep-temp': { type: 'boolean', default: false },
      out: { type: 'string' },
    },
    strict: true,
  });
  let sections: Section[] = [...SECTIONS];
  if (values.only !== undefined) {
    const wanted = values.only.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const unknown = wanted.filter((s) => !(SECTIONS as readonly string[]).includes(s));
    if (unknown.length > 0) throw new Error(`unknown section(s) ${unknown.join(', ')}; known: ${SECTIONS.join(', ')}`);
    sections = SECTIONS.filter((s) => wanted.includes(s));
  }
  return {
    sections,
    quick: values.quick,
    build: !values['no-build'],
    cpuProf: values['cpu-prof'],
    keepTemp: values['keep-temp'],
    out: resolve(values.out ?? join(RESULTS_DIR, 'latest.json')),
  };
}

function requireTools(sections: readonly Section[]): { wrk: string | null; squid: string | null } {
  const needWrk = sections.includes('http') || sections.includes('latency');
  const needSquid = sections.some((s) => s !== 'hello');
  const wrk = which('wrk');
  const squid = which('squid') ?? whichIn('/usr/sbin', 'squid');
  const missing: string[] = [];
  if (needWrk && wrk === null) missing.push('wrk');
  if (needSquid && squid === null) missing.push('squid');
  if (missing.length > 0) {
    throw new Error(
      `missing ${missing.join(' and ')}. Install the Debian package(s) with\n` +
        `    sudo apt-get install -y ${missing.join(' ')}\n` +
        (missing.includes('squid') ? '  then stop the service it starts (sudo systemctl disable --now squid); the bench runs its own Squid on loopback.\n' : ''),
    );
  }
  return { wrk, squid };
}

/** Squid lives in /usr/sbin, which is not on every user's PATH. */
function whichIn(dir: string, command: string): string | null {
  const saved = process.env.PATH;
  process.env.PATH = dir;
  try {
    return which(command);
  } finally {
    process.env.PATH = saved;
  }
}

async function build(): Promise<void> {
  progress('building dist/ (tsc -p tsconfig.build.json)');
  const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
  const result = await run(tsc, ['-p', 'tsconfig.build.json'], { cwd: ROOT, timeoutMs: 240_000 });
  if (result.code !== 0) {
    throw new Error(`the build failed (${result.code}); fix it or run with --no-build to measure the existing dist/:\n${result.stdout}${result.stderr}`);
  }
}

async function toolVersion(command: string | null, args: string[]): Promise<string | null> {
  if (command === null) return null;
  const r = await run(command, args, { timeoutMs: 10_000 });
  return `${r.stdout}${r.stderr}`.split('\n')[0]?.trim() ?? null;
}

// ---- sections -----------------------------------------------------------------------------------------

async function helloSection(settings: Settings): Promise<Record<string, unknown>> {
  const script = join(ROOT, 'bench', 'client-hello.bench.ts');
  progress(`client-hello.bench.ts (${settings.helloIterations} iterations)`);
  const r = await run(process.execPath, ['--import', 'tsx', script, String(settings.helloIterations)], { cwd: ROOT, timeoutMs: 90_000 });
  if (r.code !== 0) throw new Error(`client-hello.bench.ts exited with ${r.code}: ${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as Record<string, unknown>;
}

interface Subjects {
  readonly origin: Origin;
  readonly proxy: ProxyInstance;
  readonly squid: SquidInstance;
}

function url(e: Endpoint): string {
  return `http://${e.host}:${e.port}/`;
}

async function wrkRows(wrk: string, s: Subjects, threads: number, connections: number, warmupS: number, durationS: number): Promise<WrkRow[]> {
  const origin = url(s.origin.http);
  const plan: { subject: Subject; url: string; absoluteUri?: string }[] = [
    { subject: 'direct', url: origin },
    { subject: 'egress-inspector', url: url(s.proxy.proxy), absoluteUri: origin },
    { subject: 'squid', url: url(s.squid.proxy), absoluteUri: origin },
  ];
  const rows: WrkRow[] = [];
  for (const p of plan) {
    progress(`wrk -t${threads} -c${connections} -d${durationS}s → ${p.subject}`);
    // Warm-up: V8 tiers up the proxy's hot path, Squid and the origin open their upstream connections.
    await runWrk({ binary: wrk, url: p.url, ...(p.absoluteUri === undefined ? {} : { absoluteUri: p.absoluteUri }), threads, connections, durationS: warmupS });
    const r: WrkResult = await runWrk({
      binary: wrk,
      url: p.url,
      ...(p.absoluteUri === undefined ? {} : { absoluteUri: p.absoluteUri }),
      threads,
      connections,
      durationS,
    });
    rows.push({ subject: p.subject, reqPerSec: r.reqPerSec, p50Ms: r.latency.p50Ms, p99Ms: r.latency.p99Ms, requests: r.requests, problems: wrkProblems(r), raw: r.raw });
  }
  return rows;
}

function rowOf<T extends { subject: string }>(rows: readonly T[], subject: string): T {
  const row = rows.find((r) => r.subject === subject);
  if (row === undefined) throw new Error(`no ${subject} row`);
  return row;
}

async function connectSection(s: Subjects, hello: Buffer, settings: Settings): Promise<BulkRow[]> {
  const plan: { subject: Subject; via: Endpoint | null }[] = [
    { subject: 'direct', via: null },
    { subject: 'egress-inspector', via: s.proxy.proxy },
    { subject: 'squid', via: s.squid.proxy },
  ];
  const b = settings.bulk;
  const rounds = new Map<Subject, BulkResult[]>(plan.map((p) => [p.subject, []]));
  for (const p of plan) await bulkTransfer({ via: p.via, sink: s.origin.sink, preamble: hello, maxBytes: b.warmupBytes, maxMs: 1000 });
  for (let round = 0; round < b.rounds; round++) {
    for (const p of plan) {
      progress(`CONNECT bulk round ${round + 1}/${b.rounds}, one tunnel → ${p.subject}`);
      rounds.get(p.subject)?.push(await bulkTransfer({ via: p.via, sink: s.origin.sink, preamble: hello, maxBytes: b.maxBytes, maxMs: b.maxMs }));
    }
  }
  return plan.map((p) => {
    const rs = rounds.get(p.subject) ?? [];
    return { subject: p.subject, mbPerSec: median(rs.map((r) => r.mbPerSec)), rounds: rs };
  });
}

/**
 * Observation ON vs OFF (and a rule pending on the ClientHello), interleaved in rounds so that the
 * machine's drift hits every variant alike; ratios are paired within a round.
 */
async function observeSection(s: Subjects, off: ProxyInstance, pend: ProxyInstance, hello: Buffer, settings: Settings): Promise<ObserveResult> {
  const o = settings.observe;
  const contexts: { subject: string; via: Endpoint | null }[] = [
    { subject: 'direct', via: null },
    { subject: 'squid (plain CONNECT)', via: s.squid.proxy },
  ];
  const variants: { subject: string; via: Endpoint }[] = [
    { subject: 'observe OFF', via: off.proxy },
    { subject: 'observe ON', via: s.proxy.proxy },
    { subject: 'rule pends on hello', via: pend.proxy },
  ];
  const rounds = new Map<string, { bulk: BulkResult | null; rate: RateResult }[]>([...contexts, ...variants].map((v) => [v.subject, []]));
  // Context only (no target): how fast a bare TCP connection and Squid open tunnels here.
  for (const c of contexts) {
    progress(`tunnel rate → ${c.subject}`);
    const rate = await tunnelRate({ via: c.via, echo: s.origin.echo, hello, concurrency: o.concurrency, durationMs: o.contextRateMs, maxTunnels: o.maxTunnels });
    rounds.get(c.subject)?.push({ bulk: null, rate });
  }
  // Warm the three proxies' tunnel paths once before measuring.
  for (const v of variants) {
    await tunnelRate({ via: v.via, echo: s.origin.echo, hello, concurrency: o.concurrency, durationMs: 300, maxTunnels: 1000 });
    await bulkTransfer({ via: v.via, sink: s.origin.sink, preamble: hello, maxBytes: 64 * MiB, maxMs: 500 });
  }
  for (let round = 0; round < o.rounds; round++) {
    // Rotate the order each round: whoever runs first after a pause is not always the same variant.
    const order = variants.map((_, i) => variants[(i + round) % variants.length] as (typeof variants)[number]);
    for (const v of order) {
      progress(`observe round ${round + 1}/${o.rounds} → ${v.subject}`);
      const bulk = await bulkTransfer({ via: v.via, sink: s.origin.sink, preamble: hello, maxBytes: o.bulkMaxBytes, maxMs: o.bulkMaxMs });
      const rate = await tunnelRate({ via: v.via, echo: s.origin.echo, hello, concurrency: o.concurrency, durationMs: o.rateMs, maxTunnels: o.maxTunnels });
      rounds.get(v.subject)?.push({ bulk, rate });
    }
  }
  const rows: ObserveRow[] = [...contexts, ...variants].map((v) => {
    const rs = rounds.get(v.subject) ?? [];
    const bulks = rs.flatMap((r) => (r.bulk === null ? [] : [r.bulk.mbPerSec]));
    return {
      subject: v.subject,
      bulkMbPerSec: bulks.length === 0 ? null : median(bulks),
      tunnelsPerSec: median(rs.map((r) => r.rate.perSec)),
      tunnelP50Ms: median(rs.map((r) => r.rate.p50Ms)),
      tunnelP99Ms: median(rs.map((r) => r.rate.p99Ms)),
      tunnelErrors: rs.reduce((n, r) => n + r.rate.errors, 0),
      firstError: rs.find((r) => r.rate.firstError !== null)?.rate.firstError ?? null,
      rounds: rs,
    };
  });
  const paired = (a: string, b: string, pick: (r: { bulk: BulkResult | null; rate: RateResult }) => number): number => {
    const ra = rounds.get(a) ?? [];
    const rb = rounds.get(b) ?? [];
    return median(ra.map((r, i) => pick(r) / pick(rb[i] ?? r)));
  };
  const bulkOf = (r: { bulk: BulkResult | null }): number => r.bulk?.mbPerSec ?? Number.NaN;
  const rateOf = (r: { rate: RateResult }): number => r.rate.perSec;
  return {
    settings:
      `${o.rounds} interleaved round(s), medians; bulk: one tunnel, ClientHello then up to ${o.bulkMaxBytes / MiB} MiB or ${o.bulkMaxMs} ms; ` +
      `rate: ${o.concurrency} concurrent loops of CONNECT + ClientHello + 1 byte back + close, ${o.rateMs} ms ` +
      `(direct and Squid: once, ${o.contextRateMs} ms)`,
    rows,
    bulkOnVsOff: paired('observe ON', 'observe OFF', bulkOf),
    rateOnVsOff: paired('observe ON', 'observe OFF', rateOf),
    bulkPendVsOff: paired('rule pends on hello', 'observe OFF', bulkOf),
    ratePendVsOff: paired('rule pends on hello', 'observe OFF', rateOf),
  };
}

// ---- printing -----------------------------------------------------------------------------------------

function printWrk(title: string, rows: readonly WrkRow[]): void {
  say(`\n${title}`);
  say(
    table(
      ['', 'req/s', 'p50 ms', 'p99 ms', 'requests', 'problems'],
      rows.map((r) => [r.subject, fix(r.reqPerSec, 0), fix(r.p50Ms, 3), fix(r.p99Ms, 3), String(r.requests), r.problems.join('; ') || '-']),
    ),
  );
}

function printResults(res: Results): void {
  say(`\negress-inspector benchmark — ${res.mode} run, ${String(res.machine.cpus)} × ${String(res.machine.cpuModel)}, Node ${process.version}`);
  if (res.hello !== undefined) {
    say('\nClientHello parse + JA3 + JA4 (bench/client-hello.bench.ts)');
    say(`  ${'error' in res.hello ? `failed: ${String(res.hello.error)}` : `median ${String(res.hello.median_us)} µs, p99 ${String(res.hello.p99_us)} µs over ${String(res.hello.iterations)} hellos`}`);
  }
  if (res.http !== undefined) {
    if ('error' in res.http) say(`\nHTTP keep-alive: failed: ${res.http.error}`);
    else {
      printWrk(`HTTP keep-alive throughput (${res.http.settings})`, res.http.rows);
      say(`  egress-inspector / squid = ${fix(res.http.proxyVsSquid, 2)}×   (target ≥ ${TARGETS.httpVsSquid}×)`);
    }
  }
  if (res.latency !== undefined) {
    if ('error' in res.latency) say(`\nLow-concurrency latency: failed: ${res.latency.error}`);
    else {
      printWrk(`Latency at low concurrency (${res.latency.settings})`, res.latency.rows);
      say(`  p50 added by egress-inspector = ${fix(res.latency.addedP50Ms, 3)} ms   (target ≤ ${TARGETS.addedP50Ms} ms); by squid = ${fix(res.latency.squidAddedP50Ms, 3)} ms`);
    }
  }
  if (res.connect !== undefined) {
    if ('error' in res.connect) say(`\nCONNECT bulk: failed: ${res.connect.error}`);
    else {
      say(`\nCONNECT bulk throughput over one tunnel (${res.connect.settings})`);
      say(
        table(
          ['', 'MB/s (median)', 'rounds MB/s'],
          res.connect.rows.map((r) => [r.subject, fix(r.mbPerSec, 0), r.rounds.map((x) => fix(x.mbPerSec, 0)).join(' ')]),
        ),
      );
      say(`  egress-inspector / direct = ${fix(res.connect.proxyVsDirect, 2)}   (target ≥ ${TARGETS.connectVsDirect}); squid / direct = ${fix(res.connect.squidVsDirect, 2)}`);
    }
  }
  if (res.observe !== undefined) {
    if ('error' in res.observe) say(`\nObserve cost: failed: ${res.observe.error}`);
    else {
      const ob = res.observe;
      say(`\nTLS observation cost (${ob.settings})`);
      say(
        table(
          ['', 'bulk MB/s', 'tunnels/s', 'tunnel p50 ms', 'p99 ms', 'errors'],
          ob.rows.map((r) => [
            r.subject,
            r.bulkMbPerSec === null ? '-' : fix(r.bulkMbPerSec, 0),
            fix(r.tunnelsPerSec, 0),
            fix(r.tunnelP50Ms, 2),
            fix(r.tunnelP99Ms, 2),
            r.tunnelErrors === 0 ? '0' : `${r.tunnelErrors} (${r.firstError ?? ''})`,
          ]),
        ),
      );
      say(`  observe ON / OFF: bulk ${fix(ob.bulkOnVsOff, 3)}, tunnels/s ${fix(ob.rateOnVsOff, 3)}   (target ≥ ${1 - TARGETS.observeCost})`);
      say(`  rule pending on the hello / OFF: bulk ${fix(ob.bulkPendVsOff, 3)}, tunnels/s ${fix(ob.ratePendVsOff, 3)}   (no target; the price of deciding on the hello)`);
    }
  }
  if (res.records !== undefined) {
    say(`\nRecords written: ${Object.entries(res.records).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  say('\nTargets');
  say(table(['', 'value', 'target', ''], res.targets.map((t) => [t.what, String(t.value), t.target, verdict(t)])));
}

// ---- main -----------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const settings = flags.quick ? QUICK : FULL;
  const tools = requireTools(flags.sections);
  const t0 = Date.now();
  const results: Results = {
    bench: 'egress-inspector',
    startedAt: new Date(t0).toISOString(),
    mode: flags.quick ? 'quick' : 'full',
    sections: flags.sections,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
      kernel: `${os.type()} ${os.release()}`,
      node: process.version,
      wrk: await toolVersion(tools.wrk, ['-v']),
      squid: await toolVersion(tools.squid, ['-v']),
      loadAvgAtStart: os.loadavg().map((n) => round(n, 2)),
    },
    targets: [],
  };

  if (flags.sections.includes('hello')) {
    // First, while nothing else of ours runs: it measures CPU time per hello.
    try {
      results.hello = await helloSection(settings);
      const median = Number(results.hello.median_us);
      results.targets.push(check('hello.median_us', 'ClientHello parse+JA3+JA4 median µs', median, `≤ ${TARGETS.helloMedianUs}`, median <= TARGETS.helloMedianUs));
    } catch (err) {
      results.hello = { error: errorText(err) };
    }
  }

  const needServers = flags.sections.some((s) => s !== 'hello');
  const tmp = mkdtempSync(join(os.tmpdir(), 'egress-bench-'));
  const started: { stop(): Promise<void> }[] = [];
  let squidDir: string | null = null;
  try {
    if (needServers) {
      if (flags.build) await build();
      if (flags.cpuProf) mkdirSync(join(RESULTS_DIR, 'profiles'), { recursive: true });
      const nodeArgs = flags.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${join(RESULTS_DIR, 'profiles')}`] : [];
      progress(`starting origin, egress-inspector (${distEntry(ROOT)}) and squid; temp dir ${tmp}`);
      const defaultPolicy = join(ROOT, 'policies', 'default.yaml');
      const origin = await startOrigin();
      started.push(origin);
      const proxy = await startProxy({ root: ROOT, dir: tmp, name: 'proxy', observe: true, policyFiles: [defaultPolicy], nodeArgs });
      started.push(proxy);
      const squid = await startSquid({ binary: tools.squid as string });
      started.push(squid);
      squidDir = squid.dir;
      const subjects: Subjects = { origin, proxy, squid };
      const hello = await captureClientHello('bench.example');

      if (flags.sections.includes('http')) {
        try {
          const h = settings.http;
          const rows = await wrkRows(tools.wrk as string, subjects, 1, h.connections, h.warmupS, h.durationS);
          const proxyVsSquid = rowOf(rows, 'egress-inspector').reqPerSec / rowOf(rows, 'squid').reqPerSec;
          results.http = { settings: `wrk -t1 -c${h.connections} -d${h.durationS}s after a ${h.warmupS}s warm-up, 1 KiB body`, rows, proxyVsSquid };
          results.targets.push(check('http.proxy_vs_squid', 'HTTP req/s, egress-inspector / squid', proxyVsSquid, `≥ ${TARGETS.httpVsSquid}`, proxyVsSquid >= TARGETS.httpVsSquid));
        } catch (err) {
          results.http = { error: errorText(err) };
        }
      }

      if (flags.sections.includes('latency')) {
        try {
          const l = settings.latency;
          const rows = await wrkRows(tools.wrk as string, subjects, 1, 1, l.warmupS, l.durationS);
          const direct = rowOf(rows, 'direct').p50Ms;
          const addedP50Ms = rowOf(rows, 'egress-inspector').p50Ms - direct;
          const squidAddedP50Ms = rowOf(rows, 'squid').p50Ms - direct;
          results.latency = { settings: `wrk -t1 -c1 -d${l.durationS}s after a ${l.warmupS}s warm-up`, rows, addedP50Ms, squidAddedP50Ms };
          results.targets.push(check('latency.added_p50_ms', 'p50 added at -c1, ms', addedP50Ms, `≤ ${TARGETS.addedP50Ms}`, addedP50Ms <= TARGETS.addedP50Ms));
        } catch (err) {
          results.latency = { error: errorText(err) };
        }
      }

      if (flags.sections.includes('connect')) {
        try {
          const rows = await connectSection(subjects, hello, settings);
          const direct = rowOf(rows, 'direct').mbPerSec;
          const proxyVsDirect = rowOf(rows, 'egress-inspector').mbPerSec / direct;
          const squidVsDirect = rowOf(rows, 'squid').mbPerSec / direct;
          results.connect = {
            settings: `${settings.bulk.rounds} interleaved round(s) of a ClientHello then up to ${settings.bulk.maxBytes / MiB} MiB or ${settings.bulk.maxMs} ms one way, after a warm-up transfer; median`,
            rows,
            proxyVsDirect,
            squidVsDirect,
          };
          results.targets.push(check('connect.proxy_vs_direct', 'CONNECT MB/s, egress-inspector / direct', proxyVsDirect, `≥ ${TARGETS.connectVsDirect}`, proxyVsDirect >= TARGETS.connectVsDirect));
        } catch (err) {
          results.connect = { error: errorText(err) };
        }
      }

      if (flags.sections.includes('observe')) {
        try {
          const pendPolicy = join(tmp, 'pend-on-hello.yaml');
          writeFileSync(
            pendPolicy,
            [
              'version: 1',
              'rules:',
              '  # Never matches, but needs the ClientHello: the proxy must read and buffer it before dialing.',
              '  - id: bench-pend-on-hello',
              '    when: { tls.client.ja4: t13d_never }',
              '    action: block',
              '',
            ].join('\n'),
          );
          const off = await startProxy({ root: ROOT, dir: tmp, name: 'proxy-observe-off', observe: false, policyFiles: [defaultPolicy], nodeArgs });
          started.push(off);
          const pend = await startProxy({ root: ROOT, dir: tmp, name: 'proxy-pend', observe: true, policyFiles: [defaultPolicy, pendPolicy], nodeArgs });
          started.push(pend);
          const ob = await observeSection(subjects, off, pend, hello, settings);
          results.observe = ob;
          const limit = 1 - TARGETS.observeCost;
          results.targets.push(check('observe.bulk_on_vs_off', 'CONNECT MB/s, observe ON / OFF', ob.bulkOnVsOff, `≥ ${limit}`, ob.bulkOnVsOff >= limit));
          results.targets.push(check('observe.rate_on_vs_off', 'new tunnels/s, observe ON / OFF', ob.rateOnVsOff, `≥ ${limit}`, ob.rateOnVsOff >= limit));
        } catch (err) {
          results.observe = { error: errorText(err) };
        }
      }

      // Both proxies must have recorded what they carried (the proxy writes a record per request and per tunnel).
      progress('stopping servers, counting records');
      await proxy.stop();
      await squid.stop();
      results.records = { 'egress-inspector flow records': await proxy.flowRecords(), 'squid access.log lines': await squid.accessRecords() };
    }
  } finally {
    await Promise.allSettled(started.map((s) => s.stop()));
    if (flags.keepTemp) progress(`kept ${tmp}${squidDir === null ? '' : ` and ${squidDir}`}`);
    else {
      rmSync(tmp, { recursive: true, force: true });
      if (squidDir !== null) rmSync(squidDir, { recursive: true, force: true });
    }
  }

  results.finishedAt = new Date().toISOString();
  results.durationS = round((Date.now() - t0) / 1000, 1);
  results.machine.loadAvgAtEnd = os.loadavg().map((n) => round(n, 2));
  mkdirSync(dirname(flags.out), { recursive: true });
  writeFileSync(flags.out, `${JSON.stringify(results, null, 2)}\n`);
  printResults(results);
  say(`\nWrote ${flags.out} (${results.durationS} s)`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${errorText(err)}\n`);
  process.exit(1);
});

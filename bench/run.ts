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
import { join } from 'node:path';
import { startOrigin, type Origin } from './lib/origin.js';
import { run, type Endpoint } from './lib/proc.js';
import {
  atLeast,
  atMost,
  attempt,
  build,
  describeMachine,
  finishRun,
  fix,
  median,
  parseFlags,
  printFailed,
  printTargets,
  progressLogger,
  requireTools,
  RESULTS_DIR,
  ROOT,
  rotated,
  rowOf,
  runMain,
  say,
  table,
  urlOf,
  type TargetCheck,
} from './lib/report.js';
import { distEntry, startProxy, type ProxyInstance } from './lib/start-proxy.js';
import { startSquid, type SquidInstance } from './lib/start-squid.js';
import { bulkTransfer, captureClientHello, tunnelRate, type BulkResult, type RateResult } from './lib/tunnel-client.js';
import { runWrk, wrkProblems, type WrkResult } from './lib/wrk.js';

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

const progress = progressLogger();

// ---- prerequisites ------------------------------------------------------------------------------------

/** wrk for the wrk sections, Squid for every section that starts servers. */
function requiredTools(sections: readonly Section[]): { wrk: string | null; squid: string | null } {
  return requireTools({ wrk: sections.includes('http') || sections.includes('latency'), squid: sections.some((s) => s !== 'hello') });
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

async function wrkRows(wrk: string, s: Subjects, threads: number, connections: number, warmupS: number, durationS: number): Promise<WrkRow[]> {
  const origin = urlOf(s.origin.http);
  const plan: { subject: Subject; url: string; absoluteUri?: string }[] = [
    { subject: 'direct', url: origin },
    { subject: 'egress-inspector', url: urlOf(s.proxy.proxy), absoluteUri: origin },
    { subject: 'squid', url: urlOf(s.squid.proxy), absoluteUri: origin },
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
    for (const v of rotated(variants, round)) {
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
    if ('error' in res.http) printFailed('HTTP keep-alive', res.http);
    else {
      printWrk(`HTTP keep-alive throughput (${res.http.settings})`, res.http.rows);
      say(`  egress-inspector / squid = ${fix(res.http.proxyVsSquid, 2)}×   (target ≥ ${TARGETS.httpVsSquid}×)`);
    }
  }
  if (res.latency !== undefined) {
    if ('error' in res.latency) printFailed('Low-concurrency latency', res.latency);
    else {
      printWrk(`Latency at low concurrency (${res.latency.settings})`, res.latency.rows);
      say(`  p50 added by egress-inspector = ${fix(res.latency.addedP50Ms, 3)} ms   (target ≤ ${TARGETS.addedP50Ms} ms); by squid = ${fix(res.latency.squidAddedP50Ms, 3)} ms`);
    }
  }
  if (res.connect !== undefined) {
    if ('error' in res.connect) printFailed('CONNECT bulk', res.connect);
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
    if ('error' in res.observe) printFailed('Observe cost', res.observe);
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
  printTargets('Targets', res.targets);
}

// ---- main -----------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), { sections: SECTIONS, outFile: 'latest.json', cpuProf: true });
  const settings = flags.quick ? QUICK : FULL;
  const tools = requiredTools(flags.sections);
  const t0 = Date.now();
  const results: Results = {
    bench: 'egress-inspector',
    startedAt: new Date(t0).toISOString(),
    mode: flags.quick ? 'quick' : 'full',
    sections: flags.sections,
    machine: await describeMachine(tools),
    targets: [],
  };

  if (flags.sections.includes('hello')) {
    // First, while nothing else of ours runs: it measures CPU time per hello.
    results.hello = await attempt(async () => {
      const hello = await helloSection(settings);
      results.targets.push(atMost('hello.median_us', 'ClientHello parse+JA3+JA4 median µs', Number(hello.median_us), TARGETS.helloMedianUs));
      return hello;
    });
  }

  const needServers = flags.sections.some((s) => s !== 'hello');
  const tmp = mkdtempSync(join(os.tmpdir(), 'egress-bench-'));
  const started: { stop(): Promise<void> }[] = [];
  let squidDir: string | null = null;
  try {
    if (needServers) {
      if (flags.build) await build(progress);
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
        results.http = await attempt(async () => {
          const h = settings.http;
          const rows = await wrkRows(tools.wrk as string, subjects, 1, h.connections, h.warmupS, h.durationS);
          const proxyVsSquid = rowOf(rows, 'egress-inspector').reqPerSec / rowOf(rows, 'squid').reqPerSec;
          results.targets.push(atLeast('http.proxy_vs_squid', 'HTTP req/s, egress-inspector / squid', proxyVsSquid, TARGETS.httpVsSquid));
          return { settings: `wrk -t1 -c${h.connections} -d${h.durationS}s after a ${h.warmupS}s warm-up, 1 KiB body`, rows, proxyVsSquid };
        });
      }

      if (flags.sections.includes('latency')) {
        results.latency = await attempt(async () => {
          const l = settings.latency;
          const rows = await wrkRows(tools.wrk as string, subjects, 1, 1, l.warmupS, l.durationS);
          const direct = rowOf(rows, 'direct').p50Ms;
          const addedP50Ms = rowOf(rows, 'egress-inspector').p50Ms - direct;
          const squidAddedP50Ms = rowOf(rows, 'squid').p50Ms - direct;
          results.targets.push(atMost('latency.added_p50_ms', 'p50 added at -c1, ms', addedP50Ms, TARGETS.addedP50Ms));
          return { settings: `wrk -t1 -c1 -d${l.durationS}s after a ${l.warmupS}s warm-up`, rows, addedP50Ms, squidAddedP50Ms };
        });
      }

      if (flags.sections.includes('connect')) {
        results.connect = await attempt(async () => {
          const rows = await connectSection(subjects, hello, settings);
          const direct = rowOf(rows, 'direct').mbPerSec;
          const proxyVsDirect = rowOf(rows, 'egress-inspector').mbPerSec / direct;
          const squidVsDirect = rowOf(rows, 'squid').mbPerSec / direct;
          results.targets.push(atLeast('connect.proxy_vs_direct', 'CONNECT MB/s, egress-inspector / direct', proxyVsDirect, TARGETS.connectVsDirect));
          return {
            settings: `${settings.bulk.rounds} interleaved round(s) of a ClientHello then up to ${settings.bulk.maxBytes / MiB} MiB or ${settings.bulk.maxMs} ms one way, after a warm-up transfer; median`,
            rows,
            proxyVsDirect,
            squidVsDirect,
          };
        });
      }

      if (flags.sections.includes('observe')) {
        results.observe = await attempt(async () => {
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
          const limit = 1 - TARGETS.observeCost;
          results.targets.push(atLeast('observe.bulk_on_vs_off', 'CONNECT MB/s, observe ON / OFF', ob.bulkOnVsOff, limit));
          results.targets.push(atLeast('observe.rate_on_vs_off', 'new tunnels/s, observe ON / OFF', ob.rateOnVsOff, limit));
          return ob;
        });
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

  finishRun(results, t0, flags.out, printResults);
}

runMain('bench', main);

/**
 * Issue 9 "proxy core speed and memory": egress-inspector side by side with Squid, with a bare Node forward
 * proxy and with no proxy at all, in one run, on loopback only.
 *
 *   npx tsx bench/core.bench.ts                     everything, about 5 minutes (plus the build)
 *   npx tsx bench/core.bench.ts --quick             shorter and fewer rounds, about 2 minutes (noisier)
 *   npx tsx bench/core.bench.ts --only http,tunnels sections: http, http-close, latency, connect-bulk,
 *                                                   tunnels, rss, cpu (cpu needs http and adds it)
 *   npx tsx bench/core.bench.ts --no-build          measure the dist/ that is already there
 *   npx tsx bench/core.bench.ts --keep-temp         keep configs, flow log and Squid's logs (path printed)
 *
 * Subjects:
 * - direct: the load generator talks to the origin itself (context: what loopback and the origin allow).
 * - squid: Squid 5.7 (Debian), one process (`-N`, `workers 1`), no cache, access log to a file
 *   (bench/lib/start-squid.ts).
 * - bare-node: an idiomatic Node forward proxy with no inspection (bench/lib/bare-node.ts): what Node itself
 *   costs. egress-inspector / bare-node is the price of our own work; bare-node / squid the platform's.
 * - egress-inspector: dist/main.js with the shipped default policy and flow records to a file
 *   (bench/lib/start-proxy.ts), as Squid writes its access log.
 *
 * Placement: the machine this was written on has 2 cores. Each proxy under test is pinned to core 1
 * (`taskset -a -p -c 1`, all threads and child processes); this script, wrk and the origins run on core 0
 * (this process pins itself first, and its children inherit the mask). Only one proxy carries load at a
 * time, so each has core 1 to itself apart from whatever else the machine runs. With fewer than 2 cores
 * (or no taskset) nothing is pinned and the JSON says so.
 *
 * Sections (every loop is bounded in count and time; rounds alternate the subjects, rotating the order
 * each round, so drift in the machine's load hits every subject alike; each section warms up first):
 * 1. http: keep-alive, `wrk -t1 -c64`, 1 KiB body: req/s, p50, p99 (medians of rounds).
 * 2. http-close: a new connection per request (`-H 'Connection: close'`): req/s. Proxies keep their
 *    upstream connection (as a deployed proxy would); direct uses the origin's close-after-one responder.
 *    Each subject is first checked to really close after `Connection: close`, else the figure is flagged.
 * 3. latency: `wrk -t1 -c1`: p50 added over direct.
 * 4. connect-bulk: one CONNECT tunnel, a ClientHello then random bytes, up (client → origin) and down
 *    (origin → client) measured separately, bounded bytes and time, median of rounds; MB/s = 10^6 B/s.
 * 5. tunnels: new CONNECT tunnels/s, 16 concurrent loops of CONNECT + ClientHello + 1 byte back + close.
 * 6. rss: per proxy process, VmRSS at idle right after start, VmRSS sampled every 500 ms over the whole
 *    run, VmHWM (the kernel's peak) read at the end, from /proc/<pid>/status.
 * 7. cpu: per proxy, utime + stime (/proc/<pid>/stat, all threads) over the measured http runs divided by
 *    the requests wrk completed — the figure that does not depend on how busy the machine is. The same is
 *    reported per request for http-close, per tunnel, and per GB of bulk, for whichever sections ran.
 *
 * Needs the Debian packages wrk, squid and util-linux (taskset). Prints one table per section and the
 * issue's targets, and writes bench/results/core-latest.json (bench/results/ is not committed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { startBareNode } from './lib/bare-node.js';
import { startOrigin, type Origin } from './lib/origin.js';
import { pinToCpus, readCoreTimes, readCpuSeconds, readMemory, sampleMemory, sleep, which, type Endpoint, type MemorySampler } from './lib/proc.js';
import {
  atLeast,
  atMost,
  attempt,
  build,
  describeMachine,
  finishRun,
  fix,
  medianOfFinite,
  parseFlags,
  printFailed,
  printTargets,
  progressLogger,
  requireTools,
  ROOT,
  rotated,
  round,
  rowOf,
  runMain,
  say,
  table,
  urlOf,
  type Failed,
  type TargetCheck,
  startWatchdog,
} from './lib/report.js';
import { distEntry, startProxy } from './lib/start-proxy.js';
import { startSquid } from './lib/start-squid.js';
import { bulkReceive, bulkTransfer, captureClientHello, tunnelRate, type BulkResult, type RateResult } from './lib/tunnel-client.js';
import { runWrk, wrkProblems, type WrkResult } from './lib/wrk.js';

const SECTIONS = ['http', 'http-close', 'latency', 'connect-bulk', 'tunnels', 'rss', 'cpu'] as const;
type Section = (typeof SECTIONS)[number];

const PROXY_NAMES = ['squid', 'bare-node', 'egress-inspector'] as const;
type ProxyName = (typeof PROXY_NAMES)[number];
type SubjectName = 'direct' | ProxyName;

/** Where the proxy under test runs, and where everything else does. */
const PROXY_CPU = 1;
const LOAD_CPU = 0;

// ---- settings -------------------------------------------------------------------------------------------

interface Settings {
  readonly http: { readonly connections: number; readonly warmupS: number; readonly durationS: number; readonly rounds: number };
  readonly httpClose: { readonly connections: number; readonly warmupS: number; readonly durationS: number; readonly rounds: number };
  readonly latency: { readonly warmupS: number; readonly durationS: number; readonly rounds: number };
  readonly bulk: { readonly rounds: number; readonly maxBytes: number; readonly maxMs: number; readonly warmupBytes: number; readonly warmupMs: number };
  readonly tunnels: { readonly concurrency: number; readonly rounds: number; readonly durationMs: number; readonly maxTunnels: number; readonly warmupMs: number };
  readonly rssIntervalMs: number;
  /** The whole run (after the build) is killed past this: a hang never outlives the bench. */
  readonly watchdogS: number;
}

const MiB = 1024 * 1024;

// Full: ~70 + 40 + 40 + 45 + 30 s of load ≈ 4 minutes, plus start-up.
const FULL: Settings = {
  http: { connections: 64, warmupS: 2, durationS: 5, rounds: 3 },
  httpClose: { connections: 64, warmupS: 1, durationS: 3, rounds: 3 },
  latency: { warmupS: 1, durationS: 3, rounds: 3 },
  bulk: { rounds: 3, maxBytes: 2048 * MiB, maxMs: 1500, warmupBytes: 64 * MiB, warmupMs: 500 },
  tunnels: { concurrency: 16, rounds: 3, durationMs: 2000, maxTunnels: 40_000, warmupMs: 400 },
  rssIntervalMs: 500,
  watchdogS: 9 * 60,
};

// Quick: ~28 + 20 + 20 + 16 + 10 s of load ≈ 1.6 minutes, plus start-up.
const QUICK: Settings = {
  http: { connections: 64, warmupS: 1, durationS: 3, rounds: 2 },
  httpClose: { connections: 64, warmupS: 1, durationS: 2, rounds: 2 },
  latency: { warmupS: 1, durationS: 2, rounds: 2 },
  bulk: { rounds: 2, maxBytes: 1024 * MiB, maxMs: 800, warmupBytes: 32 * MiB, warmupMs: 300 },
  tunnels: { concurrency: 16, rounds: 2, durationMs: 1000, maxTunnels: 20_000, warmupMs: 300 },
  rssIntervalMs: 500,
  watchdogS: 5 * 60,
};

/** Issue 9's targets. */
const TARGETS = {
  httpVsSquid: 1.2,
  httpCloseVsSquid: 1.0,
  addedP50Ms: 0.2,
  bulkVsSquid: 1.5,
  tunnelsVsSquid: 1.5,
  peakRssMB: 150,
} as const;

// ---- result shapes ----------------------------------------------------------------------------------------

interface Ratios {
  /** egress-inspector / squid. */
  readonly vsSquid: number;
  /** egress-inspector / bare-node. */
  readonly vsBareNode: number;
}

interface WrkRound {
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  /** CPU seconds the proxy used during this run; null for direct. */
  readonly cpuS: number | null;
  /** Share of the proxy's CPU that other processes took during this run (see `withCpu`). */
  readonly otherShare: number | null;
  readonly problems: string[];
  readonly raw: string;
}

interface WrkRow {
  readonly subject: SubjectName;
  /** Medians over rounds. */
  readonly reqPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Summed over rounds. */
  readonly requests: number;
  /** Proxy CPU over the measured runs ÷ requests, µs; null for direct. */
  readonly cpuUsPerRequest: number | null;
  readonly problems: string[];
  readonly rounds: WrkRound[];
}

interface WrkSection {
  readonly settings: string;
  readonly rows: WrkRow[];
  /** Of req/s (latency section: of added p50). */
  readonly ratios: Ratios;
}

interface CloseCheck {
  readonly subject: SubjectName;
  readonly status: string;
  readonly closed: boolean;
}

interface LatencyRow extends WrkRow {
  /** Median p50 minus direct's median p50, ms; 0 for direct. */
  readonly addedP50Ms: number;
}

interface BulkRound extends BulkResult {
  readonly cpuS: number | null;
  readonly otherShare: number | null;
}

interface BulkRow {
  readonly subject: SubjectName;
  /** Median over rounds. */
  readonly mbPerSec: number;
  /** Proxy CPU seconds per 10^9 bytes carried; null for direct. */
  readonly cpuSPerGB: number | null;
  readonly rounds: BulkRound[];
}

interface TunnelRound extends RateResult {
  readonly cpuS: number | null;
  readonly otherShare: number | null;
}

interface TunnelRow {
  readonly subject: SubjectName;
  /** Medians over rounds. */
  readonly perSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly cpuUsPerTunnel: number | null;
  readonly rounds: TunnelRound[];
}

interface RssRow {
  readonly subject: ProxyName;
  readonly pid: number;
  /** VmRSS right after start (after a short settle), MB = 10^6 bytes. */
  readonly idleMB: number;
  /** VmHWM read at the end of the run, MB. */
  readonly hwmMB: number;
  /** Highest VmRSS the sampler saw, MB. */
  readonly sampledPeakMB: number;
  readonly samples: number;
  /** max(hwm, sampled peak). */
  readonly peakMB: number;
  /** Every VmRSS sample, MB, in order: shows whether memory plateaus or keeps growing. */
  readonly traceMB: number[];
}

interface CpuRow {
  readonly subject: ProxyName;
  readonly usPerRequest: number | null;
  readonly usPerRequestClose: number | null;
  readonly usPerTunnel: number | null;
  readonly sPerGB: number | null;
}

interface Results {
  readonly bench: 'egress-inspector core (issue 9)';
  readonly startedAt: string;
  finishedAt?: string;
  durationS?: number;
  readonly mode: 'full' | 'quick';
  readonly sections: readonly Section[];
  readonly settings: Settings;
  readonly machine: Record<string, unknown>;
  pinning?: { readonly applied: boolean; readonly proxyCpu: number; readonly loadCpu: number; readonly note: string; readonly pids: Record<string, number[]> };
  http?: WrkSection | Failed;
  httpClose?: (WrkSection & { readonly closeChecks: CloseCheck[] }) | Failed;
  latency?: (WrkSection & { readonly rows: LatencyRow[] }) | Failed;
  connectBulk?: { readonly settings: string; readonly up: BulkRow[]; readonly down: BulkRow[]; readonly upRatios: Ratios; readonly downRatios: Ratios } | Failed;
  tunnels?: { readonly settings: string; readonly rows: TunnelRow[]; readonly ratios: Ratios } | Failed;
  rss?: { readonly settings: string; readonly rows: RssRow[]; readonly ratios: Ratios } | Failed;
  cpu?: { readonly settings: string; readonly rows: CpuRow[]; readonly ratios: Ratios } | Failed;
  records?: Record<string, number>;
  targets: TargetCheck[];
}

// ---- small helpers ------------------------------------------------------------------------------------

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);
const kibToMB = (kib: number): number => (kib * 1024) / 1e6;

const progress = progressLogger(Date.now());

/** egress-inspector's figure over Squid's and over bare-node's. */
function ratiosOf<T extends { subject: string }>(rows: readonly T[], pick: (row: T) => number | null): Ratios {
  const value = (subject: ProxyName): number => {
    const row = rows.find((r) => r.subject === subject);
    return row === undefined ? Number.NaN : (pick(row) ?? Number.NaN);
  };
  const ours = value('egress-inspector');
  return { vsSquid: ours / value('squid'), vsBareNode: ours / value('bare-node') };
}

function ratioLine(what: string, r: Ratios, note = ''): string {
  return `  ${what}: egress-inspector / squid = ${fix(r.vsSquid, 2)}×, egress-inspector / bare-node = ${fix(r.vsBareNode, 2)}×${note === '' ? '' : `   ${note}`}`;
}

// ---- subjects ---------------------------------------------------------------------------------------------

interface ProxyHandle {
  readonly name: ProxyName;
  readonly endpoint: Endpoint;
  readonly pid: number;
  stop(): Promise<void>;
}

interface Subject {
  readonly name: SubjectName;
  /** null: direct. */
  readonly proxy: ProxyHandle | null;
}

interface Bench {
  /** Proxies pinned to PROXY_CPU (so the core's own counters mean something). */
  readonly pinned: boolean;
  readonly wrk: string;
  readonly origin: Origin;
  readonly subjects: readonly Subject[];
  readonly hello: Buffer;
  readonly settings: Settings;
}

function pidOf(name: string, pid: number | undefined): number {
  if (pid === undefined) throw new Error(`${name} has no pid (did it start?)`);
  return pid;
}

interface Measured<T> {
  readonly result: T;
  /** CPU seconds the proxy spent while the work ran (null for direct, or if the process vanished). */
  readonly cpuS: number | null;
  /**
   * The share of the proxy's core that OTHER processes used meanwhile: (core busy − proxy CPU) ÷ elapsed.
   * This machine is shared; a run where others took half the core measured half a core. Null unpinned.
   */
  readonly otherShare: number | null;
}

async function withCpu<T>(proxy: ProxyHandle | null, pinned: boolean, work: () => Promise<T>): Promise<Measured<T>> {
  const coreBefore = pinned ? await readCoreTimes(PROXY_CPU) : null;
  const before = proxy === null ? null : await readCpuSeconds(proxy.pid);
  const result = await work();
  const after = proxy === null ? null : await readCpuSeconds(proxy.pid);
  const coreAfter = pinned ? await readCoreTimes(PROXY_CPU) : null;
  const cpuS = before === null || after === null ? null : after - before;
  let otherShare: number | null = null;
  if (coreBefore !== null && coreAfter !== null && coreAfter.totalS > coreBefore.totalS && (proxy === null || cpuS !== null)) {
    const others = coreAfter.busyS - coreBefore.busyS - (cpuS ?? 0);
    otherShare = Math.min(1, Math.max(0, others / (coreAfter.totalS - coreBefore.totalS)));
  }
  return { result, cpuS, otherShare };
}

/** "others took 12–40 % of CPU 1 (median 25 %)" over every measured run of a section. */
function noiseLine(shares: readonly (number | null)[]): string {
  const known = shares.filter((x): x is number => x !== null);
  if (known.length === 0) return '  (core not pinned: no noise figure)';
  const pct = (x: number): string => `${Math.round(x * 100)} %`;
  return `  other processes took ${pct(Math.min(...known))}–${pct(Math.max(...known))} of CPU ${PROXY_CPU} during the measured runs (median ${pct(medianOfFinite(known))})`;
}

// ---- sections -----------------------------------------------------------------------------------------

interface WrkPlan {
  readonly connections: number;
  readonly warmupS: number;
  readonly durationS: number;
  readonly rounds: number;
  readonly headers?: readonly string[];
  /** Where direct sends its requests (http-close: the origin that closes). */
  readonly directOrigin: Endpoint;
  readonly label: string;
}

function wrkTarget(b: Bench, s: Subject, plan: WrkPlan): { url: string; absoluteUri?: string } {
  if (s.proxy === null) return { url: urlOf(plan.directOrigin) };
  return { url: urlOf(s.proxy.endpoint), absoluteUri: urlOf(b.origin.http) };
}

async function wrkOnce(b: Bench, s: Subject, plan: WrkPlan, durationS: number): Promise<WrkResult> {
  return runWrk({ binary: b.wrk, ...wrkTarget(b, s, plan), threads: 1, connections: plan.connections, durationS, ...(plan.headers === undefined ? {} : { headers: plan.headers }) });
}

async function wrkSection(b: Bench, plan: WrkPlan): Promise<WrkRow[]> {
  for (const s of b.subjects) {
    progress(`${plan.label}: warm-up ${plan.warmupS}s → ${s.name}`);
    await wrkOnce(b, s, plan, plan.warmupS);
  }
  const rounds = new Map<SubjectName, WrkRound[]>(b.subjects.map((s) => [s.name, []]));
  for (let r = 0; r < plan.rounds; r++) {
    for (const s of rotated(b.subjects, r)) {
      progress(`${plan.label}: round ${r + 1}/${plan.rounds}, wrk -t1 -c${plan.connections} -d${plan.durationS}s → ${s.name}`);
      const { result, cpuS, otherShare } = await withCpu(s.proxy, b.pinned, () => wrkOnce(b, s, plan, plan.durationS));
      rounds.get(s.name)?.push({
        reqPerSec: result.reqPerSec,
        p50Ms: result.latency.p50Ms,
        p99Ms: result.latency.p99Ms,
        requests: result.requests,
        cpuS,
        otherShare,
        problems: wrkProblems(result),
        raw: result.raw,
      });
    }
  }
  return b.subjects.map((s) => {
    const rs = rounds.get(s.name) ?? [];
    const requests = sum(rs.map((x) => x.requests));
    const cpu = rs.map((x) => x.cpuS);
    const cpuUsPerRequest = s.proxy === null || cpu.some((c) => c === null) || requests === 0 ? null : (sum(cpu as number[]) / requests) * 1e6;
    return {
      subject: s.name,
      reqPerSec: medianOfFinite(rs.map((x) => x.reqPerSec)),
      p50Ms: medianOfFinite(rs.map((x) => x.p50Ms)),
      p99Ms: medianOfFinite(rs.map((x) => x.p99Ms)),
      requests,
      cpuUsPerRequest,
      problems: [...new Set(rs.flatMap((x) => x.problems))],
      rounds: rs,
    };
  });
}

/**
 * Does the subject close the client connection after a `Connection: close` request (RFC 9112 §9.6)? If it
 * did not, wrk would silently reuse connections and http-close would measure keep-alive.
 */
function closesAfterRequest(b: Bench, s: Subject): Promise<CloseCheck> {
  const to = s.proxy?.endpoint ?? b.origin.httpClose;
  const origin = urlOf(s.proxy === null ? b.origin.httpClose : b.origin.http);
  const host = new URL(origin).host;
  const target = s.proxy === null ? '/' : origin;
  return new Promise((resolve) => {
    const socket = net.connect({ host: to.host, port: to.port });
    let head = '';
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ subject: s.name, status: head.split('\r\n')[0] ?? '', closed });
    };
    const timer = setTimeout(() => done(false), 3000);
    socket.on('error', () => done(false));
    socket.on('data', (chunk: Buffer) => {
      if (head.length < 512) head += chunk.toString('latin1');
    });
    socket.once('end', () => done(true));
    socket.once('connect', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
  });
}

async function bulkSection(b: Bench): Promise<{ up: BulkRow[]; down: BulkRow[] }> {
  const o = b.settings.bulk;
  // 4 MiB frames (not the helpers' 16 MiB): the time limit is checked per frame, and on a busy machine a
  // tunnel may carry only tens of MB/s, where a 16 MiB frame would overrun the limit by a second or more.
  const frameBytes = 4 * MiB;
  const up = (s: Subject, maxBytes: number, maxMs: number): Promise<BulkResult> =>
    bulkTransfer({ via: s.proxy?.endpoint ?? null, sink: b.origin.sink, preamble: b.hello, maxBytes, maxMs, frameBytes });
  const down = (s: Subject, maxBytes: number, maxMs: number): Promise<BulkResult> =>
    bulkReceive({ via: s.proxy?.endpoint ?? null, source: b.origin.source, preamble: b.hello, maxBytes, maxMs, frameBytes });
  for (const s of b.subjects) {
    progress(`connect-bulk: warm-up, up and down → ${s.name}`);
    await up(s, o.warmupBytes, o.warmupMs);
    await down(s, o.warmupBytes, o.warmupMs);
  }
  const ups = new Map<SubjectName, BulkRound[]>(b.subjects.map((s) => [s.name, []]));
  const downs = new Map<SubjectName, BulkRound[]>(b.subjects.map((s) => [s.name, []]));
  for (let r = 0; r < o.rounds; r++) {
    for (const s of rotated(b.subjects, r)) {
      progress(`connect-bulk: round ${r + 1}/${o.rounds}, up → ${s.name}`);
      const u = await withCpu(s.proxy, b.pinned, () => up(s, o.maxBytes, o.maxMs));
      ups.get(s.name)?.push({ ...u.result, cpuS: u.cpuS, otherShare: u.otherShare });
    }
    for (const s of rotated(b.subjects, r + 1)) {
      progress(`connect-bulk: round ${r + 1}/${o.rounds}, down → ${s.name}`);
      const d = await withCpu(s.proxy, b.pinned, () => down(s, o.maxBytes, o.maxMs));
      downs.get(s.name)?.push({ ...d.result, cpuS: d.cpuS, otherShare: d.otherShare });
    }
  }
  const rows = (m: Map<SubjectName, BulkRound[]>): BulkRow[] =>
    b.subjects.map((s) => {
      const rs = m.get(s.name) ?? [];
      const cpu = rs.map((x) => x.cpuS);
      const bytes = sum(rs.map((x) => x.bytes));
      return {
        subject: s.name,
        mbPerSec: medianOfFinite(rs.map((x) => x.mbPerSec)),
        cpuSPerGB: s.proxy === null || cpu.some((c) => c === null) || bytes === 0 ? null : sum(cpu as number[]) / (bytes / 1e9),
        rounds: rs,
      };
    });
  return { up: rows(ups), down: rows(downs) };
}

async function tunnelSection(b: Bench): Promise<TunnelRow[]> {
  const o = b.settings.tunnels;
  const once = (s: Subject, durationMs: number): Promise<RateResult> =>
    tunnelRate({ via: s.proxy?.endpoint ?? null, echo: b.origin.echo, hello: b.hello, concurrency: o.concurrency, durationMs, maxTunnels: o.maxTunnels });
  for (const s of b.subjects) {
    progress(`tunnels: warm-up ${o.warmupMs} ms → ${s.name}`);
    await once(s, o.warmupMs);
  }
  const rounds = new Map<SubjectName, TunnelRound[]>(b.subjects.map((s) => [s.name, []]));
  for (let r = 0; r < o.rounds; r++) {
    for (const s of rotated(b.subjects, r)) {
      progress(`tunnels: round ${r + 1}/${o.rounds}, ${o.concurrency} loops for ${o.durationMs} ms → ${s.name}`);
      const { result, cpuS, otherShare } = await withCpu(s.proxy, b.pinned, () => once(s, o.durationMs));
      rounds.get(s.name)?.push({ ...result, cpuS, otherShare });
    }
  }
  return b.subjects.map((s) => {
    const rs = rounds.get(s.name) ?? [];
    const cpu = rs.map((x) => x.cpuS);
    const tunnels = sum(rs.map((x) => x.tunnels));
    return {
      subject: s.name,
      perSec: medianOfFinite(rs.map((x) => x.perSec)),
      p50Ms: medianOfFinite(rs.map((x) => x.p50Ms)),
      p99Ms: medianOfFinite(rs.map((x) => x.p99Ms)),
      errors: sum(rs.map((x) => x.errors)),
      firstError: rs.find((x) => x.firstError !== null)?.firstError ?? null,
      cpuUsPerTunnel: s.proxy === null || cpu.some((c) => c === null) || tunnels === 0 ? null : (sum(cpu as number[]) / tunnels) * 1e6,
      rounds: rs,
    };
  });
}

// ---- printing -----------------------------------------------------------------------------------------

function printWrk(title: string, rows: readonly WrkRow[], extra?: (r: WrkRow) => string, extraHeader?: string): void {
  say(`\n${title}`);
  const headers = ['', 'req/s', 'p50 ms', 'p99 ms', 'rounds req/s', 'CPU µs/req', ...(extraHeader === undefined ? [] : [extraHeader]), 'problems'];
  say(
    table(
      headers,
      rows.map((r) => [
        r.subject,
        fix(r.reqPerSec, 0),
        fix(r.p50Ms, 3),
        fix(r.p99Ms, 3),
        r.rounds.map((x) => fix(x.reqPerSec, 0)).join(' '),
        fix(r.cpuUsPerRequest, 0),
        ...(extra === undefined ? [] : [extra(r)]),
        r.problems.join('; ') || '-',
      ]),
    ),
  );
  say(noiseLine(rows.flatMap((r) => r.rounds.map((x) => x.otherShare))));
}

function printResults(res: Results): void {
  say(`\negress-inspector core benchmark (issue 9) — ${res.mode} run, ${String(res.machine.cpus)} × ${String(res.machine.cpuModel)}, Node ${process.version}`);
  say(`  load average at start ${JSON.stringify(res.machine.loadAvgAtStart)}, at end ${JSON.stringify(res.machine.loadAvgAtEnd)}`);
  if (res.pinning !== undefined) say(`  pinning: ${res.pinning.note}`);
  if (res.http !== undefined) {
    if ('error' in res.http) printFailed('HTTP keep-alive', res.http);
    else {
      printWrk(`1. HTTP keep-alive (${res.http.settings})`, res.http.rows);
      say(ratioLine('req/s', res.http.ratios, `(target ≥ ${TARGETS.httpVsSquid}× squid)`));
    }
  }
  if (res.httpClose !== undefined) {
    if ('error' in res.httpClose) printFailed('HTTP, new connection per request', res.httpClose);
    else {
      const checks = res.httpClose.closeChecks;
      printWrk(`2. HTTP, new connection per request (${res.httpClose.settings})`, res.httpClose.rows, (r) => {
        const c = checks.find((x) => x.subject === r.subject);
        return c === undefined ? '?' : c.closed ? 'yes' : 'NO';
      }, 'closes?');
      say(ratioLine('req/s', res.httpClose.ratios, `(target ≥ ${TARGETS.httpCloseVsSquid}× squid)`));
    }
  }
  if (res.latency !== undefined) {
    if ('error' in res.latency) printFailed('Latency', res.latency);
    else {
      printWrk(`3. Latency at light load (${res.latency.settings})`, res.latency.rows, (r) => fix((r as LatencyRow).addedP50Ms, 3), 'added p50 ms');
      say(ratioLine('added p50', res.latency.ratios, `(target: egress-inspector adds ≤ ${TARGETS.addedP50Ms} ms; lower is better)`));
    }
  }
  if (res.connectBulk !== undefined) {
    if ('error' in res.connectBulk) printFailed('CONNECT bulk', res.connectBulk);
    else {
      const cb = res.connectBulk;
      say(`\n4. CONNECT bulk over one tunnel (${cb.settings})`);
      say(
        table(
          ['', 'up MB/s', 'rounds up', 'down MB/s', 'rounds down', 'CPU s/GB up', 'CPU s/GB down'],
          cb.up.map((u) => {
            const d = rowOf(cb.down, u.subject);
            return [
              u.subject,
              fix(u.mbPerSec, 0),
              u.rounds.map((x) => fix(x.mbPerSec, 0)).join(' '),
              fix(d.mbPerSec, 0),
              d.rounds.map((x) => fix(x.mbPerSec, 0)).join(' '),
              fix(u.cpuSPerGB, 2),
              fix(d.cpuSPerGB, 2),
            ];
          }),
        ),
      );
      say(noiseLine([...cb.up, ...cb.down].flatMap((r) => r.rounds.map((x) => x.otherShare))));
      say(ratioLine('up (client → origin) MB/s', cb.upRatios, `(target ≥ ${TARGETS.bulkVsSquid}× squid)`));
      say(ratioLine('down (origin → client) MB/s', cb.downRatios, `(target ≥ ${TARGETS.bulkVsSquid}× squid)`));
    }
  }
  if (res.tunnels !== undefined) {
    if ('error' in res.tunnels) printFailed('New tunnels', res.tunnels);
    else {
      say(`\n5. New CONNECT tunnels (${res.tunnels.settings})`);
      say(
        table(
          ['', 'tunnels/s', 'rounds', 'p50 ms', 'p99 ms', 'CPU µs/tunnel', 'errors'],
          res.tunnels.rows.map((r) => [
            r.subject,
            fix(r.perSec, 0),
            r.rounds.map((x) => fix(x.perSec, 0)).join(' '),
            fix(r.p50Ms, 2),
            fix(r.p99Ms, 2),
            fix(r.cpuUsPerTunnel, 0),
            r.errors === 0 ? '0' : `${r.errors} (${r.firstError ?? ''})`,
          ]),
        ),
      );
      say(noiseLine(res.tunnels.rows.flatMap((r) => r.rounds.map((x) => x.otherShare))));
      say(ratioLine('tunnels/s', res.tunnels.ratios, `(target ≥ ${TARGETS.tunnelsVsSquid}× squid)`));
    }
  }
  if (res.rss !== undefined) {
    if ('error' in res.rss) printFailed('RSS', res.rss);
    else {
      say(`\n6. Memory, MB = 10^6 bytes (${res.rss.settings})`);
      say(
        table(
          ['', 'idle after start', 'VmHWM at end', 'sampled peak', 'samples', 'peak'],
          res.rss.rows.map((r) => [r.subject, fix(r.idleMB, 1), fix(r.hwmMB, 1), fix(r.sampledPeakMB, 1), String(r.samples), fix(r.peakMB, 1)]),
        ),
      );
      say(ratioLine('peak RSS', res.rss.ratios, `(target: egress-inspector ≤ ${TARGETS.peakRssMB} MB; lower is better)`));
    }
  }
  if (res.cpu !== undefined) {
    if ('error' in res.cpu) printFailed('CPU', res.cpu);
    else {
      say(`\n7. CPU time of the proxy process (${res.cpu.settings})`);
      say(
        table(
          ['', 'µs/request keep-alive', 'µs/request new conn', 'µs/tunnel', 's/GB bulk'],
          res.cpu.rows.map((r) => [r.subject, fix(r.usPerRequest, 0), fix(r.usPerRequestClose, 0), fix(r.usPerTunnel, 0), fix(r.sPerGB, 2)]),
        ),
      );
      say(ratioLine('CPU per keep-alive request', res.cpu.ratios, '(lower is better)'));
    }
  }
  if (res.records !== undefined) say(`\nRecords written: ${Object.entries(res.records).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  printTargets('Targets (issue 9)', res.targets);
}

// ---- main -----------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  // CPU per request is measured over the http section's runs.
  const flags = parseFlags(process.argv.slice(2), { sections: SECTIONS, outFile: 'core-latest.json', needs: { cpu: 'http' } });
  const settings = flags.quick ? QUICK : FULL;
  const tools = requireTools({ wrk: true, squid: true });
  const t0 = Date.now();
  const cpus = os.cpus().length;
  const results: Results = {
    bench: 'egress-inspector core (issue 9)',
    startedAt: new Date(t0).toISOString(),
    mode: flags.quick ? 'quick' : 'full',
    sections: flags.sections,
    settings,
    machine: await describeMachine(tools),
    targets: [],
  };

  // Pin this process first: wrk, the origin and the proxies are its children and inherit the mask; each
  // proxy is then moved to its own core.
  const canPin = cpus >= 2 && which('taskset') !== null;
  if (canPin) await pinToCpus(process.pid, String(LOAD_CPU));
  else progress(`not pinning: ${cpus < 2 ? `${cpus} CPU` : 'taskset missing'}; figures will mix proxy and load on the same cores`);

  if (flags.build) await build(progress);

  const tmp = mkdtempSync(join(os.tmpdir(), 'egress-core-bench-'));
  let squidDir: string | null = null;
  const removeTemp = (): void => {
    if (flags.keepTemp) return;
    rmSync(tmp, { recursive: true, force: true });
    if (squidDir !== null) rmSync(squidDir, { recursive: true, force: true });
  };
  const watchdog = startWatchdog(settings.watchdogS, progress, removeTemp);

  const started: { stop(): Promise<void> }[] = [];
  let sampler: MemorySampler | null = null;
  try {
    progress(`starting origin, squid, bare-node and egress-inspector (${distEntry(ROOT)}); temp dir ${tmp}`);
    // Side by side, to save the start-up time; whatever started is stopped in `finally` even if another failed.
    const starting = [
      startOrigin(),
      startSquid({ binary: tools.squid }),
      startBareNode({ dir: tmp }),
      startProxy({ root: ROOT, dir: tmp, name: 'egress-inspector', observe: true, policyFiles: [join(ROOT, 'policies', 'default.yaml')] }),
    ] as const;
    const settled = await Promise.allSettled(starting);
    for (const r of settled) if (r.status === 'fulfilled') started.push(r.value);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    const [origin, squid, bare, inspector] = await Promise.all(starting);
    squidDir = squid.dir;
    const proxies: ProxyHandle[] = [
      { name: 'squid', endpoint: squid.proxy, pid: pidOf('squid', squid.child.proc.pid), stop: () => squid.stop() },
      { name: 'bare-node', endpoint: bare.proxy, pid: pidOf('bare-node', bare.child.proc.pid), stop: () => bare.stop() },
      { name: 'egress-inspector', endpoint: inspector.proxy, pid: pidOf('egress-inspector', inspector.child.proc.pid), stop: () => inspector.stop() },
    ];
    const pinned: Record<string, number[]> = {};
    if (canPin) for (const p of proxies) pinned[p.name] = await pinToCpus(p.pid, String(PROXY_CPU));
    results.pinning = {
      applied: canPin,
      proxyCpu: PROXY_CPU,
      loadCpu: LOAD_CPU,
      note: canPin ? `each proxy on CPU ${PROXY_CPU} (taskset -a -p), this script, wrk and the origin on CPU ${LOAD_CPU}` : 'not applied',
      pids: pinned,
    };

    // Idle RSS: after a short settle, before any request.
    await sleep(1000);
    const idle = new Map<ProxyName, number>();
    for (const p of proxies) idle.set(p.name, (await readMemory(p.pid))?.rssKiB ?? Number.NaN);
    sampler = sampleMemory(new Map(proxies.map((p) => [p.name, p.pid])), settings.rssIntervalMs);

    const b: Bench = {
      pinned: canPin,
      wrk: tools.wrk,
      origin,
      subjects: [{ name: 'direct', proxy: null }, ...proxies.map((p) => ({ name: p.name, proxy: p }))],
      hello: await captureClientHello('bench.example'),
      settings,
    };

    if (flags.sections.includes('http')) {
      results.http = await attempt(async () => {
        const h = settings.http;
        const rows = await wrkSection(b, { ...h, directOrigin: origin.http, label: 'http' });
        const ratios = ratiosOf(rows, (r) => r.reqPerSec);
        results.targets.push(atLeast('http.vs_squid', 'HTTP keep-alive req/s, egress-inspector / squid', ratios.vsSquid, TARGETS.httpVsSquid));
        return { settings: `wrk -t1 -c${h.connections} -d${h.durationS}s × ${h.rounds} interleaved rounds after a ${h.warmupS}s warm-up, 1 KiB body; medians`, rows, ratios };
      });
    }

    if (flags.sections.includes('http-close')) {
      results.httpClose = await attempt(async () => {
        const h = settings.httpClose;
        const closeChecks: CloseCheck[] = [];
        for (const s of b.subjects) closeChecks.push(await closesAfterRequest(b, s));
        const rows = (await wrkSection(b, { ...h, headers: ['Connection: close'], directOrigin: origin.httpClose, label: 'http-close' })).map((r) =>
          closeChecks.find((c) => c.subject === r.subject)?.closed === false
            ? { ...r, problems: [...r.problems, 'kept the connection open after Connection: close: this row measured keep-alive'] }
            : r,
        );
        const ratios = ratiosOf(rows, (r) => r.reqPerSec);
        results.targets.push(atLeast('http_close.vs_squid', 'HTTP new connection per request req/s, egress-inspector / squid', ratios.vsSquid, TARGETS.httpCloseVsSquid));
        return {
          settings: `wrk -t1 -c${h.connections} -d${h.durationS}s -H 'Connection: close' × ${h.rounds} interleaved rounds after a ${h.warmupS}s warm-up; medians`,
          rows,
          ratios,
          closeChecks,
        };
      });
    }

    if (flags.sections.includes('latency')) {
      results.latency = await attempt(async () => {
        const l = settings.latency;
        const plain = await wrkSection(b, { connections: 1, ...l, directOrigin: origin.http, label: 'latency' });
        const directP50 = rowOf(plain, 'direct').p50Ms;
        const rows: LatencyRow[] = plain.map((r) => ({ ...r, addedP50Ms: r.p50Ms - directP50 }));
        const ratios = ratiosOf(rows, (r) => r.addedP50Ms);
        const added = rowOf(rows, 'egress-inspector').addedP50Ms;
        results.targets.push(atMost('latency.added_p50_ms', 'p50 added at wrk -c1, ms', added, TARGETS.addedP50Ms));
        return { settings: `wrk -t1 -c1 -d${l.durationS}s × ${l.rounds} interleaved rounds after a ${l.warmupS}s warm-up; added p50 = median p50 − direct's median p50`, rows, ratios };
      });
    }

    if (flags.sections.includes('connect-bulk')) {
      results.connectBulk = await attempt(async () => {
        const o = settings.bulk;
        const { up, down } = await bulkSection(b);
        const upRatios = ratiosOf(up, (r) => r.mbPerSec);
        const downRatios = ratiosOf(down, (r) => r.mbPerSec);
        results.targets.push(atLeast('bulk.up_vs_squid', 'CONNECT bulk up MB/s, egress-inspector / squid', upRatios.vsSquid, TARGETS.bulkVsSquid));
        results.targets.push(atLeast('bulk.down_vs_squid', 'CONNECT bulk down MB/s, egress-inspector / squid', downRatios.vsSquid, TARGETS.bulkVsSquid));
        return {
          settings: `ClientHello then up to ${o.maxBytes / MiB} MiB or ${o.maxMs} ms each way, ${o.rounds} interleaved rounds after a warm-up; medians`,
          up,
          down,
          upRatios,
          downRatios,
        };
      });
    }

    if (flags.sections.includes('tunnels')) {
      results.tunnels = await attempt(async () => {
        const o = settings.tunnels;
        const rows = await tunnelSection(b);
        const ratios = ratiosOf(rows, (r) => r.perSec);
        results.targets.push(atLeast('tunnels.vs_squid', 'new tunnels/s, egress-inspector / squid', ratios.vsSquid, TARGETS.tunnelsVsSquid));
        return {
          settings: `${o.concurrency} concurrent loops of CONNECT + ClientHello + 1 byte back + close, ${o.durationMs} ms × ${o.rounds} interleaved rounds after a warm-up; medians`,
          rows,
          ratios,
        };
      });
    }

    // Memory: VmHWM must be read before the processes stop.
    const peaks = sampler.stop();
    if (flags.sections.includes('rss')) {
      results.rss = await attempt(async () => {
        const rows: RssRow[] = [];
        for (const p of proxies) {
          const end = await readMemory(p.pid);
          const sampled = peaks.get(p.name);
          const hwmMB = kibToMB(end?.hwmKiB ?? Number.NaN);
          const sampledPeakMB = kibToMB(sampled?.sampledPeakKiB ?? Number.NaN);
          rows.push({
            subject: p.name,
            pid: p.pid,
            idleMB: kibToMB(idle.get(p.name) ?? Number.NaN),
            hwmMB,
            sampledPeakMB,
            samples: sampled?.samples ?? 0,
            peakMB: Math.max(hwmMB, sampledPeakMB),
            traceMB: (sampled?.trace ?? []).map((kib) => round(kibToMB(kib), 1)),
          });
        }
        const ratios = ratiosOf(rows, (r) => r.peakMB);
        const ours = rowOf(rows, 'egress-inspector').peakMB;
        const ran = flags.sections.filter((s) => s !== 'rss' && s !== 'cpu');
        results.targets.push(atMost('rss.peak_mb', 'egress-inspector peak RSS, MB', ours, TARGETS.peakRssMB));
        return {
          settings: `/proc/<pid>/status: VmRSS 1 s after start, VmRSS every ${settings.rssIntervalMs} ms, VmHWM at the end; load: ${ran.length === 0 ? 'none' : ran.join(', ')}`,
          rows,
          ratios,
        };
      });
    }

    if (flags.sections.includes('cpu')) {
      const http = results.http;
      if (http === undefined || 'error' in http) results.cpu = { error: 'the http section did not run or failed' };
      else {
        const close = results.httpClose !== undefined && !('error' in results.httpClose) ? results.httpClose.rows : null;
        const tunnels = results.tunnels !== undefined && !('error' in results.tunnels) ? results.tunnels.rows : null;
        const bulk = results.connectBulk !== undefined && !('error' in results.connectBulk) ? results.connectBulk : null;
        const rows: CpuRow[] = PROXY_NAMES.map((name) => {
          const bulkRounds = bulk === null ? [] : [...rowOf(bulk.up, name).rounds, ...rowOf(bulk.down, name).rounds];
          const bulkCpu = bulkRounds.map((r) => r.cpuS);
          const bulkBytes = sum(bulkRounds.map((r) => r.bytes));
          return {
            subject: name,
            usPerRequest: rowOf(http.rows, name).cpuUsPerRequest,
            usPerRequestClose: close === null ? null : rowOf(close, name).cpuUsPerRequest,
            usPerTunnel: tunnels === null ? null : rowOf(tunnels, name).cpuUsPerTunnel,
            sPerGB: bulkBytes === 0 || bulkCpu.some((c) => c === null) ? null : sum(bulkCpu as number[]) / (bulkBytes / 1e9),
          };
        });
        results.cpu = {
          settings: 'utime+stime of the proxy process (all threads) over the measured runs only, ÷ requests wrk completed / tunnels / 10^9 bytes; tick = 10 ms',
          rows,
          ratios: ratiosOf(rows, (r) => r.usPerRequest),
        };
      }
    }

    // Both logging proxies must have recorded what they carried: a check that traffic really went through them.
    progress('stopping servers, counting records');
    await Promise.all([inspector.stop(), squid.stop()]);
    results.records = { 'egress-inspector flow records': await inspector.flowRecords(), 'squid access.log lines': await squid.accessRecords() };
  } finally {
    sampler?.stop();
    await Promise.allSettled(started.map((s) => s.stop()));
    clearTimeout(watchdog);
    if (flags.keepTemp) progress(`kept ${tmp}${squidDir === null ? '' : ` and ${squidDir}`}`);
    removeTemp();
  }

  finishRun(results, t0, flags.out, printResults);
}

runMain('core bench', main);

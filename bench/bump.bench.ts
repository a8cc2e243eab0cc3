/**
 * Issue 10 "Performance" of TLS interception: egress-inspector's `bump` side by side with mitmdump (Debian's
 * mitmproxy 8.x, the issue's reference: 1,169 req/s keep-alive, 222/s new tunnel per request, 200 never-seen
 * names p50 60 ms / p99 255 ms), in one run, on loopback only.
 *
 *   npx tsx bench/bump.bench.ts                    everything, about 4 minutes (plus the build)
 *   npx tsx bench/bump.bench.ts --quick            shorter, 2 rounds (noisier)
 *   npx tsx bench/bump.bench.ts --only keep-alive,splice    sections: keep-alive, new-tunnel, new-names, splice
 *   npx tsx bench/bump.bench.ts --no-build         measure the dist/ that is already there
 *   npx tsx bench/bump.bench.ts --cpu-prof         V8 CPU profiles of egress-inspector in bench/results/profiles/
 *   npx tsx bench/bump.bench.ts --keep-temp        keep configs, CAs, flow logs and nginx's logs (path printed)
 *
 * Subjects, each proxy pinned to CPU 1 (taskset -a, every thread), everything else on CPU 0:
 * - mitmdump: `mitmdump -q`, its own confdir (and so its own CA) in a temp dir, the origin's CA trusted upstream
 *   (bench/lib/start-mitmdump.ts); otherwise mitmproxy's defaults.
 * - egress-inspector: dist/main.js (bench/lib/start-proxy.ts), a CA made with createCa() in `tls.ca_dir`, the
 *   origin's CA in `tls.upstream_ca`, one policy rule bumping every SNI under .bench.test; flow records to a
 *   file (mitmdump -q writes none: egress-inspector pays for its records, mitmdump does not).
 * - egress-inspector-no-bump (splice section only): the same build and CA, a policy without any rule.
 * - bare-node (bump sections): Node's own TLS termination with one fixed wildcard leaf, an origin handshake per
 *   tunnel and pipe() — no inspection at all (bench/lib/bare-bump.ts): what the platform costs.
 * - direct (new-tunnel, new-names and splice sections): the generator straight to the origin — the ceiling of
 *   CPU 0's side; in new-names, the floor of first-byte latency (the generator's own handshake per new name, no
 *   proxy): a proxy's first byte can only come later than that.
 *
 * Names and addresses, the fair choice: mitmdump resolves CONNECT host names with the system resolver, which
 * knows no *.bench.test, and egress-inspector resolves through `resolver.servers`. So both get the same CONNECT
 * authority, `127.0.0.1:<origin port>`, and the client sets the name only as SNI: each proxy mints its leaf for
 * the SNI, connects upstream to 127.0.0.1 with that SNI, and verifies the origin's certificate for it (the
 * origin's certificate has *.bench.test, *.splice.test and the IP SAN 127.0.0.1). No proxy does a DNS lookup;
 * egress-inspector's resolver still points at a fake DNS server of this script (every A → 127.0.0.1), so a
 * lookup nobody expected stays on loopback and is counted in the JSON. egress-inspector decides `bump` at the
 * ClientHello (rule on tls.client.server_name), as it must for an IP-literal CONNECT.
 *
 * Sections (rounds alternate the subjects, rotating the order each round; each section warms up first; every
 * loop is bounded in count and time; a watchdog ends the run):
 * 1. keep-alive: 16 established bumped connections, GET /1k (1 KiB body, Content-Length) back to back, 5 s × 3
 *    rounds: req/s (median). Target ≥ 5× mitmdump.
 * 2. new-tunnel: 16 loops of CONNECT → full TLS handshake (no resumption) → one GET → close: req/s. ≥ 3×.
 * 3. new-names: 200 SNI names never seen by either proxy (n0001.bench.test … per round, new ones each round),
 *    16 concurrent, one tunnel each: CONNECT start → first response byte, p50/p99. Target p99 ≤ 50 ms.
 * 4. splice: CONNECT + TLS straight to the origin (SNI www.splice.test, trusting only the origin's CA, so a bump
 *    would fail), keep-alive req/s through egress-inspector with its bump rule (not matching) vs the no-bump
 *    instance. Target ≥ 0.95×. When direct is not far above both, CPU 0 is the limit and the CPU µs/request
 *    columns are the comparison that counts.
 * For every measured run: the proxy's utime+stime (/proc/<pid>/stat) ÷ requests; the generator's own CPU
 * (process.cpuUsage) and nginx's; CPU 0's busy share (if near 100 %, the load side was the limit, and the
 * table says so); and the share of CPU 1 other processes took (the machine is shared).
 *
 * Needs mitmproxy (mitmdump), nginx-light (nginx) and openssl; exit 2 naming the package when one is missing.
 * Writes bench/results/bump-latest.json (bench/results/ is not committed).
 */
import dgram from 'node:dgram';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import { createCa } from '../src/net/ca.js';
import { startBareBump } from './lib/bare-bump.js';
import { firstByteRun, keepAliveRun, newTunnelRun, openHttps, requestBytes, ResponseReader, trustOnly, type FirstByteResult, type HttpsTarget, type LoadResult } from './lib/bump-client.js';
import { pinToCpus, readCoreTimes, readCpuSeconds, run, which, type Endpoint } from './lib/proc.js';
import {
  atLeast,
  atMost,
  attempt,
  build,
  describeMachine,
  errorText,
  finishRun,
  fix,
  medianOfFinite,
  parseFlags,
  printFailed,
  printTargets,
  progressLogger,
  RESULTS_DIR,
  ROOT,
  rotated,
  runMain,
  say,
  table,
  type Failed,
  type TargetCheck,
  startWatchdog,
} from './lib/report.js';
import { startMitmdump } from './lib/start-mitmdump.js';
import { BODY_PATH, startNginx } from './lib/start-nginx.js';
import { startProxy } from './lib/start-proxy.js';

const SECTIONS = ['keep-alive', 'new-tunnel', 'new-names', 'splice'] as const;
type Section = (typeof SECTIONS)[number];

const PROXY_CPU = 1;
const LOAD_CPU = 0;

/** Issue 10's targets, and its mitmdump 8.1.1 figures (for context in the report). */
const TARGETS = { keepAliveVsMitm: 5, newTunnelVsMitm: 3, newNameP99Ms: 50, spliceVsNoBump: 0.95 } as const;
const ISSUE_MITMDUMP = { keepAliveReqPerSec: 1169, newTunnelReqPerSec: 222, newNameP50Ms: 60, newNameP99Ms: 255 } as const;

const BUMP_DOMAIN = '.bench.test';
const KEEP_ALIVE_SNI = `ka${BUMP_DOMAIN}`;
const NEW_TUNNEL_SNI = `nt${BUMP_DOMAIN}`;
const SPLICE_SNI = 'www.splice.test';
const ORIGIN_NAMES = [`*${BUMP_DOMAIN}`, '*.splice.test'];
const TIMEOUT_MS = 10_000;

// ---- settings -------------------------------------------------------------------------------------------

interface RunPlan {
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly rounds: number;
  readonly maxRequests: number;
}

interface Settings {
  readonly keepAlive: RunPlan;
  readonly newTunnel: RunPlan;
  readonly newNames: { readonly names: number; readonly concurrency: number; readonly rounds: number; readonly warmupNames: number };
  readonly splice: RunPlan;
  readonly watchdogS: number;
}

// Full: 2 × 3 × (5 + 4) s + 3 × 3 × 5 s of load, plus warm-ups, names and start-up ≈ 3–4 minutes.
const FULL: Settings = {
  keepAlive: { concurrency: 16, warmupMs: 1500, durationMs: 5000, rounds: 3, maxRequests: 1_000_000 },
  newTunnel: { concurrency: 16, warmupMs: 1000, durationMs: 4000, rounds: 3, maxRequests: 200_000 },
  newNames: { names: 200, concurrency: 16, rounds: 3, warmupNames: 32 },
  splice: { concurrency: 16, warmupMs: 1000, durationMs: 5000, rounds: 3, maxRequests: 1_000_000 },
  watchdogS: 10 * 60,
};

const QUICK: Settings = {
  keepAlive: { concurrency: 16, warmupMs: 800, durationMs: 2500, rounds: 2, maxRequests: 500_000 },
  newTunnel: { concurrency: 16, warmupMs: 500, durationMs: 2000, rounds: 2, maxRequests: 100_000 },
  newNames: { names: 200, concurrency: 16, rounds: 1, warmupNames: 16 },
  splice: { concurrency: 16, warmupMs: 500, durationMs: 2500, rounds: 2, maxRequests: 500_000 },
  watchdogS: 6 * 60,
};

// ---- results ------------------------------------------------------------------------------------------------

type SubjectName = 'mitmdump' | 'egress-inspector' | 'egress-inspector-no-bump' | 'bare-node' | 'direct';

interface Subject {
  readonly name: SubjectName;
  /** null: no proxy (direct). */
  readonly proxy: Endpoint | null;
  readonly pid: number | null;
  /** What the client trusts: the proxy's CA when it bumps, the origin's CA when it splices. */
  readonly trust: ReturnType<typeof trustOnly>;
}

interface CpuReading {
  /** Proxy utime+stime over the run, s (null for direct). */
  readonly proxyCpuS: number | null;
  /** This process (the load generator) over the run, s. */
  readonly generatorCpuS: number;
  readonly nginxCpuS: number | null;
  /** CPU 0's busy share over the run (all processes): near 1 means the load side limited the run. */
  readonly loadCoreBusy: number | null;
  /** Share of CPU 1 used by processes other than the proxy under test. */
  readonly otherShareProxyCore: number | null;
  readonly wallS: number;
}

interface Round<T> {
  readonly result: T;
  readonly cpu: CpuReading;
}

interface LoadRow {
  readonly subject: SubjectName;
  readonly perSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly proxyUsPerRequest: number | null;
  readonly generatorUsPerRequest: number;
  /** Generator CPU ÷ wall time: 1.0 = one full core. */
  readonly generatorCoreShare: number;
  readonly nginxUsPerRequest: number | null;
  readonly loadCoreBusy: number | null;
  readonly otherShareProxyCore: number | null;
  readonly rounds: readonly Round<LoadResult>[];
}

interface NamesRow {
  readonly subject: SubjectName;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly ok: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly proxyUsPerName: number | null;
  readonly generatorUsPerName: number | null;
  readonly loadCoreBusy: number | null;
  readonly rounds: readonly Round<FirstByteResult>[];
}

interface Results {
  readonly bench: 'egress-inspector TLS interception (issue 10)';
  readonly startedAt: string;
  finishedAt?: string;
  durationS?: number;
  readonly mode: 'full' | 'quick';
  readonly sections: readonly Section[];
  readonly settings: Settings;
  readonly machine: Record<string, unknown>;
  readonly fairness: string;
  readonly issueMitmdump: typeof ISSUE_MITMDUMP;
  pinning?: Record<string, unknown>;
  keepAlive?: { settings: string; rows: LoadRow[]; ratio: number } | Failed;
  newTunnel?: { settings: string; rows: LoadRow[]; ratio: number } | Failed;
  newNames?: { settings: string; rows: NamesRow[] } | Failed;
  splice?: { settings: string; rows: LoadRow[]; ratio: number; cpuRatio: number } | Failed;
  records?: Record<string, number>;
  dnsQueries?: number;
  profiles?: string;
  targets: TargetCheck[];
}

const progress = progressLogger(Date.now());

// ---- the fake DNS server --------------------------------------------------------------------------------------

/** Answers every A question with 127.0.0.1 (RFC 1035 §4.1.1: QR set, RD copied, RA); counts questions. */
async function startFakeDns(): Promise<{ endpoint: Endpoint; queries(): number; close(): void }> {
  const socket = dgram.createSocket('udp4');
  let queries = 0;
  socket.on('message', (msg, rinfo) => {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    queries++;
    const q = query.questions?.[0];
    const answers: dnsPacket.Answer[] = q?.type === 'A' ? [{ type: 'A', name: q.name, class: 'IN', ttl: 30, data: '127.0.0.1' }] : [];
    const reply = dnsPacket.encode({ id: query.id ?? 0, type: 'response', flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: query.questions ?? [], answers });
    socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((done, fail) => {
    socket.once('error', fail);
    socket.bind(0, '127.0.0.1', () => done());
  });
  return { endpoint: { host: '127.0.0.1', port: socket.address().port }, queries: () => queries, close: () => socket.close() };
}

// ---- measuring ------------------------------------------------------------------------------------------

interface Bench {
  readonly pinned: boolean;
  readonly origin: Endpoint;
  readonly nginxPid: number | null;
}

async function withCpu<T>(b: Bench, subject: Subject, work: () => Promise<T>): Promise<Round<T>> {
  const load0 = b.pinned ? await readCoreTimes(LOAD_CPU) : null;
  const proxy0 = b.pinned ? await readCoreTimes(PROXY_CPU) : null;
  const pBefore = subject.pid === null ? null : await readCpuSeconds(subject.pid);
  const nBefore = b.nginxPid === null ? null : await readCpuSeconds(b.nginxPid);
  const gBefore = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const result = await work();
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const g = process.cpuUsage(gBefore);
  const pAfter = subject.pid === null ? null : await readCpuSeconds(subject.pid);
  const nAfter = b.nginxPid === null ? null : await readCpuSeconds(b.nginxPid);
  const load1 = b.pinned ? await readCoreTimes(LOAD_CPU) : null;
  const proxy1 = b.pinned ? await readCoreTimes(PROXY_CPU) : null;
  const proxyCpuS = pBefore === null || pAfter === null ? null : pAfter - pBefore;
  const share = (busy: number, total: number): number | null => (total > 0 ? Math.min(1, Math.max(0, busy / total)) : null);
  return {
    result,
    cpu: {
      proxyCpuS,
      generatorCpuS: (g.user + g.system) / 1e6,
      nginxCpuS: nBefore === null || nAfter === null ? null : nAfter - nBefore,
      loadCoreBusy: load0 === null || load1 === null ? null : share(load1.busyS - load0.busyS, load1.totalS - load0.totalS),
      otherShareProxyCore: proxy0 === null || proxy1 === null ? null : share(proxy1.busyS - proxy0.busyS - (proxyCpuS ?? 0), proxy1.totalS - proxy0.totalS),
      wallS,
    },
  };
}

const perRequestUs = (cpuS: number | null, requests: number): number | null => (cpuS === null || requests === 0 ? null : (cpuS * 1e6) / requests);
const medianOr = (values: readonly (number | null)[]): number | null => {
  const known = values.filter((v): v is number => v !== null && Number.isFinite(v));
  return known.length === 0 ? null : medianOfFinite(known);
};

function loadRow(subject: SubjectName, rounds: readonly Round<LoadResult>[]): LoadRow {
  const errors = rounds.reduce((n, r) => n + r.result.errors, 0);
  return {
    subject,
    perSec: medianOfFinite(rounds.map((r) => r.result.perSec)),
    p50Ms: medianOfFinite(rounds.map((r) => r.result.p50Ms)),
    p99Ms: medianOfFinite(rounds.map((r) => r.result.p99Ms)),
    errors,
    firstError: rounds.find((r) => r.result.firstError !== null)?.result.firstError ?? null,
    proxyUsPerRequest: medianOr(rounds.map((r) => perRequestUs(r.cpu.proxyCpuS, r.result.requests))),
    generatorUsPerRequest: medianOr(rounds.map((r) => perRequestUs(r.cpu.generatorCpuS, r.result.requests))) ?? Number.NaN,
    generatorCoreShare: medianOfFinite(rounds.map((r) => r.cpu.generatorCpuS / r.cpu.wallS)),
    nginxUsPerRequest: medianOr(rounds.map((r) => perRequestUs(r.cpu.nginxCpuS, r.result.requests))),
    loadCoreBusy: medianOr(rounds.map((r) => r.cpu.loadCoreBusy)),
    otherShareProxyCore: medianOr(rounds.map((r) => r.cpu.otherShareProxyCore)),
    rounds,
  };
}

type LoadKind = 'keep-alive' | 'new-tunnel';

function runLoad(kind: LoadKind, s: Subject, b: Bench, servername: string, plan: RunPlan, durationMs: number): Promise<LoadResult> {
  const target: HttpsTarget = { via: s.proxy, origin: b.origin, trust: s.trust, path: BODY_PATH };
  const common = { target, servername, durationMs, maxRequests: plan.maxRequests, timeoutMs: TIMEOUT_MS };
  return kind === 'keep-alive' ? keepAliveRun({ ...common, connections: plan.concurrency }) : newTunnelRun({ ...common, concurrency: plan.concurrency });
}

/** Warm-up (every subject), then `rounds` interleaved rounds, rotating the order. */
async function loadSection(kind: LoadKind, b: Bench, subjects: readonly Subject[], servername: string, plan: RunPlan): Promise<LoadRow[]> {
  for (const s of subjects) {
    const warm = await runLoad(kind, s, b, servername, plan, plan.warmupMs);
    if (warm.requests === 0) throw new Error(`${kind}: ${s.name} completed no request in the warm-up: ${warm.firstError ?? 'no error'}`);
  }
  const rounds = new Map<SubjectName, Round<LoadResult>[]>(subjects.map((s) => [s.name, []]));
  for (let r = 0; r < plan.rounds; r++) {
    for (const s of rotated(subjects, r)) {
      const measured = await withCpu(b, s, () => runLoad(kind, s, b, servername, plan, plan.durationMs));
      rounds.get(s.name)?.push(measured);
      progress(`${kind} round ${r + 1}/${plan.rounds} ${s.name}: ${fix(measured.result.perSec, 0)} req/s, ${measured.result.errors} errors`);
    }
  }
  return subjects.map((s) => loadRow(s.name, rounds.get(s.name) ?? []));
}

const nameOf = (i: number): string => `n${String(i).padStart(4, '0')}${BUMP_DOMAIN}`;

async function namesSection(b: Bench, subjects: readonly Subject[], plan: Settings['newNames']): Promise<NamesRow[]> {
  // Warm-up on names of their own (w0001…): the mint path is compiled and hot, the measured names still new.
  for (const s of subjects) {
    const names = Array.from({ length: plan.warmupNames }, (_, i) => `w${String(i + 1).padStart(4, '0')}${BUMP_DOMAIN}`);
    const warm = await firstByteRun({ target: { via: s.proxy, origin: b.origin, trust: s.trust, path: BODY_PATH }, names, concurrency: plan.concurrency, timeoutMs: TIMEOUT_MS });
    if (warm.ok === 0) throw new Error(`new-names: ${s.name} answered no warm-up name: ${warm.firstError ?? 'no error'}`);
  }
  const rounds = new Map<SubjectName, Round<FirstByteResult>[]>(subjects.map((s) => [s.name, []]));
  for (let r = 0; r < plan.rounds; r++) {
    // Round r uses n(r·N+1) … n((r+1)·N): never seen by any proxy before.
    const names = Array.from({ length: plan.names }, (_, i) => nameOf(r * plan.names + i + 1));
    for (const s of rotated(subjects, r)) {
      const target: HttpsTarget = { via: s.proxy, origin: b.origin, trust: s.trust, path: BODY_PATH };
      const measured = await withCpu(b, s, () => firstByteRun({ target, names, concurrency: plan.concurrency, timeoutMs: TIMEOUT_MS }));
      rounds.get(s.name)?.push(measured);
      progress(`new-names round ${r + 1}/${plan.rounds} ${s.name}: p50 ${fix(measured.result.p50Ms, 1)} ms, p99 ${fix(measured.result.p99Ms, 1)} ms, ${measured.result.errors} errors`);
    }
  }
  return subjects.map((s) => {
    const rs = rounds.get(s.name) ?? [];
    return {
      subject: s.name,
      p50Ms: medianOfFinite(rs.map((r) => r.result.p50Ms)),
      p99Ms: medianOfFinite(rs.map((r) => r.result.p99Ms)),
      maxMs: Math.max(...rs.map((r) => r.result.maxMs)),
      ok: rs.reduce((n, r) => n + r.result.ok, 0),
      errors: rs.reduce((n, r) => n + r.result.errors, 0),
      firstError: rs.find((r) => r.result.firstError !== null)?.result.firstError ?? null,
      proxyUsPerName: medianOr(rs.map((r) => perRequestUs(r.cpu.proxyCpuS, r.result.ok))),
      generatorUsPerName: medianOr(rs.map((r) => perRequestUs(r.cpu.generatorCpuS, r.result.ok))),
      loadCoreBusy: medianOr(rs.map((r) => r.cpu.loadCoreBusy)),
      rounds: rs,
    };
  });
}

/** One GET through `s` trusting only `s.trust`: proves the bump (or the splice) before anything is measured. */
async function checkPath(b: Bench, s: Subject, servername: string): Promise<void> {
  const what = `${s.name} (SNI ${servername}, expecting ${s.proxy === null ? 'direct' : servername.endsWith(BUMP_DOMAIN) ? 'a bump' : 'a splice'})`;
  let socket: Awaited<ReturnType<typeof openHttps>> | null = null;
  try {
    socket = await openHttps({ via: s.proxy, origin: b.origin, trust: s.trust, path: BODY_PATH }, servername, TIMEOUT_MS);
    const res = await new ResponseReader(socket).send(requestBytes(servername, BODY_PATH, true), TIMEOUT_MS);
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  } catch (err) {
    throw new Error(`path check failed for ${what}: ${errorText(err)}`, { cause: err });
  } finally {
    socket?.destroy();
  }
}

// ---- report -----------------------------------------------------------------------------------------------

const pct = (x: number | null): string => (x === null || !Number.isFinite(x) ? '—' : `${Math.round(x * 100)}`);

function printLoad(title: string, settings: string, rows: readonly LoadRow[]): void {
  say(`\n${title}\n  ${settings}`);
  say(
    table(
      ['', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'proxy µs/req', 'cap req/s', 'gen µs/req', 'gen core %', 'nginx µs/req', 'CPU0 busy %', 'others CPU1 %'],
      rows.map((r) => [
        r.subject,
        fix(r.perSec, 0),
        fix(r.p50Ms, 2),
        fix(r.p99Ms, 2),
        String(r.errors),
        fix(r.proxyUsPerRequest, 0),
        fix(r.proxyUsPerRequest === null ? null : 1e6 / r.proxyUsPerRequest, 0),
        fix(r.generatorUsPerRequest, 0),
        pct(r.generatorCoreShare),
        fix(r.nginxUsPerRequest, 0),
        pct(r.loadCoreBusy),
        pct(r.otherShareProxyCore),
      ]),
    ),
  );
  say(`  rounds: ${rows.map((r) => `${r.subject} ${r.rounds.map((x) => fix(x.result.perSec, 0)).join('/')}`).join('; ')}`);
  for (const r of rows) if (r.firstError !== null) say(`  ${r.subject} first error: ${r.firstError}`);
  say('  cap req/s = 1 core ÷ proxy CPU per request: what the proxy could serve on its core if the load side kept up (an estimate).');
  const saturated = rows.filter((r) => (r.loadCoreBusy ?? 0) >= 0.9);
  if (saturated.length > 0) say(`  NOTE: CPU ${LOAD_CPU} (generator + origin) was ≥ 90 % busy for ${saturated.map((r) => r.subject).join(', ')}: those rows are limited by the load side, not the proxy.`);
}

function printResults(res: Results): void {
  say(`\negress-inspector TLS interception benchmark (issue 10), ${res.mode}, ${String(res.machine.cpus)} CPUs, Node ${String(res.machine.node)}, ${String(res.machine.mitmdump)}`);
  say(`  ${res.fairness}`);
  const ratioLine = (what: string, ratio: number, ref: number, rows: readonly LoadRow[]): void => {
    const us = (n: SubjectName): number => rows.find((r) => r.subject === n)?.proxyUsPerRequest ?? Number.NaN;
    say(`  egress-inspector / mitmdump: ${fix(ratio, 2)}× ${what}, ${fix(us('mitmdump') / us('egress-inspector'), 2)}× by proxy CPU per request (issue's mitmdump 8.1.1: ${ref} req/s)`);
  };
  if (res.keepAlive !== undefined) {
    if ('error' in res.keepAlive) printFailed('1. keep-alive', res.keepAlive);
    else {
      printLoad('1. Keep-alive bumped requests', res.keepAlive.settings, res.keepAlive.rows);
      ratioLine('req/s', res.keepAlive.ratio, ISSUE_MITMDUMP.keepAliveReqPerSec, res.keepAlive.rows);
    }
  }
  if (res.newTunnel !== undefined) {
    if ('error' in res.newTunnel) printFailed('2. new-tunnel', res.newTunnel);
    else {
      printLoad('2. New tunnel + handshake per request', res.newTunnel.settings, res.newTunnel.rows);
      ratioLine('req/s', res.newTunnel.ratio, ISSUE_MITMDUMP.newTunnelReqPerSec, res.newTunnel.rows);
    }
  }
  if (res.newNames !== undefined) {
    if ('error' in res.newNames) printFailed('3. new-names', res.newNames);
    else {
      say(`\n3. Never-seen SNI names, first-byte latency\n  ${res.newNames.settings}`);
      say(
        table(
          ['', 'p50 ms', 'p99 ms', 'max ms', 'ok', 'errors', 'proxy µs/name', 'gen µs/name', 'CPU0 busy %', 'rounds p99'],
          res.newNames.rows.map((r) => [
            r.subject,
            fix(r.p50Ms, 1),
            fix(r.p99Ms, 1),
            fix(r.maxMs, 1),
            String(r.ok),
            String(r.errors),
            fix(r.proxyUsPerName, 0),
            fix(r.generatorUsPerName, 0),
            pct(r.loadCoreBusy),
            r.rounds.map((x) => fix(x.result.p99Ms, 1)).join('/'),
          ]),
        ),
      );
      for (const r of res.newNames.rows) if (r.firstError !== null) say(`  ${r.subject} first error: ${r.firstError}`);
      say(`  (issue's mitmdump 8.1.1: p50 ${ISSUE_MITMDUMP.newNameP50Ms} ms, p99 ${ISSUE_MITMDUMP.newNameP99Ms} ms)`);
    }
  }
  if (res.splice !== undefined) {
    if ('error' in res.splice) printFailed('4. splice', res.splice);
    else {
      printLoad('4. Splice with bump rules present (not matching) vs no bump rules', res.splice.settings, res.splice.rows);
      say(`  egress-inspector / egress-inspector-no-bump: ${fix(res.splice.ratio, 3)}× req/s; CPU µs/request ratio ${fix(res.splice.cpuRatio, 3)} (lower is better)`);
    }
  }
  if (res.records !== undefined) say(`\nRecords written: ${Object.entries(res.records).map(([k, v]) => `${k} ${v}`).join(', ')}; DNS questions to the fake resolver: ${res.dnsQueries ?? 0}`);
  if (res.profiles !== undefined) say(`CPU profiles: ${res.profiles}`);
  printTargets('Targets (issue 10)', res.targets);
}

// ---- prerequisites ------------------------------------------------------------------------------------------

/** nginx lives in /usr/sbin, not on every user's PATH. */
function findTool(command: string): string | null {
  const saved = process.env.PATH;
  process.env.PATH = `${saved ?? ''}:/usr/sbin:/sbin:/usr/bin`;
  try {
    return which(command);
  } finally {
    process.env.PATH = saved;
  }
}

function requireBenchTools(): { mitmdump: string; nginx: string } {
  const tools = { mitmdump: findTool('mitmdump'), nginx: findTool('nginx'), openssl: findTool('openssl') };
  const packages: Record<keyof typeof tools, string> = { mitmdump: 'mitmproxy', nginx: 'nginx-light', openssl: 'openssl' };
  const missing = (Object.keys(tools) as (keyof typeof tools)[]).filter((k) => tools[k] === null);
  if (missing.length > 0 || tools.mitmdump === null || tools.nginx === null) {
    process.stderr.write(
      `bump bench: missing ${missing.join(', ')}. Install with\n    sudo apt-get install -y ${missing.map((k) => packages[k]).join(' ')}\n` +
        '  then stop any service the package starts (sudo systemctl disable --now nginx); the bench runs its own instances on loopback.\n',
    );
    process.exit(2);
  }
  return { mitmdump: tools.mitmdump, nginx: tools.nginx };
}

// ---- main ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), { sections: SECTIONS, outFile: 'bump-latest.json', cpuProf: true });
  const tools = requireBenchTools();
  const settings = flags.quick ? QUICK : FULL;
  const t0 = Date.now();
  const machine = await describeMachine({ wrk: null, squid: null });
  delete machine.wrk;
  delete machine.squid;
  machine.mitmdump = (await run(tools.mitmdump, ['--version'], { timeoutMs: 20_000 })).stdout.split('\n')[0]?.trim() ?? null;
  machine.nginx = (await run(tools.nginx, ['-v'], { timeoutMs: 5000 })).stderr.trim();
  const results: Results = {
    bench: 'egress-inspector TLS interception (issue 10)',
    startedAt: new Date(t0).toISOString(),
    mode: flags.quick ? 'quick' : 'full',
    sections: flags.sections,
    settings,
    machine,
    fairness: 'both proxies get CONNECT 127.0.0.1:<origin> with the name as SNI only; both mint a leaf per SNI and verify the origin (test CA) for it; egress-inspector writes flow records, mitmdump -q none',
    issueMitmdump: ISSUE_MITMDUMP,
    targets: [],
  };

  const canPin = os.cpus().length >= 2 && which('taskset') !== null;
  if (canPin) await pinToCpus(process.pid, String(LOAD_CPU));
  else progress('not pinning (fewer than 2 CPUs or no taskset): figures mix proxy and load on the same cores');

  if (flags.build) await build(progress);

  const tmp = mkdtempSync(join(os.tmpdir(), 'egress-bump-bench-'));
  const removeTemp = (): void => {
    if (!flags.keepTemp) rmSync(tmp, { recursive: true, force: true });
  };
  const watchdog = startWatchdog(settings.watchdogS, progress, removeTemp);

  const started: { stop(): Promise<void> }[] = [];
  let dns: Awaited<ReturnType<typeof startFakeDns>> | null = null;
  try {
    progress(`starting nginx, mitmdump and two egress-inspectors; temp dir ${tmp}`);
    dns = await startFakeDns();
    const nginx = await startNginx({ binary: tools.nginx, dir: join(tmp, 'nginx'), dnsNames: ORIGIN_NAMES });
    started.push(nginx);
    const caDir = join(tmp, 'ca');
    mkdirSync(caDir, { recursive: true });
    const ca = createCa('egress-inspector bench CA');
    writeFileSync(join(caDir, 'ca.pem'), ca.certPem);
    writeFileSync(join(caDir, 'ca-key.pem'), ca.keyPem, { mode: 0o600 });
    chmodSync(join(caDir, 'ca-key.pem'), 0o600);
    const bumpPolicy = join(tmp, 'bump.yaml');
    writeFileSync(bumpPolicy, `version: 1\nrules:\n  - id: bench-bump\n    when: { tls.client.server_name: { endswith: ${BUMP_DOMAIN} } }\n    action: bump\n`);
    const plainPolicy = join(tmp, 'plain.yaml');
    writeFileSync(plainPolicy, 'version: 1\n');
    const profileDir = join(RESULTS_DIR, 'profiles', `bump-${new Date(t0).toISOString().replace(/[:.]/g, '-')}`);
    if (flags.cpuProf) mkdirSync(profileDir, { recursive: true });
    const extraConfig = {
      tls: { observe: true, ca_dir: caDir, upstream_ca: [nginx.pki.caFile] },
      resolver: { servers: [`${dns.endpoint.host}:${dns.endpoint.port}`], timeout: '200ms' },
    };
    const starting = [
      startMitmdump({ binary: tools.mitmdump, dir: join(tmp, 'mitmdump'), upstreamCaFile: nginx.pki.caFile }),
      startProxy({
        root: ROOT,
        dir: tmp,
        name: 'egress-inspector',
        observe: true,
        policyFiles: [bumpPolicy],
        extraConfig,
        ...(flags.cpuProf ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] } : {}),
      }),
      startProxy({ root: ROOT, dir: tmp, name: 'egress-inspector-no-bump', observe: true, policyFiles: [plainPolicy], extraConfig }),
    ] as const;
    const settled = await Promise.allSettled(starting);
    for (const r of settled) if (r.status === 'fulfilled') started.push(r.value);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    const [mitm, inspector, plain] = await Promise.all(starting);
    const bare = await startBareBump({ dir: tmp, caCertFile: join(caDir, 'ca.pem'), caKeyFile: join(caDir, 'ca-key.pem'), domain: BUMP_DOMAIN.slice(1), upstreamCaFile: nginx.pki.caFile });
    started.push(bare.child);
    const pidOf = (name: string, pid: number | undefined): number => {
      if (pid === undefined) throw new Error(`${name} has no pid`);
      return pid;
    };
    const proxyTrust = trustOnly(ca.certPem);
    const originTrust = trustOnly(readFileSync(nginx.pki.caFile, 'utf8'));
    const mitmS: Subject = { name: 'mitmdump', proxy: mitm.proxy, pid: pidOf('mitmdump', mitm.child.proc.pid), trust: trustOnly(mitm.caPem) };
    const eiS: Subject = { name: 'egress-inspector', proxy: inspector.proxy, pid: pidOf('egress-inspector', inspector.child.proc.pid), trust: proxyTrust };
    const bareS: Subject = { name: 'bare-node', proxy: bare.proxy, pid: pidOf('bare-node', bare.child.proc.pid), trust: proxyTrust };
    const pinnedPids: Record<string, number[]> = {};
    if (canPin) {
      for (const [name, pid] of [['mitmdump', mitmS.pid], ['egress-inspector', eiS.pid], ['egress-inspector-no-bump', plain.child.proc.pid], ['bare-node', bareS.pid]] as const) {
        if (pid !== null && pid !== undefined) pinnedPids[name] = await pinToCpus(pid, String(PROXY_CPU));
      }
    }
    results.pinning = { applied: canPin, proxyCpu: PROXY_CPU, loadCpu: LOAD_CPU, note: canPin ? `proxies on CPU ${PROXY_CPU}; this script (the generator), nginx and the fake DNS on CPU ${LOAD_CPU}` : 'not applied', pids: pinnedPids };
    const b: Bench = { pinned: canPin, origin: nginx.endpoint, nginxPid: nginx.child.proc.pid ?? null };

    // The paths, proven before anything is timed: a bump trusts only the proxy's CA, a splice only the origin's.
    await checkPath(b, mitmS, KEEP_ALIVE_SNI);
    await checkPath(b, eiS, KEEP_ALIVE_SNI);
    const spliceSubjects: Subject[] = [
      { name: 'egress-inspector', proxy: inspector.proxy, pid: eiS.pid, trust: originTrust },
      { name: 'egress-inspector-no-bump', proxy: plain.proxy, pid: pidOf('egress-inspector-no-bump', plain.child.proc.pid), trust: originTrust },
      { name: 'direct', proxy: null, pid: null, trust: originTrust },
    ];
    for (const s of spliceSubjects) await checkPath(b, s, SPLICE_SNI);
    await checkPath(b, bareS, KEEP_ALIVE_SNI);
    // bare-node: Node's own TLS termination and origin handshake with no inspection (bench/lib/bare-bump.ts) — the
    // platform's figure next to ours.
    const bumpSubjects = [mitmS, eiS, bareS];
    const directS: Subject = { name: 'direct', proxy: null, pid: null, trust: originTrust };
    const ratioOf = (rows: readonly LoadRow[], a: SubjectName, over: SubjectName, pick: (r: LoadRow) => number | null): number => {
      const x = rows.find((r) => r.subject === a);
      const y = rows.find((r) => r.subject === over);
      const xv = x === undefined ? null : pick(x);
      const yv = y === undefined ? null : pick(y);
      return xv === null || yv === null ? Number.NaN : xv / yv;
    };

    if (flags.sections.includes('keep-alive')) {
      results.keepAlive = await attempt(async () => {
        const p = settings.keepAlive;
        const rows = await loadSection('keep-alive', b, bumpSubjects, KEEP_ALIVE_SNI, p);
        const ratio = ratioOf(rows, 'egress-inspector', 'mitmdump', (r) => r.perSec);
        results.targets.push(atLeast('keep_alive.vs_mitmdump', 'bumped keep-alive req/s, egress-inspector / mitmdump', ratio, TARGETS.keepAliveVsMitm));
        return { settings: `${p.concurrency} keep-alive connections, GET ${BODY_PATH} (1 KiB), ${p.durationMs / 1000} s × ${p.rounds} interleaved rounds after ${p.warmupMs / 1000} s warm-up; medians`, rows, ratio };
      });
    }

    if (flags.sections.includes('new-tunnel')) {
      results.newTunnel = await attempt(async () => {
        const p = settings.newTunnel;
        // direct: a new handshake with the origin per request, no proxy — the ceiling of the load side (CPU 0).
        const rows = await loadSection('new-tunnel', b, [...bumpSubjects, directS], NEW_TUNNEL_SNI, p);
        const ratio = ratioOf(rows, 'egress-inspector', 'mitmdump', (r) => r.perSec);
        results.targets.push(atLeast('new_tunnel.vs_mitmdump', 'new tunnel per request req/s, egress-inspector / mitmdump', ratio, TARGETS.newTunnelVsMitm));
        return { settings: `${p.concurrency} loops of CONNECT + full TLS handshake + one GET + close, ${p.durationMs / 1000} s × ${p.rounds} interleaved rounds; medians; p50/p99 = CONNECT → complete response`, rows, ratio };
      });
    }

    if (flags.sections.includes('new-names')) {
      results.newNames = await attempt(async () => {
        const p = settings.newNames;
        // direct: the generator's own handshake with the origin for each new name, no proxy — what this machine's
        // load side and origin allow; a proxy's first byte can only come later than that.
        const rows = await namesSection(b, [...bumpSubjects, directS], p);
        const ours = rows.find((r) => r.subject === 'egress-inspector');
        results.targets.push(atMost('new_names.p99_ms', 'never-seen SNI first-byte p99, egress-inspector, ms', ours?.p99Ms ?? Number.NaN, TARGETS.newNameP99Ms));
        return {
          settings: `${p.names} never-seen names per round (n0001${BUMP_DOMAIN} …), ${p.concurrency} concurrent, one tunnel each, ${p.rounds} interleaved round(s) after ${p.warmupNames} warm-up names; CONNECT start → first response byte; medians of rounds`,
          rows,
        };
      });
    }

    if (flags.sections.includes('splice')) {
      results.splice = await attempt(async () => {
        const p = settings.splice;
        const rows = await loadSection('keep-alive', b, spliceSubjects, SPLICE_SNI, p);
        const ratio = ratioOf(rows, 'egress-inspector', 'egress-inspector-no-bump', (r) => r.perSec);
        const cpuRatio = ratioOf(rows, 'egress-inspector', 'egress-inspector-no-bump', (r) => r.proxyUsPerRequest);
        results.targets.push(atLeast('splice.vs_no_bump', 'spliced keep-alive req/s, bump rules present / none', ratio, TARGETS.spliceVsNoBump));
        return { settings: `SNI ${SPLICE_SNI} (no bump rule matches), TLS end to end with the origin, ${p.concurrency} keep-alive connections, ${p.durationMs / 1000} s × ${p.rounds} interleaved rounds; medians`, rows, ratio, cpuRatio };
      });
    }

    progress('stopping servers, counting records');
    await Promise.all([inspector.stop(), plain.stop(), mitm.stop()]);
    results.records = { 'egress-inspector flow records': await inspector.flowRecords(), 'egress-inspector-no-bump flow records': await plain.flowRecords() };
    results.dnsQueries = dns.queries();
    if (flags.cpuProf) results.profiles = profileDir;
  } finally {
    await Promise.allSettled(started.map((s) => s.stop()));
    dns?.close();
    clearTimeout(watchdog);
    if (flags.keepTemp) progress(`kept ${tmp}`);
    removeTemp();
  }

  finishRun(results, t0, flags.out, printResults);
  if (results.targets.some((t) => !t.ok)) process.exitCode = 1;
}

runMain('bump bench', main);

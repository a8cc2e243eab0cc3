/**
 * Issue 9 item 7, memory over time: egress-inspector under a steady, moderate load for N minutes, its resident
 * memory sampled every 5 s. A cache without a bound, a backlog that outgrows its drain or state kept per
 * connection shows as a slope; a proxy that only needs a lot of memory shows as a flat curve at a high level.
 *
 *   npx tsx bench/soak.bench.ts                   10 minutes (plus the build)
 *   npx tsx bench/soak.bench.ts --minutes 1       a smoke run
 *   npx tsx bench/soak.bench.ts --no-build        measure the dist/ that is already there
 *   npx tsx bench/soak.bench.ts --root DIR        measure DIR/dist/main.js (DIR holds dist/, policies/, node_modules/)
 *   npx tsx bench/soak.bench.ts --keep-temp       keep the config and the flow log (path printed)
 *   npx tsx bench/soak.bench.ts --config JSON     merged into the proxy's config (e.g. '{"console":{"enabled":false}}')
 *
 * The proxy: dist/main.js with the shipped default policy, flow records to a file (bench/lib/start-proxy.ts), the
 * DNS forwarder on (as `npm start` has it), and a resolver and a DNS upstream that are this script's own fake
 * DNS server on loopback: every A question is answered 127.0.0.1, so names such as svc-17.example reach the
 * local origin (bench/lib/origin-server.ts) and fill the name-keyed state (resolver cache, DNS memory, DNS
 * signals, baselines, beacon tracker) as a real network would, without leaving the machine.
 *
 * The load, per second (fixed rates, not "as fast as possible": a soak looks for growth, not for the ceiling):
 * - 300 plain HTTP requests over 16 keep-alive connections (the connections live the whole run: state kept
 *   per connection grows with them);
 * - 30 HTTP requests on a new connection each (`Connection: close`);
 * - 20 CONNECT tunnels: a real ClientHello (SNI = the name), one byte back from the destination, close;
 * - 50 DNS queries over UDP to the proxy's DNS listener.
 * Names cycle through 2,000 (svc-0.example … svc-1999.example), User-Agents through 4: every cache reaches its
 * plateau within the first minute. Each kind has a cap on requests in flight; a request that would exceed it
 * is skipped and counted (a proxy too slow for the load shows as skips, not as a queue in this script).
 *
 * Samples every 5 s: VmRSS of the proxy (/proc/<pid>/status), and from its admin /metrics the process's own
 * view (process_resident_memory_bytes, nodejs_heap_size_used_bytes). At the end:
 * VmHWM (the kernel's peak), a table minute → RSS, heap, load done, and the verdict: the slope of RSS over the
 * second half (least squares; flat = |slope| < 1 MB/min) and the peak against issue 9's 150 MB. MB = 10^6 bytes.
 *
 * Loopback only; every loop is bounded in count and time (a watchdog ends the run at minutes + 2). Writes
 * bench/results/soak-latest.json (bench/results/ is not committed); exit code 1 when a verdict is missed.
 */
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import dnsPacket from 'dns-packet';
import { startOrigin, type Origin } from './lib/origin.js';
import { readMemory, sleep, type Endpoint } from './lib/proc.js';
import { ROOT, RESULTS_DIR, atMost, build, describeMachine, finishRun, fix, printTargets, progressLogger, round, startWatchdog, runMain, say, table, type TargetCheck } from './lib/report.js';
import { startProxy, type ProxyInstance } from './lib/start-proxy.js';
import { captureClientHello, openTunnel } from './lib/tunnel-client.js';

const SAMPLE_EVERY_MS = 5_000;
const NAMES = 2_000;
const USER_AGENTS = ['Mozilla/5.0 (Windows NT 10.0; Win64; x64)', 'curl/8.5.0', 'Microsoft-CryptoAPI/10.0', 'python-requests/2.31.0'] as const;
/** Distinct ClientHellos (by SNI) captured at start: enough variety for the JA4/SNI state, cheap to capture. */
const HELLOS = 50;
const TARGETS = { peakRssMB: 150, slopeMBPerMin: 1 } as const;
const MB = 1e6;

interface LoadKind {
  readonly name: 'keep-alive' | 'new-conn' | 'tunnel' | 'dns';
  readonly perSecond: number;
  readonly maxInFlight: number;
}

const LOAD: readonly LoadKind[] = [
  { name: 'keep-alive', perSecond: 300, maxInFlight: 64 },
  { name: 'new-conn', perSecond: 30, maxInFlight: 32 },
  { name: 'tunnel', perSecond: 20, maxInFlight: 32 },
  { name: 'dns', perSecond: 50, maxInFlight: 128 },
];
const KEEP_ALIVE_SOCKETS = 16;
const REQUEST_TIMEOUT_MS = 5_000;

// ---- results ------------------------------------------------------------------------------------------------

interface Counts {
  done: number;
  errors: number;
  skipped: number;
}

interface Sample {
  /** Minutes since the load started. */
  readonly tMin: number;
  readonly rssMB: number;
  readonly hwmMB: number;
  /** The proxy's own figures from /metrics (NaN when a scrape failed). */
  readonly reportedRssMB: number;
  readonly heapUsedMB: number;
  /** Cumulative per load kind. */
  readonly done: Record<string, number>;
  readonly errors: number;
  readonly skipped: number;
}

interface Verdict {
  readonly secondHalfSlopeMBPerMin: number;
  readonly flat: boolean;
  readonly peakMB: number;
  readonly idleMB: number;
  readonly endMB: number;
}

interface Results {
  readonly bench: 'egress-inspector soak (issue 9 item 7)';
  readonly startedAt: string;
  finishedAt?: string;
  durationS?: number;
  readonly minutes: number;
  readonly root: string;
  readonly load: readonly LoadKind[];
  readonly machine: Record<string, unknown>;
  samples: Sample[];
  firstError: string | null;
  verdict?: Verdict;
  targets: TargetCheck[];
}

// ---- the fake DNS server --------------------------------------------------------------------------------------

/** Answers every A question with 127.0.0.1 (TTL 30 s), anything else with no answer; loopback only. */
async function startFakeDns(): Promise<{ endpoint: Endpoint; close(): void }> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    let query: dnsPacket.Packet;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return; // not ours to fix
    }
    const q = query.questions?.[0];
    const answers: dnsPacket.Answer[] = q?.type === 'A' ? [{ type: 'A', name: q.name, class: 'IN', ttl: 30, data: '127.0.0.1' }] : [];
    const reply = dnsPacket.encode({
      id: query.id ?? 0,
      type: 'response',
      // RFC 1035 §4.1.1: QR, the client's RD copied, RA; RCODE 0.
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
      questions: query.questions ?? [],
      answers,
    });
    socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((done, fail) => {
    socket.once('error', fail);
    socket.bind(0, '127.0.0.1', () => done());
  });
  const { port } = socket.address();
  return { endpoint: { host: '127.0.0.1', port }, close: () => socket.close() };
}

// ---- the load ------------------------------------------------------------------------------------------------

interface LoadTargets {
  readonly proxy: Endpoint;
  readonly dns: Endpoint | null;
  readonly origin: Origin;
  readonly hellos: readonly Buffer[];
}

const nameOf = (i: number): string => `svc-${i % NAMES}.example`;

/** One plain HTTP request through the proxy, absolute-form (RFC 9112 §3.2.2), its response read to the end. */
function httpRequest(t: LoadTargets, i: number, agent: http.Agent | false): Promise<void> {
  const authority = `${nameOf(i)}:${t.origin.http.port}`;
  return new Promise((done, fail) => {
    const req = http.request(
      {
        host: t.proxy.host,
        port: t.proxy.port,
        method: 'GET',
        path: `http://${authority}/soak/${i % 97}`,
        headers: { host: authority, 'user-agent': USER_AGENTS[i % USER_AGENTS.length] ?? 'soak', ...(agent === false ? { connection: 'close' } : {}) },
        agent,
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        res.resume();
        res.once('end', () => (res.statusCode === 200 ? done() : fail(new Error(`HTTP ${res.statusCode ?? '?'}`))));
        res.once('error', fail);
      },
    );
    req.once('timeout', () => req.destroy(new Error('HTTP request timed out')));
    req.once('error', fail);
    req.end();
  });
}

/** CONNECT name:echo, a ClientHello, the destination's one byte, close. */
async function tunnel(t: LoadTargets, i: number): Promise<void> {
  const socket = await openTunnel(t.proxy, { host: nameOf(i), port: t.origin.echo.port }, REQUEST_TIMEOUT_MS);
  try {
    await new Promise<void>((done, fail) => {
      const timer = setTimeout(() => fail(new Error('no byte back through the tunnel')), REQUEST_TIMEOUT_MS);
      socket.once('data', () => {
        clearTimeout(timer);
        done();
      });
      socket.once('close', () => {
        clearTimeout(timer);
        fail(new Error('the tunnel closed before the destination answered'));
      });
      socket.resume();
      socket.write(t.hellos[i % t.hellos.length] as Buffer);
    });
  } finally {
    socket.destroy();
  }
}

/** DNS over UDP: one socket, queries matched to answers by id; an unanswered query times out. */
function dnsClient(server: Endpoint): { query(i: number): Promise<void>; close(): void } {
  const socket = dgram.createSocket('udp4');
  const pending = new Map<number, { done: () => void; fail: (err: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 1;
  socket.on('message', (msg) => {
    if (msg.length < 2) return;
    const p = pending.get(msg.readUInt16BE(0));
    if (p === undefined) return;
    clearTimeout(p.timer);
    pending.delete(msg.readUInt16BE(0));
    p.done();
  });
  socket.on('error', () => undefined);
  return {
    query(i) {
      // Ids cycle through 1..65535; the in-flight cap (128) keeps them unique among pending queries.
      const id = nextId;
      nextId = nextId >= 0xffff ? 1 : nextId + 1;
      const packet = dnsPacket.encode({ id, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: i % 5 === 0 ? 'AAAA' : 'A', name: nameOf(i) }] });
      return new Promise((done, fail) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          fail(new Error('DNS query timed out'));
        }, REQUEST_TIMEOUT_MS);
        pending.set(id, { done, fail, timer });
        socket.send(packet, server.port, server.host);
      });
    },
    close() {
      for (const p of pending.values()) clearTimeout(p.timer);
      pending.clear();
      socket.close();
    },
  };
}

interface Load {
  readonly counts: ReadonlyMap<string, Counts>;
  firstError(): string | null;
  /** Stops issuing; resolves when everything in flight has settled (bounded by the request timeout). */
  stop(): Promise<void>;
}

/** Issues each kind at its fixed rate in 50 ms ticks, within its in-flight cap. */
function startLoad(t: LoadTargets): Load {
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: KEEP_ALIVE_SOCKETS, maxFreeSockets: KEEP_ALIVE_SOCKETS });
  const dns = t.dns === null ? null : dnsClient(t.dns);
  const kinds = LOAD.filter((k) => k.name !== 'dns' || dns !== null);
  const counts = new Map<string, Counts>(kinds.map((k) => [k.name, { done: 0, errors: 0, skipped: 0 }]));
  const inFlight = new Map<string, number>(kinds.map((k) => [k.name, 0]));
  const credit = new Map<string, number>(kinds.map((k) => [k.name, 0]));
  const settling = new Set<Promise<void>>();
  let first: string | null = null;
  let seq = 0;
  const TICK_MS = 50;

  const issue = (kind: LoadKind): void => {
    const c = counts.get(kind.name) as Counts;
    const busy = inFlight.get(kind.name) ?? 0;
    if (busy >= kind.maxInFlight) {
      c.skipped++;
      return;
    }
    const i = seq++;
    const work =
      kind.name === 'keep-alive' ? httpRequest(t, i, keepAlive) : kind.name === 'new-conn' ? httpRequest(t, i, false) : kind.name === 'tunnel' ? tunnel(t, i) : (dns as NonNullable<typeof dns>).query(i);
    inFlight.set(kind.name, busy + 1);
    const settled = work.then(
      () => {
        c.done++;
      },
      (err: unknown) => {
        c.errors++;
        first ??= `${kind.name}: ${err instanceof Error ? err.message : String(err)}`;
      },
    );
    const tracked = settled.finally(() => {
      inFlight.set(kind.name, (inFlight.get(kind.name) ?? 1) - 1);
      settling.delete(tracked);
    });
    settling.add(tracked);
  };

  const timer = setInterval(() => {
    for (const kind of kinds) {
      // Fractional rates carry over: 30/s in 50 ms ticks is 1.5 per tick, alternately 1 and 2.
      let n = (credit.get(kind.name) ?? 0) + (kind.perSecond * TICK_MS) / 1000;
      for (; n >= 1; n--) issue(kind);
      credit.set(kind.name, n);
    }
  }, TICK_MS);

  return {
    counts,
    firstError: () => first,
    async stop() {
      clearInterval(timer);
      await Promise.allSettled([...settling]);
      keepAlive.destroy();
      dns?.close();
    },
  };
}

// ---- sampling and the verdict -------------------------------------------------------------------------------

/** One value of an unlabelled Prometheus text-format sample (exposition format: `name value`); NaN if absent. */
function metricValue(text: string, name: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  }
  return Number.NaN;
}

async function scrape(admin: Endpoint): Promise<{ rssMB: number; heapUsedMB: number }> {
  try {
    const res = await fetch(`http://${admin.host}:${admin.port}/metrics`, { signal: AbortSignal.timeout(3_000) });
    const text = await res.text();
    return {
      rssMB: metricValue(text, 'process_resident_memory_bytes') / MB,
      heapUsedMB: metricValue(text, 'nodejs_heap_size_used_bytes') / MB,
    };
  } catch {
    return { rssMB: Number.NaN, heapUsedMB: Number.NaN };
  }
}

/** Least-squares slope of y over x; NaN with fewer than 2 distinct x. */
function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) * (x - mx);
  }
  return sxx === 0 ? Number.NaN : sxy / sxx;
}

function verdictOf(samples: readonly Sample[], minutes: number, idleMB: number, hwmMB: number): Verdict {
  const secondHalf = samples.filter((s) => s.tMin >= minutes / 2).map((s) => [s.tMin, s.rssMB] as const);
  const s = slope(secondHalf);
  return {
    secondHalfSlopeMBPerMin: round(s, 3),
    flat: Number.isFinite(s) && Math.abs(s) < TARGETS.slopeMBPerMin,
    peakMB: round(Math.max(hwmMB, ...samples.map((x) => x.rssMB)), 1),
    idleMB: round(idleMB, 1),
    endMB: round(samples.at(-1)?.rssMB ?? Number.NaN, 1),
  };
}

/** One row per minute: the last sample at or before each whole minute, and the load done in the minute before it. */
function minuteRows(samples: readonly Sample[], minutes: number): string[][] {
  const rows: string[][] = [];
  let before: Sample | undefined;
  for (let m = 0; m <= minutes; m++) {
    // Minute 0 is the first sample (taken as the load starts).
    const at = m === 0 ? samples[0] : [...samples].reverse().find((s) => s.tMin <= m + 1e-9);
    if (at === undefined) continue;
    const perMin = (kind: string): string => fix((at.done[kind] ?? 0) - (before?.done[kind] ?? 0), 0);
    rows.push([
      String(m),
      fix(at.rssMB, 1),
      fix(at.hwmMB, 1),
      fix(at.heapUsedMB, 1),
      ...LOAD.map((k) => perMin(k.name)),
      fix(at.errors - (before?.errors ?? 0), 0),
      fix(at.skipped - (before?.skipped ?? 0), 0),
    ]);
    before = at;
  }
  return rows;
}

function print(res: Results): void {
  say(`\negress-inspector soak: ${res.minutes} min, ${res.load.map((k) => `${k.perSecond}/s ${k.name}`).join(', ')} (MB = 10^6 bytes)`);
  say(table(['minute', 'VmRSS', 'VmHWM', 'heapUsed', ...LOAD.map((k) => k.name), 'errors', 'skipped'], minuteRows(res.samples, res.minutes)));
  if (res.firstError !== null) say(`  first error: ${res.firstError}`);
  const v = res.verdict;
  if (v !== undefined) {
    say(`\n  idle ${fix(v.idleMB, 1)} MB → end ${fix(v.endMB, 1)} MB; peak ${fix(v.peakMB, 1)} MB (VmHWM and samples)`);
    say(`  RSS slope over the second half: ${fix(v.secondHalfSlopeMBPerMin, 2)} MB/min → ${v.flat ? 'flat' : 'NOT flat'} (|slope| < ${TARGETS.slopeMBPerMin} MB/min)`);
  }
  printTargets('Targets (issue 9 item 7)', res.targets);
}

// ---- main -------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      minutes: { type: 'string', default: '10' },
      'no-build': { type: 'boolean', default: false },
      root: { type: 'string' },
      'keep-temp': { type: 'boolean', default: false },
      out: { type: 'string' },
      /** JSON merged into the proxy's config, e.g. '{"console":{"enabled":false}}' to see a part's share. */
      config: { type: 'string' },
    },
    strict: true,
  });
  const minutes = Number(values.minutes);
  if (!(Number.isFinite(minutes) && minutes > 0 && minutes <= 24 * 60)) throw new Error(`--minutes: expected a number of minutes from 0 to 1440, got ${values.minutes}`);
  const root = resolve(values.root ?? ROOT);
  const out = resolve(values.out ?? join(RESULTS_DIR, 'soak-latest.json'));
  const t0 = Date.now();
  const progress = progressLogger(t0);
  if (values.root === undefined && !values['no-build']) await build(progress);

  const tmp = mkdtempSync(join(os.tmpdir(), 'egress-soak-'));
  startWatchdog((minutes + 2) * 60, progress);

  const results: Results = {
    bench: 'egress-inspector soak (issue 9 item 7)',
    startedAt: new Date().toISOString(),
    minutes,
    root,
    load: LOAD,
    machine: await describeMachine({ wrk: null, squid: null }),
    samples: [],
    firstError: null,
    targets: [],
  };
  const fakeDns = await startFakeDns();
  let origin: Origin | null = null;
  let proxy: ProxyInstance | null = null;
  try {
    origin = await startOrigin();
    const upstream = `${fakeDns.endpoint.host}:${fakeDns.endpoint.port}`;
    proxy = await startProxy({
      root,
      dir: tmp,
      name: 'egress-inspector',
      observe: true,
      policyFiles: [join(root, 'policies', 'default.yaml')],
      extraConfig: {
        dns: { listen: '127.0.0.1:0', upstream: [upstream] },
        resolver: { servers: [upstream], timeout: '500ms' },
        ...(values.config === undefined ? {} : (JSON.parse(values.config) as Record<string, unknown>)),
      },
    });
    const pid = proxy.child.proc.pid;
    if (pid === undefined) throw new Error('the proxy has no pid');
    const dnsMatch = /dns on ([\d.]+):(\d+)/.exec(proxy.child.output());
    const dns = dnsMatch === null ? null : { host: dnsMatch[1] ?? '127.0.0.1', port: Number(dnsMatch[2]) };
    progress(`proxy pid ${pid} on ${proxy.proxy.port}, admin ${proxy.admin.port}, dns ${dns?.port ?? 'off'}; temp dir ${tmp}`);

    await sleep(1_000);
    const idleMB = ((await readMemory(pid))?.rssKiB ?? Number.NaN) * 1024 / MB;
    const hellos: Buffer[] = [];
    for (let i = 0; i < HELLOS; i++) hellos.push(await captureClientHello(nameOf(i)));
    const load = startLoad({ proxy: proxy.proxy, dns, origin, hellos });
    const started = Date.now();
    const endAt = started + minutes * 60_000;
    progress(`load running for ${minutes} min; a sample every ${SAMPLE_EVERY_MS / 1000} s`);
    // Bounded: one sample per interval until endAt (at most minutes × 12 + 1 samples).
    for (let next = started; next <= endAt; next += SAMPLE_EVERY_MS) {
      await sleep(Math.max(0, next - Date.now()));
      const mem = await readMemory(pid);
      if (mem === null) throw new Error(`the proxy exited; output:\n${proxy.child.output()}`);
      const m = await scrape(proxy.admin);
      const done: Record<string, number> = {};
      let errors = 0;
      let skipped = 0;
      for (const [kind, c] of load.counts) {
        done[kind] = c.done;
        errors += c.errors;
        skipped += c.skipped;
      }
      const sample: Sample = {
        tMin: round((Date.now() - started) / 60_000, 3),
        rssMB: round((mem.rssKiB * 1024) / MB, 1),
        hwmMB: round((mem.hwmKiB * 1024) / MB, 1),
        reportedRssMB: round(m.rssMB, 1),
        heapUsedMB: round(m.heapUsedMB, 1),
        done,
        errors,
        skipped,
      };
      results.samples.push(sample);
      if (results.samples.length % 12 === 1) progress(`t = ${fix(sample.tMin, 1)} min: VmRSS ${fix(sample.rssMB, 1)} MB, heap ${fix(sample.heapUsedMB, 1)} MB, errors ${errors}, skipped ${skipped}`);
    }
    await load.stop();
    results.firstError = load.firstError();
    const end = await readMemory(pid);
    const hwmMB = ((end?.hwmKiB ?? Number.NaN) * 1024) / MB;
    const v = verdictOf(results.samples, minutes, idleMB, hwmMB);
    results.verdict = v;
    results.targets.push(
      atMost('soak.peak_rss_mb', 'peak RSS through the soak, MB', v.peakMB, TARGETS.peakRssMB),
      atMost('soak.rss_slope_mb_per_min', '|RSS slope| over the second half, MB/min', Math.abs(v.secondHalfSlopeMBPerMin), TARGETS.slopeMBPerMin),
    );
  } finally {
    await proxy?.stop();
    await origin?.stop();
    fakeDns.close();
    if (values['keep-temp']) progress(`kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }
  finishRun(results, t0, out, print);
  if (results.targets.some((t) => !t.ok)) process.exitCode = 1;
}

runMain('soak.bench', main);

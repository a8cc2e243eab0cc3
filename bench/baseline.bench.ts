/**
 * Baseline store: lookup ≤ 2 µs median on the hot path, record cheap, and persisting never stalls the event
 * loop — measured as the event-loop delay p99 (perf_hooks.monitorEventLoopDelay) while recording 100,000
 * flows/s for 2 s, for each backend: memory, SQLite (the default), Redis (when redis-server is installed).
 *
 * Run: npx tsx bench/baseline.bench.ts [--no-redis]      → JSON lines on stdout, one per figure.
 *
 * The flows: 2,000 hosts (uniform), 200 processes and 20,000 destinations drawn from Zipf distributions
 * (s = 1.2 and 1.0: domain popularity is Zipf-like — Breslau et al., "Web Caching and Zipf-like Distributions",
 * INFOCOM 1999 — so a few carry most flows and the tail is long), one JA4 per process most of the time, from a
 * seeded generator so runs compare. 200,000 flows hold ~150,000 distinct keys: far more new pairs per second
 * than a fleet in steady state, where most pairs are already known, so the write figures are pessimistic.
 * Lookups and records are timed in batches of 1,000 calls (a single call is too short for the timer); median
 * and p99 are over the batches' per-call means. Before the lookup figures the store holds 300,000 flows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createMemoryBaseline, type Baseline, type BaselineQuery } from '../src/enrich/baseline/baseline.js';
import { openRedisBaseline } from '../src/enrich/baseline/baseline-redis.js';
import { openSqliteBaseline } from '../src/enrich/baseline/baseline-sqlite.js';
import { startRedis, type TestRedis } from '../test/helpers/redis.js';
import { mulberry32 as rng } from '../test/helpers/prng.js';

const HOSTS = 2_000;
const PROCESSES = 200;
const DESTINATIONS = 20_000;
const JA4S = 50;
const FLOWS = 200_000;
const FILL = 300_000;
const BATCH = 1_000;
const RATE_PER_S = 100_000;
const LOAD_MS = 2_000;

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}


/** Draws ranks 0..n-1 with P(k) ∝ 1/(k+1)^s (inverse CDF by binary search). */
function zipf(n: number, s: number, r: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) cdf[k] = sum += 1 / Math.pow(k + 1, s);
  return () => {
    const x = r() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

function makeFlows(n: number): BaselineQuery[] {
  const r = rng(42);
  const proc = zipf(PROCESSES, 1.2, r);
  const dest = zipf(DESTINATIONS, 1.0, r);
  const out: BaselineQuery[] = [];
  for (let i = 0; i < n; i++) {
    const p = proc();
    const ja4 = r() < 0.9 ? p % JA4S : Math.floor(r() * JA4S);
    out.push({
      host: `ws${String(Math.floor(r() * HOSTS)).padStart(5, '0')}.corp.example`,
      process: r() < 0.05 ? null : `proc${p}.exe`,
      destination: `dest${dest()}.example.com`,
      ja4: `t13d1516h2_8daaf6152771_${ja4.toString(16).padStart(12, '0')}`,
    });
  }
  return out;
}

function quantile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

const round = (x: number, d = 3): number => Number(x.toFixed(d));

/** Per-call µs of `fn` over batches of BATCH calls: median and p99 of the batch means. */
function timeCalls(flows: readonly BaselineQuery[], batches: number, fn: (q: BaselineQuery, i: number) => void): { median: number; p99: number } {
  const means: number[] = [];
  let i = 0;
  for (let b = 0; b < batches; b++) {
    const start = process.hrtime.bigint();
    for (let k = 0; k < BATCH; k++, i++) fn(flows[i % flows.length] as BaselineQuery, i);
    means.push(Number(process.hrtime.bigint() - start) / 1_000 / BATCH);
  }
  means.sort((a, b) => a - b);
  return { median: round(quantile(means, 0.5)), p99: round(quantile(means, 0.99)) };
}

/**
 * Records RATE_PER_S flows/s for LOAD_MS, in 1 ms ticks, with the event-loop delay histogram on. A tick that
 * comes late records at most MAX_CATCH_UP_MS worth of flows (the rest is not offered: the achieved rate says
 * so), so the figure shows the store's stalls, not the driver's own catch-up bursts.
 */
const MAX_CATCH_UP_MS = 5;
async function underLoad(b: Baseline, flows: readonly BaselineQuery[], first: number, t0: number): Promise<{ recorded: number; seconds: number; p50: number; p99: number; max: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const start = performance.now();
  let offered = 0;
  let done = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - start;
      const due = Math.floor((Math.min(elapsed, LOAD_MS) * RATE_PER_S) / 1_000);
      offered = Math.max(offered, due - (MAX_CATCH_UP_MS * RATE_PER_S) / 1_000);
      for (; offered < due; offered++, done++) b.record(flows[(first + offered) % flows.length] as BaselineQuery, t0 + offered / 100);
      if (elapsed >= LOAD_MS) {
        clearInterval(tick);
        resolve();
      }
    }, 1);
  });
  h.disable();
  const seconds = (performance.now() - start) / 1_000;
  const ms = (ns: number): number => round(ns / 1e6, 2);
  return { recorded: done, seconds: round(seconds, 2), p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
}

async function idleDelayP99(): Promise<number> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  await new Promise((r) => setTimeout(r, 1_000));
  h.disable();
  return round(h.percentile(99) / 1e6, 2);
}

async function benchBackend(name: string, open: () => Promise<Baseline>, flows: readonly BaselineQuery[]): Promise<void> {
  const t0 = Date.now();
  // Fill, in slices, so a persistent backend writes as it would in service.
  const fill = await open();
  for (let i = 0; i < FILL; i++) {
    fill.record(flows[i % flows.length] as BaselineQuery, t0 + i / 100);
    if (i % 10_000 === 9_999) await new Promise((r) => setImmediate(r));
  }
  let t = performance.now();
  await fill.flush();
  emit({ backend: name, figure: 'fill', flows: FILL, entries: fill.sizes().entries, flushMs: round(performance.now() - t, 1) });

  const lookup = timeCalls(flows, 300, (q) => void fill.lookup(q));
  emit({ backend: name, figure: 'lookup_us', median: lookup.median, p99: lookup.p99, target: '≤ 2 µs median' });
  const record = timeCalls(flows, 300, (q, i) => fill.record(q, t0 + FILL / 100 + i / 100));
  emit({ backend: name, figure: 'record_us', median: record.median, p99: record.p99 });
  await fill.flush();
  await fill.close();

  // Cold: an empty store, so nearly every flow creates keys (the worst case: learning a new fleet).
  // Warm: the store already holds these flows (steady state: most pairs are known).
  for (const phase of ['cold', 'warm'] as const) {
    const b = await open();
    if (phase === 'warm') {
      for (let i = 0; i < FLOWS; i++) {
        b.record(flows[i] as BaselineQuery, t0 + i / 100);
        if (i % 10_000 === 9_999) await new Promise((r) => setImmediate(r));
      }
      await b.flush();
    }
    const entriesBefore = b.sizes().entries;
    const load = await underLoad(b, flows, 0, t0 + 20_000);
    const sizes = b.sizes();
    t = performance.now();
    await b.flush();
    const drainMs = round(performance.now() - t, 1);
    emit({
      backend: name,
      figure: 'event_loop_delay_ms_while_recording',
      phase,
      offeredPerS: RATE_PER_S,
      achievedPerS: Math.round(load.recorded / load.seconds),
      p50: load.p50,
      p99: load.p99,
      max: load.max,
      newEntries: sizes.entries - entriesBefore,
      pendingAtEnd: sizes.pendingWrites,
      dropped: sizes.droppedWrites,
      drainMs,
    });
    await b.close();
  }
}

async function main(): Promise<void> {
  const flows = makeFlows(FLOWS);
  emit({ figure: 'idle_event_loop_delay_p99_ms', value: await idleDelayP99() });

  await benchBackend('memory', () => Promise.resolve(createMemoryBaseline()), flows);

  const dir = mkdtempSync(join(tmpdir(), 'egress-baseline-bench-'));
  try {
    let n = 0;
    // A new directory per open: the fill run and the load run do not share a file.
    await benchBackend('sqlite', () => openSqliteBaseline(join(dir, String(n++))), flows);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  if (process.argv.includes('--no-redis')) return;
  let redis: TestRedis;
  try {
    redis = await startRedis();
  } catch (err) {
    emit({ backend: 'redis', skipped: err instanceof Error ? err.message : String(err) });
    return;
  }
  try {
    let n = 0;
    await benchBackend('redis', () => openRedisBaseline(redis.url, { keyPrefix: `bench${n++}:` }), flows);
  } finally {
    await redis.close();
  }
}

await main();

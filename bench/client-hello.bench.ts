/**
 * ClientHello parse + JA3 + JA4 cost per hello, over the 161 FoxIO vector hellos (issue #3: ≤ 10 µs median).
 * Run: npx tsx bench/client-hello.bench.ts [iterations]   → one JSON line on stdout.
 *
 * Each sample times one hello end to end (readClientHello on the record bytes, computeJa3, computeJa4) with
 * process.hrtime.bigint(); the timer itself costs ~0.05–0.1 µs, included in the figures (conservative).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readClientHello } from '../src/parsers/client-hello.js';
import { computeJa3 } from '../src/fingerprint/ja3.js';
import { computeJa4 } from '../src/fingerprint/ja4.js';

const path = fileURLToPath(new URL('../test/fixtures/vectors/ja4-foxio/derived/clienthellos.jsonl', import.meta.url));
const hellos: Uint8Array[] = readFileSync(path, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => Uint8Array.from(Buffer.from((JSON.parse(l) as { record_hex: string }).record_hex, 'hex')));

const iterations = Number(process.argv[2] ?? 200_000);
const timeBudgetMs = 20_000;
let sink = 0; // keeps the optimiser from dropping the work

function once(buf: Uint8Array): void {
  const r = readClientHello(buf);
  if (r.kind !== 'complete') throw new Error(`vector hello did not parse: ${r.kind}`);
  sink += computeJa3(r.hello).ja3.length + computeJa4(r.hello).ja4.length;
}

// Warm-up: let V8 tier up the hot functions before measuring.
for (let i = 0; i < 20_000; i++) once(hellos[i % hellos.length] as Uint8Array);

const samples = new Float64Array(iterations);
const started = process.hrtime.bigint();
const deadline = started + BigInt(timeBudgetMs) * 1_000_000n;
let n = 0;
for (; n < iterations; n++) {
  const buf = hellos[n % hellos.length] as Uint8Array;
  const t0 = process.hrtime.bigint();
  once(buf);
  const t1 = process.hrtime.bigint();
  samples[n] = Number(t1 - t0) / 1000;
  if ((n & 1023) === 0 && t1 > deadline) break;
}
const totalMs = Number(process.hrtime.bigint() - started) / 1e6;
const measured = samples.subarray(0, n).sort();
const pct = (p: number): number => Number((measured[Math.min(measured.length - 1, Math.floor(p * measured.length))] ?? 0).toFixed(2));

process.stdout.write(
  `${JSON.stringify({
    bench: 'client-hello parse+ja3+ja4',
    node: process.version,
    hellos: hellos.length,
    iterations: n,
    median_us: pct(0.5),
    p99_us: pct(0.99),
    mean_us: Number(((totalMs * 1000) / n).toFixed(2)),
    target_median_us: 10,
    ok: pct(0.5) <= 10,
    sink: sink > 0,
  })}\n`,
);

/**
 * What the shape of `event.id` costs the console history (issue 9, seventh session): random ids (UUIDv4, what
 * flows had before) against time-ordered ones (UUIDv7, src/flow/event-id.ts), in the history's own SQLite file
 * and thread (src/console/history.ts), as the table grows.
 *
 *   npx tsx bench/history-ids.bench.ts [--rows 100000] [--measure 10000] [--record-bytes 4500] [--rounds 2]
 *
 * For each round and each shape: a fresh history file is filled to `--rows` alert flows of `--record-bytes` of
 * record text (an alert storm's tunnel records are ~4.5 KB), with `max_rows` at that size so that from then on
 * every write also prunes the oldest rows (a history that has reached its bound: the steady state of a proxy
 * that runs for days). Then `--measure` more flows go through, 500 at a time, and the store thread's CPU time per
 * flow is read from /proc (the thread that did the writes), with the file's size. Rounds alternate the shapes.
 * Loopback-free: only a temp directory. Prints a table; exit 0.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openFlowHistory } from '../src/console/history.js';
import type { ConsoleFlow, FlowHistory } from '../src/console/model.js';
import { eventId } from '../src/flow/event-id.js';
import { readThreadCpuSeconds } from './lib/proc.js';
import { fix, median, startWatchdog, table } from './lib/report.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '100000' },
    measure: { type: 'string', default: '10000' },
    'record-bytes': { type: 'string', default: '4500' },
    rounds: { type: 'string', default: '2' },
  },
});
const rows = Math.min(2_000_000, Math.max(1_000, Number(values.rows)));
const measure = Math.min(200_000, Math.max(500, Number(values.measure)));
const recordBytes = Math.min(64_000, Math.max(100, Number(values['record-bytes'])));
const rounds = Math.min(10, Math.max(1, Number(values.rounds)));
const CHUNK = 500;
startWatchdog(rounds * 2 * 300 + 60, (text) => process.stderr.write(`${text}\n`));

type Shape = 'v4 (random)' | 'v7 (time-ordered)';
const SHAPES: readonly Shape[] = ['v4 (random)', 'v7 (time-ordered)'];
const idOf = (shape: Shape, ms: number): string => (shape === 'v4 (random)' ? randomUUID() : eventId(ms));

const filler = 'x'.repeat(recordBytes);
function flowAt(shape: Shape, ms: number, n: number): ConsoleFlow {
  const id = idOf(shape, ms);
  return {
    id,
    timeMs: ms,
    action: 'allow',
    protocol: 'tls',
    severity: 'medium',
    sourceIp: `10.1.${(n >> 8) & 255}.${n & 255}`,
    user: null,
    host: null,
    process: null,
    rule: null,
    rules: ['tls-fronting'],
    tags: ['fronting'],
    destination: '192.0.2.10:8443',
    score: 75,
    attribution: 'none',
    followupOf: null,
    record: `{"event":{"id":"${id}"},"pad":"${filler}"}`,
  };
}

/** Adds `count` flows CHUNK at a time, each chunk written before the next (the queue stays under its bounds). */
async function feed(history: FlowHistory, shape: Shape, clock: { ms: number }, count: number, n0: number): Promise<void> {
  for (let done = 0; done < count; ) {
    const target = history.stats().written + Math.min(CHUNK, count - done);
    for (let i = 0; i < CHUNK && done < count; i++, done++) {
      clock.ms += 1; // ~1,000 flows a second of flow time
      history.add(flowAt(shape, clock.ms, n0 + done));
    }
    const deadline = Date.now() + 60_000;
    while (history.stats().written < target) {
      if (history.stats().lastError !== null) throw new Error(`history write failed: ${String(history.stats().lastError)}`);
      if (Date.now() > deadline) throw new Error('history writes stalled for 60 s');
      await new Promise((r) => setTimeout(r, 2));
    }
  }
}

/** CPU seconds of every thread but the main one (the store thread did the writes; the rest are V8's and libuv's). */
async function otherThreadsCpu(): Promise<Map<string, number>> {
  const all = await readThreadCpuSeconds(process.pid);
  all.delete('main');
  return all;
}

interface Row {
  readonly shape: Shape;
  readonly usPerFlow: number;
  readonly fileMB: number;
}

async function runOnce(shape: Shape): Promise<Row> {
  const dir = mkdtempSync(join(os.tmpdir(), 'egress-history-ids-'));
  const path = join(dir, 'history.sqlite');
  const clock = { ms: Date.UTC(2026, 11, 7) };
  const history = await openFlowHistory({ path, retentionMs: 365 * 86_400_000, maxRows: rows, maxRate: 100, flushIntervalMs: 1, now: () => clock.ms });
  try {
    await feed(history, shape, clock, rows, 0);
    const before = await otherThreadsCpu();
    await feed(history, shape, clock, measure, rows);
    const after = await otherThreadsCpu();
    // The thread that wrote: the one whose CPU grew the most.
    let busiest = 0;
    for (const [name, s] of after) busiest = Math.max(busiest, s - (before.get(name) ?? 0));
    const stats = history.stats();
    if (stats.dropped > 0 || stats.lastError !== null) throw new Error(`history dropped ${stats.dropped} flows (${String(stats.lastError)})`);
    return { shape, usPerFlow: (busiest * 1e6) / measure, fileMB: statSync(path).size / 1e6 };
  } finally {
    await history.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const results = new Map<Shape, Row[]>(SHAPES.map((s) => [s, []]));
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? SHAPES : [...SHAPES].reverse();
  for (const shape of order) {
    const r = await runOnce(shape);
    results.get(shape)?.push(r);
    process.stdout.write(`round ${round + 1} ${shape}: ${fix(r.usPerFlow, 1)} µs of store-thread CPU per flow, file ${fix(r.fileMB, 0)} MB\n`);
  }
}
console.log(`\nhistory of ${rows} rows (at max_rows: every write prunes), ${measure} more flows of ${recordBytes} B records, ${rounds} rounds`);
console.log(
  table(
    ['event.id', 'store-thread CPU µs per flow (median)', 'file MB'],
    SHAPES.map((s) => {
      const rs = results.get(s) ?? [];
      return [s, fix(median(rs.map((r) => r.usPerFlow)), 1), fix(median(rs.map((r) => r.fileMB)), 0)];
    }),
  ),
);
process.exit(0);

/**
 * The per-flow cost of our own work, without sockets (issue 9 "per-flow cost"): plain-HTTP flows through the real
 * pipeline of the default configuration — facts, enrichment, scoring, the shipped default policy, the ECS record
 * and metrics — with the flow log writing to a no-op sink. What the proxy adds on top is socket I/O and HTTP
 * framing (bench/core.bench.ts measures the whole).
 *
 *   npx tsx bench/pipeline.bench.ts [--flows 50000] [--rounds 5]
 *
 * Prints µs per flow (median of rounds) and the record size; `node --cpu-prof` on it shows where the time goes.
 */
import { parseArgs } from 'node:util';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { createMetrics } from '../src/observe/metrics.js';
import { createPolicyStore } from '../src/policy/policy-store.js';
import { createTelemetry } from '../src/cli/telemetry.js';
import { createPipeline } from '../src/cli/compose.js';
import { createPolicyView } from '../src/policy/evaluate.js';
import { computeJa4h } from '../src/fingerprint/ja4h.js';
import { parseRequestHead } from '../src/parsers/http1.js';
import { parseAbsoluteTarget } from '../src/net/target.js';
import { createLogger } from '../src/observe/logger.js';
import type { FlowLog } from '../src/observe/flow-log.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { flows: { type: 'string', default: '50000' }, rounds: { type: 'string', default: '5' } } });
const FLOWS = Math.max(1000, Math.min(1_000_000, Number(values.flows)));
const ROUNDS = Math.max(1, Math.min(20, Number(values.rounds)));

const tmp = mkdtempSync(join(os.tmpdir(), 'egress-bench-pipeline-'));
const config = await loadConfig({ baseDir: ROOT });
const cfg = { ...config, baseline: { ...config.baseline, store: 'memory' }, dns: { ...config.dns, listen: null } } as typeof config;

let bytes = 0;
let records = 0;
const sink: FlowLog = {
  write(line) {
    bytes += line.length;
    records++;
  },
  flush() {},
  close: () => Promise.resolve(),
};
const metrics = createMetrics();
const logger = createLogger('error');
const policy = createPolicyStore({ files: cfg.policy.files, onReload: () => undefined });
await policy.start();
const telemetry = await createTelemetry(cfg, { metrics, flowLog: sink, logger, policy: () => createPolicyView(policy.current()), rescore: () => undefined });
const { pipeline, detection, resolver } = await createPipeline(cfg, { policy, hints: telemetry.hints, metrics, flowLog: sink });

const REQUEST = Buffer.from(
  'GET http://93.184.216.34/static/app.js?v=3 HTTP/1.1\r\nHost: 93.184.216.34\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n' +
    'Accept: */*\r\nAccept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n',
  'latin1',
);

async function oneFlow(i: number): Promise<void> {
  const parsed = parseRequestHead(REQUEST, 0, 16_384);
  if (parsed.kind !== 'head') throw new Error('fixture');
  const head = parsed.head;
  const flow = pipeline.open('http', `10.1.${(i >> 8) & 255}.${i & 255}`, 40_000 + (i % 20_000));
  flow.set('http.request.method', head.method);
  flow.set('http.version', '1.1');
  flow.set('url.original', head.target);
  const ua = head.headers['user-agent'];
  if (ua !== undefined) flow.set('user_agent.original', ua);
  flow.set('network.protocol', 'http');
  const target = parseAbsoluteTarget(head.target);
  flow.set('destination.port', target.port);
  flow.set('egress.destination.ip_literal', target.ip !== null);
  if (target.ip !== null) flow.set('destination.ip', target.ip);
  flow.set('url.scheme', target.scheme);
  flow.set('url.domain', target.host);
  flow.set('url.port', target.port);
  flow.set('url.path', target.path);
  if (target.query !== null) flow.set('url.query', target.query);
  flow.requestHost = head.headers.host ?? null;
  flow.set('http.request.ja4h', computeJa4h(head.method, '1.1', head.rawHeaders).ja4h);
  const t0 = process.hrtime.bigint();
  await pipeline.decide(flow, 'http-request');
  const t1 = process.hrtime.bigint();
  flow.set('http.response.status_code', 200);
  flow.sourceBytes = REQUEST.length;
  flow.destinationBytes = 1024;
  pipeline.end(flow);
  decideNs += t1 - t0;
  endNs += process.hrtime.bigint() - t1;
}
/** Time in decide (on the request's path: before it is forwarded) and in end (after the answer: record, metrics). */
let decideNs = 0n;
let endNs = 0n;

const results: number[] = [];
for (let round = 0; round <= ROUNDS; round++) {
  const started = process.hrtime.bigint();
  decideNs = 0n;
  endNs = 0n;
  for (let i = 0; i < FLOWS; i++) await oneFlow(i);
  const us = Number(process.hrtime.bigint() - started) / 1000 / FLOWS;
  if (round > 0) results.push(us); // round 0 warms up
  const per = (ns: bigint): string => (Number(ns) / 1000 / FLOWS).toFixed(2);
  console.log(`${round === 0 ? 'warm-up' : `round ${round}`}: ${us.toFixed(2)} µs/flow (decide ${per(decideNs)}, end ${per(endNs)})`);
}
results.sort((a, b) => a - b);
console.log(`median ${results[Math.floor(results.length / 2)]?.toFixed(2)} µs/flow over ${ROUNDS} rounds of ${FLOWS} flows; record ${Math.round(bytes / records)} bytes`);
policy.close();
resolver.close();
await telemetry.close();
await detection.close();
rmSync(tmp, { recursive: true, force: true });

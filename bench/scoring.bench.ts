/**
 * The detection engine's cost per flow (issue 8 "Performance": all features + score for one flow ≤ 20 µs
 * median). The real engine from the shipped data files, an in-memory baseline past its learning period and
 * the beacon tracker, driven the way the pipeline drives it: a score at each stage, then `finish` at the end.
 *
 *   npx tsx bench/scoring.bench.ts            prints median / p99 µs per flow, by kind of flow
 */
import { performance } from 'node:perf_hooks';
import { defaultConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { Flow } from '../src/flow/flow.js';
import { createDnsSignals } from '../src/scoring/dns-signals.js';
import { createDetection } from '../src/scoring/detection.js';
import { DEFAULT_WEIGHTS } from '../src/scoring/signals.js';
import { createPolicyView } from '../src/policy/evaluate.js';
import { loadPolicy } from '../src/policy/load.js';

const FLOWS = 20_000;
const WARMUP = 5_000;

const base = defaultConfig(process.cwd(), {});
const config: Config = { ...base, baseline: { ...base.baseline, store: 'memory', learning: 0 } };
const dns = createDnsSignals({ windowMs: 3_600_000, uniqueSubdomains: 100, burstWindowMs: 60_000, txtQueries: 20, nxdomainAnswers: 20 });
const detection = await createDetection(config, { weights: () => DEFAULT_WEIGHTS, dnsScorers: dns.scorers });
const loaded = await loadPolicy(['policies/default.yaml']);
if (!loaded.ok) throw new Error('default policy does not load');
const policy = createPolicyView(loaded.policy);

const PROCESSES = ['chrome.exe', 'powershell.exe', 'rundll32.exe', 'teams.exe', 'updater.exe'];
const PATHS = ['/index.html', '/api/v2/items?page=3', '/aZ3kP9qLm2XvB7nR4tW8yE1uC6oD0sFhJ5gT/load', '/static/js/main.3f2a1b9c.js', '/submit.php?id=1187437'];
const JA4 = ['t13d1516h2_8daaf6152771_02713d6af862', 't13d1715h2_5b57614c22b0_3d5424432f57', 't12d190800_d83cc789557e_7af1ed941c26'];

function attribute(flow: Flow, i: number): void {
  const name = PROCESSES[i % PROCESSES.length] as string;
  flow.set('process.name', name);
  flow.set('process.executable', `C:\\Users\\bob\\AppData\\Local\\${name}`);
  flow.set('host.name', `ws${i % 200}.corp.local`);
  flow.set('egress.attribution', 'telemetry');
}

function httpFlow(i: number): Flow {
  const flow = new Flow('http', true);
  flow.set('source.ip', `10.0.${(i >> 8) & 255}.${i & 255}`);
  flow.set('source.port', 40000 + (i % 20000));
  flow.set('http.request.method', 'GET');
  const path = PATHS[i % PATHS.length] as string;
  const [p, q] = path.split('?');
  flow.set('url.path', p);
  if (q !== undefined) flow.set('url.query', q);
  flow.set('url.domain', `host${i % 500}.example.com`);
  flow.set('destination.domain', `host${i % 500}.example.com`);
  flow.set('destination.ip', '203.0.113.10');
  flow.set('destination.port', i % 7 === 0 ? 8081 : 80);
  flow.set('egress.destination.internal', false);
  flow.set('user_agent.original', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36');
  flow.requestHost = `host${i % 500}.example.com`;
  return flow;
}

function connectFlow(i: number): Flow {
  const flow = new Flow('connect', true);
  flow.set('source.ip', `10.1.${(i >> 8) & 255}.${i & 255}`);
  flow.set('destination.domain', `svc${i % 500}.example.net`);
  flow.set('destination.ip', '203.0.113.20');
  flow.set('destination.port', 443);
  flow.set('egress.destination.internal', false);
  return flow;
}

/** The policy decides between the stages (not timed: it is the policy's cost, measured in bench/run.ts). */
function decide(flow: Flow): void {
  const decision = policy.evaluate(flow);
  if (decision.status === 'final') flow.decision = decision;
}

/** One flow's engine work as the pipeline does it; returns the µs spent in the engine. */
function runHttp(i: number): number {
  const flow = httpFlow(i);
  const t0 = performance.now();
  flow.closeStage('http-request');
  attribute(flow, i);
  flow.closeStage('hint');
  detection.scoring.score(flow);
  const t1 = performance.now();
  decide(flow);
  flow.sourceBytes = 300;
  for (const stage of ['connect', 'client-hello', 'dns-query', 'end'] as const) flow.closeStage(stage);
  const t2 = performance.now();
  detection.scoring.finish(flow);
  return (t1 - t0 + performance.now() - t2) * 1000;
}

function runConnect(i: number): number {
  const flow = connectFlow(i);
  const t0 = performance.now();
  flow.closeStage('connect');
  detection.scoring.score(flow);
  flow.set('network.protocol', 'tls');
  flow.set('tls.client.server_name', `svc${i % 500}.example.net`);
  flow.set('egress.tls.sni_matches_destination', true);
  flow.set('tls.client.ja4', JA4[i % JA4.length]);
  flow.closeStage('client-hello');
  attribute(flow, i);
  flow.closeStage('hint');
  detection.scoring.score(flow);
  const t1 = performance.now();
  decide(flow);
  flow.sourceBytes = 2000;
  for (const stage of ['http-request', 'dns-query', 'end'] as const) flow.closeStage(stage);
  const t2 = performance.now();
  detection.scoring.finish(flow);
  return (t1 - t0 + performance.now() - t2) * 1000;
}

function measure(name: string, one: (i: number) => number): void {
  for (let i = 0; i < WARMUP; i++) one(i);
  const times = new Float64Array(FLOWS);
  for (let i = 0; i < FLOWS; i++) times[i] = one(WARMUP + i);
  times.sort();
  const at = (q: number): string => (times[Math.min(FLOWS - 1, Math.floor(q * FLOWS))] ?? 0).toFixed(2);
  process.stdout.write(`${name.padEnd(36)} median ${at(0.5)} µs   p90 ${at(0.9)} µs   p99 ${at(0.99)} µs   (${FLOWS} flows)\n`);
}

process.stdout.write(`detection engine per flow: features + score at each stage + finish (baseline, beacon, body)\n`);
measure('plain HTTP request (managed client)', runHttp);
measure('CONNECT + ClientHello (managed client)', runConnect);
await detection.close();

/**
 * System calls per request, egress-inspector next to the bare Node forward proxy (bench/lib/bare-node.ts), under
 * the same wrk load: `strace -f -c` attached to each proxy process (all threads) for the measured run. For the
 * question "what does our proxy ask of the kernel that Node itself does not?" — a store thread committing too
 * often, a timer per request, an extra read — which CPU profiles of the main thread do not show.
 *
 *   npx tsx bench/syscalls.bench.ts [--close] [--seconds 4] [--connections 16]
 *
 * strace slows both proxies down several-fold: read the counts per request, never the req/s. futex and
 * epoll_pwait are left out of the table (waits: their counts follow the scheduling, not the work). Needs strace
 * and wrk (Debian packages). Loopback only; bounded in time.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startBareNode } from './lib/bare-node.js';
import { startOrigin } from './lib/origin.js';
import { which } from './lib/proc.js';
import { startProxy } from './lib/start-proxy.js';
import { runWrk } from './lib/wrk.js';

const { values } = parseArgs({
  options: {
    close: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '4' },
    connections: { type: 'string', default: '16' },
  },
});
const seconds = Math.min(30, Math.max(1, Number(values.seconds)));
const connections = Math.min(256, Math.max(1, Number(values.connections)));
for (const tool of ['strace', 'wrk']) if (which(tool) === null) throw new Error(`${tool} is not installed (apt-get install ${tool})`);

const WAITS = new Set(['futex', 'epoll_pwait', 'epoll_wait']);
const root = process.cwd();
const dir = mkdtempSync(join(os.tmpdir(), 'egress-syscalls-'));
const origin = await startOrigin();
const target = `http://127.0.0.1:${origin.http.port}/`;

/** strace -c's table: calls per system call name. */
function parseStraceSummary(text: string): Map<string, number> {
  const calls = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$/.exec(line);
    if (m !== null && m[2] !== 'total') calls.set(m[2] as string, Number(m[1]));
  }
  return calls;
}

async function measure(name: string, pid: number, proxy: { host: string; port: number }): Promise<{ requests: number; calls: Map<string, number> }> {
  const out = join(dir, `${name}.strace`);
  const strace = spawn('strace', ['-f', '-c', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1000)); // attached to every thread
  const r = await runWrk({ binary: 'wrk', url: `http://${proxy.host}:${proxy.port}/`, absoluteUri: target, threads: 1, connections, durationS: seconds, ...(values.close ? { headers: ['Connection: close'] } : {}) });
  const exited = new Promise((resolve) => strace.on('exit', resolve));
  strace.kill('SIGINT');
  await exited;
  if (r.non2xx3xx > r.requests * 0.01) throw new Error(`${name}: ${r.non2xx3xx} of ${r.requests} answers were not 2xx/3xx`);
  return { requests: r.requests, calls: parseStraceSummary(readFileSync(out, 'utf8')) };
}

try {
  const ours = await startProxy({
    root,
    dir,
    name: 'egress-inspector',
    observe: true,
    policyFiles: [join(root, 'policies', 'never-bump.yaml'), join(root, 'policies', 'default.yaml')],
    extraConfig: { network: { internal: ['10.0.0.0/8'], allow_loopback: true } },
  });
  const bare = await startBareNode({ dir });
  const results = {
    'egress-inspector': await measure('egress-inspector', ours.child.proc.pid ?? 0, ours.proxy),
    'bare-node': await measure('bare-node', bare.child.proc.pid ?? 0, bare.proxy),
  };
  await ours.stop();
  await bare.stop();
  const names = [...new Set([...results['egress-inspector'].calls.keys(), ...results['bare-node'].calls.keys()])].filter((n) => !WAITS.has(n));
  const per = (r: { requests: number; calls: Map<string, number> }, n: string): number => (r.calls.get(n) ?? 0) / Math.max(1, r.requests);
  names.sort((a, b) => per(results['egress-inspector'], b) - per(results['egress-inspector'], a));
  process.stdout.write(`system calls per request (${values.close ? 'new connection per request' : 'keep-alive'}, wrk -c${connections} ${seconds}s under strace; waits left out)\n`);
  process.stdout.write(`${'call'.padEnd(16)}${'egress-inspector'.padStart(18)}${'bare-node'.padStart(12)}\n`);
  let total = { ours: 0, bare: 0 };
  for (const n of names) {
    const o = per(results['egress-inspector'], n);
    const b = per(results['bare-node'], n);
    total = { ours: total.ours + o, bare: total.bare + b };
    if (o >= 0.01 || b >= 0.01) process.stdout.write(`${n.padEnd(16)}${o.toFixed(2).padStart(18)}${b.toFixed(2).padStart(12)}\n`);
  }
  process.stdout.write(`${'total'.padEnd(16)}${total.ours.toFixed(2).padStart(18)}${total.bare.toFixed(2).padStart(12)}\n`);
} finally {
  await origin.stop();
  rmSync(dir, { recursive: true, force: true });
}

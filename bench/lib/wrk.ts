/** Runs wrk and parses its text report (with --latency percentiles). */
import { fileURLToPath } from 'node:url';
import { run } from './proc.js';

/** bench/absolute-uri.lua: sends `GET <absolute URI>` for proxies; origin-form when given no target. */
export const ABSOLUTE_URI_SCRIPT = fileURLToPath(new URL('../absolute-uri.lua', import.meta.url));

export interface WrkOptions {
  readonly binary: string;
  /** Where wrk connects: the origin itself, or the proxy. */
  readonly url: string;
  /** For proxies: the absolute URI put on the request line. */
  readonly absoluteUri?: string;
  readonly threads: number;
  readonly connections: number;
  readonly durationS: number;
  /** Extra request header lines, each passed as `-H` (e.g. "Connection: close"); the Lua script keeps them. */
  readonly headers?: readonly string[];
}

export interface WrkLatency {
  readonly avgMs: number;
  readonly maxMs: number;
  readonly p50Ms: number;
  readonly p75Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
}

export interface WrkResult {
  readonly requests: number;
  readonly durationS: number;
  readonly reqPerSec: number;
  readonly latency: WrkLatency;
  readonly socketErrors: { readonly connect: number; readonly read: number; readonly write: number; readonly timeout: number };
  readonly non2xx3xx: number;
  /** The raw report, kept in the JSON for anyone who doubts the parser. */
  readonly raw: string;
}

export async function runWrk(opts: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${opts.threads}`,
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    '--latency',
    '--timeout',
    '5s',
    ...(opts.headers ?? []).flatMap((h) => ['-H', h]),
    '-s',
    ABSOLUTE_URI_SCRIPT,
    opts.url,
  ];
  if (opts.absoluteUri !== undefined) args.push('--', opts.absoluteUri);
  // wrk stops itself after -d; the kill timer only guards against a hang.
  const result = await run(opts.binary, args, { timeoutMs: (opts.durationS + 15) * 1000 });
  if (result.code !== 0) throw new Error(`wrk exited with ${result.code}: ${result.stderr || result.stdout}`);
  return parseWrkOutput(result.stdout);
}

const TIME_UNITS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "245.00us", "1.23ms", "2.00s" → milliseconds. */
export function parseWrkTime(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (m === null) throw new Error(`not a wrk time: ${JSON.stringify(text)}`);
  return Number(m[1]) * (TIME_UNITS[m[2] ?? ''] ?? Number.NaN);
}

function need(text: string, pattern: RegExp, what: string): RegExpExecArray {
  const m = pattern.exec(text);
  if (m === null) throw new Error(`wrk output has no ${what}:\n${text}`);
  return m;
}

export function parseWrkOutput(text: string): WrkResult {
  const stats = need(text, /^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)/m, 'latency line');
  const pct = (p: number): number => parseWrkTime(need(text, new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm'), `${p}% line`)[1] ?? '');
  const total = need(text, /^\s*(\d+) requests in ([\d.]+\w+)/m, 'request count');
  const rps = need(text, /^Requests\/sec:\s+([\d.]+)/m, 'Requests/sec');
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  return {
    requests: Number(total[1]),
    durationS: parseWrkTime(total[2] ?? '') / 1000,
    reqPerSec: Number(rps[1]),
    latency: {
      avgMs: parseWrkTime(stats[1] ?? ''),
      maxMs: parseWrkTime(stats[3] ?? ''),
      p50Ms: pct(50),
      p75Ms: pct(75),
      p90Ms: pct(90),
      p99Ms: pct(99),
    },
    socketErrors: {
      connect: Number(errors?.[1] ?? 0),
      read: Number(errors?.[2] ?? 0),
      write: Number(errors?.[3] ?? 0),
      timeout: Number(errors?.[4] ?? 0),
    },
    non2xx3xx: Number(non2xx?.[1] ?? 0),
    raw: text,
  };
}

/** A run whose requests failed measures error paths, not forwarding: the caller flags it. */
export function wrkProblems(r: WrkResult): string[] {
  const problems: string[] = [];
  if (r.non2xx3xx > 0) problems.push(`${r.non2xx3xx} non-2xx/3xx responses`);
  const e = r.socketErrors;
  const socketErrors = e.connect + e.read + e.write + e.timeout;
  if (socketErrors > 0) problems.push(`socket errors: connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout}`);
  if (r.requests === 0) problems.push('no requests completed');
  return problems;
}

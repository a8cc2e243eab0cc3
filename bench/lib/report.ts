/**
 * What the two side-by-side benches (bench/run.ts, `npm run bench`, and bench/core.bench.ts, issue 9) share:
 * their flags, the tools they need, the build, the machine description, medians, the plain-text tables and
 * the target checks, and the last steps of a run (write the JSON, print, say where). One copy here, so the two
 * reports keep the same shape and a fix to one reaches the other.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { run, which, type Endpoint } from './proc.js';

/** The repository root (bench/lib/../..). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RESULTS_DIR = join(ROOT, 'bench', 'results');

// ---- numbers and text -----------------------------------------------------------------------------------

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The median of the finite values only: a round that measured nothing (NaN) does not move the middle. */
export function medianOfFinite(values: readonly number[]): number {
  return median(values.filter((v) => Number.isFinite(v)));
}

/** `n` with `digits` decimals; '—' for null, NaN and ±Infinity. */
export const fix = (n: number | null, digits: number): string => (n !== null && Number.isFinite(n) ? n.toFixed(digits) : '—');
export const round = (n: number, digits: number): number => Number(n.toFixed(digits));

/** A plain-text table, indented two spaces: the first column left-aligned, the others right-aligned. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(headers), ...rows.map(line)].map((l) => `  ${l}`).join('\n');
}

/** The report, on stdout. */
export function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Progress lines on stderr (`· text`); given `since` (a Date.now()), each line also shows the seconds since. */
/**
 * Every loop of a bench is bounded; this catches a hang nobody foresaw: after `seconds` it says so, runs
 * `cleanup` (temp dirs) and exits 3 (proc.ts's exit hook kills every child still running). Unref'd.
 */
export function startWatchdog(seconds: number, progress: (text: string) => void, cleanup: () => void = () => undefined): NodeJS.Timeout {
  const timer = setTimeout(() => {
    progress(`watchdog: the run took more than ${seconds} s; stopping`);
    cleanup();
    process.exit(3);
  }, seconds * 1000);
  timer.unref();
  return timer;
}

export function progressLogger(since?: number): (text: string) => void {
  if (since === undefined) return (text) => process.stderr.write(`· ${text}\n`);
  return (text) => process.stderr.write(`· ${((Date.now() - since) / 1000).toFixed(1).padStart(5)} s  ${text}\n`);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export const urlOf = (e: Endpoint): string => `http://${e.host}:${e.port}/`;

export function rowOf<T extends { subject: string }>(rows: readonly T[], subject: string): T {
  const row = rows.find((r) => r.subject === subject);
  if (row === undefined) throw new Error(`no ${subject} row`);
  return row;
}

/** `items` in round `roundIndex`'s order: rotated each round, so none always runs first or last. */
export function rotated<T>(items: readonly T[], roundIndex: number): T[] {
  return items.map((_, i) => items[(i + roundIndex) % items.length] as T);
}

// ---- sections and targets ---------------------------------------------------------------------------------

/** A section that threw: the run goes on and the JSON says why. */
export type Failed = { readonly error: string };

/** Runs one section; a throw becomes `{ error }` instead of ending the run. */
export async function attempt<T>(section: () => Promise<T>): Promise<T | Failed> {
  try {
    return await section();
  } catch (err) {
    return { error: errorText(err) };
  }
}

export function printFailed(title: string, section: Failed): void {
  say(`\n${title}: failed: ${section.error}`);
}

export interface TargetCheck {
  readonly id: string;
  readonly what: string;
  readonly value: number;
  readonly target: string;
  readonly ok: boolean;
}

/** A NaN or infinite value (a section that measured nothing) never meets its target. */
function check(id: string, what: string, value: number, target: string, ok: boolean): TargetCheck {
  return { id, what, value: round(value, 3), target, ok: Number.isFinite(value) && ok };
}

export const atLeast = (id: string, what: string, value: number, min: number): TargetCheck => check(id, what, value, `≥ ${min}`, value >= min);
export const atMost = (id: string, what: string, value: number, max: number): TargetCheck => check(id, what, value, `≤ ${max}`, value <= max);

export function printTargets(title: string, targets: readonly TargetCheck[]): void {
  say(`\n${title}`);
  say(table(['', 'value', 'target', ''], targets.map((t) => [t.what, String(t.value), t.target, t.ok ? 'met' : 'MISSED'])));
}

// ---- flags and prerequisites --------------------------------------------------------------------------

export interface Flags<S extends string> {
  readonly sections: readonly S[];
  readonly quick: boolean;
  readonly build: boolean;
  /** Always false where the bench does not accept --cpu-prof. */
  readonly cpuProf: boolean;
  readonly keepTemp: boolean;
  readonly out: string;
}

export interface FlagSpec<S extends string> {
  /** Every section, in the order they run. */
  readonly sections: readonly S[];
  /** The JSON's file name in bench/results/ when --out is not given. */
  readonly outFile: string;
  /** Accept --cpu-prof (only a bench that starts its proxies with V8's profiler does). */
  readonly cpuProf?: boolean;
  /** Sections measured over another's runs: with --only, asking for the key adds the value. */
  readonly needs?: Partial<Record<S, S>>;
}

/** --only a,b (checked against the known sections), --quick, --no-build, --keep-temp, --out FILE[, --cpu-prof]. */
export function parseFlags<S extends string>(argv: string[], spec: FlagSpec<S>): Flags<S> {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      ...(spec.cpuProf === true ? { 'cpu-prof': { type: 'boolean', default: false } as const } : {}),
      'keep-temp': { type: 'boolean', default: false },
      out: { type: 'string' },
    },
    strict: true,
  });
  const known: readonly string[] = spec.sections;
  let sections: S[] = [...spec.sections];
  if (values.only !== undefined) {
    const wanted = values.only.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const unknown = wanted.filter((s) => !known.includes(s));
    if (unknown.length > 0) throw new Error(`unknown section(s) ${unknown.join(', ')}; known: ${spec.sections.join(', ')}`);
    for (const s of spec.sections) {
      const needed = spec.needs?.[s];
      if (needed !== undefined && wanted.includes(s) && !wanted.includes(needed)) wanted.push(needed);
    }
    sections = spec.sections.filter((s) => wanted.includes(s));
  }
  return {
    sections,
    quick: values.quick,
    build: !values['no-build'],
    cpuProf: values['cpu-prof'] === true,
    keepTemp: values['keep-temp'],
    out: resolve(values.out ?? join(RESULTS_DIR, spec.outFile)),
  };
}

/** Squid lives in /usr/sbin, which is not on every user's PATH. */
function findSquid(): string | null {
  const saved = process.env.PATH;
  process.env.PATH = `${saved ?? ''}:/usr/sbin:/sbin`;
  try {
    return which('squid');
  } finally {
    process.env.PATH = saved;
  }
}

/** wrk and squid, each looked up even if not needed (the JSON records their versions); throws if a needed one is missing. */
export function requireTools(need: { readonly wrk: true; readonly squid: true }): { wrk: string; squid: string };
export function requireTools(need: { readonly wrk: boolean; readonly squid: boolean }): { wrk: string | null; squid: string | null };
export function requireTools(need: { readonly wrk: boolean; readonly squid: boolean }): { wrk: string | null; squid: string | null } {
  const wrk = which('wrk');
  const squid = findSquid();
  const missing: string[] = [];
  if (need.wrk && wrk === null) missing.push('wrk');
  if (need.squid && squid === null) missing.push('squid');
  if (missing.length > 0) {
    throw new Error(
      `missing ${missing.join(' and ')}. Install the Debian package(s) with\n    sudo apt-get install -y ${missing.join(' ')}\n` +
        (missing.includes('squid') ? '  then stop the service it starts (sudo systemctl disable --now squid); the bench runs its own Squid on loopback.\n' : ''),
    );
  }
  return { wrk, squid };
}

export async function build(progress: (text: string) => void): Promise<void> {
  progress('building dist/ (tsc -p tsconfig.build.json)');
  const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
  const result = await run(tsc, ['-p', 'tsconfig.build.json'], { cwd: ROOT, timeoutMs: 240_000 });
  if (result.code !== 0) {
    throw new Error(`the build failed (${result.code}); fix it or run with --no-build to measure the existing dist/:\n${result.stdout}${result.stderr}`);
  }
}

/** The first line `command args` prints (wrk and squid print their version to stderr); null without the command. */
async function toolVersion(command: string | null, args: string[]): Promise<string | null> {
  if (command === null) return null;
  const r = await run(command, args, { timeoutMs: 10_000 });
  return `${r.stdout}${r.stderr}`.split('\n')[0]?.trim() ?? null;
}

/** The machine the figures came from; `finishRun` adds `loadAvgAtEnd`. */
export async function describeMachine(tools: { readonly wrk: string | null; readonly squid: string | null }): Promise<Record<string, unknown>> {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    wrk: await toolVersion(tools.wrk, ['-v']),
    squid: await toolVersion(tools.squid, ['-v']),
    loadAvgAtStart: os.loadavg().map((n) => round(n, 2)),
  };
}

// ---- the end of a run ---------------------------------------------------------------------------------------

interface RunRecord {
  finishedAt?: string;
  durationS?: number;
  readonly machine: Record<string, unknown>;
}

/** Stamps the end of the run, writes the JSON to `out`, prints the report and where the JSON went. */
export function finishRun<R extends RunRecord>(results: R, t0: number, out: string, print: (results: R) => void): void {
  results.finishedAt = new Date().toISOString();
  results.durationS = round((Date.now() - t0) / 1000, 1);
  results.machine.loadAvgAtEnd = os.loadavg().map((n) => round(n, 2));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  print(results);
  say(`\nWrote ${out} (${results.durationS} s)`);
}

/** Runs `main`; an error ends the process with exit code 1 and `name: message` on stderr. */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`${name}: ${errorText(err)}\n`);
    process.exit(1);
  });
}

/**
 * Child processes for the benchmark: spawn with bounded waits, stop with a grace period, and never leave
 * one behind (a registry kills whatever is still running when the bench exits, even on Ctrl-C).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import { delimiter, join } from 'node:path';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  /** The last few KiB of stdout + stderr, for error messages. */
  output(): string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs`. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();
let hooksInstalled = false;

/** Kill every child still alive; runs from the 'exit' hook, so it must be synchronous. */
function killAll(): void {
  for (const proc of live) {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

const OUTPUT_TAIL = 8192;

export function spawnChild(name: string, command: string, args: readonly string[], opts: SpawnOptions = {}): Child {
  installHooks();
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<number | string>((resolve) => {
    proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    // spawn failures (ENOENT) emit 'error' and never 'exit'.
    proc.once('error', (err) => {
      keep(Buffer.from(`spawn failed: ${err.message}\n`));
      resolve('spawn-error');
    });
  });
  let stopping: Promise<void> | null = null;
  const child: Child = {
    name,
    proc,
    output: () => tail,
    exited,
    stop(graceMs = 5000) {
      stopping ??= (async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill('SIGTERM');
          const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
  };
  live.add(proc);
  void exited.then(() => live.delete(proc));
  return child;
}

/** Wait until the child prints a line matching `pattern` (stdout or stderr), or fail with its output. */
export function waitForOutput(child: Child, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const cleanup = (): void => {
      clearTimeout(timer);
      child.proc.stdout?.off('data', onData);
      child.proc.stderr?.off('data', onData);
    };
    const onData = (chunk: Buffer): void => {
      seen = (seen + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
      const match = seen.match(pattern);
      if (match !== null) {
        cleanup();
        resolve(match);
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${child.name}: no ${String(pattern)} within ${timeoutMs} ms; output:\n${child.output()}`));
    }, timeoutMs);
    child.proc.stdout?.on('data', onData);
    child.proc.stderr?.on('data', onData);
    void child.exited.then((code) => {
      cleanup();
      reject(new Error(`${child.name} exited (${code}) before it was ready; output:\n${child.output()}`));
    });
  });
}

export interface RunResult {
  readonly code: number | string;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a command to completion, killed after `timeoutMs` (then code is the signal name). */
export function run(command: string, args: readonly string[], opts: { timeoutMs: number; cwd?: string; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  return new Promise((resolve) => {
    installHooks();
    const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd, env: opts.env ?? process.env });
    live.add(proc);
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs);
    const done = (code: number | string): void => {
      clearTimeout(timer);
      live.delete(proc);
      resolve({ code, stdout, stderr });
    };
    proc.once('error', (err) => done(`spawn-error: ${err.message}`));
    proc.once('close', (code, signal) => done(code ?? signal ?? 'unknown'));
  });
}

/** The absolute path of an executable on PATH, or null. */
export function which(command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return null;
}

/** A port that was free a moment ago (for programs that cannot listen on port 0 and report it, like Squid). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Poll until something accepts TCP connections on the endpoint. */
export async function waitForPort(endpoint: Endpoint, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`nothing will listen on ${endpoint.host}:${endpoint.port}: the process exited`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(endpoint.port, endpoint.host);
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on ${endpoint.host}:${endpoint.port} after ${timeoutMs} ms`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- /proc readings and CPU pinning (Linux; issue 9's core benchmark) ------------------------------------

/**
 * `/proc/<pid>/stat` after the command name: the name is in parentheses and may itself hold spaces or
 * parentheses, so the fields are split after the LAST ')' (proc(5)). Index 0 is field 3 (state).
 */
async function statFields(pid: number): Promise<string[] | null> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null; // the process is gone
  }
}

let clockTicks: number | null = null;

/** `sysconf(_SC_CLK_TCK)`, the unit of utime/stime in /proc/<pid>/stat (100 on every common Linux). */
export async function clockTicksPerSecond(): Promise<number> {
  if (clockTicks === null) {
    const r = await run('getconf', ['CLK_TCK'], { timeoutMs: 5000 });
    const n = Number(r.stdout.trim());
    clockTicks = r.code === 0 && Number.isInteger(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/**
 * CPU seconds a process has used so far, user + system, all its threads (proc(5) fields 14 utime and 15
 * stime, in clock ticks); null once it has exited. Resolution: one tick (10 ms).
 */
export async function readCpuSeconds(pid: number): Promise<number | null> {
  const fields = await statFields(pid);
  if (fields === null) return null;
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? ticks / (await clockTicksPerSecond()) : null;
}

/**
 * CPU seconds (utime + stime) of each thread of a process (`/proc/<pid>/task/<tid>/stat`), keyed "main" for the
 * main thread and "<name> <tid>" for the others (Node 20 names them all "node": V8's helpers, the libuv pool,
 * worker_threads). Threads that exited are not counted, so read it around a load, not across thread churn.
 * Empty once the process is gone.
 */
export async function readThreadCpuSeconds(pid: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = await readdir(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  const hz = await clockTicksPerSecond();
  for (const tid of tids) {
    let text: string;
    try {
      text = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread exited meanwhile
    }
    const name = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    if (Number.isFinite(ticks)) out.set(tid === String(pid) ? 'main' : `${name} ${tid}`, ticks / hz);
  }
  return out;
}

export interface MemoryReading {
  /** Resident set size now (VmRSS), KiB. */
  readonly rssKiB: number;
  /** Peak resident set size over the process's life so far (VmHWM, "high water mark"), KiB. */
  readonly hwmKiB: number;
}

const VM_RSS = /^VmRSS:\s+(\d+) kB$/m;
const VM_HWM = /^VmHWM:\s+(\d+) kB$/m;

/** VmRSS and VmHWM from /proc/<pid>/status (proc(5)); null once the process has exited. */
export async function readMemory(pid: number): Promise<MemoryReading | null> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const rss = VM_RSS.exec(text)?.[1];
  const hwm = VM_HWM.exec(text)?.[1];
  if (rss === undefined || hwm === undefined) return null;
  return { rssKiB: Number(rss), hwmKiB: Number(hwm) };
}

/** Every descendant of `pid` (children, grandchildren, …), from the parent pid of each /proc/<n>/stat. */
export async function descendantPids(pid: number): Promise<number[]> {
  const parentOf = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    const n = Number(entry);
    if (!Number.isInteger(n)) continue;
    const fields = await statFields(n);
    if (fields !== null) parentOf.set(n, Number(fields[1]));
  }
  const found: number[] = [];
  let frontier = [pid];
  // Bounded: a pid tree is finite, and each round only walks pids not seen before.
  while (frontier.length > 0 && found.length < 10_000) {
    const next: number[] = [];
    for (const [child, parent] of parentOf) {
      if (frontier.includes(parent) && !found.includes(child)) next.push(child);
    }
    found.push(...next);
    frontier = next;
  }
  return found;
}

/**
 * Pin a process — every thread it has (`-a`), and its child processes — to the CPUs in `cpuList`
 * (taskset(1) syntax, e.g. "1" or "0,2-3"). Threads created later inherit the affinity of their creator.
 * Returns the pids pinned.
 */
export async function pinToCpus(pid: number, cpuList: string): Promise<number[]> {
  const taskset = which('taskset');
  if (taskset === null) throw new Error('taskset is missing (Debian package util-linux)');
  const pids = [pid, ...(await descendantPids(pid))];
  for (const p of pids) {
    const r = await run(taskset, ['-a', '-p', '-c', cpuList, String(p)], { timeoutMs: 5000 });
    if (r.code !== 0) throw new Error(`taskset -a -p -c ${cpuList} ${p} failed (${r.code}): ${r.stderr.trim()}`);
  }
  return pids;
}

export interface MemoryPeak {
  /** Highest VmRSS seen by the sampler, KiB (0 before the first sample). */
  readonly sampledPeakKiB: number;
  readonly samples: number;
  /** VmRSS of every sample, KiB, in order (bounded: one per interval while the sampler runs). */
  readonly trace: readonly number[];
}

export interface MemorySampler {
  /** The peaks so far, per name. */
  peaks(): ReadonlyMap<string, MemoryPeak>;
  /** Stops the timer (idempotent) and returns the peaks. */
  stop(): ReadonlyMap<string, MemoryPeak>;
}

/**
 * Samples VmRSS of each named pid every `intervalMs` until stopped, keeping the peak and a trace of at
 * most `maxSamples` readings per pid (a sampler left running by mistake cannot grow without bound).
 */
export function sampleMemory(pids: ReadonlyMap<string, number>, intervalMs: number, maxSamples = 10_000): MemorySampler {
  const state = new Map<string, { peak: number; trace: number[] }>([...pids.keys()].map((name) => [name, { peak: 0, trace: [] }]));
  let busy = false;
  const tick = async (): Promise<void> => {
    if (busy) return; // a slow /proc read never stacks up ticks
    busy = true;
    try {
      for (const [name, pid] of pids) {
        const m = await readMemory(pid);
        const s = state.get(name);
        if (m === null || s === undefined || s.trace.length >= maxSamples) continue;
        s.trace.push(m.rssKiB);
        if (m.rssKiB > s.peak) s.peak = m.rssKiB;
      }
    } finally {
      busy = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), intervalMs);
  timer.unref();
  const peaks = (): ReadonlyMap<string, MemoryPeak> =>
    new Map([...state].map(([name, s]) => [name, { sampledPeakKiB: s.peak, samples: s.trace.length, trace: [...s.trace] }]));
  return {
    peaks,
    stop() {
      clearInterval(timer);
      return peaks();
    },
  };
}

const WHITESPACE = /\s+/;

export interface CoreTimes {
  /** Seconds the CPU spent running anything (user, nice, system, irq, softirq, steal). */
  readonly busyS: number;
  /** busy + idle + iowait. */
  readonly totalS: number;
}

/**
 * Busy and total time of one CPU since boot, from its `cpuN` line in /proc/stat (proc(5); guest time is
 * already counted in user). Over an interval, busy minus the CPU time of our own process on that core is
 * what other processes took from it: the noise figure of a pinned benchmark. Null if the line is missing.
 */
export async function readCoreTimes(cpu: number): Promise<CoreTimes | null> {
  const text = await readFile('/proc/stat', 'utf8');
  const prefix = `cpu${cpu} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  if (line === undefined) return null;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.slice(prefix.length).trim().split(WHITESPACE).map(Number);
  const busyTicks = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  const ticks = await clockTicksPerSecond();
  return { busyS: busyTicks / ticks, totalS: (busyTicks + (idle ?? 0) + (iowait ?? 0)) / ticks };
}

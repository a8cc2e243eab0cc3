/**
 * Child processes for the benchmark: spawn with bounded waits, stop with a grace period, and never leave
 * one behind (a registry kills whatever is still running when the bench exits, even on Ctrl-C).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
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

/** Runs the real CLI (src/main.ts through tsx) as a child process. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Writable } from 'node:stream';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const MAIN = join(ROOT, 'src', 'main.ts');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a CLI command to completion (bounded by `timeoutMs`). */
export function runCli(args: string[], opts: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(TSX, [MAIN, ...args], { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

export interface Daemon {
  child: ChildProcessWithoutNullStreams;
  proxyPort: number;
  adminPort: number;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Start `egress-inspector start` and wait until it prints where it listens. */
export function startDaemon(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Daemon> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, [MAIN, 'start', ...args], { cwd: ROOT, env: { ...process.env, ...opts.env } });
    let stderr = '';
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`daemon did not start:\n${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      const m = /proxy on [^ ]*:(\d+), admin on [^ ]*:(\d+)/.exec(stderr);
      if (m !== null) {
        clearTimeout(timer);
        resolve({ child, proxyPort: Number(m[1]), adminPort: Number(m[2]), stderr: () => stderr, exited });
      }
    });
    child.stdout.resume();
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited with ${code}:\n${stderr}`));
    });
  });
}

/** A writable that keeps what is written, for CLI functions that take their stdout/stderr as streams. */
export function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

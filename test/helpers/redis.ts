/**
 * A private Redis for tests: Debian's redis-server on 127.0.0.1, on a free port, with no persistence
 * (--save '' --appendonly no) and its own working directory in a temp dir. Each instance runs in the foreground
 * as a child of the test process and is stopped by its pid; the system service is never touched.
 *
 * redis-server missing is a failure with a clear message, not a skip: CI installs it (.ci/run).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, constants, mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface TestRedis {
  readonly port: number;
  /** redis://127.0.0.1:port */
  readonly url: string;
  /** The server is running (false between `stop()` and `start()`). */
  readonly running: boolean;
  /** Stop the server (SIGTERM, then SIGKILL after 2 s); the port and the directory are kept for `start()`. */
  stop(): Promise<void>;
  /** Start it again on the same port (empty: nothing is persisted). */
  start(): Promise<void>;
  /** Stop it and remove its directory. */
  close(): Promise<void>;
}

const CANDIDATES = ['/usr/bin/redis-server', '/usr/sbin/redis-server', '/usr/local/bin/redis-server'];

async function findRedisServer(): Promise<string> {
  const fromPath = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, 'redis-server'));
  for (const path of [...CANDIDATES, ...fromPath]) {
    try {
      await access(path, constants.X_OK);
      return path;
    } catch {
      // try the next one
    }
  }
  throw new Error('redis-server is not installed: the Redis hint store tests need a real one (apt-get install redis-server; CI installs it in .ci/run)');
}

/** A TCP port free on 127.0.0.1 (bound, then released). */
async function freePort(): Promise<number> {
  const srv = createServer();
  const port = await new Promise<number>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      resolve(typeof a === 'object' && a !== null ? a.port : 0);
    });
  });
  await new Promise<void>((r) => srv.close(() => r()));
  if (port === 0) throw new Error('no free port for redis-server');
  return port;
}

/** One PING over a raw socket: true when the answer is +PONG (within 300 ms). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 300);
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (chunk: Buffer) => {
      got += chunk.toString('latin1');
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
    s.on('error', () => done(false));
  });
}

export async function startRedis(): Promise<TestRedis> {
  const bin = await findRedisServer();
  const dir = await mkdtemp(join(tmpdir(), 'egress-redis-'));
  const port = await freePort();
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const startServer = async (): Promise<void> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--logfile', ''];
    const c = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    let output = '';
    const keep = (chunk: Buffer): void => {
      if (output.length < 8192) output += chunk.toString();
    };
    c.stdout?.on('data', keep);
    c.stderr?.on('data', keep);
    exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (c.exitCode !== null || c.signalCode !== null) break;
      if (await ping(port)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await exited;
    child = null;
    throw new Error(`redis-server did not answer PING on 127.0.0.1:${port}:\n${output}`);
  };

  const stopServer = async (): Promise<void> => {
    const c = child;
    child = null;
    if (c === null || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await startServer();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== null;
    },
    stop: stopServer,
    async start() {
      if (child === null) await startServer();
    },
    async close() {
      await stopServer();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * One worker process of a cluster (`proxy.workers` > 1): `egress-inspector start` run again by node:cluster.
 *
 * It takes its config from the primary (loaded and validated once there, so every worker runs the same one even
 * when the file changed meanwhile), starts the whole proxy on the shared ports (src/cli/start.ts with a
 * ClusterLink), says `ready`, and stops only when the primary says so: signals sent to the whole process group
 * (Ctrl-C in a terminal, systemd's control-group kill) reach the primary, which drains every worker; a worker
 * that drained by itself would be taken for a crash and started again.
 */
import { startProxy, type RunningProxy } from '../cli/start.js';
import type { Config } from '../config/schema.js';
import { isEgressError, type ErrorCode } from '../errors.js';
import { createLogger } from '../observe/logger.js';
import { isPrimaryMessage } from './messages.js';
import { createWorkerLink, processChannel, type WorkerChannel } from './worker-link.js';

/** Shared-state drops are logged at most this often. */
const DROP_LOG_INTERVAL_MS = 10_000;

function describeError(err: unknown): string {
  return isEgressError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
}

/** What the primary reports when this worker cannot start: the same words a single process would print. */
function startFailure(err: unknown): { readonly kind: 'start-failed'; readonly code: ErrorCode | null; readonly message: string } {
  if (isEgressError(err)) return { kind: 'start-failed', code: err.code, message: err.message };
  return { kind: 'start-failed', code: null, message: err instanceof Error ? err.message : String(err) };
}

/** Sends `hello` and waits for the primary's `start`. */
function awaitStart(channel: WorkerChannel): Promise<{ workerId: number; config: Config }> {
  return new Promise((resolve) => {
    let started = false;
    channel.onMessage((m) => {
      if (started || !isPrimaryMessage(m)) return;
      if (m.kind === 'start') {
        started = true;
        resolve({ workerId: m.workerId, config: m.config });
      } else if (m.kind === 'stop') {
        process.exit(0); // stopped before it started: nothing to drain
      }
    });
    channel.send({ kind: 'hello' }, () => undefined);
  });
}

/** The worker's life: start, serve, drain on `stop`, exit. Never returns while the worker serves. */
export async function runWorker(): Promise<void> {
  // Group signals are the primary's to act on (see above); SIGUSR1 would otherwise start Node's inspector.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1'] as const) process.on(signal, () => undefined);

  const channel = processChannel();
  const { workerId, config } = await awaitStart(channel);
  const logger = createLogger(config.log.level).child({ worker: workerId, pid: process.pid });
  let lastDropLog = -Infinity;
  let droppedSince = 0;
  const link = createWorkerLink(channel, workerId, {
    onShareDropped: (n) => {
      droppedSince += n;
      const t = Date.now();
      if (t - lastDropLog < DROP_LOG_INTERVAL_MS) return;
      logger.warn({ dropped: droppedSince }, 'cluster: hints or DNS answers not shared with the other workers (IPC backlog)');
      lastDropLog = t;
      droppedSince = 0;
    },
  });

  let running: RunningProxy;
  try {
    running = await startProxy(config, { logger, cluster: link });
  } catch (err) {
    await link.send(startFailure(err)).catch(() => undefined);
    process.exit(1);
  }

  let stopping = false;
  link.onStop(() => {
    if (stopping) return;
    stopping = true;
    running.stop().then(
      async () => {
        await link.sendDrained();
        process.exit(0);
      },
      async (err: unknown) => {
        logger.error({ err: describeError(err) }, 'worker: stop failed');
        await link.sendDrained();
        process.exit(1);
      },
    );
  });
  await link.send({ kind: 'ready', proxy: running.proxyAddress, admin: running.adminAddress, dns: running.dnsAddress });
}

/**
 * A worker's flow log (`proxy.workers` > 1): records are batched into whole lines and sent to the primary over
 * IPC; the primary is the only writer of the file or of stdout (src/observe/flow-log.ts `writeLines`).
 *
 * Why not let each worker append to the file itself (O_APPEND): a write() to a regular file appends atomically
 * on Linux, but a pipe guarantees that only for writes of at most PIPE_BUF (4096) bytes (POSIX write(2)), and a
 * record with a long command line is larger; stdout (`log.flows: "-"`) is a pipe under every container runtime.
 * One writer keeps whole lines for both, and logrotate's SIGUSR1 stays the primary's own business. The cost was
 * measured against per-worker O_APPEND writers (bench/workers.bench.ts, section flowlog) and is within its noise
 * once batches travel as Buffers.
 *
 * Nothing accepted is lost on a graceful stop: `close()` sends what is queued and waits until every batch is on the
 * channel; the worker then sends `drained` (messages are delivered in order). When the primary does not keep up,
 * the backlog is bounded (MAX_BACKLOG_BYTES, like the file writer's) and records beyond it are counted as dropped.
 */
import type { FlowLog } from '../observe/flow-log.js';

/** Sends one batch of whole lines; calls `done` exactly once, when the batch is on the channel or has failed. */
export type LineSender = (lines: Buffer, count: number, done: (err: Error | null) => void) => void;

export interface IpcFlowLogOptions {
  /** A batch is sent once this many bytes (UTF-16 units, near enough) are queued … */
  readonly batchBytes?: number;
  /** … or this long after its first record, whichever comes first. */
  readonly flushEveryMs?: number;
  /** Queued plus unsent bytes beyond which records are dropped (and counted). */
  readonly maxBacklogBytes?: number;
  /** How long `close()` waits for unsent batches before it gives up (the primary may be gone). */
  readonly closeTimeoutMs?: number;
}

const DEFAULT_BATCH_BYTES = 32 * 1024;
const DEFAULT_FLUSH_EVERY_MS = 100;
const DEFAULT_MAX_BACKLOG_BYTES = 64 * 1024 * 1024;
const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;

export function createIpcFlowLog(send: LineSender, onDropped: (n: number) => void, opts: IpcFlowLogOptions = {}): FlowLog {
  const batchBytes = opts.batchBytes ?? DEFAULT_BATCH_BYTES;
  const flushEveryMs = opts.flushEveryMs ?? DEFAULT_FLUSH_EVERY_MS;
  const maxBacklog = opts.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG_BYTES;
  const closeTimeoutMs = opts.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
  let queued = '';
  let queuedCount = 0;
  let unsentBytes = 0;
  let unsentBatches = 0;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  let idle: (() => void) | null = null;

  const sendQueued = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (queuedCount === 0) return;
    // One UTF-8 encoding per batch; the primary writes these bytes as they are.
    const lines = Buffer.from(queued);
    const count = queuedCount;
    queued = '';
    queuedCount = 0;
    unsentBytes += lines.length;
    unsentBatches++;
    send(lines, count, (err) => {
      unsentBytes -= lines.length;
      unsentBatches--;
      if (err !== null) onDropped(count);
      if (unsentBatches === 0) idle?.();
    });
  };

  return {
    write(line) {
      if (closed) return;
      if (unsentBytes + queued.length + line.length > maxBacklog) {
        onDropped(1);
        return;
      }
      queued += `${line}\n`;
      queuedCount++;
      if (queued.length >= batchBytes) sendQueued();
      else if (timer === null) {
        timer = setTimeout(sendQueued, flushEveryMs);
        timer.unref();
      }
    },
    flush() {
      sendQueued();
    },
    async close() {
      if (closed) return;
      sendQueued();
      closed = true;
      if (unsentBatches === 0) return;
      await new Promise<void>((resolve) => {
        const giveUp = setTimeout(resolve, closeTimeoutMs);
        idle = () => {
          clearTimeout(giveUp);
          resolve();
        };
      });
    },
  };
}

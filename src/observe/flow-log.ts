import { pino } from 'pino';

export interface FlowLog {
  /** Queue one record (its JSON text, no newline); never blocks the event loop. */
  write(line: string): void;
  /** Flush every queued record (synchronously: used on shutdown so no record is lost). */
  flush(): void;
  /** Reopen the file after log rotation moved it (a no-op for stdout). */
  reopen?(): void;
  close(): Promise<void>;
}

/** Largest backlog kept in memory when the destination is slower than the flows (then records are counted as dropped). */
const MAX_BACKLOG_BYTES = 64 * 1024 * 1024;
/** Records are written once this much is queued … */
const BATCH_BYTES = 8 * 1024;
/** … or after this long, whichever comes first. */
const FLUSH_EVERY_MS = 200;

/**
 * JSON-lines flow log on sonic-boom (pino's async writer, via `pino.destination`): one line per record, batched writes, a bounded
 * backlog, and a synchronous flush at shutdown.
 */
export function openFlowLog(dest: string, onDropped: (n: number) => void): FlowLog {
  // Batch records into few large writes (one write syscall per record cost ~10 % of proxy CPU under load),
  // but never hold one back for longer than FLUSH_EVERY_MS.
  const batching = { sync: false, minLength: BATCH_BYTES, periodicFlush: FLUSH_EVERY_MS, maxLength: MAX_BACKLOG_BYTES };
  const boom = dest === '-' ? pino.destination({ fd: 1, ...batching }) : pino.destination({ dest, append: true, mkdir: true, ...batching });
  boom.on('drop', (data: string) => onDropped(countLines(data)));
  boom.on('error', () => onDropped(1));
  let closed = false;
  return {
    write(line) {
      if (closed) return;
      boom.write(`${line}\n`);
    },
    flush() {
      if (closed) return;
      try {
        boom.flushSync();
      } catch {
        // EAGAIN on a full pipe: the async writer still holds the data and writes it on its own.
      }
    },
    reopen() {
      // logrotate (or an operator) renamed the file: queued records go to the old one, the rest to a new one.
      if (!closed && dest !== '-') boom.reopen();
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      return new Promise<void>((resolve) => {
        boom.once('close', () => resolve());
        boom.once('error', () => resolve());
        boom.end();
      });
    },
  };
}

function countLines(data: string): number {
  let n = 0;
  for (let i = data.indexOf('\n'); i !== -1; i = data.indexOf('\n', i + 1)) n++;
  return Math.max(n, 1);
}

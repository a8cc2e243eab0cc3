import { pino } from 'pino';
import type { EcsRecord } from './ecs.js';

export interface FlowLog {
  /** Queue one record; never blocks the event loop. */
  write(record: EcsRecord): void;
  /** Flush every queued record (synchronously: used on shutdown so no record is lost). */
  flush(): void;
  close(): Promise<void>;
}

/** Largest backlog kept in memory when the destination is slower than the flows (then records are counted as dropped). */
const MAX_BACKLOG_BYTES = 64 * 1024 * 1024;

/**
 * JSON-lines flow log on sonic-boom (pino's async writer, via `pino.destination`): one line per record, batched writes, a bounded
 * backlog, and a synchronous flush at shutdown.
 */
export function openFlowLog(dest: string, onDropped: (n: number) => void): FlowLog {
  const boom =
    dest === '-'
      ? pino.destination({ fd: 1, sync: false, maxLength: MAX_BACKLOG_BYTES })
      : pino.destination({ dest, sync: false, append: true, mkdir: true, maxLength: MAX_BACKLOG_BYTES });
  boom.on('drop', (data: string) => onDropped(countLines(data)));
  boom.on('error', () => onDropped(1));
  let closed = false;
  return {
    write(record) {
      if (closed) return;
      boom.write(`${JSON.stringify(record)}\n`);
    },
    flush() {
      if (closed) return;
      try {
        boom.flushSync();
      } catch {
        // EAGAIN on a full pipe: the async writer still holds the data and writes it on its own.
      }
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

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
 * … in writes of up to this much. sonic-boom's default (16 KiB) means one write per ~12 records; under load the
 * queue then grew faster than those small writes drained it, and its backlog (JS strings) was the largest part
 * of peak RSS (issue 9: 4–5 MB/s of backlog in the benchmark; 240 → 157 MB peak with 1 MiB writes).
 */
const MAX_WRITE_BYTES = 1024 * 1024;
/**
 * Records are encoded straight into a slab of this size (64 KiB: below glibc's mmap threshold, so slabs come from and return to the malloc arena) and handed to sonic-boom as bytes, one slab at a time.
 * Handed one string at a time, sonic-boom measured the UTF-8 length of the record and of its whole last buffer on
 * every write (`Buffer.byteLength`, a walk over a growing concatenation): 6–17 % of the proxy's CPU under
 * keep-alive load once records reached ~2 KB (issue 11); joining the strings first and encoding them with
 * Buffer.from cost as much again (a fresh 64 KiB ArrayBuffer per call). Encoding into a slab is one pass.
 */
const SLAB_BYTES = 64 * 1024;

/** The flow log of a cluster primary: it also takes whole-line batches that workers sent over IPC. */
/**
 * `log`, with `onLine` told of each line after it is written (the coverage tally and the console watch the
 * follow-up records telemetry writes: src/coverage/live.ts, src/console/console.ts).
 */
export function tapFlowLog(log: FlowLog, onLine: (line: string) => void): FlowLog {
  const tapped: FlowLog = {
    write(line) {
      log.write(line);
      onLine(line);
    },
    flush: () => log.flush(),
    close: () => log.close(),
  };
  if (log.reopen !== undefined) tapped.reopen = () => log.reopen?.();
  return tapped;
}

export interface FlowLogSink extends FlowLog {
  /** Append a batch of whole lines (each ending in a newline), as one piece: never split between two writes' lines. */
  writeLines(batch: Uint8Array): void;
}

/**
 * JSON-lines flow log on sonic-boom (pino's async writer, via `pino.destination`, in `contentMode: 'buffer'`):
 * one line per record, batched writes, a bounded backlog, and a synchronous flush at shutdown.
 *
 * `writeLines` takes whole-line batches as bytes (the cluster primary, src/cluster/primary.ts: worker batches
 * arrive as Buffers and are written as they are, without a round trip through a JS string). This process is
 * then the only writer of the file or of stdout, so lines never interleave, whatever the size of a record or
 * PIPE_BUF (POSIX makes only writes of at most PIPE_BUF bytes atomic on a pipe).
 */
export function openFlowLog(dest: string, onDropped: (n: number) => void): FlowLogSink {
  // Batch records into few large writes (one write syscall per record cost ~10 % of proxy CPU under load),
  // but never hold one back for longer than FLUSH_EVERY_MS.
  const batching = {
    sync: false,
    minLength: BATCH_BYTES,
    maxWrite: MAX_WRITE_BYTES,
    periodicFlush: FLUSH_EVERY_MS,
    maxLength: MAX_BACKLOG_BYTES,
    contentMode: 'buffer' as const,
  };
  const boom = dest === '-' ? pino.destination({ fd: 1, ...batching }) : pino.destination({ dest, append: true, mkdir: true, ...batching });
  boom.on('drop', (data: string | Uint8Array) => onDropped(countLines(data)));
  boom.on('error', () => onDropped(1));
  let closed = false;
  // Records not yet handed to sonic-boom (encoded in `slab` up to `used`), and the timer that hands them over
  // when traffic is slow.
  let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  let used = 0;
  let timer: NodeJS.Timeout | null = null;
  const handOff = (): void => {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    if (used === 0) return;
    // sonic-boom keeps the bytes until they are written: the slab is theirs now, the next records get a new one.
    writeBytes(boom, slab.subarray(0, used));
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    used = 0;
  };
  return {
    write(line) {
      if (closed) return;
      // A UTF-16 code unit takes at most 3 UTF-8 bytes; a record that could not fit an empty slab goes alone.
      const worst = line.length * 3 + 1;
      if (used + worst > SLAB_BYTES) {
        handOff();
        if (worst > SLAB_BYTES) {
          writeBytes(boom, Buffer.from(`${line}\n`));
          return;
        }
      }
      used += slab.write(line, used, 'utf8');
      slab[used++] = 0x0a;
      if (timer === null) {
        timer = setTimeout(handOff, FLUSH_EVERY_MS);
        timer.unref();
      }
    },
    writeLines(batch) {
      if (closed || batch.length === 0) return;
      handOff(); // in order after the single records before it
      writeBytes(boom, Buffer.from(batch.buffer, batch.byteOffset, batch.byteLength));
    },
    flush() {
      if (closed) return;
      handOff();
      // Never while an asynchronous write is in flight: a write to a pipe can be partial, and flushSync would put
      // later records before the rest of that write, cutting a line in two (seen in the workers test with 1 MiB
      // writes to stdout). The write in flight finishes on its own and close() writes what follows, in order.
      if ((boom as unknown as { _writing?: boolean })._writing === true) return;
      try {
        boom.flushSync();
      } catch {
        // EAGAIN on a full pipe: the async writer still holds the data and writes it on its own.
      }
    },
    reopen() {
      // logrotate (or an operator) renamed the file: queued records go to the old one, the rest to a new one.
      if (closed || dest === '-') return;
      handOff();
      boom.reopen();
    },
    close() {
      if (closed) return Promise.resolve();
      handOff();
      closed = true;
      return new Promise<void>((resolve) => {
        boom.once('close', () => resolve());
        boom.once('error', () => resolve());
        boom.end();
      });
    },
  };
}

/**
 * sonic-boom opened with `contentMode: 'buffer'` takes Buffers (and counts their bytes); its type declarations
 * only know strings, hence the cast.
 */
function writeBytes(boom: { write(data: string): boolean }, data: Buffer): void {
  boom.write(data as unknown as string);
}

function countLines(data: string | Uint8Array): number {
  let n = 0;
  if (typeof data === 'string') {
    for (let i = data.indexOf('\n'); i !== -1; i = data.indexOf('\n', i + 1)) n++;
  } else {
    for (let i = data.indexOf(0x0a); i !== -1; i = data.indexOf(0x0a, i + 1)) n++;
  }
  return Math.max(n, 1);
}

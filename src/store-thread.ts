/**
 * A store that runs on its own worker thread (better-sqlite3 blocks the thread it runs on): requests and answers
 * matched by id, the process kept alive only while a request is in flight, every waiting request failed at once
 * when the thread dies, and a close that lets the thread finish its work (terminated after CLOSE_GRACE_MS).
 * Used by the baseline's SQLite writer (src/enrich/baseline/baseline-sqlite.ts) and the console's flow history
 * (src/console/history.ts).
 *
 * The thread's source speaks a small protocol: it posts `{id: 0, …}` once it is ready (the caller reads what else
 * that message says), answers each `{id, …}` request with `{id, …}` or `{id, error}`, and exits on the close
 * message the caller names.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';

export type ThreadReply = Record<string, unknown>;

/** How long a closing thread may take to finish before it is terminated. */
const CLOSE_GRACE_MS = 5_000;

/** A request the thread did not answer within its timeout. */
export class NoAnswer extends Error {}

export interface StoreThread {
  /** One request; with `timeout`, rejected with NoAnswer if no answer came in time (a late answer is dropped). */
  call(msg: Record<string, unknown>, timeout?: { readonly ms: number; readonly message: string }): Promise<ThreadReply>;
  /** false once the thread failed or exited. */
  alive(): boolean;
  /** Post `closeMessage` and wait for the thread to exit (terminated after a grace period). */
  close(closeMessage: Record<string, unknown>): Promise<void>;
  /** Terminate the thread now. */
  kill(): Promise<void>;
}

export interface StoreThreadOptions {
  /** The thread's JavaScript source (run with `eval`, so it works from src/ and dist/ alike). */
  readonly source: string;
  readonly workerData: unknown;
  readonly resourceLimits: ResourceLimits;
  /** Named in errors: "the history thread exited (1)". */
  readonly name: string;
  readonly startTimeoutMs: number;
  /** The thread failed or exited while not closing (after it started). */
  readonly onDied: (message: string) => void;
}

/**
 * Starts the thread. `ready` resolves with the thread's ready message, or rejects when it did not start in time or
 * exited first — the thread is terminated then.
 */
export function startStoreThread(options: StoreThreadOptions): { readonly thread: StoreThread; readonly ready: Promise<ThreadReply> } {
  const { name } = options;
  const worker = new Worker(options.source, { eval: true, workerData: options.workerData, resourceLimits: options.resourceLimits });
  let nextId = 1;
  let dead: string | null = null;
  let closing = false;
  const waiting = new Map<number, { resolve: (r: ThreadReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout | null }>();
  const settle = (id: number): { resolve: (r: ThreadReply) => void; reject: (e: Error) => void } | undefined => {
    const w = waiting.get(id);
    if (w === undefined) return undefined;
    waiting.delete(id);
    if (w.timer !== null) clearTimeout(w.timer);
    if (waiting.size === 0) worker.unref(); // an idle store does not keep the process alive
    return w;
  };
  const fail = (message: string): void => {
    if (dead !== null) return;
    dead = message;
    for (const id of [...waiting.keys()]) settle(id)?.reject(new Error(message));
    if (!closing) options.onDied(message);
  };
  let onReady: ((m: ThreadReply) => void) | null = null;
  const started = new Promise<ThreadReply>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the ${name} did not start`)), options.startTimeoutMs);
    timer.unref();
    onReady = (m) => {
      clearTimeout(timer);
      resolve(m);
    };
    worker.once('error', (err) => reject(err));
    worker.once('exit', (code) => reject(new Error(`the ${name} exited (${code})`)));
  });
  worker.on('message', (m: ThreadReply) => {
    const id = typeof m.id === 'number' ? m.id : -1;
    if (id === 0) {
      onReady?.(m);
      onReady = null;
      if (waiting.size === 0) worker.unref();
      return;
    }
    const w = settle(id);
    if (w === undefined) return; // timed out already
    if (typeof m.error === 'string') w.reject(new Error(m.error));
    else w.resolve(m);
  });
  worker.on('error', (err) => fail(`the ${name} failed: ${err.message}`));
  worker.on('exit', (code) => fail(`the ${name} exited (${code})`));
  const thread: StoreThread = {
    call(msg, timeout) {
      if (dead !== null) return Promise.reject(new Error(dead));
      const id = nextId++;
      worker.ref(); // a request in flight keeps the process alive
      return new Promise<ThreadReply>((resolve, reject) => {
        const timer = timeout === undefined ? null : setTimeout(() => settle(id)?.reject(new NoAnswer(timeout.message)), timeout.ms);
        waiting.set(id, { resolve, reject, timer });
        worker.postMessage({ ...msg, id });
      });
    },
    alive: () => dead === null,
    async close(closeMessage) {
      closing = true;
      if (dead !== null) return;
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.ref();
      worker.postMessage(closeMessage);
      const timer = setTimeout(() => void worker.terminate(), CLOSE_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      closing = true;
      await worker.terminate();
    },
  };
  const ready = started.catch(async (err: unknown) => {
    closing = true;
    await worker.terminate();
    throw err;
  });
  return { thread, ready };
}

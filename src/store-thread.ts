/**
 * Stores that run off the proxy's thread (better-sqlite3 blocks the thread it runs on): the baseline's SQLite
 * writer (src/enrich/baseline/baseline-sqlite.ts) and the console's flow history (src/console/history.ts).
 *
 * All of a process's stores share one worker thread, the host: each store is its source run there with a
 * MessagePort of its own. A Node worker is a V8 isolate and a Node environment — ~13 MB of resident memory even
 * idle — and one per store was two of them in every proxy process (issue 9, peak RSS). The stores' work is short
 * SQLite transactions that each wait for the other's at most (the busy timeouts are 1 s, the callers' timeouts
 * 5 s and more).
 *
 * Per store: requests and answers matched by id, the process kept alive only while a request is in flight, every
 * waiting request failed at once when the store or the host dies, and a close that lets the store finish its work
 * (abandoned after CLOSE_GRACE_MS). The host is started with the first store and ended with the last. When the
 * host itself dies (a store crashed it), every store is told (`onDied`) and starts again on the next use, on a
 * new host; `kill` of a store that does not answer ends the host for the same reason — a store stuck in a
 * synchronous call holds the whole thread.
 *
 * A store's source speaks a small protocol over `parentPort` (its port; `workerData` and `require` are given to
 * it too): it posts `{id: 0, …}` once it is ready (the caller reads what else that message says), answers each
 * `{id, …}` request with `{id, …}` or `{id, error}`, and closes its port on the close message the caller names.
 */
import { MessageChannel, Worker } from 'node:worker_threads';

export type ThreadReply = Record<string, unknown>;

/** How long a closing store may take to finish before it is abandoned. */
const CLOSE_GRACE_MS = 5_000;

/**
 * The host's V8 heap. Each store holds one batch or one answer at a time (the baseline ≤ maxBatch keys, the
 * history ≤ MAX_BATCH flows or ≤ 1,000 rows: a few MB); SQLite's page caches are outside the heap. Without limits
 * a worker gets V8's defaults (young generation up to 3 × 16 MB, old generation up to the machine's heap limit):
 * a thread cost ~20 MB of RSS with them, ~17 MB with limits (most of it is the isolate and Node's worker bootstrap,
 * which no limit removes — hence one host for all stores). A small young generation keeps the heap from growing
 * with the batches' garbage. A host that runs out dies with ERR_WORKER_OUT_OF_MEMORY; its stores start again on
 * their next use, their batches re-queued.
 */
const HOST_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 64 } as const;

/**
 * The host: runs each store's source as a function of (require, parentPort, workerData), in strict mode, with
 * the store's own port as parentPort. A source that throws while starting is reported on its port.
 */
const HOST_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => {
  if (m.t !== 'open') return;
  try {
    new Function('require', 'parentPort', 'workerData', m.source)(require, m.port, m.workerData);
  } catch (err) {
    m.port.postMessage({ id: 0, startError: err && err.message ? err.message : String(err) });
    m.port.close();
  }
});
`;

/** A request the store did not answer within its timeout. */
export class NoAnswer extends Error {}

export interface StoreThread {
  /** One request; with `timeout`, rejected with NoAnswer if no answer came in time (a late answer is dropped). */
  call(msg: Record<string, unknown>, timeout?: { readonly ms: number; readonly message: string }): Promise<ThreadReply>;
  /** false once the store failed, closed or was killed. */
  alive(): boolean;
  /** Post `closeMessage` and wait for the store to close its port (abandoned after a grace period). */
  close(closeMessage: Record<string, unknown>): Promise<void>;
  /** End the store now: a store that still holds its port (it may be stuck) ends the host with it. */
  kill(): Promise<void>;
}

export interface StoreThreadOptions {
  /** The store's JavaScript source (CommonJS-style, so it works from src/ and dist/ alike). */
  readonly source: string;
  readonly workerData: unknown;
  /** Named in errors: "the history thread exited (1)". */
  readonly name: string;
  readonly startTimeoutMs: number;
  /** The store failed or its host exited while the store was not closing (after it started). */
  readonly onDied: (message: string) => void;
}

/** What the host knows of one open store. */
interface StoreEnd {
  /** The host died: fail the store with this message. */
  hostDied(message: (name: string) => string): void;
}

interface Host {
  readonly worker: Worker;
  readonly stores: Set<StoreEnd>;
  /** Resolves when the host has exited, with why (for a store's own name). */
  readonly exited: Promise<(name: string) => string>;
}

/** How long a store whose port closed unasked waits for its host's exit (and its reason) before it fails alone. */
const EXIT_WAIT_MS = 1_000;

let host: Host | null = null;

function startHost(): Host {
  const worker = new Worker(HOST_SOURCE, { eval: true, resourceLimits: HOST_RESOURCE_LIMITS });
  worker.unref(); // the stores' ports keep the process alive while a request is in flight, never the host itself
  let exited: (message: (name: string) => string) => void = () => undefined;
  const started: Host = { worker, stores: new Set(), exited: new Promise((resolve) => (exited = resolve)) };
  const died = (message: (name: string) => string): void => {
    if (host === started) host = null;
    for (const store of [...started.stores]) store.hostDied(message);
    started.stores.clear();
    exited(message);
  };
  worker.on('error', (err) => died((name) => `the ${name} failed: ${err.message}`));
  worker.on('exit', (code) => died((name) => `the ${name} exited (${code})`));
  return started;
}

/** The store is gone from its host; the last store to go ends the host. */
function leave(h: Host, store: StoreEnd): void {
  h.stores.delete(store);
  if (h.stores.size === 0) endHost(h);
}

function endHost(h: Host): void {
  if (host === h) host = null;
  void h.worker.terminate();
}

/**
 * Starts the store on the process's host thread. `ready` resolves with the store's ready message, or rejects
 * when it did not start in time, failed to start, or its host died first — the store is abandoned then.
 */
export function startStoreThread(options: StoreThreadOptions): { readonly thread: StoreThread; readonly ready: Promise<ThreadReply> } {
  const { name } = options;
  host ??= startHost();
  const h = host;
  const { port1: port, port2 } = new MessageChannel();
  let nextId = 1;
  let dead: string | null = null;
  let closing = false;
  let portClosed = false;
  const waiting = new Map<number, { resolve: (r: ThreadReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout | null }>();
  const settle = (id: number): { resolve: (r: ThreadReply) => void; reject: (e: Error) => void } | undefined => {
    const w = waiting.get(id);
    if (w === undefined) return undefined;
    waiting.delete(id);
    if (w.timer !== null) clearTimeout(w.timer);
    if (waiting.size === 0 && onReady === null) port.unref(); // an idle store does not keep the process alive
    return w;
  };
  let onReady: ((m: ThreadReply) => void) | null = null;
  let onStartFailed: ((err: Error) => void) | null = null;
  const fail = (message: string): void => {
    if (dead !== null) return;
    dead = message;
    onStartFailed?.(new Error(message));
    for (const id of [...waiting.keys()]) settle(id)?.reject(new Error(message));
    if (!closing && onReady === null) options.onDied(message);
  };
  const end: StoreEnd = { hostDied: (message) => fail(message(name)) };
  const closed = new Promise<void>((resolve) => {
    port.once('close', () => {
      portClosed = true;
      resolve();
      if (closing) {
        h.stores.delete(end);
        fail(`the ${name} closed`);
        return;
      }
      // Unasked: the store closed its port, or its host is exiting (ports close before the host's exit event).
      // Fail with the host's reason when it comes soon.
      const wait = setTimeout(() => {
        h.stores.delete(end);
        fail(`the ${name} closed its port`);
      }, EXIT_WAIT_MS);
      wait.unref();
      void h.exited.then((message) => {
        clearTimeout(wait);
        fail(message(name));
      });
    });
  });
  const started = new Promise<ThreadReply>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the ${name} did not start`)), options.startTimeoutMs);
    timer.unref();
    onReady = (m) => {
      clearTimeout(timer);
      onReady = null;
      onStartFailed = null;
      resolve(m);
    };
    onStartFailed = (err) => {
      clearTimeout(timer);
      onReady = null;
      onStartFailed = null;
      reject(err);
    };
  });
  port.on('message', (m: ThreadReply) => {
    const id = typeof m.id === 'number' ? m.id : -1;
    if (id === 0) {
      if (typeof m.startError === 'string') {
        fail(`the ${name} failed to start: ${m.startError}`);
        return;
      }
      onReady?.(m);
      if (waiting.size === 0) port.unref();
      return;
    }
    const w = settle(id);
    if (w === undefined) return; // timed out already
    if (typeof m.error === 'string') w.reject(new Error(m.error));
    else w.resolve(m);
  });
  h.stores.add(end);
  h.worker.postMessage({ t: 'open', port: port2, source: options.source, workerData: options.workerData }, [port2]);

  /** Abandon the store: its port closed here, the host ended with its last store. */
  const abandon = (): void => {
    closing = true;
    fail(`the ${name} was closed`);
    if (!portClosed) port.close();
    if (h.stores.has(end)) leave(h, end);
    else if (h.stores.size === 0 && host === h) endHost(h);
  };
  const thread: StoreThread = {
    call(msg, timeout) {
      if (dead !== null) return Promise.reject(new Error(dead));
      const id = nextId++;
      port.ref(); // a request in flight keeps the process alive
      return new Promise<ThreadReply>((resolve, reject) => {
        const timer = timeout === undefined ? null : setTimeout(() => settle(id)?.reject(new NoAnswer(timeout.message)), timeout.ms);
        waiting.set(id, { resolve, reject, timer });
        port.postMessage({ ...msg, id });
      });
    },
    alive: () => dead === null,
    async close(closeMessage) {
      closing = true;
      if (dead === null) {
        port.ref();
        port.postMessage(closeMessage);
        const timer = setTimeout(abandon, CLOSE_GRACE_MS);
        await closed;
        clearTimeout(timer);
      }
      abandon();
    },
    async kill() {
      closing = true;
      // A store that still holds its port may be stuck in a synchronous call, holding the host: end the host
      // (its other stores are told and start again on their next use). One that closed its port is gone already.
      if (!portClosed && dead === null) {
        h.stores.delete(end);
        fail(`the ${name} was stopped`);
        port.close();
        endHost(h);
        for (const other of [...h.stores]) other.hostDied((n) => `the ${n} was stopped with its thread`);
        h.stores.clear();
        return;
      }
      abandon();
    },
  };
  const ready = started.catch((err: unknown) => {
    abandon();
    throw err;
  });
  return { thread, ready };
}

/**
 * A worker's end of the IPC channel to the cluster primary (`proxy.workers` > 1): what the composition root
 * (src/cli/start.ts) uses to share state, to ask for cluster-wide answers (reload, metrics, status), and to
 * answer the primary's questions. Message shapes: src/cluster/messages.ts.
 *
 * Shared items (hints, DNS answers) of one event loop turn go out as one `share` message (setImmediate): a burst
 * of DNS answers costs one IPC message, and a hint or answer still reaches the other workers within a
 * millisecond or so. The outbox and the number of unsent messages are bounded; beyond, items are dropped and
 * reported (`onShareDropped`) — they are hints for attribution, not records.
 */
import type { HintEvent } from '../enrich/hint-event.js';
import type { LineSender } from './ipc-flow-log.js';
import { isPrimaryMessage, type ClusterReload, type ClusterStatus, type DnsShare, type MetricsJson, type PrimaryMessage, type WorkerMessage, type WorkerReload } from './messages.js';
import type { SharePort } from './share.js';

/** The IPC channel as the link needs it (`process` in a worker; a fake in tests). */
export interface WorkerChannel {
  /** `done` is called exactly once: when the message is on the channel, or with the error. */
  send(message: WorkerMessage, done: (err: Error | null) => void): void;
  onMessage(listener: (message: unknown) => void): void;
}

export interface ClusterLink extends SharePort {
  readonly workerId: number;
  /** Flow-log batches for the primary's log. */
  readonly sendFlowLines: LineSender;
  /** POST /v1/policy/reload: every worker reloads; resolves once all answered (or the primary timed them out). */
  reloadAll(): Promise<ClusterReload>;
  /** What this worker does when the primary asks it to reload. */
  onReload(reload: () => Promise<WorkerReload>): void;
  /** GET /metrics: the aggregate of every process, from the primary. */
  scrape(): Promise<{ readonly contentType: string; readonly text: string }>;
  /** This worker's metrics, when the primary collects them for a scrape. */
  onCollect(collect: () => Promise<MetricsJson>): void;
  /** GET /v1/cluster. */
  status(): Promise<ClusterStatus>;
  /** Called when the primary says stop (drain and exit). */
  onStop(stop: () => void): void;
  /** The last message: everything this worker sent before is delivered before it. */
  sendDrained(): Promise<void>;
  /** Tell the primary the worker is up, with the addresses it listens on. */
  send(message: WorkerMessage): Promise<void>;
}

export interface WorkerLinkOptions {
  /** How long a question to the primary may take (it waits for every worker itself, bounded below this). */
  readonly requestTimeoutMs?: number;
  /** Items queued for sharing at most; beyond, dropped. */
  readonly maxOutbox?: number;
  /** `share` messages not yet on the channel at most; beyond, a batch is dropped. */
  readonly maxUnsentShares?: number;
  /** Shared items dropped (outbox full, or the channel slow or gone). */
  readonly onShareDropped?: (n: number) => void;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_OUTBOX = 100_000;
const DEFAULT_MAX_UNSENT_SHARES = 256;

type Answer = Extract<PrimaryMessage, { readonly id: number }>;

export function createWorkerLink(channel: WorkerChannel, workerId: number, opts: WorkerLinkOptions = {}): ClusterLink {
  const requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const maxOutbox = opts.maxOutbox ?? DEFAULT_MAX_OUTBOX;
  const maxUnsent = opts.maxUnsentShares ?? DEFAULT_MAX_UNSENT_SHARES;
  const dropped = (n: number): void => opts.onShareDropped?.(n);

  const hintAppliers: ((events: readonly HintEvent[]) => void)[] = [];
  const dnsAppliers: ((items: readonly DnsShare[]) => void)[] = [];
  let reloadHandler: (() => Promise<WorkerReload>) | null = null;
  let collectHandler: (() => Promise<MetricsJson>) | null = null;
  let stopHandler: (() => void) | null = null;
  // A stop that came while the worker was still starting runs as soon as the worker can stop.
  let stopRequested = false;

  // ---- sharing ------------------------------------------------------------------------------------------------
  let hints: HintEvent[] = [];
  let dns: DnsShare[] = [];
  let scheduled = false;
  let unsentShares = 0;
  const flushShares = (): void => {
    scheduled = false;
    const batch = { kind: 'share' as const, hints, dns };
    const n = hints.length + dns.length;
    hints = [];
    dns = [];
    if (n === 0) return;
    if (unsentShares >= maxUnsent) {
      dropped(n);
      return;
    }
    unsentShares++;
    channel.send(batch, (err) => {
      unsentShares--;
      if (err !== null) dropped(n);
    });
  };
  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flushShares);
  };
  const room = (n: number): boolean => {
    if (hints.length + dns.length + n <= maxOutbox) return true;
    dropped(n);
    return false;
  };

  // ---- questions to the primary ---------------------------------------------------------------------------------
  let nextId = 1;
  const waiting = new Map<number, { settle: (m: Answer) => void; timer: NodeJS.Timeout }>();
  const ask = <K extends Answer['kind']>(message: WorkerMessage & { readonly id: number }, answer: K): Promise<Extract<Answer, { readonly kind: K }>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(message.id);
        reject(new Error(`the cluster primary did not answer within ${requestTimeoutMs} ms`));
      }, requestTimeoutMs);
      waiting.set(message.id, {
        settle: (m) => {
          if (m.kind === answer) resolve(m as Extract<Answer, { readonly kind: K }>);
          else reject(new Error(`the cluster primary answered ${m.kind} to ${message.kind}`));
        },
        timer,
      });
      channel.send(message, (err) => {
        if (err === null) return;
        clearTimeout(timer);
        waiting.delete(message.id);
        reject(err);
      });
    });

  const reply = (message: WorkerMessage): void => channel.send(message, () => undefined);

  channel.onMessage((raw) => {
    if (!isPrimaryMessage(raw)) return;
    const m = raw;
    switch (m.kind) {
      case 'share':
        if (m.hints.length > 0) for (const apply of hintAppliers) apply(m.hints);
        if (m.dns.length > 0) for (const apply of dnsAppliers) apply(m.dns);
        return;
      case 'reload': {
        const handler = reloadHandler;
        if (handler === null) return; // not started yet: the primary counts it as no answer
        handler().then(
          (result) => reply({ kind: 'reloaded', id: m.id, result }),
          (err: unknown) => reply({ kind: 'reloaded', id: m.id, result: { ok: false, sha256: '', errors: [`reload failed: ${String(err)}`] } }),
        );
        return;
      }
      case 'collect': {
        const handler = collectHandler;
        if (handler === null) return;
        handler().then(
          (metrics) => reply({ kind: 'collected', id: m.id, metrics }),
          () => reply({ kind: 'collected', id: m.id, metrics: [] }),
        );
        return;
      }
      case 'stop':
        stopRequested = true;
        stopHandler?.();
        return;
      case 'start':
        return; // taken by the worker before the link exists
      case 'reload-all-done':
      case 'metrics-text':
      case 'status-report': {
        const w = waiting.get(m.id);
        if (w === undefined) return;
        waiting.delete(m.id);
        clearTimeout(w.timer);
        w.settle(m);
        return;
      }
    }
  });

  return {
    workerId,
    sendFlowLines: (lines, count, done) => channel.send({ kind: 'flow-lines', lines, count }, done),
    shareHints(events) {
      if (!room(events.length)) return;
      for (const e of events) hints.push(e);
      schedule();
    },
    onHints: (apply) => void hintAppliers.push(apply),
    shareDns(items) {
      if (!room(items.length)) return;
      for (const item of items) dns.push(item);
      schedule();
    },
    onDns: (apply) => void dnsAppliers.push(apply),
    reloadAll: async () => (await ask({ kind: 'reload-all', id: nextId++ }, 'reload-all-done')).result,
    onReload(handler) {
      reloadHandler = handler;
    },
    async scrape() {
      const m = await ask({ kind: 'metrics', id: nextId++ }, 'metrics-text');
      return { contentType: m.contentType, text: m.text };
    },
    onCollect(handler) {
      collectHandler = handler;
    },
    status: async () => (await ask({ kind: 'status', id: nextId++ }, 'status-report')).status,
    onStop(handler) {
      stopHandler = handler;
      if (stopRequested) handler();
    },
    sendDrained() {
      // Whatever is still in the share outbox goes first.
      if (scheduled) flushShares();
      return new Promise((resolve) => channel.send({ kind: 'drained' }, () => resolve()));
    },
    send: (message) => new Promise((resolve, reject) => channel.send(message, (err) => (err === null ? resolve() : reject(err)))),
  };
}

/** The real channel of a cluster worker: `process.send` with the callback always given (else a closed channel throws). */
export function processChannel(): WorkerChannel {
  return {
    send(message, done) {
      if (process.send === undefined) {
        done(new Error('no IPC channel: not a cluster worker'));
        return;
      }
      process.send(message, undefined, {}, (err: Error | null) => done(err ?? null));
    },
    onMessage(listener) {
      process.on('message', listener);
    },
  };
}

/**
 * The cluster primary (`proxy.workers` > 1): it forks the workers (node:cluster) and serves no flow itself.
 *
 * Who owns what (docs/deployment.md "Workers"):
 *  - every worker runs the whole proxy — proxy, DNS and admin listeners on the shared ports (node:cluster hands
 *    the connections out; round-robin on Linux), its pipeline, hint store, DNS memory, detection state;
 *  - the primary owns the flow log (the only writer of the file or of stdout: whole lines, SIGUSR1 reopens it
 *    here), the policy file watch (a change, SIGHUP, or POST /v1/policy/reload on any worker makes every worker
 *    reload, and the answer waits for all of them), the aggregation of /metrics (whichever worker serves the
 *    scrape asks the primary, which collects every worker's metrics and its own), the fan-out of shared state
 *    (hints, DNS answers: to every worker but the one that sent them), and the workers' lives: a worker that
 *    crashes is started again with backoff (bounded), and SIGTERM/SIGINT drain every worker before the primary
 *    exits, with a hard deadline.
 *
 * The config is loaded once, here, and sent to each worker: a worker started again later runs the same config
 * even when the file changed meanwhile. The first worker starts alone and the others after it is up, so that
 * whatever is created on first use (the SQLite baseline's schema) is created by one process.
 */
import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.js';
import { EgressError } from '../errors.js';
import { openFlowLog } from '../observe/flow-log.js';
import { createLogger, type Logger } from '../observe/logger.js';
import { createClusterMetrics, createMetrics, dropPolicyState, setWorkerStates, type WorkerStateLabel } from '../observe/metrics.js';
import { watchPolicyFiles } from '../policy/policy-store.js';
import { isWorkerMessage, type ClusterReload, type ClusterStatus, type MetricsJson, type PrimaryMessage, type WorkerMessage, type WorkerReload, type WorkerState } from './messages.js';
import { aggregateMetrics, combineReloads, decideRestart, DEFAULT_RESTART_POLICY, workerCounts, type RestartPolicy } from './supervise.js';

export interface RunningCluster {
  readonly proxyAddress: AddressInfo;
  readonly adminAddress: AddressInfo;
  /** null when dns.listen is null. */
  readonly dnsAddress: AddressInfo | null;
  readonly workers: number;
  /** SIGHUP: every worker reloads its policy files. */
  reloadPolicy(): Promise<ClusterReload>;
  /** SIGUSR1: reopen the flow log after rotation (the primary is its only writer). */
  reopenFlowLog(): void;
  /** Graceful stop: every worker drains and writes its records; resolves false when the deadline killed some. */
  stop(): Promise<boolean>;
  /** A second signal: kill every worker now and flush what the primary holds. */
  kill(): void;
  /** Resolves (with the reason) when every worker slot was given up: the cluster serves nothing any more. */
  readonly failed: Promise<string>;
}

export interface ClusterOptions {
  readonly logger?: Logger;
  readonly restart?: RestartPolicy;
  /** How long a worker may take to say it is ready (default 60 s). */
  readonly startTimeoutMs?: number;
  /** Time over `proxy.drain` the workers get to write their records and exit before they are killed (default 10 s). */
  readonly stopGraceMs?: number;
  /** How long a reload waits for every worker's answer (default 15 s). */
  readonly reloadTimeoutMs?: number;
  /** How long a scrape waits for every worker's metrics (default 2 s; the rest is served without the late ones). */
  readonly collectTimeoutMs?: number;
}

interface Slot {
  readonly id: number;
  worker: Worker | null;
  pid: number | null;
  state: WorkerState;
  restarts: number;
  /** Crashes in a row (src/cluster/supervise.ts decideRestart). */
  consecutive: number;
  /** When the current process said ready. */
  startedMs: number | null;
  forkedMs: number;
  restartTimer: NodeJS.Timeout | null;
  /** Settles once the current process has exited and its channel closed: every message it sent was handled. */
  gone: Promise<void>;
}

interface Gather {
  readonly waitingFor: Set<number>;
  readonly answers: Map<number, unknown>;
  readonly finish: () => void;
}

const DEFAULT_START_TIMEOUT_MS = 60_000;
const DEFAULT_STOP_GRACE_MS = 10_000;
const DEFAULT_RELOAD_TIMEOUT_MS = 15_000;
const DEFAULT_COLLECT_TIMEOUT_MS = 2_000;
/** After SIGKILL at the deadline, how long to wait for the killed workers' channels to close. */
const KILL_WAIT_MS = 2_000;
/** After a worker process exited, how long its IPC channel may take to report the disconnect. */
const EXIT_GRACE_MS = 1_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** Send to a worker if its channel is open; the callback keeps a closed channel from throwing. */
function sendTo(worker: Worker | null, message: PrimaryMessage): void {
  if (worker === null || !worker.isConnected()) return;
  worker.send(message, () => undefined);
}

export async function startCluster(config: Config, opts: ClusterOptions = {}): Promise<RunningCluster> {
  const logger = opts.logger ?? createLogger(config.log.level);
  const restartPolicy = opts.restart ?? DEFAULT_RESTART_POLICY;
  const startTimeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const stopGraceMs = opts.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
  const reloadTimeoutMs = opts.reloadTimeoutMs ?? DEFAULT_RELOAD_TIMEOUT_MS;
  const collectTimeoutMs = opts.collectTimeoutMs ?? DEFAULT_COLLECT_TIMEOUT_MS;

  // The primary's own metrics (its process, flow-log drops, worker states) join every worker's in a scrape.
  const metrics = createMetrics();
  // The workers hold the policy: the aggregate's policy metrics are theirs (min/max over the workers only).
  dropPolicyState(metrics);
  const clusterMetrics = createClusterMetrics(metrics.registry);
  const flowLog = openFlowLog(config.log.flows, (n) => metrics.flowLogDropped.inc(n));
  // Buffers and hint objects cross the channel without JSON escaping (src/cluster/messages.ts).
  cluster.setupPrimary({ serialization: 'advanced' });

  const slots: Slot[] = Array.from({ length: config.proxy.workers }, (_, i) => ({
    id: i + 1,
    worker: null,
    pid: null,
    state: 'starting',
    restarts: 0,
    consecutive: 0,
    startedMs: null,
    forkedMs: 0,
    restartTimer: null,
    gone: Promise.resolve(),
  }));
  let serving = false;
  let stopping = false;
  let addresses: Extract<WorkerMessage, { kind: 'ready' }> | null = null;
  let failedWith: (reason: string) => void = () => undefined;
  const failed = new Promise<string>((resolve) => (failedWith = resolve));

  const updateStates = (): void => {
    const counts: Record<WorkerStateLabel, number> = { starting: 0, up: 0, stopping: 0, restarting: 0, abandoned: 0 };
    for (const s of slots) counts[s.state]++;
    setWorkerStates(clusterMetrics, counts);
  };

  // ---- questions to every worker: reload, collect --------------------------------------------------------------
  let nextId = 1;
  const gathers = new Map<number, Gather>();
  const gather = <T>(kind: 'reload' | 'collect', timeoutMs: number): Promise<{ asked: { id: number; pid: number }[]; answers: Map<number, T> }> => {
    const id = nextId++;
    const up = slots.filter((s) => s.state === 'up' && s.worker?.isConnected() === true);
    const asked = up.map((s) => ({ id: s.id, pid: s.pid ?? 0 }));
    return new Promise((resolve) => {
      const answers = new Map<number, T>();
      const finish = (): void => {
        clearTimeout(timer);
        gathers.delete(id);
        resolve({ asked, answers });
      };
      const timer = setTimeout(finish, timeoutMs);
      gathers.set(id, { waitingFor: new Set(up.map((s) => s.id)), answers: answers as Map<number, unknown>, finish });
      for (const s of up) sendTo(s.worker, { kind, id });
      if (up.length === 0) finish();
    });
  };
  const answered = (id: number, slot: Slot, value: unknown): void => {
    const g = gathers.get(id);
    if (g === undefined || !g.waitingFor.delete(slot.id)) return;
    g.answers.set(slot.id, value);
    if (g.waitingFor.size === 0) g.finish();
  };
  /** A worker that exits will not answer: stop waiting for it. */
  const forgetAnswers = (slot: Slot): void => {
    for (const g of [...gathers.values()]) if (g.waitingFor.delete(slot.id) && g.waitingFor.size === 0) g.finish();
  };

  const reloadAll = async (why: string): Promise<ClusterReload> => {
    const { asked, answers } = await gather<WorkerReload>('reload', reloadTimeoutMs);
    const result = combineReloads(asked, answers, reloadTimeoutMs);
    if (result.ok) logger.info({ why, sha256: result.sha256, workers: asked.length }, 'policy reloaded on every worker');
    else logger.error({ why, errors: result.errors }, 'policy reload failed on some worker; each keeps its last good policy');
    return result;
  };
  const collect = (): Promise<{ answers: Map<number, MetricsJson> }> => gather<MetricsJson>('collect', collectTimeoutMs);
  const scrape = async (): Promise<{ contentType: string; text: string }> => {
    const { answers } = await collect();
    updateStates();
    return aggregateMetrics([await metrics.registry.getMetricsAsJSON(), ...answers.values()]);
  };
  const status = async (): Promise<ClusterStatus> => {
    const { answers } = await collect();
    return {
      primaryPid: process.pid,
      workers: slots.map((s) => {
        const m = answers.get(s.id);
        const counts = m === undefined ? null : workerCounts(m);
        return { id: s.id, pid: s.pid, state: s.state, restarts: s.restarts, startedMs: s.startedMs, flows: counts?.flows ?? null, activeFlows: counts?.activeFlows ?? null };
      }),
    };
  };

  // ---- messages from a worker ----------------------------------------------------------------------------------
  const onMessage = (slot: Slot, worker: Worker, raw: unknown, started: { resolve: () => void; reject: (err: Error) => void }): void => {
    if (!isWorkerMessage(raw)) return;
    const m = raw;
    switch (m.kind) {
      case 'hello':
        sendTo(worker, { kind: 'start', workerId: slot.id, config });
        return;
      case 'ready':
        slot.state = stopping ? 'stopping' : 'up';
        slot.startedMs = Date.now();
        addresses ??= m;
        updateStates();
        started.resolve();
        return;
      case 'start-failed':
        // The worker's own error, so that the primary prints what a single process would.
        started.reject(m.code === null ? new Error(m.message) : new EgressError(m.code, m.message));
        return;
      case 'flow-lines':
        flowLog.writeLines(m.lines);
        return;
      case 'share':
        // To every other worker that is up; the sender stored it already, so nothing comes back to it.
        for (const s of slots) if (s !== slot && s.state === 'up') sendTo(s.worker, { kind: 'share', hints: m.hints, dns: m.dns });
        return;
      case 'reload-all':
        void reloadAll('POST /v1/policy/reload').then((result) => sendTo(worker, { kind: 'reload-all-done', id: m.id, result }));
        return;
      case 'metrics':
        void scrape().then(
          ({ contentType, text }) => sendTo(worker, { kind: 'metrics-text', id: m.id, contentType, text }),
          (err: unknown) => logger.error({ err: String(err) }, 'cluster: aggregating metrics failed'),
        );
        return;
      case 'status':
        void status().then((s) => sendTo(worker, { kind: 'status-report', id: m.id, status: s }));
        return;
      case 'reloaded':
        answered(m.id, slot, m.result);
        return;
      case 'collected':
        answered(m.id, slot, m.metrics);
        return;
      case 'drained':
        return; // the channel's close (slot.gone) is what the stop waits for; messages before it are handled
    }
  };

  /** Fork the slot's process; resolves once it is ready, rejects when it fails to start. */
  const fork = (slot: Slot): Promise<void> => {
    const worker = cluster.fork();
    slot.worker = worker;
    slot.pid = worker.process.pid ?? null;
    slot.state = 'starting';
    slot.startedMs = null;
    slot.forkedMs = Date.now();
    updateStates();
    let resolveStart: () => void = () => undefined;
    let rejectStart: (err: Error) => void = () => undefined;
    const ready = new Promise<void>((resolve, reject) => {
      resolveStart = resolve;
      rejectStart = reject;
    });
    const timer = setTimeout(() => {
      rejectStart(new Error(`worker ${slot.id} did not start within ${startTimeoutMs} ms`));
      worker.process.kill('SIGKILL');
    }, startTimeoutMs);
    const started = {
      resolve: () => {
        clearTimeout(timer);
        resolveStart();
      },
      reject: (err: Error) => {
        clearTimeout(timer);
        rejectStart(err);
      },
    };
    worker.on('message', (m: unknown) => onMessage(slot, worker, m, started));
    let code: number | null = null;
    let signal: string | null = null;
    slot.gone = new Promise<void>((resolve) => {
      let exited = false;
      let disconnected = false;
      const check = (): void => {
        if (exited && disconnected) resolve();
      };
      worker.once('exit', (c: number | null, s: string | null) => {
        code = c;
        signal = s;
        exited = true;
        check();
        // 'disconnect' normally follows (its last IPC messages are then in); seen once in CI, under load, a
        // SIGKILLed worker whose 'disconnect' never came left its slot "up" forever. The process is gone: do not
        // wait for the channel longer than a moment.
        if (!disconnected) {
          setTimeout(() => {
            disconnected = true;
            check();
          }, EXIT_GRACE_MS).unref();
        }
      });
      worker.once('disconnect', () => {
        disconnected = true;
        check();
      });
    });
    void slot.gone.then(() => {
      started.reject(new Error(`worker ${slot.id} exited (${code ?? signal ?? 'unknown'}) before it was ready`));
      afterExit(slot, worker, code, signal);
    });
    return ready;
  };

  const afterExit = (slot: Slot, worker: Worker, code: number | null, signal: string | null): void => {
    if (slot.worker !== worker) return;
    forgetAnswers(slot);
    const uptimeMs = Date.now() - slot.forkedMs;
    slot.worker = null;
    slot.pid = null;
    slot.startedMs = null;
    if (stopping || !serving) return; // a stop, or a failed start (startCluster reports that)
    const decision = decideRestart(restartPolicy, slot.consecutive, uptimeMs);
    slot.consecutive = decision.consecutive;
    if (!decision.restart) {
      slot.state = 'abandoned';
      updateStates();
      logger.error({ worker: slot.id, pid: worker.process.pid, code, signal, crashes: decision.consecutive }, 'worker keeps crashing; not started again');
      if (slots.every((s) => s.state === 'abandoned')) failedWith(`every worker crashed ${restartPolicy.maxConsecutive} times in a row`);
      return;
    }
    slot.state = 'restarting';
    updateStates();
    logger.error({ worker: slot.id, pid: worker.process.pid, code, signal, restartInMs: decision.delayMs, crashes: decision.consecutive }, 'worker exited; starting it again');
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (stopping) return;
      slot.restarts++;
      clusterMetrics.workerRestarts.inc();
      fork(slot).then(
        () => logger.info({ worker: slot.id, pid: slot.pid }, 'worker started again'),
        (err: unknown) => logger.error({ worker: slot.id, err: String(err) }, 'worker failed to start again'),
      );
    }, decision.delayMs);
  };

  // ---- stop ---------------------------------------------------------------------------------------------------
  const policyWatch = watchPolicyFiles(config.policy.files, () => void reloadAll('policy file changed'));
  let stopped: Promise<boolean> | null = null;
  const stop = (): Promise<boolean> => {
    stopped ??= (async () => {
      stopping = true;
      policyWatch.close();
      for (const s of slots) {
        if (s.restartTimer !== null) clearTimeout(s.restartTimer);
        s.restartTimer = null;
        if (s.worker === null) continue;
        s.state = 'stopping';
        sendTo(s.worker, { kind: 'stop' });
      }
      updateStates();
      const all = Promise.all(slots.map((s) => s.gone));
      const drained = await Promise.race([all.then(() => true), sleep(config.proxy.drain + stopGraceMs).then(() => false)]);
      if (!drained) {
        const late = slots.filter((s) => s.worker !== null).map((s) => s.id);
        logger.error({ workers: late }, 'workers did not drain in time; killed');
        for (const s of slots) s.worker?.process.kill('SIGKILL');
        await Promise.race([all, sleep(KILL_WAIT_MS)]);
      }
      // close() writes every queued record, in order, then closes (flush() is for a sudden exit).
      await flowLog.close();
      return drained;
    })();
    return stopped;
  };

  // ---- start: the first worker alone, then the rest -------------------------------------------------------------
  try {
    const [first, ...rest] = slots;
    if (first !== undefined) await fork(first);
    await Promise.all(rest.map((s) => fork(s)));
  } catch (err) {
    await stop();
    throw err;
  }
  serving = true;
  if (addresses === null) throw new Error('no worker reported its addresses');
  const { proxy, admin, dns } = addresses;
  logger.info({ workers: slots.length, pids: slots.map((s) => s.pid) }, 'cluster: every worker is up');
  if (config.console.enabled) {
    logger.warn({ workers: slots.length }, 'operator console not served with proxy.workers > 1 (each worker holds its own flows); /v1/coverage, /metrics and the flow log are (docs/console.md)');
  }

  return {
    proxyAddress: proxy,
    adminAddress: admin,
    dnsAddress: dns,
    workers: slots.length,
    reloadPolicy: () => reloadAll('SIGHUP'),
    reopenFlowLog() {
      flowLog.reopen?.();
      logger.info('flow log reopened');
    },
    stop,
    kill() {
      stopping = true;
      policyWatch.close();
      for (const s of slots) s.worker?.process.kill('SIGKILL');
      flowLog.flush();
    },
    failed,
  };
}

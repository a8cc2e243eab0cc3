/**
 * Holds the live policy and reloads it when its files change (STYLE 3): read → validate → compile → swap one
 * reference. A failed reload keeps the last good policy and reports why; flows in progress keep evaluating
 * the policy object they started with, which is never mutated.
 *
 * A reload must never weaken the policy by accident (issue 11): an editor that wrote `version: 1\nrules:` and
 * the rest 0.4 s later once put a valid, EMPTY policy in force, and requests it blocks went through meanwhile.
 * Two guards, each enough for that case:
 * - a file change reloads only once the files have settled: their size, mtime and content hash unchanged, and
 *   no change event, for `settleMs` (500 ms), bounded by `maxSettleMs` (5 s) for a file that never stops changing;
 * - a reload whose policy has no rule left, or no block rule left, while the one in force had some, is refused
 *   (`weakeningReason`): the last good policy stays, unless the reload was asked with `force`
 *   (POST /v1/policy/reload?force=true) or the proxy restarts (start-up accepts any valid policy).
 */
import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { EgressError } from '../errors.js';
import type { CompiledPolicy } from './compile.js';
import { loadPolicy } from './load.js';
import { PolicyIssue } from './parse.js';
import type { RuleAction } from './decision.js';

/** What asked for a reload: a settled file change, SIGHUP, the admin API, the cluster primary, or a direct call. */
export type ReloadTrigger = 'file' | 'signal' | 'api' | 'cluster' | 'manual';

/** `unchanged`: the files hold the bytes already in force (a touch, an editor's backup dance): nothing swapped. */
export type ReloadOutcome = 'success' | 'failure' | 'refused' | 'unchanged';

export interface ReloadOptions {
  readonly trigger?: ReloadTrigger;
  /** Apply a policy that `weakeningReason` would refuse (the operator asked explicitly). */
  readonly force?: boolean;
}

/** One reload attempt, start to end: what the log line and the reload metrics say. */
export interface ReloadReport {
  readonly trigger: ReloadTrigger;
  readonly forced: boolean;
  readonly outcome: ReloadOutcome;
  readonly files: readonly string[];
  /** Rules (and block rules) of the policy in force before the attempt. */
  readonly rulesBefore: number;
  readonly blockRulesBefore: number;
  /** Rules of the files as read; null when they did not compile. */
  readonly rulesAfter: number | null;
  readonly blockRulesAfter: number | null;
  /** SHA-256 of the policy in force after the attempt. */
  readonly sha256: string;
  /** Why a compiled policy was refused (outcome `refused`), else null. */
  readonly reason: string | null;
  /** `file:line:col: message` lines (failure, refused). */
  readonly errors: readonly string[];
  readonly durationMs: number;
}

export type ReloadResult =
  | { readonly ok: true; readonly policy: CompiledPolicy; readonly report: ReloadReport }
  | { readonly ok: false; readonly errors: readonly PolicyIssue[]; readonly refused: boolean; readonly report: ReloadReport };

export interface PolicyStoreOptions {
  readonly files: readonly string[];
  /** A file change reloads once the files were unchanged for this long (default 500 ms). */
  readonly settleMs?: number;
  /** ...or this long after the first change event, settled or not (default 5 s). */
  readonly maxSettleMs?: number;
  /** @deprecated the former name of `settleMs`. */
  readonly debounceMs?: number;
  /** Called after every reload attempt that changed something, failed or was refused (not for the initial load). */
  readonly onReload?: (result: ReloadResult) => void;
  /** Called when a reload attempt starts, and when it ends (every attempt, `unchanged` ones included). */
  readonly onReloadStart?: (start: { readonly trigger: ReloadTrigger; readonly forced: boolean; readonly rulesBefore: number; readonly files: readonly string[] }) => void;
  readonly onReloadEnd?: (report: ReloadReport) => void;
  /**
   * Reload when the files change (default true). A cluster worker passes false: the primary watches the files
   * once and has every worker reload together (src/cluster/primary.ts).
   */
  readonly watch?: boolean;
  /**
   * What this process can carry out, checked on every load after the files compiled: issues refuse the policy
   * (at start: the proxy does not start; on reload: the last good policy stays). E.g. a `bump` rule without an
   * interception CA (src/cli/start.ts): never accept a rule the proxy would silently not apply.
   */
  readonly accept?: (policy: CompiledPolicy) => readonly PolicyIssue[];
}

export interface PolicyStore {
  /** The last good policy. Throws before `start()` has succeeded. */
  current(): CompiledPolicy;
  /** Loads the policy and starts watching; rejects with every error formatted, one per line, when invalid. */
  start(): Promise<void>;
  /**
   * Reloads now (no settle wait: the caller says the files are ready); resolves true when the live policy is
   * good (swapped or unchanged), false when kept (failed or refused).
   */
  reload(options?: ReloadOptions): Promise<boolean>;
  /** The `file:line:col: message` lines of the last failed or refused load (empty once a load succeeds). */
  lastErrors(): readonly string[];
  /** Stops watching. Idempotent. */
  close(): void;
}

export const DEFAULT_SETTLE_MS = 500;
export const DEFAULT_MAX_SETTLE_MS = 5_000;

/** The rule shape the refusal rule reads (a CompiledPolicy's rules). */
interface RuleLike {
  readonly id: string;
  readonly action: RuleAction;
  readonly file: string;
}

const countBlocks = (rules: readonly RuleLike[]): number => rules.reduce((n, rule) => (rule.action === 'block' ? n + 1 : n), 0);

/**
 * Why replacing `before` by `after` looks like an accident rather than an edit, or null when it does not: the
 * new policy has no rule left, or no block rule left, while the one in force had some. With no rule the
 * default verdict is allow (src/policy/evaluate.ts), so such a policy opens everything the old one blocked —
 * exactly what a half-written or truncated file compiles to.
 */
export function weakeningReason(before: { readonly rules: readonly RuleLike[] }, after: { readonly rules: readonly RuleLike[] }): string | null {
  const blocksBefore = countBlocks(before.rules);
  if (before.rules.length > 0 && after.rules.length === 0) {
    return `the new policy has no rules, the one in force has ${before.rules.length} (${blocksBefore} block)`;
  }
  if (blocksBefore > 0 && countBlocks(after.rules) === 0) {
    const ids = before.rules.filter((rule) => rule.action === 'block').map((rule) => rule.id);
    const shown = ids.length > 3 ? `${ids.slice(0, 3).join(', ')} … ${ids.length - 3} more` : ids.join(', ');
    return `the new policy has no block rules, the one in force has ${blocksBefore} (${shown})`;
  }
  return null;
}

/** The refusal as a policy issue, at the first file that held a block rule (else the first file). */
function refusalIssue(before: CompiledPolicy, reason: string): PolicyIssue {
  const file = before.rules.find((rule) => rule.action === 'block')?.file ?? before.files[0] ?? '(policy)';
  return new PolicyIssue(
    { file, line: 1, col: 1 },
    `reload refused: ${reason}; the policy in force stays (a half-written file?). To apply it anyway: POST /v1/policy/reload?force=true, or restart`,
  );
}

export function createPolicyStore(options: PolicyStoreOptions): PolicyStore {
  const settleMs = options.settleMs ?? options.debounceMs ?? DEFAULT_SETTLE_MS;
  const maxSettleMs = Math.max(settleMs, options.maxSettleMs ?? DEFAULT_MAX_SETTLE_MS);
  let live: CompiledPolicy | null = null;
  let watcher: PolicyWatch | null = null;
  let closed = false;
  // Reloads run one at a time; a request during a reload schedules exactly one more after it (forced if any
  // of the requests that were folded into it was).
  let running: Promise<boolean> | null = null;
  let queued: { trigger: ReloadTrigger; force: boolean } | null = null;

  const notify = <T>(callback: ((arg: T) => void) | undefined, arg: T): void => {
    try {
      callback?.(arg);
    } catch {
      // A broken observer must not take the reload machinery (or the process) down with it.
    }
  };

  let lastErrors: readonly string[] = [];

  const load = async (): Promise<Awaited<ReturnType<typeof loadPolicy>>> => {
    const result = await loadPolicy(options.files);
    if (!result.ok || options.accept === undefined) return result;
    const issues = options.accept(result.policy);
    return issues.length === 0 ? result : { ok: false, errors: issues };
  };

  const reloadOnce = async (trigger: ReloadTrigger, force: boolean): Promise<boolean> => {
    const before = live;
    if (before === null) return false; // not started: start() loads
    const startedMs = performance.now();
    const rulesBefore = before.rules.length;
    notify(options.onReloadStart, { trigger, forced: force, rulesBefore, files: options.files });
    const result = await load();
    const base = {
      trigger,
      forced: force,
      files: options.files,
      rulesBefore,
      blockRulesBefore: countBlocks(before.rules),
      rulesAfter: result.ok ? result.policy.rules.length : null,
      blockRulesAfter: result.ok ? countBlocks(result.policy.rules) : null,
    };
    const finish = (outcome: ReloadOutcome, reason: string | null, errors: readonly string[]): ReloadReport => {
      const report: ReloadReport = { ...base, outcome, reason, errors, sha256: (live ?? before).sha256, durationMs: performance.now() - startedMs };
      notify(options.onReloadEnd, report);
      return report;
    };
    if (!result.ok) {
      lastErrors = result.errors.map((issue) => issue.format());
      notify(options.onReload, { ok: false, errors: result.errors, refused: false, report: finish('failure', null, lastErrors) });
      return false;
    }
    // A save that leaves the bytes as they were (touch, editor backup dance) is not a reload.
    if (before.sha256 === result.policy.sha256) {
      lastErrors = [];
      finish('unchanged', null, []);
      return true;
    }
    const reason = force ? null : weakeningReason(before, result.policy);
    if (reason !== null) {
      const issue = refusalIssue(before, reason);
      lastErrors = [issue.format()];
      notify(options.onReload, { ok: false, errors: [issue], refused: true, report: finish('refused', reason, lastErrors) });
      return false;
    }
    lastErrors = [];
    live = result.policy;
    notify(options.onReload, { ok: true, policy: result.policy, report: finish('success', null, []) });
    return true;
  };

  const reload = (opts: ReloadOptions = {}): Promise<boolean> => {
    const trigger = opts.trigger ?? 'manual';
    const force = opts.force === true;
    if (running !== null) {
      queued = { trigger, force: force || queued?.force === true };
      return running;
    }
    const run = (async (): Promise<boolean> => {
      let ok = await reloadOnce(trigger, force);
      while (queued !== null && !closed) {
        const next: { trigger: ReloadTrigger; force: boolean } = queued;
        queued = null;
        ok = await reloadOnce(next.trigger, next.force);
      }
      return ok;
    })();
    running = run.finally(() => {
      running = null;
    });
    return running;
  };

  const onSettled = (): void => {
    reload({ trigger: 'file' }).catch(() => {
      // loadPolicy never rejects; this guards the timer callback against the unforeseen all the same.
    });
  };

  return {
    current() {
      if (live === null) throw new EgressError('POLICY_INVALID', 'the policy store has not been started');
      return live;
    },
    async start() {
      const result = await load();
      if (!result.ok) {
        const code = result.errors.every((issue) => issue.code === 'POLICY_READ') ? 'POLICY_READ' : 'POLICY_INVALID';
        throw new EgressError(code, result.errors.map((issue) => issue.format()).join('\n'));
      }
      live = result.policy;
      if (!closed && watcher === null && options.watch !== false) watcher = watchPolicyFiles(options.files, onSettled, { settleMs, maxSettleMs });
    },
    reload,
    lastErrors: () => lastErrors,
    close() {
      closed = true;
      watcher?.close();
      watcher = null;
    },
  };
}

export interface PolicyWatch {
  /** Stops watching (and drops a pending change). Idempotent. */
  close(): void;
}

export interface SettleOptions {
  readonly settleMs: number;
  readonly maxSettleMs: number;
}

/** The files' state at one moment: size, mtime and SHA-256 of each (or why it could not be read). */
export interface FilesSnapshot {
  readonly takenMs: number;
  readonly signature: string;
}

export interface SettleCheck {
  /** First change event of this burst, and the latest one. */
  readonly firstEventMs: number;
  readonly lastEventMs: number;
  /** The snapshot taken one settle window ago (null: none yet), and the one taken now. */
  readonly previous: FilesSnapshot | null;
  readonly current: FilesSnapshot;
}

export type SettleStep = { readonly reload: true; readonly settled: boolean } | { readonly reload: false; readonly checkInMs: number };

/**
 * Whether the files have settled: the same size, mtime and content at two snapshots at least `settleMs` apart,
 * with no change event after the first of them. Otherwise check again in `settleMs`, unless `maxSettleMs` has
 * passed since the first event: then reload unsettled (a file rewritten every 100 ms forever must still reload;
 * the refusal rule still guards that reload).
 */
export function decideSettle(check: SettleCheck, opts: SettleOptions): SettleStep {
  const { previous, current } = check;
  if (
    previous !== null &&
    previous.signature === current.signature &&
    check.lastEventMs <= previous.takenMs &&
    current.takenMs - previous.takenMs >= opts.settleMs
  ) {
    return { reload: true, settled: true };
  }
  if (current.takenMs - check.firstEventMs >= opts.maxSettleMs) return { reload: true, settled: false };
  return { reload: false, checkInMs: opts.settleMs };
}

/** Reads the files' size, mtime and SHA-256 (async; policy files are small). Never rejects. */
export async function snapshotFiles(files: readonly string[], nowMs: () => number = Date.now): Promise<FilesSnapshot> {
  const takenMs = nowMs();
  const parts = await Promise.all(
    files.map(async (file) => {
      try {
        const [info, bytes] = await Promise.all([stat(file), readFile(file)]);
        return `${info.size}:${info.mtimeMs}:${createHash('sha256').update(bytes).digest('hex')}`;
      } catch (err) {
        return `unreadable:${(err as NodeJS.ErrnoException).code ?? 'error'}`;
      }
    }),
  );
  return { takenMs, signature: parts.join('|') };
}

/**
 * Calls `onChange` once the policy files have settled after a change (`decideSettle`). Watches directories, not
 * files: editors save by writing a temporary file and renaming it over the original, after which a watch on the
 * old inode sees nothing more. Used by the store, and by a cluster primary that reloads every worker. A number
 * for `settle` is the settle window with the default bound.
 */
export function watchPolicyFiles(
  files: readonly string[],
  onChange: (info: { readonly settled: boolean; readonly waitedMs: number }) => void,
  settle: number | Partial<SettleOptions> = {},
): PolicyWatch {
  const settleMs = typeof settle === 'number' ? settle : (settle.settleMs ?? DEFAULT_SETTLE_MS);
  const maxSettleMs = Math.max(settleMs, typeof settle === 'number' ? DEFAULT_MAX_SETTLE_MS : (settle.maxSettleMs ?? DEFAULT_MAX_SETTLE_MS));
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  // The burst in progress: null when no change is pending.
  let burst: { firstEventMs: number; lastEventMs: number; previous: Promise<FilesSnapshot> | null } | null = null;
  const watchers: FSWatcher[] = [];

  const check = async (): Promise<void> => {
    timer = null;
    if (closed || burst === null) return;
    const current = await snapshotFiles(files);
    if (closed || burst === null) return;
    const previous = burst.previous === null ? null : await burst.previous;
    const step = decideSettle({ firstEventMs: burst.firstEventMs, lastEventMs: burst.lastEventMs, previous, current }, { settleMs, maxSettleMs });
    if (!step.reload) {
      burst.previous = Promise.resolve(current);
      timer = setTimeout(() => void check().catch(() => undefined), step.checkInMs);
      return;
    }
    const waitedMs = current.takenMs - burst.firstEventMs;
    burst = null;
    try {
      onChange({ settled: step.settled, waitedMs });
    } catch {
      // a broken observer must not take the process down from a timer
    }
  };

  const changed = (): void => {
    if (closed) return;
    const now = Date.now();
    if (burst !== null) {
      burst.lastEventMs = now;
      return;
    }
    // The first snapshot is taken now, so a quiet file reloads one settle window after the event.
    burst = { firstEventMs: now, lastEventMs: now, previous: snapshotFiles(files) };
    timer = setTimeout(() => void check().catch(() => undefined), settleMs);
  };

  const namesByDir = new Map<string, Set<string>>();
  for (const file of files) {
    const absolute = resolve(file);
    const dir = dirname(absolute);
    const names = namesByDir.get(dir) ?? new Set<string>();
    names.add(basename(absolute));
    namesByDir.set(dir, names);
  }
  for (const [dir, names] of namesByDir) {
    try {
      const watcher = watch(dir, { persistent: false }, (_event, filename) => {
        try {
          // filename can be null on some platforms: then any change in the directory counts.
          if (filename === null || names.has(String(filename))) changed();
        } catch {
          // never throw out of a watcher callback
        }
      });
      watcher.on('error', () => {
        // The directory went away or the watch broke; the last good policy stays in force.
      });
      watchers.push(watcher);
    } catch {
      // An unwatchable directory means no hot reload for those files, not a failed start.
    }
  }
  return {
    close() {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      burst = null;
      for (const watcher of watchers) watcher.close();
      watchers.length = 0;
    },
  };
}

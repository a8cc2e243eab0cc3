/**
 * Holds the live policy and reloads it when its files change (STYLE 3): read → validate → compile → swap one
 * reference. A failed reload keeps the last good policy and reports why; flows in progress keep evaluating
 * the policy object they started with, which is never mutated.
 */
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { EgressError } from '../errors.js';
import type { CompiledPolicy } from './compile.js';
import { loadPolicy } from './load.js';
import type { PolicyIssue } from './parse.js';

export type ReloadResult = { readonly ok: true; readonly policy: CompiledPolicy } | { readonly ok: false; readonly errors: readonly PolicyIssue[] };

export interface PolicyStoreOptions {
  readonly files: readonly string[];
  /** Quiet time after the last change event before reloading; editors write several events per save. */
  readonly debounceMs?: number;
  /** Called after every reload attempt that changed something or failed (not for the initial load). */
  readonly onReload?: (result: ReloadResult) => void;
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
  /** Reloads now; resolves true when the live policy is good (swapped or unchanged), false when kept. */
  reload(): Promise<boolean>;
  /** The `file:line:col: message` lines of the last failed load (empty once a load succeeds). */
  lastErrors(): readonly string[];
  /** Stops watching. Idempotent. */
  close(): void;
}

const DEFAULT_DEBOUNCE_MS = 100;

export function createPolicyStore(options: PolicyStoreOptions): PolicyStore {
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  let live: CompiledPolicy | null = null;
  let watcher: PolicyWatch | null = null;
  let closed = false;
  // Reloads run one at a time; a change during a reload schedules exactly one more after it.
  let running: Promise<boolean> | null = null;
  let rerun = false;

  const report = (result: ReloadResult): void => {
    try {
      options.onReload?.(result);
    } catch {
      // A broken observer must not take the reload machinery (or the process) down with it.
    }
  };

  let lastErrors: readonly string[] = [];

  const load = async (): Promise<ReloadResult> => {
    const result = await loadPolicy(options.files);
    if (!result.ok || options.accept === undefined) return result;
    const issues = options.accept(result.policy);
    return issues.length === 0 ? result : { ok: false, errors: issues };
  };

  const reloadOnce = async (): Promise<boolean> => {
    const result = await load();
    if (!result.ok) {
      lastErrors = result.errors.map((issue) => issue.format());
      report(result);
      return false;
    }
    lastErrors = [];
    // A save that leaves the bytes as they were (touch, editor backup dance) is not a reload.
    if (live !== null && live.sha256 === result.policy.sha256) return true;
    live = result.policy;
    report(result);
    return true;
  };

  const reload = (): Promise<boolean> => {
    if (running !== null) {
      rerun = true;
      return running;
    }
    const run = (async (): Promise<boolean> => {
      let ok = await reloadOnce();
      while (rerun && !closed) {
        rerun = false;
        ok = await reloadOnce();
      }
      return ok;
    })();
    running = run.finally(() => {
      running = null;
    });
    return running;
  };

  const onChange = (): void => {
    reload().catch(() => {
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
      if (!closed && watcher === null && options.watch !== false) watcher = watchPolicyFiles(options.files, onChange, debounceMs);
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

/**
 * Calls `onChange` once the policy files have been quiet for `debounceMs` after a change. Watches directories,
 * not files: editors save by writing a temporary file and renaming it over the original, after which a watch on
 * the old inode sees nothing more. Used by the store, and by a cluster primary that reloads every worker.
 */
export function watchPolicyFiles(files: readonly string[], onChange: () => void, debounceMs = DEFAULT_DEBOUNCE_MS): PolicyWatch {
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const watchers: FSWatcher[] = [];
  const schedule = (): void => {
    if (closed) return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      try {
        onChange();
      } catch {
        // a broken observer must not take the process down from a timer
      }
    }, debounceMs);
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
          if (filename === null || names.has(String(filename))) schedule();
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
      for (const watcher of watchers) watcher.close();
      watchers.length = 0;
    },
  };
}

/**
 * V8 heap sizing for a long-running proxy (issue 9: peak RSS ≤ 150 MB through bench/core.bench.ts, flat in a
 * soak). `egress-inspector start` calls `tuneHeap` before it loads the rest of the program, so the setting holds
 * however the process was started: `npm start`, `node dist/main.js start`, the Docker image (whose CMD is the
 * latter) — there is no flag to forget.
 *
 * What it changes: the old generation's slack. After each full GC V8 lets the old generation grow by a factor
 * of up to 4 — on any machine whose heap limit is ≥ 2 GB, i.e. with ≥ 16 GB of RAM — plus the young
 * generation's capacity before it collects again (v8/src/heap/heap-controller.cc: MaxGrowingFactor,
 * BoundAllocationLimit). The proxy promotes ~5 KB per request under load, so that slack fills with garbage:
 * measured on the 2-core test VM under wrk -c64, the old generation reached 60–75 MB for ~30 MB alive.
 * `--heap-growing-percent=60` makes the factor 1.6 (the limit still grows by at least 8 MB). V8 reads the flag
 * each time it computes a limit, so setting it from JavaScript takes effect (`--trace-gc-verbose` prints the
 * factor: "Limit: … (1.3)"; test/unit/cli/heap.test.ts checks it).
 * Measured in interleaved rounds of wrk -c64 with the default policy (proxy pinned to one core): 30 % cut the
 * peak from 182 to 142 MB but cost ~11 % CPU per request (188 vs 168 µs: more full GCs); 60 % peaks at 144 MB
 * with CPU per request within the noise of V8's default (178–188 vs 177–198 µs); 100 % peaked at 156 MB.
 *
 * What it leaves alone:
 * - The young generation (two semi-spaces of up to 16 MB each on 64-bit Node 20). `--max-semi-space-size` is
 *   read only when V8 creates the heap, before any JavaScript runs, and capping it (at 8 MB per semi-space,
 *   with the command-line flag or from here) cost +6–10 % CPU per request in the same paired runs — over issue
 *   9's 3 % budget for memory. Operators who prefer memory can pass it themselves (NODE_OPTIONS or the command
 *   line).
 * - Anything the operator set: a flag given on the command line or in NODE_OPTIONS wins
 *   (`--heap-growing-percent=0` restores V8's own growing factor).
 * Node's documentation warns that flags changed after start may do nothing in another V8; then the proxy only
 * uses more memory, and the soak (bench/soak.bench.ts) shows it.
 */
import v8 from 'node:v8';

export const HEAP_GROWING_PERCENT = 60;

const GROWING_PERCENT_FLAG = 'heap-growing-percent';
/** `--name`, `--name=value` and `--no-name`, with `-` or `_` between words (V8 accepts both). */
const V8_FLAG = /^--(?:no[-_])?([a-z0-9][a-z0-9_-]*)(?:=.*)?$/i;
const SPACES = /\s+/;

/** Flag names (lower case, `-` between words) given in execArgv or NODE_OPTIONS. */
export function explicitFlags(execArgv: readonly string[], nodeOptions: string | undefined): Set<string> {
  const names = new Set<string>();
  for (const arg of [...execArgv, ...(nodeOptions ?? '').split(SPACES)]) {
    const m = V8_FLAG.exec(arg);
    if (m?.[1] !== undefined) names.add(m[1].toLowerCase().replaceAll('_', '-'));
  }
  return names;
}

export interface HeapPlan {
  /** null: left to V8, or to the operator's own flag. */
  readonly growingPercent: number | null;
}

/** What tuneHeap sets, given the operator's own flags. */
export function planHeap(explicit: ReadonlySet<string>): HeapPlan {
  return { growingPercent: explicit.has(GROWING_PERCENT_FLAG) ? null : HEAP_GROWING_PERCENT };
}

/** Applies the plan to this process and returns it. */
export function tuneHeap(env: { readonly execArgv: readonly string[]; readonly nodeOptions: string | undefined } = { execArgv: process.execArgv, nodeOptions: process.env.NODE_OPTIONS }): HeapPlan {
  const plan = planHeap(explicitFlags(env.execArgv, env.nodeOptions));
  if (plan.growingPercent !== null) v8.setFlagsFromString(`--${GROWING_PERCENT_FLAG}=${plan.growingPercent}`);
  return plan;
}

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
 * Second, the young generation's growth while the program starts (holdYoungGeneration, below): held at its first
 * size until the proxy listens, then V8's own growth again.
 *
 * What it leaves alone:
 * - The young generation's size under load (two semi-spaces of up to 16 MB each on 64-bit Node 20). `--max-semi-space-size` is
 *   read only when V8 creates the heap, before any JavaScript runs, and capping it (at 8 MB per semi-space,
 *   with the command-line flag or from here) cost +6–10 % CPU per request in the same paired runs — over issue
 *   9's 3 % budget for memory. Measured again after the sixth session's allocation cuts (bench/ab.bench.ts, same
 *   build, B with the flag): keep-alive +2.6 % CPU for −14.6 MB of peak RSS, a new-tunnel storm +3.2 % for −5.4 MB.
 *   Operators who prefer memory can pass it themselves (NODE_OPTIONS or the command line).
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
  /** Whether the young generation is held at its first size while the program starts (see holdYoungGeneration). */
  readonly holdYoungAtStart: boolean;
}

/** What tuneHeap sets, given the operator's own flags. */
export function planHeap(explicit: ReadonlySet<string>): HeapPlan {
  return {
    growingPercent: explicit.has(GROWING_PERCENT_FLAG) ? null : HEAP_GROWING_PERCENT,
    holdYoungAtStart: !explicit.has(SEMI_SPACE_GROWTH_FLAG),
  };
}

/**
 * holdYoungGeneration. V8 doubles the young generation (new space) whenever many objects survive a scavenge, up to two 16 MB
 * semi-spaces, and keeps the pages it touched. Start-up is all survivors (modules, policies, metric series,
 * tables), so the new space reached its maximum before the first flow and the proxy sat idle with ~30 MB of it
 * resident — most of the idle RSS that issue 11's start-up work added (117 → 137–142 MB after start; measured
 * with /proc/<pid>/smaps_rollup). Growth factor 1 while the program loads keeps it at its first size; restored to
 * V8's 2 once listening, it grows under load exactly as before. V8 reads the flag at each growth
 * (`SemiSpaceNewSpace::Grow`), so setting it from JavaScript takes effect; measured: idle 137–142 → 114–116 MB.
 */
const SEMI_SPACE_GROWTH_FLAG = 'semi-space-growth-factor';
const SEMI_SPACE_GROWTH_DEFAULT = 2;

/** Applies the plan to this process and returns it, with the function that ends the start-up hold (idempotent). */
export function tuneHeap(
  env: { readonly execArgv: readonly string[]; readonly nodeOptions: string | undefined } = { execArgv: process.execArgv, nodeOptions: process.env.NODE_OPTIONS },
): HeapPlan & { readonly started: () => void } {
  const plan = planHeap(explicitFlags(env.execArgv, env.nodeOptions));
  if (plan.growingPercent !== null) v8.setFlagsFromString(`--${GROWING_PERCENT_FLAG}=${plan.growingPercent}`);
  if (!plan.holdYoungAtStart) return { ...plan, started: () => undefined };
  v8.setFlagsFromString(`--${SEMI_SPACE_GROWTH_FLAG}=1`);
  let held = true;
  return {
    ...plan,
    started: () => {
      if (!held) return;
      held = false;
      v8.setFlagsFromString(`--${SEMI_SPACE_GROWTH_FLAG}=${SEMI_SPACE_GROWTH_DEFAULT}`);
    },
  };
}

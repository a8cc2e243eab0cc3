/**
 * `egress-inspector policy replay --flows FILE... --policy FILE... [--against FILE...] [--examples N] [--json]`:
 * what a candidate policy would have done differently with recorded flows (docs/replay.md).
 *
 * Exit 0 when nothing changes, 3 when something does, 1 on an error (an invalid policy, an unreadable or corrupt
 * input, bad options, or input with no flow record at all). Lines that are not records are counted and reported,
 * never fatal. The result goes to stdout; a progress line to stderr when stderr is a terminal.
 */
import type { Readable } from 'node:stream';
import { loadPolicy, type CompiledPolicy } from '../policy/load.js';
import { replayFlows, type ReplayProgress } from '../replay/replay.js';
import { formatJson, formatProgress, formatText } from '../replay/report.js';

export interface PolicyReplayOptions {
  readonly flows?: readonly string[];
  readonly policy?: readonly string[];
  readonly against?: readonly string[];
  /** Example flows per rule and change (commander hands over the text). Default 3. */
  readonly examples?: string | number;
  readonly json?: boolean;
}

export interface PolicyReplayIo {
  readonly stdin: Readable;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { readonly isTTY?: boolean };
}

export const EXIT_NO_CHANGE = 0;
export const EXIT_ERROR = 1;
export const EXIT_CHANGES = 3;

const DEFAULT_EXAMPLES = 3;
const MAX_EXAMPLES = 1000;
/** Progress redraws at most this often. */
const PROGRESS_MS = 250;

async function compile(files: readonly string[], what: string, io: PolicyReplayIo): Promise<CompiledPolicy | null> {
  const result = await loadPolicy(files);
  if (result.ok) return result.policy;
  for (const issue of result.errors) io.stderr.write(`${issue.format()}\n`);
  io.stderr.write(`policy replay: the ${what} policy is not valid\n`);
  return null;
}

function parseExamples(value: string | number | undefined): number | null {
  if (value === undefined) return DEFAULT_EXAMPLES;
  const n = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : NaN;
  return Number.isInteger(n) && n >= 0 && n <= MAX_EXAMPLES ? n : null;
}

export async function runPolicyReplay(options: PolicyReplayOptions, io: PolicyReplayIo): Promise<number> {
  const flows = options.flows ?? [];
  const policyFiles = options.policy ?? [];
  if (flows.length === 0 || policyFiles.length === 0) {
    io.stderr.write('policy replay: give --flows FILE... and --policy FILE...\n');
    return EXIT_ERROR;
  }
  if (flows.filter((f) => f === '-').length > 1) {
    io.stderr.write('policy replay: "-" (stdin) can be given once\n');
    return EXIT_ERROR;
  }
  const examples = parseExamples(options.examples);
  if (examples === null) {
    io.stderr.write(`policy replay: --examples must be a whole number from 0 to ${MAX_EXAMPLES}\n`);
    return EXIT_ERROR;
  }
  const candidate = await compile(policyFiles, 'candidate (--policy)', io);
  if (candidate === null) return EXIT_ERROR;
  let against: CompiledPolicy | null = null;
  if (options.against !== undefined && options.against.length > 0) {
    against = await compile(options.against, '--against', io);
    if (against === null) return EXIT_ERROR;
  }

  const started = Date.now();
  let drawn = 0;
  let shown = false;
  const onProgress =
    io.stderr.isTTY === true
      ? (progress: ReplayProgress): void => {
          const now = Date.now();
          if (now - drawn < PROGRESS_MS) return;
          drawn = now;
          shown = true;
          io.stderr.write(`\r${formatProgress(progress, now - started)}\u001b[K`);
        }
      : undefined;
  let summary;
  try {
    summary = await replayFlows({ flows, candidate, against, examples, stdin: io.stdin, ...(onProgress === undefined ? {} : { onProgress }) });
  } catch (err) {
    if (shown) io.stderr.write('\n');
    io.stderr.write(`policy replay: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_ERROR;
  }
  if (shown) io.stderr.write('\r\u001b[K');
  io.stdout.write(options.json === true ? formatJson(summary) : formatText(summary));
  if (summary.total === 0 && summary.invalid_lines > 0) {
    io.stderr.write('policy replay: no flow record in the input (every line is invalid)\n');
    return EXIT_ERROR;
  }
  return summary.changed > 0 ? EXIT_CHANGES : EXIT_NO_CHANGE;
}

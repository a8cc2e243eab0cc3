/**
 * `egress-inspector coverage --flows FILE... [--json] [--stale MINUTES] [--managed-window MINUTES]`: attribution
 * coverage of recorded flows — overall, per client address, unmanaged clients, stale telemetry (docs/coverage.md).
 *
 * Exit 0 with a report, 1 on an error (bad options, an unreadable or corrupt input, or input with no flow record
 * at all). Lines that are not records are counted and reported, never fatal.
 */
import type { Readable } from 'node:stream';
import { tallyFlowFiles, type CoverageInputSummary } from '../coverage/read-flows.js';
import { CoverageTally, DEFAULT_MANAGED_WINDOW_MS, DEFAULT_STALE_MS } from '../coverage/tally.js';
import { formatCoverageJson, formatCoverageText } from '../coverage/format.js';

export interface CoverageOptions {
  readonly flows?: readonly string[];
  readonly json?: boolean;
  /** Minutes without a telemetry-attributed flow that make a client's telemetry stale (commander hands text). */
  readonly stale?: string | number;
  /** hints.managed_window in minutes, for reading "managed" from the records. */
  readonly managedWindow?: string | number;
}

export interface CoverageIo {
  readonly stdin: Readable;
  readonly stdout: NodeJS.WritableStream & { readonly isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream;
}

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;

const MINUTES = /^\d+(?:\.\d+)?$/;
/** A week: longer windows are almost certainly a unit mistake. */
const MAX_MINUTES = 7 * 24 * 60;

function parseMinutes(value: string | number | undefined, fallbackMs: number): number | null {
  if (value === undefined) return fallbackMs;
  const n = typeof value === 'number' ? value : MINUTES.test(value) ? Number(value) : NaN;
  return Number.isFinite(n) && n > 0 && n <= MAX_MINUTES ? n * 60_000 : null;
}

export async function runCoverage(options: CoverageOptions, io: CoverageIo): Promise<number> {
  const flows = options.flows ?? [];
  if (flows.length === 0) {
    io.stderr.write('coverage: give --flows FILE... (- for stdin)\n');
    return EXIT_ERROR;
  }
  if (flows.filter((f) => f === '-').length > 1) {
    io.stderr.write('coverage: "-" (stdin) can be given once\n');
    return EXIT_ERROR;
  }
  const staleMs = parseMinutes(options.stale, DEFAULT_STALE_MS);
  const managedWindowMs = parseMinutes(options.managedWindow, DEFAULT_MANAGED_WINDOW_MS);
  if (staleMs === null || managedWindowMs === null) {
    io.stderr.write(`coverage: --stale and --managed-window take minutes, more than 0 and at most ${MAX_MINUTES}\n`);
    return EXIT_ERROR;
  }
  // A log is finite, so no TTL: a client idle for a day of a week-long log is still part of that week's coverage.
  // The client bound still holds memory, and the report says when it cut.
  const tally = new CoverageTally({ clientTtlMs: Infinity });
  let input: CoverageInputSummary;
  try {
    input = await tallyFlowFiles(flows, tally, io.stdin);
  } catch (err) {
    io.stderr.write(`coverage: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_ERROR;
  }
  if (input.records === 0) {
    io.stderr.write(`coverage: no flow record in the input${input.invalid_lines > 0 ? ` (${input.invalid_lines} invalid lines)` : ''}\n`);
    for (const bad of input.invalid_examples) io.stderr.write(`  ${bad.file}:${bad.line}: ${bad.reason}\n`);
    return EXIT_ERROR;
  }
  // Judged as of the last record: "stale" and "managed" mean at the end of the log, not at the time of reading.
  const report = tally.report({ staleMs, managedWindowMs });
  io.stdout.write(options.json === true ? formatCoverageJson(report, input) : formatCoverageText(report, input, io.stdout.isTTY === true));
  return EXIT_OK;
}

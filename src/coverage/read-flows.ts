/**
 * Feeds recorded flow logs into a CoverageTally: files or stdin (`-`), gzip or not (src/replay/read-lines.ts tells
 * them by the magic bytes), streamed a chunk at a time, so memory stays within the tally's bounds whatever the
 * size of the logs. Lines that are not records are counted, with a few examples, never fatal.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { readLines } from '../replay/read-lines.js';
import { readCoverageLine } from './record.js';
import type { CoverageTally } from './tally.js';

export interface SkippedLine {
  readonly file: string;
  readonly line: number;
  readonly reason: string;
}

export interface CoverageInputSummary {
  /** Flow records counted (follow-ups not included). */
  readonly records: number;
  readonly followups: number;
  /** Lines that are not records (not JSON, no @timestamp, …) and lines over the length limit; blank lines are not counted. */
  readonly invalid_lines: number;
  readonly invalid_examples: readonly SkippedLine[];
}

/** Examples of skipped lines kept for the report. */
const MAX_INVALID_EXAMPLES = 5;

/** Reads every file in order into `tally`. Rejects (naming the file) when one cannot be read or decompressed. */
export async function tallyFlowFiles(files: readonly string[], tally: CoverageTally, stdin?: Readable): Promise<CoverageInputSummary> {
  let records = 0;
  let followups = 0;
  let invalid = 0;
  const examples: SkippedLine[] = [];
  const skip = (file: string, line: number, reason: string): void => {
    invalid++;
    if (examples.length < MAX_INVALID_EXAMPLES) examples.push({ file, line, reason });
  };
  for (const file of files) {
    const name = file === '-' ? '(stdin)' : file;
    const input = file === '-' ? stdin : createReadStream(file, { highWaterMark: 1024 * 1024 });
    if (input === undefined) throw new Error('no stdin to read "-" from');
    try {
      await readLines(input, {
        line: (text, lineNo) => {
          const read = readCoverageLine(text);
          if (read.kind === 'flow') {
            records++;
            tally.addFlow(read.eventId, read.sourceIp, read.method, read.hostName, read.atMs);
          } else if (read.kind === 'followup') {
            followups++;
            tally.addFollowUp(read.originalId);
          } else if (read.reason !== 'blank') {
            skip(name, lineNo, read.reason);
          }
        },
        overlong: (lineNo, bytes) => skip(name, lineNo, `line of ${bytes} bytes is over the length limit`),
      });
    } catch (err) {
      throw new Error(`${name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
  return { records, followups, invalid_lines: invalid, invalid_examples: examples };
}

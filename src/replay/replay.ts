/**
 * `policy replay`: re-decide recorded flow records under a candidate policy and count what changes against the
 * policy that was in force — the decisions the records show — or against other policy files (docs/replay.md).
 *
 * Per record: read the facts back (scan-record.ts: catalogue fields only, typed, old names accepted; every stage
 * over, so a field the record lacks is absent, never pending), decide them (outcome.ts: the public evaluator plus
 * the pipeline's internal-destination default), compare (diff.ts), count (tally.ts). Streaming, one pass, memory
 * bounded by the policies. What a record's facts give is kept in a bounded cache keyed on exactly those facts
 * (decision-cache.ts): the same tuple of values is decided and compared once.
 */
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { FieldName } from '../flow/fields.js';
import type { CompiledPolicy } from '../policy/load.js';
import { DecisionCache, hashSlots, type DecisionCacheStats, type Replayed } from './decision-cache.js';
import { diffOutcomes } from './diff.js';
import { createDecider, recordedOutcome, skipReason, type Decider, type Outcome, type RecordedDecision } from './outcome.js';
import { readFileLines, readLines, type LineHandler } from './read-lines.js';
import { buildRecordShape } from './record-fields.js';
import { RecordScanner } from './scan-record.js';
import { exampleOf, ReplayTally, type ReplaySummary } from './tally.js';

export interface ReplayerOptions {
  readonly candidate: CompiledPolicy;
  /** The policy to compare with; null: the decisions recorded in the records. */
  readonly against: CompiledPolicy | null;
  /** Example flows kept per (rule, change). */
  readonly examples: number;
  /** Keep what each tuple of facts gives (decision-cache.ts); default true. false: decide every record (tests, bench). */
  readonly decisionCache?: boolean;
}

/** Every field a policy can read: the union the compiler keeps, and each rule's own (rules kept apart included). */
function policyFields(policy: CompiledPolicy): Set<FieldName> {
  const fields = new Set<FieldName>(policy.fields);
  for (const rule of policy.rules) for (const field of rule.fields) fields.add(field);
  return fields;
}

const NO_DECISION: Replayed = { skip: 'no_decision' };
const UNDECIDED: Replayed = { skip: 'undecided' };

/** Replays lines one by one (synchronous); `summary()` at the end. */
export class Replayer {
  readonly tally: ReplayTally;
  private readonly scanner: RecordScanner;
  private readonly candidate: Decider;
  private readonly against: Decider | null;
  private readonly decision: RecordedDecision & Record<string, unknown>;
  private readonly cache: DecisionCache | null;

  constructor(options: ReplayerOptions) {
    const fields = policyFields(options.candidate);
    if (options.against !== null) for (const field of policyFields(options.against)) fields.add(field);
    // The pipeline's internal-destination default reads it whatever the rules say.
    fields.add('egress.destination.internal');
    this.scanner = new RecordScanner(buildRecordShape(fields));
    this.candidate = createDecider(options.candidate);
    this.against = options.against === null ? null : createDecider(options.against);
    this.tally = new ReplayTally(Math.max(0, Math.floor(options.examples)));
    this.cache = options.decisionCache === false ? null : new DecisionCache();
    const scanner = this.scanner;
    const slot = scanner.shape.decision;
    // Getters over the scanner's slots: one object for the whole run, read for the current record.
    this.decision = {
      get action() { return scanner.value(slot['event.action']); },
      get kind() { return scanner.value(slot['event.kind']); },
      get severity() { return scanner.value(slot['event.severity']); },
      get ruleId() { return scanner.value(slot['rule.id']); },
      get tags() { return scanner.value(slot.tags); },
      get rules() { return scanner.value(slot['egress.rules']); },
      get followupOf() { return scanner.value(slot['egress.followup_of']); },
      get pendingRule() { return scanner.value(slot['egress.pending_rule']); },
    };
  }

  /** Lines read by the selective scanner and by JSON.parse (the fallback). */
  get scanStats(): { readonly fast: number; readonly slow: number } {
    return { fast: this.scanner.fastLines, slow: this.scanner.slowLines };
  }

  /** Reads a line into the slots and decides nothing (bench/replay.bench.ts: the scan's share of a record). */
  scanOnly(text: string): boolean {
    return this.scanner.read(text) === null;
  }

  /** The decision cache's counts; null when it is off. */
  get cacheStats(): DecisionCacheStats | null {
    return this.cache?.stats ?? null;
  }

  line(text: string, file: string, lineNo: number): void {
    // Blank lines (a trailing newline, `\r\n` endings) are not records and not errors.
    if (text.length === 0 || (text.length === 1 && text.charCodeAt(0) === 13)) return;
    const problem = this.scanner.read(text);
    if (problem !== null) {
      if (text.trim() === '') return;
      this.tally.addInvalid(file, lineNo, problem);
      return;
    }
    const tally = this.tally;
    tally.total++;
    const skip = skipReason(this.decision);
    if (skip !== null) {
      tally.skipped[skip]++;
      return;
    }
    let replayed: Replayed | undefined;
    const cache = this.cache;
    if (cache !== null && cache.isActive()) {
      const values = this.scanner.slotValues();
      const hash = hashSlots(values);
      replayed = cache.get(hash, values);
      if (replayed === undefined) {
        replayed = this.decide();
        cache.set(hash, values, replayed);
      }
    } else {
      replayed = this.decide();
    }
    if (replayed.skip !== null) {
      tally.skipped[replayed.skip]++;
      return;
    }
    if (replayed.changes.length === 0) return;
    const { before, after } = replayed;
    tally.addChanges(replayed.changes, () => exampleOf(text, `${file}:${lineNo}`, before, after));
  }

  /** Both outcomes of the record read last, and what changes: a function of the slots' values alone. */
  private decide(): Replayed {
    let before: Outcome | null;
    if (this.against === null) {
      before = recordedOutcome(this.decision);
      if (before === null) return NO_DECISION;
    } else {
      before = this.against.decide(this.scanner.facts);
    }
    const after = this.candidate.decide(this.scanner.facts);
    if (before === null || after === null) return UNDECIDED;
    return { skip: null, before, after, changes: diffOutcomes(before, after, this.against?.policy ?? null, this.candidate.policy) };
  }

  overlong(file: string, lineNo: number, bytes: number): void {
    this.tally.addInvalid(file, lineNo, `line longer than the limit (${bytes} bytes), skipped`);
  }

  summary(): ReplaySummary {
    return this.tally.summary(this.against === null ? 'recorded' : 'against', this.scanner.rejected);
  }
}

export interface ReplayProgress {
  /** Raw bytes read so far (compressed bytes for gzip files). */
  readonly bytes: number;
  /** Sum of the input files' sizes; null when stdin is read. */
  readonly totalBytes: number | null;
  readonly records: number;
}

export interface ReplayInput {
  /** Paths; `-` is `stdin`. */
  readonly flows: readonly string[];
  readonly stdin?: Readable;
  readonly onProgress?: (progress: ReplayProgress) => void;
}

/** Records between two progress checks (a clock read per record would cost more than the check saves). */
const PROGRESS_EVERY = 8192;

/** Replays every input in order. Rejects (with the file named) when an input cannot be read or decompressed. */
export async function replayFlows(options: ReplayerOptions & ReplayInput): Promise<ReplaySummary> {
  const replayer = new Replayer(options);
  let totalBytes: number | null = 0;
  for (const file of options.flows) {
    if (file === '-') totalBytes = null;
    else if (totalBytes !== null) totalBytes += (await stat(file)).size;
  }
  let bytes = 0;
  let sinceProgress = 0;
  const report = options.onProgress;
  for (const file of options.flows) {
    const name = file === '-' ? '(stdin)' : file;
    const handler: LineHandler = {
      line: (text, lineNo) => {
        replayer.line(text, name, lineNo);
        if (report !== undefined && ++sinceProgress >= PROGRESS_EVERY) {
          sinceProgress = 0;
          report({ bytes, totalBytes, records: replayer.tally.total });
        }
      },
      overlong: (lineNo, n) => replayer.overlong(name, lineNo, n),
    };
    const counted = { onBytes: (n: number) => (bytes += n) };
    try {
      if (file !== '-') await readFileLines(file, handler, counted);
      else if (options.stdin === undefined) throw new Error('no stdin to read "-" from');
      else await readLines(options.stdin, handler, counted);
    } catch (err) {
      throw new Error(`${name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
  report?.({ bytes, totalBytes, records: replayer.tally.total });
  return replayer.summary();
}

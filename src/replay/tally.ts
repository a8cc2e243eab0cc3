/**
 * The running result of a replay, in memory bounded by the policies, not by the input: a count per (rule, change)
 * with at most `examples` example flows each, counts of skipped records, and the first few lines that were not
 * records. Millions of records add counts, never entries.
 */
import { readRecordField } from '../observe/read-record.js';
import { CHANGE_KINDS, type Change, type ChangeKind } from './diff.js';
import { SKIP_REASONS, type Outcome, type SkipReason } from './outcome.js';

/** One example flow of a change, as shown to the operator: who, what process, where, and what changed. */
export interface ReplayExample {
  readonly '@timestamp': string | null;
  /** `ip:port` of the client. */
  readonly source: string | null;
  readonly process: string | null;
  /** `domain:port` (or `ip:port`), with the IP in brackets when both are known. */
  readonly destination: string | null;
  readonly url: string | null;
  readonly sni: string | null;
  readonly dns: string | null;
  readonly before: { readonly action: string; readonly rule: string | null };
  readonly after: { readonly action: string; readonly rule: string | null };
  /** `file:line` of the record. */
  readonly at: string;
}

export interface ReplayChange {
  readonly rule: string;
  readonly change: ChangeKind;
  readonly count: number;
  readonly examples: readonly ReplayExample[];
}

export interface InvalidLine {
  readonly file: string;
  readonly line: number;
  readonly reason: string;
}

export interface ReplaySummary {
  /** Records read (lines that are JSON objects), skipped ones included. */
  readonly total: number;
  /** Records whose outcome changes. */
  readonly changed: number;
  readonly changes: readonly ReplayChange[];
  /** Records compared (total minus skipped). */
  readonly replayed: number;
  readonly skipped: Readonly<Record<SkipReason, number>>;
  /** Lines that are not records (blank lines are not counted). */
  readonly invalid_lines: number;
  readonly invalid_examples: readonly InvalidLine[];
  /** Values that did not fit the field catalogue's type, by field (treated as absent). */
  readonly rejected_values: Readonly<Record<string, number>>;
  /** `recorded` (the decisions in the records) or `against` (the --against policy). */
  readonly baseline: 'recorded' | 'against';
}

/** Distinct (rule, change) entries kept; more (a recorded baseline naming endless rule ids) fold into `<other>`. */
const MAX_ENTRIES = 10_000;
const OTHER_RULE = '<other>';
const MAX_INVALID_EXAMPLES = 5;

interface Entry {
  readonly rule: string;
  readonly change: ChangeKind;
  count: number;
  readonly examples: ReplayExample[];
}

export class ReplayTally {
  total = 0;
  changed = 0;
  invalid = 0;
  readonly invalidExamples: InvalidLine[] = [];
  readonly skipped: Record<SkipReason, number> = Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>;
  private readonly entries = new Map<string, Entry>();
  private readonly examples: number;

  constructor(examples: number) {
    this.examples = examples;
  }

  addInvalid(file: string, line: number, reason: string): void {
    this.invalid++;
    if (this.invalidExamples.length < MAX_INVALID_EXAMPLES) this.invalidExamples.push({ file, line, reason });
  }

  /** Counts a record's changes; `example` is called only while one of them still wants examples. */
  addChanges(changes: readonly Change[], example: () => ReplayExample): void {
    if (changes.length === 0) return;
    this.changed++;
    let made: ReplayExample | null = null;
    for (const { rule, change } of changes) {
      const key = `${change}\u0000${rule}`;
      let entry = this.entries.get(key);
      if (entry === undefined) {
        const full = this.entries.size >= MAX_ENTRIES;
        const slot = full ? `${change}\u0000${OTHER_RULE}` : key;
        entry = this.entries.get(slot);
        if (entry === undefined) {
          entry = { rule: full ? OTHER_RULE : rule, change, count: 0, examples: [] };
          this.entries.set(slot, entry);
        }
      }
      entry.count++;
      if (entry.examples.length < this.examples) entry.examples.push((made ??= example()));
    }
  }

  summary(baseline: 'recorded' | 'against', rejected: ReadonlyMap<string, number>): ReplaySummary {
    const order = (c: ChangeKind): number => CHANGE_KINDS.indexOf(c);
    const changes = [...this.entries.values()]
      .sort((a, b) => order(a.change) - order(b.change) || b.count - a.count || (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0))
      .map(({ rule, change, count, examples }) => ({ rule, change, count, examples }));
    const skippedTotal = SKIP_REASONS.reduce((sum, r) => sum + this.skipped[r], 0);
    return {
      total: this.total,
      changed: this.changed,
      changes,
      replayed: this.total - skippedTotal,
      skipped: { ...this.skipped },
      invalid_lines: this.invalid,
      invalid_examples: [...this.invalidExamples],
      rejected_values: Object.fromEntries([...rejected].sort(([a], [b]) => (a < b ? -1 : 1))),
      baseline,
    };
  }
}

// ---- examples --------------------------------------------------------------------------------------------

/** A field of the record, nested or flattened (an export may write the whole path as one key). */
const at = readRecordField;

function text(value: unknown): string | null {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : null;
}

function hostPort(host: string | null, port: string | null): string | null {
  if (host === null) return null;
  const bracketed = host.includes(':') ? `[${host}]` : host;
  return port === null ? bracketed : `${bracketed}:${port}`;
}

/** An example from the record's line (parsed again: only for the first few records of each change). */
export function exampleOf(line: string, where: string, before: Outcome, after: Outcome): ReplayExample {
  let record: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) record = parsed as Record<string, unknown>;
  } catch {
    // The scanner accepted it, so this cannot happen; an empty example is still an example.
  }
  const domain = text(at(record, 'destination.domain'));
  const ip = text(at(record, 'destination.ip'));
  const port = text(at(record, 'destination.port'));
  let destination = hostPort(domain ?? ip, port);
  if (destination !== null && domain !== null && ip !== null) destination += ` (${ip})`;
  return {
    '@timestamp': text(record['@timestamp']),
    source: hostPort(text(at(record, 'source.ip')), text(at(record, 'source.port'))),
    process: text(at(record, 'process.name')) ?? text(at(record, 'process.executable')),
    destination,
    url: text(at(record, 'url.full')) ?? text(at(record, 'url.original')),
    sni: text(at(record, 'tls.client.server_name')),
    dns: text(at(record, 'dns.question.name')),
    before: { action: before.verdict, rule: before.ruleId },
    after: { action: after.verdict, rule: after.ruleId },
    at: where,
  };
}

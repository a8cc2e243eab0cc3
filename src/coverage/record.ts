/**
 * The few facts coverage needs from one flow-log line (docs/flow-record.md): who (`source.ip`, `host.name`), when
 * (`@timestamp`), how it was attributed (`egress.attribution`), and for a follow-up record which flow it
 * completes (`egress.followup_of`).
 *
 * Records are nested ECS JSON ({"source":{"ip":…}}); flattened exports with dotted keys ({"source.ip": …}) are
 * read too, as `policy replay` reads them. The line is untrusted input: `readCoverageLine` is pure and never
 * throws — every line gives facts or a reason it was skipped.
 */
import { readRecordField } from '../observe/read-record.js';
import type { AttributionMethod } from './tally.js';

export type CoverageLine =
  | {
      readonly kind: 'flow';
      readonly eventId: string | undefined;
      readonly sourceIp: string | undefined;
      readonly method: AttributionMethod;
      readonly hostName: string | undefined;
      readonly atMs: number;
    }
  | { readonly kind: 'followup'; readonly originalId: string }
  | { readonly kind: 'invalid'; readonly reason: string };

const METHODS: ReadonlySet<string> = new Set<AttributionMethod>(['telemetry', 'header', 'none']);

function text(record: Record<string, unknown>, dotted: string): string | undefined | null {
  const value = readRecordField(record, dotted);
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : null;
}

/** Reads one line of a flow log. A blank line is `invalid` with reason 'blank' (callers may ignore those). */
export function readCoverageLine(line: string): CoverageLine {
  if (line.trim() === '') return { kind: 'invalid', reason: 'blank' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    return { kind: 'invalid', reason: `not JSON (${err instanceof Error ? err.message : String(err)})` };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { kind: 'invalid', reason: 'not a JSON object' };
  const record = parsed as Record<string, unknown>;

  const followUpOf = text(record, 'egress.followup_of');
  if (followUpOf === null || followUpOf === '') return { kind: 'invalid', reason: 'egress.followup_of is not a non-empty string' };
  if (followUpOf !== undefined) return { kind: 'followup', originalId: followUpOf };

  const timestamp = text(record, '@timestamp');
  if (typeof timestamp !== 'string') return { kind: 'invalid', reason: 'no @timestamp string' };
  const atMs = Date.parse(timestamp);
  if (!Number.isFinite(atMs)) return { kind: 'invalid', reason: `@timestamp is not a date: ${timestamp.slice(0, 40)}` };

  const attribution = text(record, 'egress.attribution');
  if (attribution === null || (attribution !== undefined && !METHODS.has(attribution))) {
    return { kind: 'invalid', reason: 'egress.attribution is not telemetry, header or none' };
  }
  const sourceIp = text(record, 'source.ip');
  if (sourceIp === null) return { kind: 'invalid', reason: 'source.ip is not a string' };
  const hostName = text(record, 'host.name');
  const eventId = text(record, 'event.id');
  return {
    kind: 'flow',
    eventId: typeof eventId === 'string' && eventId !== '' ? eventId : undefined,
    sourceIp,
    // Records written before the policy ran (bad request, client denied) may carry no attribution: none.
    method: (attribution ?? 'none') as AttributionMethod,
    hostName: typeof hostName === 'string' ? hostName : undefined,
    atMs,
  };
}

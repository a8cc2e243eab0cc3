import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readCoverageLine } from '../../../src/coverage/record.js';

describe('readCoverageLine', () => {
  it('reads a nested record', () => {
    const line = JSON.stringify({ '@timestamp': '2026-03-02T10:00:00.000Z', event: { id: 'e1' }, source: { ip: '10.0.0.5' }, host: { name: 'ws5' }, egress: { attribution: 'telemetry' } });
    expect(readCoverageLine(line)).toEqual({ kind: 'flow', eventId: 'e1', sourceIp: '10.0.0.5', method: 'telemetry', hostName: 'ws5', atMs: Date.parse('2026-03-02T10:00:00.000Z') });
  });

  it('reads flattened dotted keys', () => {
    const line = JSON.stringify({ '@timestamp': '2026-03-02T10:00:00Z', 'source.ip': '10.0.0.5', 'egress.attribution': 'header' });
    expect(readCoverageLine(line)).toMatchObject({ kind: 'flow', sourceIp: '10.0.0.5', method: 'header' });
  });

  it('a record without egress.attribution counts as none', () => {
    expect(readCoverageLine('{"@timestamp":"2026-03-02T10:00:00Z","source":{"ip":"10.0.0.5"}}')).toMatchObject({ kind: 'flow', method: 'none' });
  });

  it('a follow-up names the flow it completes', () => {
    expect(readCoverageLine('{"@timestamp":"2026-03-02T10:00:00Z","egress":{"followup_of":"e1","attribution":"telemetry"}}')).toEqual({ kind: 'followup', originalId: 'e1' });
  });

  it.each([
    ['', 'blank'],
    ['not json', /not JSON/],
    ['[1,2]', 'not a JSON object'],
    ['{"source":{"ip":"10.0.0.5"}}', 'no @timestamp string'],
    ['{"@timestamp":"yesterday"}', /not a date/],
    ['{"@timestamp":"2026-03-02T10:00:00Z","egress":{"attribution":"magic"}}', /egress.attribution/],
    ['{"@timestamp":"2026-03-02T10:00:00Z","source":{"ip":5}}', /source.ip/],
    ['{"@timestamp":"2026-03-02T10:00:00Z","egress":{"followup_of":7}}', /followup_of/],
  ])('%s is skipped with a reason', (line, reason) => {
    const read = readCoverageLine(line);
    expect(read.kind).toBe('invalid');
    if (read.kind === 'invalid') expect(read.reason).toMatch(reason);
  });

  it('never throws on arbitrary text or JSON (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify({ '@timestamp': '2026-03-02T10:00:00Z', source: v, egress: v, event: v }))), (line) => {
        const read = readCoverageLine(line);
        expect(['flow', 'followup', 'invalid']).toContain(read.kind);
        if (read.kind === 'flow') expect(Number.isFinite(read.atMs)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('__proto__ keys do not reach any prototype', () => {
    const read = readCoverageLine('{"@timestamp":"2026-03-02T10:00:00Z","__proto__":{"polluted":1},"source":{"__proto__":{"ip":"1.2.3.4"}}}');
    expect(read).toMatchObject({ kind: 'flow', sourceIp: undefined });
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

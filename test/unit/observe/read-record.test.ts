import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readRecordField } from '../../../src/observe/read-record.js';
import { consoleFlowFromRecord } from '../../../src/console/recent.js';

describe('readRecordField', () => {
  it('reads nested and flattened fields, own properties only', () => {
    const record = JSON.parse('{"destination":{"port":443,"domain":"evil.example"},"source.ip":"10.0.0.5","__proto__":{"x":1}}') as Record<string, unknown>;
    expect(readRecordField(record, 'destination.port')).toBe(443);
    expect(readRecordField(record, 'source.ip')).toBe('10.0.0.5');
    expect(readRecordField(record, 'destination.ip')).toBeUndefined();
    expect(readRecordField(record, 'constructor')).toBeUndefined();
    expect(readRecordField(record, 'destination.port.value')).toBeUndefined();
    expect(readRecordField(record, '__proto__.x')).toBe(1);
  });
});

describe('consoleFlowFromRecord (follow-up records read back for the console)', () => {
  it('reads a follow-up record', () => {
    const line = JSON.stringify({
      event: { id: '3f0c9a1e-1b2c-4d5e-8f90-a1b2c3d4e5f6', action: 'allow', severity: 3 },
      source: { ip: '10.0.0.5' },
      destination: { ip: '203.0.113.9', port: 8443 },
      process: { name: 'rundll32.exe' },
      rule: { id: 'lolbin-external' },
      tags: ['attack.t1218'],
      egress: { followup_of: '11111111-2222-4333-8444-555555555555', rules: ['lolbin-external'], shadow: [{ rule: 'watch', action: 'block' }, null], score: 80, attribution: 'telemetry' },
    });
    expect(consoleFlowFromRecord(JSON.parse(line), line, 5)).toMatchObject({
      action: 'allow', severity: 'high', destination: '203.0.113.9:8443', process: 'rundll32.exe', rules: ['lolbin-external', 'watch'],
      followupOf: '11111111-2222-4333-8444-555555555555', attribution: 'telemetry', score: 80, timeMs: 5,
    });
  });

  it('never throws on any JSON value, and needs an event.id', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const flow = consoleFlowFromRecord(value, JSON.stringify(value), 0);
        if (flow !== null) expect(typeof flow.id).toBe('string');
      }),
      { numRuns: 500 },
    );
    expect(consoleFlowFromRecord({ event: {} }, '{}', 0)).toBeNull();
  });
});

/**
 * Property tests for the hints ingest path: whatever arrives — random JSON, huge numbers, deep nesting, wrong
 * types, random bytes — every event gets a result (accepted or a code + reason), counts add up, and nothing
 * throws (mitmproxy's test_tls_fuzz.py in spirit).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../../src/errors.js';
import { normalizeHintEvent } from '../../../src/enrich/hint-event.js';
import { ingestHints, type IngestResult } from '../../../src/enrich/hint-ingest.js';
import { createMemoryHintStore } from '../../../src/enrich/hint-store.js';

const NOW = Date.UTC(2024, 4, 1, 10, 0, 0);
const store = createMemoryHintStore({ now: () => NOW, maxEntries: 10_000 });

function run(body: Buffer | string, contentType?: string): IngestResult {
  let r: IngestResult | Promise<IngestResult>;
  try {
    r = ingestHints(body, contentType, store, NOW, { maxItems: 1_000, maxErrors: 50 });
  } catch (err) {
    throw new Error(`ingestHints threw: ${String(err)}`, { cause: err });
  }
  if (r instanceof Promise) throw new Error('memory store must answer synchronously');
  expect(r.accepted).toBeGreaterThanOrEqual(0);
  expect(r.rejected).toBe(r.errors.length + r.errorsOmitted);
  for (const e of r.errors) {
    expect(Object.keys(ERROR_CODES)).toContain(e.code);
    expect(e.reason.length).toBeGreaterThan(0);
    expect(e.reason.length).toBeLessThan(400);
  }
  return r;
}

/** Field values a hostile or buggy shipper might send. */
const weird = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom('-', '', '<unknown process>', '__proto__', '9'.repeat(400), '1e400', 'NaN', '-1', '0x10', '65536'),
  fc.constantFrom(Number.MAX_VALUE, -0, 2 ** 53, 1e21, -1),
  fc.string({ maxLength: 50 }),
);

const SYSMON_KEYS = ['EventID', 'UtcTime', 'Computer', 'ProcessGuid', 'ProcessId', 'Image', 'User', 'SourceIp', 'SourcePort', 'DestinationIp', 'DestinationPort', 'QueryName', 'QueryResults', 'Hashes', 'CommandLine', 'Initiated', 'Protocol'] as const;

const sysmonLike = fc.record(
  Object.fromEntries(SYSMON_KEYS.map((k) => [k, weird])) as Record<(typeof SYSMON_KEYS)[number], fc.Arbitrary<unknown>>,
  { requiredKeys: [] },
);

const winlogbeatLike = fc.record({
  '@timestamp': weird,
  winlog: fc.oneof(weird, fc.record({ event_id: fc.oneof(fc.constantFrom('1', '3', '22', 3), weird), event_data: fc.oneof(sysmonLike, weird) }, { requiredKeys: [] })),
  process: fc.oneof(weird, fc.record({ pid: weird, executable: weird, entity_id: weird, hash: weird }, { requiredKeys: [] })),
  source: fc.oneof(weird, fc.record({ ip: weird, port: weird }, { requiredKeys: [] })),
  'source.ip': weird,
  user: weird,
});

function nested(depth: number): unknown {
  let v: unknown = { EventID: 3 };
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { x: v };
  return v;
}

describe('hint ingest never throws and always explains', () => {
  it('random JSON values, one per NDJSON line', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { maxLength: 20 }), (values) => {
        const r = run(values.map((v) => JSON.stringify(v)).join('\n'), 'application/x-ndjson');
        // The body is sniffed: a leading array is the JSON-array form (a whole-body failure when more lines follow).
        const [first] = values;
        const expected = Array.isArray(first) ? (values.length === 1 ? first.length : 1) : values.length;
        expect(r.accepted + r.rejected).toBe(expected);
        expect(r.accepted).toBe(0); // random JSON is never a Sysmon event with a valid time and source
      }),
      { numRuns: 300 },
    );
  });

  it('Sysmon-shaped and Winlogbeat-shaped events with wrong types, huge numbers and odd strings', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(sysmonLike, winlogbeatLike), { minLength: 1, maxLength: 10 }), (events) => {
        const r = run(JSON.stringify(events), 'application/json');
        expect(r.accepted + r.rejected).toBe(events.length);
        for (const e of events) {
          const n = normalizeHintEvent(e, { nowMs: NOW });
          if (n.ok) {
            expect([1, 3, 22]).toContain(n.event.eventId);
            expect(Number.isFinite(n.event.timeMs)).toBe(true);
            if (n.event.kind === 'network') expect(n.event.sourcePort).toBeLessThanOrEqual(65_535);
            if (n.event.pid !== null) expect(Number.isSafeInteger(n.event.pid)).toBe(true);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes, as a body with and without a JSON content type', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.constantFrom(undefined, 'application/json', 'application/x-ndjson'), (bytes, ct) => {
        run(Buffer.from(bytes), ct);
      }),
      { numRuns: 500 },
    );
  });

  it('random text with newlines, braces and brackets', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('{', '}', '[', ']', '"', ':', ',', '\n', '\r', ' ', 'EventID', '3', '1e999', '-'), { maxLength: 60 }), (parts) => {
        run(parts.join(''));
      }),
      { numRuns: 500 },
    );
  });

  it('deep nesting is rejected with a reason, not a stack overflow', () => {
    // Built as text: JSON.stringify itself would overflow on 100,000 levels.
    const deepObject = `{"EventID":3,"UtcTime":"2024-05-01 10:00:00","SourceIp":"10.0.0.1","SourcePort":1,"extra":${'{"x":'.repeat(5_000)}1${'}'.repeat(5_000)}}`;
    const deepArray = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const r = run(`${deepObject}\n${deepArray}\n${JSON.stringify(nested(40))}`);
    expect(r.rejected).toBe(3);
    expect(r.errors[0]?.reason).toMatch(/nested deeper than 16 levels/);
    expect(r.errors[1]?.reason).toMatch(/expected a JSON object, got an array|not valid JSON/);
    expect(r.errors[2]?.reason).toMatch(/expected a JSON object|nested deeper/);
  });

  it('huge numbers in every numeric field are rejected with the field named', () => {
    for (const field of ['ProcessId', 'SourcePort', 'DestinationPort', 'EventID']) {
      const raw = { EventID: 3, UtcTime: '2024-05-01 10:00:00', SourceIp: '10.0.0.1', SourcePort: 1, [field]: 1e308 };
      const n = normalizeHintEvent(raw);
      expect(n.ok).toBe(false);
      if (!n.ok) expect(n.reason.startsWith(`${field}:`)).toBe(true);
    }
  });
});

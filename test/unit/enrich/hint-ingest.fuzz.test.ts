/**
 * Property tests for the hints ingest path: whatever arrives — random JSON, huge numbers, deep nesting, wrong
 * types, random bytes — every event gets a result (accepted or a code + reason), counts add up, and nothing
 * throws (mitmproxy's test_tls_fuzz.py in spirit).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../../src/errors.js';
import { normalizeHintEvent } from '../../../src/enrich/hint-event.js';
import { bodyFailure, firstInvalidUtf8, ingestHints, MAX_LINE_BYTES, parseHintBody, type IngestResult } from '../../../src/enrich/hint-ingest.js';
import { BodyCollector } from '../../../src/listeners/hints-api.js';
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
        // A body with no JSON object to read (only scalars, or an array of them) fails as a whole: one rejection.
        const isObj = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v);
        const [first] = values;
        let expected: number;
        if (Array.isArray(first)) expected = values.length === 1 && (first.length === 0 || first.some(isObj)) ? first.length : 1;
        else expected = values.length === 0 || values.some(isObj) ? values.length : 1;
        expect(r.accepted + r.rejected).toBe(expected);
        if (expected === 1 && r.errors[0]?.index === -1) expect(r.errors[0].code).toBe('HINT_PARSE');
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

/** Split `bytes` at the given cut points (sorted, deduplicated, clamped). */
function chunked(bytes: Uint8Array, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of [...at, bytes.length]) {
    out.push(Buffer.from(bytes.subarray(from, c)));
    from = c;
  }
  return out;
}

const fatal = new TextDecoder('utf-8', { fatal: true });

describe('hint bodies: malformed input gives a clear whole-body or per-line reason, never a throw or a hang', () => {
  it('firstInvalidUtf8 agrees with a strict decoder, and the bytes before the offset are well-formed', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.array(fc.oneof(fc.string({ unit: 'binary', maxLength: 4 }).map((t) => [...Buffer.from(t)]), fc.constantFrom([0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x80], [0xff], [0xf0, 0x9f, 0x98])), { maxLength: 12 }).map((parts) => Uint8Array.from(parts.flat())),
    );
    fc.assert(
      fc.property(bytes, (b) => {
        const buf = Buffer.from(b);
        let valid = true;
        try {
          fatal.decode(buf);
        } catch {
          valid = false;
        }
        const bad = firstInvalidUtf8(buf, 0, buf.length);
        expect(bad < 0).toBe(valid);
        if (bad >= 0) expect(() => fatal.decode(buf.subarray(0, bad))).not.toThrow();
      }),
      { numRuns: 2_000 },
    );
  });

  it('any chunking of a body collects the same bytes and parses the same; the limit holds whatever the chunks', () => {
    const piece = fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constantFrom('{"EventID":3}\n', '[', ']', '\u202e', 'é', '\r\n', '"').map((t) => Uint8Array.from(Buffer.from(t))));
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 12 }), fc.integer({ min: 0, max: 600 }), (pieces, cuts, max) => {
        const whole = Buffer.concat(pieces.map((p) => Buffer.from(p)));
        const c = new BodyCollector(max);
        let open = true;
        for (const chunk of chunked(whole, cuts)) open = c.push(chunk) && open;
        expect(c.tooLarge).toBe(whole.length > max);
        expect(open).toBe(whole.length <= max);
        if (c.tooLarge) return;
        expect(c.body().equals(whole)).toBe(true);
        expect(parseHintBody(c.body(), undefined)).toEqual(parseHintBody(whole, undefined));
        run(c.body());
      }),
      { numRuns: 1_000 },
    );
  });

  it.each([
    ['a 2 MiB line without a newline', 'a'.repeat(2 << 20), /^nothing in the body can be read as an event: line 1 \(byte offset 0\) is longer than 1048576 bytes/],
    ['a million nested arrays', `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`, /^(body is not a valid JSON array|no element of the JSON array is an object)/],
    ['a million nested objects on one NDJSON line', `${'{"a":'.repeat(150_000)}1${'}'.repeat(150_000)}\n2`, /nested deeper than 16 levels|not valid JSON/],
    ['a top-level string', '"C:\\\\evil.exe"', /^nothing in the body can be read as an event: line 1 \(byte offset 0\) is a string, not a JSON object$/],
    ['lines that are all scalars', '1\n\n2\r\nnull', /line 1 \(byte offset 0\) is a number, not a JSON object \(and 2 more line\(s\), none a JSON object\)$/],
    ['an array of scalars', '[1, "x"]', /^no element of the JSON array is an object \(element 0 is a number\)/],
    ['a form upload', 'a=b&c=d', /^nothing in the body can be read as an event: line 1 \(byte offset 0\) is not valid JSON/],
  ])('%s: one clear reason, quickly', (_intent, body, reason) => {
    const t = performance.now();
    const r = run(body);
    expect(performance.now() - t).toBeLessThan(3_000);
    if (r.accepted + r.rejected > 1 || bodyFailure(r) === null) {
      // An object line was readable: per-event rejections (202); the reason is on the event.
      expect(r.errors.map((e) => e.reason).join(' | ')).toMatch(reason);
      return;
    }
    expect(bodyFailure(r)?.code).toBe('HINT_PARSE');
    expect(bodyFailure(r)?.reason).toMatch(reason);
  });

  it('invalid UTF-8 is refused, never replaced: the line names its byte offset; good lines are kept', () => {
    const good = JSON.stringify({ EventID: 3, UtcTime: '2024-05-01 10:00:00', SourceIp: '10.9.9.9', SourcePort: 7, Image: 'C:\\a.exe' });
    const body = Buffer.concat([Buffer.from(`${good}\n{"Image":"C:\\\\r`), Buffer.from([0xc3, 0x28]), Buffer.from('.exe"}\n')]);
    const r = run(body);
    expect(r.accepted).toBe(1);
    expect(r.errors).toEqual([{ index: 1, code: 'HINT_PARSE', reason: `line 2 (byte offset ${good.length + 1}) is not valid UTF-8 (byte offset ${good.length + 1 + 15})` }]);
    const arr = run(Buffer.concat([Buffer.from('[{"a":"'), Buffer.from([0xff]), Buffer.from('"}]')]));
    expect(bodyFailure(arr)?.reason).toBe('body is not valid UTF-8 (byte offset 7)');
  });

  it('MAX_LINE_BYTES is far above one real event', () => {
    expect(MAX_LINE_BYTES).toBeGreaterThan(16 * 32_768);
  });
});

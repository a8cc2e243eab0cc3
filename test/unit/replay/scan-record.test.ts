import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { FieldName } from '../../../src/flow/fields.js';
import { buildRecordShape, CATALOGUE_FIELDS } from '../../../src/replay/record-fields.js';
import { RecordScanner } from '../../../src/replay/scan-record.js';
import { isMatchableField } from '../../../src/flow/fields.js';
import { loadPolicy } from '../../../src/policy/load.js';
import { syntheticRecords } from '../../fixtures/replay/synthetic.js';

const loaded = await loadPolicy(['policies/never-bump.yaml', 'policies/default.yaml']);
if (!loaded.ok) throw new Error('the default policy does not compile');
const DEFAULT_POLICY = loaded.policy;

const WANTED: FieldName[] = ['destination.port', 'destination.domain', 'egress.destination.internal', 'egress.tls.alpn', 'tls.server.x509.subject.common_name', 'process.name', 'egress.score'];

function scannerFor(fields: readonly FieldName[] = WANTED): RecordScanner {
  return new RecordScanner(buildRecordShape(fields));
}

function read(line: string, fields?: readonly FieldName[]): { problem: string | null; get: (name: FieldName) => unknown; scanner: RecordScanner } {
  const scanner = scannerFor(fields);
  const problem = scanner.read(line);
  return { problem, get: (name) => scanner.facts.get(name), scanner };
}

describe('reading a record into facts', () => {
  it('reads nested ECS fields the policies need, typed, and nothing else', () => {
    const r = read('{"destination":{"domain":"c2.example","port":8443,"bytes":9},"egress":{"destination":{"internal":false}},"source":{"ip":"10.0.0.1"}}');
    expect(r.problem).toBeNull();
    expect(r.get('destination.domain')).toBe('c2.example');
    expect(r.get('destination.port')).toBe(8443);
    expect(r.get('egress.destination.internal')).toBe(false);
    expect(r.get('source.ip')).toBeUndefined(); // not needed: never read
    expect(r.scanner.fastLines).toBe(1);
  });

  it('every field is absent or known, never pending (every stage of a recorded flow is over)', () => {
    const r = read('{"destination":{"port":443}}');
    expect(r.scanner.facts.isPending('process.name')).toBe(false);
    expect(r.get('process.name')).toBeUndefined();
  });

  it('a value of the wrong type is absent and counted', () => {
    const r = read('{"destination":{"port":"443","domain":7},"egress":{"score":1e999}}');
    expect(r.problem).toBeNull();
    expect(r.get('destination.port')).toBeUndefined();
    expect(r.get('destination.domain')).toBeUndefined();
    expect(r.get('egress.score')).toBeUndefined();
    expect(Object.fromEntries(r.scanner.rejected)).toEqual({ 'destination.port': 1, 'destination.domain': 1, 'egress.score': 1 });
  });

  it('old field names (FIELD_ALIASES) are read into the new field; the new name wins whichever comes first', () => {
    expect(read('{"destination":{"internal":true}}').get('egress.destination.internal')).toBe(true);
    expect(read('{"tls":{"client":{"alpn":["h2"]}}}').get('egress.tls.alpn')).toEqual(['h2']);
    expect(read('{"egress":{"destination":{"internal":false}},"destination":{"internal":true}}').get('egress.destination.internal')).toBe(false);
    expect(read('{"destination":{"internal":true},"egress":{"destination":{"internal":false}}}').get('egress.destination.internal')).toBe(false);
  });

  it('a one-element list where ECS declares an array of a single value (certificate CN) is that value', () => {
    expect(read('{"tls":{"server":{"x509":{"subject":{"common_name":["c2.example"]}}}}}').get('tls.server.x509.subject.common_name')).toBe('c2.example');
  });

  it('flattened exports with dotted keys are read too (through JSON.parse)', () => {
    const r = read('{"destination.port":4444,"egress":{"destination.internal":true},"process.name":"rundll32.exe"}');
    expect(r.problem).toBeNull();
    expect([r.get('destination.port'), r.get('egress.destination.internal'), r.get('process.name')]).toEqual([4444, true, 'rundll32.exe']);
    expect(r.scanner.slowLines).toBe(1);
  });

  it('a key repeated within a record means what JSON.parse makes of it (the last value, whole)', () => {
    const r = read('{"destination":{"port":1,"domain":"a"},"destination":{"port":2}}');
    expect(r.get('destination.port')).toBe(2);
    expect(r.get('destination.domain')).toBeUndefined();
  });

  it('escapes in kept strings are decoded; whitespace anywhere is fine', () => {
    const r = read(' { "process" : { "name" : "C:\\\\x\\u0041.exe" } , "destination":{"port": 80 } } \r');
    expect(r.problem).toBeNull();
    expect(r.get('process.name')).toBe('C:\\xA.exe');
    expect(r.get('destination.port')).toBe(80);
  });

  it.each([
    ['truncated', '{"destination":{"port":443', /not JSON/],
    ['garbage', 'hello', /not JSON/],
    ['an array', '[1,2]', /not a JSON object \(an array\)/],
    ['a number', '42', /not a JSON object \(number\)/],
    ['null', 'null', /not a JSON object \(null\)/],
    ['a raw control character in a string', '{"a":"x\u0001y"}', /not JSON/],
    ['an invalid escape', '{"a":"\\q"}', /not JSON/],
    ['a leading zero', '{"a":01}', /not JSON/],
    ['trailing text', '{"a":1} x', /not JSON/],
  ])('%s is not a record', (_name, line, reason) => {
    expect(read(line).problem).toMatch(reason);
  });
});

// ---- the fast path agrees with the reference (JSON.parse + walk) on every input -------------------------

const MATCHABLE = CATALOGUE_FIELDS.filter(isMatchableField);

let synthetic: string[] | null = null;
/** Records as the proxy writes them (test/fixtures/replay/synthetic.ts), decided by the default policy. */
function syntheticLines(): string[] {
  synthetic ??= syntheticRecords(400, { policy: DEFAULT_POLICY });
  return synthetic;
}
const ALL_WANTED = [...MATCHABLE];

/** What a scanner made of a line: the problem, or every slot's value. */
function outcome(scanner: RecordScanner, line: string): unknown {
  const problem = scanner.read(line);
  if (problem !== null) return 'invalid';
  return [...scanner.shape.slots.keys()].map((name) => scanner.facts.get(name));
}

/** The reference: the same scanner forced down the JSON.parse path (a leading space and a tab keep the fast path out). */
function reference(scanner: RecordScanner, line: string): unknown {
  return outcome(scanner, `\t${line}`);
}

const keyArb = fc.oneof(fc.constantFrom('destination', 'port', 'domain', 'egress', 'score', 'process', 'name', 'tls', 'client', 'alpn', 'event', 'action', 'rule', 'id', 'tags', 'source.ip', 'destination.port', 'x'), fc.string({ maxLength: 4 }));
const valueArb = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string({ maxLength: 6 }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(keyArb, tie('value'), { maxKeys: 4 }),
  ),
})).value;

describe('the selective scanner agrees with JSON.parse', () => {
  const fast = new RecordScanner(buildRecordShape(ALL_WANTED));
  const slow = new RecordScanner(buildRecordShape(ALL_WANTED));

  it('on generated records (nested, with catalogue paths)', () => {
    fc.assert(
      fc.property(fc.dictionary(keyArb, valueArb, { maxKeys: 8 }), (object) => {
        const line = JSON.stringify(object);
        expect(outcome(fast, line)).toEqual(reference(slow, line));
      }),
      { numRuns: 3000 },
    );
  });

  it('on damaged records: truncated, a character changed or inserted (never a throw)', () => {
    const base = '{"@timestamp":"t","event":{"action":"block","kind":"alert","type":["connection","denied"]},"destination":{"domain":"c2.example","port":8443},"egress":{"destination":{"internal":false},"score":30,"tls":{"alpn":["h2"]}},"process":{"name":"C:\\\\a\\"b"},"rule":{"id":"r"},"tags":["x"]}';
    fc.assert(
      fc.property(fc.nat(base.length), fc.constantFrom('', '"', '{', '}', '[', ']', ',', ':', '\\', 'a', '1', ' ', '\u0000', '\u00e9', '-'), fc.boolean(), (at, ch, replace) => {
        const line = base.slice(0, at) + ch + base.slice(at + (replace ? 1 : 0));
        expect(outcome(fast, line)).toEqual(reference(slow, line));
        expect(outcome(fast, base.slice(0, at))).toEqual(reference(slow, base.slice(0, at)));
      }),
      { numRuns: 3000 },
    );
  });

  it('on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (line) => {
        expect(outcome(fast, line)).toEqual(reference(slow, line));
      }),
      { numRuns: 2000 },
    );
  });

  it('on real records from the proxy serializer: all on the fast path, the same slots', () => {
    const pool = syntheticLines();
    const before = fast.fastLines;
    for (const line of pool) expect(outcome(fast, line)).toEqual(reference(slow, line));
    expect(fast.fastLines - before).toBe(pool.length);
  });

  it('on real records, damaged: a character changed, inserted or removed anywhere (identical slots or "invalid")', () => {
    const pool = syntheticLines();
    fc.assert(
      fc.property(fc.nat(pool.length - 1), fc.nat(), fc.constantFrom('', '"', '{', '}', '[', ']', ',', ':', '\\', '.', 'a', '0', ' ', '\t', '\u0001', '\u007f', '\u00e9', '\u2028', '\ud83d\ude00', '-', 'e'), fc.boolean(), (which, where, ch, replace) => {
        const base = pool[which] as string;
        const at = where % (base.length + 1);
        const line = base.slice(0, at) + ch + base.slice(at + (replace ? 1 : 0));
        expect(outcome(fast, line)).toEqual(reference(slow, line));
      }),
      { numRuns: 4000 },
    );
  });

  it('on unicode, escapes in keys and values, duplicate and dotted keys, stray whitespace', () => {
    const keyish = fc.oneof(keyArb, fc.constantFrom('d\\u0065stination', 'port"', 'é', '\ud83d\ude00', 'destination.port', 'egress.score', '__proto__'));
    const leaf = fc.oneof(fc.string({ maxLength: 8, unit: 'binary' }), fc.constantFrom('\\', '"', '\u0000', '\u001f', '\u2028', 'C:\\x'), fc.integer(), fc.double(), fc.constant(1e308));
    fc.assert(
      fc.property(fc.array(fc.tuple(keyish, fc.oneof(leaf, fc.dictionary(keyArb, leaf, { maxKeys: 3 }), fc.array(leaf, { maxLength: 3 }))), { maxLength: 8 }), fc.boolean(), (members, spaced) => {
        // Written by hand so that keys repeat (an object literal cannot hold a key twice).
        const sep = spaced ? ' , ' : ',';
        const line = `{${members.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(sep)}}`;
        expect(outcome(fast, line)).toEqual(reference(slow, line));
      }),
      { numRuns: 3000 },
    );
  });

  it('the duplicate of a key read goes to JSON.parse, the duplicate of a key not read does not matter', () => {
    const a = '{"destination":{"port":1},"source":{"ip":"a"},"destination":{"port":2}}';
    const b = '{"source":{"ip":"a"},"source":{"ip":"b"},"destination":{"port":3}}';
    expect(outcome(fast, a)).toEqual(reference(slow, a));
    expect(outcome(fast, b)).toEqual(reference(slow, b));
  });

  it('long damaged lines are rejected in linear time (no regular-expression backtracking blow-up)', () => {
    const members = Array.from({ length: 20_000 }, (_, i) => `"k${i}":{"a":[1,"x",{"b":[2,{"c":null}]}]}`).join(',');
    for (const tail of [',}', '}}', ',"', '']) {
      const line = `{"event":{"action":"allow"},${members}${tail}`;
      const started = performance.now();
      expect(outcome(fast, line)).toEqual(reference(slow, line));
      expect(performance.now() - started).toBeLessThan(2_000);
    }
  });

  it('deep nesting goes to JSON.parse and still gives the answer', () => {
    const deep = `${'{"a":'.repeat(200)}1${'}'.repeat(200)}`;
    expect(outcome(fast, deep)).toEqual(reference(slow, deep));
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { FIELD_ALIASES, FIELDS } from '../../../src/flow/fields.js';
import { buildPolicy } from '../../../src/policy/load.js';
import type { LoadResult } from '../../../src/policy/load.js';
import { runPolicyTests } from '../../../src/policy/run-tests.js';

/** fast-check reuses constant objects; without this `yaml` writes them as anchors and aliases. */
const NO_ALIASES = { aliasDuplicateObjects: false } as const;

const RULES = [
  { id: 'r1', when: { 'destination.port': 4444 }, action: 'block', severity: 'high', tags: ['c2'] },
  { id: 's1', mode: 'shadow', when: { 'process.name': 'rundll32.exe' }, action: 'block' },
  { id: 'a1', when: { 'destination.domain': { endswith: '.corp.example' } }, action: 'allow' },
];

const scalar = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.constantFrom('rundll32.exe', '10.0.0.5', '::1', 'r1', 's1', 'builtin:internal-destination', 'allow', 'block', ''),
  fc.integer({ min: -5, max: 70000 }),
  fc.double({ noNaN: true }),
  fc.boolean(),
  fc.constant(null),
);
const fieldName = fc.oneof(fc.constantFrom(...Object.keys(FIELDS), ...Object.keys(FIELD_ALIASES)), fc.string({ maxLength: 12 }));
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 6 }), tie('v'), { maxKeys: 3 })),
})).v;
const flow = fc.oneof(fc.dictionary(fieldName, value, { maxKeys: 6 }), value);
const expectBlock = fc.oneof(
  fc.record(
    {
      action: fc.oneof(fc.constantFrom('allow', 'block', 'deny'), scalar),
      rule: fc.oneof(fc.constantFrom('r1', 's1', 'a1', 'nope', 'builtin:internal-destination'), scalar),
      rules: fc.oneof(fc.array(fc.constantFrom('r1', 'a1', 's1', 'x')), scalar),
      tags: fc.oneof(fc.array(fc.constantFrom('c2', 'x', '')), scalar),
      alert: fc.oneof(fc.boolean(), scalar),
      shadow: fc.oneof(fc.array(fc.constantFrom('s1', 'r1')), scalar),
      extra: scalar,
    },
    { requiredKeys: [] },
  ),
  value,
);
const test = fc.oneof(fc.record({ name: fc.oneof(fc.string({ maxLength: 8 }), scalar), flow, expect: expectBlock }, { requiredKeys: [] }), value);
const tests = fc.oneof(fc.array(test, { maxLength: 4 }), value);

function expectWellFormed(result: LoadResult): void {
  if (result.ok) return;
  expect(result.errors.length).toBeGreaterThan(0);
  for (const issue of result.errors) {
    expect(issue.line).toBeGreaterThanOrEqual(1);
    expect(issue.col).toBeGreaterThanOrEqual(1);
    expect(issue.message.length).toBeGreaterThan(0);
  }
}

describe('random tests: blocks', () => {
  it('never crash the loader or the runner: a clear error at file:line:col, or tests that run', () => {
    fc.assert(
      fc.property(tests, (block) => {
        const text = stringify({ version: 1, rules: RULES, tests: block }, NO_ALIASES);
        const result = buildPolicy([{ file: 'fuzz.yaml', bytes: new TextEncoder().encode(text) }]);
        expectWellFormed(result);
        if (result.ok) {
          for (const r of runPolicyTests(result.policy)) {
            expect(r.decision.status).toBe('final');
            for (const failure of r.failures) expect(failure).toMatch(/^expected /);
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it('well-typed random flows always load and run to a final decision', () => {
    const typedValue = (name: string): fc.Arbitrary<unknown> => {
      const type = (FIELDS as Record<string, { type: string }>)[name]?.type;
      if (type === 'number') return fc.integer({ min: 0, max: 70000 });
      if (type === 'boolean') return fc.boolean();
      if (type === 'ip') return fc.constantFrom('10.0.0.5', '93.184.216.34', '::1', '2001:db8::1');
      if (type === 'string[]') return fc.array(fc.string({ minLength: 1, maxLength: 6 }), { maxLength: 3 });
      if (type === 'number[]') return fc.array(fc.integer(), { maxLength: 3 });
      return fc.string({ maxLength: 10 });
    };
    const names = ['destination.port', 'destination.domain', 'destination.ip', 'process.name', 'egress.destination.internal', 'egress.score', 'egress.tls.alpn'];
    const typedFlow = fc.record(Object.fromEntries(names.map((n) => [n, typedValue(n)])), { requiredKeys: [] });
    fc.assert(
      fc.property(typedFlow, fc.constantFrom('allow', 'block'), (f, action) => {
        const text = stringify({ version: 1, rules: RULES, tests: [{ name: 't', flow: f, expect: { action } }] }, NO_ALIASES);
        const result = buildPolicy([{ file: 'fuzz.yaml', bytes: new TextEncoder().encode(text) }]);
        if (!result.ok) throw new Error(result.errors.map((e) => e.format()).join('\n'));
        const [r] = runPolicyTests(result.policy);
        expect(r?.failures.length === 0).toBe(r?.decision.verdict === action);
      }),
      { numRuns: 300 },
    );
  });
});

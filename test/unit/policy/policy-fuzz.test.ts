import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { FIELDS } from '../../../src/flow/fields.js';
import type { FieldName, FlowFields } from '../../../src/flow/fields.js';
import { evaluatePolicy } from '../../../src/policy/evaluate.js';
import { buildPolicy, loadPolicy } from '../../../src/policy/load.js';
import type { LoadResult } from '../../../src/policy/load.js';
import { OPERATORS } from '../../../src/policy/matchers.js';
import { fakeFacts } from './policy-kit.js';

const FIELD_NAMES = Object.keys(FIELDS) as FieldName[];
/** fast-check reuses constant objects; without this `yaml` writes them as anchors and aliases. */
const NO_ALIASES = { aliasDuplicateObjects: false } as const;

/** A load result is well-formed: a policy, or at least one issue with a 1-based position and a message. */
function expectWellFormed(result: LoadResult): void {
  if (result.ok) return;
  expect(result.errors.length).toBeGreaterThan(0);
  for (const issue of result.errors) {
    expect(issue.line).toBeGreaterThanOrEqual(1);
    expect(issue.col).toBeGreaterThanOrEqual(1);
    expect(issue.message.length).toBeGreaterThan(0);
    expect(issue.format()).toBe(`${issue.file}:${issue.line}:${issue.col}: ${issue.message}`);
  }
}

const scalar = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('$hosts', '$nope', '$$x', '10.0.0.0/8', '::ffff:1.2.3.4', '(?i)x', '[', 'rundll32.exe'),
  fc.integer({ min: -5, max: 70000 }),
  fc.boolean(),
  fc.constant(null),
);

const key = fc.oneof(fc.constantFrom(...FIELD_NAMES), fc.constantFrom(...OPERATORS), fc.constantFrom('all', 'any', 'not'), fc.string({ maxLength: 8 }));

/** Random when-map-like structures: right and wrong keys, operators, scalars, lists and nesting. */
const whenLike = fc.letrec<{ node: unknown; map: Record<string, unknown> }>((tie) => ({
  node: fc.oneof({ depthSize: 'small' }, scalar, fc.array(tie('node'), { maxLength: 4 }), tie('map')),
  map: fc.dictionary(key, tie('node'), { maxKeys: 4 }),
})).map;

function randomFacts(): fc.Arbitrary<{ values: FlowFields; pending: FieldName[] }> {
  const value = fc.oneof(fc.string({ maxLength: 8 }), fc.integer({ min: 0, max: 70000 }), fc.boolean(), fc.constantFrom('10.1.2.3', '::ffff:10.1.2.3', 'fd00::1'), fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }));
  return fc.record({
    values: fc.dictionary(fc.constantFrom(...FIELD_NAMES), value, { maxKeys: 6 }) as fc.Arbitrary<FlowFields>,
    pending: fc.uniqueArray(fc.constantFrom(...FIELD_NAMES), { maxLength: 4 }),
  });
}

/** Well-typed conditions only: these must always compile. */
const fieldCondition = fc.oneof(
  fc.record({ 'process.name': fc.oneof(fc.constantFrom('mshta.exe', 'RUNDLL32.exe'), fc.constant({ in: '$hosts' }), fc.record({ contains: fc.string({ maxLength: 4 }).filter((text) => !text.startsWith('$')) }), fc.constant({ regex: '^r' })) }),
  fc.record({ 'destination.port': fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.record({ gt: fc.integer({ max: 65535 }) }), fc.record({ not_in: fc.array(fc.integer({ min: 1, max: 65535 }), { maxLength: 3 }) })) }),
  fc.record({ 'destination.ip': fc.record({ cidr: fc.constantFrom('10.0.0.0/8', 'fc00::/7', '::ffff:192.168.0.0/112', '0.0.0.0/0') }) }),
  fc.record({ 'egress.destination.internal': fc.boolean() }),
  fc.record({ 'egress.tls.alpn': fc.oneof(fc.constant('h2'), fc.constant({ not_in: ['h2'] })) }),
  fc.record({ 'tls.client.server_name': fc.record({ exists: fc.boolean() }) }),
);
const validWhen = fc.letrec<{ cond: Record<string, unknown> }>((tie) => ({
  cond: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fieldCondition,
    fc.record({ all: fc.array(tie('cond'), { minLength: 1, maxLength: 3 }) }),
    fc.record({ any: fc.array(tie('cond'), { minLength: 1, maxLength: 3 }) }),
    fc.record({ not: tie('cond') }),
  ),
})).cond;

describe('well-typed policies', () => {
  it('always compile, and decide finally once no field is pending', () => {
    fc.assert(
      fc.property(fc.array(validWhen, { minLength: 1, maxLength: 4 }), randomFacts(), (whens, facts) => {
        const rules = whens.map((when, index) => ({ id: `r${index}`, when, action: index % 2 === 0 ? 'tag' : 'block' }));
        const result = buildPolicy([{ file: 'valid.yaml', bytes: new TextEncoder().encode(stringify({ version: 1, lists: { hosts: ['mshta.exe'] }, rules }, NO_ALIASES)) }]);
        if (!result.ok) throw new Error(result.errors.map((issue) => issue.format()).join('\n'));
        expect(evaluatePolicy(result.policy, fakeFacts(facts.values, [])).status).toBe('final');
        const withPending = evaluatePolicy(result.policy, fakeFacts(facts.values, facts.pending));
        if (withPending.status === 'pending') {
          // Only a field that is really pending can hold a decision back.
          for (const field of withPending.pendingFields) expect(facts.pending).toContain(field);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('policy loading never throws', () => {
  it('on random when-maps, and a compiled result always evaluates', () => {
    fc.assert(
      fc.property(whenLike, fc.constantFrom('allow', 'block', 'tag', 'bump', 'splice'), randomFacts(), (when, action, facts) => {
        const text = stringify({ version: 1, lists: { hosts: ['a', 'b'] }, rules: [{ id: 'r', when, action }] }, NO_ALIASES);
        const result = buildPolicy([{ file: 'fuzz.yaml', bytes: new TextEncoder().encode(text) }]);
        expectWellFormed(result);
        if (result.ok) {
          const decision = evaluatePolicy(result.policy, fakeFacts(facts.values, facts.pending));
          expect(['final', 'pending']).toContain(decision.status);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('on random text', () => {
    const yamlish = fc.array(fc.constantFrom('version: 1\n', 'rules:\n', '  - id: x\n', '    when: {', '}', '[', ']', ': ', '- ', '"', "'", '&a ', '*a', '!!binary ', '\t', '\n', '  ', '$', '#', 'lists:\n', 'process.name', 'in'), { maxLength: 30 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), yamlish, fc.uint8Array({ maxLength: 64 })), (input) => {
        const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : input;
        expectWellFormed(buildPolicy([{ file: 'fuzz.yaml', bytes }]));
      }),
      { numRuns: 1000 },
    );
  });

  describe('through loadPolicy from disk', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'egress-policy-fuzz-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('resolves (never rejects) for random file contents', async () => {
      await fc.assert(
        fc.asyncProperty(fc.string({ maxLength: 120 }), async (text) => {
          const file = join(dir, 'p.yaml');
          await writeFile(file, text);
          expectWellFormed(await loadPolicy([file]));
        }),
        { numRuns: 100 },
      );
    });
  });
});

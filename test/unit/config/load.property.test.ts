/**
 * Whatever text the config file holds, loading it ends in a Config or in a CONFIG_* error listing the
 * problems one per line — never in a crash, a hang, or another kind of exception.
 */
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { isEgressError } from '../../../src/errors.js';
import { loadConfig, parseConfigText, type ConfigResult } from '../../../src/config/load.js';

const EXAMPLE = readFileSync(new URL('../../../config/example.yaml', import.meta.url), 'utf8');
const ENV = { SET: '10s', EMPTY: '', EGRESS_ADMIN_TOKEN: 'tok' };

const KEYS = ['proxy', 'dns', 'resolver', 'network', 'admin', 'policy', 'log', 'tls', 'listen', 'clients', 'timeouts',
  'connect', 'upstream', 'servers', 'internal', 'token', 'files', 'flows', 'level', 'ca_dir', 'max_flows', '__proto__'];

/** Values the parsers must survive: near-misses of every value form, env references, odd scalars. */
const leafValue = fc.oneof(
  fc.constantFrom('10s', 'ten', '0', '1.5ms', '1000h', '0.0.0.0:3128', '[::1]:0', '::1:53', '10.0.0.1/8', '::/129',
    '${SET}', '${UNSET}', '$${SET}', '${', '${1}', '-', '', null, true, -1, Number.POSITIVE_INFINITY, 2 ** 53),
  fc.string(),
  fc.integer(),
  fc.double(),
);

/** Nested mappings over the real key names, so generated input reaches deep into the schema. */
const configLike = fc.letrec<{ node: unknown }>((tie) => ({
  node: fc.oneof({ depthSize: 'small' },
    leafValue,
    fc.array(tie('node'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string()), tie('node'), { maxKeys: 5 })),
})).node;

/** The example with a few characters inserted, removed or replaced: broken indentation, quotes, colons. */
const mutatedExample = fc
  .array(fc.tuple(fc.nat(EXAMPLE.length), fc.nat(3), fc.constantFrom('', ':', ' ', '\n', '"', '[', '{', '&a', '*a', '#', '\t', '${X}', '- ')), { minLength: 1, maxLength: 5 })
  .map((edits) => edits.reduce((text, [at, del, ins]) => text.slice(0, at) + ins + text.slice(at + del), EXAMPLE));

const anyText = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.jsonValue().map((v) => JSON.stringify(v)), // JSON is YAML
  configLike.map((v) => stringify(v)),
  configLike.map((v) => JSON.stringify(v) ?? ''),
  mutatedExample,
);

function checkResult(r: ConfigResult): void {
  if (r.ok) {
    expect(Object.isFrozen(r.config)).toBe(true);
    expect(typeof r.config.proxy.listen.port).toBe('number');
    return;
  }
  expect(['CONFIG_READ', 'CONFIG_INVALID']).toContain(r.code);
  expect(r.errors.length).toBeGreaterThan(0);
  for (const e of r.errors) {
    expect(typeof e).toBe('string');
    expect(e).not.toContain('\n'); // one error per line in the thrown message
  }
}

describe('config loading on arbitrary text', () => {
  it('parseConfigText never throws, and reports at least one one-line error when it refuses', () => {
    fc.assert(
      fc.property(anyText, (text) => {
        checkResult(parseConfigText(text, { baseDir: '/base', env: ENV, source: 'fuzz.yaml' }));
      }),
      { numRuns: 2_000 },
    );
  });

  it('accepts the example with harmless edits only, so the mutations do reach the validator', () => {
    // Guard against a vacuous property: the unmutated example must pass and a damaged value must not.
    expect(parseConfigText(EXAMPLE, { baseDir: '/base', env: {} }).ok).toBe(true);
    expect(parseConfigText(EXAMPLE.replace('connect: 10s', 'connect: 10x'), { baseDir: '/base', env: {} }).ok).toBe(false);
  });

  const dir = mkdtempSync(join(tmpdir(), 'egress-config-fuzz-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loadConfig rejects only with a CONFIG_* EgressError', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(anyText, async (text) => {
        const file = join(dir, `c${n++}.yaml`);
        writeFileSync(file, text);
        try {
          await loadConfig({ file, baseDir: dir, env: ENV });
        } catch (err) {
          expect(isEgressError(err)).toBe(true);
          expect((err as { code: string }).code).toMatch(/^CONFIG_(READ|INVALID)$/);
        }
      }),
      { numRuns: 200 },
    );
  });
});

/**
 * Property tests of the three feature-family data files and of the functions that run on flow data: the
 * compilers take any text (random, YAML-shaped, or the shipped file mutated) and answer with a catalogue or
 * positioned errors, never a throw or a hang; classify(), analyzeProcess() and familyOf() take any string.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { ProcessCatalogue } from '../../../../src/scoring/features/process.js';
import { analyzeProcess, compileProcessCatalogue, PROCESS_CATEGORIES, SHIPPED_PROCESS_CATALOGUE } from '../../../../src/scoring/features/process.js';
import type { TlsFamilyMap } from '../../../../src/scoring/features/tls-family.js';
import { compileTlsFamilies, fingerprintMismatch, SHIPPED_TLS_FAMILIES } from '../../../../src/scoring/features/tls-family.js';
import type { UserAgentCatalogue } from '../../../../src/scoring/features/user-agent.js';
import { compileUserAgents, SHIPPED_USER_AGENTS, UA_FAMILIES } from '../../../../src/scoring/features/user-agent.js';

const SHIPPED = {
  processes: readFileSync(SHIPPED_PROCESS_CATALOGUE, 'utf8'),
  userAgents: readFileSync(SHIPPED_USER_AGENTS, 'utf8'),
  tls: readFileSync(SHIPPED_TLS_FAMILIES, 'utf8'),
};

type Outcome = { ok: true } | { ok: false; errors: string[] };
const COMPILERS: readonly [string, string, (text: string) => Outcome][] = [
  ['processes', SHIPPED.processes, (t) => compileProcessCatalogue(t, 'f.yaml')],
  ['user agents', SHIPPED.userAgents, (t) => compileUserAgents(t, 'f.yaml')],
  ['TLS families', SHIPPED.tls, (t) => compileTlsFamilies(t, 'f.yaml')],
];

/** Every rejection is a non-empty list of `file:line:col: message` lines. */
function expectWellFormed(result: Outcome): void {
  if (result.ok) return;
  expect(result.errors.length).toBeGreaterThan(0);
  for (const e of result.errors) expect(e).toMatch(/^f\.yaml:\d+:\d+: \S/);
}

const yamlish = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: 'small' },
    fc.string({ maxLength: 20 }),
    fc.constantFrom('lolbin', 'rundll32.exe', 'chromium', 't13*_8daaf6152771', 'curl/', 'browser', 'version', 'processes', 'families', 'fits', '', '*'),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('node'), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom('version', 'processes', 'families', 'fingerprints', 'known_c2', 'fits', 'expectations', 'lolbin', 'match', 'family', 'source', 'equals', 'contains', 'x'), tie('node'), { maxKeys: 4 }),
  ),
})).node;

/** The shipped file with a few lines dropped, duplicated or cut short: near-valid input. */
const mutated = (text: string) =>
  fc.array(fc.tuple(fc.constantFrom('drop', 'dup', 'cut', 'indent'), fc.nat()), { minLength: 1, maxLength: 4 }).map((edits) => {
    const lines = text.split('\n');
    for (const [kind, n] of edits) {
      const i = n % lines.length;
      const line = lines[i] ?? '';
      if (kind === 'drop') lines.splice(i, 1);
      else if (kind === 'dup') lines.splice(i, 0, line);
      else if (kind === 'cut') lines[i] = line.slice(0, n % (line.length + 1));
      else lines[i] = ` ${line}`;
    }
    return lines.join('\n');
  });

describe.each(COMPILERS)('the %s compiler', (_name, shipped, compile) => {
  it('compiles the shipped file', () => {
    expect(compile(shipped).ok).toBe(true);
  });

  it('never throws on random text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 200 })), (text) => {
        expectWellFormed(compile(text));
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on YAML-shaped documents', () => {
    fc.assert(
      fc.property(yamlish, (doc) => {
        expectWellFormed(compile(stringify({ version: 1, ...(typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? doc : { x: doc }) })));
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on the shipped file with lines dropped, duplicated, cut or re-indented', () => {
    fc.assert(
      fc.property(mutated(shipped), (text) => {
        expectWellFormed(compile(text));
      }),
      { numRuns: 150 },
    );
  });

  it('refuses deep nesting and alias bombs with a positioned error', () => {
    expectWellFormed(compile(`version: 1\nx: ${'['.repeat(5000)}${']'.repeat(5000)}\n`));
    const bomb = ['version: 1', 'a: &a [x, x, x, x]', 'b: &b [*a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b]', 'd: [*c, *c, *c, *c]'].join('\n');
    const result = compile(bomb);
    expect(result.ok).toBe(false);
    expectWellFormed(result);
  });
});

function shippedProcesses(): ProcessCatalogue {
  const r = compileProcessCatalogue(SHIPPED.processes, 'p.yaml');
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.catalogue;
}
function shippedUserAgents(): UserAgentCatalogue {
  const r = compileUserAgents(SHIPPED.userAgents, 'u.yaml', { max: 64 });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.catalogue;
}
function shippedTls(): TlsFamilyMap {
  const r = compileTlsFamilies(SHIPPED.tls, 't.yaml');
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.map;
}

const pathChar = fc.constantFrom(...'\\/:.%$ _-~aAzZ09'.split(''), 'é', '\u2800', '\u202e', '\u0000');
const pathLike = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: pathChar, maxLength: 60 }),
  fc.tuple(fc.constantFrom('C:\\Windows\\System32\\', 'C:\\Users\\x\\AppData\\', '\\\\?\\', '%TEMP%\\', '/tmp/', '\\Device\\HarddiskVolume1\\', ''), fc.string({ maxLength: 30 })).map(([a, b]) => a + b),
);

describe('functions on flow data', () => {
  const processes = shippedProcesses();
  const userAgents = shippedUserAgents();
  const tls = shippedTls();

  it('analyzeProcess never throws and always names a known category', () => {
    fc.assert(
      fc.property(pathLike, fc.option(pathLike, { nil: undefined }), fc.option(pathLike, { nil: undefined }), fc.option(pathLike, { nil: undefined }), (name, executable, parentName, originalFileName) => {
        const f = analyzeProcess(processes, { name, executable, parentName, originalFileName });
        expect(PROCESS_CATEGORIES).toContain(f.category);
        expect(typeof f.userWritable).toBe('boolean');
        expect(f.suspiciousParent === null || typeof f.suspiciousParent === 'string').toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('classify never throws, always names a known family, and answers the same twice', () => {
    const agent = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ unit: 'binary', maxLength: 100 }),
      fc.tuple(fc.constantFrom('Mozilla/5.0 (', 'Mozilla/4.0 (compatible; MSIE ', 'curl/', 'Microsoft BITS/', ''), fc.string({ maxLength: 80 })).map(([a, b]) => a + b),
      fc.string({ minLength: 900, maxLength: 3000 }),
    );
    fc.assert(
      fc.property(fc.option(agent, { nil: undefined }), (ua) => {
        const facts = userAgents.classify(ua);
        expect(UA_FAMILIES).toContain(facts.family);
        expect(userAgents.classify(ua)).toEqual(facts);
        for (const category of PROCESS_CATEGORIES) {
          const fit = userAgents.fitsProcess(facts.family, category, ua ?? '');
          expect(fit === null || typeof fit === 'boolean').toBe(true);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('familyOf and fingerprintMismatch never throw on any string', () => {
    const ja4ish = fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.tuple(fc.stringMatching(/^[tqdx][0-9s]{2}[di]\d{4}[0-9a-z]{2}$/), fc.stringMatching(/^[0-9a-f_]{0,26}$/)).map(([a, b]) => `${a}_${b}`),
    );
    fc.assert(
      fc.property(ja4ish, pathLike, fc.constantFrom(...PROCESS_CATEGORIES), (ja4, processName, category) => {
        const family = tls.familyOf(ja4);
        expect(family === null || typeof family === 'string').toBe(true);
        const mismatch = fingerprintMismatch(tls, ja4, processName, category);
        if (mismatch !== null) expect(mismatch.family).toBe(family);
      }),
      { numRuns: 1000 },
    );
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { analyzeUri, isOcspGetRequest, percentDecode } from '../../../../src/scoring/features/uri.js';
import type { UriFacts } from '../../../../src/scoring/features/uri.js';

const ENCODINGS = new Set([null, 'base64', 'base64url', 'hex', 'guid']);
const BENIGN = new Set([null, 'webpack-chunk', 'asset-hash', 'oauth', 'saml', 'ocsp', 'analytics', 'signed-url', 'uuid-resource', 'api-key', 'windows-update', 'package-registry', 'git-object']);

/** URI-ish text: the fragments the analyser branches on, glued in random order, plus arbitrary code units. */
const fragment = fc.oneof(
  fc.constantFrom('/', '//', '?', '&', '=', '==', '%', '%2F', '%2b', '%3D', '%zz', '%', '.', '.js', '.woff2', '-', '_', '~', '+', 'sha256:', 'MF', 'ME', 'MI'),
  fc.constantFrom('_next/static/', 'filestreamingservice/files/', 'd/msdownload/', 'objects/ab/', 'packages/ab/cd/', 's/roboto/v30/', 'avatar/', '__utm.gif', 'g/collect', 'blobs/'),
  fc.constantFrom('code=', 'state=', 'client_id=', 'X-Amz-Signature=', 'Signature=', 'Expires=', 'sig=', 'sv=', 'SAMLRequest=', 'utmwv=', 'v=', 'tid=', 'key=AIza'),
  fc.constantFrom('aZ3kP9qLm2XvB7nR4tW8yE1uC6oD0sFh', '3f2504e0-4f89-11d3-9a0c-0305e82c3301', '205e460b479e2e5b48aec07710c08d50', 'U2FsdGVkX1+9k3lq0bWQ', 'main.8f3a2b1c9d0e'),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 6 }),
);
const uriText = fc.array(fragment, { maxLength: 24 }).map((parts) => parts.join(''));

function expectWellFormed(facts: UriFacts, path: string, query: string | undefined): void {
  expect(Number.isInteger(facts.segmentCount) && facts.segmentCount >= 0).toBe(true);
  expect(facts.maxSegmentLength).toBeLessThanOrEqual(path.length);
  expect(facts.maxQueryValueLength).toBeLessThanOrEqual(query?.length ?? 0);
  expect(facts.maxSegmentEntropy).toBeGreaterThanOrEqual(0);
  // Plug-in entropy is at most log2(length) of the measured part, and never above 16 bits per UTF-16 unit.
  expect(facts.maxSegmentEntropy).toBeLessThanOrEqual(Math.log2(Math.max(2, path.length + (query?.length ?? 0))) + 0.01);
  expect(Math.abs(facts.maxSegmentEntropy * 100 - Math.round(facts.maxSegmentEntropy * 100))).toBeLessThan(1e-6);
  expect(facts.hottest === null ? facts.maxSegmentEntropy === 0 : facts.hottest.length <= 48).toBe(true);
  expect(ENCODINGS.has(facts.encoding)).toBe(true);
  expect(BENIGN.has(facts.benignShape)).toBe(true);
}

describe('analyzeUri on untrusted input', () => {
  it('never throws and always returns well-formed facts', () => {
    fc.assert(
      fc.property(uriText, fc.option(uriText, { nil: undefined }), (path, query) => {
        const facts = analyzeUri(path, query);
        expectWellFormed(facts, path, query);
      }),
      { numRuns: 3000 },
    );
  });

  it('is a pure function: the same input gives the same facts, whatever ran in between', () => {
    fc.assert(
      fc.property(uriText, fc.option(uriText, { nil: undefined }), uriText, (path, query, other) => {
        const first = analyzeUri(path, query);
        analyzeUri(other, other);
        analyzeUri(`/${other}`, undefined);
        expect(analyzeUri(path, query)).toEqual(first);
      }),
      { numRuns: 1000 },
    );
  });

  it('arbitrary Unicode, lone surrogates and control characters are measured, not refused', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ unit: 'grapheme', maxLength: 100 }), (path, query) => {
        expectWellFormed(analyzeUri(path, query), path, query);
      }),
      { numRuns: 1000 },
    );
  });

  it('stays linear on large inputs (a 256 KiB path and query take milliseconds)', () => {
    const big = `/${'aZ3kP9qLm2XvB7nR4tW8yE1uC6oD0sFh/'.repeat(8000)}`;
    const query = `${'k=U2FsdGVkX1%2B9k3lq0bWQ&'.repeat(10000)}MF`;
    const t0 = performance.now();
    const facts = analyzeUri(big, query);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(facts.segmentCount).toBe(8000);
    expect(facts.randomSegment).toBe(true);
    // A path of one huge segment that starts like OCSP: decoded once, judged once.
    const t1 = performance.now();
    analyzeUri(`/MF${'A'.repeat(200_000)}`, undefined);
    // Many segments that each start like OCSP, each a random-looking part asking for the path context.
    analyzeUri(`/${'MFq3kP9qLm2XvB7nR4tW8yE1uC6oD0sFh/'.repeat(8000)}`, undefined);
    // Many pairs without '=' before one that has it.
    analyzeUri('/x', `${'aZ3kP9qLm2XvB7nR4tW8yE1uC6oD0sFh&'.repeat(8000)}k=v`);
    expect(performance.now() - t1).toBeLessThan(1000);
  });

  it('the helpers never throw either', () => {
    fc.assert(
      fc.property(uriText, (text) => {
        expect(typeof isOcspGetRequest(text)).toBe('boolean');
        const decoded = percentDecode(text, 0, text.length);
        expect(decoded.length).toBeLessThanOrEqual(text.length);
      }),
      { numRuns: 2000 },
    );
  });
});

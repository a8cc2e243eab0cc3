import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoTime } from '../../../src/flow/iso-time.js';

describe('isoTime', () => {
  it('is toISOString for instants across the whole four-digit-year range, in any order (the cached second moves)', () => {
    fc.assert(
      fc.property(fc.double({ min: -62_167_219_200_000, max: 253_402_300_799_999, noNaN: true }), (ms) => {
        expect(isoTime(ms)).toBe(new Date(ms).toISOString());
      }),
      { numRuns: 20_000 },
    );
  });

  it('gives each millisecond of one second its own text, and the next second a new prefix', () => {
    const base = Date.UTC(2026, 11, 7, 3, 59, 59);
    for (let ms = 0; ms < 1000; ms++) expect(isoTime(base + ms)).toBe(new Date(base + ms).toISOString());
    expect(isoTime(base + 1000)).toBe('2026-12-07T04:00:00.000Z');
    expect(isoTime(base - 1)).toBe('2026-12-07T03:59:58.999Z');
  });

  it('falls back to toISOString outside four-digit years, and throws as it does for an invalid instant', () => {
    expect(isoTime(-62_198_755_200_000)).toBe(new Date(-62_198_755_200_000).toISOString()); // year -1 (-000001)
    expect(isoTime(253_402_300_800_000)).toBe('+010000-01-01T00:00:00.000Z');
    expect(() => isoTime(Number.NaN)).toThrow(RangeError);
  });
});

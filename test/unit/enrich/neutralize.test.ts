import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeNeutralized, isNeutralizedCodePoint, neutralize, wasNeutralized } from '../../../src/enrich/neutralize.js';

/** Every code point neutralize must replace (docs/process-hints.md "Neutralised characters"). */
const MUST_MARK: ReadonlyArray<readonly [number, number]> = [
  [0x0000, 0x0008],
  [0x000a, 0x001f],
  [0x007f, 0x009f],
  [0x00ad, 0x00ad],
  [0x061c, 0x061c],
  [0x180e, 0x180e],
  [0x200b, 0x200f],
  [0x2028, 0x202e],
  [0x2060, 0x206f],
  [0xd800, 0xdfff],
  [0xfeff, 0xfeff],
  [0xfff9, 0xfffb],
  [0xe0000, 0xe007f],
];

function mustMark(cp: number): boolean {
  return MUST_MARK.some(([lo, hi]) => cp >= lo && cp <= hi);
}

/** Any string, with the characters of interest and `<U+` fragments much more likely than by chance. */
const hostile = fc.array(
  fc.oneof(
    fc.string({ unit: 'binary', maxLength: 8 }),
    fc.constantFrom('<U+', '<U+202E>', '<U+003C>', '<u+', '<', 'U+', '>', '\u202e', '\u200b', '\ufeff', '\u2066', '\u0000', '\t', '\n', '\u0085', '\ud800', '\udc00', '\u{e0041}', '😀'),
    fc.integer({ min: 0, max: 0x10ffff }).map((cp) => String.fromCodePoint(cp)),
    fc.integer({ min: 0xd800, max: 0xdfff }).map((u) => String.fromCharCode(u)),
  ),
  { maxLength: 30 },
).map((parts) => parts.join(''));

/** Every code point of a string, lone surrogates as themselves. */
function codePoints(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) out.push(ch.codePointAt(0) ?? 0);
  return out;
}

describe('neutralize / decodeNeutralized', () => {
  it('decode(neutralize(s)) === s for any string, lone surrogates and literal "<U+" included', () => {
    fc.assert(
      fc.property(hostile, (s) => {
        expect(decodeNeutralized(neutralize(s))).toBe(s);
      }),
      { numRuns: 3_000 },
    );
  });

  it('the output never contains a control, bidi or invisible character, and every "<U+" in it is a mark', () => {
    fc.assert(
      fc.property(hostile, (s) => {
        const n = neutralize(s);
        for (const cp of codePoints(n)) expect(mustMark(cp)).toBe(false);
        // Every "<U+" starts a complete mark: decoding is unambiguous.
        for (let at = n.indexOf('<U+'); at >= 0; at = n.indexOf('<U+', at + 1)) expect(n.slice(at)).toMatch(/^<U\+[0-9A-F]{4,6}>/);
      }),
      { numRuns: 3_000 },
    );
  });

  it('marks exactly the documented set, and nothing else (whole code space)', () => {
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      const ch = String.fromCodePoint(cp);
      // Both the fast pre-check and the marking loop must agree with the documented set.
      if (isNeutralizedCodePoint(cp) !== mustMark(cp) || (neutralize(`a${ch}b`) !== `a${ch}b`) !== mustMark(cp)) {
        throw new Error(`U+${cp.toString(16)}: pre-check ${String(isNeutralizedCodePoint(cp))}, marked as ${neutralize(ch)}`);
      }
    }
  });

  it.each([
    ['RIGHT-TO-LEFT OVERRIDE in an image name', 'C:\\Users\\a\\invoice\u202Eexe.pdf', 'C:\\Users\\a\\invoice<U+202E>exe.pdf'],
    ['isolates and marks', '\u2066a\u2069\u200e\u200f', '<U+2066>a<U+2069><U+200E><U+200F>'],
    ['zero-width inside a LOLBin name', 'rund\u200bll32.exe', 'rund<U+200B>ll32.exe'],
    ['C0 and C1 controls, TAB kept', 'a\u0000b\tc\r\n\u0085\u009b', 'a<U+0000>b\tc<U+000D><U+000A><U+0085><U+009B>'],
    ['BOM and tag characters (6 hex digits)', '\ufeffx\u{e0041}', '<U+FEFF>x<U+E0041>'],
    ['a literal "<U+" is escaped', 'see <U+202E> here', 'see <U+003C>U+202E> here'],
  ])('%s', (_intent, input, shown) => {
    expect(neutralize(input)).toBe(shown);
    expect(decodeNeutralized(shown)).toBe(input);
  });

  it('clean text is returned unchanged (policy values keep matching), including non-Latin names and emoji', () => {
    for (const s of ['rundll32.exe', 'C:\\Windows\\System32\\mshta.exe', 'Пользователь', 'ユーザー', '😀.exe', '<u+202e>', 'a < b', '']) {
      expect(neutralize(s)).toBe(s);
      expect(wasNeutralized(s)).toBe(false);
    }
  });

  it('wasNeutralized tells a real mark from an escaped "<U+"', () => {
    expect(wasNeutralized(neutralize('a\u202eb'))).toBe(true);
    expect(wasNeutralized(neutralize('<U+202E>'))).toBe(false);
    expect(wasNeutralized(neutralize('<U+202E>\u200b'))).toBe(true);
  });

  it('is linear: 256 Ki override characters (worst case: every character marked) in well under a second', () => {
    const big = '\u202e'.repeat(1 << 18);
    const t = performance.now();
    const n = neutralize(big);
    expect(n.length).toBe(8 << 18);
    expect(decodeNeutralized(n)).toBe(big);
    expect(performance.now() - t).toBeLessThan(2_000);
  });
});

import { describe, expect, it } from 'vitest';
import {
  ANY,
  base64Of,
  base64OffsetsOf,
  encodeText,
  expandWindash,
  formatPattern,
  ONE,
  parseSigmaString,
  patternMatcher,
  type TextMatch,
} from '../../../../src/policy/sigma/values.js';

describe('parseSigmaString (Sigma escaping)', () => {
  it.each([
    ['plain text', 'abc', ['abc']],
    ['a lone backslash is literal', 'C:\\Windows\\x.exe', ['C:\\Windows\\x.exe']],
    ['\\* is a literal star', 'a\\*b', ['a*b']],
    ['\\? is a literal question mark', 'momyshark\\?key=', ['momyshark?key=']],
    ['\\\\ is one backslash, and the * after it a wildcard', 'a\\\\*', ['a\\', ANY]],
    ['* and ? are wildcards', '*a?b*', [ANY, 'a', ONE, 'b', ANY]],
  ])('%s', (_name, text, tokens) => {
    expect(parseSigmaString(text)).toEqual(tokens);
  });

  it('formatPattern writes the pattern back with escapes', () => {
    expect(formatPattern(parseSigmaString('a\\*b*c?'))).toBe('a\\*b*c?');
  });
});

describe('patternMatcher (wildcards → policy matcher)', () => {
  const cases: [string, string, TextMatch, unknown][] = [
    ['no wildcard: equality', 'rundll32.exe', 'equals', { op: 'equals', value: 'rundll32.exe' }],
    ['contains modifier', 'pastebin.com/raw/', 'contains', { op: 'contains', value: 'pastebin.com/raw/' }],
    ['startswith modifier', 'Microsoft BITS/', 'startswith', { op: 'startswith', value: 'Microsoft BITS/' }],
    ['endswith modifier', '\\rundll32.exe', 'endswith', { op: 'endswith', value: '\\rundll32.exe' }],
    ['leading * only: endswith', '*\\rundll32.exe', 'equals', { op: 'endswith', value: '\\rundll32.exe' }],
    ['trailing * only: startswith', 'Internet Explorer *', 'equals', { op: 'startswith', value: 'Internet Explorer ' }],
    ['both ends: contains', '*zeroup*', 'equals', { op: 'contains', value: 'zeroup' }],
    ['* inside: anchored case-insensitive regex', 'Mozilla/5.0 (Windows NT 5.1 ; v.*', 'equals', { op: 'startswith', value: 'Mozilla/5.0 (Windows NT 5.1 ; v.' }],
    ['* inside with contains: unanchored regex', '.ghostbin.co/paste/*/raw/', 'contains', { op: 'regex', value: '(?i)\\.ghostbin\\.co\\/paste\\/[\\s\\S]*\\/raw\\/' }],
    ['? inside: one character', '/cross.php?op=', 'contains', { op: 'regex', value: '(?i)\\/cross\\.php[\\s\\S]op=' }],
    ['* inside, equality: anchored both ends', 'a*b', 'equals', { op: 'regex', value: '(?i)^a[\\s\\S]*b$' }],
    ['escaped star stays literal', 'a\\*b', 'equals', { op: 'equals', value: 'a*b' }],
    ['a lone *: any value', '*', 'equals', { op: 'exists', value: true }],
    ['empty string: equality with empty', '', 'equals', { op: 'equals', value: '' }],
  ];
  it.each(cases)('%s', (_name, value, match, expected) => {
    expect(patternMatcher(parseSigmaString(value), match)).toEqual(expected);
  });

  it('the generated regexes match like Sigma wildcards, ignoring case', () => {
    const m = patternMatcher(parseSigmaString('a*b?c'), 'equals');
    expect(m.op).toBe('regex');
    const re = new RegExp(m.value.toString().replace('(?i)', ''), 'i');
    expect(re.test('A-line\nbreak-BxC')).toBe(true);
    expect(re.test('abxcd')).toBe(false);
    expect(re.test('xabxc')).toBe(false);
  });

  it('regex metacharacters in values are escaped', () => {
    const m = patternMatcher(parseSigmaString('(a)+[b]*'), 'equals');
    expect(m).toEqual({ op: 'startswith', value: '(a)+[b]' });
    const r = patternMatcher(parseSigmaString('$^.*|{x}'), 'equals');
    expect(r.op).toBe('regex');
    const re = new RegExp(String(r.value).slice(4), 'i');
    expect(re.test('$^.anything|{x}')).toBe(true);
    expect(re.test('$^Xanything|{x}')).toBe(false);
  });

  it('a request target pattern anchored at "/" also matches after scheme://host', () => {
    const m = patternMatcher(parseSigmaString('/admin/get.php'), 'equals', { originForm: true });
    expect(m.op).toBe('regex');
    const re = new RegExp(String(m.value).slice(4), 'i');
    expect(re.test('/admin/get.php')).toBe(true);
    expect(re.test('http://evil.example:8080/admin/get.php')).toBe(true);
    expect(re.test('http://evil.example/x/admin/get.php')).toBe(false);
    expect(re.test('/admin/get.php?x=1')).toBe(false);
    // contains needs no anchor, so no authority either
    expect(patternMatcher(parseSigmaString('/pwndrop/'), 'contains', { originForm: true })).toEqual({ op: 'contains', value: '/pwndrop/' });
  });

  it('cased: a regex without (?i)', () => {
    expect(patternMatcher(parseSigmaString('AbC'), 'contains', { cased: true })).toEqual({ op: 'regex', value: 'AbC' });
  });
});

describe('windash', () => {
  it('expands a dash or slash at the start of a word into the five variants', () => {
    const variants = expandWindash(parseSigmaString(' -enc '));
    expect(variants?.map((v) => v.join(''))).toEqual([' -enc ', ' /enc ', ' \u2013enc ', ' \u2014enc ', ' \u2015enc ']);
  });

  it('leaves dashes inside words alone', () => {
    expect(expandWindash(parseSigmaString('x-ray'))?.map((v) => v.join(''))).toEqual(['x-ray']);
    expect(expandWindash(parseSigmaString('- x'))?.map((v) => v.join(''))).toEqual(['- x']);
  });

  it('expands every option: 5^n variants', () => {
    expect(expandWindash(parseSigmaString('-a -b'))).toHaveLength(25);
  });

  it('refuses more than four option dashes instead of exploding', () => {
    expect(expandWindash(parseSigmaString('-a -b -c -d -e'))).toBeNull();
  });

  it('keeps wildcards', () => {
    expect(expandWindash(parseSigmaString('*-x*'))?.[1]).toEqual([ANY, '/x', ANY]);
  });
});

describe('base64', () => {
  it('base64 encodes the whole value', () => {
    expect(base64Of(encodeText('IEX', 'utf8'))).toBe('SUVY');
  });

  it('base64offset gives the three offsets, as pySigma', () => {
    // pySigma test vector: base64offset of "foobar".
    expect(base64OffsetsOf(encodeText('foobar', 'utf8'))).toEqual(['Zm9vYmFy', 'Zvb2Jhc', 'mb29iYX']);
  });

  it('every offset variant occurs in the encoding of a text that holds the value at that offset', () => {
    const value = encodeText('Invoke-Mimikatz', 'utf16le');
    const variants = base64OffsetsOf(value);
    for (const prefix of ['', 'a', 'ab', 'abc', 'abcd']) {
      const encoded = Buffer.concat([Buffer.from(prefix), value, Buffer.from('tail')]).toString('base64');
      expect(variants.some((v) => encoded.includes(v)), prefix).toBe(true);
    }
  });

  it('utf16 encodings', () => {
    expect([...encodeText('A', 'utf16le')]).toEqual([0x41, 0]);
    expect([...encodeText('A', 'utf16be')]).toEqual([0, 0x41]);
    expect([...encodeText('A', 'utf16')]).toEqual([0xff, 0xfe, 0x41, 0]);
  });
});

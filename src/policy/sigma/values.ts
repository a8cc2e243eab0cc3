/**
 * Sigma values as patterns: the wildcards `*` and `?` with their backslash escapes, the `windash` expansion,
 * the `base64`/`base64offset` encodings, and the conversion of one pattern + match type (equals, contains,
 * startswith, endswith) into the plainest policy matcher that means the same: a literal, a
 * contains/startswith/endswith, or — when a wildcard sits inside the text — an anchored case-insensitive regex.
 *
 * Sigma strings match case-insensitively (Sigma specification v2, "Value modifiers" / "String matching"),
 * and so do the policy's text operators; the policy `regex` is case-sensitive unless it starts with `(?i)`
 * (src/policy/matchers.ts), which is why every generated regex carries that prefix.
 */

/** Any run of characters (`*`). */
export const ANY = Symbol('*');
/** Exactly one character (`?`). */
export const ONE = Symbol('?');
export type PatternToken = string | typeof ANY | typeof ONE;
/** Literal runs (merged) and wildcards, in order. */
export type SigmaPattern = readonly PatternToken[];

/** How a value is compared with the field: the modifier that sets the match type, or none (equality). */
export type TextMatch = 'equals' | 'contains' | 'startswith' | 'endswith';

/** The policy matcher one pattern becomes; `regex` sources start with `(?i)` unless asked to be case-sensitive. */
export type TextMatcher =
  | { readonly op: 'equals' | 'contains' | 'startswith' | 'endswith' | 'regex'; readonly value: string }
  | { readonly op: 'exists'; readonly value: true };

function pushLiteral(tokens: PatternToken[], text: string): void {
  if (text === '') return;
  const last = tokens[tokens.length - 1];
  if (typeof last === 'string') tokens[tokens.length - 1] = last + text;
  else tokens.push(text);
}

/**
 * Reads a Sigma string into a pattern. Sigma spec v2 "Escaping": `\*` and `\?` are the literal characters,
 * `\\` is one backslash, and a backslash before anything else is itself (so `C:\Windows` needs no escaping).
 */
export function parseSigmaString(text: string): SigmaPattern {
  const tokens: PatternToken[] = [];
  let literal = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (ch === '\\') {
      const next = text[i + 1];
      if (next === '*' || next === '?' || next === '\\') {
        literal += next;
        i++;
      } else {
        literal += '\\';
      }
    } else if (ch === '*' || ch === '?') {
      pushLiteral(tokens, literal);
      literal = '';
      tokens.push(ch === '*' ? ANY : ONE);
    } else {
      literal += ch;
    }
  }
  pushLiteral(tokens, literal);
  return tokens;
}

/** A pattern made of one literal text (base64 output, `re` sources never pass through here). */
export function literalPattern(text: string): SigmaPattern {
  return text === '' ? [] : [text];
}

export function hasWildcard(pattern: SigmaPattern): boolean {
  return pattern.some((token) => typeof token !== 'string');
}

/** The literal text of a wildcard-free pattern. */
export function patternText(pattern: SigmaPattern): string {
  return pattern.filter((token): token is string => typeof token === 'string').join('');
}

/** The pattern written back in Sigma syntax (for messages). */
export function formatPattern(pattern: SigmaPattern): string {
  return pattern.map((token) => (token === ANY ? '*' : token === ONE ? '?' : token.replace(/[\\*?]/g, (c) => `\\${c}`))).join('');
}

// ---------------------------------------------------------------------------------------------------------
// windash

/**
 * The characters `windash` puts in place of a leading `-` or `/` (pySigma SigmaWindowsDashModifier: hyphen,
 * slash, en dash U+2013, em dash U+2014, horizontal bar U+2015 — Windows command lines accept them all).
 */
export const WINDASH_CHARACTERS = ['-', '/', '\u2013', '\u2014', '\u2015'] as const;
/** 5^4 = 625 variants at most; a value with more option dashes is refused rather than exploded. */
export const MAX_WINDASH_DASHES = 4;

const WORD_CHAR = /^[A-Za-z0-9_]$/;

/**
 * Expands `-x` / `/x` at the start of a word into every dash variant. pySigma's rule is the regex
 * `\B[-/]\b`: the dash is not preceded by a word character and is followed by one. Returns null when the
 * value has more than MAX_WINDASH_DASHES such dashes.
 */
export function expandWindash(pattern: SigmaPattern): SigmaPattern[] | null {
  // Flatten to characters so the word-boundary test can look across token edges.
  const chars: PatternToken[] = [];
  for (const token of pattern) {
    if (typeof token === 'string') for (const ch of token) chars.push(ch);
    else chars.push(token);
  }
  const dashes: number[] = [];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch !== '-' && ch !== '/') continue;
    const before = chars[i - 1];
    const after = chars[i + 1];
    const boundaryBefore = typeof before === 'string' && WORD_CHAR.test(before);
    const wordAfter = typeof after === 'string' && WORD_CHAR.test(after);
    if (!boundaryBefore && wordAfter) dashes.push(i);
  }
  if (dashes.length > MAX_WINDASH_DASHES) return null;
  let variants: PatternToken[][] = [chars];
  for (const index of dashes) {
    const next: PatternToken[][] = [];
    for (const variant of variants) {
      for (const dash of WINDASH_CHARACTERS) {
        const copy = [...variant];
        copy[index] = dash;
        next.push(copy);
      }
    }
    variants = next;
  }
  return variants.map((variant) => {
    const tokens: PatternToken[] = [];
    for (const token of variant) {
      if (typeof token === 'string') pushLiteral(tokens, token);
      else tokens.push(token);
    }
    return tokens;
  });
}

// ---------------------------------------------------------------------------------------------------------
// base64

export type TextEncoding = 'utf8' | 'utf16le' | 'utf16be' | 'utf16';

/** The bytes of a text in one of the encodings the `wide`/`utf16*` modifiers select (pySigma encodings). */
export function encodeText(text: string, encoding: TextEncoding): Buffer {
  switch (encoding) {
    case 'utf8':
      return Buffer.from(text, 'utf8');
    case 'utf16le':
      return Buffer.from(text, 'utf16le');
    case 'utf16be':
      return Buffer.from(text, 'utf16le').swap16();
    case 'utf16':
      // Python's "utf-16" codec: a byte-order mark, then little-endian.
      return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
  }
}

/** `base64`: the whole value encoded (with padding), as pySigma's SigmaBase64Modifier. */
export function base64Of(bytes: Buffer): string {
  return bytes.toString('base64');
}

/**
 * `base64offset`: the three encodings of the value at byte offsets 0, 1 and 2 inside a longer text, each
 * trimmed to the characters that do not depend on the neighbouring bytes (pySigma SigmaBase64OffsetModifier:
 * start offsets 0, 2, 3; end offsets none, -3, -2 chosen by (length + shift) mod 3).
 */
export function base64OffsetsOf(bytes: Buffer): string[] {
  const starts = [0, 2, 3];
  const ends = [undefined, -3, -2];
  const out: string[] = [];
  for (let shift = 0; shift < 3; shift++) {
    const encoded = Buffer.concat([Buffer.alloc(shift, 0x20), bytes]).toString('base64');
    const end = ends[(bytes.length + shift) % 3];
    out.push(encoded.slice(starts[shift], end));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Pattern → policy matcher

const REGEX_SPECIAL = /[\\^$.*+?()[\]{}|/]/g;

export function escapeRegex(text: string): string {
  return text.replace(REGEX_SPECIAL, (c) => `\\${c}`);
}

/**
 * Optional `scheme://authority` in front of a path: lets a pattern written for the path-and-query of a URI
 * (`c-uri: /admin/get.php`) match both the absolute-form request target a forward proxy receives
 * (`http://host/admin/get.php`) and the origin form of requests inside a bumped tunnel (RFC 9112 §3.2).
 */
export const OPTIONAL_AUTHORITY = '(?:[a-z][a-z0-9+.-]*://[^/?#]*)?';

export interface MatcherOptions {
  /** Case-sensitive matching (the `cased` modifier): always a regex without `(?i)`. */
  readonly cased?: boolean;
  /** The field holds a request target: anchor-at-start patterns starting with `/` allow a leading authority. */
  readonly originForm?: boolean;
}

/**
 * The policy matcher for one pattern under one match type. Wildcards at the ends only become
 * contains/startswith/endswith; a wildcard inside becomes an anchored `(?i)` regex (`*` → `[\s\S]*`,
 * `?` → `[\s\S]`: Sigma wildcards also match line breaks). `*` alone means "any value": exists.
 */
export function patternMatcher(pattern: SigmaPattern, match: TextMatch, options: MatcherOptions = {}): TextMatcher {
  const tokens: PatternToken[] = [...pattern];
  if (match === 'contains' || match === 'endswith') tokens.unshift(ANY);
  if (match === 'contains' || match === 'startswith') tokens.push(ANY);
  let lead = false;
  let trail = false;
  while (tokens[0] === ANY) {
    tokens.shift();
    lead = true;
  }
  while (tokens.length > 0 && tokens[tokens.length - 1] === ANY) {
    tokens.pop();
    trail = true;
  }
  if (tokens.length === 0) {
    // `*` (or `contains: ''`): any value, empty included. Plain `''` (no wildcard at all) is an empty literal.
    if (lead || trail) return { op: 'exists', value: true };
    return options.cased === true ? { op: 'regex', value: '^$' } : { op: 'equals', value: '' };
  }
  const first = tokens[0];
  const authority = options.originForm === true && !lead && typeof first === 'string' && first.startsWith('/');
  if (!hasWildcard(tokens) && options.cased !== true && !authority) {
    const text = patternText(tokens);
    if (lead && trail) return { op: 'contains', value: text };
    if (lead) return { op: 'endswith', value: text };
    if (trail) return { op: 'startswith', value: text };
    return { op: 'equals', value: text };
  }
  let source = '';
  for (const token of tokens) source += token === ANY ? '[\\s\\S]*' : token === ONE ? '[\\s\\S]' : escapeRegex(token);
  const start = lead ? '' : `^${authority ? OPTIONAL_AUTHORITY : ''}`;
  const end = trail ? '' : '$';
  return { op: 'regex', value: `${options.cased === true ? '' : '(?i)'}${start}${source}${end}` };
}

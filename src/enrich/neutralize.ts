/**
 * Text from endpoints and clients (process names, paths, command lines, users, hosts) is shown to an analyst
 * in the flow log, the console and a SIEM. Characters that change how text *looks* without being seen —
 * bidirectional overrides (the "Trojan Source" trick, CVE-2021-42574; MITRE ATT&CK T1036.002 Right-to-Left
 * Override: `invoice\u202Eexe.pdf` displays as `invoicefdp.exe`), zero-width and other invisible format
 * characters, C0/C1 controls — would make a record say something other than what the endpoint reported.
 *
 * `neutralize` replaces each such character by a visible mark `<U+XXXX>` (its code point, uppercase hex, 4 to 6
 * digits), so the record shows that something was there and what. The original stays recoverable: a literal
 * `<U+` already in the text is written `<U+003C>U+` (the `<` as a mark), so every `<U+` in neutralised text
 * starts a mark and `decodeNeutralized` inverts it exactly: decodeNeutralized(neutralize(s)) === s for every
 * JavaScript string (property-tested, lone surrogates included). Text without those characters and without
 * `<U+` is returned unchanged (the same string), so policy values and clean names compare as before.
 *
 * Which characters (the set is closed and documented in docs/process-hints.md):
 *  - C0 controls U+0000–U+001F except TAB (a tab in a command line is ordinary whitespace), DEL U+007F and the
 *    C1 controls U+0080–U+009F (Unicode "Cc");
 *  - bidirectional formatting characters (UAX #9 §2, "Explicit Directional Formatting Characters" and "Implicit
 *    Directional Marks"): ALM U+061C, LRM/RLM U+200E–U+200F, LRE/RLE/PDF/LRO/RLO U+202A–U+202E,
 *    LRI/RLI/FSI/PDI U+2066–U+2069;
 *  - invisible characters: soft hyphen U+00AD, Mongolian vowel separator U+180E, zero-width space/non-joiner/
 *    joiner U+200B–U+200D, word joiner and invisible operators U+2060–U+2064 (with the deprecated format
 *    characters up to U+206F), zero-width no-break space / BOM U+FEFF, interlinear annotation U+FFF9–U+FFFB,
 *    tag characters U+E0000–U+E007F ("ASCII smuggling");
 *  - line and paragraph separators U+2028–U+2029 (they break a line in a viewer as LF does);
 *  - lone surrogates U+D800–U+DFFF (not text at all; JSON allows them as `\uD800` escapes).
 */

/** Characters made visible, plus a literal `<U+` (escaped so that marks stay unambiguous). Compiled once. */
const NEEDS_NEUTRALIZING =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000A-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u2028-\u202E\u2060-\u206F\uFEFF\uFFF9-\uFFFB\u{E0000}-\u{E007F}\uD800-\uDFFF]|<U\+/u;
/** A mark for anything but the `<` escape: the text carried a character that was neutralised. */
const REAL_MARK = /<U\+(?!003C>)[0-9A-F]{4,6}>/;

/** The BMP part of the set (UTF-16 code units; surrogates and tags are handled by the caller). */
function isMarkedUnit(c: number): boolean {
  if (c < 0x20) return c !== 0x09;
  if (c < 0x7f) return false;
  if (c <= 0x9f) return true;
  if (c < 0xad) return false;
  return (
    c === 0x00ad ||
    c === 0x061c ||
    c === 0x180e ||
    (c >= 0x200b && c <= 0x200f) ||
    (c >= 0x2028 && c <= 0x202e) ||
    (c >= 0x2060 && c <= 0x206f) ||
    c === 0xfeff ||
    (c >= 0xfff9 && c <= 0xfffb)
  );
}

/** `<U+202E>`: the code point in uppercase hex, at least 4 digits (the Unicode "U+" notation). */
function markOf(codePoint: number): string {
  return `<U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}>`;
}

/** The text with every control, bidi and invisible character replaced by a visible `<U+XXXX>` mark. */
export function neutralize(text: string): string {
  if (!NEEDS_NEUTRALIZING.test(text)) return text; // the common case: one native scan, same string back
  let out = '';
  let from = 0; // start of the clean run not yet copied
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    let mark: string | null = null;
    let width = 1;
    if (c === 0x3c /* < */) {
      // `<U+` in the original: its `<` becomes a mark, so decoding cannot mistake the text for a mark.
      if (text.charCodeAt(i + 1) === 0x55 && text.charCodeAt(i + 2) === 0x2b) mark = '<U+003C>';
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const next = text.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        const cp = ((c - 0xd800) << 10) + (next - 0xdc00) + 0x10000;
        width = 2;
        if (cp >= 0xe0000 && cp <= 0xe007f) mark = markOf(cp); // tag characters
      } else {
        mark = markOf(c); // a lone surrogate
      }
    } else if (isMarkedUnit(c)) {
      mark = markOf(c);
    }
    if (mark !== null) {
      out += text.slice(from, i) + mark;
      from = i + width;
    }
    i += width - 1;
  }
  return out + text.slice(from);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** The original text of a neutralised one (the inverse of `neutralize`): every `<U+XXXX>` (4–6 hex) decoded. */
export function decodeNeutralized(text: string): string {
  let at = text.indexOf('<U+');
  if (at < 0) return text;
  let out = '';
  let from = 0;
  while (at >= 0) {
    let cp = 0;
    let digits = 0;
    let j = at + 3;
    for (let h = hexValue(text.charCodeAt(j)); h >= 0 && digits < 7; h = hexValue(text.charCodeAt(j))) {
      cp = cp * 16 + h;
      digits++;
      j++;
    }
    if (digits >= 4 && digits <= 6 && text.charCodeAt(j) === 0x3e /* > */ && cp <= 0x10ffff) {
      out += text.slice(from, at) + String.fromCodePoint(cp);
      from = j + 1;
      at = text.indexOf('<U+', from);
    } else {
      at = text.indexOf('<U+', at + 1); // not a mark (neutralize never writes one): kept as it is
    }
  }
  return out + text.slice(from);
}

/**
 * true when neutralised text carries a mark for a control, bidi or invisible character — not merely an
 * escaped `<U+` from the original. What `egress.neutralized` lists.
 */
export function wasNeutralized(text: string): boolean {
  return text.indexOf('<U+') >= 0 && REAL_MARK.test(text);
}

/** true when the character at code point `cp` is one `neutralize` replaces. */
export function isNeutralizedCodePoint(cp: number): boolean {
  if (cp < 0 || cp > 0x10ffff) return false;
  return NEEDS_NEUTRALIZING.test(String.fromCodePoint(cp));
}

/**
 * `egress.neutralized` with `field` added when `value` carries a mark (first-seen order, no duplicates); the same
 * list when it does not. The list says which record fields to decode before comparing with endpoint evidence.
 */
export function noteNeutralized(list: readonly string[] | undefined, field: string, value: string | null | undefined): readonly string[] | undefined {
  if (value === null || value === undefined || !wasNeutralized(value)) return list;
  if (list === undefined) return [field];
  return list.includes(field) ? list : [...list, field];
}

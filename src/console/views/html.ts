/**
 * HTML that cannot forget to escape: the console's views (issue 13) build every page through the `html` tag,
 * which escapes each interpolated value unless it is already `SafeHtml`. Nearly everything the console shows is
 * attacker-controlled — host names, process names, user agents, URLs, even rule ids in a policy file — so an
 * unescaped value is a stored XSS into the one page an operator keeps open. The CSP (no inline script) is the
 * second wall, not the first.
 *
 * Escaping follows the OWASP XSS Prevention Cheat Sheet, rules 1 and 2: & < > " ' become entities, and every
 * attribute value in the templates is quoted with double quotes, so one escape serves element content and
 * attribute values alike. Values are never placed in a URL scheme position, a <script>, a style or an event
 * handler (the CSP forbids the last three anyway): hrefs are built from fixed paths plus URLSearchParams.
 */

/** Only this module can mint SafeHtml (through `html` and `raw`), so the brand cannot be forged by a cast. */
const MINT = Symbol('SafeHtml.mint');

/** Markup known to be safe: built by `html` from escaped parts, or a trusted constant passed to `raw`. */
export class SafeHtml {
  readonly #text: string;

  constructor(mint: symbol, text: string) {
    if (mint !== MINT) throw new TypeError('SafeHtml is made by html`` or raw(), never directly');
    this.#text = text;
  }

  toString(): string {
    return this.#text;
  }
}

/** What a template may interpolate: `false`, null and undefined render nothing (so `cond && html\`…\`` works). */
export type HtmlValue = SafeHtml | string | number | false | null | undefined | readonly HtmlValue[];

const NEEDS_ESCAPE = /[&<>"']/;
const ESCAPED_CHARS = /[&<>"']/g;
const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** `text` with & < > " ' as entities: safe as element content and inside a double-quoted attribute. */
export function escapeHtml(text: string): string {
  return NEEDS_ESCAPE.test(text) ? text.replace(ESCAPED_CHARS, (c) => ENTITIES[c] ?? c) : text;
}

function render(value: HtmlValue): string {
  if (value instanceof SafeHtml) return value.toString();
  if (value === null || value === undefined || value === false) return '';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return escapeHtml(value);
  let out = '';
  for (const item of value) out += render(item);
  return out;
}

/** Tagged template: the literal parts are trusted markup, every `${value}` is escaped unless it is SafeHtml. */
export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new SafeHtml(MINT, out);
}

/** Trusted markup as is. Only for constants written in this code base, never for data. */
export function raw(trusted: string): SafeHtml {
  return new SafeHtml(MINT, trusted);
}

/** Values joined with `separator` (markup, e.g. raw(', ')), each escaped unless SafeHtml. */
export function joinHtml(values: readonly HtmlValue[], separator: SafeHtml): SafeHtml {
  const sep = separator.toString();
  return new SafeHtml(MINT, values.map(render).join(sep));
}

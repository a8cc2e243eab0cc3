/**
 * Sigma `condition` expressions (Sigma specification v2, "Condition"): search identifiers combined with
 * `and`, `or`, `not` and parentheses, and the quantifiers `1 of <pattern>` / `all of <pattern>` /
 * `1 of them` / `all of them`. Precedence, loosest first: `or`, `and`, `not` (and `x of` binds like an
 * identifier). A pattern may use `*` (`selection_*`); `them` means every search identifier except those
 * starting with `_` (pySigma's convention for helper identifiers).
 *
 * The old aggregation syntax (`selection | count() by src_ip > 50`) is refused: correlations need state
 * across events, and a per-flow policy rule cannot express them. Pure; never throws — errors are values.
 */

export type ConditionNode =
  | { readonly kind: 'id'; readonly name: string }
  | { readonly kind: 'of'; readonly quantifier: 'one' | 'all'; readonly pattern: string }
  | { readonly kind: 'and'; readonly items: readonly ConditionNode[] }
  | { readonly kind: 'or'; readonly items: readonly ConditionNode[] }
  | { readonly kind: 'not'; readonly item: ConditionNode };

export type ConditionResult = { readonly ok: true; readonly node: ConditionNode } | { readonly ok: false; readonly error: string };

/** Longer conditions are refused: no real rule comes close, and the parser recurses per parenthesis. */
export const MAX_CONDITION_LENGTH = 4096;
const MAX_DEPTH = 64;

type Token =
  | { readonly kind: 'word'; readonly text: string; readonly at: number }
  | { readonly kind: '(' | ')'; readonly at: number };

const KEYWORDS = new Set(['and', 'or', 'not', 'of', 'them', 'all']);
/** Identifier characters (pySigma: alphanumerics, `_`, `-`), plus `*` for patterns after `of`. */
const WORD_CHAR = /[A-Za-z0-9_*-]/;

class ConditionError extends Error {}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      i++;
    } else if (ch === '(' || ch === ')') {
      tokens.push({ kind: ch, at: i });
      i++;
    } else if (ch === '|') {
      throw new ConditionError(`aggregation ("|" at column ${i + 1}) is the old Sigma correlation syntax; it counts events over time, which a per-flow policy rule cannot express`);
    } else if (WORD_CHAR.test(ch)) {
      const start = i;
      while (i < text.length && WORD_CHAR.test(text[i] as string)) i++;
      tokens.push({ kind: 'word', text: text.slice(start, i), at: start });
    } else {
      throw new ConditionError(`unexpected character "${ch}" at column ${i + 1}`);
    }
  }
  return tokens;
}

class Parser {
  private index = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  parse(): ConditionNode {
    if (this.tokens.length === 0) throw new ConditionError('the condition is empty');
    const node = this.parseOr(0);
    const extra = this.tokens[this.index];
    if (extra !== undefined) throw new ConditionError(`unexpected ${describe(extra)} at column ${extra.at + 1}`);
    return node;
  }

  private peekWord(): string | null {
    const token = this.tokens[this.index];
    return token?.kind === 'word' ? token.text : null;
  }

  private parseOr(depth: number): ConditionNode {
    const items = [this.parseAnd(depth)];
    while (this.peekWord() === 'or') {
      this.index++;
      items.push(this.parseAnd(depth));
    }
    return items.length === 1 ? (items[0] as ConditionNode) : { kind: 'or', items };
  }

  private parseAnd(depth: number): ConditionNode {
    const items = [this.parseNot(depth)];
    while (this.peekWord() === 'and') {
      this.index++;
      items.push(this.parseNot(depth));
    }
    return items.length === 1 ? (items[0] as ConditionNode) : { kind: 'and', items };
  }

  private parseNot(depth: number): ConditionNode {
    if (this.peekWord() === 'not') {
      this.index++;
      if (depth >= MAX_DEPTH) throw new ConditionError(`nested more than ${MAX_DEPTH} levels deep`);
      return { kind: 'not', item: this.parseNot(depth + 1) };
    }
    return this.parsePrimary(depth);
  }

  private parsePrimary(depth: number): ConditionNode {
    const token = this.tokens[this.index];
    if (token === undefined) throw new ConditionError('the condition ends where a search identifier was expected');
    if (token.kind === '(') {
      if (depth >= MAX_DEPTH) throw new ConditionError(`nested more than ${MAX_DEPTH} levels deep`);
      this.index++;
      const inner = this.parseOr(depth + 1);
      const close = this.tokens[this.index];
      if (close?.kind !== ')') {
        throw new ConditionError(close === undefined ? 'missing ")"' : `expected ")" at column ${close.at + 1}, got ${describe(close)}`);
      }
      this.index++;
      return inner;
    }
    if (token.kind !== 'word') throw new ConditionError(`unexpected ")" at column ${token.at + 1}`);
    const word = token.text;
    const next = this.tokens[this.index + 1];
    if (next?.kind === 'word' && next.text === 'of') {
      if (word !== '1' && word !== 'all') {
        throw new ConditionError(`"${word} of" is not supported; Sigma has "1 of" and "all of"`);
      }
      const target = this.tokens[this.index + 2];
      if (target?.kind !== 'word' || (KEYWORDS.has(target.text) && target.text !== 'them')) {
        throw new ConditionError(`"${word} of" at column ${token.at + 1} needs "them" or an identifier pattern`);
      }
      this.index += 3;
      return { kind: 'of', quantifier: word === '1' ? 'one' : 'all', pattern: target.text };
    }
    if (KEYWORDS.has(word)) throw new ConditionError(`unexpected "${word}" at column ${token.at + 1}`);
    if (word.includes('*')) throw new ConditionError(`"${word}": a pattern needs "1 of" or "all of" in front`);
    if (/^[0-9]+$/.test(word)) throw new ConditionError(`unexpected number "${word}" at column ${token.at + 1}`);
    this.index++;
    return { kind: 'id', name: word };
  }
}

function describe(token: Token): string {
  return token.kind === 'word' ? `"${token.text}"` : `"${token.kind}"`;
}

/** Parses one Sigma condition string. */
export function parseCondition(text: string): ConditionResult {
  if (text.length > MAX_CONDITION_LENGTH) return { ok: false, error: `the condition is longer than ${MAX_CONDITION_LENGTH} characters` };
  try {
    return { ok: true, node: new Parser(tokenize(text)).parse() };
  } catch (err) {
    if (err instanceof ConditionError) return { ok: false, error: err.message };
    throw err;
  }
}

/** Whether an identifier matches an `x of` pattern (`*` = any run of characters; `them` = all but `_…`). */
export function matchesPattern(identifier: string, pattern: string): boolean {
  if (pattern === 'them') return !identifier.startsWith('_');
  const parts = pattern.split('*');
  if (parts.length === 1) return identifier === pattern;
  const first = parts[0] as string;
  const last = parts[parts.length - 1] as string;
  if (!identifier.startsWith(first) || identifier.length < first.length + last.length || !identifier.endsWith(last)) return false;
  let at = first.length;
  const stop = identifier.length - last.length;
  for (const middle of parts.slice(1, -1)) {
    const found = identifier.indexOf(middle, at);
    if (found < 0 || found + middle.length > stop) return false;
    at = found + middle.length;
  }
  return true;
}

/** The identifiers an `x of` pattern names, in detection order. */
export function identifiersOf(pattern: string, identifiers: readonly string[]): string[] {
  return identifiers.filter((identifier) => matchesPattern(identifier, pattern));
}

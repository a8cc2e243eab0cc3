/**
 * Catastrophic backtracking in policy `regex` matchers (ReDoS). A policy pattern runs on every flow, over values a
 * client chose (URL paths, User-Agent, host names): a pattern such as `^(a+)+$` takes time exponential in the
 * input's length on V8's backtracking engine, and one such request would hold the proxy's event loop for seconds.
 *
 * What is refused, and what is kept (src/policy/matchers.ts):
 * - The classic cause is nested repetition: a group repeated without a small bound (`*`, `+`, `{n,}`, `{n,m}` with
 *   m > 1) that itself holds an unbounded repetition (`(a+)+`, `(\w+\s?)*`, `(.*,){2,}`) — "star height" above one,
 *   the check of the `safe-regex` package and of the OWASP ReDoS guidance. `nestedRepetition` finds it.
 * - Such a pattern is compiled for V8's linear-time engine (the `l` flag, enabled below), which runs it in time
 *   linear in the input whatever it holds (V8 blog, "An additional non-backtracking RegExp engine", 2021). Many
 *   patterns with harmless nesting, such as `([a-z0-9-]+\.){2,}` for host names, stay usable that way.
 * - What that engine cannot run (lookarounds, back-references, `(?i)`, repetition counts of 16 or more) is refused
 *   at load with the construct named, as any other invalid matcher: the last good policy stays in force.
 * Patterns without nested repetition run on the usual engine unchanged (their cost is polynomial at worst; the
 * values they see are bounded by the proxy's header and URL limits).
 */
import v8 from 'node:v8';

// Enables the `l` flag (V8's experimental linear-time engine) for the patterns that need it; it changes nothing for
// any other regular expression. Node 20 (V8 11.3) has it behind this flag; set once, at load.
v8.setFlagsFromString('--enable-experimental-regexp-engine');

/** A repetition whose upper bound is above one (`*`, `+`, `{n,}`, `{n,m}` with m > 1), or null. */
interface Quantifier {
  /** Characters the quantifier takes (including a lazy `?`). */
  readonly length: number;
  /** No upper bound. */
  readonly unbounded: boolean;
  /** Repeats more than once. */
  readonly repeats: boolean;
}

/** `{n}`, `{n,}`, `{n,m}` at the start of the text; anything else after `{` is a literal brace. */
const BRACES = /^\{(\d+)(,(\d*))?\}/;

function quantifierAt(source: string, i: number): Quantifier | null {
  const c = source[i];
  let length: number;
  let unbounded = false;
  let repeats = false;
  if (c === '*' || c === '+') {
    length = 1;
    unbounded = true;
    repeats = true;
  } else if (c === '?') {
    length = 1;
  } else if (c === '{') {
    const m = BRACES.exec(source.slice(i, i + 24));
    if (m === null) return null; // a literal brace
    length = m[0].length;
    if (m[2] !== undefined) {
      unbounded = m[3] === '';
      repeats = unbounded || Number(m[3]) > 1;
    } else {
      repeats = Number(m[1]) > 1;
    }
  } else {
    return null;
  }
  if (source[i + length] === '?') length++; // lazy: still backtracks
  return { length, unbounded, repeats };
}

/** Index just past the character class starting at `[` (escapes inside honoured), or the end. */
function skipClass(source: string, i: number): number {
  let j = i + 1;
  if (source[j] === '^') j++;
  if (source[j] === ']') j++; // a leading ] is a literal
  while (j < source.length && source[j] !== ']') j += source[j] === '\\' ? 2 : 1;
  return j + 1;
}

/**
 * The first group that repeats while holding an unbounded repetition, as `(…)+` text for the error message, or
 * null when the pattern has none. Works on the pattern's source as JavaScript reads it (escapes, classes, groups
 * of every kind); a pattern it cannot follow is left to `new RegExp`, which reports it.
 */
export function nestedRepetition(source: string): string | null {
  /** Per open group: where it starts, and whether something inside it repeats without bound. */
  const stack: { start: number; unbounded: boolean }[] = [{ start: 0, unbounded: false }];
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    let atomEnd: number;
    let groupInnerUnbounded = false;
    let groupStart = -1;
    if (c === '\\') {
      atomEnd = i + 2;
    } else if (c === '[') {
      atomEnd = skipClass(source, i);
    } else if (c === '(') {
      stack.push({ start: i, unbounded: false });
      i++;
      continue;
    } else if (c === ')') {
      const group = stack.length > 1 ? stack.pop() : undefined;
      if (group === undefined) return null; // unbalanced: new RegExp refuses it
      groupInnerUnbounded = group.unbounded;
      groupStart = group.start;
      atomEnd = i + 1;
    } else {
      atomEnd = i + 1;
    }
    const q = quantifierAt(source, atomEnd);
    const top = stack[stack.length - 1] as { start: number; unbounded: boolean };
    if (groupStart !== -1) {
      if (q !== null && q.repeats && groupInnerUnbounded) return source.slice(groupStart, atomEnd + q.length);
      // The group's own unbounded content, or its unbounded repetition, makes the enclosing group's content so.
      if (groupInnerUnbounded || (q !== null && q.unbounded)) top.unbounded = true;
    } else if (q !== null && q.unbounded) {
      top.unbounded = true;
    }
    i = atomEnd + (q === null ? 0 : q.length);
  }
  return null;
}

/**
 * Compiles a policy pattern so that it cannot backtrack catastrophically: as given when it has no nested
 * repetition, else for the linear-time engine. Throws an Error naming the construct when neither is possible
 * (and SyntaxError for an invalid pattern, as `new RegExp` does).
 */
export function compileSafeRegex(source: string, flags: string): RegExp {
  const re = new RegExp(source, flags);
  const nested = nestedRepetition(source);
  if (nested === null) return re;
  try {
    return new RegExp(source, `${flags}l`);
  } catch {
    throw new Error(
      `${nested} repeats a group that itself repeats without bound: on some inputs its matching time grows exponentially (ReDoS), ` +
        `and the linear-time engine cannot run this pattern (it does not support ${flags.includes('i') ? '(?i), ' : ''}lookarounds, back-references or counts of 16 or more); ` +
        'remove the nesting (e.g. (a+)+ → a+), bound the inner repetition, or drop those constructs',
    );
  }
}

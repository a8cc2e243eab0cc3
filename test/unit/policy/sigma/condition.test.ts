import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { identifiersOf, matchesPattern, parseCondition, type ConditionNode } from '../../../../src/policy/sigma/condition.js';

/** The tree in a compact prefix form: and(a, or(b, c)), not(x), one(sel_*), all(them). */
function show(node: ConditionNode): string {
  switch (node.kind) {
    case 'id':
      return node.name;
    case 'of':
      return `${node.quantifier}(${node.pattern})`;
    case 'and':
    case 'or':
      return `${node.kind}(${node.items.map(show).join(', ')})`;
    case 'not':
      return `not(${show(node.item)})`;
  }
}

function parsed(text: string): string {
  const result = parseCondition(text);
  if (!result.ok) throw new Error(result.error);
  return show(result.node);
}

function error(text: string): string {
  const result = parseCondition(text);
  if (result.ok) throw new Error(`parsed: ${show(result.node)}`);
  return result.error;
}

describe('parseCondition', () => {
  it.each([
    ['a plain identifier', 'selection', 'selection'],
    ['and binds tighter than or', 'a or b and c', 'or(a, and(b, c))'],
    ['and binds tighter than or (left)', 'a and b or c', 'or(and(a, b), c)'],
    ['not binds tighter than and', 'not a and b', 'and(not(a), b)'],
    ['parentheses override precedence', '(a or b) and c', 'and(or(a, b), c)'],
    ['not of a parenthesised group', 'selection and not (filter1 or filter2)', 'and(selection, not(or(filter1, filter2)))'],
    ['double negation is kept for the converter', 'not not a', 'not(not(a))'],
    ['chains flatten', 'a and b and c', 'and(a, b, c)'],
    ['1 of a pattern', '1 of selection_*', 'one(selection_*)'],
    ['all of a pattern', 'all of selection*', 'all(selection*)'],
    ['1 of them', '1 of them', 'one(them)'],
    ['all of them', 'all of them', 'all(them)'],
    ['the usual SigmaHQ filter shape', 'selection and not 1 of filter_main_* and not 1 of filter_optional_*', 'and(selection, not(one(filter_main_*)), not(one(filter_optional_*)))'],
    ['identifiers with digits and dashes', 'sel-1 or sel_2', 'or(sel-1, sel_2)'],
  ])('%s: %s', (_name, text, expected) => {
    expect(parsed(text)).toBe(expected);
  });

  it.each([
    ['empty', '', /empty/],
    ['aggregation', 'selection | count() by src_ip > 50', /aggregation/],
    ['unbalanced (', '(a and b', /missing "\)"/],
    ['unbalanced )', 'a and b)', /unexpected "\)"/],
    ['dangling operator', 'a and', /ends where/],
    ['two identifiers', 'a b', /unexpected "b"/],
    ['2 of is not Sigma', '2 of sel*', /"2 of" is not supported/],
    ['of without a target', '1 of', /needs "them"/],
    ['a pattern without a quantifier', 'selection_*', /needs "1 of" or "all of"/],
    ['a bad character', 'a & b', /unexpected character "&"/],
    ['a keyword as identifier', 'and', /unexpected "and"/],
  ])('refuses %s', (_name, text, message) => {
    expect(error(text)).toMatch(message);
  });

  it('refuses deep nesting instead of recursing without bound', () => {
    expect(error(`${'('.repeat(100)}a${')'.repeat(100)}`)).toMatch(/nested more than 64/);
    expect(error(`${'not '.repeat(100)}a`)).toMatch(/nested more than 64/);
  });

  it('never throws on any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', 'b', ' ', '(', ')', 'and', 'or', 'not', '1 of', 'all of', 'them', '*', '|', '_', 'x') }), (text) => {
        const result = parseCondition(text);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });
});

describe('x of patterns', () => {
  const names = ['selection', 'selection_img', 'selection_cli', 'filter_main_a', 'filter_optional_b', '_helper'];

  it.each([
    ['selection_*', ['selection_img', 'selection_cli']],
    ['selection*', ['selection', 'selection_img', 'selection_cli']],
    ['filter_*', ['filter_main_a', 'filter_optional_b']],
    ['*_b', ['filter_optional_b']],
    ['filter*a', ['filter_main_a']],
    ['them', ['selection', 'selection_img', 'selection_cli', 'filter_main_a', 'filter_optional_b']],
    ['nothing_*', []],
  ])('%s', (pattern, expected) => {
    expect(identifiersOf(pattern, names)).toEqual(expected);
  });

  it('a pattern without * is an exact name', () => {
    expect(matchesPattern('selection', 'selection')).toBe(true);
    expect(matchesPattern('selection2', 'selection')).toBe(false);
  });
});

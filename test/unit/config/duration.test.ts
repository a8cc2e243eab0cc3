import { describe, expect, it } from 'vitest';
import { MAX_DURATION_MS, parseDuration } from '../../../src/config/duration.js';

describe('parseDuration', () => {
  it.each([
    ['milliseconds', '250ms', 250],
    ['seconds', '10s', 10_000],
    ['minutes', '2m', 120_000],
    ['hours', '1h', 3_600_000],
    ['decimal seconds, free of float noise', '1.1s', 1_100],
    ['bare number is milliseconds', 1500, 1_500],
    ['digit string is milliseconds (from ${VAR})', '1500', 1_500],
    ['zero', '0s', 0],
    ['the longest a Node timer honours', `${MAX_DURATION_MS}ms`, MAX_DURATION_MS],
  ])('accepts %s', (_intent, input, ms) => {
    expect(parseDuration(input)).toEqual({ ok: true, value: ms });
  });

  it.each([
    ['a word', 'ten', 'expected a duration like "10s"'],
    ['an unknown unit', '10w', 'expected a duration like "10s"'],
    ['days beyond what a timer can wait', '30d', 'expected a duration of at most 2147483647ms (about 24.8 days)'],
    ['a space before the unit', '10 s', 'expected a duration like "10s"'],
    ['a negative number', -5, 'expected a duration like "10s"'],
    ['a negative text', '-5s', 'expected a duration like "10s"'],
    ['a boolean', true, 'expected a duration like "10s"'],
    ['null', null, 'expected a duration like "10s"'],
    ['infinity', Number.POSITIVE_INFINITY, 'expected a duration like "10s"'],
    ['a fraction of a millisecond', '0.5ms', 'expected a whole number of milliseconds'],
    ['a fractional bare number', 1.5, 'expected a whole number of milliseconds'],
    ['more than setTimeout can wait', '1000h', 'expected a duration of at most 2147483647ms (about 24.8 days)'],
  ])('refuses %s', (_intent, input, expected) => {
    expect(parseDuration(input)).toEqual({ ok: false, expected });
  });

  it('refuses zero only where a positive duration is required', () => {
    expect(parseDuration('0s', { positive: true })).toEqual({ ok: false, expected: 'expected a duration greater than 0' });
    expect(parseDuration('1ms', { positive: true })).toEqual({ ok: true, value: 1 });
  });
});

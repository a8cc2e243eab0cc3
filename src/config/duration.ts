/**
 * Durations in the configuration: "250ms", "10s", "2m", "1h", "7d" or a bare number of milliseconds, stored as a
 * whole number of milliseconds.
 */

/** What a value parser returns: the value, or what was expected (the caller adds what it got). */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly expected: string };

/**
 * The longest delay Node's timers honour: `setTimeout` silently turns anything above 2^31-1 ms into 1 ms
 * (TimeoutOverflowWarning), so a "1000h" timeout would fire at once. Refused here instead.
 */
export const MAX_DURATION_MS = 2_147_483_647;

/** Ten years: the bound of durations that are not timer delays. */
const MAX_LONG_DURATION_MS = 3650 * 86_400_000;

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_TEXT = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;

const EXPECTED = 'expected a duration like "10s"';

/**
 * `long`: the value is never a timer delay (a baseline's learning period, a half-life), so it may exceed what
 * setTimeout honours; it is still bounded (10 years) so arithmetic on it stays exact.
 */
export function parseDuration(value: unknown, opts: { readonly positive?: boolean; readonly long?: boolean } = {}): Parsed<number> {
  let ms: number;
  if (typeof value === 'number') {
    ms = value;
  } else if (typeof value === 'string') {
    const m = DURATION_TEXT.exec(value);
    if (m === null) return { ok: false, expected: EXPECTED };
    // A unit-less string is milliseconds, like a bare number: `${TIMEOUT_MS}` expands to a string.
    ms = Number(m[1]) * UNIT_MS[(m[2] ?? 'ms') as keyof typeof UNIT_MS];
    // "1.1s" is 1100.0000000000002 in floating point; anything closer than a nanosecond is a whole ms.
    if (Math.abs(ms - Math.round(ms)) < 1e-6) ms = Math.round(ms);
  } else {
    return { ok: false, expected: EXPECTED };
  }
  if (!Number.isFinite(ms) || ms < 0) return { ok: false, expected: EXPECTED };
  if (!Number.isInteger(ms)) return { ok: false, expected: 'expected a whole number of milliseconds' };
  if (opts.long === true) {
    if (ms > MAX_LONG_DURATION_MS) return { ok: false, expected: 'expected a duration of at most 3650d' };
  } else if (ms > MAX_DURATION_MS) return { ok: false, expected: `expected a duration of at most ${MAX_DURATION_MS}ms (about 24.8 days)` };
  if (opts.positive === true && ms === 0) return { ok: false, expected: 'expected a duration greater than 0' };
  return { ok: true, value: ms };
}

/**
 * `new Date(ms).toISOString()` for the flow's timestamps (`@timestamp`, `event.end`: two per flow), without a
 * Date and a full formatting each time: flows that start or end within the same second share the text up to the
 * seconds, and the milliseconds come from a table. Same text as toISOString for every instant (years 0–9999; any
 * other falls back to toISOString itself).
 */

/** `"000Z"` … `"999Z"`. */
const MILLIS: readonly string[] = Array.from({ length: 1000 }, (_, ms) => `${String(ms).padStart(3, '0')}Z`);

/** The second last formatted, and its text up to and including the `.` before the milliseconds. */
let cachedSecond = Number.NaN;
let cachedPrefix = '';

export function isoTime(instant: number): string {
  const ms = Math.trunc(instant); // as Date does (TimeClip)
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    const full = new Date(second * 1000).toISOString();
    // Six-digit (expanded) years and invalid instants are not cached: toISOString answers them itself.
    if (full.length !== 24) return new Date(ms).toISOString();
    cachedSecond = second;
    cachedPrefix = full.slice(0, 20);
  }
  return cachedPrefix + (MILLIS[ms - second * 1000] as string);
}

/**
 * A flow's `event.id`: a UUID version 7 (RFC 9562 §5.7) — 48 bits of Unix time in milliseconds, the version,
 * then 74 random bits (the variant's two bits in between). Still a UUID in the usual 8-4-4-4-12 text, unique
 * without coordination (74 random bits per millisecond, across processes and workers alike), and ordered by
 * time: the text of a later millisecond sorts after every earlier one.
 *
 * Why not version 4 (fully random): every store keyed by the id — the console history's id index here, an
 * Elasticsearch `_id`, a SIEM's table — then inserts at a random place in its B-tree and prunes the oldest rows
 * from random places too, touching a page per row that no cache holds once the table is large (RFC 9562 §6.13
 * recommends time-ordered ids for database keys for this reason). Measured in the console history (issue 9):
 * bench/history-ids.bench.ts, docs/performance.md "seventh session".
 *
 * Within one millisecond the ids are random relative to each other (RFC 9562 §6.2 allows it): locality needs
 * only the time prefix, and the random part comes from node:crypto (randomUUID's buffered CSPRNG bytes).
 */
import { randomUUID } from 'node:crypto';

/** 2^48: the first millisecond a 48-bit field cannot hold (year 10889). */
const MS_LIMIT = 2 ** 48;

/** The last millisecond asked for, and its text `tttttttt-tttt-7`: flows start many to a millisecond under load. */
let cachedMs = -1;
let cachedPrefix = '';

/** A UUIDv7 for an event that happened at `ms` (ms since the epoch; outside 0 … 2^48 − 1 it is clamped). */
export function eventId(ms: number): string {
  const t = ms >= 0 && ms < MS_LIMIT ? Math.floor(ms) : ms < 0 || Number.isNaN(ms) ? 0 : MS_LIMIT - 1;
  if (t !== cachedMs) {
    const hex = t.toString(16).padStart(12, '0');
    cachedPrefix = `${hex.slice(0, 8)}-${hex.slice(8)}-7`;
    cachedMs = t;
  }
  // randomUUID(): "xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx" with V the variant (8–b). After its version digit come
  // 12 random bits (rand_a), the variant and 62 random bits (rand_b): exactly what follows "-7" in a UUIDv7.
  return cachedPrefix + randomUUID().slice(15);
}

/**
 * A bounded cache of what `policy replay` makes of a record's facts: both outcomes and their differences, keyed on
 * the values of exactly the fields the run reads (the RecordShape's slots: every field either policy's rules read,
 * `CompiledRule.fields`, the internal-destination default's field, and the record's own decision fields).
 *
 * Why it is right: deciding and diffing are pure functions of those values and of the two policies, which are
 * fixed for the run (src/policy/evaluate.ts reads nothing but `facts.get(rule field)`, and every stage of a
 * recorded flow is over, so `isPending` is constantly false). Records are immutable and the cache lives for one
 * run, so an entry can never go stale: its time to live is the run, and no other expiry is needed. Correctness
 * never depends on it — test/unit/replay/decision-cache.test.ts replays generated records with and without it and
 * gets the same report.
 *
 * Why it pays: flow logs repeat themselves (the same process, host and destination all day long), and a lookup
 * (~0.1 µs: a hash of the values, one Map probe, a comparison) costs a fraction of two policy decisions and a diff (~1.3 µs on the
 * dev VM, bench/replay.bench.ts). Where the key is unique per record (a candidate rule on `source.port` or a
 * timestamp-like field), the cache would only add the lookup's cost: it measures its hit rate per window of lookups
 * and, when that is too low to pay, stops looking up for a long stretch of records before it tries again.
 *
 * Bounded: two generations of at most GENERATION entries each (a cheap approximation of least-recently-used: a
 * hit in the old generation moves the entry to the young one; when the young one is full the old one is dropped),
 * so at most 2 × GENERATION entries whatever the input.
 */
import type { FieldValue } from '../flow/fields.js';
import type { Change } from './diff.js';
import type { Outcome } from './outcome.js';

/** What one record's facts give: counted as skipped (`no_decision`, `undecided`), or compared. */
export type Replayed =
  | { readonly skip: 'no_decision' | 'undecided' }
  | { readonly skip: null; readonly before: Outcome; readonly after: Outcome; readonly changes: readonly Change[] };

/** Entries per generation: a day of a site's flows has a few thousand distinct tuples of the fields policies read. */
const GENERATION = 8192;
/** Entries held at most (both generations). */
export const MAX_CACHED = 2 * GENERATION;
/** Lookups per window; the hit rate of a window decides whether the next one runs. */
export const CACHE_WINDOW = 4096;
/**
 * Below this hit rate a window did not pay: a miss costs the lookup (~0.1 µs) on top of the decision it could not save
 * (~1.3 µs), so the break-even is about one hit in five; one in four leaves a margin.
 */
const MIN_HIT_RATE = 0.25;
/** Records replayed without the cache after a window that did not pay, before it is tried again. */
export const CACHE_REST = 64 * CACHE_WINDOW;

export interface DecisionCacheStats {
  readonly lookups: number;
  readonly hits: number;
  /** Records replayed while the cache rested (its hit rate was too low). */
  readonly bypassed: number;
  readonly entries: number;
}

type Slots = readonly (FieldValue | undefined)[];

/** Scratch for hashing a double by its bits. */
const FLOAT = new Float64Array(1);
const FLOAT_WORDS = new Int32Array(FLOAT.buffer);

/** FNV-1a's step (32 bits: offset basis 0x811c9dc5, prime 0x01000193), over whole 32-bit words or UTF-16 units. */
function mix(h: number, x: number): number {
  return Math.imul(h ^ x, 0x01000193);
}

function hashString(h: number, v: string): number {
  h = mix(h, v.length);
  for (let i = 0; i < v.length; i++) h = mix(h, v.charCodeAt(i));
  return h;
}

function hashNumber(h: number, v: number): number {
  if ((v | 0) === v && !Object.is(v, -0)) return mix(mix(h, 1), v);
  FLOAT[0] = v;
  return mix(mix(mix(h, 2), FLOAT_WORDS[0] as number), FLOAT_WORDS[1] as number);
}

/**
 * A 32-bit hash of every slot's value. Computed from the values themselves, in JavaScript: a key string would cost
 * more (measured: concatenating ~20 values and hashing the result in a Map ~0.8 µs a record, against ~0.1 µs here),
 * and collisions are harmless — an entry is used only when its values equal the record's (sameSlots).
 */
export function hashSlots(values: Slots): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === undefined) h = mix(h, 3);
    else if (typeof v === 'string') h = hashString(mix(h, 4), v);
    else if (typeof v === 'number') h = hashNumber(mix(h, 5), v);
    else if (typeof v === 'boolean') h = mix(h, v ? 6 : 7);
    else {
      h = mix(mix(h, 8), v.length);
      for (const item of v) {
        if (typeof item === 'string') h = hashString(h, item);
        else if (typeof item === 'number') h = hashNumber(h, item);
        else h = hashString(mix(h, 9), JSON.stringify(item));
      }
    }
  }
  return h;
}

/** Same value, as a policy can tell them apart: `Object.is` on scalars (so -0 is not 0), lists item by item. */
function sameValue(a: FieldValue | undefined, b: FieldValue | undefined): boolean {
  if (Object.is(a, b)) return true;
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x: unknown = a[i];
    const y: unknown = b[i];
    if (Object.is(x, y)) continue;
    // object[] (DNS answers): flat objects, equal when JSON spells them the same.
    if (typeof x !== 'object' || typeof y !== 'object' || JSON.stringify(x) !== JSON.stringify(y)) return false;
  }
  return true;
}

export function sameSlots(a: Slots, b: Slots): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i])) return false;
  return true;
}

/**
 * Strings cut from a line with `slice` share the line's memory in V8 (a sliced string keeps its parent alive once
 * it is 13 characters or longer): an entry holding one would keep a whole record line (2–5 KB) for as long as it is
 * cached — up to MAX_CACHED lines, ~40–80 MB. Concatenating builds a new string, and slicing that flattens it into
 * a copy of just the value (5M-record gzip replay, bench/replay.bench.ts: VmRSS 156–189 MB before, 137–163 MB after).
 */
function detached(value: FieldValue | undefined): FieldValue | undefined {
  return typeof value === 'string' && value.length > 12 ? ` ${value}`.slice(1) : value;
}

/** One cached tuple: the values it was computed from (a copy), what they give, the next entry with the same hash. */
interface Entry {
  readonly values: Slots;
  readonly replayed: Replayed;
  next: Entry | null;
}

/** One generation: entries by hash, chained on collision. */
class Generation {
  readonly byHash = new Map<number, Entry>();
  size = 0;

  find(hash: number, values: Slots): Entry | undefined {
    for (let e: Entry | null = this.byHash.get(hash) ?? null; e !== null; e = e.next) if (sameSlots(e.values, values)) return e;
    return undefined;
  }

  add(hash: number, values: Slots, replayed: Replayed): void {
    this.byHash.set(hash, { values, replayed, next: this.byHash.get(hash) ?? null });
    this.size++;
  }
}

export class DecisionCache {
  private young = new Generation();
  private old = new Generation();
  private lookups = 0;
  private hits = 0;
  private bypassed = 0;
  private windowLookups = 0;
  private windowHits = 0;
  /** Records left to replay without the cache (resting after a window that did not pay). */
  private resting = 0;

  /** false while the cache rests: the caller should neither hash nor look up. Counts the record then. */
  isActive(): boolean {
    if (this.resting === 0) return true;
    this.resting--;
    this.bypassed++;
    return false;
  }

  /** What `values` (the slots of the record read last) give, when a record with the same values gave it already. */
  get(hash: number, values: Slots): Replayed | undefined {
    this.lookups++;
    let found = this.young.find(hash, values);
    if (found === undefined) {
      found = this.old.find(hash, values);
      // Used again: into the young generation, so it outlives the old one.
      if (found !== undefined) this.store(hash, found.values, found.replayed);
    }
    if (found !== undefined) {
      this.hits++;
      this.windowHits++;
    }
    if (++this.windowLookups === CACHE_WINDOW) this.endWindow();
    return found?.replayed;
  }

  /** Keeps what `values` give; the values are copied (the scanner reuses its array), each detached from its line. */
  set(hash: number, values: Slots, replayed: Replayed): void {
    // The lookup that missed may have closed a window that sent the cache to rest: nothing to keep then.
    if (this.resting > 0) return;
    this.store(hash, values.map(detached), replayed);
  }

  get stats(): DecisionCacheStats {
    return { lookups: this.lookups, hits: this.hits, bypassed: this.bypassed, entries: this.young.size + this.old.size };
  }

  private store(hash: number, values: Slots, replayed: Replayed): void {
    if (this.young.size >= GENERATION) {
      this.old = this.young;
      this.young = new Generation();
    }
    this.young.add(hash, values, replayed);
  }

  private endWindow(): void {
    if (this.windowHits < this.windowLookups * MIN_HIT_RATE) {
      this.resting = CACHE_REST;
      // What it held did not pay either: let it go rather than keep memory for a stretch it will not be read.
      this.young = new Generation();
      this.old = new Generation();
    }
    this.windowLookups = 0;
    this.windowHits = 0;
  }
}

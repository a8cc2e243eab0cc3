/**
 * Remembered values of fingerprint inputs: digests of fingerprint strings (JA3's MD5, JA4's truncated SHA-256s),
 * and the whole fingerprint set of a ClientHello shape (src/fingerprint/tls-facts.ts).
 *
 * A fleet runs a handful of TLS stacks, so the same cipher and extension lists come back on nearly every
 * tunnel; a digest through `node:crypto` costs ~8 µs of binding overhead each (three per ClientHello), a Map
 * lookup on the same string well under one (issue 9, per-tunnel cost). A digest never goes stale, but the table
 * still has a bound and an age (house rule for every cache): two generations of at most `maxEntries` each, the
 * older dropped whole when the newer fills up or is older than `maxAgeMs`. An entry read from the older
 * generation moves into the newer, so the stacks in use stay while one-off hellos (a scanner's random lists)
 * age out.
 */
export class GenerationMemo<V> {
  private current = new Map<string, V>();
  private previous = new Map<string, V>();
  private since: number;

  constructor(
    private readonly maxEntries = 4096,
    private readonly maxAgeMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
  ) {
    this.since = now();
  }

  /** The value remembered for `key`, or `make(key)` remembered now (once per generation). */
  get(key: string, make: (key: string) => V): V {
    const hit = this.current.get(key);
    if (hit !== undefined) return hit;
    const value = this.previous.get(key) ?? make(key);
    if (this.current.size >= this.maxEntries || this.now() - this.since > this.maxAgeMs) {
      this.previous = this.current;
      this.current = new Map();
      this.since = this.now();
    }
    this.current.set(key, value);
    return value;
  }

  /** Entries held now (both generations; at most 2 × maxEntries). */
  get size(): number {
    return this.current.size + this.previous.size;
  }
}

/** A GenerationMemo of one function of the key: `digest(input)` computed once per generation. */
export class HashMemo<V = string> {
  private readonly memo: GenerationMemo<V>;

  constructor(
    private readonly digest: (input: string) => V,
    maxEntries = 4096,
    maxAgeMs = 10 * 60_000,
    now: () => number = Date.now,
  ) {
    this.memo = new GenerationMemo(maxEntries, maxAgeMs, now);
  }

  get(input: string): V {
    return this.memo.get(input, this.digest);
  }

  /** Entries held now (both generations; at most 2 × maxEntries). */
  get size(): number {
    return this.memo.size;
  }
}

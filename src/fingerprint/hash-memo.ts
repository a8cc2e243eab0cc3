/**
 * Remembered digests of fingerprint strings (JA3's MD5, JA4's truncated SHA-256s).
 *
 * A fleet runs a handful of TLS stacks, so the same cipher and extension lists come back on nearly every
 * tunnel; a digest through `node:crypto` costs ~8 µs of binding overhead each (three per ClientHello), a Map
 * lookup on the same string well under one (issue 9, per-tunnel cost). A digest never goes stale, but the table
 * still has a bound and an age (house rule for every cache): two generations of at most `maxEntries` each, the
 * older dropped whole when the newer fills up or is older than `maxAgeMs`. An entry read from the older
 * generation moves into the newer, so the stacks in use stay while one-off hellos (a scanner's random lists)
 * age out.
 */
export class HashMemo {
  private current = new Map<string, string>();
  private previous = new Map<string, string>();
  private since: number;

  constructor(
    private readonly digest: (input: string) => string,
    private readonly maxEntries = 4096,
    private readonly maxAgeMs = 10 * 60_000,
    private readonly now: () => number = Date.now,
  ) {
    this.since = now();
  }

  /** `digest(input)`, computed once per generation. */
  get(input: string): string {
    const hit = this.current.get(input);
    if (hit !== undefined) return hit;
    const value = this.previous.get(input) ?? this.digest(input);
    if (this.current.size >= this.maxEntries || this.now() - this.since > this.maxAgeMs) {
      this.previous = this.current;
      this.current = new Map();
      this.since = this.now();
    }
    this.current.set(input, value);
    return value;
  }

  /** Entries held now (both generations; at most 2 × maxEntries). */
  get size(): number {
    return this.current.size + this.previous.size;
  }
}

/**
 * A seeded pseudo-random source, so that every run of the corpus plays the same names, paths and timings
 * (a miss is reproducible), while each scenario still gets its own stream (seeded by the scenario id).
 * mulberry32 (public domain, Tommy Ettinger) over an FNV-1a hash of the seed: small and good enough for shapes;
 * not for anything cryptographic.
 */

import { mulberry32 } from '../helpers/prng.js';

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [min, max], both included. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  /** `n` characters drawn uniformly from `alphabet`. */
  chars(alphabet: string, n: number): string;
  /** `n` uniformly random bytes (high entropy: what encrypted or compressed data looks like). */
  bytes(n: number): Buffer;
  /** `base` ± `fraction`·`base`, uniform (C2 "jitter" and human variation). */
  jitter(base: number, fraction: number): number;
}

export const ALPHA = {
  lower: 'abcdefghijklmnopqrstuvwxyz',
  alnum: 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
  lowerAlnum: 'abcdefghijklmnopqrstuvwxyz0123456789',
  hex: '0123456789abcdef',
  upperHex: '0123456789ABCDEF',
  /** RFC 4648 §6 base32, lower-cased as DNS tunnels send it. */
  base32: 'abcdefghijklmnopqrstuvwxyz234567',
  /** RFC 4648 §5 base64url. */
  base64url: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
} as const;

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function createRng(seed: string): Rng {
  const next = mulberry32(fnv1a(seed));
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    pick<T>(items: readonly T[]): T {
      const item = items[int(0, items.length - 1)];
      if (item === undefined) throw new Error('pick from an empty list');
      return item;
    },
    chars(alphabet, n) {
      let s = '';
      for (let i = 0; i < n; i++) s += alphabet[int(0, alphabet.length - 1)];
      return s;
    },
    bytes(n) {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = int(0, 255);
      return b;
    },
    jitter(base, fraction) {
      return base * (1 + (next() * 2 - 1) * fraction);
    },
  };
}

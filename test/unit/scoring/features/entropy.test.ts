import { createCipheriv, createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { byteChiSquare, byteEntropy, hasContainerMagic, looksEncrypted, rangeEntropy, shannonEntropy } from '../../../../src/scoring/features/entropy.js';

/** Reference implementation: the textbook formula over a Map, no shared state. */
function referenceEntropy(symbols: ArrayLike<number>): number {
  if (symbols.length === 0) return 0;
  const counts = new Map<number, number>();
  for (let i = 0; i < symbols.length; i++) counts.set(symbols[i] as number, (counts.get(symbols[i] as number) ?? 0) + 1);
  let h = 0;
  for (const c of counts.values()) {
    const p = c / symbols.length;
    h -= p * Math.log2(p);
  }
  return h;
}

function codeUnits(text: string): number[] {
  return Array.from({ length: text.length }, (_, i) => text.charCodeAt(i));
}

/** Deterministic pseudo-random bytes (SHA-256 in counter mode), so no test depends on luck. */
function pseudoRandomBytes(n: number, seed: string): Uint8Array {
  const out = new Uint8Array(n);
  for (let block = 0, offset = 0; offset < n; block++) {
    const digest = createHash('sha256').update(`${seed}:${block}`).digest();
    out.set(digest.subarray(0, Math.min(32, n - offset)), offset);
    offset += 32;
  }
  return out;
}

const LOREM = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. ';

describe('shannonEntropy', () => {
  it.each([
    ['', 0],
    ['a', 0],
    ['aaaaaaaa', 0],
    ['ab', 1],
    ['abcd', 2],
    ['aabb', 1],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', 6],
  ])('%j has %d bits per character', (text, bits) => {
    expect(shannonEntropy(text)).toBeCloseTo(bits, 12);
  });

  it('counts non-Latin-1 text in a Map, with the same result as the formula', () => {
    for (const text of ['ééαβαβ', 'a\u0100b\u0100', '日本語のテキスト日本', 'x😀y😀']) {
      expect(shannonEntropy(text)).toBeCloseTo(referenceEntropy(codeUnits(text)), 12);
    }
  });

  it('equals the textbook formula for any string, and calls do not leak counts into each other', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: fc.oneof(fc.constantFrom('a', 'b', 'Z', '0', '/', '='), fc.string({ unit: 'binary', maxLength: 1 })), maxLength: 80 }), { minLength: 1, maxLength: 5 }), (texts) => {
        for (const text of texts) expect(shannonEntropy(text)).toBeCloseTo(referenceEntropy(codeUnits(text)), 9);
        // Interleave with the byte table user: the shared table must come back clean.
        byteEntropy(new Uint8Array([1, 2, 3, 250, 250]));
        for (const text of texts) expect(shannonEntropy(text)).toBeCloseTo(referenceEntropy(codeUnits(text)), 9);
      }),
    );
  });

  it('rangeEntropy measures a slice without copying it, and an empty range as 0', () => {
    const text = 'xxxxabcdyyyy';
    expect(rangeEntropy(text, 4, 8)).toBeCloseTo(2, 12);
    expect(rangeEntropy(text, 4, 4)).toBe(0);
    expect(rangeEntropy(text, 8, 4)).toBe(0);
    expect(rangeEntropy('\u0100\u0101ab', 1, 3)).toBeCloseTo(shannonEntropy('\u0101a'), 12);
  });
});

describe('byteEntropy', () => {
  it('is 0 for a constant or empty buffer and 8 for every byte value once', () => {
    expect(byteEntropy(new Uint8Array(0))).toBe(0);
    expect(byteEntropy(new Uint8Array(1000))).toBe(0);
    expect(byteEntropy(Uint8Array.from({ length: 256 }, (_, i) => i))).toBeCloseTo(8, 12);
  });

  it('measures only the first `length` bytes, clamped to the buffer', () => {
    const bytes = Uint8Array.from([0, 0, 0, 0, 1, 2, 3, 4]);
    expect(byteEntropy(bytes, 4)).toBe(0);
    expect(byteEntropy(bytes, 100)).toBeCloseTo(referenceEntropy(bytes), 12);
    expect(byteEntropy(bytes, 0)).toBe(0);
    expect(byteEntropy(bytes, -3)).toBe(0);
  });

  it('equals the textbook formula for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        expect(byteEntropy(bytes)).toBeCloseTo(referenceEntropy(bytes), 9);
        expect(byteEntropy(bytes)).toBeGreaterThanOrEqual(0);
        expect(byteEntropy(bytes)).toBeLessThanOrEqual(8);
      }),
    );
  });
});

describe('looksEncrypted', () => {
  const key = createHash('sha256').update('test key').digest();
  const iv = Buffer.alloc(16, 7);
  const ciphertext = (plain: string): Uint8Array => {
    const cipher = createCipheriv('aes-256-ctr', key, iv);
    return new Uint8Array(Buffer.concat([cipher.update(plain), cipher.final()]));
  };

  it('takes AES ciphertext and pseudo-random bytes of 256 bytes and more', () => {
    expect(looksEncrypted(ciphertext(LOREM.repeat(20)), 4096)).toBe(true);
    for (const n of [256, 300, 1024, 4096, 20_000]) {
      for (let seed = 0; seed < 20; seed++) expect(looksEncrypted(pseudoRandomBytes(n, `s${seed}`), n), `${n} bytes, seed ${seed}`).toBe(true);
    }
  });

  it('leaves text, base64 and hex alone (structure shows in the byte histogram)', () => {
    const text = new TextEncoder().encode(LOREM.repeat(40));
    expect(looksEncrypted(text, text.length)).toBe(false);
    const base64 = new TextEncoder().encode(Buffer.from(pseudoRandomBytes(3000, 'b64')).toString('base64'));
    expect(looksEncrypted(base64, base64.length)).toBe(false);
    expect(byteChiSquare(base64, 256)).toBeGreaterThan(600);
    const hex = new TextEncoder().encode(Buffer.from(pseudoRandomBytes(2000, 'hex')).toString('hex'));
    expect(looksEncrypted(hex, hex.length)).toBe(false);
  });

  it('needs 256 bytes: fewer random bytes are not judged', () => {
    const bytes = pseudoRandomBytes(4096, 'short');
    expect(looksEncrypted(bytes, 255)).toBe(false);
    expect(looksEncrypted(bytes.subarray(0, 200), 4096)).toBe(false);
    expect(looksEncrypted(bytes, 256)).toBe(true);
  });

  it('leaves compressed and media containers alone even though their bodies are uniform', () => {
    const random = pseudoRandomBytes(4096, 'container');
    const gzip = new Uint8Array(gzipSync(random));
    expect(looksEncrypted(gzip, gzip.length)).toBe(false);
    for (const magic of [[0x50, 0x4b, 0x03, 0x04], [0x89, 0x50, 0x4e, 0x47], [0xff, 0xd8, 0xff], [0x28, 0xb5, 0x2f, 0xfd], [0x25, 0x50, 0x44, 0x46]]) {
      const body = random.slice();
      body.set(magic, 0);
      expect(hasContainerMagic(body, body.length)).toBe(true);
      expect(looksEncrypted(body, body.length)).toBe(false);
    }
    const mp4 = random.slice();
    mp4.set([0x66, 0x74, 0x79, 0x70], 4); // ISO BMFF 'ftyp' at offset 4
    expect(looksEncrypted(mp4, mp4.length)).toBe(false);
  });

  it('refuses bytes that are too even to be random (a counter, a 0..255 table)', () => {
    const table = Uint8Array.from({ length: 4096 }, (_, i) => i & 0xff);
    expect(byteChiSquare(table, table.length)).toBe(0);
    expect(looksEncrypted(table, table.length)).toBe(false);
  });

  it('never throws and answers false below 256 bytes, for any bytes and length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 700 }), fc.integer({ min: -10, max: 2000 }), (bytes, length) => {
        const result = looksEncrypted(bytes, length);
        if (Math.min(length, bytes.length) < 256) expect(result).toBe(false);
      }),
    );
  });
});

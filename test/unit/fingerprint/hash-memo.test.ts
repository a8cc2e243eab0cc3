import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HashMemo } from '../../../src/fingerprint/hash-memo.js';
import { md5Memo, sha256Prefix12 } from '../../../src/fingerprint/ja4.js';

describe('HashMemo', () => {
  it('computes each input once while it stays in the table', () => {
    let calls = 0;
    const memo = new HashMemo((s) => {
      calls++;
      return s.toUpperCase();
    }, 4);
    expect(memo.get('a')).toBe('A');
    expect(memo.get('a')).toBe('A');
    expect(calls).toBe(1);
  });

  it('stays within two generations of maxEntries, keeping what is still read', () => {
    let calls = 0;
    const memo = new HashMemo((s) => {
      calls++;
      return `#${s}`;
    }, 3);
    for (let i = 0; i < 100; i++) {
      memo.get(`one-off-${i}`);
      memo.get('hot'); // read on every round: moved into the newer generation each time it turns over
      expect(memo.size).toBeLessThanOrEqual(6);
    }
    expect(memo.get('hot')).toBe('#hot');
    // 100 one-off inputs plus 'hot' computed only once: it never aged out.
    expect(calls).toBe(101);
  });

  it('drops entries older than maxAgeMs', () => {
    let t = 0;
    let calls = 0;
    const memo = new HashMemo(
      (s) => {
        calls++;
        return s;
      },
      100,
      1000,
      () => t,
    );
    memo.get('x');
    t = 1500;
    memo.get('y'); // turns the generation over: x is now in the older one
    t = 3000;
    memo.get('z'); // and again: x is gone
    memo.get('x');
    expect(calls).toBe(4);
  });
});

describe('remembered fingerprint digests', () => {
  it('equal node:crypto on first and repeated reads', () => {
    for (const s of ['771,4866-4867,0-11-10,29-23,0', '', '1301,1302,1303', 'ü-non-ascii']) {
      const md5 = createHash('md5').update(s).digest('hex');
      const sha = createHash('sha256').update(s).digest('hex').slice(0, 12);
      expect(md5Memo.get(s)).toBe(md5);
      expect(md5Memo.get(s)).toBe(md5);
      expect(sha256Prefix12(s)).toBe(sha);
      expect(sha256Prefix12(s)).toBe(sha);
    }
  });
});

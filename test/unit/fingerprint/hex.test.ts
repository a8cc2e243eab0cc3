import { describe, expect, it } from 'vitest';
import { hex4 } from '../../../src/fingerprint/hex.js';

describe('hex4', () => {
  it('is the 4-digit lower-case hex of every 16-bit value', () => {
    for (let v = 0; v <= 0xffff; v++) {
      const h = hex4(v);
      if (h !== v.toString(16).padStart(4, '0')) expect(h, `value ${v}`).toBe(v.toString(16).padStart(4, '0'));
    }
    expect(hex4(0x0a0a)).toBe('0a0a');
    expect(hex4(0xc02b)).toBe('c02b');
  });
});

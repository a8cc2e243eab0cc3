import { describe, it, expect } from 'vitest';
import { Cursor, ParseError, isParseError } from '../../../src/parsers/cursor.js';

function catchParse(fn: () => unknown): ParseError {
  try {
    fn();
  } catch (err) {
    if (isParseError(err)) return err;
    throw err;
  }
  throw new Error('expected a ParseError');
}

describe('Cursor', () => {
  it('reads big-endian integers and advances', () => {
    const c = new Cursor(Uint8Array.from([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xff, 0xff, 0xff, 0xff]));
    expect(c.u8('a')).toBe(0x01);
    expect(c.u16('b')).toBe(0x0203);
    expect(c.u24('c')).toBe(0x040506);
    expect(c.offset).toBe(6);
    c.skip(2, 'd');
    expect(c.u32('e')).toBe(0xffffffff); // unsigned, not -1
    expect(c.isAtEnd).toBe(true);
  });

  it('names the field and the offset of a short read', () => {
    const c = new Cursor(Uint8Array.from([0, 0, 0]));
    c.u16('first');
    const err = catchParse(() => c.u16('cipher_suites.length'));
    expect(err.field).toBe('cipher_suites.length');
    expect(err.offset).toBe(2);
    expect(err.message).toContain('cipher_suites.length');
    expect(err.message).toContain('offset 2');
  });

  it('reports a short read as incomplete on a non-final cursor and invalid on a final one', () => {
    const bytes = Uint8Array.from([1, 2]);
    const growing = catchParse(() => new Cursor(bytes, 0, 2, false).u24('x'));
    expect(growing.failure).toBe('incomplete');
    expect(growing.isIncomplete).toBe(true);
    expect(growing.code).toBe('TLS_INCOMPLETE');
    const final = catchParse(() => new Cursor(bytes, 0, 2, true).u24('x'));
    expect(final.failure).toBe('invalid');
    expect(final.code).toBe('TLS_PARSE');
  });

  it('makes length-prefixed children final even inside a growing cursor', () => {
    // vec8 of length 1 holding one byte, followed by more data: reading 2 bytes from the child is invalid.
    const c = new Cursor(Uint8Array.from([1, 0xaa, 0xbb, 0xcc]), 0, 4, false);
    const child = c.vec8('list');
    expect(child.remaining).toBe(1);
    expect(c.offset).toBe(2);
    const err = catchParse(() => child.u16('list.item'));
    expect(err.failure).toBe('invalid');
    expect(err.offset).toBe(1); // absolute offset into the original array
  });

  it('reports a vector longer than the growing buffer as incomplete', () => {
    const c = new Cursor(Uint8Array.from([0, 10, 1, 2]), 0, 4, false);
    const err = catchParse(() => c.vec16('extensions'));
    expect(err.failure).toBe('incomplete');
    expect(err.field).toBe('extensions');
  });

  it('names the length field when the length prefix itself is cut', () => {
    const err = catchParse(() => new Cursor(Uint8Array.from([0]), 0, 1, true).vec16('alpn.protocol_name_list'));
    expect(err.field).toBe('alpn.protocol_name_list.length');
  });

  it('returns views without copying and rejects trailing bytes', () => {
    const bytes = Uint8Array.from([3, 9, 8, 7, 6]);
    const c = new Cursor(bytes);
    const v = c.vec8('v');
    const taken = v.take(3, 'v');
    expect([...taken]).toEqual([9, 8, 7]);
    expect(taken.buffer).toBe(bytes.buffer);
    v.expectEnd('v');
    const err = catchParse(() => c.expectEnd('outer'));
    expect(err.reason).toContain('1 unexpected trailing byte');
    expect(err.offset).toBe(4);
  });

  it('refuses bounds outside the array and negative lengths', () => {
    expect(() => new Cursor(Uint8Array.from([1]), 0, 2)).toThrow(ParseError);
    expect(() => new Cursor(Uint8Array.from([1, 2])).take(-1, 'n')).toThrow(ParseError);
  });
});

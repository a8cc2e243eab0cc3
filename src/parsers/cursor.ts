/**
 * A bounds-checked reader over a byte array, used by every binary parser (TLS ClientHello, pcap).
 *
 * Every read names the field it reads, so a short or bad read becomes a `ParseError` that says *what* was
 * being read and *where* — the message an operator needs to tell a truncated capture from a hostile hello.
 *
 * "Incomplete" versus "invalid" (mitmproxy's distinction): a cursor over bytes that may still grow (the
 * front of a socket buffer) reports a read past its end as *incomplete* — more bytes may fix it. A cursor
 * whose end comes from a length field inside the message (`sub`, `vec8`, `vec16`, `vec24`) is *final*: a
 * read past that end means the length fields contradict each other, and no amount of extra bytes helps.
 */
import { EgressError } from '../errors.js';

export type ParseFailure = 'incomplete' | 'invalid';

/** A parse failure with the absolute offset (in the array the cursor was made over) and the field name. */
export class ParseError extends EgressError {
  readonly offset: number;
  readonly field: string;
  readonly failure: ParseFailure;
  /** The message without the "invalid FIELD at offset N" prefix. */
  readonly reason: string;

  constructor(failure: ParseFailure, offset: number, field: string, reason: string) {
    super(
      failure === 'incomplete' ? 'TLS_INCOMPLETE' : 'TLS_PARSE',
      `${failure === 'incomplete' ? 'incomplete' : 'invalid'} ${field} at offset ${offset}: ${reason}`,
    );
    this.name = 'ParseError';
    this.offset = offset;
    this.field = field;
    this.failure = failure;
    this.reason = reason;
  }

  get isIncomplete(): boolean {
    return this.failure === 'incomplete';
  }
}

export function isParseError(err: unknown): err is ParseError {
  return err instanceof ParseError;
}

export class Cursor {
  /** The underlying bytes; offsets in errors are indexes into this array. */
  readonly bytes: Uint8Array;
  private pos: number;
  private readonly end: number;
  /** true when `end` comes from a length field: a short read is then invalid, never incomplete. */
  private readonly final: boolean;

  /**
   * @param bytes the whole array (offsets in errors refer to it)
   * @param start first readable index
   * @param end one past the last readable index
   * @param final whether the end is a declared boundary (short read = invalid) or just "what arrived so
   *   far" (short read = incomplete)
   */
  constructor(bytes: Uint8Array, start = 0, end = bytes.length, final = true) {
    if (start < 0 || end > bytes.length || start > end) {
      throw new ParseError('invalid', start, 'cursor', `bad bounds [${start}, ${end}) over ${bytes.length} bytes`);
    }
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
    this.final = final;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  get isAtEnd(): boolean {
    return this.pos >= this.end;
  }

  /** Throws a parse error for a failed read of `n` bytes of `field` at the current position. */
  private short(n: number, field: string): never {
    throw new ParseError(
      this.final ? 'invalid' : 'incomplete',
      this.pos,
      field,
      `needs ${n} byte${n === 1 ? '' : 's'}, ${this.end - this.pos} left`,
    );
  }

  /** An invalid-value error at the current position (or `at`), for checks done by the caller. */
  invalid(field: string, reason: string, at = this.pos): ParseError {
    return new ParseError('invalid', at, field, reason);
  }

  u8(field: string): number {
    if (this.end - this.pos < 1) this.short(1, field);
    return this.bytes[this.pos++] as number;
  }

  u16(field: string): number {
    if (this.end - this.pos < 2) this.short(2, field);
    const b = this.bytes;
    const p = this.pos;
    this.pos = p + 2;
    return ((b[p] as number) << 8) | (b[p + 1] as number);
  }

  u24(field: string): number {
    if (this.end - this.pos < 3) this.short(3, field);
    const b = this.bytes;
    const p = this.pos;
    this.pos = p + 3;
    return ((b[p] as number) << 16) | ((b[p + 1] as number) << 8) | (b[p + 2] as number);
  }

  u32(field: string): number {
    if (this.end - this.pos < 4) this.short(4, field);
    const b = this.bytes;
    const p = this.pos;
    this.pos = p + 4;
    // `>>> 0` keeps the top bit from turning the value negative.
    return (((b[p] as number) << 24) | ((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number)) >>> 0;
  }

  /** `n` bytes as a view (no copy). */
  take(n: number, field: string): Uint8Array {
    if (n < 0 || this.end - this.pos < n) this.short(n, field);
    const p = this.pos;
    this.pos = p + n;
    return this.bytes.subarray(p, p + n);
  }

  skip(n: number, field: string): void {
    if (n < 0 || this.end - this.pos < n) this.short(n, field);
    this.pos += n;
  }

  /**
   * A child cursor over the next `n` bytes, then moves past them. The child is final: its end is a
   * declared length, so reading past it is invalid. Whether *this* cursor holds `n` more bytes follows
   * this cursor's own rule (incomplete if it is not final).
   */
  sub(n: number, field: string): Cursor {
    if (n < 0 || this.end - this.pos < n) this.short(n, field);
    const child = new Cursor(this.bytes, this.pos, this.pos + n, true);
    this.pos += n;
    return child;
  }

  /** A vector with a 1-byte length prefix (RFC 8446 §3.4 `<0..2^8-1>`). */
  vec8(field: string): Cursor {
    // The ".length" field name is built only on the error path: the hot path allocates nothing but the child.
    if (this.end - this.pos < 1) this.short(1, field + '.length');
    const n = this.bytes[this.pos] as number;
    this.pos += 1;
    return this.sub(n, field);
  }

  /** A vector with a 2-byte length prefix (RFC 8446 §3.4 `<0..2^16-1>`). */
  vec16(field: string): Cursor {
    if (this.end - this.pos < 2) this.short(2, field + '.length');
    const b = this.bytes;
    const n = ((b[this.pos] as number) << 8) | (b[this.pos + 1] as number);
    this.pos += 2;
    return this.sub(n, field);
  }

  /** A vector with a 3-byte length prefix (RFC 8446 §3.4 `<0..2^24-1>`). */
  vec24(field: string): Cursor {
    if (this.end - this.pos < 3) this.short(3, field + '.length');
    const b = this.bytes;
    const n = ((b[this.pos] as number) << 16) | ((b[this.pos + 1] as number) << 8) | (b[this.pos + 2] as number);
    this.pos += 3;
    return this.sub(n, field);
  }

  /** Asserts that every byte was consumed: trailing bytes inside a declared length are invalid. */
  expectEnd(field: string): void {
    if (this.pos !== this.end) {
      throw new ParseError('invalid', this.pos, field, `${this.end - this.pos} unexpected trailing byte(s)`);
    }
  }
}

/**
 * DNS over TCP framing (RFC 1035 §4.2.2, RFC 7766 §8): every message is preceded by a two-byte length in
 * network order. dns-packet's `streamDecode` only decodes one already-framed message, so the framing is ours.
 *
 * The reader is pure: socket code pushes whatever chunks arrive and gets back the complete messages, so one
 * read may hold several pipelined queries and one query may span several reads.
 */

export class DnsFrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DnsFrameError';
  }
}

export interface DnsFrameReader {
  /** Adds bytes; returns the messages completed by them (without their length prefix), in order. */
  push(chunk: Buffer): Buffer[];
  /** Bytes held for an incomplete message. */
  readonly buffered: number;
}

/**
 * @param maxMessage longest message accepted; a longer length prefix throws DnsFrameError (the stream cannot
 *   be resynchronised after it, so the caller closes the connection).
 */
export function createDnsFrameReader(maxMessage = 65_535): DnsFrameReader {
  let pending: Buffer = Buffer.alloc(0);
  return {
    push(chunk) {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const out: Buffer[] = [];
      let at = 0;
      while (pending.length - at >= 2) {
        const length = pending.readUInt16BE(at);
        if (length > maxMessage) throw new DnsFrameError(`message of ${length} bytes exceeds the ${maxMessage}-byte limit`);
        // RFC 7766 §8: a zero length is not a message; nothing sensible follows it.
        if (length === 0) throw new DnsFrameError('zero-length message');
        if (pending.length - at < 2 + length) break;
        out.push(pending.subarray(at + 2, at + 2 + length));
        at += 2 + length;
      }
      // Keep only the incomplete tail; copy it so the big chunk it came from can be collected.
      pending = at === 0 ? pending : at === pending.length ? Buffer.alloc(0) : Buffer.from(pending.subarray(at));
      return out;
    },
    get buffered() {
      return pending.length;
    },
  };
}

/** The message with its two-byte length prefix, ready to write to a TCP socket. */
export function frameDnsMessage(message: Uint8Array): Buffer {
  if (message.length > 0xffff) throw new DnsFrameError(`message of ${message.length} bytes cannot be framed (limit 65535)`);
  const framed = Buffer.allocUnsafe(2 + message.length);
  framed.writeUInt16BE(message.length, 0);
  framed.set(message, 2);
  return framed;
}

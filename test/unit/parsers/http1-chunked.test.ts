/**
 * Table tests for the chunked framer (RFC 9112 §7.1), strict as llhttp 9.3: where a chunked body ends, what
 * it refuses, and that any split of the bytes across push() calls gives the same answer.
 */
import { describe, it, expect } from 'vitest';
import { ChunkedFramer, Http1FramingError } from '../../../src/parsers/http1-chunked.js';
import type { ChunkedFramerOptions } from '../../../src/parsers/http1-chunked.js';

function frame(text: string, opts?: ChunkedFramerOptions): { end: number; framer: ChunkedFramer } {
  const framer = new ChunkedFramer(opts);
  return { end: framer.push(Buffer.from(text, 'latin1'), 0), framer };
}

function refusal(text: string, opts?: ChunkedFramerOptions): Http1FramingError {
  try {
    frame(text, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(Http1FramingError);
    expect((e as Http1FramingError).code).toBe('BAD_CHUNK');
    return e as Http1FramingError;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be refused`);
}

const MULTI = '5\r\nhello\r\n1A;name=value;q="a \\"b\\""\r\nabcdefghijklmnopqrstuvwxyz\r\n000\r\nChecksum: 1\r\nX-Trace: t\r\n\r\n';

describe('where a chunked body ends (RFC 9112 §7.1)', () => {
  it.each([
    ['a single chunk', '5\r\nhello\r\n0\r\n\r\n', 5],
    ['only the last chunk', '0\r\n\r\n', 0],
    ['several chunks, extensions and trailers', MULTI, 31],
    ['upper- and lower-case hex with leading zeros', '000A\r\n0123456789\r\n0b\r\n0123456789a\r\n0\r\n\r\n', 21],
    ['chunk data containing CR, LF and NUL', '4\r\n\r\n\x00\n\r\n0\r\n\r\n', 4],
    ['a trailer with an empty value', '0\r\nX-Empty:\r\n\r\n', 0],
    ['an empty Transfer-Encoding trailer (llhttp lets it pass)', '0\r\nTransfer-Encoding:\r\n\r\n', 0],
  ])('%s', (_intent, text, payload) => {
    const { end, framer } = frame(text + 'NEXT');
    expect(end).toBe(text.length);
    expect(framer.done).toBe(true);
    expect(framer.payloadBytes).toBe(payload);
  });

  it('needs more bytes until the final CRLF', () => {
    const text = '5\r\nhello\r\n0\r\nX: y\r\n\r\n';
    for (let n = 0; n < text.length; n++) {
      const { end, framer } = frame(text.slice(0, n));
      expect(end, `prefix ${n}`).toBe(-1);
      expect(framer.done).toBe(false);
    }
  });

  it('reports the end relative to the buffer when start is not 0', () => {
    const framer = new ChunkedFramer();
    const buf = Buffer.from('HEAD3\r\nabc\r\n0\r\n\r\nGET');
    expect(framer.push(buf, 4)).toBe(buf.length - 3);
  });

  it('after the end, push() consumes nothing', () => {
    const { framer } = frame('0\r\n\r\n');
    expect(framer.push(Buffer.from('more'), 1)).toBe(1);
  });
});

describe('chunk-size and chunk extensions (RFC 9112 §7.1, §7.1.1), as llhttp strict', () => {
  it.each([
    ['an extension without a value', '1;a\r\nx\r\n0\r\n\r\n'],
    ['an extension with a token value', '1;a=b\r\nx\r\n0\r\n\r\n'],
    ['an extension with a quoted value and quoted-pairs', '1;a="x \\" \\\\ y"\r\nx\r\n0\r\n\r\n'],
    ['obs-text in a quoted value', '1;a="caf\xe9"\r\nx\r\n0\r\n\r\n'],
    ['several extensions', '1;a=b;c;d="e"\r\nx\r\n0\r\n\r\n'],
    ['an empty extension name (llhttp accepts)', '1;=b\r\nx\r\n0\r\n\r\n'],
    ['an empty extension between two (llhttp accepts)', '1;;a\r\nx\r\n0\r\n\r\n'],
    ['an empty extension value (llhttp accepts)', '1;a=\r\nx\r\n0\r\n\r\n'],
    ['a quoted string after token characters (llhttp accepts)', '1;a=b"c"\r\nx\r\n0\r\n\r\n'],
    ['an extension on the last chunk', '0;final=yes\r\n\r\n'],
    ['a chunk-size of 2^53 - 1 (waits for the data)', '1fffffffffffff\r\nabc'],
  ])('accepts %s', (_intent, text) => {
    expect(() => frame(text)).not.toThrow();
  });

  it.each([
    ['an empty chunk-size', '\r\nx\r\n0\r\n\r\n'],
    ['a non-hex chunk-size', 'g\r\n'],
    ['a signed chunk-size', '+1\r\nx\r\n'],
    ['a 0x prefix', '0x1\r\nx\r\n'],
    ['a space before the size', ' 1\r\nx\r\n'],
    ['a space after the size (BWS: llhttp strict refuses)', '1 \r\nx\r\n'],
    ['a tab after the size', '1\t\r\nx\r\n'],
    ['a bare LF after the size', '1\nx\r\n'],
    ['CR without LF after the size', '1\rx'],
    ['a chunk-size above 2^53 - 1', '20000000000000\r\n'],
    ['a chunk-size above 2^64', '10000000000000000\r\n'],
    ['";" with nothing after it', '1;\r\nx\r\n'],
    ['a space after ";"', '1; a\r\nx\r\n'],
    ['a space before "="', '1;a =b\r\nx\r\n'],
    ['a space after "="', '1;a= b\r\nx\r\n'],
    ['a control character in an extension name', '1;a\x01\r\nx\r\n'],
    ['a control character in a quoted value', '1;a="\x01"\r\nx\r\n'],
    ['a control character in a quoted-pair', '1;a="\\\x01"\r\nx\r\n'],
    ['text after a closing quote', '1;a="b"c\r\nx\r\n'],
    ['a bare LF after an extension', '1;a=b\nx\r\n'],
  ])('refuses %s', (_intent, text) => {
    refusal(text);
  });

  it('bounds the chunk-size line (maxLineBytes)', () => {
    const line = `1;${'a'.repeat(40)}`;
    expect(() => frame(`${line}\r\nx\r\n0\r\n\r\n`, { maxLineBytes: line.length })).not.toThrow();
    expect(refusal(`${line}\r\nx\r\n`, { maxLineBytes: line.length - 1 }).message).toMatch(/longer than/);
    // Leading zeros count too: a size line cannot grow without bound.
    expect(refusal(`${'0'.repeat(5000)}1\r\n`).message).toMatch(/longer than 4096/);
  });
});

describe('chunk data and trailers (RFC 9112 §7.1, §7.1.2)', () => {
  it.each([
    ['data longer than its size', '3\r\nabcd\r\n0\r\n\r\n'],
    ['data not followed by CRLF', '3\r\nabc0\r\n\r\n'],
    ['data followed by a bare LF', '3\r\nabc\n0\r\n\r\n'],
    ['data followed by CR without LF', '3\r\nabc\rx'],
    ['a trailer with whitespace before the colon', '0\r\nX : y\r\n\r\n'],
    ['a trailer starting with whitespace', '0\r\n X: y\r\n\r\n'],
    ['an obs-folded trailer', '0\r\nX: y\r\n z\r\n\r\n'],
    ['a trailer with an empty name', '0\r\n: y\r\n\r\n'],
    ['a trailer without a colon', '0\r\nX\r\n\r\n'],
    ['a control character in a trailer value', '0\r\nX: a\x01\r\n\r\n'],
    ['a trailer ending with a bare LF', '0\r\nX: y\n\r\n'],
    ['Content-Length in the trailers (RFC 9110 §6.5.1; llhttp refuses)', '0\r\ncontent-LENGTH: 0\r\n\r\n'],
    ['Transfer-Encoding in a request trailer (llhttp refuses)', '0\r\nTransfer-Encoding: gzip\r\n\r\n'],
    ['a bare LF ending the body', '0\r\n\n'],
    ['CR without LF ending the body', '0\r\n\rX'],
  ])('refuses %s', (_intent, text) => {
    refusal(text);
  });

  it('lets a Transfer-Encoding trailer through in a response, as llhttp does', () => {
    const text = '0\r\nTransfer-Encoding: gzip\r\n\r\n';
    expect(frame(text, { message: 'response' }).end).toBe(text.length);
    refusal(text, { message: 'request' });
  });

  it('takes trailer names that only start like the framing fields', () => {
    const text = '0\r\nContent-Lengthy: 1\r\nTransfer-Encodings: x\r\nContent-Lengt: 2\r\n\r\n';
    expect(frame(text).end).toBe(text.length);
  });

  // llhttp keeps the head's flags and adds the trailers' (llhttp__after_message_complete): a close option in
  // a Connection trailer, or a response TE trailer not ending in chunked ("needs EOF"), ends the connection.
  it.each([
    ['no trailers', '0\r\n\r\n', 'request', false],
    ['Connection: close', '0\r\nConnection: close\r\n\r\n', 'request', true],
    ['close among other options, any case', '0\r\nConnection: x, Close \r\n\r\n', 'request', true],
    ['close first in a list', '0\r\nconnection: close, x\r\n\r\n', 'request', true],
    ['Proxy-Connection: close', '0\r\nProxy-Connection: close\r\n\r\n', 'request', true],
    ['"closed"', '0\r\nConnection: closed\r\n\r\n', 'request', false],
    ['"close" then a tab (llhttp 9.3 does not see it)', '0\r\nConnection: close\t\r\n\r\n', 'request', false],
    ['a keep-alive trailer (never re-opens)', '0\r\nConnection: keep-alive\r\n\r\n', 'request', false],
    ['a response TE trailer not ending in chunked', '0\r\nTransfer-Encoding: gzip\r\n\r\n', 'response', true],
    ['a response TE trailer ending in chunked', '0\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 'response', false],
    ['the last response TE trailer decides', '0\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n', 'response', false],
    ['an empty response TE trailer', '0\r\nTransfer-Encoding:\r\n\r\n', 'response', false],
  ] as const)('closeConnection: %s', (_intent, text, message, expected) => {
    const { end, framer } = frame(text, { message });
    expect(end).toBe(text.length);
    expect(framer.closeConnection).toBe(expected);
  });

  it('bounds the trailer section (maxTrailerBytes)', () => {
    const trailers = `0\r\nX: ${'v'.repeat(100)}\r\n\r\n`;
    expect(frame(trailers, { maxTrailerBytes: 200 }).end).toBe(trailers.length);
    expect(refusal(trailers, { maxTrailerBytes: 50 }).message).toMatch(/trailer section longer/);
  });

  it('throws again on any push after a refusal', () => {
    const framer = new ChunkedFramer();
    expect(() => framer.push(Buffer.from('x'), 0)).toThrow(Http1FramingError);
    expect(() => framer.push(Buffer.from('0\r\n\r\n'), 0)).toThrow(Http1FramingError);
  });

  it('names the offending offset', () => {
    expect(refusal('5\r\nhello\r\nZ').offset).toBe(10);
  });
});

describe('streaming: state survives any split', () => {
  const body = Buffer.from(MULTI, 'latin1');

  function decoded(parts: Buffer[]): { end: number; payload: string; seen: number } {
    const chunks: Buffer[] = [];
    const framer = new ChunkedFramer({ onData: (buf, start, end) => chunks.push(Buffer.from(buf.subarray(start, end))) });
    let consumed = 0;
    for (const part of parts) {
      const end = framer.push(part, 0);
      if (end >= 0) return { end: consumed + end, payload: Buffer.concat(chunks).toString('latin1'), seen: framer.payloadBytes };
      consumed += part.length;
    }
    return { end: -1, payload: Buffer.concat(chunks).toString('latin1'), seen: framer.payloadBytes };
  }

  const expected = { end: body.length, payload: 'helloabcdefghijklmnopqrstuvwxyz', seen: 31 };

  it('gives the same end and payload at every single split point of a multi-chunk body', () => {
    for (let cut = 0; cut <= body.length; cut++) {
      expect(decoded([body.subarray(0, cut), body.subarray(cut)]), `split at ${cut}`).toEqual(expected);
    }
  });

  it('gives the same end and payload at every pair of split points', () => {
    for (let a = 0; a <= body.length; a++) {
      for (let b = a; b <= body.length; b++) {
        expect(decoded([body.subarray(0, a), body.subarray(a, b), body.subarray(b)])).toEqual(expected);
      }
    }
  });

  it('gives the same answer byte by byte', () => {
    const bytes = Array.from(body, (_, k) => body.subarray(k, k + 1));
    expect(decoded(bytes)).toEqual(expected);
  });

  it('finds a close trailer at every split point', () => {
    const text = Buffer.from('3\r\nabc\r\n0\r\nX: 1\r\nConnection: TE, close\r\n\r\n', 'latin1');
    for (let cut = 0; cut <= text.length; cut++) {
      const framer = new ChunkedFramer();
      const first = framer.push(text.subarray(0, cut), 0);
      if (first < 0) expect(framer.push(text.subarray(cut), 0)).toBe(text.length - cut);
      expect(framer.closeConnection, `split at ${cut}`).toBe(true);
    }
  });

  it('refuses at the same byte however the body is split', () => {
    const bad = Buffer.from('5\r\nhello\r\n1;a=b c\r\nx\r\n0\r\n\r\n', 'latin1');
    const at = bad.indexOf(' ');
    for (let cut = 0; cut <= bad.length; cut++) {
      const framer = new ChunkedFramer();
      let absolute = -1;
      let base = 0;
      try {
        if (framer.push(bad.subarray(0, cut), 0) < 0) {
          base = cut;
          framer.push(bad.subarray(cut), 0);
        }
      } catch (e) {
        absolute = base + (e as Http1FramingError).offset;
      }
      expect(absolute, `split at ${cut}`).toBe(at);
    }
  });
});

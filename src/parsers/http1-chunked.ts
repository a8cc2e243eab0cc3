/**
 * The chunked transfer coding (RFC 9112 §7.1), validated as it streams: finds where a chunked body ends so
 * the engine can forward the original bytes verbatim and know when the next message starts. It copies
 * nothing; payload bytes are only shown to `onData` (for sampling) as (buf, start, end) ranges.
 *
 * Strict like Node's llhttp 9.3 in strict mode (src/llhttp/http.ts, chunk_size_* and chunk_extension_*
 * nodes): hex chunk-size with no sign and no whitespace, extensions `;name[=token|quoted-string]` with
 * llhttp's own leniencies (an empty name or value is accepted, as is a quote after token characters),
 * CRLF only, trailer fields validated like header fields (no obs-fold, no whitespace before the colon,
 * no Content-Length, and in a request no non-empty Transfer-Encoding — llhttp refuses those after
 * `Transfer-Encoding: chunked`). Two bounds llhttp does not have: a chunk-size above 2^53 − 1 is refused
 * (llhttp: 2^64 − 1; a JS number cannot count it), and the size line and the trailer section are bounded.
 *
 * Trailers can also end the connection in llhttp — a `Connection: close` trailer, or in a response a
 * Transfer-Encoding trailer that does not end in chunked (the message then "needs EOF"): `closeConnection`
 * reports that, so the engine closes where Node would. Not knowing the HTTP version, it errs on the safe
 * side for HTTP/1.0, where llhttp ignores a close trailer and lets a keep-alive trailer re-open the
 * connection: here close always closes, keep-alive never re-opens.
 *
 * State is a handful of numbers, so any split of the body across push() calls gives the same answer.
 */
import { CC_HEX, CC_QDTEXT, CC_TOKEN, CC_VALUE, CHAR_CLASS } from './http1.js';

/** A malformed chunked body; `offset` is the index, in the buffer given to push(), of the offending byte. */
export class Http1FramingError extends Error {
  readonly code = 'BAD_CHUNK' as const;
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(message);
    this.name = 'Http1FramingError';
    this.offset = offset;
  }
}

export interface ChunkedFramerOptions {
  /** Longest chunk-size line, extensions included, CRLF excluded. Default 4096. */
  readonly maxLineBytes?: number;
  /** Payload bytes, for sampling: buf[start, end) is chunk data. */
  readonly onData?: (buf: Buffer, start: number, end: number) => void;
  /**
   * Whose body this is. llhttp refuses a non-empty Transfer-Encoding trailer field in a request and lets it
   * pass in a response. Default 'request' (the stricter).
   */
  readonly message?: 'request' | 'response';
  /** Largest trailer section (field lines and the final CRLF). Default 16384, Node's default header limit. */
  readonly maxTrailerBytes?: number;
}

const T = CHAR_CLASS;
const HTAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const DQUOTE = 0x22;
const SEMI = 0x3b;
const EQUALS = 0x3d;
const COLON = 0x3a;
const COMMA = 0x2c;
const BACKSLASH = 0x5c;

// States, named after llhttp's nodes where there is one.
const S_SIZE_START = 0; // chunk_size_start: one HEXDIG required
const S_SIZE = 1; // chunk_size
const S_EXT_START = 2; // chunk_extensions (after ';')
const S_EXT_NAME = 3; // chunk_extension_name
const S_EXT_VALUE = 4; // chunk_extension_value
const S_QUOTED = 5; // chunk_extension_quoted_value
const S_QUOTED_PAIR = 6; // chunk_extension_quoted_value_quoted_pair
const S_QUOTED_DONE = 7; // chunk_extension_quoted_value_done
const S_SIZE_LF = 8; // chunk_size_almost_done
const S_DATA = 9; // chunk_data
const S_DATA_CR = 10; // chunk_data_almost_done
const S_DATA_LF = 11;
const S_TRAILER_START = 12; // header_field_start with F_TRAILING
const S_TRAILER_NAME = 13;
const S_TRAILER_OWS = 14;
const S_TRAILER_VALUE = 15;
const S_TRAILER_LF = 16;
const S_FINAL_LF = 17; // headers_almost_done
const S_DONE = 18;
const S_FAILED = 19;

/** The largest chunk-size accepted: Number.MAX_SAFE_INTEGER, checked before each digit as (max − d) / 16. */
const MAX_SIZE = Number.MAX_SAFE_INTEGER;

// Trailer names that matter (bits of nameMatch), matched case-insensitively as they stream in.
const TRAILER_NAMES = ['content-length', 'transfer-encoding', 'connection', 'proxy-connection'] as const;
const N_CONTENT_LENGTH = 1;
const N_TRANSFER_ENCODING = 2;
// 4 and 8: Connection and Proxy-Connection (llhttp treats both alike)

// The value automata, streaming versions of scanTransferEncoding / scanConnection in http1.ts (llhttp's
// header_value_te_* and header_value_connection* nodes).
const V_NONE = 0;
const V_TE = 1;
const V_CONNECTION = 2;
const TE_CHUNKED = 0; // matching "chunked" (vIndex letters so far)
const TE_LAST = 1;
const TE_TOKEN = 2;
const TE_OWS = 3;
const CN_START = 0; // header_value_connection
const CN_WORD = 1; // matching vWord (vIndex letters so far)
const CN_WS = 2; // after a whole word: spaces, then ',' or the end
const CN_TOKEN = 3;
const CHUNKED = 'chunked';
const CONNECTION_WORDS = ['close', 'upgrade', 'keep-alive'] as const;

function hexValue(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57;
}

function describeByte(c: number): string {
  return c >= 0x21 && c <= 0x7e ? `'${String.fromCharCode(c)}'` : `0x${c.toString(16).padStart(2, '0')}`;
}

export class ChunkedFramer {
  private state = S_SIZE_START;
  /** Chunk-size being read, then the data bytes still expected in the chunk. */
  private size = 0;
  private lineBytes = 0;
  private trailerBytes = 0;
  /** Trailer field name: bytes seen, and which TRAILER_NAMES it can still be (bit k for name k). */
  private nameLength = 0;
  private nameMatch = 0;
  /** The value automaton of the current trailer (V_*), its state, and its position in a word. */
  private valueKind = V_NONE;
  private vState = 0;
  private vIndex = 0;
  private vWord = 0;
  private vPending = false;
  /** A Connection trailer carried close; the last non-empty Transfer-Encoding trailer did not end in chunked. */
  private trailerClose = false;
  private trailerTeNotChunked = false;
  private payload = 0;
  private readonly maxLineBytes: number;
  private readonly maxTrailerBytes: number;
  private readonly isRequest: boolean;
  private readonly onData: ((buf: Buffer, start: number, end: number) => void) | undefined;

  constructor(opts?: ChunkedFramerOptions) {
    this.maxLineBytes = opts?.maxLineBytes ?? 4096;
    this.maxTrailerBytes = opts?.maxTrailerBytes ?? 16384;
    this.isRequest = (opts?.message ?? 'request') === 'request';
    this.onData = opts?.onData;
  }

  /** The final CRLF has been seen. */
  get done(): boolean {
    return this.state === S_DONE;
  }

  /**
   * The trailers end the connection after this body, as llhttp decides it for HTTP/1.1: a Connection (or
   * Proxy-Connection) trailer with a close option, or — in a response — a Transfer-Encoding trailer whose
   * value does not end in chunked. Meaningful once `done`; the engine closes when head.keepAlive is false
   * or this is true.
   */
  get closeConnection(): boolean {
    return this.trailerClose || this.trailerTeNotChunked;
  }

  /** Payload bytes seen so far (decoded size). */
  get payloadBytes(): number {
    return this.payload;
  }

  /**
   * Feed buf[start…]. Returns the index in buf just after the body's final CRLF when the body ended in this
   * buffer, or -1 if more bytes are needed (after the end, push() consumes nothing and returns `start`).
   * Throws Http1FramingError on malformed input, and again on any later push.
   */
  push(buf: Buffer, start: number): number {
    let state = this.state;
    if (state === S_DONE) return start;
    if (state === S_FAILED) throw new Http1FramingError('the chunked body was already refused', start);
    let i = start;
    const end = buf.length;
    while (i < end) {
      if (state === S_DATA) {
        const take = Math.min(this.size, end - i);
        if (this.onData !== undefined) this.onData(buf, i, i + take);
        this.payload += take;
        this.size -= take;
        i += take;
        if (this.size === 0) state = S_DATA_CR;
        continue;
      }
      const c = buf[i]!;
      if (state <= S_QUOTED_DONE && c !== CR && ++this.lineBytes > this.maxLineBytes) {
        return this.fail(`chunk-size line longer than ${this.maxLineBytes} bytes`, i);
      }
      if (state >= S_TRAILER_START && state <= S_FINAL_LF && ++this.trailerBytes > this.maxTrailerBytes) {
        return this.fail(`trailer section longer than ${this.maxTrailerBytes} bytes`, i);
      }
      switch (state) {
        case S_SIZE_START:
          // RFC 9112 §7.1: chunk-size = 1*HEXDIG
          if ((T[c]! & CC_HEX) === 0) return this.fail(`chunk-size starts with ${describeByte(c)}`, i);
          this.size = hexValue(c);
          state = S_SIZE;
          break;
        case S_SIZE:
          if ((T[c]! & CC_HEX) !== 0) {
            const d = hexValue(c);
            if (this.size > (MAX_SIZE - d) / 16) return this.fail('chunk-size is larger than 2^53 - 1', i);
            this.size = this.size * 16 + d;
          } else if (c === CR) state = S_SIZE_LF;
          else if (c === SEMI) state = S_EXT_START;
          // llhttp strict refuses whitespace after the size (RFC 9112 §7.1 has none; BWS is a leniency).
          else return this.fail(`invalid character ${describeByte(c)} in chunk-size`, i);
          break;
        case S_EXT_START:
          // RFC 9112 §7.1.1 chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ): llhttp
          // strict allows no whitespace around ';' and '=', nor an empty extension before CR.
          if ((T[c]! & CC_TOKEN) !== 0) state = S_EXT_NAME;
          else if (c === EQUALS) state = S_EXT_VALUE; // an empty name: llhttp takes it
          else if (c === SEMI) state = S_EXT_START;
          else return this.fail(`invalid character ${describeByte(c)} after ';' in chunk extensions`, i);
          break;
        case S_EXT_NAME:
          if ((T[c]! & CC_TOKEN) !== 0) break;
          if (c === EQUALS) state = S_EXT_VALUE;
          else if (c === SEMI) state = S_EXT_START;
          else if (c === CR) state = S_SIZE_LF;
          else return this.fail(`invalid character ${describeByte(c)} in a chunk extension name`, i);
          break;
        case S_EXT_VALUE:
          // chunk-ext-val = token / quoted-string; llhttp also takes a quoted-string after token characters.
          if ((T[c]! & CC_TOKEN) !== 0) break;
          if (c === DQUOTE) state = S_QUOTED;
          else if (c === SEMI) state = S_EXT_START;
          else if (c === CR) state = S_SIZE_LF;
          else return this.fail(`invalid character ${describeByte(c)} in a chunk extension value`, i);
          break;
        case S_QUOTED:
          // RFC 9110 §5.6.4 quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
          if ((T[c]! & CC_QDTEXT) !== 0) break;
          if (c === DQUOTE) state = S_QUOTED_DONE;
          else if (c === BACKSLASH) state = S_QUOTED_PAIR;
          else return this.fail(`invalid character ${describeByte(c)} in a quoted chunk extension value`, i);
          break;
        case S_QUOTED_PAIR:
          // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
          if ((T[c]! & CC_VALUE) === 0) return this.fail(`invalid quoted-pair ${describeByte(c)} in a chunk extension`, i);
          state = S_QUOTED;
          break;
        case S_QUOTED_DONE:
          if (c === SEMI) state = S_EXT_START;
          else if (c === CR) state = S_SIZE_LF;
          else return this.fail(`invalid character ${describeByte(c)} after a quoted chunk extension value`, i);
          break;
        case S_SIZE_LF:
          if (c !== LF) return this.fail('CR not followed by LF after the chunk-size line', i);
          this.lineBytes = 0;
          if (this.size === 0) state = S_TRAILER_START; // last-chunk (RFC 9112 §7.1)
          else state = S_DATA;
          break;
        case S_DATA_CR:
          if (c !== CR) return this.fail(`chunk data not followed by CRLF (${describeByte(c)})`, i);
          state = S_DATA_LF;
          break;
        case S_DATA_LF:
          if (c !== LF) return this.fail('CR not followed by LF after chunk data', i);
          state = S_SIZE_START;
          break;
        case S_TRAILER_START:
          // RFC 9112 §7.1.2 trailer-section = *( field-line CRLF ), then CRLF ends the body.
          if (c === CR) state = S_FINAL_LF;
          else if ((T[c]! & CC_TOKEN) !== 0) {
            state = S_TRAILER_NAME;
            this.nameLength = 0;
            this.nameMatch = 15;
            this.matchName(c);
          } else return this.fail(`invalid character ${describeByte(c)} at the start of a trailer field`, i);
          break;
        case S_TRAILER_NAME:
          if ((T[c]! & CC_TOKEN) !== 0) {
            this.matchName(c);
            break;
          }
          if (c !== COLON) return this.fail(`invalid character ${describeByte(c)} in a trailer field name`, i);
          {
            const named = this.namedTrailer();
            if (named === N_CONTENT_LENGTH) {
              // llhttp: "Content-Length can't be present with Transfer-Encoding" (RFC 9110 §6.5.1: framing
              // fields are not allowed in trailers).
              return this.fail('Content-Length in the trailer section', i);
            }
            this.valueKind = named === N_TRANSFER_ENCODING ? V_TE : named !== 0 ? V_CONNECTION : V_NONE;
          }
          state = S_TRAILER_OWS;
          break;
        case S_TRAILER_OWS:
          if (c === SP || c === HTAB) break;
          if (c === CR) {
            state = S_TRAILER_LF; // an empty value changes nothing (llhttp sets no flag for it)
            break;
          }
          if ((T[c]! & CC_VALUE) === 0) return this.fail(`invalid character ${describeByte(c)} in a trailer field value`, i);
          if (this.valueKind === V_TE) {
            // llhttp, after Transfer-Encoding: chunked: another non-empty TE is an error in a request; in a
            // response it replaces the framing flags, decided at the end of the value.
            if (this.isRequest) return this.fail('Transfer-Encoding in the trailer section of a request', i);
            this.vState = TE_CHUNKED;
            this.vIndex = 0;
          } else if (this.valueKind === V_CONNECTION) {
            this.vState = CN_START;
            this.vPending = false;
          }
          if (this.valueKind !== V_NONE) this.feedValue(c);
          state = S_TRAILER_VALUE;
          break;
        case S_TRAILER_VALUE:
          if ((T[c]! & CC_VALUE) !== 0) {
            if (this.valueKind !== V_NONE) this.feedValue(c);
            break;
          }
          if (c !== CR) return this.fail(`invalid character ${describeByte(c)} in a trailer field value`, i);
          if (this.valueKind === V_TE) this.trailerTeNotChunked = this.vState !== TE_LAST;
          else if (this.valueKind === V_CONNECTION && this.vState === CN_WS && this.vPending) this.trailerClose = true;
          state = S_TRAILER_LF;
          break;
        case S_TRAILER_LF:
          if (c !== LF) return this.fail('CR not followed by LF after a trailer field', i);
          state = S_TRAILER_START; // a SP or HTAB there (obs-fold) is refused as a bad field-name byte
          break;
        default: // S_FINAL_LF
          if (c !== LF) return this.fail('CR not followed by LF at the end of the chunked body', i);
          this.state = S_DONE;
          return i + 1;
      }
      i++;
    }
    this.state = state;
    return -1;
  }

  /** Narrows the trailer name against TRAILER_NAMES, case-insensitively. */
  private matchName(c: number): void {
    const k = this.nameLength++;
    const lower = c | 0x20; // exact for the letters and '-' of these names (token bytes only reach here)
    for (let n = 0; n < TRAILER_NAMES.length; n++) {
      const name = TRAILER_NAMES[n]!;
      if ((this.nameMatch & (1 << n)) !== 0 && (k >= name.length || name.charCodeAt(k) !== lower)) this.nameMatch &= ~(1 << n);
    }
  }

  /** The N_* bit of the complete trailer name, or 0. */
  private namedTrailer(): number {
    for (let n = 0; n < TRAILER_NAMES.length; n++) {
      if ((this.nameMatch & (1 << n)) !== 0 && this.nameLength === TRAILER_NAMES[n]!.length) return 1 << n;
    }
    return 0;
  }

  /**
   * One value byte through the trailer's automaton. A partial word that stops matching continues as a
   * token at the byte that broke it, as llparse does (the bytes already matched are not read again).
   */
  private feedValue(c: number): void {
    const lower = c | 0x20; // compared with letters and '-' only; value bytes never include CR here
    if (this.valueKind === V_TE) {
      switch (this.vState) {
        case TE_CHUNKED:
          if (lower === CHUNKED.charCodeAt(this.vIndex)) {
            if (++this.vIndex === CHUNKED.length) this.vState = TE_LAST;
            return;
          }
          this.vState = c === COMMA ? TE_OWS : TE_TOKEN;
          return;
        case TE_LAST:
          // "chunked" then spaces: still last; a comma starts the next coding (allowed in responses).
          if (c === SP) return;
          this.vState = c === COMMA ? TE_OWS : TE_TOKEN;
          return;
        case TE_TOKEN:
          if (c === COMMA) this.vState = TE_OWS;
          return;
        default: // TE_OWS
          if (c === SP || c === HTAB) return;
          this.vState = TE_CHUNKED;
          this.vIndex = 0;
          this.feedValue(c);
          return;
      }
    }
    switch (this.vState) {
      case CN_START:
        if (c === SP || c === HTAB) return;
        for (let w = 0; w < CONNECTION_WORDS.length; w++) {
          if (lower === CONNECTION_WORDS[w]!.charCodeAt(0)) {
            this.vState = CN_WORD;
            this.vWord = w;
            this.vIndex = 1;
            return;
          }
        }
        this.vState = c === COMMA ? CN_START : CN_TOKEN;
        return;
      case CN_WORD: {
        const word = CONNECTION_WORDS[this.vWord]!;
        if (lower === word.charCodeAt(this.vIndex)) {
          if (++this.vIndex === word.length) {
            this.vState = CN_WS;
            this.vPending = this.vWord === 0; // only close matters here (see the class comment)
          }
          return;
        }
        this.vState = c === COMMA ? CN_START : CN_TOKEN;
        return;
      }
      case CN_WS:
        if (c === SP) return;
        if (c === COMMA) {
          if (this.vPending) this.trailerClose = true;
          this.vState = CN_START;
        } else this.vState = CN_TOKEN; // a tab, or more characters: not the bare option
        this.vPending = false;
        return;
      default: // CN_TOKEN
        if (c === COMMA) this.vState = CN_START;
    }
  }

  private fail(message: string, offset: number): never {
    this.state = S_FAILED;
    throw new Http1FramingError(`invalid chunked body: ${message} (offset ${offset})`, offset);
  }
}

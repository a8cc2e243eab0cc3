/**
 * The body of `POST /v1/hints`: NDJSON, a JSON array or a single JSON object of Sysmon events (SPEC "Endpoint
 * process hints"). Pure over complete bytes — the HTTP layer collects the body and enforces its size cap.
 *
 * One bad event never loses the good ones: a malformed NDJSON line or an invalid event is rejected alone, with
 * its index, an error code from the catalogue and a reason (answer 202). The body fails as a whole — answer 400
 * (415 for the content type), one rejection with index -1 — only when nothing in it can be read as an event:
 *  - a body that starts with `[` but is not one valid JSON array, or is not valid UTF-8 (RFC 8259 §8.1);
 *  - a body in which no item is a JSON object: every NDJSON line is invalid JSON, invalid UTF-8, over
 *    MAX_LINE_BYTES, or a JSON value of the wrong shape (`42`, `"x"`, `null`, an array), or an array none of
 *    whose elements is an object;
 *  - a content type that is neither JSON nor NDJSON nor text.
 * A body with at least one JSON object is read event by event, even when every event turns out invalid
 * (`{"EventID": 7}` is a readable event that is refused, not an unreadable body). An empty body or `[]` is an
 * empty batch: 202 with zero counts. Reasons name the line (1-based) and its byte offset in the body.
 */
import { isUtf8 } from 'node:buffer';
import type { ErrorCode } from '../errors.js';
import { normalizeHintEvent } from './hint-event.js';
import type { HintStore } from './hint-store.js';
import { neutralize } from './neutralize.js';

export interface HintIngestLimits {
  /** Events read per request; the rest are rejected with HINT_TOO_MANY (default 100,000). */
  readonly maxItems: number;
  /** Rejections listed one by one in the answer; the rest are counted in `errorsOmitted` (default 100). */
  readonly maxErrors: number;
}

export const DEFAULT_INGEST_LIMITS: HintIngestLimits = Object.freeze({ maxItems: 100_000, maxErrors: 100 });

/**
 * Longest NDJSON line read: one Sysmon event is at most ~70 KB (a 32 KiB command line, twice with the parent's,
 * in JSON escapes). A longer line is rejected unread rather than parsed.
 */
export const MAX_LINE_BYTES = 1 << 20;

/** An NDJSON line that is not JSON: kept in place so that indexes stay aligned with the body's events. */
export class UnparsableItem {
  constructor(
    readonly code: ErrorCode,
    readonly reason: string,
  ) {}
}

export type ParseBodyResult =
  | {
      readonly ok: true;
      /** Parsed JSON values, or UnparsableItem for NDJSON lines that were not JSON. */
      readonly items: unknown[];
      /** Events beyond `maxItems` that were not read. */
      readonly overflow: number;
    }
  | { readonly ok: false; readonly code: ErrorCode; readonly reason: string };

export interface IngestError {
  /** 0-based position of the event in the body: array index, or n-th non-blank NDJSON line; -1: the whole body. */
  readonly index: number;
  readonly code: ErrorCode;
  readonly reason: string;
}

/** The answer: 202 with it, or — when `bodyFailure` finds one — 400/415. */
export interface IngestResult {
  readonly accepted: number;
  readonly rejected: number;
  readonly errors: IngestError[];
  /** Rejections not listed in `errors` (over `maxErrors`). */
  readonly errorsOmitted: number;
}

/** The error that failed the body as a whole (index -1), or null when the body was read event by event. */
export function bodyFailure(result: IngestResult): IngestError | null {
  const first = result.errors[0];
  return first !== undefined && first.index === -1 ? first : null;
}

/** Media types shippers use for JSON bodies: Logstash http `json_batch`, Vector `x-ndjson`, NXLog om_http, curl. */
function isAcceptedContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const type = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return type === '' || type.includes('json') || type === 'text/plain' || type === 'application/octet-stream' || type === 'application/jsonl';
}

const MAX_REASON = 200;

function parseReason(err: unknown): string {
  // V8 quotes the input in its message ("\"x\u202e…\" is not valid JSON"): neutralised like every reason.
  const msg = neutralize(err instanceof Error ? err.message : 'not valid JSON');
  return msg.length > MAX_REASON ? `${msg.slice(0, MAX_REASON)}…` : msg;
}

function failed(reason: string): ParseBodyResult {
  return { ok: false, code: 'HINT_PARSE', reason };
}

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function shapeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Split the body into JSON values. Shape by sniffing, not by content type: shippers label NDJSON as JSON. */
export function parseHintBody(
  body: Buffer | string,
  contentType: string | undefined,
  limits: Partial<HintIngestLimits> = {},
): ParseBodyResult {
  const maxItems = limits.maxItems ?? DEFAULT_INGEST_LIMITS.maxItems;
  if (!isAcceptedContentType(contentType)) {
    return { ok: false, code: 'HINT_CONTENT_TYPE', reason: `content type "${neutralize(String(contentType).slice(0, 80))}" is not JSON or NDJSON` };
  }
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  // A UTF-8 BOM (Windows tools write one); RFC 8259 §8.1 lets a parser ignore it.
  const start = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  let first = start;
  while (first < buf.length && isSpace(buf[first] ?? 0)) first++;
  if (first === buf.length) return { ok: true, items: [], overflow: 0 };

  const c = buf[first];
  if (c === 0x5b /* [ */) {
    const bad = firstInvalidUtf8(buf, start, buf.length);
    if (bad >= 0) return failed(`body is not valid UTF-8 (byte offset ${bad})`);
    let value: unknown;
    try {
      value = JSON.parse(buf.toString('utf8', start));
    } catch (err) {
      return failed(`body is not a valid JSON array: ${parseReason(err)}`);
    }
    if (!Array.isArray(value)) return failed('body is not a JSON array');
    if (value.length > 0 && !value.some(isObject)) {
      return failed(`no element of the JSON array is an object (element 0 is ${shapeOf(value[0])}): nothing to read as an event`);
    }
    return value.length > maxItems
      ? { ok: true, items: value.slice(0, maxItems), overflow: value.length - maxItems }
      : { ok: true, items: value, overflow: 0 };
  }
  if (c === 0x7b /* { */ && isUtf8(buf.subarray(start))) {
    // One (possibly pretty-printed) object; NDJSON fails here at its second line, after one line of work.
    try {
      const value: unknown = JSON.parse(buf.toString('utf8', start));
      return { ok: true, items: [value], overflow: 0 };
    } catch {
      // not a single value: NDJSON below
    }
  }
  return splitNdjson(buf, start, maxItems);
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function splitNdjson(buf: Buffer, start: number, maxItems: number): ParseBodyResult {
  const items: unknown[] = [];
  let overflow = 0;
  let pos = start;
  let line = 0;
  let objects = 0;
  let firstAt = '';
  while (pos <= buf.length) {
    let end = buf.indexOf(0x0a, pos);
    if (end < 0) end = buf.length;
    let stop = end;
    if (stop > pos && buf[stop - 1] === 0x0d) stop--; // CRLF
    line++;
    if (!isBlank(buf, pos, stop)) {
      const at = `line ${line} (byte offset ${pos})`;
      if (items.length === 0) firstAt = at;
      if (items.length >= maxItems) {
        overflow++;
      } else {
        const item = readLine(buf, pos, stop, at);
        if (isObject(item) && !(item instanceof UnparsableItem)) objects++;
        items.push(item);
      }
    }
    pos = end + 1;
  }
  if (items.length > 0 && objects === 0) {
    const head = items[0];
    const why = head instanceof UnparsableItem ? head.reason : `${firstAt} is ${shapeOf(head)}, not a JSON object`;
    const more = items.length - 1 + overflow;
    return failed(`nothing in the body can be read as an event: ${why}${more > 0 ? ` (and ${more} more line(s), none a JSON object)` : ''}`);
  }
  return { ok: true, items, overflow };
}

/** One NDJSON line: its JSON value, or why it has none. */
function readLine(buf: Buffer, from: number, to: number, at: string): unknown {
  if (to - from > MAX_LINE_BYTES) return new UnparsableItem('HINT_PARSE', `${at} is longer than ${MAX_LINE_BYTES} bytes (one event is far less): not read`);
  // Invalid UTF-8 is refused, not replaced by U+FFFD: a replaced byte would silently change a process name.
  const bad = firstInvalidUtf8(buf, from, to);
  if (bad >= 0) return new UnparsableItem('HINT_PARSE', `${at} is not valid UTF-8 (byte offset ${bad})`);
  try {
    return JSON.parse(buf.toString('utf8', from, to));
  } catch (err) {
    return new UnparsableItem('HINT_PARSE', `${at} is not valid JSON: ${parseReason(err)}`);
  }
}

function isBlank(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (!isSpace(buf[i] ?? 0)) return false;
  return true;
}

/**
 * Offset of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629 §4: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or -1. The native isUtf8 answers the common, valid case.
 */
export function firstInvalidUtf8(buf: Buffer, from: number, to: number): number {
  if (isUtf8(buf.subarray(from, to))) return -1;
  let i = from;
  while (i < to) {
    const b = buf[i] ?? 0;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) need = 2;
    else if (b >= 0xf0 && b <= 0xf4) need = 3;
    else return i;
    if (b === 0xe0) lo = 0xa0; // overlong
    else if (b === 0xed) hi = 0x9f; // UTF-16 surrogates
    else if (b === 0xf0) lo = 0x90; // overlong
    else if (b === 0xf4) hi = 0x8f; // above U+10FFFF
    if (i + need >= to) return i; // cut short
    const b1 = buf[i + 1] ?? 0;
    if (b1 < lo || b1 > hi) return i;
    for (let k = 2; k <= need; k++) if (((buf[i + k] ?? 0) & 0xc0) !== 0x80) return i;
    i += need + 1;
  }
  return from; // isUtf8 and this scan disagree: report the start rather than accept the bytes
}

/**
 * Parse, normalize and store every event of one request. Returns synchronously when the store's `put` does
 * (the memory store); with a networked store, a Promise of the same answer. A body that fails as a whole
 * is `{ accepted: 0, rejected: 1, errors: [{ index: -1, … }] }`.
 */
export function ingestHints(
  body: Buffer | string,
  contentType: string | undefined,
  store: HintStore,
  nowMs: number,
  limits: Partial<HintIngestLimits> = {},
): IngestResult | Promise<IngestResult> {
  const maxErrors = limits.maxErrors ?? DEFAULT_INGEST_LIMITS.maxErrors;
  const parsed = parseHintBody(body, contentType, limits);
  if (!parsed.ok) {
    return { accepted: 0, rejected: 1, errors: [{ index: -1, code: parsed.code, reason: parsed.reason }], errorsOmitted: 0 };
  }
  const errors: IngestError[] = [];
  let accepted = 0;
  let rejected = 0;
  let omitted = 0;
  const reject = (index: number, code: ErrorCode, reason: string): void => {
    rejected++;
    if (errors.length < maxErrors) errors.push({ index, code, reason });
    else omitted++;
  };
  let pending: Array<{ readonly index: number; readonly done: Promise<void> }> | null = null;
  const { items } = parsed;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (item instanceof UnparsableItem) {
      reject(i, item.code, item.reason);
      continue;
    }
    const r = normalizeHintEvent(item, { nowMs });
    if (!r.ok) {
      reject(i, r.code, r.reason);
      continue;
    }
    const done = store.put(r.event);
    if (done !== undefined) (pending ??= []).push({ index: i, done });
    accepted++;
  }
  if (parsed.overflow > 0) {
    rejected += parsed.overflow;
    if (errors.length < maxErrors) {
      errors.push({
        index: items.length,
        code: 'HINT_TOO_MANY',
        reason: `${parsed.overflow} event(s) after the first ${items.length} were not read (limit per request)`,
      });
    } else {
      omitted++;
    }
  }
  const result = (): IngestResult => ({ accepted, rejected, errors, errorsOmitted: omitted });
  if (pending === null) return result();
  // A networked store: an event whose put failed was not stored after all; count it as rejected.
  const waits = pending;
  return Promise.allSettled(waits.map((w) => w.done)).then((outcomes) => {
    outcomes.forEach((o, k) => {
      if (o.status === 'fulfilled') return;
      accepted--;
      reject(waits[k]?.index ?? -1, 'HINT_STORE_FAILED', 'the hint store could not take the event');
    });
    return result();
  });
}

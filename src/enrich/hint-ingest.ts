/**
 * The body of `POST /v1/hints`: NDJSON, a JSON array or a single JSON object of Sysmon events (SPEC "Endpoint
 * process hints"). Pure over complete bytes — the HTTP layer collects the body and enforces its size cap.
 *
 * One bad event never loses the good ones: a malformed NDJSON line or an invalid event is rejected alone, with
 * its index, an error code from the catalogue and a reason. Only a body that cannot be split into events at all
 * (a broken JSON array, a form upload) fails as a whole.
 */
import type { ErrorCode } from '../errors.js';
import { normalizeHintEvent } from './hint-event.js';
import type { HintStore } from './hint-store.js';

export interface HintIngestLimits {
  /** Events read per request; the rest are rejected with HINT_TOO_MANY (default 100,000). */
  readonly maxItems: number;
  /** Rejections listed one by one in the answer; the rest are counted in `errorsOmitted` (default 100). */
  readonly maxErrors: number;
}

export const DEFAULT_INGEST_LIMITS: HintIngestLimits = Object.freeze({ maxItems: 100_000, maxErrors: 100 });

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
  /** 0-based position of the event in the body: array index, or n-th non-blank NDJSON line. */
  readonly index: number;
  readonly code: ErrorCode;
  readonly reason: string;
}

/** The `202` answer. */
export interface IngestResult {
  readonly accepted: number;
  readonly rejected: number;
  readonly errors: IngestError[];
  /** Rejections not listed in `errors` (over `maxErrors`). */
  readonly errorsOmitted: number;
}

/** Media types shippers use for JSON bodies: Logstash http `json_batch`, Vector `x-ndjson`, NXLog om_http, curl. */
function isAcceptedContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const type = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return type === '' || type.includes('json') || type === 'text/plain' || type === 'application/octet-stream' || type === 'application/jsonl';
}

const MAX_REASON = 200;

function parseReason(err: unknown): string {
  const msg = err instanceof Error ? err.message : 'not valid JSON';
  return msg.length > MAX_REASON ? `${msg.slice(0, MAX_REASON)}…` : msg;
}

/** Split the body into JSON values. Shape by sniffing, not by content type: shippers label NDJSON as JSON. */
export function parseHintBody(
  body: Buffer | string,
  contentType: string | undefined,
  limits: Partial<HintIngestLimits> = {},
): ParseBodyResult {
  const maxItems = limits.maxItems ?? DEFAULT_INGEST_LIMITS.maxItems;
  if (!isAcceptedContentType(contentType)) {
    return { ok: false, code: 'HINT_CONTENT_TYPE', reason: `content type "${String(contentType).slice(0, 80)}" is not JSON or NDJSON` };
  }
  let text = typeof body === 'string' ? body : body.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a UTF-8 BOM (Windows tools write one)
  let first = 0;
  while (first < text.length && isSpace(text.charCodeAt(first))) first++;
  if (first === text.length) return { ok: true, items: [], overflow: 0 };

  const c = text.charCodeAt(first);
  if (c === 0x5b /* [ */) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return { ok: false, code: 'HINT_PARSE', reason: `body is not a valid JSON array: ${parseReason(err)}` };
    }
    if (!Array.isArray(value)) return { ok: false, code: 'HINT_PARSE', reason: 'body is not a JSON array' };
    return value.length > maxItems
      ? { ok: true, items: value.slice(0, maxItems), overflow: value.length - maxItems }
      : { ok: true, items: value, overflow: 0 };
  }
  if (c === 0x7b /* { */) {
    // One (possibly pretty-printed) object; NDJSON fails here at its second line, after one line of work.
    try {
      const value: unknown = JSON.parse(text);
      return { ok: true, items: [value], overflow: 0 };
    } catch {
      // not a single value: NDJSON below
    }
  }
  return splitNdjson(text, maxItems);
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function splitNdjson(text: string, maxItems: number): ParseBodyResult {
  const items: unknown[] = [];
  let overflow = 0;
  let pos = 0;
  let line = 0;
  while (pos <= text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    let stop = end;
    if (stop > pos && text.charCodeAt(stop - 1) === 0x0d) stop--; // CRLF
    line++;
    if (!isBlank(text, pos, stop)) {
      if (items.length >= maxItems) {
        overflow++;
      } else {
        try {
          items.push(JSON.parse(text.slice(pos, stop)));
        } catch (err) {
          items.push(new UnparsableItem('HINT_PARSE', `line ${line} is not valid JSON: ${parseReason(err)}`));
        }
      }
    }
    pos = end + 1;
  }
  return { ok: true, items, overflow };
}

function isBlank(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (!isSpace(text.charCodeAt(i))) return false;
  return true;
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

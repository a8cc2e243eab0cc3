import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ingestHints, parseHintBody, UnparsableItem, type IngestResult } from '../../../src/enrich/hint-ingest.js';
import { createMemoryHintStore, type HintStore } from '../../../src/enrich/hint-store.js';
import type { HintEvent } from '../../../src/enrich/hint-event.js';

const NOW = Date.UTC(2024, 4, 1, 10, 0, 0);
const otrfText = readFileSync(new URL('../../fixtures/telemetry/sysmon-otrf-samples.jsonl', import.meta.url), 'utf8');
const beatText = readFileSync(new URL('../../fixtures/telemetry/winlogbeat-sysmon.jsonl', import.meta.url), 'utf8');

function evt(port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { EventID: 3, UtcTime: '2024-05-01 10:00:00.000', Computer: 'PC1', Image: 'C:\\x\\rundll32.exe', ProcessId: 1, SourceIp: '10.1.2.3', SourcePort: port, ...extra };
}

function sync(r: IngestResult | Promise<IngestResult>): IngestResult {
  if (r instanceof Promise) throw new Error('memory store answers synchronously');
  return r;
}

function fresh(): HintStore {
  return createMemoryHintStore({ now: () => NOW, maxEntries: 100_000 });
}

describe('parseHintBody', () => {
  it('NDJSON: one value per line, blank lines and CRLF handled; a malformed line is an item, not a body failure', () => {
    const r = parseHintBody(Buffer.from(`${JSON.stringify(evt(1))}\r\n\n   \n{"EventID": 3,\n${JSON.stringify(evt(2))}\n`), 'application/x-ndjson');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.items).toHaveLength(3);
    expect(r.items[1]).toBeInstanceOf(UnparsableItem);
    expect((r.items[1] as UnparsableItem).reason).toMatch(/^line 4 \(byte offset 154\) is not valid JSON/);
    expect((r.items[2] as Record<string, unknown>)['SourcePort']).toBe(2);
  });

  it('a JSON array, a single object (even pretty-printed), an empty body', () => {
    const arr = parseHintBody(JSON.stringify([evt(1), evt(2)]), 'application/json');
    expect(arr.ok && arr.items.length).toBe(2);
    const one = parseHintBody(JSON.stringify(evt(1), null, 2), 'application/json');
    expect(one.ok && one.items.length).toBe(1);
    const empty = parseHintBody('  \n', undefined);
    expect(empty.ok && empty.items.length).toBe(0);
    const bom = parseHintBody(`\ufeff${JSON.stringify(evt(1))}`, 'application/json; charset=utf-8');
    expect(bom.ok && bom.items.length).toBe(1);
  });

  it('a broken JSON array or a non-JSON content type fails the body with a code and reason', () => {
    expect(parseHintBody('[{"EventID": 3},', 'application/json')).toMatchObject({ ok: false, code: 'HINT_PARSE' });
    expect(parseHintBody('a=b', 'application/x-www-form-urlencoded')).toMatchObject({ ok: false, code: 'HINT_CONTENT_TYPE' });
  });

  it('caps the item count and says how many were not read', () => {
    const body = Array.from({ length: 12 }, (_, i) => JSON.stringify(evt(i + 1))).join('\n');
    const r = parseHintBody(body, undefined, { maxItems: 10 });
    expect(r.ok && [r.items.length, r.overflow]).toEqual([10, 2]);
    const a = parseHintBody(JSON.stringify(Array.from({ length: 12 }, (_, i) => evt(i + 1))), undefined, { maxItems: 10 });
    expect(a.ok && [a.items.length, a.overflow]).toEqual([10, 2]);
  });
});

describe('ingestHints', () => {
  it('stores the OTRF events (NDJSON) and the Winlogbeat ones (as an array), rejecting the non-Sysmon-1/3/22 ones', () => {
    const store = fresh();
    expect(sync(ingestHints(otrfText, 'application/x-ndjson', store, NOW))).toEqual({ accepted: 13, rejected: 0, errors: [], errorsOmitted: 0 });
    const lines = beatText.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as unknown);
    const r = sync(ingestHints(JSON.stringify(lines), 'application/json', store, NOW));
    expect(r.accepted).toBe(5);
    expect(r.rejected).toBe(2);
    expect(r.errors.map((e) => [e.index, e.code])).toEqual([
      [5, 'HINT_UNSUPPORTED'],
      [6, 'HINT_UNSUPPORTED'],
    ]);
    expect(store.findConnection('172.18.39.5', 50247, Date.UTC(2020, 6, 22, 3, 27, 53))?.processName).toBe('regsvr32.exe');
  });

  it('bad lines among good ones: every good event is stored, each bad one has its index, code and reason', () => {
    const store = fresh();
    const body = [
      JSON.stringify(evt(1)),
      'not json',
      JSON.stringify(evt(2, { SourcePort: 70000 })),
      JSON.stringify(evt(3, { EventID: 8 })),
      '42',
      JSON.stringify(evt(4)),
    ].join('\n');
    const r = sync(ingestHints(body, 'application/x-ndjson', store, NOW));
    expect(r.accepted).toBe(2);
    expect(r.rejected).toBe(4);
    expect(r.errors).toEqual([
      { index: 1, code: 'HINT_PARSE', reason: expect.stringMatching(/^line 2 \(byte offset \d+\) is not valid JSON/) as unknown },
      { index: 2, code: 'HINT_INVALID', reason: 'SourcePort: out of range 0–65535: number 70000' },
      { index: 3, code: 'HINT_UNSUPPORTED', reason: 'Sysmon Event ID 8 is not used for attribution (only 1, 3 and 22 are)' },
      { index: 4, code: 'HINT_INVALID', reason: 'expected a JSON object, got number 42' },
    ]);
    expect(store.findConnection('10.1.2.3', 1, NOW)).not.toBeNull();
    expect(store.findConnection('10.1.2.3', 4, NOW)).not.toBeNull();
  });

  it('lists at most maxErrors rejections and counts the rest; item overflow is a rejection too', () => {
    const body = Array.from({ length: 30 }, () => '{"EventID": 7}').join('\n');
    const r = sync(ingestHints(body, undefined, fresh(), NOW, { maxErrors: 5 }));
    expect(r).toMatchObject({ accepted: 0, rejected: 30, errorsOmitted: 25 });
    expect(r.errors).toHaveLength(5);
    const over = sync(ingestHints([1, 2, 3].map((p) => JSON.stringify(evt(p))).join('\n'), undefined, fresh(), NOW, { maxItems: 2 }));
    expect(over).toMatchObject({ accepted: 2, rejected: 1, errors: [{ index: 2, code: 'HINT_TOO_MANY' }] });
  });

  it('a body failure is one rejection with index -1', () => {
    expect(sync(ingestHints('[1,', undefined, fresh(), NOW))).toMatchObject({ accepted: 0, rejected: 1, errors: [{ index: -1, code: 'HINT_PARSE' }] });
  });

  it('events from a broken endpoint clock (a day ahead) are rejected; the receiver clock is the reference', () => {
    const r = sync(ingestHints(JSON.stringify(evt(1, { UtcTime: '2024-05-03 10:00:00' })), undefined, fresh(), NOW));
    expect(r.errors[0]?.reason).toMatch(/ahead of the receiver's clock/);
  });

  it('with an asynchronous store (Redis-like), resolves the same counts, and a failed put is a rejection', async () => {
    const memory = fresh();
    let calls = 0;
    const asyncStore: HintStore = {
      ...memory,
      put: (ev: HintEvent) => {
        calls++;
        return calls === 2 ? Promise.reject(new Error('down')) : Promise.resolve(memory.put(ev));
      },
    };
    const r = await ingestHints([1, 2, 3].map((p) => JSON.stringify(evt(p))).join('\n'), undefined, asyncStore, NOW);
    expect(r).toMatchObject({ accepted: 2, rejected: 1, errors: [{ index: 1, code: 'HINT_STORE_FAILED' }] });
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventId } from '../../../src/flow/event-id.js';
import { Flow } from '../../../src/flow/flow.js';
import { serializeEcsRecord } from '../../../src/observe/ecs.js';

/** RFC 9562 §5.7: version 7, variant 10 (8–b). */
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The 48-bit millisecond field of a UUIDv7's text. */
const timeOf = (id: string): number => parseInt(id.slice(0, 8) + id.slice(9, 13), 16);

describe('eventId (UUIDv7)', () => {
  it('is a version-7, variant-10 UUID whose first 48 bits are the millisecond given', () => {
    for (const ms of [0, 1, 1_765_000_000_000, Date.now(), 2 ** 48 - 1]) {
      const id = eventId(ms);
      expect(id).toMatch(UUID_V7);
      expect(timeOf(id)).toBe(ms);
    }
  });

  it('sorts as text in the order of its milliseconds (the property the history index relies on)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.integer({ min: 0, max: 2 ** 48 - 1 }), (a, b) => {
        const [ia, ib] = [eventId(a), eventId(b)];
        if (a < b) expect(ia < ib).toBe(true);
        if (a > b) expect(ia > ib).toBe(true);
        expect(timeOf(ia)).toBe(a);
        expect(timeOf(ib)).toBe(b);
      }),
      { numRuns: 2000 },
    );
  });

  it('differs between ids of the same millisecond, in their random bits', () => {
    const ms = 1_765_000_000_123;
    const ids = new Set(Array.from({ length: 50_000 }, () => eventId(ms)));
    expect(ids.size).toBe(50_000);
    // 74 random bits: the digits after the version vary, not only the last few.
    const firstRandom = new Set([...ids].slice(0, 200).map((id) => id.slice(15, 18)));
    expect(firstRandom.size).toBeGreaterThan(150);
  });

  it('clamps instants a 48-bit field cannot hold instead of writing a malformed id', () => {
    expect(timeOf(eventId(-5))).toBe(0);
    expect(timeOf(eventId(Number.NaN))).toBe(0);
    expect(timeOf(eventId(2 ** 48 + 10))).toBe(2 ** 48 - 1);
    expect(eventId(1.9)).toMatch(/^00000000-0001-7/);
  });

  it("is a flow's id and its record's event.id, named by the flow's start", () => {
    const flow = new Flow('http', false);
    expect(flow.id).toMatch(UUID_V7);
    expect(timeOf(flow.id)).toBe(flow.startedMs);
    const record = JSON.parse(serializeEcsRecord(flow)) as { event: { id: string }; '@timestamp': string };
    expect(record.event.id).toBe(flow.id);
    expect(Date.parse(record['@timestamp'])).toBe(timeOf(flow.id));
  });
});

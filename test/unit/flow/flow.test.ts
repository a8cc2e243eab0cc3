import { describe, expect, it } from 'vitest';
import { FIELD_BY_SLOT, FIELD_COUNT, FIELD_SLOT, FIELDS, type FieldName } from '../../../src/flow/fields.js';
import { Flow } from '../../../src/flow/flow.js';

describe('Flow field slots', () => {
  it('gives every catalogue field its own slot, and the slots are 0 … FIELD_COUNT-1', () => {
    const names = Object.keys(FIELDS) as FieldName[];
    expect(FIELD_COUNT).toBe(names.length);
    expect(new Set(names.map((n) => FIELD_SLOT.get(n))).size).toBe(names.length);
    names.forEach((name) => expect(FIELD_BY_SLOT[FIELD_SLOT.get(name) as number]).toBe(name));
  });

  it('keeps what is set, ignores undefined, and lists known fields in catalogue order', () => {
    const flow = new Flow('http', false);
    flow.set('url.path', '/a');
    flow.set('destination.port', 8080);
    flow.set('url.query', undefined);
    flow.set('destination.port', 8081); // a later value replaces the earlier one
    expect(flow.get('url.path')).toBe('/a');
    expect(flow.get('destination.port')).toBe(8081);
    expect(flow.has('url.query')).toBe(false);
    const listed = flow.fields().map(([name]) => name);
    expect(listed).toEqual(expect.arrayContaining(['@timestamp', 'event.id', 'url.path', 'destination.port']));
    expect(listed).toHaveLength(4);
    expect([...listed].sort((a, b) => (FIELD_SLOT.get(a) as number) - (FIELD_SLOT.get(b) as number))).toEqual(listed);
    // Each flow has its own values: a second flow starts empty.
    expect(new Flow('http', false).has('url.path')).toBe(false);
  });

  it('reads a name outside the catalogue as absent and refuses to store one', () => {
    const flow = new Flow('connect', false);
    const unknown = 'no.such.field' as FieldName;
    expect(flow.get(unknown)).toBeUndefined();
    expect(flow.isPending(unknown)).toBe(false);
    expect(() => flow.set(unknown, 'x' as never)).toThrow(/unknown flow field no\.such\.field/);
  });

  it('writes @timestamp as toISOString of its start', () => {
    const flow = new Flow('dns', false);
    expect(flow.get('@timestamp')).toBe(new Date(flow.startedMs).toISOString());
  });
});

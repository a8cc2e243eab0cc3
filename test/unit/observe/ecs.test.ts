import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Flow } from '../../../src/flow/flow.js';
import { ARRAY_IN_RECORD, buildEcsRecord, ECS_VERSION, OBSERVER, serializeEcsRecord } from '../../../src/observe/ecs.js';
import { FIELDS, type FieldName, type FieldType, type FieldValue } from '../../../src/flow/fields.js';
import { mulberry32 } from '../../helpers/prng.js';
import { builtinDecision } from '../../../src/policy/decision.js';

describe('ECS flow records', () => {
  it('nests dotted fields and adds what the decision and the end of the flow say', () => {
    const flow = new Flow('connect', false);
    flow.set('source.ip', '10.0.0.5');
    flow.set('source.port', 51000);
    flow.set('destination.domain', 'c2.example');
    flow.set('destination.port', 8443);
    flow.set('tls.client.ja3', 'aa'.repeat(16));
    flow.set('process.name', 'rundll32.exe');
    flow.sourceBytes = 517;
    flow.destinationBytes = 0;
    flow.decision = {
      status: 'final',
      verdict: 'block',
      ruleId: 'lolbin',
      matchedRuleIds: ['tag-ext', 'lolbin'],
      tags: ['an0922', 'attack.t1071'],
      severity: 'high',
      tunnel: 'splice',
      reasons: ['rule lolbin: process.name is one of [rundll32.exe]'],
    };
    const rec = buildEcsRecord(flow, flow.startedNs + 1234n);
    expect(rec).toMatchObject({
      source: { ip: '10.0.0.5', port: 51000, bytes: 517 },
      destination: { domain: 'c2.example', port: 8443, bytes: 0 },
      tls: { client: { ja3: 'aa'.repeat(16) } },
      process: { name: 'rundll32.exe' },
      event: { kind: 'alert', action: 'block', outcome: 'success', duration: 1234, severity: 3 },
      rule: { id: 'lolbin' },
      tags: ['an0922', 'attack.t1071'],
      egress: { rules: ['tag-ext', 'lolbin'], explanation: ['rule lolbin: process.name is one of [rundll32.exe]'] },
    });
    expect(typeof rec['@timestamp']).toBe('string');
    expect(JSON.parse(JSON.stringify(rec))).toEqual(rec);
    // A blocked tunnel was neither spliced nor bumped: the record says what the proxy did, not the rule's mode.
    expect((rec['egress'] as Record<string, unknown>)['tunnel']).toBeUndefined();
  });

  it('an event without severity is kind "event", and a default allow has no rule.id', () => {
    const flow = new Flow('http', false);
    flow.decision = { status: 'final', verdict: 'allow', ruleId: null, matchedRuleIds: [], tags: [], severity: null, tunnel: 'splice', reasons: [] };
    const rec = buildEcsRecord(flow);
    expect(rec).toMatchObject({ event: { kind: 'event', action: 'allow' } });
    expect(rec['rule']).toBeUndefined();
    expect(rec['tags']).toBeUndefined();
    expect((rec['egress'] as Record<string, unknown> | undefined)?.['tunnel']).toBeUndefined();
  });

  it('records failures with their stable error code', () => {
    const flow = new Flow('http', false);
    flow.decision = builtinDecision('block', 'builtin:bad-request', 'bad');
    flow.fail('BAD_TARGET', 'CONNECT authority "x" has no port');
    flow.fail('CLIENT_ABORTED', 'later consequence');
    expect(buildEcsRecord(flow)).toMatchObject({
      event: { outcome: 'failure', action: 'block' },
      error: { code: 'BAD_TARGET', message: 'CONNECT authority "x" has no port' },
      rule: { id: 'builtin:bad-request' },
    });
  });

  it('a flow that ended before its decision says which rule was still pending and forwarded nothing', () => {
    const flow = new Flow('connect', false);
    flow.decision = { status: 'pending', pendingRuleId: 'ja4-rule', pendingFields: ['tls.client.ja4'], matchedRuleIds: [], tags: [], severity: null, tunnel: 'splice', reasons: [] };
    expect(buildEcsRecord(flow)).toMatchObject({ event: { action: 'block' }, egress: { pending_rule: 'ja4-rule' } });
  });
});

describe('ECS serialisation visits only the fields a flow has', () => {
  it('nests any subset of the catalogue exactly as building the nested object and stringifying it would', () => {
    const names = Object.keys(FIELDS) as FieldName[];
    const random = mulberry32(0x5eed);
    for (let round = 0; round < 300; round++) {
      const flow = new Flow('http', false);
      const values = new Map<FieldName, FieldValue>();
      for (const name of names) {
        if (random() < 0.7) continue;
        // A value of the field's declared type (the record derives fields from some of them).
        const type = FIELDS[name].type as FieldType;
        const value: FieldValue =
          type === 'number' ? Math.floor(random() * 1000)
          : type === 'boolean' ? random() < 0.5
          : type === 'string[]' ? [`v${round}`]
          : type === 'number[]' ? [round]
          : type === 'object[]' ? [{ name: `v${round}` }]
          : `v${round}`;
        values.set(name, value);
        flow.set(name, value as never);
      }
      const end = flow.startedNs + 1000n;
      const line = serializeEcsRecord(flow, end);
      // Reference: every catalogue path laid out in catalogue order (as the record's tree is), the flow's values
      // filled in, empty objects pruned, then JSON.stringify.
      const reference: Record<string, unknown> = {};
      for (const name of names) {
        // ecs.version and observer.* are the same in every record: written at its end, whatever the flow holds.
        if (name.startsWith('ecs.') || name.startsWith('observer.')) continue;
        const path = name === '@timestamp' ? [name] : name.split('.');
        let level = reference;
        for (const key of path.slice(0, -1)) level = (level[key] ??= {}) as Record<string, unknown>;
        const leaf = path[path.length - 1] as string;
        const value = flow.get(name);
        // ECS array fields held as one value are written as a one-element list.
        if (!(leaf in level)) level[leaf] = ARRAY_IN_RECORD.has(name) && value !== undefined && !Array.isArray(value) ? [value] : value;
      }
      const prune = (o: Record<string, unknown>): Record<string, unknown> | undefined => {
        for (const [k, v] of Object.entries(o)) {
          const kept = v !== null && typeof v === 'object' && !Array.isArray(v) ? prune(v as Record<string, unknown>) : v;
          if (kept === undefined) delete o[k];
          else o[k] = kept;
        }
        return Object.keys(o).length === 0 ? undefined : o;
      };
      expect(line).toBe(JSON.stringify({ ...prune(reference), ecs: { version: ECS_VERSION }, observer: OBSERVER }));
    }
  });
});

describe('ECS serialisation of values', () => {
  it('writes any string, number and list exactly as JSON.stringify would (escapes, lone surrogates, -0, floats)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' })), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.array(fc.string()), (text, n, list) => {
        const flow = new Flow('http', false);
        flow.set('url.original', text);
        flow.set('egress.score', n);
        flow.set('tags', list);
        const rec = JSON.parse(serializeEcsRecord(flow, flow.startedNs)) as { url: { original: string }; egress: { score: number }; tags: string[] };
        expect(rec.url.original).toBe(text);
        expect(rec.egress.score).toBe(JSON.parse(JSON.stringify(n)) as number);
        expect(rec.tags).toEqual(list);
        expect(serializeEcsRecord(flow, flow.startedNs)).toContain(`"original":${JSON.stringify(text)}`);
      }),
      { numRuns: 2000 },
    );
  });
});

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { FIELDS, FRACTIONAL_FIELDS, type FieldName } from '../../../src/flow/fields.js';
import { renderEsTemplate, TEMPLATE_FILE } from '../../../scripts/gen-es-template.js';
import { ECS } from './ecs-rules.js';

type Mapping = { type?: string; properties?: Record<string, Mapping> };
const template = JSON.parse(readFileSync(TEMPLATE_FILE, 'utf8')) as { index_patterns: string[]; template: { mappings: { properties: Record<string, Mapping> } } };

function mappingOf(name: string): Mapping | undefined {
  const path = name === '@timestamp' ? [name] : name.split('.');
  let node: Mapping | undefined = { properties: template.template.mappings.properties };
  for (const key of path) node = node?.properties?.[key];
  return node;
}

describe('deploy/elasticsearch/egress-inspector-template.json', () => {
  it('is what scripts/gen-es-template.ts generates (run `npx tsx scripts/gen-es-template.ts` after adding a field)', () => {
    expect(readFileSync(TEMPLATE_FILE, 'utf8')).toBe(renderEsTemplate());
  });

  it('maps every catalogue field explicitly: ECS fields with their ECS type, ours by declared type', () => {
    expect(template.index_patterns).toEqual(['egress-inspector-*']);
    for (const name of Object.keys(FIELDS) as FieldName[]) {
      const mapping = mappingOf(name);
      expect(mapping?.type, name).toBeDefined();
      const ecs = ECS[name];
      if (!name.startsWith('egress.') && ecs !== undefined) expect(mapping?.type, name).toBe(ecs.type);
    }
  });

  it('maps fractional numbers as floating point, whole numbers as long (a dynamic mapping would pin floats to long)', () => {
    expect(mappingOf('egress.dns.question_entropy')?.type).toBe('float');
    expect(mappingOf('egress.beacon.interval_ms')?.type).toBe('double');
    for (const name of Object.keys(FIELDS) as FieldName[]) {
      if (FIELDS[name].type !== 'number') continue;
      const type = mappingOf(name)?.type;
      expect(type === 'float' || type === 'double' || type === 'scaled_float', name).toBe(FRACTIONAL_FIELDS.has(name));
    }
  });

  it('maps the SPEC fingerprints as keyword and dns.answers with its ECS sub-fields', () => {
    for (const name of ['tls.client.ja4', 'http.request.ja4h', 'tls.server.ja4s', 'tls.server.ja4x']) expect(mappingOf(name)?.type, name).toBe('keyword');
    expect(mappingOf('dns.answers.ttl')?.type).toBe('long');
    expect(mappingOf('dns.answers.data')?.type).toBe('keyword');
  });
});

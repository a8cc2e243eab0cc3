import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FIELDS, isMatchableField } from '../../../../src/flow/fields.js';
import { FIELD_MAPPINGS } from '../../../../src/policy/sigma/fields.js';

describe('Sigma field table', () => {
  const doc = readFileSync('docs/sigma.md', 'utf8');

  it('every mapped flow field exists in the catalogue', () => {
    for (const table of Object.values(FIELD_MAPPINGS)) {
      for (const [sigma, mapping] of Object.entries(table)) {
        if (mapping.kind === 'field') expect(Object.prototype.hasOwnProperty.call(FIELDS, mapping.field), sigma).toBe(true);
      }
    }
  });

  it('docs/sigma.md lists every Sigma field with its flow field, and says "refused" where the converter refuses', () => {
    for (const [category, table] of Object.entries(FIELD_MAPPINGS)) {
      const section = doc.split(`### ${category}\n`)[1]?.split('\n### ')[0] ?? '';
      for (const [sigma, mapping] of Object.entries(table)) {
        const row = section.split('\n').find((line) => line.startsWith(`| \`${sigma}\` |`) && (mapping.kind !== 'field' || line.includes(`\`${mapping.field}\``)));
        expect(row, sigma).toBeDefined();
        const refused = mapping.kind === 'refused' || (mapping.kind === 'field' && !isMatchableField(mapping.field));
        expect(row?.includes('**refused**'), `${sigma}: ${row ?? ''}`).toBe(refused);
      }
    }
  });
});

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { FIELDS } from '../../../src/flow/fields.js';

describe('docs stay in step with the code', () => {
  it('docs/flow-record.md documents every flow field', () => {
    const doc = readFileSync(new URL('../../../docs/flow-record.md', import.meta.url), 'utf8');
    for (const name of Object.keys(FIELDS)) expect(doc, name).toContain(`| \`${name}\` |`);
  });

  it('docs/metrics.md documents every metric the registry exposes', async () => {
    const { createMetrics } = await import('../../../src/observe/metrics.js');
    const doc = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
    const metrics = createMetrics({ defaultMetrics: false });
    for (const m of await metrics.registry.getMetricsAsJSON()) expect(doc, m.name).toContain(`\`${m.name}\``);
  });
});

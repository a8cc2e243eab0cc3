/**
 * Regenerates the field list of policies/schema.json (`$defs.when.properties`) from src/flow/fields.ts, so
 * editors offer exactly the fields the policy compiler accepts. Run after adding a field:
 *   npx tsx scripts/gen-policy-schema.ts
 * test/unit/policy/default-policy.test.ts fails when the two disagree.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { FIELDS, isMatchableField, isTagOnlyField, type FieldName } from '../src/flow/fields.js';
import { SIGNALS, SIGNAL_NAMES } from '../src/scoring/signals.js';

const file = new URL('../policies/schema.json', import.meta.url);
const schema = JSON.parse(readFileSync(file, 'utf8')) as { properties: Record<string, unknown>; $defs: { when: { properties: Record<string, unknown> } } };
const old = schema.$defs.when.properties;
const properties: Record<string, unknown> = { all: old['all'], any: old['any'], not: old['not'] };
for (const name of Object.keys(FIELDS) as FieldName[]) {
  if (!isMatchableField(name)) continue;
  const spec = FIELDS[name];
  const when = isTagOnlyField(name) ? 'known when the flow ends: tag rules only' : `known at stage ${spec.stage}`;
  properties[name] = { $ref: '#/$defs/condition', description: `${spec.description} (${spec.type}; ${when})` };
}
schema.$defs.when.properties = properties;
// `scoring.weights`: the signals of src/scoring/signals.ts with their default points (docs/scoring.md).
const weights: Record<string, unknown> = {};
for (const name of SIGNAL_NAMES) {
  weights[name] = { type: 'number', minimum: 0, maximum: 100, default: SIGNALS[name].weight, description: SIGNALS[name].description };
}
schema.properties['scoring'] = {
  type: 'object',
  description: 'Overrides of the detection engine\'s signal weights (docs/scoring.md)',
  additionalProperties: false,
  properties: { weights: { type: 'object', description: 'Points a signal adds at full strength; 0 turns it off', additionalProperties: false, properties: weights } },
};
writeFileSync(file, `${JSON.stringify(schema, null, 2)}\n`);
process.stdout.write(`policies/schema.json: ${Object.keys(properties).length - 3} fields\n`);

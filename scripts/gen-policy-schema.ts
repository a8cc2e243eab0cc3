/**
 * Regenerates the field list of policies/schema.json (`$defs.when.properties`) from src/flow/fields.ts, so
 * editors offer exactly the fields the policy compiler accepts. Run after adding a field:
 *   npx tsx scripts/gen-policy-schema.ts
 * test/unit/policy/default-policy.test.ts fails when the two disagree.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { FIELDS, isMatchableField, type FieldName } from '../src/flow/fields.js';

const file = new URL('../policies/schema.json', import.meta.url);
const schema = JSON.parse(readFileSync(file, 'utf8')) as { $defs: { when: { properties: Record<string, unknown> } } };
const old = schema.$defs.when.properties;
const properties: Record<string, unknown> = { all: old['all'], any: old['any'], not: old['not'] };
for (const name of Object.keys(FIELDS) as FieldName[]) {
  if (!isMatchableField(name)) continue;
  const spec = FIELDS[name];
  properties[name] = { $ref: '#/$defs/condition', description: `${spec.description} (${spec.type}; known at stage ${spec.stage})` };
}
schema.$defs.when.properties = properties;
writeFileSync(file, `${JSON.stringify(schema, null, 2)}\n`);
process.stdout.write(`policies/schema.json: ${Object.keys(properties).length - 3} fields\n`);

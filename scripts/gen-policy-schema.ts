/**
 * Regenerates the field list of policies/schema.json (`$defs.when.properties`) from src/flow/fields.ts, so
 * editors offer exactly the fields the policy compiler accepts. Run after adding a field:
 *   npx tsx scripts/gen-policy-schema.ts
 * test/unit/policy/default-policy.test.ts fails when the two disagree.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { FIELDS, isMatchableField, isTagOnlyField, type FieldName } from '../src/flow/fields.js';
import { SIGNALS, SIGNAL_NAMES } from '../src/scoring/signals.js';
import { EXPECT_KEYS, RULE_MODES, VERDICTS } from '../src/policy/parse.js';

const file = new URL('../policies/schema.json', import.meta.url);
const schema = JSON.parse(readFileSync(file, 'utf8')) as {
  properties: Record<string, unknown>;
  $defs: Record<string, unknown> & { when: { properties: Record<string, unknown> }; rule: { properties: Record<string, unknown> } };
};
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
// `mode` of a rule and the top-level `tests:` (docs/policy.md "Shadow rules", "Testing a policy"), from the parser's own enums.
schema.$defs.rule.properties['mode'] = {
  enum: [...RULE_MODES],
  default: 'live',
  description: 'live (the default) decides; shadow is evaluated when the flow ends, counted and recorded in egress.shadow, and never decides',
};
// A test flow: the fields a rule can read, with their JSON types (nested maps by dotted name are accepted too).
const JSON_TYPES = { string: { type: 'string' }, ip: { type: 'string' }, number: { type: 'number' }, boolean: { type: 'boolean' }, 'string[]': { type: 'array', items: { type: 'string' } }, 'number[]': { type: 'array', items: { type: 'number' } } } as const;
const flowFields: Record<string, unknown> = {};
for (const name of Object.keys(FIELDS) as FieldName[]) {
  const spec = FIELDS[name];
  if (!isMatchableField(name) || spec.type === 'object[]') continue;
  flowFields[name] = { ...JSON_TYPES[spec.type], description: spec.description };
}
const expectKeys: Record<(typeof EXPECT_KEYS)[number], unknown> = {
  action: { enum: [...VERDICTS], description: 'event.action of the record' },
  rule: { type: ['string', 'null'], description: 'rule.id: the rule that decided (builtin:internal-destination included); null when no rule decided' },
  rules: { type: 'array', items: { type: 'string' }, description: 'egress.rules: exactly the live rules that matched' },
  tags: { type: 'array', items: { type: 'string' }, description: 'exactly these tags (any order); [] for none' },
  alert: { type: 'boolean', description: 'event.kind is alert (a matched rule has a severity)' },
  shadow: { type: 'array', items: { type: 'string' }, description: 'exactly these shadow rules matched (egress.shadow)' },
};
schema.$defs['test'] = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'flow', 'expect'],
  properties: {
    name: { type: 'string', minLength: 1, description: 'Unique test name' },
    flow: { type: 'object', description: 'Record fields of the flow (a field left out is absent)', properties: flowFields },
    expect: { type: 'object', additionalProperties: false, minProperties: 1, properties: expectKeys },
  },
};
schema.properties['tests'] = { type: 'array', items: { $ref: '#/$defs/test' }, description: 'Flows and the outcome they must get: run by policy test and policy check' };
writeFileSync(file, `${JSON.stringify(schema, null, 2)}\n`);
process.stdout.write(`policies/schema.json: ${Object.keys(properties).length - 3} fields\n`);

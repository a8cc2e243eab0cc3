/**
 * The rule every flow-record field obeys (issue 11, SPEC "Flow records"): an ECS field (test/fixtures/ecs/ecs-fields.json, from ../shared/ecs)
 * with a JSON value of its ECS type and an allowed value where ECS fixes them; or under `egress.*`; or one of the
 * four fingerprint names SPEC keeps. Shared by the unit conformance test and test/integration/ecs-records.test.ts.
 */
import { isIP } from 'node:net';
import { FIELDS, FRACTIONAL_FIELDS, type FieldName, type FieldType } from '../../../src/flow/fields.js';
import { ARRAY_IN_RECORD } from '../../../src/observe/ecs.js';
import { loadEcsFields, SPEC_FINGERPRINTS, type EcsFieldSpec } from '../../../scripts/gen-es-template.js';

export const ECS: Readonly<Record<string, EcsFieldSpec>> = loadEcsFields();

const STRING_TYPES = new Set(['keyword', 'wildcard', 'match_only_text', 'text', 'constant_keyword']);
const FLOAT_TYPES = new Set(['float', 'scaled_float', 'double', 'half_float']);
/** ISO 8601 date-time in UTC as Date#toISOString writes it. */
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

const isOwn = (name: string): boolean => name.startsWith('egress.') || SPEC_FINGERPRINTS.has(name);

/** Why one scalar value does not fit an ECS type, or null. */
function scalarProblem(path: string, type: string, value: unknown): string | null {
  if (STRING_TYPES.has(type)) return typeof value === 'string' ? null : `${path}: ${type} needs a string, got ${JSON.stringify(value)}`;
  if (type === 'long') return Number.isSafeInteger(value) ? null : `${path}: long needs an integer, got ${JSON.stringify(value)}`;
  if (FLOAT_TYPES.has(type)) return typeof value === 'number' && Number.isFinite(value) ? null : `${path}: ${type} needs a number`;
  if (type === 'ip') return typeof value === 'string' && isIP(value) !== 0 ? null : `${path}: ip needs an IP address, got ${JSON.stringify(value)}`;
  if (type === 'date') {
    return typeof value === 'string' && ISO_DATE.test(value) && !Number.isNaN(Date.parse(value)) ? null : `${path}: date needs an ISO 8601 string, got ${JSON.stringify(value)}`;
  }
  if (type === 'boolean') return typeof value === 'boolean' ? null : `${path}: boolean needs true/false`;
  if (type === 'object') {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return `${path}: object needs an object`;
    const problems = Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => ecsValueProblems(`${path}.${k}`, v));
    return problems.length === 0 ? null : problems.join('; ');
  }
  return `${path}: unhandled ECS type ${type}`;
}

/** Problems of one value at an ECS path. */
function ecsValueProblems(path: string, value: unknown): string[] {
  const spec = ECS[path];
  if (spec === undefined) return [`${path}: not an ECS field`];
  const isArray = spec.normalize?.includes('array') === true;
  if (isArray !== Array.isArray(value)) return [`${path}: ECS ${isArray ? 'expects an array' : 'expects a single value'}, got ${JSON.stringify(value)}`];
  const values = Array.isArray(value) ? (value as unknown[]) : [value];
  const problems: string[] = [];
  for (const v of values) {
    const p = scalarProblem(path, spec.type, v);
    if (p !== null) problems.push(p);
    if (spec.allowed !== undefined && !spec.allowed.includes(v as string)) problems.push(`${path}: ${JSON.stringify(v)} is not an allowed value (${spec.allowed.join(', ')})`);
  }
  return problems;
}

/** Leaf paths of a nested record: a plain object nests, anything else (arrays included) is a value. */
export function leaves(record: Readonly<Record<string, unknown>>, prefix = ''): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const [key, value] of Object.entries(record)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && ECS[path]?.type !== 'object') out.push(...leaves(value as Record<string, unknown>, path));
    else out.push([path, value]);
  }
  return out;
}

/** Every field of a record that breaks the rule, with why. Empty when the record conforms. */
export function recordProblems(record: Readonly<Record<string, unknown>>): string[] {
  const problems: string[] = [];
  for (const [path, value] of leaves(record)) {
    if (path.startsWith('egress.')) continue;
    if (SPEC_FINGERPRINTS.has(path)) {
      if (typeof value !== 'string') problems.push(`${path}: a fingerprint is a string`);
      continue;
    }
    problems.push(...ecsValueProblems(path, value));
  }
  return problems;
}

/** The ECS types a declared catalogue type can carry. */
function catalogueTypeFits(name: FieldName, spec: EcsFieldSpec): boolean {
  // A single value the record writes as a one-element list (src/observe/ecs.ts ARRAY_IN_RECORD).
  const declared = (ARRAY_IN_RECORD.has(name) && FIELDS[name].type === 'string' ? 'string[]' : FIELDS[name].type) as FieldType;
  const isArray = spec.normalize?.includes('array') === true;
  switch (declared) {
    case 'string':
      return !isArray && (STRING_TYPES.has(spec.type) || spec.type === 'date');
    case 'ip':
      return !isArray && spec.type === 'ip';
    case 'number':
      return !isArray && (spec.type === 'long' ? !FRACTIONAL_FIELDS.has(name) : FLOAT_TYPES.has(spec.type));
    case 'boolean':
      return !isArray && spec.type === 'boolean';
    case 'string[]':
      return isArray && (STRING_TYPES.has(spec.type) || spec.type === 'ip');
    case 'number[]':
      return isArray && (spec.type === 'long' || FLOAT_TYPES.has(spec.type));
    case 'object[]':
      return isArray && spec.type === 'object';
  }
}

/** Every catalogue field that breaks the rule (name and declared type), with why. */
export function catalogueProblems(): string[] {
  const problems: string[] = [];
  for (const name of Object.keys(FIELDS) as FieldName[]) {
    const spec = ECS[name];
    if (SPEC_FINGERPRINTS.has(name)) {
      if (spec !== undefined) problems.push(`${name}: ECS now defines it, use the ECS field`);
      if (FIELDS[name].type !== 'string') problems.push(`${name}: a fingerprint is a string`);
    } else if (name.startsWith('egress.')) {
      if (Object.keys(ECS).some((k) => k === 'egress' || k.startsWith('egress.'))) problems.push('ECS defines egress.*');
    } else if (spec === undefined) {
      problems.push(`${name}: not an ECS field (move it under egress.*)`);
    } else if (!catalogueTypeFits(name, spec)) {
      problems.push(`${name}: declared ${FIELDS[name].type}${FRACTIONAL_FIELDS.has(name) ? ' (fractional)' : ''}, ECS type ${spec.type}${spec.normalize?.includes('array') === true ? ' (array)' : ''}`);
    }
  }
  for (const name of FRACTIONAL_FIELDS) if (FIELDS[name].type !== 'number') problems.push(`${name}: fractional but not a number`);
  return problems;
}

export { isOwn };

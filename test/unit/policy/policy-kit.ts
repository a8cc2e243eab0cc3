/** Small helpers for the policy tests: a fake `Facts` and inline policy compilation. */
import type { Facts } from '../../../src/flow/facts.js';
import type { FieldName, FlowFields } from '../../../src/flow/fields.js';
import type { CompiledPolicy } from '../../../src/policy/compile.js';
import { buildPolicy } from '../../../src/policy/load.js';

/**
 * Facts for a flow: `values` are known; `pending` names fields whose stage can still arrive; every other
 * field is absent for good.
 */
export function fakeFacts(values: FlowFields, pending: readonly FieldName[] = []): Facts {
  const known = values as Readonly<Record<string, unknown>>;
  return {
    get: (name) => known[name] as never,
    // A derived total (egress.score) is pending while listed, even with a value so far.
    isPending: (name) => pending.includes(name) && (known[name] === undefined || name === 'egress.score'),
  };
}

/** Compiles inline YAML policy text; throws with the formatted issues when it is invalid. */
export function compileYaml(text: string, file = 'inline.yaml'): CompiledPolicy {
  const result = buildPolicy([{ file, bytes: new TextEncoder().encode(text) }]);
  if (!result.ok) throw new Error(result.errors.map((issue) => issue.format()).join('\n'));
  return result.policy;
}

/** The formatted issues of inline YAML policy text (empty when valid). */
export function issuesOf(text: string, file = 'inline.yaml'): string[] {
  const result = buildPolicy([{ file, bytes: new TextEncoder().encode(text) }]);
  return result.ok ? [] : result.errors.map((issue) => issue.format());
}

/** A one-rule policy whose rule has this `when` (YAML flow text) and action `block`. */
export function ruleWhen(when: string, lists = ''): CompiledPolicy {
  return compileYaml(`version: 1\n${lists ? `lists:\n${lists}\n` : ''}rules:\n  - id: r\n    when: ${when}\n    action: block\n`);
}

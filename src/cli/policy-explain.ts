/**
 * `egress-inspector policy explain --flow JSON [--policy FILE...] [--open STAGE,...] [--json]`: why a flow gets
 * its decision, rule by rule (src/policy/explain.ts). The flow is record fields as JSON, flat dotted names or
 * nested like a flow record (a pasted record works: fields the decision writes are left out). By default every
 * stage is over (a field the flow lacks is absent, as in `policy test`); `--open hint` explains the flow as it
 * stands while the process hint may still come (its absent fields are pending).
 */
import { fieldStages, STAGES, type FieldName, type FieldValue, type FieldValueOf, type Stage } from '../flow/fields.js';
import type { Facts } from '../flow/facts.js';
import { readFlow } from '../policy/compile.js';
import type { Decision } from '../policy/decision.js';
import { explainFlow, type FlowExplanation } from '../policy/explain.js';
import { loadPolicy } from '../policy/load.js';
import type { Position, WrittenNode } from '../policy/parse.js';
import type { PolicyCheckIo } from './policy-check.js';

export interface PolicyExplainOptions {
  /** The flow as JSON text. */
  readonly flow: string;
  /** Policy files in load order. */
  readonly policy: readonly string[];
  /** Stages whose facts have not arrived yet. */
  readonly open?: readonly string[];
  readonly json?: boolean;
}

const FLOW_POS: Position = { file: '--flow', line: 1, col: 1 };
/** JSON nesting accepted in --flow (a record nests 5 deep). */
const MAX_DEPTH = 32;

/** A JSON value as the positioned tree the flow reader takes (positions: the option, there are no lines). */
function fromJson(value: unknown, depth = 0): WrittenNode {
  if (depth > MAX_DEPTH) return { kind: 'invalid', pos: FLOW_POS };
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return { kind: 'scalar', value, pos: FLOW_POS };
  }
  if (Array.isArray(value)) return { kind: 'seq', items: value.map((item) => fromJson(item, depth + 1)), pos: FLOW_POS };
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).map(([key, v]) => ({ key, keyPos: FLOW_POS, value: fromJson(v, depth + 1) }));
    return { kind: 'map', entries, pos: FLOW_POS };
  }
  return { kind: 'invalid', pos: FLOW_POS };
}

/** Facts of the given flow; an absent field of an open stage is pending. */
export function explainFacts(values: ReadonlyMap<FieldName, FieldValue>, open: ReadonlySet<Stage>): Facts {
  return {
    get: <K extends FieldName>(name: K) => values.get(name) as FieldValueOf<K> | undefined,
    isPending: (name) => open.size > 0 && values.get(name) === undefined && fieldStages(name).some((stage) => open.has(stage)),
  };
}

export function parseFlowJson(text: string): { ok: true; values: Map<FieldName, FieldValue> } | { ok: false; errors: string[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { ok: false, errors: [`--flow is not JSON: ${err instanceof Error ? err.message : String(err)}`] };
  }
  const node = fromJson(parsed);
  if (node.kind !== 'map') return { ok: false, errors: ['--flow must be a JSON object of record fields, e.g. {"process.name":"rundll32.exe","destination.port":4444}'] };
  const { values, issues } = readFlow(node, { what: '--flow', skipRecordFields: true });
  // The positions say nothing here (one line of JSON): the messages name the field.
  if (issues.length > 0) return { ok: false, errors: issues.map((issue) => issue.message) };
  return { ok: true, values };
}

function describeDecision(d: Decision): string {
  const parts: string[] = [];
  if (d.status === 'pending') parts.push(`pending: rule ${d.pendingRuleId} waits for ${d.pendingFields.join(', ')}`);
  else parts.push(`${d.verdict} (${d.ruleId === null ? 'no rule decided: the default' : `rule ${d.ruleId}`})`);
  if (d.tags.length > 0) parts.push(`tags [${d.tags.join(', ')}]`);
  parts.push(d.severity === null ? 'no alert' : `alert (severity ${d.severity})`);
  if (d.status === 'final' && d.tunnel === 'bump') parts.push('tunnel bump');
  if (d.shadow !== undefined) parts.push(`shadow ${d.shadow.map((m) => `${m.rule}→${m.action}`).join(', ')}`);
  return parts.join('; ');
}

const MARK = { matched: 'match  ', failed: 'no     ', pending: 'pending' } as const;

export function formatExplanation(e: FlowExplanation): string {
  const lines: string[] = [];
  for (const r of e.rules) {
    const mode = r.mode === 'shadow' ? ' [shadow]' : r.afterDecision ? ' [after the decision]' : '';
    lines.push(`${MARK[r.status]} ${r.rule} (${r.action})${mode} ${r.file}:${r.line}`);
    lines.push(`          ${r.why}`);
  }
  lines.push(`decision: ${describeDecision(e.decision)}`);
  return `${lines.join('\n')}\n`;
}

export async function runPolicyExplain(opts: PolicyExplainOptions, io: PolicyCheckIo): Promise<number> {
  const open = new Set<Stage>();
  for (const word of opts.open ?? []) {
    if (!(STAGES as readonly string[]).includes(word) || word === 'connect' || word === 'end') {
      io.stderr.write(`policy explain: --open takes stages whose facts may still come: ${STAGES.filter((s) => s !== 'connect' && s !== 'end').join(', ')} (got "${word}")\n`);
      return 1;
    }
    open.add(word as Stage);
  }
  const flow = parseFlowJson(opts.flow);
  if (!flow.ok) {
    for (const error of flow.errors) io.stderr.write(`policy explain: ${error}\n`);
    return 1;
  }
  const loaded = await loadPolicy(opts.policy);
  if (!loaded.ok) {
    for (const issue of loaded.errors) io.stdout.write(`${issue.format()}\n`);
    io.stderr.write(`policy explain: the policy is invalid (${loaded.errors.length} errors)\n`);
    return 1;
  }
  const explanation = explainFlow(loaded.policy, explainFacts(flow.values, open), { closed: open.size === 0 });
  io.stdout.write(opts.json === true ? `${JSON.stringify(explanation)}\n` : formatExplanation(explanation));
  return 0;
}

import { FIELDS, type FieldName, type FieldValue } from '../flow/fields.js';
import type { Flow } from '../flow/flow.js';

const SEVERITY_NUMBER = { low: 1, medium: 2, high: 3, critical: 4 } as const;

export type EcsRecord = Record<string, unknown>;

/**
 * The nesting of the ECS document, built once from the field catalogue: a node per dotted prefix, a leaf per
 * field, in catalogue order. Serializing walks this fixed tree, so the per-flow work is Map lookups and
 * string building — no nested objects with flow-dependent shapes.
 */
interface TreeNode {
  /** `"key":` already JSON-encoded. */
  readonly prefix: string;
  readonly field: FieldName | null;
  readonly children: TreeNode[];
}

function buildTree(): TreeNode[] {
  const root: TreeNode[] = [];
  for (const name of Object.keys(FIELDS) as FieldName[]) {
    const path = name === '@timestamp' ? [name] : name.split('.');
    let level = root;
    path.forEach((key, i) => {
      const leaf = i === path.length - 1;
      let node = level.find((n) => n.prefix === `${JSON.stringify(key)}:` && (n.field === null) === !leaf);
      if (node === undefined) {
        node = { prefix: `${JSON.stringify(key)}:`, field: leaf ? name : null, children: [] };
        level.push(node);
      }
      level = node.children;
    });
  }
  return root;
}

const TREE = buildTree();

function writeLevel(nodes: readonly TreeNode[], values: ReadonlyMap<FieldName, FieldValue>): string {
  let out = '';
  for (const node of nodes) {
    let body: string;
    if (node.field !== null) {
      const value = values.get(node.field);
      if (value === undefined) continue;
      body = JSON.stringify(value);
    } else {
      const inner = writeLevel(node.children, values);
      if (inner === '') continue;
      body = `{${inner}}`;
    }
    out += out === '' ? node.prefix + body : `,${node.prefix}${body}`;
  }
  return out;
}

/** Write what the decision and the end of the flow add into the flow's own fields (record-only fields). */
function finishFields(flow: Flow, endNs: bigint): void {
  const decision = flow.decision;
  flow.set('event.kind', decision !== null && decision.severity !== null ? 'alert' : 'event');
  if (decision !== null && decision.status === 'final') {
    flow.set('event.action', decision.verdict);
    if (decision.ruleId !== null) flow.set('rule.id', decision.ruleId);
  } else {
    // A flow that ended before the policy could decide (client gone, shutdown) forwarded nothing.
    flow.set('event.action', 'block');
    if (decision !== null) flow.set('egress.pending_rule', decision.pendingRuleId);
  }
  if (decision !== null) {
    if (decision.severity !== null) flow.set('event.severity', SEVERITY_NUMBER[decision.severity]);
    if (decision.matchedRuleIds.length > 0) flow.set('egress.rules', decision.matchedRuleIds);
    if (decision.tags.length > 0) flow.set('tags', decision.tags);
    if (decision.reasons.length > 0) flow.set('egress.explanation', decision.reasons);
    if (flow.kind === 'connect') flow.set('egress.tunnel', decision.tunnel);
  }
  flow.set('event.outcome', flow.outcome);
  flow.set('event.duration', Number(endNs - flow.startedNs));
  flow.set('source.bytes', flow.sourceBytes);
  flow.set('destination.bytes', flow.destinationBytes);
  if (flow.errorCode !== null) {
    flow.set('error.code', flow.errorCode);
    flow.set('error.message', flow.errorMessage ?? '');
  }
}

/**
 * The ECS JSON line of a flow: every known field nested by its dotted name ({"source":{"ip":…}}), plus
 * what the decision and the end of the flow add. Call once, when the flow ends.
 */
export function serializeEcsRecord(flow: Flow, endNs: bigint = process.hrtime.bigint()): string {
  finishFields(flow, endNs);
  return `{${writeLevel(TREE, flow.fieldMap())}}`;
}

/** The same record as an object (tests, follow-up records). */
export function buildEcsRecord(flow: Flow, endNs: bigint = process.hrtime.bigint()): EcsRecord {
  return JSON.parse(serializeEcsRecord(flow, endNs)) as EcsRecord;
}

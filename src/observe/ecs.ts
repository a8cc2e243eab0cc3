import { FIELDS, type FieldName } from '../flow/fields.js';
import type { Flow } from '../flow/flow.js';

const SEVERITY_NUMBER = { low: 1, medium: 2, high: 3, critical: 4 } as const;

/** Each field's path in the nested ECS document, split once at load (not per flow). */
const PATHS: ReadonlyMap<string, readonly string[]> = new Map(
  (Object.keys(FIELDS) as FieldName[]).map((name) => [name, name === '@timestamp' ? [name] : name.split('.')]),
);

export type EcsRecord = Record<string, unknown>;

function put(doc: EcsRecord, name: string, value: unknown): void {
  const path = PATHS.get(name) ?? name.split('.');
  let node = doc;
  const last = path.length - 1;
  for (let i = 0; i < last; i++) {
    const key = path[i] as string;
    let child = node[key] as EcsRecord | undefined;
    if (child === undefined) {
      child = {};
      node[key] = child;
    }
    node = child;
  }
  node[path[last] as string] = value;
}

/**
 * The ECS document of a flow: every known field nested by its dotted name ({"source":{"ip":…}}), plus
 * what the decision and the end of the flow add. Pure: the same flow always gives the same record.
 */
export function buildEcsRecord(flow: Flow, endNs: bigint = process.hrtime.bigint()): EcsRecord {
  const doc: EcsRecord = {};
  const fields = flow.fields as Record<string, unknown>;
  for (const name in fields) {
    const value = fields[name];
    if (value !== undefined) put(doc, name, value);
  }
  const decision = flow.decision;
  const alert = decision !== null && decision.severity !== null;
  put(doc, 'event.kind', alert ? 'alert' : 'event');
  if (decision !== null && decision.status === 'final') {
    put(doc, 'event.action', decision.verdict);
    if (decision.ruleId !== null) put(doc, 'rule.id', decision.ruleId);
  } else {
    // A flow that ended before the policy could decide (client gone, shutdown) forwarded nothing.
    put(doc, 'event.action', 'block');
    if (decision !== null) put(doc, 'egress.pending_rule', decision.pendingRuleId);
  }
  if (decision !== null) {
    if (decision.severity !== null) put(doc, 'event.severity', SEVERITY_NUMBER[decision.severity]);
    if (decision.matchedRuleIds.length > 0) put(doc, 'egress.rules', decision.matchedRuleIds);
    if (decision.tags.length > 0) put(doc, 'tags', decision.tags);
    if (decision.reasons.length > 0) put(doc, 'egress.explanation', decision.reasons);
    if (flow.kind === 'connect') put(doc, 'egress.tunnel', decision.tunnel);
  }
  put(doc, 'event.outcome', flow.outcome);
  put(doc, 'event.duration', Number(endNs - flow.startedNs));
  put(doc, 'source.bytes', flow.sourceBytes);
  put(doc, 'destination.bytes', flow.destinationBytes);
  if (flow.errorCode !== null) {
    put(doc, 'error.code', flow.errorCode);
    put(doc, 'error.message', flow.errorMessage);
  }
  return doc;
}

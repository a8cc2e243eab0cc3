/**
 * What changes between two outcomes of one flow, and which rule each change is laid at (SPEC "Policy files",
 * `policy replay --json`: `{rule, change, count, examples}`).
 *
 * The convention: a change is attributed to the rule whose presence or absence explains it (docs/replay.md).
 * - newly_blocked / newly_allowed: the candidate's deciding rule when it is a policy rule (an added block rule, an
 *   allow rule that now matches first); when the candidate decides by a default (no rule matched: allow; an
 *   internal destination: `builtin:internal-destination`), the baseline's deciding rule — the block rule that was
 *   removed or no longer matches, the allow rule that no longer opens the internal destination; when neither
 *   outcome names a policy rule, whichever default decided (`builtin:internal-destination`, else `<default>`).
 * - newly_alerted: the candidate's matched rule with the highest severity. alert_removed: the baseline's one.
 * - tags_changed: each rule whose tags appear (the candidate's first matched rule that carries the tag) or
 *   disappear (the baseline's first matched rule that carries it).
 * With the recorded baseline the record does not say which matched rule carried which tag or severity: a tag or
 * an alert that disappears is laid at the first recorded rule that no longer matches (or whose candidate version
 * lacks the tag or severity), else at the first recorded rule; `--against` gives exact attribution.
 */
import type { CompiledPolicy } from '../policy/load.js';
import type { Outcome } from './outcome.js';

export const CHANGE_KINDS = ['newly_blocked', 'newly_allowed', 'newly_alerted', 'alert_removed', 'tags_changed'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

/** The rule name used when no rule explains a change: the default allow. */
export const DEFAULT_RULE = '<default>';

export interface Change {
  readonly rule: string;
  readonly change: ChangeKind;
}

function isPolicyRule(id: string | null): id is string {
  return id !== null && !id.startsWith('builtin:');
}

function verdictRule(before: Outcome, after: Outcome): string {
  if (isPolicyRule(after.ruleId)) return after.ruleId;
  if (isPolicyRule(before.ruleId)) return before.ruleId;
  return after.ruleId ?? before.ruleId ?? DEFAULT_RULE;
}

/**
 * The first rule matched in `before` that explains losing something (a tag, the alert): by the baseline policy's
 * own definition when it is known, else the first rule that no longer matches or whose candidate version lacks
 * it, else the first matched rule.
 */
function lostBy(before: Outcome, after: Outcome, beforePolicy: CompiledPolicy | null, afterPolicy: CompiledPolicy, carries: (policy: CompiledPolicy, id: string) => boolean): string {
  const ids = before.matchedRuleIds;
  if (beforePolicy !== null) {
    for (const id of ids) if (carries(beforePolicy, id)) return id;
  } else {
    for (const id of ids) if (!after.matchedRuleIds.includes(id) || !carries(afterPolicy, id)) return id;
  }
  return ids[0] ?? before.ruleId ?? DEFAULT_RULE;
}

function hasTag(tag: string): (policy: CompiledPolicy, id: string) => boolean {
  return (policy, id) => policy.ruleById(id)?.tags.includes(tag) === true;
}

const hasSeverity = (policy: CompiledPolicy, id: string): boolean => (policy.ruleById(id)?.severity ?? null) !== null;

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Every (rule, change) between the outcomes of one flow, each pair once. `beforePolicy` is the --against policy,
 * or null when `before` is the recorded decision.
 */
export function diffOutcomes(before: Outcome, after: Outcome, beforePolicy: CompiledPolicy | null, afterPolicy: CompiledPolicy): Change[] {
  const changes: Change[] = [];
  const add = (rule: string, change: ChangeKind): void => {
    if (!changes.some((c) => c.rule === rule && c.change === change)) changes.push({ rule, change });
  };
  if (before.verdict !== after.verdict) add(verdictRule(before, after), after.verdict === 'block' ? 'newly_blocked' : 'newly_allowed');
  if (!before.alert && after.alert) add(after.alertRuleId ?? after.ruleId ?? DEFAULT_RULE, 'newly_alerted');
  if (before.alert && !after.alert) {
    add(before.alertRuleId ?? lostBy(before, after, beforePolicy, afterPolicy, hasSeverity), 'alert_removed');
  }
  // Same tags in the same order is the common case (both empty, most of all): no sets built.
  if (!sameTags(before.tags, after.tags)) {
    for (const tag of after.tags) {
      if (before.tags.includes(tag)) continue;
      const by = after.matchedRuleIds.find((id) => afterPolicy.ruleById(id)?.tags.includes(tag) === true);
      add(by ?? after.ruleId ?? DEFAULT_RULE, 'tags_changed');
    }
    for (const tag of before.tags) {
      if (after.tags.includes(tag)) continue;
      add(lostBy(before, after, beforePolicy, afterPolicy, hasTag(tag)), 'tags_changed');
    }
  }
  return changes;
}

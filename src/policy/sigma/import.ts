/**
 * The whole import over texts already read: parse every Sigma document, convert each rule, check each
 * converted rule with the real policy loader (so the file written can never fail to load), and emit one
 * policy. Pure over its inputs; the CLI (src/cli/import-sigma.ts) does the file reading and writing.
 */
import { buildPolicy } from '../load.js';
import { convertSigmaRule, type ImportAction, type PolicyRuleDraft } from './convert.js';
import { emitPolicy } from './emit.js';
import { parseSigmaText, type SigmaRule } from './parse.js';

export interface SigmaSource {
  /** Path or URL; named in messages and in the attribution comment. */
  readonly source: string;
  readonly text: string;
}

export interface RefusedRule {
  readonly source: string;
  readonly id: string | null;
  readonly title: string | null;
  readonly reason: string;
}

export interface ImportResult {
  /** The generated policy file (a valid, possibly empty, policy). */
  readonly policyText: string;
  readonly converted: readonly PolicyRuleDraft[];
  readonly refused: readonly RefusedRule[];
}

export interface ImportOptions {
  readonly action?: ImportAction;
  readonly generatedFrom?: string;
}

/** Imports already-read Sigma rules (from YAML texts or from data, e.g. a JSON transcription). */
export function importSigmaRules(rules: readonly SigmaRule[], options: ImportOptions = {}, refusedBefore: readonly RefusedRule[] = []): ImportResult {
  const converted: PolicyRuleDraft[] = [];
  const refused: RefusedRule[] = [...refusedBefore];
  const seen = new Map<string, string>();
  for (const rule of rules) {
    const refuse = (reason: string): void => {
      refused.push({ source: rule.source, id: rule.id, title: rule.title, reason });
    };
    const first = seen.get(rule.id);
    if (first !== undefined) {
      refuse(`duplicate Sigma id (first in ${first})`);
      continue;
    }
    seen.set(rule.id, rule.source);
    const result = convertSigmaRule(rule, options.action === undefined ? {} : { action: options.action });
    if (!result.ok) {
      refuse(result.reason);
      continue;
    }
    // The loader is the judge of what a policy may say: a rule it refuses is refused here with its message.
    const alone = buildPolicy([{ file: 'sigma-import', bytes: new TextEncoder().encode(emitPolicy([result.rule])) }]);
    if (!alone.ok) {
      refuse(`the policy loader refuses the converted rule: ${alone.errors.map((issue) => issue.message).join('; ')}`);
      continue;
    }
    converted.push(result.rule);
  }
  const emitOptions = options.generatedFrom === undefined ? {} : { generatedFrom: options.generatedFrom };
  return { policyText: emitPolicy(converted, emitOptions), converted, refused };
}

/** Imports Sigma YAML texts: every document of every source, in order. */
export function importSigma(sources: readonly SigmaSource[], options: ImportOptions = {}): ImportResult {
  const rules: SigmaRule[] = [];
  const refused: RefusedRule[] = [];
  for (const { source, text } of sources) {
    for (const read of parseSigmaText(text, source)) {
      if (read.ok) rules.push(read.rule);
      else refused.push({ source: read.source, id: read.id, title: read.title, reason: read.error });
    }
  }
  return importSigmaRules(rules, options, refused);
}

/** Refusals grouped by reason with the `"…"`-quoted details removed, most frequent first (for summaries). */
export function groupRefusals(refused: readonly RefusedRule[]): { readonly reason: string; readonly count: number }[] {
  const counts = new Map<string, number>();
  for (const r of refused) {
    const key = r.reason.replace(/"[^"]*"/g, '"…"');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
}

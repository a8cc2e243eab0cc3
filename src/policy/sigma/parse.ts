/**
 * Reading Sigma rules (SigmaHQ/sigma-specification, "Sigma Rules Specification" v2): YAML text → one
 * checked `SigmaRule` per document, with the metadata the import keeps (id, title, author, level, tags,
 * references, licence) and the detection block as plain data. Shape problems become a clear message, never
 * an exception: the import reports them per rule and goes on with the others.
 *
 * The YAML is read with the `yaml` package, as policy files are (src/policy/parse.ts); aliases are capped
 * because a small file must not expand without bound.
 */
import { parseAllDocuments } from 'yaml';

export interface SigmaLogsource {
  readonly category: string | null;
  readonly product: string | null;
  readonly service: string | null;
  /** Other keys (`definition` …), kept for messages. */
  readonly other: readonly string[];
}

export interface SigmaRule {
  readonly id: string;
  readonly title: string;
  readonly status: string | null;
  readonly level: string | null;
  readonly author: string | null;
  readonly description: string | null;
  readonly references: readonly string[];
  readonly tags: readonly string[];
  /** `license` of the rule when it names one; SigmaHQ rules are DRL 1.1. */
  readonly license: string | null;
  readonly logsource: SigmaLogsource;
  /** The search identifiers (every detection key but `condition` and `timeframe`), in written order. */
  readonly detection: ReadonlyMap<string, unknown>;
  readonly conditions: readonly string[];
  readonly timeframe: string | null;
  /** Where the rule came from: a URL or a file path (`file#n` for the n-th document of a file). */
  readonly source: string;
}

export type SigmaReadResult =
  | { readonly ok: true; readonly rule: SigmaRule }
  | { readonly ok: false; readonly source: string; readonly id: string | null; readonly title: string | null; readonly error: string };

const MAX_ALIASES = 100;
const MAX_DOCUMENTS = 1000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return null;
}

function textList(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) return [];
  return value.filter((item): item is string => typeof item === 'string');
}

class ShapeError extends Error {}

/**
 * Checks one parsed rule (YAML or JSON data). `source` names it in messages and in the generated policy's
 * attribution comment.
 */
export function readSigmaRule(value: unknown, source: string): SigmaReadResult {
  const id = isRecord(value) ? optionalText(value['id']) : null;
  const title = isRecord(value) ? optionalText(value['title']) : null;
  try {
    return { ok: true, rule: readRule(value, source) };
  } catch (err) {
    if (!(err instanceof ShapeError)) throw err;
    return { ok: false, source, id, title, error: err.message };
  }
}

function readRule(value: unknown, source: string): SigmaRule {
  if (!isRecord(value)) throw new ShapeError('a Sigma rule must be a YAML map');
  if ('action' in value) throw new ShapeError('rule collections (action: global/reset/repeat) are not supported; give each rule as one document');
  if ('correlation' in value) throw new ShapeError('correlation rules count events over time, which a per-flow policy rule cannot express');
  if ('filter' in value && !('detection' in value)) throw new ShapeError('Sigma filter documents are not supported; write the exclusion into the rule');
  const id = value['id'];
  if (typeof id !== 'string' || id.trim() === '') throw new ShapeError('the rule has no "id" (the generated rule is named sigma.<id>)');
  const title = value['title'];
  if (typeof title !== 'string' || title.trim() === '') throw new ShapeError('the rule has no "title"');
  const logsource = value['logsource'];
  if (!isRecord(logsource)) throw new ShapeError('"logsource" must be a map with a category');
  const detection = value['detection'];
  if (!isRecord(detection)) throw new ShapeError('"detection" must be a map of search identifiers and a condition');
  const condition = detection['condition'];
  let conditions: string[];
  if (typeof condition === 'string') conditions = [condition];
  else if (Array.isArray(condition) && condition.length > 0 && condition.every((c) => typeof c === 'string')) conditions = condition as string[];
  else throw new ShapeError('"detection.condition" must be a string (or a list of strings)');
  const timeframe = detection['timeframe'];
  const identifiers = new Map<string, unknown>();
  for (const [key, item] of Object.entries(detection)) {
    if (key === 'condition' || key === 'timeframe') continue;
    identifiers.set(key, item);
  }
  if (identifiers.size === 0) throw new ShapeError('"detection" has no search identifier');
  const known = new Set(['category', 'product', 'service']);
  return {
    id: id.trim(),
    title: title.trim(),
    status: optionalText(value['status']),
    level: optionalText(value['level']),
    author: optionalText(value['author']),
    description: optionalText(value['description']),
    references: textList(value['references']),
    tags: textList(value['tags']),
    license: optionalText(value['license']),
    logsource: {
      category: optionalText(logsource['category']),
      product: optionalText(logsource['product']),
      service: optionalText(logsource['service']),
      other: Object.keys(logsource).filter((key) => !known.has(key)),
    },
    detection: identifiers,
    conditions,
    timeframe: timeframe === undefined || timeframe === null ? null : String(timeframe),
    source,
  };
}

/**
 * Reads every document of one Sigma YAML file. A file with one document names its rule by `source`; with
 * several, `source#1`, `source#2` …
 */
export function parseSigmaText(text: string, source: string): SigmaReadResult[] {
  let docs;
  try {
    docs = parseAllDocuments(text, { prettyErrors: false, uniqueKeys: true });
  } catch (err) {
    return [{ ok: false, source, id: null, title: null, error: `YAML: ${err instanceof Error ? err.message : String(err)}` }];
  }
  const list = Array.isArray(docs) ? docs : [];
  if (!Array.isArray(docs)) {
    // An empty stream: parseAllDocuments returns an EmptyStream object.
    return [{ ok: false, source, id: null, title: null, error: 'the file holds no YAML document' }];
  }
  if (list.length > MAX_DOCUMENTS) return [{ ok: false, source, id: null, title: null, error: `more than ${MAX_DOCUMENTS} YAML documents` }];
  const results: SigmaReadResult[] = [];
  list.forEach((doc, index) => {
    const name = list.length === 1 ? source : `${source}#${index + 1}`;
    const problem = doc.errors[0];
    if (problem !== undefined) {
      results.push({ ok: false, source: name, id: null, title: null, error: `YAML syntax error: ${problem.message}` });
      return;
    }
    let data: unknown;
    try {
      data = doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (err) {
      results.push({ ok: false, source: name, id: null, title: null, error: `YAML: ${err instanceof Error ? err.message : String(err)}` });
      return;
    }
    if (data === null || data === undefined) return; // an empty document (a trailing `---`)
    results.push(readSigmaRule(data, name));
  });
  if (results.length === 0) return [{ ok: false, source, id: null, title: null, error: 'the file holds no YAML document' }];
  return results;
}

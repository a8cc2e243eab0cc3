/**
 * The operator-editable data files of the feature families (policies/data/processes.yaml, user-agents.yaml,
 * tls-families.yaml, c2-uri-shapes.yaml): YAML read with positions into a small tree, so each family's compiler
 * can report every problem as `file:line:col: message` in one pass, the way `policy check` does for policy files.
 *
 * Only the reading is shared here; what the keys mean is each family's business. Reading is pure and never
 * throws for any text (the compilers are fuzzed with random strings); `loadDataFile` is the one place that
 * touches the disk and throws, at start-up, with every problem listed. The did-you-mean hints are the policy
 * reader's (src/policy/parse.ts), so a typo gets the same suggestion in a policy file and in a data file.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import { EgressError } from '../../errors.js';
import { didYouMean as formatSuggestion, suggestClosest } from '../../policy/parse.js';

/**
 * policies/data/ of the package: this file sits three levels below the package root both as
 * src/scoring/features/data-file.ts (tsx) and as dist/scoring/features/data-file.js (tsconfig.build.json has
 * rootDir src, outDir dist), and package.json ships `policies` with the build.
 */
export const DATA_DIR: string = fileURLToPath(new URL('../../../policies/data/', import.meta.url));

/**
 * Larger files are refused before parsing: the shipped ones are a few tens of KiB, and the YAML parser needs
 * about a second per 100 KiB of pathological nesting (it reports the overflow as an error, it does not throw).
 */
export const MAX_DATA_FILE_BYTES = 256 * 1024;
/** The data files nest four levels at most; deeper input is refused rather than walked. */
const MAX_DEPTH = 16;

/** A place in a data file, 1-based like editors print it. */
export interface DataPos {
  readonly line: number;
  readonly col: number;
}

export type DataNode = DataScalar | DataSeq | DataMap | DataInvalid;
export interface DataScalar {
  readonly kind: 'scalar';
  readonly value: string | number | boolean | null;
  readonly pos: DataPos;
}
export interface DataSeq {
  readonly kind: 'seq';
  readonly items: readonly DataNode[];
  readonly pos: DataPos;
}
export interface DataEntry {
  readonly key: string;
  readonly keyPos: DataPos;
  readonly value: DataNode;
}
export interface DataMap {
  readonly kind: 'map';
  readonly entries: readonly DataEntry[];
  readonly pos: DataPos;
}
/** A node that could not be read (alias, tag, too deep); its problem is already reported, readers skip it. */
export interface DataInvalid {
  readonly kind: 'invalid';
  readonly pos: DataPos;
}

/** Collects problems of one file as `file:line:col: message` lines. */
export class DataIssues {
  readonly #file: string;
  readonly #lines: string[] = [];

  constructor(file: string) {
    this.#file = file;
  }

  add(pos: DataPos, message: string): void {
    this.#lines.push(`${this.#file}:${pos.line}:${pos.col}: ${message}`);
  }

  get count(): number {
    return this.#lines.length;
  }

  list(): string[] {
    return [...this.#lines];
  }
}

const START: DataPos = { line: 1, col: 1 };
const ALIAS_MESSAGE = 'YAML aliases (*name) are not supported in data files';

export interface DataTreeOptions {
  /** Longer text is refused unread (default MAX_DATA_FILE_BYTES). */
  readonly maxChars?: number;
  /** The problem reported at an alias (`*name`); each family words its own advice. */
  readonly aliasMessage?: string;
  /** Read `true:`/`false:` keys as the strings "true"/"false" (as policy files do) instead of refusing them. */
  readonly booleanKeys?: boolean;
}

/**
 * Reads `text` into a positioned tree, reporting size, YAML syntax, nesting, alias and value problems to
 * `issues`. Null when nothing could be read (too large, syntax errors). The root is whatever the document holds
 * (`{ kind: 'scalar', value: null }` for an empty file); what it must be is the caller's check. A throw of the
 * YAML parser itself (a guard, not an expected path) is left to the caller, which words it.
 */
export function readDataTree(text: string, issues: DataIssues, options: DataTreeOptions = {}): DataNode | null {
  const maxChars = options.maxChars ?? MAX_DATA_FILE_BYTES;
  const aliasMessage = options.aliasMessage ?? ALIAS_MESSAGE;
  const booleanKeys = options.booleanKeys ?? false;
  if (text.length > maxChars) {
    issues.add(START, `the file is larger than ${maxChars} characters`);
    return null;
  }
  const lineCounter = new LineCounter();
  const at = (offset: number): DataPos => lineCounter.linePos(offset);
  // prettyErrors off keeps messages on one line; positions come from our own LineCounter.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const before = issues.count;
  for (const problem of [...doc.errors, ...doc.warnings]) issues.add(at(problem.pos[0]), `YAML syntax error: ${problem.message}`);
  if (issues.count > before) return null;

  const toNode = (node: unknown, fallback: DataPos, depth: number): DataNode => {
    if (node === null || node === undefined) return { kind: 'scalar', value: null, pos: fallback };
    const yamlNode = node as YamlNode;
    const pos = yamlNode.range ? at(yamlNode.range[0]) : fallback;
    if (depth > MAX_DEPTH) {
      issues.add(pos, `nested more than ${MAX_DEPTH} levels deep`);
      return { kind: 'invalid', pos };
    }
    if (isAlias(node)) {
      // Aliases let a small file expand without bound; nothing in these files needs reuse.
      issues.add(pos, aliasMessage);
      return { kind: 'invalid', pos };
    }
    if (isScalar(node)) {
      const value = node.value;
      if (value === null || typeof value === 'string' || typeof value === 'boolean') return { kind: 'scalar', value, pos };
      if (typeof value === 'number' && Number.isFinite(value)) return { kind: 'scalar', value, pos };
      issues.add(pos, 'unsupported YAML value; use a string, number or boolean');
      return { kind: 'invalid', pos };
    }
    if (isSeq(node)) return { kind: 'seq', items: node.items.map((item) => toNode(item, pos, depth + 1)), pos };
    if (isMap(node)) {
      const entries: DataEntry[] = [];
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const keyNode = pair.key as YamlNode | null;
        const keyPos = keyNode?.range ? at(keyNode.range[0]) : pos;
        const key = isScalar(keyNode) ? keyNode.value : null;
        if (!(typeof key === 'string' || typeof key === 'number' || (booleanKeys && typeof key === 'boolean'))) {
          issues.add(keyPos, 'map keys must be plain strings');
          continue;
        }
        entries.push({ key: String(key), keyPos, value: toNode(pair.value, keyPos, depth + 1) });
      }
      return { kind: 'map', entries, pos };
    }
    issues.add(pos, 'unsupported YAML node');
    return { kind: 'invalid', pos };
  };

  return toNode(doc.contents, START, 0);
}

/**
 * Parses `text` into a positioned tree and checks `version: 1`. Returns the root map (null when the file is
 * not a readable map at all) and the issue collector the compiler keeps adding to.
 */
export function parseDataFile(text: string, file: string, expected: string): { root: DataMap | null; issues: DataIssues } {
  const issues = new DataIssues(file);
  let root: DataNode | null;
  try {
    root = readDataTree(text, issues);
  } catch (err) {
    // The yaml parser reports problems as values; this is a guard, not an expected path.
    issues.add(START, `YAML could not be parsed (${err instanceof Error ? err.message : String(err)})`);
    return { root: null, issues };
  }
  if (root === null || root.kind === 'invalid') return { root: null, issues };
  if (root.kind !== 'map') {
    issues.add(root.pos, root.kind === 'scalar' && root.value === null ? `the file is empty; expected ${expected}` : `expected ${expected}, got ${describeNode(root)}`);
    return { root: null, issues };
  }
  const version = root.entries.find((e) => e.key === 'version');
  if (version === undefined) issues.add(root.pos, 'missing "version: 1"');
  else if (!(version.value.kind === 'scalar' && version.value.value === 1)) issues.add(version.value.pos, `version must be 1 (got ${describeNode(version.value)})`);
  return { root, issues };
}

export function describeNode(node: DataNode): string {
  switch (node.kind) {
    case 'scalar':
      return node.value === null ? 'nothing' : typeof node.value === 'string' ? `"${node.value.slice(0, 60)}"` : `${typeof node.value} ${String(node.value)}`;
    case 'seq':
      return node.items.length === 0 ? 'an empty list' : 'a list';
    case 'map':
      return 'a map';
    case 'invalid':
      return 'an unreadable value';
  }
}

/** True when the node is absent or explicitly empty (`key:` with no value). */
export function isNothing(node: DataNode): boolean {
  return node.kind === 'scalar' && node.value === null;
}

/** Reports keys of `map` that are not in `allowed`, with a did-you-mean hint. */
export function checkKeys(map: DataMap, allowed: readonly string[], where: string, issues: DataIssues): void {
  for (const entry of map.entries) {
    if (!allowed.includes(entry.key)) issues.add(entry.keyPos, `unknown key "${entry.key}" ${where}${didYouMean(entry.key, allowed)}`);
  }
}

export function entryOf(map: DataMap, key: string): DataEntry | undefined {
  return map.entries.find((e) => e.key === key);
}

/** A string scalar, or null (reported) for anything else. `allowEmpty` false rejects "" and blanks. */
export function readString(node: DataNode, what: string, issues: DataIssues, allowEmpty = false): string | null {
  if (node.kind === 'invalid') return null;
  if (node.kind !== 'scalar' || typeof node.value !== 'string') {
    issues.add(node.pos, `${what} must be a string${node.kind === 'scalar' && node.value !== null ? ' (quote it)' : ''}, got ${describeNode(node)}`);
    return null;
  }
  if (!allowEmpty && node.value.trim() === '') {
    issues.add(node.pos, `${what} must not be empty`);
    return null;
  }
  return node.value;
}

export interface PositionedString {
  readonly value: string;
  readonly pos: DataPos;
}

/** A list of strings; each bad item is reported and left out. Null when the node is not a list. */
export function readStringList(node: DataNode, what: string, issues: DataIssues): PositionedString[] | null {
  if (node.kind === 'invalid') return null;
  if (node.kind !== 'seq') {
    issues.add(node.pos, `${what} must be a list of strings, got ${describeNode(node)}`);
    return null;
  }
  const out: PositionedString[] = [];
  for (const item of node.items) {
    const value = readString(item, `each item of ${what}`, issues);
    if (value !== null) out.push({ value, pos: item.pos });
  }
  return out;
}

/** A map, or null (reported) for anything else; `key:` with nothing counts as an empty map. */
export function readMap(node: DataNode, what: string, issues: DataIssues): DataMap | null {
  if (node.kind === 'invalid') return null;
  if (isNothing(node)) return { kind: 'map', entries: [], pos: node.pos };
  if (node.kind !== 'map') {
    issues.add(node.pos, `${what} must be a map, got ${describeNode(node)}`);
    return null;
  }
  return node;
}

/** Control characters (other than tab) never belong in a name or a header value (RFC 9110 §5.5). */
export function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/**
 * ` (did you mean "x"?)` when a candidate is a plausible typo of `word`, else ''. The policy reader's rule
 * (case-insensitive edit distance, at most max(2, ⌊length/3⌋)); words longer than 64 characters get no hint,
 * which bounds the edit-distance work on hostile input.
 */
export function didYouMean(word: string, candidates: readonly string[]): string {
  if (word.length > 64) return '';
  return formatSuggestion(suggestClosest(word, candidates));
}

/**
 * Reads a data file and compiles it; throws EgressError CONFIG_READ when it cannot be read and CONFIG_INVALID
 * listing every problem (one `file:line:col: message` per line) when it does not compile. Start-up only.
 */
export async function loadDataFile<T>(file: string, what: string, compile: (text: string, file: string) => { ok: true; value: T } | { ok: false; errors: string[] }): Promise<T> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const reason = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : String(err);
    throw new EgressError('CONFIG_READ', `cannot read the ${what} file ${file} (${reason})`, { cause: err });
  }
  const result = compile(text, file);
  if (result.ok) return result.value;
  throw new EgressError('CONFIG_INVALID', `the ${what} file ${file} is not valid:\n${result.errors.join('\n')}`);
}

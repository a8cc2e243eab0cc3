/**
 * TLS fingerprint families: which TLS stack a JA4 fingerprint comes from (Chromium's BoringSSL, Firefox's
 * NSS, Windows' Schannel, OpenSSL, Go …) and which stacks a kind of process normally uses. A process that
 * calls itself chrome.exe but sends Python's ClientHello, or rundll32 sending Chromium's, is not what its name
 * says — an injected or custom payload (MITRE ATT&CK AN0922).
 *
 * JA4 (FoxIO, technical_details/JA4.md) is `ja4_a_ja4_b_ja4_c`: ja4_a the hello's shape (protocol, version,
 * SNI, counts, ALPN), ja4_b the hash of the sorted cipher list, ja4_c of the sorted extensions and signature
 * algorithms. ja4_b is decided by the TLS library, so most families are `<ja4_a pattern>_<ja4_b>` entries.
 * The map is compiled once from policies/data/tls-families.yaml into Maps: `familyOf` is two Map lookups
 * plus the few patterns sharing the hello's ja4_b.
 */
import type { DataIssues, DataMap, DataNode, DataPos } from './data-file.js';
import { checkKeys, DATA_DIR, describeNode, didYouMean, entryOf, isNothing, loadDataFile, parseDataFile, readMap, readString } from './data-file.js';
import type { ProcessCategory } from './process.js';
import { processKey, readCategory, readImageName } from './process.js';

export interface TlsFamilyMap {
  /** The family of a JA4 fingerprint, or null when no entry matches. */
  familyOf(ja4: string): string | null;
  /** The families a process normally uses (its name's entry, else its category's), or null: no expectation. */
  expectedFor(processName: string, category: ProcessCategory): readonly string[] | null;
  /** The TLS stack of a family (`cobaltstrike` → `schannel`; a family without `stack` is its own), null if undeclared. */
  stackOf(family: string): string | null;
  /** Number of fingerprint entries. */
  readonly size: number;
}

export const SHIPPED_TLS_FAMILIES: string = `${DATA_DIR}tls-families.yaml`;

/** A JA4 is 36 characters; anything much longer is not one and is not looked at. */
const MAX_JA4_LENGTH = 64;
/** ja4_a: protocol t/q/d, 2-character version, d/i for SNI, 2-digit cipher and extension counts, 2-character ALPN (JA4.md). */
const JA4_A = /^[tqd][0-9a-z]{2}[di]\d{4}[0-9A-Za-z]{2}$/;
/** ja4_b and ja4_c: the first 12 hex characters of a SHA-256 (000000000000 for an empty list). */
const JA4_HASH = /^[0-9a-f]{12}$/;
/** A ja4_a pattern: ja4_a characters and `*`. */
const JA4_A_GLOB = /^[tqd*][0-9A-Za-z*]{0,9}$/;
const FAMILY_NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;

interface Pattern {
  readonly source: string;
  readonly regex: RegExp;
  readonly family: string;
  /** Literal characters: more is more specific and is tried first. */
  readonly literals: number;
  readonly order: number;
}

class CompiledTlsFamilies implements TlsFamilyMap {
  readonly #exact: ReadonlyMap<string, string>;
  readonly #prefix: ReadonlyMap<string, string>;
  readonly #byCipherHash: ReadonlyMap<string, readonly Pattern[]>;
  readonly #anyCipherHash: readonly Pattern[];
  readonly #stacks: ReadonlyMap<string, string>;
  readonly #byProcess: ReadonlyMap<string, readonly string[]>;
  readonly #byCategory: ReadonlyMap<ProcessCategory, readonly string[]>;
  readonly size: number;

  constructor(parts: {
    exact: ReadonlyMap<string, string>;
    prefix: ReadonlyMap<string, string>;
    byCipherHash: ReadonlyMap<string, readonly Pattern[]>;
    anyCipherHash: readonly Pattern[];
    stacks: ReadonlyMap<string, string>;
    byProcess: ReadonlyMap<string, readonly string[]>;
    byCategory: ReadonlyMap<ProcessCategory, readonly string[]>;
  }) {
    this.#exact = parts.exact;
    this.#prefix = parts.prefix;
    this.#byCipherHash = parts.byCipherHash;
    this.#anyCipherHash = parts.anyCipherHash;
    this.#stacks = parts.stacks;
    this.#byProcess = parts.byProcess;
    this.#byCategory = parts.byCategory;
    let patterns = parts.anyCipherHash.length;
    for (const list of parts.byCipherHash.values()) patterns += list.length;
    this.size = parts.exact.size + parts.prefix.size + patterns;
  }

  familyOf(ja4: string): string | null {
    if (ja4.length > MAX_JA4_LENGTH) return null;
    const exact = this.#exact.get(ja4);
    if (exact !== undefined) return exact;
    const first = ja4.indexOf('_');
    const last = ja4.lastIndexOf('_');
    if (first > 0 && last > first) {
      const prefix = this.#prefix.get(ja4.slice(0, last));
      if (prefix !== undefined) return prefix;
    }
    const a = first < 0 ? ja4 : ja4.slice(0, first);
    if (first > 0) {
      const b = ja4.slice(first + 1, last > first ? last : undefined);
      for (const p of this.#byCipherHash.get(b) ?? []) if (p.regex.test(a)) return p.family;
    }
    for (const p of this.#anyCipherHash) if (p.regex.test(a)) return p.family;
    return null;
  }

  expectedFor(processName: string, category: ProcessCategory): readonly string[] | null {
    return this.#byProcess.get(processKey(processName)) ?? this.#byCategory.get(category) ?? null;
  }

  stackOf(family: string): string | null {
    return this.#stacks.get(family) ?? null;
  }
}

/**
 * The family of `ja4` and what the process should use, when they disagree: null when the family is unknown,
 * the process has no expectation, or the family (or its stack) is expected.
 */
export function fingerprintMismatch(
  map: TlsFamilyMap,
  ja4: string,
  processName: string,
  category: ProcessCategory,
): { family: string; expected: readonly string[] } | null {
  const family = map.familyOf(ja4);
  if (family === null) return null;
  const expected = map.expectedFor(processName, category);
  if (expected === null) return null;
  const stack = map.stackOf(family) ?? family;
  return expected.includes(family) || expected.includes(stack) ? null : { family, expected };
}

// ---------------------------------------------------------------------------------------------------------
// Compiling tls-families.yaml

const TOP_KEYS = ['version', 'families', 'fingerprints', 'expectations'] as const;
const FAMILY_KEYS = ['description', 'stack'] as const;
const ENTRY_KEYS = ['match', 'family', 'source'] as const;
const EXPECTATION_KEYS = ['categories', 'processes'] as const;

type ParsedMatch = { kind: 'exact'; key: string } | { kind: 'prefix'; key: string } | { kind: 'pattern'; glob: string; cipherHash: string | null };

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Reads one `match` value into its form, or null (reported) when it is none of the three. */
function parseMatch(value: string, pos: DataPos, issues: DataIssues): ParsedMatch | null {
  const parts = value.split('_');
  const bad = (why: string): null => {
    issues.add(pos, `bad JA4 pattern "${value.slice(0, 80)}": ${why}`);
    return null;
  };
  if (parts.length > 3) return bad('a JA4 has three parts, ja4_a_ja4_b_ja4_c');
  const [a = '', b, c] = parts;
  if (b !== undefined && !JA4_HASH.test(b)) return bad(`ja4_b "${b.slice(0, 20)}" is not 12 lower-case hex characters`);
  if (c !== undefined && !JA4_HASH.test(c)) return bad(`ja4_c "${c.slice(0, 20)}" is not 12 lower-case hex characters`);
  if (!a.includes('*')) {
    if (!JA4_A.test(a)) return bad(`ja4_a "${a.slice(0, 20)}" is not t/q/d, version, d/i, 4 digits and a 2-character ALPN code (add * to make it a pattern)`);
    if (c !== undefined) return { kind: 'exact', key: value };
    if (b !== undefined) return { kind: 'prefix', key: value };
    return { kind: 'pattern', glob: a, cipherHash: null };
  }
  if (c !== undefined) return bad('a pattern (with *) stops after ja4_b');
  if (!JA4_A_GLOB.test(a) || a.replaceAll('*', '').length > 10) return bad('a ja4_a pattern has at most 10 of the characters a-z, A-Z, 0-9, and *');
  return { kind: 'pattern', glob: a, cipherHash: b ?? null };
}

function readFamilies(node: DataNode, issues: DataIssues): Map<string, { stack: string | null; pos: DataPos }> {
  const out = new Map<string, { stack: string | null; pos: DataPos }>();
  const map = readMap(node, 'families', issues);
  for (const entry of map?.entries ?? []) {
    if (!FAMILY_NAME.test(entry.key)) {
      issues.add(entry.keyPos, `family name "${entry.key.slice(0, 80)}" must be lower-case letters, digits and -`);
      continue;
    }
    const fields = readMap(entry.value, `families.${entry.key}`, issues);
    let stack: string | null = null;
    if (fields !== null) {
      checkKeys(fields, FAMILY_KEYS, `in families.${entry.key}`, issues);
      const description = entryOf(fields, 'description');
      if (description === undefined) issues.add(entry.keyPos, `families.${entry.key} needs "description"`);
      else readString(description.value, `families.${entry.key}.description`, issues);
      const stackEntry = entryOf(fields, 'stack');
      if (stackEntry !== undefined) stack = readString(stackEntry.value, `families.${entry.key}.stack`, issues);
    }
    out.set(entry.key, { stack, pos: entry.keyPos });
  }
  return out;
}

function checkFamily(name: string, pos: DataPos, families: ReadonlyMap<string, unknown>, issues: DataIssues): boolean {
  if (families.has(name)) return true;
  issues.add(pos, `unknown family "${name.slice(0, 80)}"${didYouMean(name, [...families.keys()])}; declare it under families`);
  return false;
}

interface CompiledFingerprints {
  exact: Map<string, string>;
  prefix: Map<string, string>;
  byCipherHash: Map<string, Pattern[]>;
  anyCipherHash: Pattern[];
}

function readFingerprints(node: DataNode, families: ReadonlyMap<string, unknown>, issues: DataIssues): CompiledFingerprints {
  const out: CompiledFingerprints = { exact: new Map(), prefix: new Map(), byCipherHash: new Map(), anyCipherHash: [] };
  if (node.kind !== 'seq') {
    if (node.kind !== 'invalid' && !isNothing(node)) issues.add(node.pos, `fingerprints must be a list, got ${describeNode(node)}`);
    return out;
  }
  const seen = new Map<string, DataPos>();
  node.items.forEach((item, order) => {
    const where = `fingerprints[${order}]`;
    const map = readMap(item, where, issues);
    if (map === null) return;
    checkKeys(map, ENTRY_KEYS, `in ${where}`, issues);
    const matchEntry = entryOf(map, 'match');
    const familyEntry = entryOf(map, 'family');
    const sourceEntry = entryOf(map, 'source');
    for (const [key, entry] of [['match', matchEntry], ['family', familyEntry], ['source', sourceEntry]] as const) {
      if (entry === undefined) issues.add(map.pos, `${where} needs "${key}"`);
    }
    if (sourceEntry !== undefined) readString(sourceEntry.value, `${where}.source`, issues);
    const match = matchEntry === undefined ? null : readString(matchEntry.value, `${where}.match`, issues);
    const family = familyEntry === undefined ? null : readString(familyEntry.value, `${where}.family`, issues);
    if (match === null || family === null || matchEntry === undefined || familyEntry === undefined) return;
    const parsed = parseMatch(match, matchEntry.value.pos, issues);
    const known = checkFamily(family, familyEntry.value.pos, families, issues);
    if (parsed === null || !known) return;
    const earlier = seen.get(match);
    if (earlier !== undefined) {
      issues.add(matchEntry.value.pos, `duplicate fingerprint "${match}": already listed at line ${earlier.line}`);
      return;
    }
    seen.set(match, matchEntry.value.pos);
    if (parsed.kind === 'exact') out.exact.set(parsed.key, family);
    else if (parsed.kind === 'prefix') out.prefix.set(parsed.key, family);
    else {
      const regex = new RegExp(`^${parsed.glob.split('*').map(escapeRegex).join('[0-9A-Za-z]*')}$`);
      const pattern: Pattern = { source: match, regex, family, literals: parsed.glob.replaceAll('*', '').length + (parsed.cipherHash === null ? 0 : 12), order };
      if (parsed.cipherHash === null) out.anyCipherHash.push(pattern);
      else out.byCipherHash.set(parsed.cipherHash, [...(out.byCipherHash.get(parsed.cipherHash) ?? []), pattern]);
    }
  });
  const bySpecificity = (x: Pattern, y: Pattern): number => y.literals - x.literals || x.order - y.order;
  out.anyCipherHash.sort(bySpecificity);
  for (const list of out.byCipherHash.values()) list.sort(bySpecificity);
  return out;
}

function readFamilyList(node: DataNode, what: string, families: ReadonlyMap<string, unknown>, issues: DataIssues): string[] | null {
  if (node.kind !== 'seq') {
    if (node.kind !== 'invalid') issues.add(node.pos, `${what} must be a list of families, got ${describeNode(node)}`);
    return null;
  }
  const out: string[] = [];
  for (const item of node.items) {
    const name = readString(item, `an item of ${what}`, issues);
    if (name !== null && checkFamily(name, item.pos, families, issues) && !out.includes(name)) out.push(name);
  }
  return out;
}

function readExpectations(node: DataNode | undefined, families: ReadonlyMap<string, unknown>, issues: DataIssues) {
  const byProcess = new Map<string, readonly string[]>();
  const byCategory = new Map<ProcessCategory, readonly string[]>();
  if (node === undefined) return { byProcess, byCategory };
  const map = readMap(node, 'expectations', issues);
  if (map === null) return { byProcess, byCategory };
  checkKeys(map, EXPECTATION_KEYS, 'in expectations', issues);
  const categories = entryOf(map, 'categories');
  for (const entry of (categories === undefined ? null : readMap(categories.value, 'expectations.categories', issues))?.entries ?? []) {
    const category = readCategory(entry.key, entry.keyPos, issues);
    const list = readFamilyList(entry.value, `expectations.categories.${entry.key}`, families, issues);
    if (category !== null && list !== null) byCategory.set(category, list);
  }
  const processes = entryOf(map, 'processes');
  for (const entry of (processes === undefined ? null : readMap(processes.value, 'expectations.processes', issues))?.entries ?? []) {
    const key = readImageName(entry.key, entry.keyPos, 'process name', issues);
    const list = readFamilyList(entry.value, `expectations.processes.${entry.key}`, families, issues);
    if (key === null || list === null) continue;
    if (byProcess.has(key)) issues.add(entry.keyPos, `duplicate process name "${entry.key}" in expectations.processes`);
    else byProcess.set(key, list);
  }
  return { byProcess, byCategory };
}

function compileRoot(root: DataMap, issues: DataIssues): CompiledTlsFamilies {
  checkKeys(root, TOP_KEYS, 'at the top level', issues);
  const familiesEntry = entryOf(root, 'families');
  if (familiesEntry === undefined) issues.add(root.pos, 'missing "families" (name → description)');
  const families = familiesEntry === undefined ? new Map<string, { stack: string | null; pos: DataPos }>() : readFamilies(familiesEntry.value, issues);
  const stacks = new Map<string, string>();
  for (const [name, { stack, pos }] of families) {
    if (stack !== null && !families.has(stack)) issues.add(pos, `families.${name}.stack names "${stack.slice(0, 80)}", which is not a declared family${didYouMean(stack, [...families.keys()])}`);
    stacks.set(name, stack ?? name);
  }
  const fingerprintsEntry = entryOf(root, 'fingerprints');
  if (fingerprintsEntry === undefined) issues.add(root.pos, 'missing "fingerprints" (the list of JA4 entries)');
  const fingerprints = fingerprintsEntry === undefined ? { exact: new Map(), prefix: new Map(), byCipherHash: new Map(), anyCipherHash: [] } : readFingerprints(fingerprintsEntry.value, families, issues);
  const { byProcess, byCategory } = readExpectations(entryOf(root, 'expectations')?.value, families, issues);
  return new CompiledTlsFamilies({ ...fingerprints, stacks, byProcess, byCategory });
}

/** Compiles the text of a TLS family map. Pure; never throws. Errors are `file:line:col: message`, all at once. */
export function compileTlsFamilies(yamlText: string, fileName: string): { ok: true; map: TlsFamilyMap } | { ok: false; errors: string[] } {
  const { root, issues } = parseDataFile(yamlText, fileName, 'a map with "version: 1", "families" and "fingerprints"');
  if (root === null) return { ok: false, errors: issues.list() };
  const map = compileRoot(root, issues);
  return issues.count > 0 ? { ok: false, errors: issues.list() } : { ok: true, map };
}

/** Reads and compiles a family map file; throws EgressError (CONFIG_READ / CONFIG_INVALID with every error). */
export async function loadTlsFamilies(file: string): Promise<TlsFamilyMap> {
  return loadDataFile(file, 'TLS family map', (text, name) => {
    const r = compileTlsFamilies(text, name);
    return r.ok ? { ok: true, value: r.map } : r;
  });
}

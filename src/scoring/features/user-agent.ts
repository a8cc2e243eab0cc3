/**
 * User-Agent features: which HTTP client a User-Agent header names (a browser, PowerShell, curl, BITS …),
 * whether it is a known C2, malware or offensive-tool string (SigmaHQ's proxy rules), whether it is a browser
 * past its support (Cobalt Strike's and Empire's defaults are genuine old IE strings), and whether the process
 * that sent it normally sends that family — a browser User-Agent from rundll32 is the classic disguise of a
 * payload talking to its C2 (MITRE ATT&CK AN0922).
 *
 * The strings live in policies/data/user-agents.yaml, compiled once at start-up: literal, case-insensitive
 * equals / starts_with / contains / ends_with tests (no regular expressions from the data file, so no ReDoS),
 * exact strings in Sets. `classify` is called per HTTP request; its results are cached in a bounded LRU with a
 * TTL so the common agents cost one Map lookup.
 */
import { LRUCache } from 'lru-cache';
import type { DataIssues, DataMap, DataNode, PositionedString } from './data-file.js';
import { checkKeys, DATA_DIR, describeNode, didYouMean, entryOf, hasControlCharacter, isNothing, loadDataFile, parseDataFile, readMap, readString, readStringList } from './data-file.js';
import type { ProcessCategory } from './process.js';
import { processKey, readCategoryList, readNameList } from './process.js';

/**
 * The HTTP client families a User-Agent can name. `empty`: no header, or an empty or blank one (SigmaHQ 21e44d78
 * "HTTP Request With Empty User Agent"; proxy logs write both the same way).
 */
export type UaFamily =
  | 'browser'
  | 'electron'
  | 'teams'
  | 'office'
  | 'powershell'
  | 'curl'
  | 'wget'
  | 'python'
  | 'go'
  | 'java'
  | 'dotnet'
  | 'node'
  | 'bits'
  | 'windows-update'
  | 'delivery-optimization'
  | 'crypto-api'
  | 'webdav'
  | 'defender'
  | 'sccm'
  | 'winhttp'
  | 'wininet'
  | 'certutil'
  | 'package-manager'
  | 'empty'
  | 'unknown';

export const UA_FAMILIES: readonly UaFamily[] = [
  'browser',
  'electron',
  'teams',
  'office',
  'powershell',
  'curl',
  'wget',
  'python',
  'go',
  'java',
  'dotnet',
  'node',
  'bits',
  'windows-update',
  'delivery-optimization',
  'crypto-api',
  'webdav',
  'defender',
  'sccm',
  'winhttp',
  'wininet',
  'certutil',
  'package-manager',
  'empty',
  'unknown',
];
/** Families a data-file rule can produce: `empty` and `unknown` are what the code says when no rule applies. */
const MATCHABLE_FAMILIES: readonly UaFamily[] = UA_FAMILIES.filter((f) => f !== 'empty' && f !== 'unknown');
const FAMILY_SET: ReadonlySet<string> = new Set(UA_FAMILIES);

export function isUaFamily(value: string): value is UaFamily {
  return FAMILY_SET.has(value);
}

export interface UaFacts {
  readonly family: UaFamily;
  /** `Mozilla/5.0 (…)` with a real engine token (AppleWebKit/, Gecko/, Trident/, Presto/). */
  readonly browserLike: boolean;
  /** Label of a known C2, malware, offensive-tool or exfiltration-tool User-Agent, or null. */
  readonly knownC2: string | null;
  /** A browser past its support: IE ≤ 10, IE 11 on Windows 7, Windows < 10, old Chrome/Edge/Firefox majors. */
  readonly outdatedBrowser: boolean;
}

export interface UserAgentCatalogue {
  classify(userAgent: string | undefined): UaFacts;
  /** Whether a process of this category/name normally sends this family; null when the file has no opinion. */
  fitsProcess(family: UaFamily, category: ProcessCategory, processName: string): boolean | null;
  /** Number of family and known-C2 rules. */
  readonly size: number;
}

export interface UserAgentCacheOptions {
  /** Distinct User-Agents remembered (LRU beyond). Default 10000. */
  readonly max?: number;
  /** Milliseconds a result is kept. Default 1 h. */
  readonly ttlMs?: number;
}

export const SHIPPED_USER_AGENTS: string = `${DATA_DIR}user-agents.yaml`;

/** Longer agents are classified on their first characters and not cached (a 10 KiB agent is itself odd). */
const MAX_CLASSIFIED_LENGTH = 1024;
const MAX_CACHED_LENGTH = 512;
const MAX_PATTERN_LENGTH = 512;

/** Engine tokens after `Mozilla/5.0 (`: Blink/WebKit, Gecko (Firefox writes Gecko/2010…), Trident (IE 11), Presto. */
const ENGINE_TOKENS = ['applewebkit/', 'gecko/', 'trident/', 'presto/'] as const;
const MSIE_VERSION = /msie (\d{1,3})/;
const WINDOWS_NT_VERSION = /windows nt (\d{1,2})\.(\d)/;
const TRIDENT = /trident\/\d/;
const CHROME_MAJOR = /chrome\/(\d{1,4})\./;
const EDGE_MAJOR = /edg\/(\d{1,4})\./;
/** EdgeHTML (Edge 12-18) was retired in 2021; its token is `Edge/`. */
const EDGE_LEGACY = /edge\/\d/;
const FIREFOX_MAJOR = /firefox\/(\d{1,4})\./;

interface Matcher {
  readonly equals: ReadonlySet<string> | null;
  readonly startsWith: readonly string[] | null;
  readonly contains: readonly string[] | null;
  readonly endsWith: readonly string[] | null;
  readonly exceptContains: readonly string[] | null;
}

interface FamilyRule extends Matcher {
  readonly family: UaFamily;
}

interface C2Rule extends Matcher {
  readonly label: string;
}

interface Fit {
  readonly categories: ReadonlySet<ProcessCategory>;
  readonly processes: ReadonlySet<string>;
  readonly unknownProcess: boolean | null;
}

interface OutdatedRules {
  readonly msieMaxVersion: number | null;
  readonly tridentMaxWindowsNt: number | null;
  readonly windowsNtMin: number | null;
  readonly chromeMinMajor: number | null;
  readonly edgeMinMajor: number | null;
  readonly firefoxMinMajor: number | null;
}

function matches(m: Matcher, ua: string): boolean {
  if (m.equals !== null && !m.equals.has(ua)) return false;
  if (m.startsWith !== null && !m.startsWith.some((s) => ua.startsWith(s))) return false;
  if (m.contains !== null && !m.contains.some((s) => ua.includes(s))) return false;
  if (m.endsWith !== null && !m.endsWith.some((s) => ua.endsWith(s))) return false;
  if (m.exceptContains !== null && m.exceptContains.some((s) => ua.includes(s))) return false;
  return true;
}

function isBrowserLike(ua: string): boolean {
  return ua.startsWith('mozilla/5.0 (') && ENGINE_TOKENS.some((t) => ua.includes(t));
}

function numberAt(re: RegExp, ua: string): number | null {
  const m = re.exec(ua);
  return m === null ? null : Number(m[1]);
}

function isOutdated(o: OutdatedRules, ua: string): boolean {
  const msie = numberAt(MSIE_VERSION, ua);
  if (msie !== null && o.msieMaxVersion !== null && msie <= o.msieMaxVersion) return true;
  const nt = WINDOWS_NT_VERSION.exec(ua);
  const ntVersion = nt === null ? null : Number(nt[1]) + Number(nt[2]) / 10;
  if (ntVersion !== null && o.windowsNtMin !== null && ntVersion < o.windowsNtMin) return true;
  if (ntVersion !== null && o.tridentMaxWindowsNt !== null && ntVersion <= o.tridentMaxWindowsNt && TRIDENT.test(ua)) return true;
  if (EDGE_LEGACY.test(ua)) return true;
  const edge = numberAt(EDGE_MAJOR, ua);
  if (edge !== null) return o.edgeMinMajor !== null && edge < o.edgeMinMajor;
  const chrome = numberAt(CHROME_MAJOR, ua);
  if (chrome !== null && o.chromeMinMajor !== null && chrome < o.chromeMinMajor) return true;
  const firefox = numberAt(FIREFOX_MAJOR, ua);
  return firefox !== null && o.firefoxMinMajor !== null && firefox < o.firefoxMinMajor;
}

const EMPTY: UaFacts = Object.freeze({ family: 'empty', browserLike: false, knownC2: null, outdatedBrowser: false });

class CompiledUserAgents implements UserAgentCatalogue {
  readonly #families: readonly FamilyRule[];
  readonly #c2: readonly C2Rule[];
  readonly #outdated: OutdatedRules;
  readonly #fits: ReadonlyMap<UaFamily, Fit>;
  readonly #cache: LRUCache<string, UaFacts>;

  constructor(families: readonly FamilyRule[], c2: readonly C2Rule[], outdated: OutdatedRules, fits: ReadonlyMap<UaFamily, Fit>, cache: UserAgentCacheOptions) {
    this.#families = families;
    this.#c2 = c2;
    this.#outdated = outdated;
    this.#fits = fits;
    this.#cache = new LRUCache<string, UaFacts>({ max: Math.max(1, cache.max ?? 10_000), ttl: Math.max(1, cache.ttlMs ?? 3_600_000) });
  }

  get size(): number {
    return this.#families.length + this.#c2.length;
  }

  classify(userAgent: string | undefined): UaFacts {
    if (userAgent === undefined || userAgent.trim() === '') return EMPTY;
    const cacheable = userAgent.length <= MAX_CACHED_LENGTH;
    if (cacheable) {
      const hit = this.#cache.get(userAgent);
      if (hit !== undefined) return hit;
    }
    const facts = this.#classifyUncached(userAgent.slice(0, MAX_CLASSIFIED_LENGTH).toLowerCase());
    if (cacheable) this.#cache.set(userAgent, facts);
    return facts;
  }

  #classifyUncached(ua: string): UaFacts {
    let family: UaFamily = 'unknown';
    for (const rule of this.#families) {
      if (matches(rule, ua)) {
        family = rule.family;
        break;
      }
    }
    let knownC2: string | null = null;
    for (const rule of this.#c2) {
      if (matches(rule, ua)) {
        knownC2 = rule.label;
        break;
      }
    }
    const browserLike = isBrowserLike(ua);
    const outdatedBrowser = (family === 'browser' || browserLike) && isOutdated(this.#outdated, ua);
    return Object.freeze({ family, browserLike, knownC2, outdatedBrowser });
  }

  fitsProcess(family: UaFamily, category: ProcessCategory, processName: string): boolean | null {
    const fit = this.#fits.get(family);
    if (fit === undefined) return null;
    if (fit.processes.has(processKey(processName)) || fit.categories.has(category)) return true;
    return category === 'unknown' ? fit.unknownProcess : false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Compiling user-agents.yaml

const TOP_KEYS = ['version', 'families', 'known_c2', 'outdated', 'fits'] as const;
const MATCH_KEYS = ['equals', 'starts_with', 'contains', 'ends_with', 'except_contains'] as const;
const FAMILY_RULE_KEYS = ['family', ...MATCH_KEYS, 'source'] as const;
const C2_RULE_KEYS = ['label', ...MATCH_KEYS, 'source'] as const;
const FIT_KEYS = ['categories', 'processes', 'unknown_process'] as const;
const OUTDATED_KEYS = ['msie_max_version', 'trident_max_windows_nt', 'windows_nt_min', 'chrome_min_major', 'edge_min_major', 'firefox_min_major'] as const;

function readPatterns(node: DataNode, what: string, issues: DataIssues): string[] | null {
  const items = readStringList(node, what, issues);
  if (items === null) return null;
  if (items.length === 0) {
    issues.add(node.pos, `${what} is an empty list; leave the key out instead`);
    return null;
  }
  const out: string[] = [];
  for (const item of items) if (checkPattern(item, what, issues)) out.push(item.value.toLowerCase());
  return out;
}

function checkPattern(item: PositionedString, what: string, issues: DataIssues): boolean {
  if (item.value.length > MAX_PATTERN_LENGTH) {
    issues.add(item.pos, `${what}: a pattern is longer than ${MAX_PATTERN_LENGTH} characters`);
    return false;
  }
  if (item.value.includes('*')) {
    issues.add(item.pos, `${what}: "${item.value.slice(0, 80)}" has a *; patterns are literal strings (use starts_with, contains or ends_with instead of a wildcard)`);
    return false;
  }
  if (hasControlCharacter(item.value)) {
    issues.add(item.pos, `${what}: "${item.value.slice(0, 80)}" has a control character`);
    return false;
  }
  return true;
}

/** The matcher of a rule map; null when it has no positive matcher (reported). */
function readMatcher(map: DataMap, where: string, issues: DataIssues): Matcher | null {
  const list = (key: (typeof MATCH_KEYS)[number]): string[] | null => {
    const entry = entryOf(map, key);
    return entry === undefined ? null : readPatterns(entry.value, `${where}.${key}`, issues);
  };
  const equals = list('equals');
  const m: Matcher = {
    equals: equals === null ? null : new Set(equals),
    startsWith: list('starts_with'),
    contains: list('contains'),
    endsWith: list('ends_with'),
    exceptContains: list('except_contains'),
  };
  const positive = MATCH_KEYS.filter((k) => k !== 'except_contains').some((k) => entryOf(map, k) !== undefined);
  if (!positive) {
    issues.add(map.pos, `${where} needs at least one of equals, starts_with, contains, ends_with`);
    return null;
  }
  return m;
}

function readFamilies(node: DataNode, issues: DataIssues): FamilyRule[] {
  const out: FamilyRule[] = [];
  if (node.kind !== 'seq') {
    if (node.kind !== 'invalid') issues.add(node.pos, `families must be a list of rules, got ${describeNode(node)}`);
    return out;
  }
  node.items.forEach((item, i) => {
    const where = `families[${i}]`;
    const map = readMap(item, where, issues);
    if (map === null) return;
    checkKeys(map, FAMILY_RULE_KEYS, `in ${where}`, issues);
    const familyEntry = entryOf(map, 'family');
    const name = familyEntry === undefined ? null : readString(familyEntry.value, `${where}.family`, issues);
    if (familyEntry === undefined) issues.add(map.pos, `${where} needs "family"`);
    let family: UaFamily | null = null;
    if (name !== null && familyEntry !== undefined) {
      if (isUaFamily(name) && MATCHABLE_FAMILIES.includes(name)) family = name;
      else issues.add(familyEntry.value.pos, `unknown family "${name.slice(0, 80)}"${didYouMean(name, MATCHABLE_FAMILIES)}; families are ${MATCHABLE_FAMILIES.join(', ')}`);
    }
    readSource(map, where, issues);
    const matcher = readMatcher(map, where, issues);
    if (family !== null && matcher !== null) out.push({ family, ...matcher });
  });
  return out;
}

function readSource(map: DataMap, where: string, issues: DataIssues): void {
  const source = entryOf(map, 'source');
  if (source === undefined) issues.add(map.pos, `${where} needs "source" (where the strings come from)`);
  else readString(source.value, `${where}.source`, issues);
}

function readKnownC2(node: DataNode, issues: DataIssues): C2Rule[] {
  const out: C2Rule[] = [];
  if (node.kind !== 'seq') {
    if (node.kind !== 'invalid') issues.add(node.pos, `known_c2 must be a list of rules, got ${describeNode(node)}`);
    return out;
  }
  node.items.forEach((item, i) => {
    const where = `known_c2[${i}]`;
    const map = readMap(item, where, issues);
    if (map === null) return;
    checkKeys(map, C2_RULE_KEYS, `in ${where}`, issues);
    const labelEntry = entryOf(map, 'label');
    const label = labelEntry === undefined ? null : readString(labelEntry.value, `${where}.label`, issues);
    if (labelEntry === undefined) issues.add(map.pos, `${where} needs "label"`);
    readSource(map, where, issues);
    const matcher = readMatcher(map, where, issues);
    if (label !== null && matcher !== null) out.push({ label, ...matcher });
  });
  return out;
}

function readOutdated(node: DataNode | undefined, issues: DataIssues): OutdatedRules {
  const none: OutdatedRules = { msieMaxVersion: null, tridentMaxWindowsNt: null, windowsNtMin: null, chromeMinMajor: null, edgeMinMajor: null, firefoxMinMajor: null };
  if (node === undefined) return none;
  const map = readMap(node, 'outdated', issues);
  if (map === null) return none;
  checkKeys(map, OUTDATED_KEYS, 'in outdated', issues);
  const num = (key: (typeof OUTDATED_KEYS)[number]): number | null => {
    const entry = entryOf(map, key);
    if (entry === undefined || isNothing(entry.value)) return null;
    const v = entry.value;
    if (v.kind !== 'scalar' || typeof v.value !== 'number' || v.value < 0 || v.value > 10_000) {
      if (v.kind !== 'invalid') issues.add(v.pos, `outdated.${key} must be a number from 0 to 10000, got ${describeNode(v)}`);
      return null;
    }
    return v.value;
  };
  return {
    msieMaxVersion: num('msie_max_version'),
    tridentMaxWindowsNt: num('trident_max_windows_nt'),
    windowsNtMin: num('windows_nt_min'),
    chromeMinMajor: num('chrome_min_major'),
    edgeMinMajor: num('edge_min_major'),
    firefoxMinMajor: num('firefox_min_major'),
  };
}

function readFits(node: DataNode | undefined, issues: DataIssues): Map<UaFamily, Fit> {
  const out = new Map<UaFamily, Fit>();
  if (node === undefined) return out;
  const map = readMap(node, 'fits', issues);
  for (const entry of map?.entries ?? []) {
    const family = entry.key;
    if (!isUaFamily(family)) issues.add(entry.keyPos, `unknown family "${family.slice(0, 80)}"${didYouMean(family, UA_FAMILIES)}`);
    const fit = readMap(entry.value, `fits.${family}`, issues);
    if (fit === null) continue;
    checkKeys(fit, FIT_KEYS, `in fits.${family}`, issues);
    const unknownEntry = entryOf(fit, 'unknown_process');
    let unknownProcess: boolean | null = null;
    if (unknownEntry !== undefined) {
      const v = unknownEntry.value;
      if (v.kind === 'scalar' && (typeof v.value === 'boolean' || v.value === null)) unknownProcess = v.value;
      else if (v.kind !== 'invalid') issues.add(v.pos, `fits.${family}.unknown_process must be true, false or null, got ${describeNode(v)}`);
    }
    const value: Fit = {
      categories: readCategoryList(entryOf(fit, 'categories')?.value, `fits.${family}.categories`, issues),
      processes: readNameList(entryOf(fit, 'processes')?.value, `fits.${family}.processes`, issues),
      unknownProcess,
    };
    if (isUaFamily(family)) out.set(family, value);
  }
  return out;
}

/**
 * Compiles the text of a User-Agent catalogue. Pure; never throws. Errors are `file:line:col: message`,
 * all of them at once. `cache` sizes the classify() cache of the compiled catalogue.
 */
export function compileUserAgents(
  yamlText: string,
  fileName: string,
  cache: UserAgentCacheOptions = {},
): { ok: true; catalogue: UserAgentCatalogue } | { ok: false; errors: string[] } {
  const { root, issues } = parseDataFile(yamlText, fileName, 'a map with "version: 1" and "families"');
  if (root === null) return { ok: false, errors: issues.list() };
  checkKeys(root, TOP_KEYS, 'at the top level', issues);
  const familiesEntry = entryOf(root, 'families');
  if (familiesEntry === undefined) issues.add(root.pos, 'missing "families" (the list of family rules)');
  const families = familiesEntry === undefined ? [] : readFamilies(familiesEntry.value, issues);
  const c2Entry = entryOf(root, 'known_c2');
  const c2 = c2Entry === undefined || isNothing(c2Entry.value) ? [] : readKnownC2(c2Entry.value, issues);
  const outdated = readOutdated(entryOf(root, 'outdated')?.value, issues);
  const fits = readFits(entryOf(root, 'fits')?.value, issues);
  if (issues.count > 0) return { ok: false, errors: issues.list() };
  return { ok: true, catalogue: new CompiledUserAgents(families, c2, outdated, fits, cache) };
}

/** Reads and compiles a catalogue file; throws EgressError (CONFIG_READ / CONFIG_INVALID with every error). */
export async function loadUserAgents(file: string, cache: UserAgentCacheOptions = {}): Promise<UserAgentCatalogue> {
  return loadDataFile(file, 'User-Agent catalogue', (text, name) => {
    const r = compileUserAgents(text, name, cache);
    return r.ok ? { ok: true, value: r.catalogue } : r;
  });
}

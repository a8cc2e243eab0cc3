/**
 * Process features: what kind of program opened a flow (a browser, a script host, a LOLBin …) and what is odd
 * about how it was started — from a user-writable folder, under a double extension, by a document, under a
 * system binary's name outside the system folders, or as a renamed LOLBin. These are the process facts that
 * MITRE ATT&CK AN0922 ("rundll32/mshta/wscript/custom payloads talking to C2") turns on.
 *
 * The knowledge lives in policies/data/processes.yaml (operator-editable, every entry citing LOLBAS or a
 * SigmaHQ rule); this module compiles it once at start-up into Maps and Sets, and `analyzeProcess` is a pure,
 * allocation-light function over one process record. Nothing here throws for any input string.
 */
import type { DataIssues, DataMap, DataNode, DataPos, PositionedString } from './data-file.js';
import { checkKeys, DATA_DIR, didYouMean, entryOf, hasControlCharacter, isNothing, loadDataFile, parseDataFile, readMap, readString, readStringList } from './data-file.js';

export type ProcessCategory =
  | 'script-host'
  | 'lolbin'
  | 'browser'
  | 'office'
  | 'mail'
  | 'admin-tool'
  | 'updater'
  | 'system'
  | 'dev-tool'
  | 'collaboration'
  | 'security'
  | 'transfer'
  | 'unknown';

export const PROCESS_CATEGORIES: readonly ProcessCategory[] = [
  'script-host',
  'lolbin',
  'browser',
  'office',
  'mail',
  'admin-tool',
  'updater',
  'system',
  'dev-tool',
  'collaboration',
  'security',
  'transfer',
  'unknown',
];
/** Categories an entry can be listed under: `unknown` is what an unlisted name is. */
const LISTABLE_CATEGORIES: readonly ProcessCategory[] = PROCESS_CATEGORIES.filter((c) => c !== 'unknown');
const CATEGORY_SET: ReadonlySet<string> = new Set(PROCESS_CATEGORIES);

/** Categories whose binaries are worth renaming to slip past name-based rules (Sigma 0ba1da6d, 36480ae1). */
const RENAME_WORTHY: ReadonlySet<ProcessCategory> = new Set(['script-host', 'lolbin', 'admin-tool', 'transfer']);

export function isProcessCategory(value: string): value is ProcessCategory {
  return CATEGORY_SET.has(value);
}

/** The shipped catalogue, next to the package (works from src/ under tsx and from dist/). */
export const SHIPPED_PROCESS_CATALOGUE: string = `${DATA_DIR}processes.yaml`;

/** Compiled rules of the odd-start facts; part of the catalogue because they come from the same file. */
export interface ProcessAnalysisRules {
  /** Lower-cased, `\`-separated needles; `anchored` ones must start the drive-less path. */
  readonly userWritable: readonly { readonly needle: string; readonly anchored: boolean }[];
  readonly lureExtensions: ReadonlySet<string>;
  readonly executableExtensions: ReadonlySet<string>;
  /** System binary key → folders (lower-cased, `\`-separated, ending in `\`; `deep` = that folder or below). */
  readonly systemBinaries: ReadonlyMap<string, readonly SystemFolder[]>;
  readonly parentCategories: ReadonlySet<ProcessCategory>;
  readonly parentNames: ReadonlySet<string>;
  readonly childCategories: ReadonlySet<ProcessCategory>;
  readonly childNames: ReadonlySet<string>;
  /** `parent>child` keys. */
  readonly exceptions: ReadonlySet<string>;
  /** OriginalFileName key → image keys that legitimately carry it (the first one's category applies). */
  readonly originalNames: ReadonlyMap<string, readonly string[]>;
}

export interface SystemFolder {
  readonly folder: string;
  readonly deep: boolean;
}

export interface ProcessCatalogue {
  categoryOf(processName: string): ProcessCategory;
  /** Where the entry comes from (LOLBAS entry, Sigma rule id, vendor), or null for an unlisted name. */
  sourceOf(processName: string): string | null;
  readonly size: number;
  readonly rules: ProcessAnalysisRules;
}

export interface ProcessFacts {
  readonly category: ProcessCategory;
  /** The image is under a user-writable folder (AppData, Temp, ProgramData, Users\Public, Downloads …). */
  readonly userWritable: boolean;
  /** invoice.pdf.exe: a document or media extension followed by an executable or script one. */
  readonly doubleExtension: boolean;
  /** The parent's name when a document, mail or browser process started a script host, LOLBin or shell. */
  readonly suspiciousParent: string | null;
  /** A system binary's name (svchost.exe, rundll32.exe …) outside the system folders. */
  readonly masquerade: boolean;
  /** The PE OriginalFileName names a script host, LOLBin, admin tool or transfer tool, the image name differs. */
  readonly renamed: boolean;
}

export interface ProcessInput {
  readonly name: string;
  readonly executable?: string | undefined;
  readonly parentName?: string | undefined;
  readonly originalFileName?: string | undefined;
}

/** The last path component of a Windows or Unix path, lower-cased. */
export function baseName(path: string): string {
  const cut = Math.max(path.lastIndexOf('\\'), path.lastIndexOf('/'));
  return (cut < 0 ? path : path.slice(cut + 1)).toLowerCase();
}

/**
 * The catalogue key of a process name: lower-cased base name without surrounding blanks and without a
 * trailing `.exe`, so `RUNDLL32.EXE`, `rundll32.exe` and `rundll32` are one entry. A PE OriginalFileName
 * of a localised resource (`PowerShell.EXE.MUI`) loses its `.mui`.
 */
export function processKey(name: string): string {
  let key = baseName(name).trim();
  if (key.endsWith('.mui')) key = key.slice(0, -4);
  if (key.endsWith('.exe')) key = key.slice(0, -4);
  return key;
}

/** Lower-cased path with `\` separators, without the `\\?\`, device or drive prefix, `%SystemRoot%` spelled out. */
export function normalizePath(path: string): string {
  let p = path.toLowerCase().replaceAll('/', '\\');
  if (p.startsWith('\\\\?\\') || p.startsWith('\\??\\')) p = p.slice(4);
  const device = DEVICE_PREFIX.exec(p);
  if (device !== null) p = p.slice(device[0].length);
  if (DRIVE_PREFIX.test(p)) p = p.slice(2);
  if (p.startsWith('%systemroot%')) p = `\\windows${p.slice('%systemroot%'.length)}`;
  else if (p.startsWith('%windir%')) p = `\\windows${p.slice('%windir%'.length)}`;
  else if (p.startsWith('\\systemroot\\')) p = `\\windows\\${p.slice('\\systemroot\\'.length)}`;
  return p;
}

const DEVICE_PREFIX = /^\\device\\harddiskvolume\d+(?=\\)/;
const DRIVE_PREFIX = /^[a-z]:/;
/** Padding that hides the real extension: `invoice.pdf      .exe`, `invoice.pdf______.exe`, U+2800 blanks. */
const EXTENSION_PADDING = /[\s_\u2800]+$/u;
const EXTENSION_PATTERN = /^[a-z0-9]{1,8}$/;
const NAME_MAX = 260;

function hasDoubleExtension(rules: ProcessAnalysisRules, name: string): boolean {
  const last = name.lastIndexOf('.');
  if (last <= 0) return false;
  if (!rules.executableExtensions.has(name.slice(last + 1))) return false;
  const before = name.slice(0, last).replace(EXTENSION_PADDING, '');
  const dot = before.lastIndexOf('.');
  return dot > 0 && rules.lureExtensions.has(before.slice(dot + 1));
}

function isUserWritable(rules: ProcessAnalysisRules, path: string): boolean {
  for (const { needle, anchored } of rules.userWritable) {
    if (anchored ? path.startsWith(needle) : path.includes(needle)) return true;
  }
  return false;
}

function isInFolders(folders: readonly SystemFolder[], dir: string): boolean {
  for (const { folder, deep } of folders) {
    if (deep ? dir.startsWith(folder) : dir === folder) return true;
  }
  return false;
}

/** The category a renamed copy takes: that of the binary whose OriginalFileName it carries. */
function originalOwners(catalogue: ProcessCatalogue, originalFileName: string): readonly string[] {
  const key = processKey(originalFileName);
  return catalogue.rules.originalNames.get(key) ?? [key];
}

/**
 * The process facts of one process record. Pure and cheap (a few Map lookups and substring scans); never
 * throws. `executable` enables the path facts, `parentName` the parent fact, `originalFileName` the rename fact.
 */
export function analyzeProcess(catalogue: ProcessCatalogue, p: ProcessInput): ProcessFacts {
  const rules = catalogue.rules;
  const nameKey = processKey(p.name);
  let category = catalogue.categoryOf(nameKey);

  let renamed = false;
  if (p.originalFileName !== undefined && p.originalFileName.trim() !== '') {
    const owners = originalOwners(catalogue, p.originalFileName);
    const owner = owners[0];
    if (owner !== undefined && !owners.includes(nameKey)) {
      const originalCategory = catalogue.categoryOf(owner);
      // A renamed rundll32 is a lolbin whatever it is called now.
      if (RENAME_WORTHY.has(originalCategory)) {
        renamed = true;
        category = originalCategory;
      }
    }
  }

  let userWritable = false;
  let masquerade = false;
  const names = [baseName(p.name).slice(0, NAME_MAX)];
  if (p.executable !== undefined && p.executable !== '') {
    const path = normalizePath(p.executable);
    userWritable = isUserWritable(rules, path);
    const cut = path.lastIndexOf('\\');
    const imageKey = processKey(path);
    names.push(path.slice(cut + 1).slice(0, NAME_MAX));
    const folders = rules.systemBinaries.get(imageKey);
    // Only a full path can be checked; a bare name says nothing about where the image lives.
    if (folders !== undefined && cut >= 0) masquerade = !isInFolders(folders, path.slice(0, cut + 1));
  }
  const doubleExtension = names.some((n) => hasDoubleExtension(rules, n));

  let suspiciousParent: string | null = null;
  if (p.parentName !== undefined && p.parentName !== '') {
    const parentKey = processKey(p.parentName);
    const parentCategory = catalogue.categoryOf(parentKey);
    const parentFits = rules.parentCategories.has(parentCategory) || rules.parentNames.has(parentKey);
    const childFits = rules.childCategories.has(category) || rules.childNames.has(nameKey);
    if (parentFits && childFits && !rules.exceptions.has(`${parentKey}>${nameKey}`)) suspiciousParent = baseName(p.parentName).trim();
  }
  return { category, userWritable, doubleExtension, suspiciousParent, masquerade, renamed };
}

// ---------------------------------------------------------------------------------------------------------
// Compiling processes.yaml

const TOP_KEYS = ['version', 'processes', 'original_file_names', 'suspicious_children', 'user_writable_folders', 'double_extension', 'system_binaries'] as const;
const CHILDREN_KEYS = ['parent_categories', 'parents', 'child_categories', 'children', 'exceptions'] as const;
const DOUBLE_KEYS = ['lure', 'executable'] as const;
const SYSTEM_KEYS = ['folders', 'names', 'extra_folders'] as const;

interface Entry {
  readonly category: ProcessCategory;
  readonly source: string;
  readonly pos: DataPos;
}

class CompiledCatalogue implements ProcessCatalogue {
  readonly #entries: ReadonlyMap<string, Entry>;
  readonly rules: ProcessAnalysisRules;

  constructor(entries: ReadonlyMap<string, Entry>, rules: ProcessAnalysisRules) {
    this.#entries = entries;
    this.rules = rules;
  }

  categoryOf(processName: string): ProcessCategory {
    return this.#entries.get(processKey(processName))?.category ?? 'unknown';
  }

  sourceOf(processName: string): string | null {
    return this.#entries.get(processKey(processName))?.source ?? null;
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** Checks an image base name from a data file and returns its catalogue key; null (reported) when malformed. */
export function readImageName(value: string, pos: DataPos, what: string, issues: DataIssues): string | null {
  // Image base names: no path separators or control characters, at most 260 characters (MAX_PATH).
  const malformed = value.length > NAME_MAX || value.includes('\\') || value.includes('/') || hasControlCharacter(value);
  if (malformed || value.trim() !== value || processKey(value) === '') {
    issues.add(pos, `${what} "${value.slice(0, 80)}" is not an image base name (no folders, no surrounding blanks, 1-260 characters)`);
    return null;
  }
  return processKey(value);
}

/** A listable category name from a data file; null (reported) for anything else. */
export function readCategory(value: string, pos: DataPos, issues: DataIssues): ProcessCategory | null {
  if (isProcessCategory(value) && value !== 'unknown') return value;
  issues.add(pos, value === 'unknown' ? 'category "unknown" cannot be listed: it is what every unlisted name is' : `unknown category "${value.slice(0, 80)}"${didYouMean(value, LISTABLE_CATEGORIES)}; categories are ${LISTABLE_CATEGORIES.join(', ')}`);
  return null;
}

function readProcesses(node: DataNode, entries: Map<string, Entry>, issues: DataIssues): void {
  const map = readMap(node, 'processes', issues);
  if (map === null) return;
  for (const group of map.entries) {
    const category = readCategory(group.key, group.keyPos, issues);
    const names = readMap(group.value, `processes.${group.key}`, issues);
    if (names === null) continue;
    for (const item of names.entries) {
      const key = readImageName(item.key, item.keyPos, 'process name', issues);
      const source = readString(item.value, `the source of ${item.key}`, issues);
      if (key === null || category === null) continue;
      const earlier = entries.get(key);
      if (earlier !== undefined) {
        issues.add(item.keyPos, `duplicate process name "${item.key}": already listed under ${earlier.category} at line ${earlier.pos.line}`);
        continue;
      }
      if (source !== null) entries.set(key, { category, source, pos: item.keyPos });
    }
  }
}

/** A list of image names (catalogue keys); bad items are reported and left out. */
export function readNameList(node: DataNode | undefined, what: string, issues: DataIssues): Set<string> {
  const out = new Set<string>();
  if (node === undefined || isNothing(node)) return out;
  for (const item of readStringList(node, what, issues) ?? []) {
    const key = readImageName(item.value, item.pos, `an item of ${what}`, issues);
    if (key !== null) out.add(key);
  }
  return out;
}

/** A list of listable categories; bad items are reported and left out. */
export function readCategoryList(node: DataNode | undefined, what: string, issues: DataIssues): Set<ProcessCategory> {
  const out = new Set<ProcessCategory>();
  if (node === undefined || isNothing(node)) return out;
  for (const item of readStringList(node, what, issues) ?? []) {
    const category = readCategory(item.value, item.pos, issues);
    if (category !== null) out.add(category);
  }
  return out;
}

interface ChildrenRule {
  parentCategories: Set<ProcessCategory>;
  parentNames: Set<string>;
  childCategories: Set<ProcessCategory>;
  childNames: Set<string>;
  exceptions: Set<string>;
}

function readSuspiciousChildren(node: DataNode | undefined, issues: DataIssues): ChildrenRule {
  const rule: ChildrenRule = { parentCategories: new Set(), parentNames: new Set(), childCategories: new Set(), childNames: new Set(), exceptions: new Set() };
  if (node === undefined) return rule;
  const map = readMap(node, 'suspicious_children', issues);
  if (map === null) return rule;
  checkKeys(map, CHILDREN_KEYS, 'in suspicious_children', issues);
  rule.parentCategories = readCategoryList(entryOf(map, 'parent_categories')?.value, 'suspicious_children.parent_categories', issues);
  rule.parentNames = readNameList(entryOf(map, 'parents')?.value, 'suspicious_children.parents', issues);
  rule.childCategories = readCategoryList(entryOf(map, 'child_categories')?.value, 'suspicious_children.child_categories', issues);
  rule.childNames = readNameList(entryOf(map, 'children')?.value, 'suspicious_children.children', issues);
  const exceptions = entryOf(map, 'exceptions')?.value;
  if (exceptions !== undefined && !isNothing(exceptions)) {
    for (const item of readStringList(exceptions, 'suspicious_children.exceptions', issues) ?? []) {
      const parts = item.value.split('>');
      const parent = parts.length === 2 ? readImageName((parts[0] ?? '').trim(), item.pos, 'the parent of an exception', issues) : null;
      const child = parts.length === 2 ? readImageName((parts[1] ?? '').trim(), item.pos, 'the child of an exception', issues) : null;
      if (parts.length !== 2) issues.add(item.pos, `an exception is written "parent.exe > child.exe", got "${item.value.slice(0, 80)}"`);
      else if (parent !== null && child !== null) rule.exceptions.add(`${parent}>${child}`);
    }
  }
  return rule;
}

/** Folder needle of user_writable_folders: lower-cased, `\`-separated; a leading `^` anchors it. */
function readUserWritable(node: DataNode | undefined, issues: DataIssues): { needle: string; anchored: boolean }[] {
  if (node === undefined || isNothing(node)) return [];
  const out: { needle: string; anchored: boolean }[] = [];
  for (const item of readStringList(node, 'user_writable_folders', issues) ?? []) {
    const anchored = item.value.startsWith('^');
    const needle = (anchored ? item.value.slice(1) : item.value).toLowerCase().replaceAll('/', '\\');
    if (needle.length < 2 || needle === '\\\\') {
      issues.add(item.pos, `user_writable_folders entry "${item.value}" would match almost every path`);
      continue;
    }
    out.push({ needle, anchored });
  }
  return out;
}

function readExtensions(node: DataNode | undefined, what: string, issues: DataIssues): Set<string> {
  const out = new Set<string>();
  if (node === undefined || isNothing(node)) return out;
  for (const item of readStringList(node, what, issues) ?? []) {
    const ext = item.value.toLowerCase().replace(/^\./, '');
    if (!EXTENSION_PATTERN.test(ext)) issues.add(item.pos, `${what}: "${item.value.slice(0, 80)}" is not a file extension (1-8 letters or digits)`);
    else out.add(ext);
  }
  return out;
}

function readFolder(item: PositionedString, issues: DataIssues): SystemFolder | null {
  let value = item.value.replaceAll('/', '\\');
  const deep = value.endsWith('\\**');
  if (deep) value = value.slice(0, -2);
  if (!value.startsWith('\\') || !value.endsWith('\\') || value.includes('*')) {
    issues.add(item.pos, `folder "${item.value.slice(0, 80)}" must start and end with \\ (without a drive letter), optionally followed by ** for "and below"`);
    return null;
  }
  return { folder: value.toLowerCase(), deep };
}

function readFolderList(node: DataNode, what: string, issues: DataIssues): SystemFolder[] {
  const out: SystemFolder[] = [];
  for (const item of readStringList(node, what, issues) ?? []) {
    const folder = readFolder(item, issues);
    if (folder !== null) out.push(folder);
  }
  return out;
}

function readSystemBinaries(node: DataNode | undefined, issues: DataIssues): Map<string, readonly SystemFolder[]> {
  const out = new Map<string, readonly SystemFolder[]>();
  if (node === undefined) return out;
  const map = readMap(node, 'system_binaries', issues);
  if (map === null) return out;
  checkKeys(map, SYSTEM_KEYS, 'in system_binaries', issues);
  const foldersNode = entryOf(map, 'folders')?.value;
  const folders = foldersNode === undefined ? [] : readFolderList(foldersNode, 'system_binaries.folders', issues);
  if (foldersNode === undefined) issues.add(map.pos, 'system_binaries needs "folders"');
  for (const name of readNameList(entryOf(map, 'names')?.value, 'system_binaries.names', issues)) out.set(name, folders);
  const extra = entryOf(map, 'extra_folders')?.value;
  const extraMap = extra === undefined ? null : readMap(extra, 'system_binaries.extra_folders', issues);
  for (const entry of extraMap?.entries ?? []) {
    const key = readImageName(entry.key, entry.keyPos, 'a name in extra_folders', issues);
    if (key === null) continue;
    const base = out.get(key);
    if (base === undefined) {
      issues.add(entry.keyPos, `extra_folders names "${entry.key}", which is not in system_binaries.names`);
      continue;
    }
    out.set(key, [...base, ...readFolderList(entry.value, `system_binaries.extra_folders.${entry.key}`, issues)]);
  }
  return out;
}

function readOriginalNames(node: DataNode | undefined, issues: DataIssues): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>();
  if (node === undefined) return out;
  const map = readMap(node, 'original_file_names', issues);
  for (const entry of map?.entries ?? []) {
    const key = readImageName(entry.key, entry.keyPos, 'an OriginalFileName', issues);
    const owners = [...readNameList(entry.value, `original_file_names.${entry.key}`, issues)];
    if (key === null) continue;
    if (owners.length === 0) issues.add(entry.keyPos, `original_file_names.${entry.key} must list at least one image name`);
    else out.set(key, owners);
  }
  return out;
}

function compileRoot(root: DataMap, issues: DataIssues): CompiledCatalogue {
  checkKeys(root, TOP_KEYS, 'at the top level', issues);
  const entries = new Map<string, Entry>();
  const processes = entryOf(root, 'processes');
  if (processes === undefined) issues.add(root.pos, 'missing "processes" (category → name → source)');
  else readProcesses(processes.value, entries, issues);

  const children = readSuspiciousChildren(entryOf(root, 'suspicious_children')?.value, issues);
  let lure = new Set<string>();
  let executable = new Set<string>();
  const double = entryOf(root, 'double_extension')?.value;
  const doubleMap = double === undefined ? null : readMap(double, 'double_extension', issues);
  if (doubleMap !== null) {
    checkKeys(doubleMap, DOUBLE_KEYS, 'in double_extension', issues);
    lure = readExtensions(entryOf(doubleMap, 'lure')?.value, 'double_extension.lure', issues);
    executable = readExtensions(entryOf(doubleMap, 'executable')?.value, 'double_extension.executable', issues);
  }
  const rules: ProcessAnalysisRules = {
    userWritable: readUserWritable(entryOf(root, 'user_writable_folders')?.value, issues),
    lureExtensions: lure,
    executableExtensions: executable,
    systemBinaries: readSystemBinaries(entryOf(root, 'system_binaries')?.value, issues),
    parentCategories: children.parentCategories,
    parentNames: children.parentNames,
    childCategories: children.childCategories,
    childNames: children.childNames,
    exceptions: children.exceptions,
    originalNames: readOriginalNames(entryOf(root, 'original_file_names')?.value, issues),
  };
  return new CompiledCatalogue(entries, rules);
}

/**
 * Compiles the text of a process catalogue. Pure; never throws. Errors are `file:line:col: message`, all
 * of them at once.
 */
export function compileProcessCatalogue(yamlText: string, fileName: string): { ok: true; catalogue: ProcessCatalogue } | { ok: false; errors: string[] } {
  const { root, issues } = parseDataFile(yamlText, fileName, 'a map with "version: 1" and "processes"');
  if (root === null) return { ok: false, errors: issues.list() };
  const catalogue = compileRoot(root, issues);
  return issues.count > 0 ? { ok: false, errors: issues.list() } : { ok: true, catalogue };
}

/** Reads and compiles a catalogue file; throws EgressError (CONFIG_READ / CONFIG_INVALID with every error). */
export async function loadProcessCatalogue(file: string): Promise<ProcessCatalogue> {
  return loadDataFile(file, 'process catalogue', (text, name) => {
    const r = compileProcessCatalogue(text, name);
    return r.ok ? { ok: true, value: r.catalogue } : r;
  });
}


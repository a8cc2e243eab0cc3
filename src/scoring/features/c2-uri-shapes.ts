/**
 * Known C2 URI shapes: the default request URIs of public C2 frameworks (Cobalt Strike, Metasploit, Empire,
 * Covenant, Sliver, Mythic, Havoc) and the C2 URI patterns of SigmaHQ proxy rules, kept in an operator-editable
 * YAML file (policies/data/c2-uri-shapes.yaml). A default URI is a shape, not randomness — `/login/process.php`
 * looks like any PHP site — so each shape pairs the path with what separates it from its look-alikes: the
 * query (Cobalt Strike's `/__utm.gif` has none, Google Analytics' always has `utmwv=`), the User-Agent the
 * framework sends, or a checksum the framework's stagers compute.
 *
 * Two shapes of the file (STYLE 3): the YAML as written, read with positions so every problem is reported as
 * `file:line:col: message`, and a compiled set — exact paths in a Map, regexes compiled once, each shape's
 * tests ordered cheapest first — whose `match()` is a few Map lookups and closure calls. Every shape carries
 * example requests from its source; the compiler checks each example matches (and each counter-example does
 * not), so an edit that breaks a shape is refused at load, not discovered in production.
 */
import { readFile } from 'node:fs/promises';
import { EgressError } from '../../errors.js';
import type { DataEntry, DataMap, DataNode, DataPos } from './data-file.js';
import { DataIssues, DATA_DIR, didYouMean, readDataTree } from './data-file.js';

export interface C2UriShape {
  readonly id: string;
  readonly framework: string;
  readonly description: string;
  /** Where the shape comes from (framework source or docs, a SigmaHQ rule …). */
  readonly source: string;
  /**
   * For shapes taken from SigmaHQ rules: "SigmaHQ rule <id> (<title>) by <author>, DRL-1.1". The Detection Rule
   * License 1.1 asks that match messages keep the rule's author, so reason texts should include it.
   */
  readonly attribution: string | null;
}

export interface C2UriShapeSet {
  readonly size: number;
  /** The shapes in file order. */
  readonly shapes: readonly C2UriShape[];
  /** The first shape (in file order) the request matches, or null. `query` without `?`; '' or undefined = none. */
  match(method: string, path: string, query: string | undefined, userAgent: string | undefined): C2UriShape | null;
}

export type CompileResult = { readonly ok: true; readonly shapes: C2UriShapeSet } | { readonly ok: false; readonly errors: string[] };

/** The shipped list, resolved from this module: src/scoring/features/ (tsx) or dist/scoring/features/ (tsc outDir). */
export const SHIPPED_C2_URI_SHAPES: string = `${DATA_DIR}c2-uri-shapes.yaml`;

// ---- the request as the matchers see it ---------------------------------------------------------------------

/** Per-call view of the request; lower-cased forms and path checksums are computed once, when first asked. */
interface RequestView {
  path: string;
  query: string;
  userAgent: string;
  hasQuery: boolean;
  hasUserAgent: boolean;
  pathLower: string | null;
  queryLower: string | null;
  userAgentLower: string | null;
  /** uriChecksum8(path), or −1 before it is needed. */
  checksum8: number;
}

function newView(): RequestView {
  return { path: '', query: '', userAgent: '', hasQuery: false, hasUserAgent: false, pathLower: null, queryLower: null, userAgentLower: null, checksum8: -1 };
}

type Field = 'path' | 'query' | 'user_agent';
const F_PATH = 0;
const F_QUERY = 1;
const F_USER_AGENT = 2;
const FIELD_CODE: Readonly<Record<Field, number>> = { path: F_PATH, query: F_QUERY, user_agent: F_USER_AGENT };

function subjectOf(view: RequestView, field: number, fold: boolean): string {
  if (field === F_PATH) return fold ? (view.pathLower ??= view.path.toLowerCase()) : view.path;
  if (field === F_QUERY) return fold ? (view.queryLower ??= view.query.toLowerCase()) : view.query;
  return fold ? (view.userAgentLower ??= view.userAgent.toLowerCase()) : view.userAgent;
}

function isPresent(view: RequestView, field: number): boolean {
  return field === F_PATH ? true : field === F_QUERY ? view.hasQuery : view.hasUserAgent;
}

const OP_EXISTS = 0;
const OP_EQUALS = 1;
const OP_STARTSWITH = 2;
const OP_ENDSWITH = 3;
const OP_CONTAINS = 4;
const OP_CONTAINS_ALL = 5;
const OP_CHECKSUM8 = 6;
const OP_REGEX = 7;
const OP_NOT = 8;
const OP_MSF_UUID = 9;

/**
 * One compiled operator. Plain data interpreted by `runTest` rather than one closure per operator: every test
 * has the same hidden class, so the hot loop stays monomorphic (closures made it 2–3× slower).
 */
class Test {
  constructor(
    readonly op: number,
    readonly field: number,
    readonly fold: boolean,
    /** Lower runs first: presence, Set lookups, string scans, checksums, regexes, decoders. */
    readonly cost: number,
    readonly set: ReadonlySet<string> | null = null,
    readonly needles: readonly string[] = [],
    readonly re: RegExp | null = null,
    readonly sums: ReadonlySet<number> | null = null,
    readonly inner: readonly Test[] = [],
    readonly want: boolean = true,
  ) {}
}

function runTest(t: Test, view: RequestView): boolean {
  switch (t.op) {
    case OP_EXISTS:
      return isPresent(view, t.field) === t.want;
    case OP_CHECKSUM8:
      if (view.checksum8 < 0) view.checksum8 = uriChecksum8(view.path);
      return (t.sums as ReadonlySet<number>).has(view.checksum8);
    case OP_MSF_UUID:
      return hasMsfPayloadUuid(view.path);
    case OP_NOT:
      return !runAll(t.inner, view);
  }
  if (!isPresent(view, t.field)) return false;
  const subject = subjectOf(view, t.field, t.fold);
  const needles = t.needles;
  switch (t.op) {
    case OP_EQUALS:
      return (t.set as ReadonlySet<string>).has(subject);
    case OP_STARTSWITH:
      for (let i = 0; i < needles.length; i++) if (subject.startsWith(needles[i] as string)) return true;
      return false;
    case OP_ENDSWITH:
      for (let i = 0; i < needles.length; i++) if (subject.endsWith(needles[i] as string)) return true;
      return false;
    case OP_CONTAINS:
      for (let i = 0; i < needles.length; i++) if (subject.includes(needles[i] as string)) return true;
      return false;
    case OP_CONTAINS_ALL:
      for (let i = 0; i < needles.length; i++) if (!subject.includes(needles[i] as string)) return false;
      return true;
    case OP_REGEX:
      return (t.re as RegExp).test(subject);
    default:
      return false;
  }
}

function runAll(tests: readonly Test[], view: RequestView): boolean {
  for (let i = 0; i < tests.length; i++) if (!runTest(tests[i] as Test, view)) return false;
  return true;
}

// ---- named path matchers ------------------------------------------------------------------------------------

/**
 * 8-bit checksum of a URI, as Metasploit's reverse_http handler computes it (Rex::Payloads::Meterpreter::
 * UriChecksum#process_uri_resource): drop every character outside base64url [A-Za-z0-9_-], sum the rest's
 * byte values, mod 256 (Rex::Text.checksum8). For Cobalt Strike's 4-character alphanumeric stager URIs this is
 * the same sum Cobalt Strike checks (92 x86, 93 x64; SANS ISC diary 27204).
 */
export function uriChecksum8(path: string): number {
  let sum = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f) sum += c;
  }
  return sum & 0xff;
}

const B64URL_VALUES = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64URL_VALUES['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.charCodeAt(i)] = i;

/** Msf::Payload::UUID: platform ids 1–23 and architecture ids 1–22 are defined; 0 means "none". */
const MSF_MAX_PLATFORM = 23;
const MSF_MAX_ARCH = 22;
/** Msf::Payload::UUID::TimestampMaxPast (2015-01-01) and TimestampMaxFuture (now + 30 days). */
const MSF_TIMESTAMP_MIN = 1_420_070_400;
const MSF_TIMESTAMP_FUTURE_S = 30 * 24 * 3600;

/**
 * Whether the path's base64url characters start with a valid Metasploit payload UUID, the 22-character prefix
 * every modern reverse_http(s) URI carries (Msf::Payload::UUID#to_uri): 16 bytes = 8-byte payload id, two XOR
 * keys, platform ^ key1, arch ^ key2, timestamp ^ (key1 key2 key1 key2). Valid as Msf::Payload::UUID
 * .filter_invalid judges it: timestamp between 2015-01-01 and 30 days ahead, and a known platform or
 * architecture. A random 22-character token passes with a probability of about 10⁻³.
 */
export function hasMsfPayloadUuid(path: string, nowSeconds: number = Date.now() / 1000): boolean {
  const bytes = new Uint8Array(16);
  let bits = 0;
  let buffer = 0;
  let out = 0;
  let used = 0;
  for (let i = 0; i < path.length && used < 22; i++) {
    const c = path.charCodeAt(i);
    const value = c < 128 ? (B64URL_VALUES[c] as number) : -1;
    if (value < 0) continue; // process_uri_resource ignores non-base64url characters ('/' included)
    used++;
    buffer = ((buffer << 6) | value) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (out < 16) bytes[out++] = (buffer >> bits) & 0xff;
    }
  }
  if (out < 16) return false;
  const xor1 = bytes[8] as number;
  const xor2 = bytes[9] as number;
  const platform = (bytes[10] as number) ^ xor1;
  const arch = (bytes[11] as number) ^ xor2;
  const timeXor = ((xor1 << 24) | (xor2 << 16) | (xor1 << 8) | xor2) >>> 0;
  const stamp = ((((bytes[12] as number) << 24) | ((bytes[13] as number) << 16) | ((bytes[14] as number) << 8) | (bytes[15] as number)) ^ timeXor) >>> 0;
  if (stamp < MSF_TIMESTAMP_MIN || stamp > nowSeconds + MSF_TIMESTAMP_FUTURE_S) return false;
  return (platform >= 1 && platform <= MSF_MAX_PLATFORM) || (arch >= 1 && arch <= MSF_MAX_ARCH);
}

// ---- reading the YAML with positions (data-file.ts) --------------------------------------------------------

/** Shapes files carry long example lists, so they may be larger than the other data files. */
const MAX_TEXT = 1_000_000;
/** How data-file.ts reads a shapes file: `true:`/`false:` keys are read as names (then reported as unknown). */
const TREE_OPTIONS = { maxChars: MAX_TEXT, aliasMessage: 'YAML aliases (*name) are not supported here; write the value out', booleanKeys: true } as const;
const TOP_KEYS = ['version', 'shapes'] as const;
const SHAPE_KEYS = ['id', 'framework', 'description', 'source', 'sigma', 'method', 'path', 'query', 'user_agent', 'examples', 'counter_examples'] as const;
const SIGMA_KEYS = ['id', 'title', 'author', 'license'] as const;
const EXAMPLE_KEYS = ['request', 'user_agent'] as const;
const OPERATORS = ['equals', 'startswith', 'endswith', 'contains', 'contains_all', 'regex', 'exists', 'ignore_case', 'not', 'checksum8', 'msf_uuid'] as const;
const PATH_ONLY: ReadonlySet<string> = new Set(['checksum8', 'msf_uuid']);
const ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const METHOD_PATTERN = /^[A-Za-z]{1,16}$/;
const EXAMPLE_PATTERN = /^([A-Za-z]{1,16}) (\/\S*)$/;
const MAX_REGEX = 2000;

/** The policy reader's hint and wording; the key lists here are lower-case and at most 16 characters long. */
function unknownKey(entry: DataEntry, where: string, expected: readonly string[]): string {
  return `unknown key "${entry.key}" ${where}${didYouMean(entry.key, expected)}; expected one of ${expected.join(', ')}`;
}

function describe(node: DataNode): string {
  switch (node.kind) {
    case 'scalar':
      return node.value === null ? 'nothing' : typeof node.value === 'string' ? `string "${node.value.length > 40 ? `${node.value.slice(0, 40)}…` : node.value}"` : `${typeof node.value} ${String(node.value)}`;
    case 'seq':
      return 'a list';
    case 'map':
      return 'a map';
    case 'invalid':
      return 'an unreadable value';
  }
}

// ---- compiling one field's matchers -------------------------------------------------------------------------

function stringOrList(node: DataNode, what: string, problems: DataIssues, allowEmpty = false): string[] | null {
  if (node.kind === 'scalar' && typeof node.value === 'string' && (allowEmpty || node.value.length > 0)) return [node.value];
  if (node.kind === 'seq' && node.items.length > 0) {
    const out: string[] = [];
    for (const item of node.items) {
      if (item.kind === 'scalar' && typeof item.value === 'string' && (allowEmpty || item.value.length > 0)) out.push(item.value);
      else if (item.kind !== 'invalid') problems.add(item.pos, `${what} takes non-empty strings, got ${describe(item)}`);
    }
    return out.length === node.items.length ? out : null;
  }
  if (node.kind !== 'invalid') problems.add(node.pos, `${what} takes a string or a list of strings, got ${describe(node)}`);
  return null;
}

/** `(?i)` prefix, as the policy's regex operator accepts it: JavaScript has no inline flags before Node 23. */
function compileRegex(node: DataNode, problems: DataIssues): RegExp | null {
  if (node.kind !== 'scalar' || typeof node.value !== 'string' || node.value.length === 0) {
    if (node.kind !== 'invalid') problems.add(node.pos, `regex takes one pattern string, got ${describe(node)}`);
    return null;
  }
  if (node.value.length > MAX_REGEX) {
    problems.add(node.pos, `regex is longer than ${MAX_REGEX} characters`);
    return null;
  }
  const insensitive = node.value.startsWith('(?i)');
  try {
    return new RegExp(insensitive ? node.value.slice(4) : node.value, insensitive ? 'i' : '');
  } catch (err) {
    problems.add(node.pos, `invalid regex: ${err instanceof Error ? err.message : String(err)}`);
    return null;
  }
}

/**
 * Compiles `path:`/`query:`/`user_agent:` into tests. A plain string means `equals`. Operators in one map all
 * have to hold; `not:` holds when its inner operators do not all hold. Every operator except `exists` (and
 * `not`) fails on an absent query or User-Agent.
 */
function compileField(field: Field, node: DataNode, problems: DataIssues, tests: Test[], exactPaths: string[] | null): void {
  if ((node.kind === 'scalar' && typeof node.value === 'string') || node.kind === 'seq') {
    // A string or a list of strings is shorthand for `equals`.
    compileOperators(field, { kind: 'map', entries: [{ key: 'equals', keyPos: node.pos, value: node }], pos: node.pos }, problems, tests, exactPaths);
    return;
  }
  if (node.kind !== 'map') {
    if (node.kind !== 'invalid') problems.add(node.pos, `${field} takes a string, a list of strings or a map of operators (${OPERATORS.join(', ')}), got ${describe(node)}`);
    return;
  }
  if (node.entries.length === 0) {
    problems.add(node.pos, `${field} needs at least one operator (${OPERATORS.join(', ')})`);
    return;
  }
  compileOperators(field, node, problems, tests, exactPaths);
}

function compileOperators(fieldName: Field, node: DataMap, problems: DataIssues, tests: Test[], exactPaths: string[] | null): void {
  const field = FIELD_CODE[fieldName];
  let fold = false;
  const flag = node.entries.find((entry) => entry.key === 'ignore_case');
  if (flag !== undefined) {
    if (flag.value.kind === 'scalar' && typeof flag.value.value === 'boolean') fold = flag.value.value;
    else if (flag.value.kind !== 'invalid') problems.add(flag.value.pos, `ignore_case takes true or false, got ${describe(flag.value)}`);
  }
  const casefold = (text: string): string => (fold ? text.toLowerCase() : text);
  for (const entry of node.entries) {
    const value = entry.value;
    if (value.kind === 'invalid' || entry.key === 'ignore_case') continue;
    if (PATH_ONLY.has(entry.key) && field !== F_PATH) {
      problems.add(entry.keyPos, `${entry.key} works on path only`);
      continue;
    }
    switch (entry.key) {
      case 'equals': {
        const list = stringOrList(value, 'equals', problems);
        if (list === null) break;
        if (exactPaths !== null && !fold) exactPaths.push(...list);
        tests.push(new Test(OP_EQUALS, field, fold, 1, new Set(list.map(casefold))));
        break;
      }
      case 'startswith':
      case 'endswith':
      case 'contains': {
        const list = stringOrList(value, entry.key, problems);
        if (list === null) break;
        const op = entry.key === 'startswith' ? OP_STARTSWITH : entry.key === 'endswith' ? OP_ENDSWITH : OP_CONTAINS;
        tests.push(new Test(op, field, fold, 2, null, list.map(casefold)));
        break;
      }
      case 'contains_all': {
        const list = stringOrList(value, 'contains_all', problems);
        if (list === null) break;
        tests.push(new Test(OP_CONTAINS_ALL, field, fold, 3, null, list.map(casefold)));
        break;
      }
      case 'regex': {
        const re = compileRegex(value, problems);
        // A regex's own (?i) decides its case; ignore_case folds the subject for it too.
        if (re !== null) tests.push(new Test(OP_REGEX, field, fold, 5, null, [], re));
        break;
      }
      case 'exists': {
        if (value.kind !== 'scalar' || typeof value.value !== 'boolean') {
          problems.add(value.pos, `exists takes true or false, got ${describe(value)}`);
          break;
        }
        if (field === F_PATH) {
          problems.add(entry.keyPos, 'exists works on query and user_agent (every request has a path)');
          break;
        }
        tests.push(new Test(OP_EXISTS, field, false, 0, null, [], null, null, [], value.value));
        break;
      }
      case 'checksum8': {
        const sums = new Set<number>();
        const items = value.kind === 'seq' ? value.items : [value];
        for (const item of items) {
          if (item.kind === 'scalar' && typeof item.value === 'number' && Number.isInteger(item.value) && item.value >= 0 && item.value <= 255) sums.add(item.value);
          else if (item.kind !== 'invalid') problems.add(item.pos, `checksum8 takes integers 0–255, got ${describe(item)}`);
        }
        if (items.length === 0) problems.add(value.pos, 'checksum8 needs at least one value');
        if (sums.size > 0) tests.push(new Test(OP_CHECKSUM8, field, false, 4, null, [], null, sums));
        break;
      }
      case 'msf_uuid': {
        if (value.kind !== 'scalar' || value.value !== true) {
          problems.add(value.pos, `msf_uuid takes true, got ${describe(value)}`);
          break;
        }
        tests.push(new Test(OP_MSF_UUID, field, false, 6));
        break;
      }
      case 'not': {
        if (value.kind !== 'map' || value.entries.length === 0) {
          problems.add(value.pos, `not takes a map of operators, got ${describe(value)}`);
          break;
        }
        const inner: Test[] = [];
        compileOperators(fieldName, value, problems, inner, null);
        if (inner.length === 0) break;
        inner.sort((a, b) => a.cost - b.cost);
        tests.push(new Test(OP_NOT, field, false, 5 + inner.length, null, [], null, null, inner));
        break;
      }
      default:
        problems.add(entry.keyPos, unknownKey(entry, `in ${fieldName}`, OPERATORS));
    }
  }
}

// ---- compiling shapes ---------------------------------------------------------------------------------------

interface CompiledShape {
  readonly shape: C2UriShape;
  readonly index: number;
  readonly methods: ReadonlySet<string> | null;
  readonly tests: readonly Test[];
  /** Exact paths (from `path: {equals}`), for the index; null when the path is matched otherwise. */
  readonly exactPaths: readonly string[] | null;
}

interface Example {
  readonly pos: DataPos;
  readonly text: string;
  readonly method: string;
  readonly path: string;
  readonly query: string | undefined;
  readonly userAgent: string | undefined;
}

function requireString(node: DataNode, key: string, problems: DataIssues): string | null {
  if (node.kind === 'scalar' && typeof node.value === 'string' && node.value.trim().length > 0) return node.value;
  if (node.kind !== 'invalid') problems.add(node.pos, `${key} must be a non-empty string, got ${describe(node)}`);
  return null;
}

function readExamples(node: DataNode, key: string, problems: DataIssues): Example[] {
  const out: Example[] = [];
  if (node.kind !== 'seq') {
    if (node.kind !== 'invalid') problems.add(node.pos, `${key} must be a list of requests ("GET /path?query" or {request, user_agent}), got ${describe(node)}`);
    return out;
  }
  for (const item of node.items) {
    let request: DataNode | null = null;
    let userAgent: string | undefined;
    if (item.kind === 'scalar') request = item;
    else if (item.kind === 'map') {
      for (const entry of item.entries) {
        if (entry.key === 'request') request = entry.value;
        else if (entry.key === 'user_agent') {
          const ua = requireString(entry.value, 'user_agent', problems);
          if (ua !== null) userAgent = ua;
        } else problems.add(entry.keyPos, unknownKey(entry, 'in an example', EXAMPLE_KEYS));
      }
      if (request === null) problems.add(item.pos, 'an example map needs "request"');
    } else if (item.kind !== 'invalid') problems.add(item.pos, `an example is "METHOD /path?query" or {request, user_agent}, got ${describe(item)}`);
    if (request === null) continue;
    const match = request.kind === 'scalar' && typeof request.value === 'string' ? EXAMPLE_PATTERN.exec(request.value) : null;
    if (match === null) {
      if (request.kind !== 'invalid') problems.add(request.pos, `an example request is "METHOD /path?query", got ${describe(request)}`);
      continue;
    }
    const target = match[2] as string;
    const q = target.indexOf('?');
    out.push({
      pos: request.pos,
      text: request.kind === 'scalar' ? String(request.value) : '',
      method: (match[1] as string).toUpperCase(),
      path: q === -1 ? target : target.slice(0, q),
      query: q === -1 ? undefined : target.slice(q + 1),
      userAgent,
    });
  }
  return out;
}

function readSigma(node: DataNode, problems: DataIssues): string | null {
  if (node.kind !== 'map') {
    if (node.kind !== 'invalid') problems.add(node.pos, `sigma must be a map with id, title, author and license, got ${describe(node)}`);
    return null;
  }
  const values = new Map<string, string>();
  for (const entry of node.entries) {
    if (!(SIGMA_KEYS as readonly string[]).includes(entry.key)) {
      problems.add(entry.keyPos, unknownKey(entry, 'in sigma', SIGMA_KEYS));
      continue;
    }
    const text = requireString(entry.value, `sigma ${entry.key}`, problems);
    if (text !== null) values.set(entry.key, text);
  }
  const id = values.get('id');
  const author = values.get('author');
  const license = values.get('license');
  if (id === undefined || author === undefined || license === undefined) {
    problems.add(node.pos, 'sigma needs id, author and license (DRL-1.1 asks that the author travels with every match)');
    return null;
  }
  if (license !== 'DRL-1.1') problems.add(node.pos, `sigma license must be DRL-1.1 (SigmaHQ's Detection Rule License), got "${license}"`);
  const title = values.get('title');
  return `SigmaHQ rule ${id}${title === undefined ? '' : ` (${title})`} by ${author}, DRL-1.1`;
}

function compileShape(node: DataMap, index: number, seenIds: Map<string, DataPos>, problems: DataIssues): { compiled: CompiledShape; examples: Example[]; counter: Example[] } | null {
  const before = problems.count;
  const strings = new Map<string, string>();
  let attribution: string | null = null;
  let methods: Set<string> | null = null;
  const tests: Test[] = [];
  let exactPaths: string[] | null = null;
  let examples: Example[] = [];
  let counter: Example[] = [];
  let hasUriMatcher = false;
  const seen = new Set<string>();
  for (const entry of node.entries) {
    seen.add(entry.key);
    const value = entry.value;
    switch (entry.key) {
      case 'id': {
        const id = requireString(value, 'id', problems);
        if (id === null) break;
        if (!ID_PATTERN.test(id)) {
          problems.add(value.pos, `id "${id}" must be lower-case letters, digits and . _ - (at most 64)`);
          break;
        }
        const first = seenIds.get(id);
        if (first !== undefined) problems.add(value.pos, `duplicate id "${id}" (first at line ${first.line})`);
        else seenIds.set(id, value.pos);
        strings.set('id', id);
        break;
      }
      case 'framework':
      case 'description':
      case 'source': {
        const text = requireString(value, entry.key, problems);
        if (text !== null) strings.set(entry.key, text);
        break;
      }
      case 'sigma':
        attribution = readSigma(value, problems);
        break;
      case 'method': {
        const list = stringOrList(value, 'method', problems);
        if (list === null) break;
        methods = new Set();
        for (const method of list) {
          if (METHOD_PATTERN.test(method)) methods.add(method.toUpperCase());
          else problems.add(value.pos, `method "${method}" is not an HTTP method name`);
        }
        break;
      }
      case 'path':
        hasUriMatcher = true;
        exactPaths = [];
        compileField('path', value, problems, tests, exactPaths);
        break;
      case 'query':
        hasUriMatcher = true;
        compileField('query', value, problems, tests, null);
        break;
      case 'user_agent':
        compileField('user_agent', value, problems, tests, null);
        break;
      case 'examples':
        examples = readExamples(value, 'examples', problems);
        break;
      case 'counter_examples':
        counter = readExamples(value, 'counter_examples', problems);
        break;
      default:
        problems.add(entry.keyPos, unknownKey(entry, 'in a shape', SHAPE_KEYS));
    }
  }
  for (const required of ['id', 'framework', 'description', 'source', 'examples'] as const) {
    if (!seen.has(required)) problems.add(node.pos, `a shape needs "${required}"${required === 'examples' ? ' (at least one request from its source, checked at load)' : ''}`);
  }
  if (!hasUriMatcher) problems.add(node.pos, 'a shape needs a "path" or "query" matcher (a User-Agent alone is not a URI shape)');
  if (seen.has('examples') && examples.length === 0 && problems.count === before) problems.add(node.pos, 'examples must list at least one request');
  const id = strings.get('id');
  const framework = strings.get('framework');
  const description = strings.get('description');
  const source = strings.get('source');
  if (problems.count > before || id === undefined || framework === undefined || description === undefined || source === undefined) return null;
  tests.sort((a, b) => a.cost - b.cost);
  // The exact-path index preselects by a necessary condition (the path's case-sensitive `equals`); the shape's
  // own tests still run in full.
  const indexable = exactPaths !== null && exactPaths.length > 0 && pathHasExactEquals(node) ? exactPaths : null;
  return {
    compiled: { shape: { id, framework, description, source, attribution }, index, methods, tests, exactPaths: indexable },
    examples,
    counter,
  };
}

function pathHasExactEquals(node: DataMap): boolean {
  const path = node.entries.find((entry) => entry.key === 'path')?.value;
  if (path === undefined) return false;
  if (path.kind === 'scalar' || path.kind === 'seq') return true;
  return path.kind === 'map' && path.entries.some((entry) => entry.key === 'equals') && !path.entries.some((entry) => entry.key === 'ignore_case' && entry.value.kind === 'scalar' && entry.value.value === true);
}

// ---- the compiled set ---------------------------------------------------------------------------------------

/** RFC 3986 §2.3 unreserved characters: percent-encoding them does not change the URI (§6.2.2.2). */
function isUnreserved(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Normalises a path as RFC 3986 §6.2.2.2 allows: `%2E` → `.`, `%41` → `A` …; other escapes stay as sent. */
export function normalizePath(path: string): string {
  if (path === '') return '/';
  if (path.indexOf('%') === -1) return path;
  let out = '';
  let from = 0;
  for (let i = 0; i < path.length - 2; i++) {
    if (path.charCodeAt(i) !== 0x25) continue;
    const hi = hexDigit(path.charCodeAt(i + 1));
    const lo = hexDigit(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) continue;
    const c = (hi << 4) | lo;
    if (!isUnreserved(c)) continue;
    out += path.slice(from, i) + String.fromCharCode(c);
    from = i + 3;
    i += 2;
  }
  return out + path.slice(from);
}

class ShapeSet implements C2UriShapeSet {
  readonly size: number;
  readonly shapes: readonly C2UriShape[];
  private readonly compiled: readonly CompiledShape[];
  /** Exact path → indexes of the shapes naming it (ascending). */
  private readonly byPath = new Map<string, number[]>();
  /** Method → indexes of the shapes without an exact path that accept the method (ascending). */
  private readonly scanByMethod = new Map<string, number[]>();
  /** Shapes without an exact path and without a method list: the scan list of any other method. */
  private readonly scanAnyMethod: number[] = [];
  private readonly view: RequestView = newView();

  constructor(compiled: readonly CompiledShape[]) {
    this.compiled = compiled;
    this.size = compiled.length;
    this.shapes = compiled.map((c) => c.shape);
    const methodsNamed = new Set<string>();
    for (const c of compiled) for (const m of c.methods ?? []) methodsNamed.add(m);
    for (const m of methodsNamed) this.scanByMethod.set(m, []);
    for (const c of compiled) {
      if (c.exactPaths !== null) {
        for (const path of new Set(c.exactPaths)) {
          const list = this.byPath.get(path);
          if (list === undefined) this.byPath.set(path, [c.index]);
          else list.push(c.index);
        }
        continue;
      }
      if (c.methods === null) {
        this.scanAnyMethod.push(c.index);
        for (const list of this.scanByMethod.values()) list.push(c.index);
      } else {
        for (const m of c.methods) this.scanByMethod.get(m)?.push(c.index);
      }
    }
  }

  match(method: string, path: string, query: string | undefined, userAgent: string | undefined): C2UriShape | null {
    const upper = hasLowerCase(method) ? method.toUpperCase() : method;
    const view = this.view;
    view.path = normalizePath(path);
    view.query = query ?? '';
    view.userAgent = userAgent ?? '';
    view.hasQuery = view.query.length > 0;
    view.hasUserAgent = view.userAgent.length > 0;
    view.pathLower = view.queryLower = view.userAgentLower = null;
    view.checksum8 = -1;
    const exact = this.byPath.get(view.path);
    const scan = this.scanByMethod.get(upper) ?? this.scanAnyMethod;
    // Both lists are ascending: walk them together so the first match in file order wins.
    let i = 0;
    let j = 0;
    const exactLength = exact === undefined ? 0 : exact.length;
    while (i < exactLength || j < scan.length) {
      const a = i < exactLength ? (exact as number[])[i] as number : Number.MAX_SAFE_INTEGER;
      const b = j < scan.length ? (scan[j] as number) : Number.MAX_SAFE_INTEGER;
      const index = a < b ? a : b;
      if (a < b) i++;
      else j++;
      const c = this.compiled[index] as CompiledShape;
      if (matchesShape(c, upper, view)) return c.shape;
    }
    return null;
  }
}

function hasLowerCase(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) return true;
  }
  return false;
}

function matchesShape(c: CompiledShape, method: string, view: RequestView): boolean {
  if (c.methods !== null && !c.methods.has(method)) return false;
  return runAll(c.tests, view);
}

function matchesOne(c: CompiledShape, example: Example): boolean {
  const view = newView();
  view.path = normalizePath(example.path);
  view.query = example.query ?? '';
  view.userAgent = example.userAgent ?? '';
  view.hasQuery = view.query.length > 0;
  view.hasUserAgent = view.userAgent.length > 0;
  return matchesShape(c, example.method, view);
}

/**
 * Reads and compiles a shapes file. Pure; never throws: every problem comes back as `file:line:col: message`,
 * all of them at once.
 */
export function compileC2UriShapes(yamlText: string, fileName: string): CompileResult {
  const problems = new DataIssues(fileName);
  try {
    return compileChecked(yamlText, problems);
  } catch (err) {
    // Nothing above is meant to throw; if the YAML library does on some input, it is still a file problem.
    problems.add({ line: 1, col: 1 }, `the file could not be read (${err instanceof Error ? err.message : String(err)})`);
    return { ok: false, errors: problems.list() };
  }
}

function compileChecked(yamlText: string, problems: DataIssues): CompileResult {
  const root = readDataTree(yamlText, problems, TREE_OPTIONS);
  if (root === null || root.kind === 'invalid') {
    if (problems.count === 0) problems.add({ line: 1, col: 1 }, 'the file could not be read');
    return { ok: false, errors: problems.list() };
  }
  if (root.kind !== 'map') {
    problems.add(root.pos, root.kind === 'scalar' && root.value === null ? 'the file is empty; expected "version: 1" and "shapes"' : `expected a map with "version: 1" and "shapes", got ${describe(root)}`);
    return { ok: false, errors: problems.list() };
  }
  let sawVersion = false;
  let shapesNode: DataNode | null = null;
  for (const entry of root.entries) {
    if (entry.key === 'version') {
      sawVersion = true;
      if (!(entry.value.kind === 'scalar' && entry.value.value === 1) && entry.value.kind !== 'invalid') problems.add(entry.value.pos, `version must be 1, got ${describe(entry.value)}`);
    } else if (entry.key === 'shapes') shapesNode = entry.value;
    else problems.add(entry.keyPos, unknownKey(entry, 'at the top level', TOP_KEYS));
  }
  if (!sawVersion) problems.add(root.pos, 'missing "version: 1"');
  const compiled: CompiledShape[] = [];
  if (shapesNode === null) problems.add(root.pos, 'missing "shapes" (a list of shapes)');
  else if (shapesNode.kind === 'seq') {
    const seenIds = new Map<string, DataPos>();
    for (const item of shapesNode.items) {
      if (item.kind !== 'map') {
        if (item.kind !== 'invalid') problems.add(item.pos, `a shape must be a map with id, framework, description, source, a path or query and examples, got ${describe(item)}`);
        continue;
      }
      const result = compileShape(item, compiled.length, seenIds, problems);
      if (result === null) continue;
      // The file proves its own shapes: each example must match, each counter-example must not.
      for (const example of result.examples) {
        if (!matchesOne(result.compiled, example)) problems.add(example.pos, `example "${example.text}" does not match shape "${result.compiled.shape.id}"`);
      }
      for (const example of result.counter) {
        if (matchesOne(result.compiled, example)) problems.add(example.pos, `counter-example "${example.text}" matches shape "${result.compiled.shape.id}"`);
      }
      compiled.push(result.compiled);
    }
  } else if (!(shapesNode.kind === 'scalar' && shapesNode.value === null) && shapesNode.kind !== 'invalid') {
    problems.add(shapesNode.pos, `shapes must be a list of shapes, got ${describe(shapesNode)}`);
  }
  if (problems.count > 0) return { ok: false, errors: problems.list() };
  return { ok: true, shapes: new ShapeSet(compiled) };
}

/**
 * Reads and compiles a shapes file from disk (at start-up or reload). Throws EgressError CONFIG_READ when the
 * file cannot be read, CONFIG_INVALID with every `file:line:col: message` when it is not valid.
 */
export async function loadC2UriShapes(file: string): Promise<C2UriShapeSet> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const reason = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : String(err);
    throw new EgressError('CONFIG_READ', `cannot read the C2 URI shapes file ${file} (${reason})`, { cause: err });
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new EgressError('CONFIG_INVALID', `${file}:1:1: the file is not valid UTF-8`);
  }
  const result = compileC2UriShapes(text, file);
  if (!result.ok) throw new EgressError('CONFIG_INVALID', `${result.errors.length} problem(s) in the C2 URI shapes file:\n${result.errors.join('\n')}`);
  return result.shapes;
}

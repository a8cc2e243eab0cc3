/**
 * Loading the configuration: YAML text → JS values → `${ENV}` expansion → schema → relative paths resolved,
 * admin token taken from the environment → one frozen `Config`.
 *
 * Every problem is collected and reported at once, each as `file:line:col: key.path: reason`, so an
 * operator fixes a broken file in one pass; the proxy refuses to start on any of them.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import type * as z from 'zod';
import { EgressError } from '../errors.js';
import { ADMIN_TOKEN_ENV, configSchema, describeValue, parseToken, type Config, type ParsedConfig } from './schema.js';

export interface ConfigOptions {
  /** Directory that relative paths are resolved against (the config file's directory, or the package root). */
  readonly baseDir: string;
  /** Source of `${VAR}` and EGRESS_ADMIN_TOKEN; defaults to process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Name of the file the text came from; when set, every error starts with `source:line:col: `. */
  readonly source?: string;
}

export type ConfigErrorCode = 'CONFIG_READ' | 'CONFIG_INVALID';

export type ConfigResult =
  | { readonly ok: true; readonly config: Config }
  | { readonly ok: false; readonly code: ConfigErrorCode; readonly errors: readonly string[] };

/** A CONFIG_* EgressError that also carries the errors as a list, for callers that print them one by one. */
export class ConfigError extends EgressError {
  readonly errors: readonly string[];

  constructor(code: ConfigErrorCode, errors: readonly string[], options?: { cause?: unknown }) {
    super(code, errors.join('\n'), options);
    this.errors = errors;
  }
}

/**
 * Enough to fix a file in one pass; a 20,000-item list of bad CIDRs, or the YAML library's one error per
 * nesting level on hostile input, would otherwise bury the first (usually root) cause.
 */
const MAX_ERRORS = 50;

type KeyPath = readonly (string | number)[];

interface Problem {
  readonly path: KeyPath | undefined; // undefined: not about one key (YAML syntax)
  readonly message: string;
  readonly offset: number | undefined; // into the text, for line:col and to sort errors in file order
}

/** Reads and validates a config file, or returns the defaults when there is none. */
export async function loadConfig(opts: { file?: string; baseDir: string; env?: NodeJS.ProcessEnv }): Promise<Config> {
  if (opts.file === undefined) return defaultConfig(opts.baseDir, opts.env);
  let text: string;
  try {
    text = await readFile(opts.file, 'utf8');
  } catch (err) {
    const reason = err instanceof Error && 'code' in err ? String(err.code) : String(err);
    throw new ConfigError('CONFIG_READ', [`${opts.file}: cannot read the config file (${reason})`], { cause: err });
  }
  const result = parseConfigText(text, {
    baseDir: dirname(resolve(opts.file)),
    source: opts.file,
    ...(opts.env === undefined ? {} : { env: opts.env }),
  });
  if (!result.ok) throw new ConfigError(result.code, result.errors);
  return result.config;
}

/** SPEC's defaults, with paths resolved against `baseDir` and the admin token from the environment. */
export function defaultConfig(baseDir: string, env?: NodeJS.ProcessEnv): Config {
  const result = parseConfigText('', { baseDir, ...(env === undefined ? {} : { env }) });
  // Only a malformed EGRESS_ADMIN_TOKEN can fail here.
  if (!result.ok) throw new ConfigError(result.code, result.errors);
  return result.config;
}

/** Validates config text without touching files and never throws (reads process.env only when `opts.env` is absent). Errors come back one string each, in file order. */
export function parseConfigText(text: string, opts: ConfigOptions): ConfigResult {
  const env = opts.env ?? process.env;
  const lineCounter = new LineCounter();
  const format = (problems: readonly Problem[]): string[] => {
    const lines = [...problems]
      .sort((a, b) => (a.offset ?? Infinity) - (b.offset ?? Infinity))
      .slice(0, MAX_ERRORS)
      .map((p) => formatProblem(p, opts.source, lineCounter));
    if (problems.length > MAX_ERRORS) lines.push(`… and ${problems.length - MAX_ERRORS} more errors`);
    return lines;
  };

  let doc: Document;
  let data: unknown;
  try {
    // uniqueKeys (the default) refuses a key written twice instead of letting the last one win silently.
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    const syntax = [...doc.errors, ...doc.warnings].map((e) => ({ path: undefined, message: e.message, offset: e.pos[0] }));
    if (syntax.length > 0) return { ok: false, code: 'CONFIG_READ', errors: format(syntax) };
    // maxAliasCount bounds alias expansion ("billion laughs"); toJS throws a ReferenceError past it.
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // The YAML library throws on pathological input (alias bombs, nesting deep enough to overflow the stack).
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, code: 'CONFIG_READ', errors: format([{ path: undefined, message, offset: undefined }]) };
  }

  const problems: Problem[] = [];
  const at = (path: KeyPath, message: string, onKey = false): Problem => ({ path, message, offset: locate(doc, path, onKey) });

  const expanded = expandEnvInTree(data, env);
  for (const e of expanded.errors) problems.push(at(e.path, e.message));
  const parsed = configSchema.safeParse(expanded.value, { reportInput: true });
  if (!parsed.success) {
    // A value whose variable is unset was left unexpanded; the schema's complaint about it would be noise.
    const failed = new Set(expanded.errors.map((e) => pathKey(e.path)));
    for (const issue of parsed.error.issues) {
      for (const p of problemsFromIssue(issue, at)) if (p.path === undefined || !failed.has(pathKey(p.path))) problems.push(p);
    }
  }

  const token = parsed.success ? tokenFromEnv(parsed.data.admin.token, env) : { value: null };
  if (token.error !== undefined) problems.push({ path: [ADMIN_TOKEN_ENV], message: token.error, offset: undefined });

  if (problems.length > 0 || !parsed.success) return { ok: false, code: 'CONFIG_INVALID', errors: format(problems) };
  return { ok: true, config: deepFreeze(finishConfig(parsed.data, resolve(opts.baseDir), token.value)) };
}

/** Relative paths are relative to the config file (or base directory), not to wherever the proxy was started. */
function finishConfig(c: ParsedConfig, baseDir: string, token: string | null): Config {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const absOrNull = (p: string | null): string | null => (p === null ? null : abs(p));
  return {
    ...c,
    admin: { ...c.admin, token },
    policy: { ...c.policy, files: c.policy.files.map(abs) },
    log: { ...c.log, flows: c.log.flows === '-' ? '-' : abs(c.log.flows) },
    tls: { ...c.tls, ca_dir: abs(c.tls.ca_dir), upstream_ca: c.tls.upstream_ca.map(abs) },
    identity: { ...c.identity, users_file: c.identity.users_file === null ? null : abs(c.identity.users_file) },
    scoring: {
      ...c.scoring,
      c2_uri_shapes: absOrNull(c.scoring.c2_uri_shapes),
      processes: absOrNull(c.scoring.processes),
      user_agents: absOrNull(c.scoring.user_agents),
      tls_families: absOrNull(c.scoring.tls_families),
    },
    baseline: { ...c.baseline, dir: abs(c.baseline.dir) },
    geoip: { city: absOrNull(c.geoip.city), asn: absOrNull(c.geoip.asn) },
    console: { ...c.console, token_file: abs(c.console.token_file), history: { ...c.console.history, dir: abs(c.console.history.dir) } },
  };
}

/** The file wins when it sets a token; otherwise EGRESS_ADMIN_TOKEN, where an empty value counts as unset. */
function tokenFromEnv(fileToken: string | null, env: NodeJS.ProcessEnv): { value: string | null; error?: string } {
  if (fileToken !== null) return { value: fileToken };
  const fromEnv = env[ADMIN_TOKEN_ENV];
  if (fromEnv === undefined || fromEnv === '') return { value: null };
  const parsed = parseToken(fromEnv);
  // Never echo the value: it is a secret even when malformed.
  return parsed.ok ? { value: parsed.value } : { value: null, error: `${parsed.expected}, got a string that is not one` };
}

// ---------------------------------------------------------------------------------------------------------
// ${ENV} expansion

// Deeper than any key of the schema: values below are refused anyway, so expansion need not reach them,
// and a bounded walk cannot overflow the stack on hostile nesting.
const MAX_EXPAND_DEPTH = 32;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

interface PathError {
  readonly path: KeyPath;
  readonly message: string;
}

/**
 * Replaces `${VAR}` in every string value (keys are left alone); `$${` is a literal `${`. Returns a new tree:
 * YAML aliases share one JS object, which must not be expanded twice.
 */
function expandEnvInTree(root: unknown, env: NodeJS.ProcessEnv): { value: unknown; errors: PathError[] } {
  const errors: PathError[] = [];
  const onPath = new Set<unknown>(); // YAML can build cycles (`&a [*a]`); stop at one
  const walk = (value: unknown, path: KeyPath): unknown => {
    if (typeof value === 'string') {
      const r = expandEnvInString(value, env);
      if (r.error !== undefined) errors.push({ path, message: r.error });
      return r.value;
    }
    if (value === null || typeof value !== 'object' || path.length >= MAX_EXPAND_DEPTH || onPath.has(value)) return value;
    onPath.add(value);
    let out: unknown;
    if (Array.isArray(value)) {
      out = value.map((v: unknown, i) => walk(v, [...path, i]));
    } else {
      // defineProperty, not assignment: a `__proto__` key must stay a plain (and then refused) key.
      const obj: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        Object.defineProperty(obj, k, { value: walk(v, [...path, k]), enumerable: true, writable: true, configurable: true });
      }
      out = obj;
    }
    onPath.delete(value);
    return out;
  };
  return { value: walk(root, []), errors };
}

/** One string; on error the original text is returned unchanged with the first problem found. */
export function expandEnvInString(text: string, env: NodeJS.ProcessEnv): { value: string; error?: string } {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar === -1) break;
    out += text.slice(i, dollar);
    if (text.startsWith('$${', dollar)) {
      out += '${';
      i = dollar + 3;
    } else if (text.startsWith('${', dollar)) {
      const close = text.indexOf('}', dollar + 2);
      if (close === -1) return { value: text, error: 'unterminated "${" (write "$${" for a literal "${")' };
      const name = text.slice(dollar + 2, close);
      if (!VAR_NAME.test(name)) return { value: text, error: `invalid variable name ${JSON.stringify(name)} in "\${…}"` };
      const v = env[name];
      if (v === undefined) return { value: text, error: `environment variable ${name} is not set` };
      out += v; // not expanded again: a value's own "${" stays literal
      i = close + 1;
    } else {
      out += '$';
      i = dollar + 1;
    }
  }
  return { value: out + text.slice(i) };
}

// ---------------------------------------------------------------------------------------------------------
// Turning schema issues into positioned messages

function problemsFromIssue(issue: z.core.$ZodIssue, at: (path: KeyPath, message: string, onKey?: boolean) => Problem): Problem[] {
  const path = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => at([...path, key], unknownKeyMessage(key, path), true));
    case 'invalid_type': {
      const expected = issue.expected === 'object' ? 'a mapping' : issue.expected === 'array' ? 'a list' : issue.expected;
      return [at(path, `expected ${expected}, got ${describeValue(issue.input)}`)];
    }
    case 'too_small':
      return [at(path, `${issue.message}, got an empty list`)];
    default:
      return [at(path, issue.message)];
  }
}

/** "unknown key", with the nearest known key when it is a likely typo ("timeout" for "timeouts"). */
function unknownKeyMessage(key: string, parentPath: KeyPath): string {
  let best: string | undefined;
  let bestDistance = 3; // two edits at most: further than that is a different word, not a typo
  for (const known of Object.keys(shapeAt(parentPath))) {
    const distance = editDistance(key.toLowerCase(), known);
    if (distance < bestDistance) [best, bestDistance] = [known, distance];
  }
  return best === undefined ? 'unknown key' : `unknown key (did you mean "${best}"?)`;
}

/** The keys the schema allows at `path`, read from the schema itself so a new section needs no change here. */
function shapeAt(path: KeyPath): Record<string, unknown> {
  let shape = shapeOf(configSchema);
  for (const seg of path) shape = shape === undefined ? undefined : shapeOf(shape[String(seg)]);
  return shape ?? {};
}

/** The shape of a strict object schema behind `preprocess`/`prefault` wrappers; undefined for leaves. */
function shapeOf(schema: unknown): Record<string, unknown> | undefined {
  type Def = { type?: string; out?: unknown; innerType?: unknown; shape?: Record<string, unknown> };
  let s = schema as { def?: Def } | undefined;
  for (let i = 0; i < 5 && s?.def !== undefined; i++) {
    if (s.def.type === 'object') return s.def.shape;
    s = (s.def.type === 'pipe' ? s.def.out : s.def.innerType) as { def?: Def } | undefined;
  }
  return undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j] ?? 0;
      row[j] = Math.min(up + 1, (row[j - 1] ?? 0) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length] ?? 0;
}

/** Offset of the YAML node at `path` (its key when `onKey`), following aliases; undefined when not in the text. */
function locate(doc: Document, path: KeyPath, onKey: boolean): number | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined;
  for (let i = 0; i < path.length; i++) {
    if (isAlias(node)) node = node.resolve(doc);
    const seg = path[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair === undefined) return offset;
      const keyOffset = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
      if (onKey && i === path.length - 1) return keyOffset;
      // `key:` with nothing after it has no value node; point at the key.
      node = pair.value;
      offset = (isScalar(node) || isMap(node) || isSeq(node) || isAlias(node) ? node.range?.[0] : undefined) ?? keyOffset;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      offset = (isScalar(node) || isMap(node) || isSeq(node) || isAlias(node) ? node.range?.[0] : undefined) ?? offset;
    } else {
      return offset;
    }
  }
  return offset ?? (isMap(node) || isSeq(node) || isScalar(node) ? node.range?.[0] : undefined);
}

function formatPath(path: KeyPath): string {
  if (path.length === 0) return '(top level)';
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${describeValue(seg)}]`; // quoted and cut short: a key can be any length
  }
  return out;
}

function pathKey(path: KeyPath): string {
  return JSON.stringify(path);
}

function formatProblem(p: Problem, source: string | undefined, lineCounter: LineCounter): string {
  // Messages from the YAML library may span lines; the CONFIG_INVALID message is one error per line.
  const message = p.message.replace(/\s*\n\s*/g, ' ');
  if (p.path !== undefined) {
    const body = `${formatPath(p.path)}: ${message}`;
    // Positions are shown for a named file only, so messages for inline text read as plain "key: reason".
    if (source === undefined || p.offset === undefined) return body;
    const { line, col } = lineCounter.linePos(p.offset);
    return `${source}:${line}:${col}: ${body}`;
  }
  // A syntax error has no key path, so its position is always shown.
  const where = p.offset === undefined ? undefined : lineCounter.linePos(p.offset);
  const prefix = [source, where?.line, where?.col].filter((x) => x !== undefined).join(':');
  return prefix === '' ? message : `${prefix}: ${message}`;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

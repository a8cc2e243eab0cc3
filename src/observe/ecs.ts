/**
 * The flow record as Elastic takes it (issue 11, SPEC "Flow records"): ECS field names, types and allowed values,
 * ECS categorization (event.kind/category/type/outcome), `related.*` for pivoting, `observer.*` naming the proxy,
 * and the Community ID; everything ECS does not define lives under `egress.*` (docs/flow-record.md).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { FIELD_SLOT, FIELDS, type FieldName, type FieldValue } from '../flow/fields.js';
import type { Flow } from '../flow/flow.js';
import { isoTime } from '../flow/iso-time.js';
import { CIPHER_NAMES } from '../fingerprint/tls-server-facts.js';
import { communityId } from './community-id.js';

const SEVERITY_NUMBER = { low: 1, medium: 2, high: 3, critical: 4 } as const;

export type EcsRecord = Record<string, unknown>;

/**
 * The nesting of the ECS document, built once from the field catalogue: a node per dotted prefix, a leaf per
 * field, in catalogue order. Serializing walks this fixed tree, so the per-flow work is Map lookups and
 * string building — no nested objects with flow-dependent shapes.
 */
interface TreeNode {
  /** `"key":` already JSON-encoded. */
  readonly prefix: string;
  readonly field: FieldName | null;
  readonly children: TreeNode[];
}

function buildTree(): TreeNode[] {
  const root: TreeNode[] = [];
  for (const name of Object.keys(FIELDS) as FieldName[]) {
    const path = name === '@timestamp' ? [name] : name.split('.');
    let level = root;
    path.forEach((key, i) => {
      const leaf = i === path.length - 1;
      let node = level.find((n) => n.prefix === `${JSON.stringify(key)}:` && (n.field === null) === !leaf);
      if (node === undefined) {
        node = { prefix: `${JSON.stringify(key)}:`, field: leaf ? name : null, children: [] };
        level.push(node);
      }
      level = node.children;
    });
  }
  return root;
}

const TREE = buildTree();

/**
 * Single values that ECS declares as arrays (`normalize: array`): policies and the server-facts code treat them
 * as one string (the most specific CN), the record writes them as a one-element list.
 */
export const ARRAY_IN_RECORD: ReadonlySet<FieldName> = new Set<FieldName>([
  'tls.server.x509.subject.common_name',
  'tls.server.x509.issuer.common_name',
]);

/** A field's place in the tree: its position in a depth-first walk, and the JSON keys (`"k":`) on its path. */
interface Leaf {
  readonly field: FieldName;
  /** Where the flow holds its value (FIELD_SLOT). */
  readonly slot: number;
  readonly keys: readonly string[];
  /** Written as a one-element list when the value is a single one (ARRAY_IN_RECORD). */
  readonly list: boolean;
  /**
   * The record's text around this field, built once so that writing a field is few concatenations (each one is a
   * string the collector reclaims): `opens[i]` = `"k":{` for the i-th key of the path, `commaOpens[i]` the same
   * after a comma; the last key as `"k":` and, for a plain string value, `"k":"` — each with and without the comma.
   */
  readonly opens: readonly string[];
  readonly commaOpens: readonly string[];
  readonly key: string;
  readonly commaKey: string;
  readonly keyQuote: string;
  readonly commaKeyQuote: string;
}

function leafOf(field: FieldName, keys: readonly string[]): Leaf {
  const last = keys[keys.length - 1] as string;
  const opens = keys.slice(0, -1).map((k) => `${k}{`);
  return {
    field,
    slot: FIELD_SLOT.get(field) as number,
    keys,
    list: ARRAY_IN_RECORD.has(field),
    opens,
    commaOpens: opens.map((o) => `,${o}`),
    key: last,
    commaKey: `,${last}`,
    keyQuote: `${last}"`,
    commaKeyQuote: `,${last}"`,
  };
}

function indexLeaves(tree: readonly TreeNode[]): ReadonlyMap<FieldName, Leaf> {
  const leaves = new Map<FieldName, Leaf>();
  const walk = (nodes: readonly TreeNode[], keys: readonly string[]): void => {
    for (const node of nodes) {
      const path = [...keys, node.prefix];
      if (node.field !== null) leaves.set(node.field, leafOf(node.field, path));
      else walk(node.children, path);
    }
  };
  walk(tree, []);
  return leaves;
}

/**
 * Fields with the same value in every record (ecs.version, observer.*): written as one JSON fragment built at
 * load, at the end of the record, never through the flow's fields (no per-record Map sets, sorting or escaping).
 */
const CONSTANT_FIELDS: ReadonlySet<FieldName> = new Set<FieldName>([
  'ecs.version',
  'observer.hostname',
  'observer.type',
  'observer.vendor',
  'observer.product',
  'observer.version',
]);

/** The record's fields in tree order (a depth-first walk), the constant ones left out. */
const LEAVES: readonly Leaf[] = [...indexLeaves(TREE).values()].filter((leaf) => !CONSTANT_FIELDS.has(leaf.field));

/** `}` repeated n times, for every n up to the deepest path of the catalogue: n objects closed in one concatenation. */
const CLOSE: readonly string[] = Array.from({ length: Math.max(...LEAVES.map((leaf) => leaf.keys.length)) + 1 }, (_, n) => '}'.repeat(n));

/** Characters a JSON string must escape (RFC 8259 §7), plus lone surrogates (JSON.stringify escapes them). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point: JSON must escape them
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** JSON text of a field value: plain strings and finite numbers directly, everything else by JSON.stringify. */
function jsonValue(value: FieldValue | undefined): string {
  if (typeof value === 'string') return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
  if (Array.isArray(value)) {
    if (Object.isFrozen(value)) return frozenListJson(value);
    if (value.every(isString)) return stringList(value as readonly string[]);
  }
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return JSON.stringify(value) ?? 'null';
}

const isString = (v: unknown): v is string => typeof v === 'string';

/** A list of strings as JSON, element by element like the plain string case (about half of JSON.stringify's time). */
function stringList(list: readonly string[]): string {
  let out = '[';
  for (let i = 0; i < list.length; i++) {
    const s = list[i] as string;
    out += (i === 0 ? '' : ',') + (NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`);
  }
  return `${out}]`;
}

/**
 * The fields the flow has, in tree order, written as nested JSON members: the flow's value array is walked in
 * that order (no sorting, no per-record list). Same output as walking the tree (fields nested by dotted name).
 */
function writeFields(values: readonly (FieldValue | undefined)[]): string {
  let out = '';
  let open: readonly string[] = [];
  let depth = 0;
  // A member follows another at its level unless the level was just opened (no reading back from `out`:
  // charCodeAt on a concatenated string would flatten it every time).
  let comma = false;
  for (let n = 0; n < LEAVES.length; n++) {
    const leaf = LEAVES[n] as Leaf;
    const value = values[leaf.slot];
    if (value === undefined) continue;
    const keys = leaf.keys;
    const last = keys.length - 1;
    let common = 0;
    while (common < depth && common < last && open[common] === keys[common]) common++;
    if (depth > common) {
      out += CLOSE[depth - common] as string;
      comma = true;
    }
    for (let i = common; i < last; i++) {
      out += (comma ? leaf.commaOpens[i] : leaf.opens[i]) as string;
      comma = false;
    }
    depth = last;
    open = keys;
    if (typeof value === 'string' && !leaf.list && !NEEDS_ESCAPE.test(value)) {
      out += comma ? leaf.commaKeyQuote : leaf.keyQuote;
      out += value;
      out += '"';
    } else {
      out += comma ? leaf.commaKey : leaf.key;
      out += leaf.list && !Array.isArray(value) ? `[${jsonValue(value)}]` : jsonValue(value);
    }
    comma = true;
  }
  if (depth > 0) out += CLOSE[depth] as string;
  return out === '' ? CONSTANT_MEMBERS : `${out},${CONSTANT_MEMBERS}`;
}

/**
 * The ECS version the records and deploy/elasticsearch/ target. 8.17.0 (ecs v8.17.0, Dec 2024): every ECS field
 * the catalogue uses exists there with the type we write (test/unit/observe/ecs-conformance.test.ts checks the
 * catalogue against ../shared/ecs/ecs-fields.json, 9.5-dev, which only adds to 8.17), and 8.17 is the last 8.x
 * ECS release, so 8.x and 9.x stacks both know every field.
 */
export const ECS_VERSION = '8.17.0';

/** Read once when the module loads (start-up), never per record. */
function readPackageVersion(): string {
  // src/observe/ → ../../package.json; dist/observe/ (tsconfig.build.json) → the same.
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export const OBSERVER = {
  hostname: hostname(),
  type: 'proxy',
  vendor: 'egress-inspector',
  product: 'egress-inspector',
  version: readPackageVersion(),
} as const;

// ECS categorization (https://www.elastic.co/guide/en/ecs/current/ecs-using-the-categorization-fields.html):
// category `network` expects types access/allowed/connection/denied/end/info/protocol, `web` expects
// access/error/info (ecs_flat.yml expected_event_types). Every type below is expected by a category it goes with.
const CATEGORY_NETWORK: readonly string[] = Object.freeze(['network']);
const CATEGORY_WEB: readonly string[] = Object.freeze(['network', 'web']);

/** The 8 event.type lists, by bits: 1 denied, 2 protocol parsed, 4 HTTP request (web access). Built once. */
const EVENT_TYPES: readonly (readonly string[])[] = Array.from({ length: 8 }, (_, bits) =>
  Object.freeze([
    'connection',
    bits & 1 ? 'denied' : 'allowed',
    ...(bits & 2 ? ['protocol'] : []),
    ...(bits & 4 ? ['access'] : []),
  ]),
);

/**
 * JSON of frozen lists, by identity: a frozen list cannot change, and the frozen lists in records are shared by
 * many flows — the constant lists above, and a TLS stack's cipher codes, cipher names and ALPN list
 * (src/fingerprint/tls-facts.ts), which are ~1.5 KB of JSON in every record of its tunnels. Weak keys: an entry
 * lives as long as its list (the shape memo bounds those).
 */
const FROZEN_JSON = new WeakMap<object, string>();

function frozenListJson(list: readonly unknown[]): string {
  let json = FROZEN_JSON.get(list);
  if (json === undefined) {
    json = list.every(isString) ? stringList(list) : (JSON.stringify(list) ?? 'null');
    FROZEN_JSON.set(list, json);
  }
  return json;
}

/** `"ecs":{…},"observer":{…}`: the CONSTANT_FIELDS members of every record. */
const CONSTANT_MEMBERS = JSON.stringify({ ecs: { version: ECS_VERSION }, observer: OBSERVER }).slice(1, -1);

const PARSED_PROTOCOLS: ReadonlySet<string> = new Set(['http', 'tls', 'dns']);
/** An absolute-form request target (RFC 9112 §3.2.2): url.original is then the full URL already. */
const ABSOLUTE_URL = /^https?:\/\//i;

/**
 * IANA names by 4-digit hex code, from the name table of tls-server-facts.ts (the one `tls.cipher` uses), read
 * once at load: a record's ~15 offered suites then cost one Map lookup each, no parseInt.
 */
const CIPHER_NAME_BY_CODE: ReadonlyMap<string, string> = new Map(
  [...CIPHER_NAMES].map(([code, name]) => [code.toString(16).padStart(4, '0'), name] as const),
);
const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };

/** Fingerprints and hashes that go into related.hash (Elastic's Zeek/Suricata integrations put JA3/JA3S there too). */
const HASH_FIELDS: readonly FieldName[] = [
  'tls.client.ja3',
  'tls.client.ja4',
  'http.request.ja4h',
  'tls.server.ja3s',
  'tls.server.ja4s',
  'tls.server.ja4x',
  'tls.server.hash.sha256',
  'process.hash.md5',
  'process.hash.sha1',
  'process.hash.sha256',
  'process.pe.imphash',
];
const HOST_FIELDS: readonly FieldName[] = ['destination.domain', 'url.domain', 'tls.client.server_name', 'dns.question.name', 'host.name'];
const IP_FIELDS: readonly FieldName[] = ['source.ip', 'destination.ip', 'client.ip'];

/**
 * Fields `finishFields` writes from the decision and the end of the flow: a follow-up record (follow-up.ts)
 * recomputes them for itself instead of copying them from the record it completes.
 */
export const RECORD_FIELDS: ReadonlySet<FieldName> = new Set<FieldName>([
  'event.kind', 'event.action', 'event.outcome', 'event.duration', 'event.severity', 'event.category', 'event.type',
  'event.start', 'event.end', 'ecs.version', 'observer.hostname', 'observer.type', 'observer.vendor',
  'observer.product', 'observer.version', 'network.direction', 'network.bytes', 'network.community_id',
  'related.ip', 'related.hosts', 'related.user', 'related.hash', 'url.full', 'rule.id', 'tags', 'egress.rules', 'egress.shadow',
  'egress.explanation', 'egress.pending_rule', 'source.bytes', 'destination.bytes', 'error.code', 'error.message',
]);

/** The distinct string values of some fields, or undefined when none is set (no empty arrays in records). */
function distinct(flow: Flow, names: readonly FieldName[]): string[] | undefined {
  let out: string[] | undefined;
  for (const name of names) {
    const v = flow.get(name);
    if (typeof v !== 'string' || v === '') continue;
    if (out === undefined) out = [v];
    else if (!out.includes(v)) out.push(v);
  }
  return out;
}

/** url.full of an HTTP request (ECS: "reconstructed or present in the event source"); CONNECT has none. */
function fullUrl(flow: Flow): string | undefined {
  const method = flow.get('http.request.method');
  if (method === undefined || method === 'CONNECT') return undefined;
  const original = flow.get('url.original');
  if (original !== undefined && ABSOLUTE_URL.test(original)) return original;
  const scheme = flow.get('url.scheme');
  const domain = flow.get('url.domain');
  if (scheme === undefined || domain === undefined) return undefined;
  const host = domain.includes(':') && !domain.startsWith('[') ? `[${domain}]` : domain;
  const port = flow.get('url.port');
  const portPart = port === undefined || port === DEFAULT_PORTS[scheme] ? '' : `:${port}`;
  const query = flow.get('url.query');
  return `${scheme}://${host}${portPart}${flow.get('url.path') ?? '/'}${query === undefined ? '' : `?${query}`}`;
}

/**
 * tls.client.supported_ciphers as ECS expects it (IANA names), from the hex codes policies match
 * (egress.tls.cipher_codes, set at the ClientHello).
 */
function finishCiphers(flow: Flow): void {
  const codes = flow.get('egress.tls.cipher_codes');
  if (codes === undefined) return;
  if (!Object.isFrozen(codes)) {
    flow.set('tls.client.supported_ciphers', cipherNames(codes));
    return;
  }
  // A TLS stack's shared, frozen code list (tls-facts.ts): its names are made once and shared (frozen) too.
  let names = NAMES_OF_CODES.get(codes);
  if (names === undefined) {
    names = Object.freeze(cipherNames(codes));
    NAMES_OF_CODES.set(codes, names);
  }
  flow.set('tls.client.supported_ciphers', names);
}

/** Unknown and reserved (GREASE is dropped upstream) codes keep a 0x-hex form, as tls.cipher does. */
function cipherNames(codes: readonly string[]): string[] {
  return codes.map((c) => CIPHER_NAME_BY_CODE.get(c) ?? `0x${c}`);
}

/** Cipher names of frozen code lists, by identity (weak: an entry lives as long as its code list). */
const NAMES_OF_CODES = new WeakMap<readonly string[], readonly string[]>();

/** Write what the decision and the end of the flow add into the flow's own fields (record-only fields). */
function finishFields(flow: Flow, endNs: bigint): void {
  const decision = flow.decision;
  flow.set('event.kind', decision !== null && decision.severity !== null ? 'alert' : 'event');
  let denied: boolean;
  if (decision !== null && decision.status === 'final') {
    flow.set('event.action', decision.verdict);
    denied = decision.verdict === 'block';
    if (decision.ruleId !== null) flow.set('rule.id', decision.ruleId);
  } else {
    // A flow that ended before the policy could decide (client gone, shutdown) forwarded nothing.
    flow.set('event.action', 'block');
    denied = true;
    if (decision !== null) flow.set('egress.pending_rule', decision.pendingRuleId);
  }
  const method = flow.get('http.request.method');
  const web = method !== undefined && method !== 'CONNECT';
  const protocol = flow.get('network.protocol');
  flow.set('event.category', web ? CATEGORY_WEB : CATEGORY_NETWORK);
  flow.set('event.type', EVENT_TYPES[(denied ? 1 : 0) | (protocol !== undefined && PARSED_PROTOCOLS.has(protocol) ? 2 : 0) | (web ? 4 : 0)]);
  if (decision !== null) {
    if (decision.severity !== null) flow.set('event.severity', SEVERITY_NUMBER[decision.severity]);
    if (decision.matchedRuleIds.length > 0) flow.set('egress.rules', decision.matchedRuleIds);
    if (decision.tags.length > 0) flow.set('tags', decision.tags);
    if (decision.reasons.length > 0) flow.set('egress.explanation', decision.reasons);
    // SPEC "Flow records": egress.shadow = [{rule, action}]; their reasons ("shadow: rule …") are in egress.explanation.
    if (decision.shadow !== undefined) flow.set('egress.shadow', decision.shadow.map((m) => ({ rule: m.rule, action: m.action })));
  }
  // event.outcome is the proxy's own: a block it enforced is a `success` (ECS categorization guide, firewall
  // example; docs/flow-record.md "Decision fields"); `failure` only when the flow itself failed.
  flow.set('event.outcome', flow.outcome);
  const durationNs = Number(endNs - flow.startedNs);
  flow.set('event.duration', durationNs);
  flow.set('event.start', flow.get('@timestamp'));
  flow.set('event.end', isoTime(flow.startedMs + Math.round(durationNs / 1e6)));
  flow.set('source.bytes', flow.sourceBytes);
  flow.set('destination.bytes', flow.destinationBytes);
  flow.set('network.bytes', flow.sourceBytes + flow.destinationBytes);
  // ECS network.direction: "from the point of view of the network perimeter" for a network device (outbound,
  // internal), not the host-based ingress/egress.
  flow.set('network.direction', flow.get('egress.destination.internal') === true ? 'internal' : 'outbound');
  const transport = flow.get('network.transport') ?? (flow.kind === 'dns' ? undefined : 'tcp');
  const sourceIp = flow.get('source.ip');
  const sourcePort = flow.get('source.port');
  const destinationIp = flow.get('destination.ip');
  const destinationPort = flow.get('destination.port');
  if (transport !== undefined && sourceIp !== undefined && sourcePort !== undefined && destinationIp !== undefined && destinationPort !== undefined) {
    const id = communityId(sourceIp, sourcePort, destinationIp, destinationPort, transport);
    if (id !== null) flow.set('network.community_id', id);
  }
  flow.set('url.full', fullUrl(flow));
  finishCiphers(flow);
  flow.set('related.ip', distinct(flow, IP_FIELDS));
  flow.set('related.hosts', distinct(flow, HOST_FIELDS));
  const user = flow.get('user.name');
  if (user !== undefined && user !== '') flow.set('related.user', [user]);
  flow.set('related.hash', distinct(flow, HASH_FIELDS));
  if (flow.errorCode !== null) {
    flow.set('error.code', flow.errorCode);
    flow.set('error.message', flow.errorMessage ?? '');
  }
}

/**
 * The ECS JSON line of a flow: every known field nested by its dotted name ({"source":{"ip":…}}), plus
 * what the decision and the end of the flow add. Call once, when the flow ends.
 */
export function serializeEcsRecord(flow: Flow, endNs: bigint = process.hrtime.bigint()): string {
  finishFields(flow, endNs);
  return `{${writeFields(flow.slotValues())}}`;
}

/** The same record as an object (tests, follow-up records). */
export function buildEcsRecord(flow: Flow, endNs: bigint = process.hrtime.bigint()): EcsRecord {
  return JSON.parse(serializeEcsRecord(flow, endNs)) as EcsRecord;
}

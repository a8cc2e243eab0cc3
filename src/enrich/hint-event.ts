/**
 * Endpoint telemetry events (Sysmon) normalized into one shape, whatever shipped them.
 *
 * Three wire shapes are accepted (SPEC "Endpoint process hints"):
 *  - raw Sysmon EventData names at the top level (NXLog `xm_json`, OTRF Security-Datasets exports): `EventID`,
 *    `UtcTime`, `Computer`/`Hostname`, `ProcessGuid`, `ProcessId`, `Image`, `User` "DOMAIN\user", … with values as
 *    numbers or strings and "-" for "no value";
 *  - Winlogbeat, either as its collector emits it (`winlog.event_id`, `winlog.event_data.*` with the same Sysmon
 *    names) or after its Sysmon ingest pipeline, which moves most EventData into ECS (`process.*`, `source.*`,
 *    `destination.*`, `user.name` + `user.domain`, `dns.question.name`, `@timestamp` from UtcTime) and deletes
 *    the originals (layout: elastic/beats x-pack/winlogbeat/module/sysmon/test/testdata/ingest/*.golden.json).
 *    Nested objects and dotted keys (`"winlog.event_id": 3`) both work.
 *  - only Event IDs 1 (process creation), 3 (network connection) and 22 (DNS query) — the ones that attribute a
 *    flow; other IDs are refused with a reason.
 *
 * Text an analyst reads — host, user, domain, image paths and names, command lines, original file name — is
 * neutralised here, the one place every hint passes through (src/enrich/neutralize.ts): control, bidi-override
 * and invisible characters become visible `<U+XXXX>` marks instead of refusing the event (an RLO in a file name
 * is a masquerading signal, T1036.002, not a reason to lose the attribution). Values that are keys or are parsed
 * (GUIDs, hashes, protocol, DNS query names) keep refusing control characters.
 *
 * `normalizeHintEvent` is pure and never throws: every input gets either an event or a code and a reason.
 * It reads only the keys it knows (no generic copy or merge), so `__proto__`/`constructor` keys in the input
 * cannot reach any prototype. Field references: Sysmon event schema (learn.microsoft.com/sysinternals/downloads/
 * sysmon, "Events"); ECS 8.x field reference for `process.*`, `source.*`, `dns.*`.
 */
import { isIPv4 } from 'node:net';
import type { ErrorCode } from '../errors.js';
import { formatIPv4, formatIPv6, isIPv4Mapped, parseIPv6Parts } from '../net/address-class.js';
import { neutralize } from './neutralize.js';

export type HintEventKind = 'network' | 'process' | 'dns';
export type HintShape = 'sysmon' | 'winlogbeat';

/** Facts every event carries (null = not in the event). */
interface HintEventBase {
  readonly shape: HintShape;
  /** Event time in ms since the epoch: Sysmon `UtcTime` (UTC, endpoint clock), else `@timestamp`. */
  readonly timeMs: number;
  /**
   * Endpoint host name, lower-cased (`Computer`, `Hostname`, `winlog.computer_name`, `host.name`). This and every
   * other text field below (image, names, user, domain, command lines, original file name) is neutralised.
   */
  readonly host: string | null;
  /** Sysmon ProcessGuid, lower-cased; null when absent or all zeros (Sysmon's "unknown process"). */
  readonly processGuid: string | null;
  readonly pid: number | null;
  /** Full image path as given; null when absent or `<unknown process>`. Over-long paths keep their tail. */
  readonly image: string | null;
  /** Basename of `image`, lower-cased (Windows `\` or `/` separators), e.g. `rundll32.exe`; then neutralised. */
  readonly processName: string | null;
  readonly user: string | null;
  readonly userDomain: string | null;
}

/** Event ID 3: a TCP or UDP connection seen by Sysmon on the endpoint. */
export interface NetworkHintEvent extends HintEventBase {
  readonly kind: 'network';
  readonly eventId: 3;
  readonly protocol: 'tcp' | 'udp' | null;
  /** Canonical text form: IPv4-mapped IPv6 becomes IPv4, other IPv6 is RFC 5952 compressed. */
  readonly sourceIp: string;
  readonly sourcePort: number;
  readonly destinationIp: string | null;
  readonly destinationPort: number | null;
  readonly destinationHostname: string | null;
  /** true when the endpoint opened the connection (Sysmon `Initiated`, ECS `network.direction: egress`). */
  readonly initiated: boolean | null;
}

export interface ProcessHashes {
  readonly md5: string | null;
  readonly sha1: string | null;
  readonly sha256: string | null;
  readonly imphash: string | null;
}

/** Event ID 1: process creation. Joined to network events by ProcessGuid (or host + pid when the guid is zero). */
export interface ProcessHintEvent extends HintEventBase {
  readonly kind: 'process';
  readonly eventId: 1;
  readonly parentImage: string | null;
  readonly parentName: string | null;
  readonly parentProcessGuid: string | null;
  readonly commandLine: string | null;
  /** The command line was longer than MAX_COMMAND_LINE and was cut. */
  readonly commandLineTruncated: boolean;
  readonly parentCommandLine: string | null;
  readonly originalFileName: string | null;
  /** From `Hashes` "MD5=…,SHA256=…,IMPHASH=…" (or ECS `process.hash.*`), lower-case hex; null when none. */
  readonly hashes: ProcessHashes | null;
}

/** Event ID 22: a DNS query made through the Windows resolver API, with the process that made it. */
export interface DnsHintEvent extends HintEventBase {
  readonly kind: 'dns';
  readonly eventId: 22;
  /** Lower-cased, without a trailing dot. */
  readonly queryName: string;
  /** Win32 status of the query (0 = success), null when absent. */
  readonly queryStatus: number | null;
  /** IP addresses in `QueryResults` (canonical form); CNAME and other records are skipped. */
  readonly queryResults: readonly string[];
}

export type HintEvent = NetworkHintEvent | ProcessHintEvent | DnsHintEvent;

export type NormalizeResult =
  | { readonly ok: true; readonly event: HintEvent }
  | { readonly ok: false; readonly code: ErrorCode; readonly reason: string };

export interface NormalizeOptions {
  /** The receiver's clock; with it, events more than MAX_FUTURE_MS ahead are refused. */
  readonly nowMs?: number;
}

// ---- limits ---------------------------------------------------------------------------------------------

/** Command lines longer than this are cut (and flagged): 32 KiB is the Windows CreateProcess limit (32,767). */
export const MAX_COMMAND_LINE = 32_768;
/** Image paths keep their last this-many characters, so the basename (process.name) survives. */
export const MAX_IMAGE = 1_024;
const MAX_SHORT = 256; // host, user, domain, guid, original file name
const MAX_HOSTNAME = 255; // DNS names (RFC 1035 §2.3.4 allows 253 + dot)
const MAX_QUERY_RESULTS = 32;
/** Deeper JSON than this is refused: Sysmon events are at most 4 levels deep even in ECS. */
export const MAX_DEPTH = 16;
/** More values than this in one event is refused: a Winlogbeat event has about 80. */
export const MAX_NODES = 4_096;
const MIN_TIME_MS = Date.UTC(2000, 0, 1);
const MAX_TIME_MS = Date.UTC(2100, 0, 1);
/** Endpoint clocks run ahead sometimes, but a day ahead is a broken clock or a forged event. */
export const MAX_FUTURE_MS = 24 * 3600_000;
/** Windows process ids are DWORDs. */
const MAX_PID = 0xffff_ffff;

/** Sysmon writes this Image when it could not resolve the process (e.g. it exited before the event was built). */
const UNKNOWN_IMAGE = '<unknown process>';
const ZERO_GUID = '{00000000-0000-0000-0000-000000000000}';

// "2020-07-22 03:27:52.839" (Sysmon UtcTime, UTC without a zone) or ISO 8601 ("2019-03-18T16:57:49.0897231Z").
const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/;
const GUID_RE = /^\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?$/;
const HEX_RE = /^[0-9a-f]+$/;
// Control characters never appear in GUIDs, hashes, protocols or DNS names: those fields refuse them. Text fields
// (names, paths, users, command lines) neutralise them instead.
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

// ---- reading the input ----------------------------------------------------------------------------------

type Json = Readonly<Record<string, unknown>>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function own(obj: Json, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

/**
 * Value at a dotted path, where any prefix may be spelled as one dotted key (`"winlog.event_data.Image"`,
 * `{"winlog.event_data": {"Image": …}}`, `{"winlog": {"event_data": {"Image": …}}}`). Own properties only.
 */
function readPath(obj: Json, path: readonly string[], from = 0): unknown {
  let key = '';
  for (let i = from; i < path.length; i++) {
    key = i === from ? (path[i] as string) : `${key}.${path[i] as string}`;
    const v = own(obj, key);
    if (v === undefined) continue;
    if (i === path.length - 1) return v;
    if (isObject(v)) {
      const found = readPath(v, path, i + 1);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Iterative depth and size check; stops at the first violation so a hostile value costs little. */
function checkStructure(root: Json): string | null {
  const stack: Array<{ readonly v: object; readonly d: number }> = [{ v: root, d: 1 }];
  let nodes = 0;
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    if (top.d > MAX_DEPTH) return `event is nested deeper than ${MAX_DEPTH} levels`;
    const children: readonly unknown[] = Array.isArray(top.v) ? top.v : Object.values(top.v);
    nodes += children.length;
    if (nodes > MAX_NODES) return `event has more than ${MAX_NODES} values`;
    for (const c of children) if (typeof c === 'object' && c !== null) stack.push({ v: c, d: top.d + 1 });
  }
  return null;
}

class Invalid extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly reason: string,
  ) {
    super(reason);
  }
}

function fail(field: string, why: string): never {
  throw new Invalid('HINT_INVALID', `${field}: ${why}`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  // Reasons are read by people too: the quoted value is neutralised like the fields (and JSON-escaped).
  if (typeof v === 'string') return v.length > 40 ? `"${neutralize(v.slice(0, 40))}…"` : JSON.stringify(neutralize(v));
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${neutralize(String(v).slice(0, 40))}`;
}

/** "-" and "" mean "no value" in Sysmon exports. */
function isAbsent(v: unknown): boolean {
  return v === undefined || v === null || v === '' || v === '-';
}

/** A string that is a key or gets parsed: control characters refuse it. */
function readString(v: unknown, field: string, max: number): string | null {
  const s = readRawText(v, field, max);
  if (s !== null && CONTROL_RE.test(s)) fail(field, 'contains control characters');
  return s;
}

/** A text field as sent (not yet neutralised): the caller neutralises after any case folding or splitting. */
function readRawText(v: unknown, field: string, max: number): string | null {
  if (isAbsent(v)) return null;
  if (typeof v !== 'string') fail(field, `expected a string, got ${describe(v)}`);
  if (v.length > max) fail(field, `longer than ${max} characters`);
  return v;
}

function neutralOrNull(s: string | null): string | null {
  return s === null ? null : neutralize(s);
}

/** A non-negative integer as a JSON number or a decimal string ("9384"), at most `max`. */
function readUint(v: unknown, field: string, max: number): number | null {
  if (isAbsent(v)) return null;
  let n: number;
  if (typeof v === 'number') {
    n = v;
  } else if (typeof v === 'string') {
    const s = v.trim();
    if (s.length === 0 || s.length > 16) fail(field, `not a number: ${describe(v)}`);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x30 || c > 0x39) fail(field, `not a decimal integer: ${describe(v)}`);
    }
    n = Number(s);
  } else {
    fail(field, `expected a number, got ${describe(v)}`);
  }
  if (!Number.isSafeInteger(n) || n < 0 || n > max) fail(field, `out of range 0–${max}: ${describe(v)}`);
  return n;
}

function readBool(v: unknown, field: string): boolean | null {
  if (isAbsent(v)) return null;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.toLowerCase();
    if (s === 'true') return true;
    if (s === 'false') return false;
  }
  fail(field, `expected true or false, got ${describe(v)}`);
}

/**
 * Canonical text form of an IP address, or null when `s` is not one: IPv4 dotted quad (strict, as Node's
 * net.isIPv4), IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack socket reports) as the IPv4 inside, other
 * IPv6 in RFC 5952 form (Sysmon writes `a00:20f:0:0:18a2:6e00:e0:ffff`, Node's sockets `a00:20f::18a2:…`).
 */
export function canonicalIp(s: string): string | null {
  if (s.indexOf(':') < 0) return isIPv4(s) ? s : null;
  const parts = parseIPv6Parts(s);
  if (parts === null) return null;
  if (isIPv4Mapped(parts)) return formatIPv4((((parts[6] ?? 0) << 16) | (parts[7] ?? 0)) >>> 0);
  return formatIPv6(parts);
}

function readIp(v: unknown, field: string): string | null {
  if (isAbsent(v)) return null;
  if (typeof v !== 'string') fail(field, `expected an IP address, got ${describe(v)}`);
  const ip = canonicalIp(v);
  if (ip === null) fail(field, `not an IP address: ${describe(v)}`);
  return ip;
}

function readTime(v: unknown, field: string, opts: NormalizeOptions): number {
  let ms: number;
  if (typeof v === 'number') {
    ms = v; // epoch milliseconds (some shippers send numbers)
  } else if (typeof v === 'string') {
    const m = TIME_RE.exec(v);
    if (m === null) fail(field, `not a timestamp: ${describe(v)}`);
    const [, y, mo, d, h, mi, s, frac, zone] = m;
    const month = Number(mo);
    const day = Number(d);
    if (month < 1 || month > 12 || day < 1 || day > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) {
      fail(field, `not a valid date: ${describe(v)}`);
    }
    ms = Date.UTC(Number(y), month - 1, day, Number(h), Number(mi), Number(s), Number((frac ?? '0').padEnd(3, '0').slice(0, 3)));
    if (zone !== undefined && zone !== 'Z') {
      const sign = zone.startsWith('-') ? -1 : 1;
      const digits = zone.slice(1).replace(':', '');
      ms -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000;
    }
  } else {
    fail(field, isAbsent(v) ? 'missing' : `expected a timestamp, got ${describe(v)}`);
  }
  if (!Number.isFinite(ms) || ms < MIN_TIME_MS || ms > MAX_TIME_MS) fail(field, `time out of range: ${describe(v)}`);
  if (opts.nowMs !== undefined && ms > opts.nowMs + MAX_FUTURE_MS) {
    fail(field, `${Math.round((ms - opts.nowMs) / 3600_000)} h ahead of the receiver's clock`);
  }
  return Math.floor(ms);
}

function readGuid(v: unknown, field: string): string | null {
  const s = readString(v, field, MAX_SHORT);
  if (s === null || s === ZERO_GUID) return null;
  const g = s.toLowerCase();
  if (!GUID_RE.test(g)) fail(field, `not a GUID: ${describe(v)}`);
  if (g === ZERO_GUID || g === ZERO_GUID.slice(1, -1)) return null;
  return g.startsWith('{') ? g : `{${g}}`;
}

/** Image paths as sent: keep the tail when too long, so that the basename stays right. Not yet neutralised. */
function readImage(v: unknown, field: string): string | null {
  if (isAbsent(v)) return null;
  if (typeof v !== 'string') fail(field, `expected a string, got ${describe(v)}`);
  if (v === UNKNOWN_IMAGE) return null;
  if (v.length > 32_768) fail(field, 'longer than 32768 characters');
  return v.length > MAX_IMAGE ? `…${v.slice(v.length - MAX_IMAGE + 1)}` : v;
}

/** The neutralised path and its neutralised lower-case basename (split and folded before marks are added). */
function imageAndName(image: string | null): { image: string | null; name: string | null } {
  return image === null ? { image: null, name: null } : { image: neutralize(image), name: neutralize(imageBaseName(image)) };
}

/** Basename of a Windows or POSIX path, lower-cased: what policy rules match `process.name` against. */
export function imageBaseName(image: string): string {
  const cut = Math.max(image.lastIndexOf('\\'), image.lastIndexOf('/'));
  return (cut >= 0 ? image.slice(cut + 1) : image).toLowerCase();
}

const HASH_LENGTHS: Readonly<Record<string, keyof ProcessHashes>> = { MD5: 'md5', SHA1: 'sha1', SHA256: 'sha256', IMPHASH: 'imphash' };
const HASH_SIZE: Readonly<Record<keyof ProcessHashes, number>> = { md5: 32, sha1: 40, sha256: 64, imphash: 32 };

function hexOrNull(v: unknown, kind: keyof ProcessHashes): string | null {
  if (typeof v !== 'string') return null;
  const h = v.trim().toLowerCase();
  return h.length === HASH_SIZE[kind] && HEX_RE.test(h) ? h : null;
}

/** Sysmon `Hashes`: "SHA1=AC93…,MD5=…,SHA256=…,IMPHASH=…" in the order of the HashAlgorithms setting. */
function parseHashes(v: unknown, field: string): ProcessHashes | null {
  const s = readString(v, field, 1_024);
  if (s === null) return null;
  const out: Record<keyof ProcessHashes, string | null> = { md5: null, sha1: null, sha256: null, imphash: null };
  let any = false;
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const kind = HASH_LENGTHS[part.slice(0, eq).trim().toUpperCase()];
    if (kind === undefined) continue; // SHA384 etc.: no ECS field we fill
    const hex = hexOrNull(part.slice(eq + 1), kind);
    if (hex !== null) {
      out[kind] = hex;
      any = true;
    }
  }
  return any ? out : null;
}

function ecsHashes(obj: unknown): ProcessHashes | null {
  if (!isObject(obj)) return null;
  const out = {
    md5: hexOrNull(own(obj, 'md5'), 'md5'),
    sha1: hexOrNull(own(obj, 'sha1'), 'sha1'),
    sha256: hexOrNull(own(obj, 'sha256'), 'sha256'),
    imphash: hexOrNull(own(obj, 'imphash'), 'imphash'),
  };
  return out.md5 ?? out.sha1 ?? out.sha256 ?? out.imphash ? out : null;
}

/** Sysmon `QueryResults`: "type:  5 github.map.fastly.net;::ffff:151.101.248.133;" → the IP addresses. */
function parseQueryResults(v: unknown): string[] {
  const out: string[] = [];
  const list = Array.isArray(v) ? v : typeof v === 'string' ? v.split(';') : [];
  for (const item of list) {
    if (typeof item !== 'string') continue;
    const s = item.trim();
    if (s === '' || s.startsWith('type:')) continue;
    const ip = s.length <= 45 ? canonicalIp(s) : null;
    if (ip !== null && !out.includes(ip)) out.push(ip);
    if (out.length >= MAX_QUERY_RESULTS) break;
  }
  return out;
}

/** "DOMAIN\\user" split on the raw text, each part then neutralised. */
function splitUser(user: string | null): { user: string | null; domain: string | null } {
  if (user === null) return { user: null, domain: null };
  const cut = user.indexOf('\\');
  if (cut < 0) return { user: neutralize(user), domain: null };
  const domain = user.slice(0, cut);
  const name = user.slice(cut + 1);
  return { user: name === '' ? null : neutralize(name), domain: domain === '' ? null : neutralize(domain) };
}

// ---- the two readers ------------------------------------------------------------------------------------

/** Field access for one shape: `sysmon(name)` reads a Sysmon EventData name, `ecs(path)` an ECS field. */
interface Reader {
  readonly shape: HintShape;
  sysmon(name: string): unknown;
  ecs(path: string): unknown;
}

const SEGMENTS = new Map<string, readonly string[]>();
function segments(path: string): readonly string[] {
  let s = SEGMENTS.get(path);
  if (s === undefined) {
    s = path.split('.');
    SEGMENTS.set(path, s); // keys are the literal paths in this file: bounded
  }
  return s;
}

function rawReader(obj: Json): Reader {
  return { shape: 'sysmon', sysmon: (name) => own(obj, name), ecs: () => undefined };
}

function winlogbeatReader(obj: Json): Reader {
  const eventData = readPath(obj, segments('winlog.event_data'));
  const data = isObject(eventData) ? eventData : null;
  return {
    shape: 'winlogbeat',
    sysmon: (name) => (data === null ? undefined : own(data, name)),
    ecs: (path) => readPath(obj, segments(path)),
  };
}

/** First present value: the Sysmon name (exact, as Sysmon wrote it), else the ECS field the pipeline made. */
function pick(r: Reader, sysmonName: string, ecsPath: string | null): { v: unknown; field: string } {
  const v = r.sysmon(sysmonName);
  if (!isAbsent(v) || ecsPath === null || r.shape === 'sysmon') return { v, field: sysmonName };
  return { v: r.ecs(ecsPath), field: ecsPath };
}

function looksLikeWinlogbeat(obj: Json): boolean {
  if (isObject(own(obj, 'winlog'))) return true;
  for (const k of Object.keys(obj)) if (k.startsWith('winlog.')) return true;
  return false;
}

// ---- normalization --------------------------------------------------------------------------------------

/** Turn one received value into a HintEvent, or say why not. Never throws. */
export function normalizeHintEvent(raw: unknown, opts: NormalizeOptions = {}): NormalizeResult {
  try {
    return { ok: true, event: normalizeOrThrow(raw, opts) };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, code: err.code, reason: err.reason };
    // A bug here must cost one event, not the batch; the reason says so.
    return { ok: false, code: 'HINT_INVALID', reason: `event could not be read: ${err instanceof Error ? err.message : 'unknown error'}` };
  }
}

function normalizeOrThrow(raw: unknown, opts: NormalizeOptions): HintEvent {
  if (!isObject(raw)) throw new Invalid('HINT_INVALID', `expected a JSON object, got ${describe(raw)}`);
  const shapeProblem = checkStructure(raw);
  if (shapeProblem !== null) throw new Invalid('HINT_INVALID', shapeProblem);

  const r = looksLikeWinlogbeat(raw) ? winlogbeatReader(raw) : rawReader(raw);
  checkProvider(r, raw);

  // Winlogbeat: winlog.event_id (a string since 7.x), or event.code; raw exports: EventID.
  let idField = r.shape === 'winlogbeat' ? 'winlog.event_id' : 'EventID';
  let idValue = r.shape === 'winlogbeat' ? r.ecs('winlog.event_id') : own(raw, 'EventID');
  if (isAbsent(idValue) && r.shape === 'winlogbeat') {
    idField = 'event.code';
    idValue = r.ecs('event.code');
  }
  if (isAbsent(idValue)) throw new Invalid('HINT_INVALID', `${idField}: missing`);
  const eventId = readUint(idValue, idField, 0xffff);
  if (eventId !== 1 && eventId !== 3 && eventId !== 22) {
    throw new Invalid('HINT_UNSUPPORTED', `Sysmon Event ID ${String(eventId)} is not used for attribution (only 1, 3 and 22 are)`);
  }

  const base = readBase(r, opts);
  if (eventId === 3) return readNetwork(r, base);
  if (eventId === 1) return readProcess(r, base);
  return readDns(r, base);
}

/** A Winlogbeat event from another provider reuses the same small event ids (a Security 1 is not a Sysmon 1). */
function checkProvider(r: Reader, raw: Json): void {
  const candidates =
    r.shape === 'winlogbeat'
      ? [r.ecs('winlog.provider_name'), r.ecs('winlog.channel'), r.ecs('event.provider')]
      : [own(raw, 'SourceName'), own(raw, 'ProviderName'), own(raw, 'Channel')];
  let seen: string | null = null;
  for (const c of candidates) {
    if (typeof c !== 'string' || c === '') continue;
    if (c.toLowerCase().includes('sysmon')) return;
    seen = c;
  }
  if (seen !== null) throw new Invalid('HINT_UNSUPPORTED', `not a Sysmon event (provider or channel "${seen.slice(0, 80)}")`);
}

// Object spread costs ~16 µs per event here (tsx/V8 slow path); events are built field by field instead.
type Base = HintEventBase;

function readBase(r: Reader, opts: NormalizeOptions): Base {
  const t = pick(r, 'UtcTime', '@timestamp');
  const timeMs = readTime(t.v, t.field, opts);

  // Winlogbeat: winlog.computer_name is the machine that logged the event; host.name is the shipper's host, which
  // differs under Windows Event Forwarding (events collected on a WEC server).
  let hostV: { v: unknown; field: string };
  if (r.shape === 'winlogbeat') {
    hostV = { v: r.ecs('winlog.computer_name'), field: 'winlog.computer_name' };
    if (isAbsent(hostV.v)) hostV = { v: r.ecs('host.name'), field: 'host.name' };
  } else {
    hostV = { v: r.sysmon('Computer'), field: 'Computer' };
    if (isAbsent(hostV.v)) hostV = { v: r.sysmon('Hostname'), field: 'Hostname' };
  }
  const host = neutralOrNull(readRawText(hostV.v, hostV.field, MAX_SHORT)?.toLowerCase() ?? null);

  const g = pick(r, 'ProcessGuid', 'process.entity_id');
  const processGuid = readGuid(g.v, g.field);
  const p = pick(r, 'ProcessId', 'process.pid');
  const pid = readUint(p.v, p.field, MAX_PID);
  const i = pick(r, 'Image', 'process.executable');
  const { image, name: processName } = imageAndName(readImage(i.v, i.field));

  // Raw Sysmon: User "DOMAIN\user". Winlogbeat's pipeline splits it into user.domain + user.name (and winlog.user
  // is Sysmon's own service account: never read it).
  const u = r.sysmon('User');
  let { user, domain } = splitUser(readRawText(u, 'User', MAX_SHORT));
  if (user === null && r.shape === 'winlogbeat') {
    const split = splitUser(readRawText(r.ecs('user.name'), 'user.name', MAX_SHORT));
    user = split.user;
    domain = neutralOrNull(readRawText(r.ecs('user.domain'), 'user.domain', MAX_SHORT)) ?? split.domain;
  }
  return {
    shape: r.shape,
    timeMs,
    host,
    processGuid,
    pid,
    image,
    processName,
    user,
    userDomain: domain,
  };
}

function readNetwork(r: Reader, base: Base): NetworkHintEvent {
  const si = pick(r, 'SourceIp', 'source.ip');
  const sourceIp = readIp(si.v, si.field);
  if (sourceIp === null) fail(si.field, 'missing (a network event needs SourceIp and SourcePort)');
  const sp = pick(r, 'SourcePort', 'source.port');
  const sourcePort = readUint(sp.v, sp.field, 65_535);
  if (sourcePort === null) fail(sp.field, 'missing (a network event needs SourceIp and SourcePort)');
  const di = pick(r, 'DestinationIp', 'destination.ip');
  const dp = pick(r, 'DestinationPort', 'destination.port');
  const dh = pick(r, 'DestinationHostname', 'destination.domain');
  const pr = pick(r, 'Protocol', 'network.transport');
  const protoText = readString(pr.v, pr.field, 16)?.toLowerCase() ?? null;
  let initiated: boolean | null;
  const ini = r.sysmon('Initiated');
  if (!isAbsent(ini)) {
    initiated = readBool(ini, 'Initiated');
  } else {
    const dir = r.ecs('network.direction');
    initiated = dir === 'egress' || dir === 'outbound' ? true : dir === 'ingress' || dir === 'inbound' ? false : null;
  }
  let destinationHostname: string | null = null;
  if (typeof dh.v === 'string' && !isAbsent(dh.v) && dh.v.length <= MAX_HOSTNAME && !CONTROL_RE.test(dh.v)) {
    destinationHostname = dh.v.toLowerCase(); // informational: a bad one is dropped, not a reason to refuse
  }
  return {
    shape: base.shape,
    timeMs: base.timeMs,
    host: base.host,
    processGuid: base.processGuid,
    pid: base.pid,
    image: base.image,
    processName: base.processName,
    user: base.user,
    userDomain: base.userDomain,
    kind: 'network',
    eventId: 3,
    protocol: protoText === 'tcp' || protoText === 'udp' ? protoText : null,
    sourceIp,
    sourcePort,
    destinationIp: readIp(di.v, di.field),
    destinationPort: readUint(dp.v, dp.field, 65_535),
    destinationHostname,
    initiated,
  };
}

function readProcess(r: Reader, base: Base): ProcessHintEvent {
  const pi = pick(r, 'ParentImage', 'process.parent.executable');
  const parent = imageAndName(readImage(pi.v, pi.field));
  const pg = pick(r, 'ParentProcessGuid', 'process.parent.entity_id');
  const cl = pick(r, 'CommandLine', 'process.command_line');
  const pcl = pick(r, 'ParentCommandLine', 'process.parent.command_line');
  const of = pick(r, 'OriginalFileName', 'process.pe.original_file_name');
  const command = readCommandLine(cl.v, cl.field);
  const parentCommand = readCommandLine(pcl.v, pcl.field);
  const hashesRaw = r.sysmon('Hashes');
  const hashes = isAbsent(hashesRaw) && r.shape === 'winlogbeat' ? ecsHashes(r.ecs('process.hash')) : parseHashes(hashesRaw, 'Hashes');
  return {
    shape: base.shape,
    timeMs: base.timeMs,
    host: base.host,
    processGuid: base.processGuid,
    pid: base.pid,
    image: base.image,
    processName: base.processName,
    user: base.user,
    userDomain: base.userDomain,
    kind: 'process',
    eventId: 1,
    parentImage: parent.image,
    parentName: parent.name,
    parentProcessGuid: readGuid(pg.v, pg.field),
    commandLine: command.text,
    commandLineTruncated: command.truncated,
    parentCommandLine: parentCommand.text,
    originalFileName: neutralOrNull(readRawText(of.v, of.field, MAX_SHORT)),
    hashes,
  };
}

function readCommandLine(v: unknown, field: string): { text: string | null; truncated: boolean } {
  if (isAbsent(v)) return { text: null, truncated: false };
  if (typeof v !== 'string') fail(field, `expected a string, got ${describe(v)}`);
  // Cut first, then neutralise: a mark is never cut in half (a pair cut in half shows as a <U+D8xx> mark).
  return v.length > MAX_COMMAND_LINE ? { text: neutralize(v.slice(0, MAX_COMMAND_LINE)), truncated: true } : { text: neutralize(v), truncated: false };
}

function readDns(r: Reader, base: Base): DnsHintEvent {
  const q = pick(r, 'QueryName', 'dns.question.name');
  let name = readString(q.v, q.field, MAX_HOSTNAME + 1);
  if (name === null) fail(q.field, 'missing (a DNS event needs QueryName)');
  name = name.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name === '' || name.length > MAX_HOSTNAME) fail(q.field, 'not a DNS name');
  let status: number | null;
  const st = r.sysmon('QueryStatus');
  if (!isAbsent(st)) status = readUint(st, 'QueryStatus', MAX_PID);
  else status = r.ecs('sysmon.dns.status') === 'SUCCESS' ? 0 : null;
  const resultsRaw = r.sysmon('QueryResults');
  return {
    shape: base.shape,
    timeMs: base.timeMs,
    host: base.host,
    processGuid: base.processGuid,
    pid: base.pid,
    image: base.image,
    processName: base.processName,
    user: base.user,
    userDomain: base.userDomain,
    kind: 'dns',
    eventId: 22,
    queryName: name,
    queryStatus: status,
    queryResults: parseQueryResults(isAbsent(resultsRaw) && r.shape === 'winlogbeat' ? r.ecs('dns.resolved_ip') : resultsRaw),
  };
}

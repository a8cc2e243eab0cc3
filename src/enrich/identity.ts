import { createHash, createHmac, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { LRUCache } from 'lru-cache';
import { EgressError } from '../errors.js';
import type { FieldValueOf } from '../flow/fields.js';
import { neutralize, noteNeutralized } from './neutralize.js';

/**
 * Who is behind a request, from the three identity sources a proxy can have besides endpoint telemetry:
 * proxy authentication (Proxy-Authorization: Basic against a users file), identity headers set by a trusted
 * downstream proxy, and a process claim header signed by the endpoint agent. Trust model: docs/process-hints.md.
 * Also the admin API's bearer-token check. Every name taken from a request is neutralised (src/enrich/
 * neutralize.ts) before it reaches the flow, and the field is listed in `egress.neutralized`.
 */

// ---- admin API bearer token ------------------------------------------------------------------------------

/**
 * RFC 9110 §11.4 `credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`, with the scheme
 * case-insensitive (§11.1) and RFC 6750 §2.1's `b64token` (= token68) as the credentials. Leading and trailing
 * whitespace (OWS around a field value, RFC 9110 §5.5) and HTAB beside SP are tolerated.
 */
const BEARER_CREDENTIALS = /^[ \t]*bearer[ \t]+([A-Za-z0-9\-._~+/]+=*)[ \t]*$/i;

/** The token of an `Authorization: Bearer <token>` header value, or null when it is not one. */
export function parseBearerToken(header: string | undefined): string | null {
  if (header === undefined || header.length > 4096) return null;
  return BEARER_CREDENTIALS.exec(header)?.[1] ?? null;
}

/**
 * Constant-time bearer check: both sides are hashed first, so the comparison costs the same whatever the
 * lengths and wherever they differ (timingSafeEqual needs equal lengths). A malformed header is compared too,
 * against nothing, so its rejection takes the same path.
 */
export function bearerTokenMatches(header: string | undefined, token: string): boolean {
  const given = parseBearerToken(header);
  const a = createHash('sha256').update(given ?? '').digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b) && given !== null;
}

/**
 * A header value as text: Node hands header bytes over as latin1, but agents and proxies send non-ASCII names in
 * UTF-8 (RFC 9110 §5.5 leaves obs-text to the recipient). Valid UTF-8 is read as UTF-8 — so `invoice\u202Eexe.pdf`
 * arrives as the override it is, not as "â\u0080®" — anything else stays as it came.
 */
function headerText(value: string): string {
  let ascii = true;
  for (let i = 0; i < value.length && ascii; i++) ascii = value.charCodeAt(i) < 0x80;
  if (ascii) return value;
  const bytes = Buffer.from(value, 'latin1');
  return isUtf8(bytes) ? bytes.toString('utf8') : value;
}

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

// ---- users file ------------------------------------------------------------------------------------------

/** One stored credential: scrypt parameters, salt and derived key (never the password). */
interface StoredCredential {
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly key: Buffer;
}

const SCRYPT_PREFIX = '$scrypt$';
/** Defaults for new hashes: N=2^15 costs ~50–100 ms and 32 MiB per check, so results are cached (below). */
const DEFAULT_SCRYPT = { N: 32768, r: 8, p: 1 } as const;
const KEY_BYTES = 32;

/** `user:$scrypt$N=32768,r=8,p=1$<salt base64>$<key base64>`: the users-file line for a password. */
export async function hashPassword(user: string, password: string): Promise<string> {
  if (!/^[^:\s]+$/.test(user)) throw new EgressError('CONFIG_INVALID', `user name "${user}" must not contain ":" or spaces`);
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEY_BYTES, { ...DEFAULT_SCRYPT, maxmem: 128 * DEFAULT_SCRYPT.N * DEFAULT_SCRYPT.r * 2 });
  const { N, r, p } = DEFAULT_SCRYPT;
  return `${user}:${SCRYPT_PREFIX}N=${N},r=${r},p=${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Parse a users file: one `user:$scrypt$…` line each; `#` comments and blank lines ignored. */
export function parseUsersFile(text: string, file: string): Map<string, StoredCredential> {
  const users = new Map<string, StoredCredential>();
  const errors: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const user = line.slice(0, colon);
    const cred = parseCredential(line.slice(colon + 1));
    if (colon <= 0 || cred === null) {
      errors.push(`${file}:${i + 1}: expected "user:$scrypt$N=…,r=…,p=…$salt$key" (make one with \`egress-inspector user-hash USER\`)`);
      return;
    }
    if (users.has(user)) errors.push(`${file}:${i + 1}: user "${user}" is listed twice`);
    users.set(user, cred);
  });
  if (errors.length > 0) throw new EgressError('CONFIG_INVALID', errors.join('\n'));
  return users;
}

function parseCredential(text: string): StoredCredential | null {
  if (!text.startsWith(SCRYPT_PREFIX)) return null;
  const [params, salt, key] = text.slice(SCRYPT_PREFIX.length).split('$');
  if (params === undefined || salt === undefined || key === undefined) return null;
  const values = new Map(params.split(',').map((kv) => kv.split('=') as [string, string]));
  const N = Number(values.get('N'));
  const r = Number(values.get('r'));
  const p = Number(values.get('p'));
  const ok = Number.isInteger(N) && N >= 1024 && (N & (N - 1)) === 0 && Number.isInteger(r) && r >= 1 && r <= 32 && Number.isInteger(p) && p >= 1 && p <= 16;
  const saltBytes = Buffer.from(salt, 'base64');
  const keyBytes = Buffer.from(key, 'base64');
  if (!ok || saltBytes.length < 8 || keyBytes.length < 16) return null;
  return { N, r, p, salt: saltBytes, key: keyBytes };
}

export async function loadUsersFile(file: string): Promise<Map<string, StoredCredential>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new EgressError('CONFIG_READ', `${file}: cannot read the users file`, { cause: err });
  }
  return parseUsersFile(text, file);
}

export type AuthResult = { readonly ok: true; readonly user: string } | { readonly ok: false; readonly reason: string };

/**
 * Proxy-Authorization: Basic (RFC 7617) checked against scrypt hashes. scrypt is slow on purpose, so a
 * successful check is cached by a hash of the header value (bounded, short TTL): a client sends the same
 * header on every request. Failed checks are not cached, so a password change takes effect at once.
 */
export class ProxyAuthenticator {
  private readonly users: ReadonlyMap<string, StoredCredential>;
  private readonly verified = new LRUCache<string, string>({ max: 10_000, ttl: 5 * 60_000 });
  /**
   * scrypt runs on libuv's small thread pool, which the flow log's file writes share: a client spraying
   * random credentials must not be able to starve it. At most MAX_CHECKS run at once, MAX_QUEUED wait;
   * beyond that a check fails at once (the client gets 407 and may retry).
   */
  private running = 0;
  private readonly queue: Array<() => void> = [];

  constructor(users: ReadonlyMap<string, StoredCredential>) {
    this.users = users;
  }

  private async withSlot<T>(work: () => Promise<T>): Promise<T | null> {
    if (this.running >= MAX_CHECKS) {
      if (this.queue.length >= MAX_QUEUED) return null;
      await new Promise<void>((resolve) => this.queue.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      const next = this.queue.shift();
      // Hand the slot straight to the next waiter; free it only when nobody waits.
      if (next !== undefined) next();
      else this.running--;
    }
  }

  async authenticate(header: string | undefined): Promise<AuthResult> {
    if (header === undefined) return { ok: false, reason: 'no Proxy-Authorization header' };
    const cacheKey = createHash('sha256').update(header).digest('base64');
    const cached = this.verified.get(cacheKey);
    if (cached !== undefined) return { ok: true, user: cached };
    const match = BASIC_CREDENTIALS.exec(header);
    if (match === null) return { ok: false, reason: 'Proxy-Authorization is not Basic' };
    const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return { ok: false, reason: 'malformed Basic credentials' };
    const user = decoded.slice(0, colon);
    const cred = this.users.get(user);
    // Spend the same work for an unknown user as for a wrong password (no user enumeration by timing).
    const target = cred ?? DUMMY_CREDENTIAL;
    const key = await this.withSlot(() =>
      scrypt(decoded.slice(colon + 1), target.salt, target.key.length, { N: target.N, r: target.r, p: target.p, maxmem: 256 * target.N * target.r }),
    );
    if (key === null) return { ok: false, reason: 'too many authentication attempts at once' };
    if (cred === undefined || !timingSafeEqual(key, cred.key)) return { ok: false, reason: `wrong user name or password` };
    this.verified.set(cacheKey, user);
    return { ok: true, user };
  }
}

/** Concurrent scrypt checks, and checks allowed to wait for one (see ProxyAuthenticator). */
const MAX_CHECKS = 2;
const MAX_QUEUED = 64;

/** RFC 7617 §2: `Basic <base64(user:password)>`. */
const BASIC_CREDENTIALS = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i;
const PID_TEXT = /^\d{1,10}$/;

const DUMMY_CREDENTIAL: StoredCredential = { ...DEFAULT_SCRYPT, salt: Buffer.alloc(16, 7), key: Buffer.alloc(KEY_BYTES) };

// ---- signed process claims -------------------------------------------------------------------------------

export interface ProcessClaim {
  readonly name: string;
  readonly pid: number | null;
  /** true only when the endpoint agent's HMAC over the claim checks out and the claim is fresh. */
  readonly verified: boolean;
  /** Why an unverified claim is unverified. */
  readonly reason: string | null;
}

/** A claim older or newer than this is refused as a replay. */
const CLAIM_MAX_SKEW_MS = 5 * 60_000;
const MAX_CLAIM_LENGTH = 1024;

/**
 * `X-Egress-Process: name=chrome.exe; pid=4242; ts=1795699520; sig=<hex HMAC-SHA256>` where the HMAC is over
 * the header text before `; sig=`, keyed with the secret shared with the endpoint agent. Without a key, or
 * with a bad or stale signature, the claim is still recorded — as unverified: a spoofing signal, not a fact.
 */
export function parseProcessClaim(rawHeader: string | undefined, hmacKey: string | null, nowMs: number): ProcessClaim | null {
  if (rawHeader === undefined || rawHeader.length === 0) return null;
  // The agent signs the UTF-8 text (signProcessClaim): verify over the same text, then neutralise the name.
  const header = headerText(rawHeader);
  if (header.length > MAX_CLAIM_LENGTH) return { name: '', pid: null, verified: false, reason: 'claim too long' };
  const sigAt = header.lastIndexOf('; sig=');
  const signed = sigAt === -1 ? header : header.slice(0, sigAt);
  const fields = new Map<string, string>();
  for (const part of signed.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const name = neutralize((fields.get('name') ?? '').toLowerCase());
  const pidText = fields.get('pid');
  const pid = pidText !== undefined && PID_TEXT.test(pidText) ? Number(pidText) : null;
  if (name === '') return { name, pid, verified: false, reason: 'claim has no name' };
  if (hmacKey === null) return { name, pid, verified: false, reason: 'no identity.process_hmac_key configured' };
  if (sigAt === -1) return { name, pid, verified: false, reason: 'claim is not signed' };
  const ts = Number(fields.get('ts'));
  if (!Number.isFinite(ts) || Math.abs(nowMs - ts * 1000) > CLAIM_MAX_SKEW_MS) return { name, pid, verified: false, reason: 'claim timestamp missing or stale' };
  const given = Buffer.from(header.slice(sigAt + 6).trim(), 'hex');
  const wanted = createHmac('sha256', hmacKey).update(signed).digest();
  if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) return { name, pid, verified: false, reason: 'bad signature' };
  return { name, pid, verified: true, reason: null };
}

/** What an endpoint agent sends: the header value for a claim, signed with the shared key. */
export function signProcessClaim(name: string, pid: number, hmacKey: string, nowMs: number): string {
  const signed = `name=${name}; pid=${pid}; ts=${Math.floor(nowMs / 1000)}`;
  return `${signed}; sig=${createHmac('sha256', hmacKey).update(signed).digest('hex')}`;
}

// ---- per request -----------------------------------------------------------------------------------------

export interface RequestIdentityOptions {
  readonly authenticator: ProxyAuthenticator | null;
  readonly requireAuth: boolean;
  /** true when the address is a downstream proxy whose identity headers are believed. */
  readonly isTrustedProxy: (ip: string) => boolean;
  readonly userHeaders: readonly string[];
  readonly forwardedFor: boolean;
  readonly processHeader: string;
  readonly processHmacKey: string | null;
  readonly now?: () => number;
}

/** The facts identity adds to a flow, or the reason it must be refused with 407. */
export type IdentityOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** The flow fields identity reads and writes. */
type IdentityField =
  | 'source.ip'
  | 'user.name'
  | 'client.ip'
  | 'egress.claim.process_name'
  | 'egress.claim.reason'
  | 'egress.claim.pid'
  | 'egress.claim.verified'
  | 'egress.neutralized';

interface FlowLike {
  get<K extends IdentityField>(name: K): FieldValueOf<K> | undefined;
  set<K extends IdentityField>(name: K, value: FieldValueOf<K> | undefined): void;
}

/** Set a name taken from the request (already neutralised) and list the field when it carries marks. */
function setName(flow: FlowLike, field: 'user.name' | 'egress.claim.process_name', text: string): void {
  flow.set(field, text);
  flow.set('egress.neutralized', noteNeutralized(flow.get('egress.neutralized'), field, text));
}

/** X-Forwarded-For: walk from the right past trusted proxies; the first other address is the client. */
function clientFromForwardedFor(header: string, isTrusted: (ip: string) => boolean): string | null {
  const hops = header.split(',').map((h) => h.trim()).filter((h) => h !== '');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (isIP(hop) === 0) return null;
    if (!isTrusted(hop)) return hop;
  }
  return null;
}

/**
 * Identity for one request: proxy authentication first (it is the strongest claim a request carries),
 * then identity headers — believed only from trusted downstream proxies — then the endpoint agent's process
 * claim, recorded verified or not. The header values are stripped before forwarding (actions/headers).
 */
export async function identifyRequest(flow: FlowLike, headers: IncomingHttpHeaders, opts: RequestIdentityOptions): Promise<IdentityOutcome> {
  if (opts.authenticator !== null) {
    const header = headers['proxy-authorization'];
    const result = await opts.authenticator.authenticate(header);
    if (result.ok) setName(flow, 'user.name', neutralize(result.user));
    // Wrong credentials are refused even when authentication is optional: a client that tries must succeed.
    else if (opts.requireAuth || header !== undefined) return { ok: false, reason: result.reason };
  }
  const sourceIp = flow.get('source.ip') ?? '';
  if (opts.isTrustedProxy(sourceIp)) {
    if (flow.get('user.name') === undefined) {
      for (const name of opts.userHeaders) {
        const value = headers[name];
        if (typeof value === 'string' && value !== '' && value.length <= 256) {
          setName(flow, 'user.name', neutralize(headerText(value)));
          break;
        }
      }
    }
    const xff = headers['x-forwarded-for'];
    if (opts.forwardedFor && typeof xff === 'string') {
      const client = clientFromForwardedFor(xff, opts.isTrustedProxy);
      if (client !== null) flow.set('client.ip', client);
    }
  }
  const claimHeader = headers[opts.processHeader];
  const claim = parseProcessClaim(typeof claimHeader === 'string' ? claimHeader : undefined, opts.processHmacKey, (opts.now ?? Date.now)());
  if (claim !== null && claim.name !== '') {
    setName(flow, 'egress.claim.process_name', claim.name); // neutralised by parseProcessClaim
    if (claim.pid !== null) flow.set('egress.claim.pid', claim.pid);
    flow.set('egress.claim.verified', claim.verified);
    if (claim.reason !== null) flow.set('egress.claim.reason', claim.reason);
  }
  return { ok: true };
}

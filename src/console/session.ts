/**
 * Console sign-in: the admin token, typed once into a form, becomes a server-side session named by a random
 * cookie, so the token itself never sits in the browser (not in a cookie, not in local storage, not in a URL).
 *
 * - Cookie (RFC 6265 §4.1.2): `HttpOnly` (scripts cannot read it), `SameSite=Strict` (no cross-site request
 *   carries it, the main CSRF defence), `Path=/ui`, `Secure` when the console is reached over TLS, no `Expires`
 *   (a browser session) while the server forgets it after `idleMs` without use or `maxAgeMs` after sign-in.
 * - CSRF (OWASP CSRF Prevention Cheat Sheet, "Synchronizer token" + "Verifying origin with standard headers"):
 *   every POST from a signed-in page carries the session's own random token in a hidden field, compared in
 *   constant time, and a request whose `Origin` (or, without it, `Referer`) names another site is refused —
 *   also for the sign-in form itself, against login CSRF.
 * - Bounded: at most `maxSessions` sessions (the oldest sign-in is dropped first); expired ones are swept on use.
 * - Failed sign-ins are slowed per client address (a fixed delay after a failure, bounded table) to make token
 *   guessing from a browser pointless; the token is compared as SHA-256 digests (constant time, any length).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'ei_session';

export interface Session {
  readonly id: string;
  readonly csrf: string;
  readonly createdMs: number;
  lastMs: number;
}

export interface SessionOptions {
  /** Forget a session unused for this long. */
  readonly idleMs: number;
  /** Forget a session this long after sign-in, used or not. */
  readonly maxAgeMs: number;
  readonly maxSessions?: number;
  readonly now?: () => number;
}

export function sameSecret(given: string, wanted: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(wanted).digest();
  return timingSafeEqual(a, b);
}

export class Sessions {
  private readonly sessions = new Map<string, Session>();
  private readonly idleMs: number;
  private readonly maxAgeMs: number;
  private readonly maxSessions: number;
  private readonly now: () => number;

  constructor(options: SessionOptions) {
    this.idleMs = options.idleMs;
    this.maxAgeMs = options.maxAgeMs;
    this.maxSessions = options.maxSessions ?? 256;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.sessions.size;
  }

  create(): Session {
    const nowMs = this.now();
    this.sweep(nowMs);
    if (this.sessions.size >= this.maxSessions) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    const session: Session = { id: randomBytes(32).toString('base64url'), csrf: randomBytes(24).toString('base64url'), createdMs: nowMs, lastMs: nowMs };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The session named by the request's Cookie header, refreshed; null when none or expired. */
  fromCookieHeader(header: string | undefined): Session | null {
    const id = readCookie(header, SESSION_COOKIE);
    if (id === null) return null;
    const session = this.sessions.get(id);
    if (session === undefined) return null;
    const nowMs = this.now();
    if (this.expired(session, nowMs)) {
      this.sessions.delete(id);
      return null;
    }
    session.lastMs = nowMs;
    return session;
  }

  destroy(id: string): void {
    this.sessions.delete(id);
  }

  private expired(session: Session, nowMs: number): boolean {
    return nowMs - session.lastMs > this.idleMs || nowMs - session.createdMs > this.maxAgeMs;
  }

  private sweep(nowMs: number): void {
    for (const [id, session] of this.sessions) if (this.expired(session, nowMs)) this.sessions.delete(id);
  }
}

const COOKIE_VALUE = /^[A-Za-z0-9_-]{1,128}$/;

/** One cookie's value from a Cookie header (RFC 6265 §5.4), or null; values that are not ours are ignored. */
export function readCookie(header: string | undefined, name: string): string | null {
  if (header === undefined) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    if (COOKIE_VALUE.test(value)) return value;
  }
  return null;
}

export function sessionCookie(id: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/ui; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}

/**
 * Whether a state-changing request comes from the console's own pages: its Origin (or Referer, when a browser
 * sent no Origin) must name the host the request was sent to. A request with neither is a non-browser client
 * (curl): it still needs the session cookie and the CSRF token, which a cross-site page cannot obtain.
 */
export function sameOrigin(headers: { readonly origin?: string | undefined; readonly referer?: string | undefined; readonly host?: string | undefined }): boolean {
  const source = headers.origin ?? headers.referer;
  if (source === undefined) return true;
  if (source === 'null' || headers.host === undefined) return false;
  try {
    return new URL(source).host === headers.host;
  } catch {
    return false;
  }
}

/** Failed sign-ins per client address: each failure makes the next attempt wait `delayMs` (bounded table). */
export class SignInThrottle {
  private readonly failures = new Map<string, number>();
  constructor(
    private readonly delayMs: number,
    private readonly maxClients = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** ms the client must still wait before its next attempt is checked (0: go ahead). */
  waitMs(client: string): number {
    const last = this.failures.get(client);
    if (last === undefined) return 0;
    const left = last + this.delayMs - this.now();
    if (left <= 0) this.failures.delete(client);
    return Math.max(0, left);
  }

  failed(client: string): void {
    if (!this.failures.has(client) && this.failures.size >= this.maxClients) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    this.failures.delete(client);
    this.failures.set(client, this.now());
  }

  succeeded(client: string): void {
    this.failures.delete(client);
  }
}

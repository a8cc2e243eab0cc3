/**
 * The error catalogue: every error the product reports has a stable code, so operators can alert on it
 * and tests can assert on it. Messages say what was wrong in plain words; codes never change meaning.
 */
export const ERROR_CODES = {
  // configuration (src/config)
  CONFIG_INVALID: 'The configuration file has unknown keys or bad values',
  CONFIG_READ: 'The configuration file could not be read or parsed',
  // policy (src/policy)
  POLICY_INVALID: 'A policy file is not valid',
  POLICY_READ: 'A policy file could not be read',
  // client requests (src/listeners/proxy)
  BAD_REQUEST: 'The client request is malformed',
  BAD_TARGET: 'The request target or CONNECT authority is not valid',
  HEADERS_TOO_LARGE: 'The request headers exceed the limit',
  CLIENT_DENIED: 'The client address is not in proxy.clients',
  AUTH_REQUIRED: 'Proxy authentication is required, or the credentials are wrong',
  TOO_MANY_FLOWS: 'The proxy is at its concurrent flow limit',
  CLIENT_ABORTED: 'The client closed the connection before the flow ended',
  CLIENT_TIMEOUT: 'The client was idle for too long',
  // destinations (src/net, src/actions)
  RESOLVE_FAILED: 'The destination name could not be resolved',
  UPSTREAM_CONNECT_FAILED: 'The destination refused or reset the connection',
  UPSTREAM_TIMEOUT: 'The destination did not answer in time',
  UPSTREAM_ABORTED: 'The destination closed the connection mid-response',
  // TLS observation (src/parsers, src/fingerprint)
  TLS_PARSE: 'The TLS ClientHello is malformed',
  TLS_INCOMPLETE: 'The TLS ClientHello is truncated',
  CA_INVALID: 'The interception CA (tls.ca_dir) is missing, unreadable, exposed or not usable',
  TLS_CLIENT_REJECTED: 'The client aborted the TLS handshake against the interception certificate (e.g. certificate pinning)',
  TLS_UPSTREAM_FAILED: "The destination's TLS handshake failed or its certificate did not verify",
  // hints and admin API (src/enrich, src/listeners/admin)
  UNAUTHORIZED: 'The admin API bearer token is missing or wrong',
  HINT_INVALID: 'A process hint event is not valid',
  HINT_UNSUPPORTED: 'A hint event is not a Sysmon Event ID 1, 3 or 22',
  HINT_PARSE: 'A hint body or NDJSON line is not valid JSON',
  HINT_TOO_MANY: 'A hint request has more events than the per-request limit',
  HINT_CONTENT_TYPE: 'A hint request has a content type that is not JSON or NDJSON',
  HINT_STORE_FAILED: 'The hint store could not take an event (e.g. Redis unavailable)',
  BODY_TOO_LARGE: 'The request body exceeds the limit',
  // detection engine (src/scoring, src/enrich/baseline)
  BASELINE_STORE_FAILED: 'The baseline store could not be opened (unwritable directory, corrupt or foreign SQLite file, Redis unreachable)',
  // DNS (src/listeners/dns, src/actions/forward-dns)
  DNS_FORMERR: 'The DNS message is malformed',
  DNS_UPSTREAM_FAILED: 'No DNS upstream answered',
  // shutdown and bugs
  SHUTDOWN: 'The proxy shut down before the flow ended',
  INTERNAL: 'An unexpected error inside the proxy (a bug: please report it with the flow record)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error with a stable code. `detail` is extra structured context safe to log (never secrets). */
export class EgressError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EgressError';
    this.code = code;
  }
}

export function isEgressError(err: unknown): err is EgressError {
  return err instanceof EgressError;
}

/** The message of anything thrown, for an error text that names the cause. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

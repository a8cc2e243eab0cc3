/**
 * The configuration: its defaults (SPEC "Configuration"), its schema, and the `Config` type the rest of the
 * program reads.
 *
 * Keys keep their YAML spelling (snake_case) in TypeScript too, so one name is used in the file, in error
 * messages, in docs/configuration.md and in code, with no mapping layer to get wrong. Durations are whole
 * milliseconds, listen addresses `{ host, port }`, CIDRs validated strings.
 *
 * Adding a section (e.g. `hints:` in a later issue): add its defaults to DEFAULTS, its shape to
 * `configSchema` with `section({...})`, its type to `Config`, and document it; `load.ts` needs no change
 * unless the section holds relative paths.
 */
import { isIPv4, isIPv6 } from 'node:net';
import os from 'node:os';
import * as z from 'zod';
import { parseDuration, type Parsed } from './duration.js';
import { parseCidr, parseListenAddress, parseServerAddress, type HostPort } from './listen.js';

export type { HostPort } from './listen.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The environment variable that supplies `admin.token` when the file leaves it null. */
export const ADMIN_TOKEN_ENV = 'EGRESS_ADMIN_TOKEN';

export interface Config {
  readonly proxy: {
    readonly listen: HostPort;
    /** CIDRs of the clients allowed to use the proxy. */
    readonly clients: readonly string[];
    /** Concurrent flows; a new one over it gets 503. */
    readonly max_flows: number;
    /** Request line + headers; over it gets 431. */
    readonly max_header_bytes: number;
    /** Milliseconds. */
    readonly timeouts: {
      readonly headers: number;
      readonly connect: number;
      readonly response: number;
      readonly idle: number;
      /** How long a tunnel whose decision needs the ClientHello waits for it before judging it "not TLS". */
      readonly client_hello: number;
    };
    /** Milliseconds in-flight flows may take to finish on shutdown. */
    readonly drain: number;
    /** Worker processes sharing the listeners (node:cluster); 1 = no cluster. `auto` is resolved to the core count at load. */
    readonly workers: number;
  };
  readonly dns: {
    /** null: the DNS forwarder is disabled. */
    readonly listen: HostPort | null;
    readonly upstream: readonly HostPort[];
    /** null: a blocked query gets NXDOMAIN; an IP: it gets an A/AAAA answer with this address (docs/dns.md). */
    readonly sinkhole: string | null;
    /** Per-try upstream timeout, milliseconds. */
    readonly timeout: number;
    /** Rounds over the upstream list before SERVFAIL. */
    readonly tries: number;
    /** Milliseconds an idle client TCP connection is kept. */
    readonly tcp_idle: number;
    readonly max_tcp_connections: number;
    /** The name-IP memory: entries per table, and how long an answer is remembered (milliseconds). */
    readonly memory: { readonly size: number; readonly ttl: number };
    /**
     * Answer cache: up to `size` answers (0: off, the default), each kept for its smallest TTL but never longer
     * than `max_ttl` milliseconds; negative answers (RFC 2308) for at most `negative_ttl`.
     */
    readonly cache: { readonly size: number; readonly max_ttl: number; readonly negative_ttl: number };
    /** DNS signal thresholds (docs/dns.md); windows in milliseconds. */
    readonly signals: {
      readonly window: number;
      readonly unique_subdomains: number;
      readonly burst_window: number;
      readonly txt_queries: number;
      readonly nxdomain: number;
    };
  };
  readonly resolver: {
    /** Empty: use dns.upstream; both empty: the nameservers of /etc/resolv.conf. */
    readonly servers: readonly HostPort[];
    /** Milliseconds. */
    readonly timeout: number;
    readonly cache_size: number;
    /** Milliseconds. */
    readonly max_ttl: number;
  };
  readonly network: {
    readonly internal: readonly string[];
    /** Treat loopback as an ordinary destination (labs, tests); never-dialled addresses stay refused. */
    readonly allow_loopback: boolean;
  };
  readonly admin: {
    readonly listen: HostPort;
    /** From the file, else from EGRESS_ADMIN_TOKEN; null: /v1/* is refused. */
    readonly token: string | null;
  };
  readonly policy: {
    /** Absolute paths. */
    readonly files: readonly string[];
    /** Milliseconds. */
    readonly hint_wait: number;
  };
  readonly log: {
    /** "-" for stdout, else an absolute path. */
    readonly flows: string;
    readonly level: LogLevel;
  };
  readonly tls: {
    /** Absolute path. */
    readonly ca_dir: string;
    /** Absolute paths. */
    readonly upstream_ca: readonly string[];
    /** Observe ClientHellos of spliced tunnels (SNI, JA3, JA4); false only for benchmarks or troubleshooting. */
    readonly observe: boolean;
  };
  readonly hints: {
    /** "memory", or a redis:// URL so that replicas share hints. */
    readonly store: string;
    /** Milliseconds either side of a connection within which a telemetry event can attribute it. */
    readonly window: number;
    /** Milliseconds: a client that sent telemetry within this is a managed endpoint (its flows may wait). */
    readonly managed_window: number;
    readonly max_entries: number;
    readonly max_body_bytes: number;
  };
  readonly scoring: {
    /** false: no features, no baselines, no beacons — egress.score holds only the built-in signals. */
    readonly enabled: boolean;
    /** Absolute paths of the data files (docs/scoring.md); null: the shipped file under policies/data/. */
    readonly c2_uri_shapes: string | null;
    readonly processes: string | null;
    readonly user_agents: string | null;
    readonly tls_families: string | null;
    /** Compute FoxIO's JA4H on plain HTTP requests (FoxIO License 1.1: see docs/fingerprints.md). */
    readonly ja4h: boolean;
    readonly beacon: {
      readonly min_connections: number;
      readonly max_keys: number;
      /** Milliseconds a key is kept after its last connection. */
      readonly ttl: number;
    };
  };
  readonly baseline: {
    /** `sqlite` (embedded, in `dir`), `memory` (lost at restart), or a redis:// URL shared by replicas. */
    readonly store: string;
    /** Absolute path of the SQLite data directory. */
    readonly dir: string;
    /** Milliseconds from the first start during which rarity features do not score. */
    readonly learning: number;
    /** Milliseconds after which a count has halved. */
    readonly half_life: number;
    readonly max_entries: number;
  };
  readonly console: {
    /** Serve the operator console under /ui/ on the admin listener (docs/console.md). */
    readonly enabled: boolean;
    /** Flows kept in memory for the live view and the first page. */
    readonly recent: number;
    /** The most flows a second streamed to one browser; more are sampled, and the page says so. */
    readonly live_rate: number;
    /** Allowed, non-alert flows kept (memory and history) per second at most; blocks and alerts always are. */
    readonly max_rate: number;
    /** The sign-in secret when admin.token is null: read from this file, created (0600) with a random token if absent. Absolute path. */
    readonly token_file: string;
    /** Mark the session cookie Secure over plain HTTP (a TLS-terminating reverse proxy in front). */
    readonly secure_cookie: boolean;
    /** Milliseconds: a session unused this long is signed out; and a session's whole life. */
    readonly session_idle: number;
    readonly session_max_age: number;
    readonly history: {
      /** `sqlite`: the last hours in `<dir>/flows.sqlite`; `none`: the console shows only the in-memory flows. */
      readonly store: 'sqlite' | 'none';
      /** Absolute path. */
      readonly dir: string;
      /** Milliseconds a flow is kept. */
      readonly retention: number;
      readonly max_rows: number;
    };
  };
  readonly geoip: {
    /** Absolute paths of MaxMind `.mmdb` files (City or Country; ASN); null: no lookup. */
    readonly city: string | null;
    readonly asn: string | null;
  };
  readonly identity: {
    /** Absolute path of the users file for Proxy-Authorization: Basic; null disables proxy authentication. */
    readonly users_file: string | null;
    /** Refuse (407) requests without valid proxy credentials. */
    readonly require_auth: boolean;
    readonly realm: string;
    /** CIDRs of downstream proxies whose identity headers are believed. */
    readonly trusted_proxies: readonly string[];
    /** Lower-case header names carrying the user name, from trusted proxies only. */
    readonly user_headers: readonly string[];
    /** Take the original client address from X-Forwarded-For of trusted proxies (client.ip). */
    readonly forwarded_for: boolean;
    /** Lower-case name of the endpoint agent's process claim header. */
    readonly process_header: string;
    /** Shared HMAC key that signs process claims; null: every claim is recorded as unverified. */
    readonly process_hmac_key: string | null;
  };
}

/**
 * SPEC's defaults, written as they would be in YAML: they go through the same parsers as a file's values,
 * so a default can never be something the schema would refuse.
 */
export const DEFAULTS = {
  proxy: {
    listen: '0.0.0.0:3128',
    clients: ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
    max_flows: 10_000,
    max_header_bytes: 16_384,
    timeouts: { headers: '10s', connect: '10s', response: '60s', idle: '300s', client_hello: '10s' },
    drain: '10s',
    workers: 1,
  },
  dns: {
    listen: '0.0.0.0:5300',
    upstream: [],
    sinkhole: null,
    timeout: '2s',
    tries: 2,
    tcp_idle: '10s',
    max_tcp_connections: 1_000,
    memory: { size: 100_000, ttl: '1h' },
    cache: { size: 0, max_ttl: '300s', negative_ttl: '60s' },
    signals: { window: '1h', unique_subdomains: 100, burst_window: '1m', txt_queries: 50, nxdomain: 20 },
  },
  resolver: { servers: [], timeout: '2s', cache_size: 10_000, max_ttl: '300s' },
  network: {
    // Loopback, RFC 1918, link-local (incl. cloud metadata 169.254.169.254), CGNAT, "this network",
    // IETF protocol assignments, benchmarking, multicast, reserved; IPv6 unspecified, loopback, ULA,
    // link-local, multicast, local-use NAT64 (RFC 8215).
    internal: [
      '127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10',
      '0.0.0.0/8', '192.0.0.0/24', '198.18.0.0/15', '224.0.0.0/4', '240.0.0.0/4',
      '::/128', '::1/128', 'fc00::/7', 'fe80::/10', 'ff00::/8', '64:ff9b:1::/48',
    ],
    allow_loopback: false,
  },
  admin: { listen: '127.0.0.1:9180', token: null },
  policy: { files: ['policies/never-bump.yaml', 'policies/default.yaml'], hint_wait: '250ms' },
  log: { flows: '-', level: 'info' },
  tls: { ca_dir: 'certs', upstream_ca: [], observe: true },
  hints: { store: 'memory', window: '120s', managed_window: '10m', max_entries: 1_000_000, max_body_bytes: 10_485_760 },
  scoring: {
    enabled: true,
    c2_uri_shapes: null,
    processes: null,
    user_agents: null,
    tls_families: null,
    ja4h: true,
    beacon: { min_connections: 4, max_keys: 50_000, ttl: '24h' },
  },
  baseline: { store: 'sqlite', dir: 'data', learning: '7d', half_life: '14d', max_entries: 500_000 },
  geoip: { city: null, asn: null },
  console: {
    enabled: true,
    recent: 2_000,
    live_rate: 50,
    max_rate: 100,
    token_file: 'data/console-token',
    secure_cookie: false,
    session_idle: '8h',
    session_max_age: '24h',
    history: { store: 'sqlite', dir: 'data', retention: '24h', max_rows: 1_000_000 },
  },
  identity: {
    users_file: null,
    require_auth: false,
    realm: 'egress-inspector',
    trusted_proxies: [],
    user_headers: ['x-authenticated-user'],
    forwarded_for: true,
    process_header: 'x-egress-process',
    process_hmac_key: null,
  },
} as const;

/** How a refused value is shown after "got": strings quoted and cut short, containers by kind only. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string': {
      const quoted = JSON.stringify(value);
      return quoted.length > 80 ? `${quoted.slice(0, 76)}…"` : quoted;
    }
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'object':
      return 'a mapping';
    default:
      return typeof value;
  }
}

/** For secrets: say what kind of value was there, never the value itself. */
function describeKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value === 'string' ? 'a string that is not one' : `a ${typeof value}`;
}

/**
 * A leaf value checked by one of our parsers, so every message reads "expected …, got …" in the same words
 * whatever the key.
 */
function leaf<T>(parse: (value: unknown) => Parsed<T>, describe: (value: unknown) => string = describeValue) {
  return z.unknown().transform((value, ctx): T => {
    const result = parse(value);
    if (result.ok) return result.value;
    ctx.issues.push({ code: 'custom', message: `${result.expected}, got ${describe(value)}`, input: value });
    return z.NEVER;
  });
}

/** A mapping section; a key written with nothing under it (YAML null) means "all defaults", like no key. */
function section<Shape extends z.ZodRawShape>(shape: Shape) {
  return z.preprocess((value) => value ?? {}, z.strictObject(shape));
}

const duration = leaf((v) => parseDuration(v));
const positiveDuration = leaf((v) => parseDuration(v, { positive: true }));
const longDuration = leaf((v) => parseDuration(v, { long: true }));
const positiveLongDuration = leaf((v) => parseDuration(v, { positive: true, long: true }));
const listenAddress = leaf(parseListenAddress);
const serverAddress = leaf(parseServerAddress);
const cidr = leaf(parseCidr);

/**
 * A whole number in [min, max]. A string of digits is taken too, because `${VAR}` expansion always yields
 * a string and `max_flows: ${MAX_FLOWS}` should work.
 */
function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  const expected = max === Number.MAX_SAFE_INTEGER ? `expected an integer of at least ${min}` : `expected an integer from ${min} to ${max}`;
  return leaf((v): Parsed<number> => {
    const n = typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : v;
    return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max ? { ok: true, value: n } : { ok: false, expected };
  });
}

function path(expected = 'expected a file path') {
  return leaf((v): Parsed<string> => (typeof v === 'string' && v !== '' ? { ok: true, value: v } : { ok: false, expected }));
}

const boolean = leaf((v): Parsed<boolean> => (typeof v === 'boolean' ? { ok: true, value: v } : { ok: false, expected: 'expected true or false' }));

function oneOf<const T extends readonly string[]>(values: T) {
  const expected = `expected one of ${values.join(', ')}`;
  return leaf((v): Parsed<T[number]> => (values.includes(v as string) ? { ok: true, value: v as T[number] } : { ok: false, expected }));
}

// RFC 6750 §2.1 b64token: a token with any other character could never be sent in an Authorization header.
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

export function parseToken(value: unknown): Parsed<string | null> {
  if (value === null) return { ok: true, value: null };
  return typeof value === 'string' && BEARER_TOKEN.test(value)
    ? { ok: true, value }
    : { ok: false, expected: 'expected null or a bearer token of letters, digits and -._~+/ (RFC 6750)' };
}

/** An IP address: dotted-quad IPv4 or IPv6 without a zone (node:net refuses short and octal IPv4 forms). */
function parseIpAddress(value: unknown): Parsed<string> {
  return typeof value === 'string' && (isIPv4(value) || (isIPv6(value) && !value.includes('%')))
    ? { ok: true, value }
    : { ok: false, expected: 'expected null or an IP address like "0.0.0.0" or "::"' };
}

const nullable = <T>(parse: (value: unknown) => Parsed<T>) => (value: unknown): Parsed<T | null> =>
  value === null ? { ok: true, value: null } : parse(value);

// RFC 9110 §5.1 field names are tokens; we keep them lower-case as Node does.
const HEADER_NAME = /^[a-z0-9!#$%&'*+\-.^_`|~]+$/;
const headerName = leaf((v): Parsed<string> =>
  typeof v === 'string' && HEADER_NAME.test(v.toLowerCase()) ? { ok: true, value: v.toLowerCase() } : { ok: false, expected: 'expected an HTTP header name' },
);
const hintStore = leaf((v): Parsed<string> =>
  v === 'memory' || (typeof v === 'string' && /^rediss?:\/\/[^\s]+$/.test(v)) ? { ok: true, value: v } : { ok: false, expected: 'expected "memory" or a redis:// URL' },
);
const baselineStore = leaf((v): Parsed<string> =>
  v === 'sqlite' || v === 'memory' || (typeof v === 'string' && /^rediss?:\/\/[^\s]+$/.test(v))
    ? { ok: true, value: v }
    : { ok: false, expected: 'expected "sqlite", "memory" or a redis:// URL' },
);
const optionalPath = leaf(nullable((v): Parsed<string> => (typeof v === 'string' && v !== '' ? { ok: true, value: v } : { ok: false, expected: 'expected null or a file path' })));
const nonEmptyString = leaf((v): Parsed<string> => (typeof v === 'string' && v !== '' ? { ok: true, value: v } : { ok: false, expected: 'expected a non-empty string' }));
const secret = leaf(
  nullable((v): Parsed<string> => (typeof v === 'string' && v.length >= 16 ? { ok: true, value: v } : { ok: false, expected: 'expected null or a secret of at least 16 characters' })),
  describeKind,
);

/** `proxy.workers`: a count from 1 to 64, or `auto` (one per available core). */
const workerCount = leaf((v): Parsed<number> => {
  if (v === 'auto') return { ok: true, value: Math.max(1, Math.min(64, os.availableParallelism())) };
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 64 ? { ok: true, value: v } : { ok: false, expected: 'expected "auto" or an integer from 1 to 64' };
});

const d = DEFAULTS;

export const configSchema = z.preprocess(
  (value) => value ?? {},
  z.strictObject({
    proxy: section({
      listen: listenAddress.prefault(d.proxy.listen),
      clients: z.array(cidr).prefault([...d.proxy.clients]),
      max_flows: integer(1).prefault(d.proxy.max_flows),
      max_header_bytes: integer(1_024, 1_048_576).prefault(d.proxy.max_header_bytes),
      timeouts: section({
        headers: positiveDuration.prefault(d.proxy.timeouts.headers),
        connect: positiveDuration.prefault(d.proxy.timeouts.connect),
        response: positiveDuration.prefault(d.proxy.timeouts.response),
        idle: positiveDuration.prefault(d.proxy.timeouts.idle),
        client_hello: positiveDuration.prefault(d.proxy.timeouts.client_hello),
      }),
      drain: duration.prefault(d.proxy.drain),
      workers: workerCount.prefault(d.proxy.workers),
    }),
    dns: section({
      listen: leaf(nullable(parseListenAddress)).prefault(d.dns.listen),
      upstream: z.array(serverAddress).prefault([...d.dns.upstream]),
      sinkhole: leaf(nullable(parseIpAddress)).prefault(d.dns.sinkhole),
      timeout: positiveDuration.prefault(d.dns.timeout),
      tries: integer(1, 10).prefault(d.dns.tries),
      tcp_idle: positiveDuration.prefault(d.dns.tcp_idle),
      max_tcp_connections: integer(1).prefault(d.dns.max_tcp_connections),
      memory: section({
        size: integer(1).prefault(d.dns.memory.size),
        ttl: positiveDuration.prefault(d.dns.memory.ttl),
      }),
      cache: section({
        size: integer(0, 10_000_000).prefault(d.dns.cache.size),
        max_ttl: positiveDuration.prefault(d.dns.cache.max_ttl),
        negative_ttl: duration.prefault(d.dns.cache.negative_ttl),
      }),
      signals: section({
        window: positiveDuration.prefault(d.dns.signals.window),
        unique_subdomains: integer(1).prefault(d.dns.signals.unique_subdomains),
        burst_window: positiveDuration.prefault(d.dns.signals.burst_window),
        txt_queries: integer(1).prefault(d.dns.signals.txt_queries),
        nxdomain: integer(1).prefault(d.dns.signals.nxdomain),
      }),
    }),
    resolver: section({
      servers: z.array(serverAddress).prefault([...d.resolver.servers]),
      timeout: positiveDuration.prefault(d.resolver.timeout),
      cache_size: integer(0).prefault(d.resolver.cache_size),
      max_ttl: duration.prefault(d.resolver.max_ttl),
    }),
    network: section({
      internal: z.array(cidr).prefault([...d.network.internal]),
      allow_loopback: boolean.prefault(d.network.allow_loopback),
    }),
    admin: section({
      listen: listenAddress.prefault(d.admin.listen),
      token: leaf(parseToken, describeKind).prefault(d.admin.token),
    }),
    policy: section({
      // At least one file: a proxy with no policy would still run, deciding on defaults alone, which is
      // more likely a typo than a wish.
      files: z.array(path()).min(1, 'expected at least one policy file').prefault([...d.policy.files]),
      hint_wait: duration.prefault(d.policy.hint_wait),
    }),
    log: section({
      flows: path('expected "-" or a file path').prefault(d.log.flows),
      level: oneOf(LOG_LEVELS).prefault(d.log.level),
    }),
    tls: section({
      ca_dir: path('expected a directory path').prefault(d.tls.ca_dir),
      upstream_ca: z.array(path()).prefault([...d.tls.upstream_ca]),
      observe: boolean.prefault(d.tls.observe),
    }),
    hints: section({
      store: hintStore.prefault(d.hints.store),
      window: positiveDuration.prefault(d.hints.window),
      managed_window: positiveDuration.prefault(d.hints.managed_window),
      max_entries: integer(1_000).prefault(d.hints.max_entries),
      max_body_bytes: integer(1_024, 1_073_741_824).prefault(d.hints.max_body_bytes),
    }),
    scoring: section({
      enabled: boolean.prefault(d.scoring.enabled),
      c2_uri_shapes: optionalPath.prefault(d.scoring.c2_uri_shapes),
      processes: optionalPath.prefault(d.scoring.processes),
      user_agents: optionalPath.prefault(d.scoring.user_agents),
      tls_families: optionalPath.prefault(d.scoring.tls_families),
      ja4h: boolean.prefault(d.scoring.ja4h),
      beacon: section({
        min_connections: integer(4, 32).prefault(d.scoring.beacon.min_connections),
        max_keys: integer(1).prefault(d.scoring.beacon.max_keys),
        ttl: positiveDuration.prefault(d.scoring.beacon.ttl),
      }),
    }),
    baseline: section({
      store: baselineStore.prefault(d.baseline.store),
      dir: path('expected a directory path').prefault(d.baseline.dir),
      learning: longDuration.prefault(d.baseline.learning),
      half_life: positiveLongDuration.prefault(d.baseline.half_life),
      max_entries: integer(1_000).prefault(d.baseline.max_entries),
    }),
    geoip: section({
      city: optionalPath.prefault(d.geoip.city),
      asn: optionalPath.prefault(d.geoip.asn),
    }),
    console: section({
      enabled: boolean.prefault(d.console.enabled),
      recent: integer(0, 100_000).prefault(d.console.recent),
      live_rate: integer(1, 1_000).prefault(d.console.live_rate),
      max_rate: integer(1, 100_000).prefault(d.console.max_rate),
      token_file: path().prefault(d.console.token_file),
      secure_cookie: boolean.prefault(d.console.secure_cookie),
      session_idle: positiveDuration.prefault(d.console.session_idle),
      session_max_age: positiveDuration.prefault(d.console.session_max_age),
      history: section({
        store: oneOf(['sqlite', 'none'] as const).prefault(d.console.history.store),
        dir: path('expected a directory path').prefault(d.console.history.dir),
        retention: positiveDuration.prefault(d.console.history.retention),
        max_rows: integer(1_000, 100_000_000).prefault(d.console.history.max_rows),
      }),
    }),
    identity: section({
      users_file: leaf(nullable((v): Parsed<string> => (typeof v === 'string' && v !== '' ? { ok: true, value: v } : { ok: false, expected: 'expected null or a file path' }))).prefault(d.identity.users_file),
      require_auth: boolean.prefault(d.identity.require_auth),
      realm: nonEmptyString.prefault(d.identity.realm),
      trusted_proxies: z.array(cidr).prefault([...d.identity.trusted_proxies]),
      user_headers: z.array(headerName).prefault([...d.identity.user_headers]),
      forwarded_for: boolean.prefault(d.identity.forwarded_for),
      process_header: headerName.prefault(d.identity.process_header),
      process_hmac_key: secret.prefault(d.identity.process_hmac_key),
    }),
  }),
);

/** The schema's output: a Config before relative paths are resolved and the token is taken from the env. */
export type ParsedConfig = z.output<typeof configSchema>;

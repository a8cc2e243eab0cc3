import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EgressError } from '../../../src/errors.js';
import { ConfigError, defaultConfig, loadConfig, parseConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';

const ROOT = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
const BASE = '/srv/egress';

/** Parses inline YAML with a fixed, empty-by-default environment so tests never depend on the host's. */
function parse(text: string, env: NodeJS.ProcessEnv = {}) {
  return parseConfigText(text, { baseDir: BASE, env });
}

function errorsOf(text: string, env: NodeJS.ProcessEnv = {}): readonly string[] {
  const r = parse(text, env);
  if (r.ok) throw new Error(`expected errors, config was accepted: ${JSON.stringify(r.config)}`);
  return r.errors;
}

function configOf(text: string, env: NodeJS.ProcessEnv = {}): Config {
  const r = parse(text, env);
  if (!r.ok) throw new Error(`expected a config, got errors:\n${r.errors.join('\n')}`);
  return r.config;
}

/** SPEC "Configuration" plus the lead's extensions, written out independently of src/config/schema.ts. */
const SPEC_DEFAULTS: Config = {
  proxy: {
    listen: { host: '0.0.0.0', port: 3128 },
    clients: ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
    max_flows: 10_000,
    max_header_bytes: 16_384,
    timeouts: { headers: 10_000, connect: 10_000, response: 60_000, idle: 300_000, client_hello: 10_000 },
    drain: 10_000,
    workers: 1,
  },
  dns: {
    listen: { host: '0.0.0.0', port: 5300 },
    upstream: [],
    sinkhole: null,
    timeout: 2_000,
    tries: 2,
    tcp_idle: 10_000,
    max_tcp_connections: 1_000,
    memory: { size: 100_000, ttl: 3_600_000 },
    cache: { size: 0, max_ttl: 300_000, negative_ttl: 60_000 },
    signals: { window: 3_600_000, unique_subdomains: 100, burst_window: 60_000, txt_queries: 50, nxdomain: 20 },
  },
  resolver: { servers: [], timeout: 2_000, cache_size: 10_000, max_ttl: 300_000 },
  network: {
    internal: [
      '127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10',
      '0.0.0.0/8', '192.0.0.0/24', '198.18.0.0/15', '224.0.0.0/4', '240.0.0.0/4',
      '::/128', '::1/128', 'fc00::/7', 'fe80::/10', 'ff00::/8', '64:ff9b:1::/48',
    ],
    allow_loopback: false,
  },
  admin: { listen: { host: '127.0.0.1', port: 9180 }, token: null },
  policy: { files: [`${BASE}/policies/never-bump.yaml`, `${BASE}/policies/default.yaml`], hint_wait: 250 },
  log: { flows: '-', level: 'info' },
  tls: { ca_dir: `${BASE}/certs`, upstream_ca: [], observe: true },
  hints: { store: 'memory', window: 120_000, managed_window: 600_000, max_entries: 1_000_000, max_body_bytes: 10_485_760 },
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
  scoring: {
    enabled: true,
    c2_uri_shapes: null,
    processes: null,
    user_agents: null,
    tls_families: null,
    ja4h: true,
    beacon: { min_connections: 4, max_keys: 50_000, ttl: 86_400_000 },
  },
  baseline: { store: 'sqlite', dir: `${BASE}/data`, learning: 604_800_000, half_life: 1_209_600_000, max_entries: 500_000 },
  geoip: { city: null, asn: null },
  console: {
    enabled: true,
    recent: 2_000,
    live_rate: 50,
    max_rate: 100,
    token_file: `${BASE}/data/console-token`,
    secure_cookie: false,
    session_idle: 28_800_000,
    session_max_age: 86_400_000,
    history: { store: 'sqlite', dir: `${BASE}/data`, retention: 86_400_000, max_rows: 1_000_000 },
  },
};

describe('defaults', () => {
  it('equal SPEC, with relative paths under the base directory', () => {
    expect(defaultConfig(BASE, {})).toEqual(SPEC_DEFAULTS);
  });

  it.each([
    ['an empty file', ''],
    ['a comment-only file', '# nothing here\n'],
    ['an empty mapping', '{}'],
    ['sections with nothing under them', 'proxy:\ndns:\nresolver:\nnetwork:\nadmin:\npolicy:\nlog:\ntls:\n'],
    ['an empty nested section', 'proxy:\n  timeouts: {}\n'],
  ])('come from %s', (_intent, text) => {
    expect(configOf(text)).toEqual(SPEC_DEFAULTS);
  });

  it('are overridden key by key, leaving siblings at their defaults', () => {
    const c = configOf('proxy:\n  timeouts:\n    connect: 3s\n');
    expect(c.proxy.timeouts).toEqual({ headers: 10_000, connect: 3_000, response: 60_000, idle: 300_000, client_hello: 10_000 });
    expect(c.proxy.listen).toEqual(SPEC_DEFAULTS.proxy.listen);
  });

  it('is deeply frozen, so no module can change the config another one reads', () => {
    const c = defaultConfig(BASE, {});
    expect(Object.isFrozen(c.proxy.timeouts)).toBe(true);
    expect(Object.isFrozen(c.proxy.clients)).toBe(true);
    expect(() => (c.proxy.clients as string[]).push('0.0.0.0/0')).toThrow(TypeError);
  });
});

describe('values that are accepted and converted', () => {
  it.each([
    ['a bare-millisecond duration', 'policy: { hint_wait: 100 }', (c: Config) => c.policy.hint_wait, 100],
    ['a minute duration', 'proxy: { drain: 2m }', (c: Config) => c.proxy.drain, 120_000],
    ['an IPv6 listen address', 'admin: { listen: "[::1]:0" }', (c: Config) => c.admin.listen, { host: '::1', port: 0 }],
    ['null dns.listen (forwarder disabled)', 'dns: { listen: null }', (c: Config) => c.dns.listen, null],
    ['DNS upstreams with and without port', 'dns: { upstream: ["192.0.2.53", "[2001:db8::53]:5353"] }', (c: Config) => c.dns.upstream,
      [{ host: '192.0.2.53', port: 53 }, { host: '2001:db8::53', port: 5353 }]],
    ['a bare IP as a client CIDR', 'proxy: { clients: [192.0.2.7, "::1"] }', (c: Config) => c.proxy.clients, ['192.0.2.7/32', '::1/128']],
    ['resolver.cache_size 0 (cache off)', 'resolver: { cache_size: 0 }', (c: Config) => c.resolver.cache_size, 0],
    ['log.level', 'log: { level: debug }', (c: Config) => c.log.level, 'debug'],
    ['drain 0 (close at once)', 'proxy: { drain: 0 }', (c: Config) => c.proxy.drain, 0],
    ['a DNS sinkhole address', 'dns: { sinkhole: 0.0.0.0 }', (c: Config) => c.dns.sinkhole, '0.0.0.0'],
    ['an IPv6 DNS sinkhole', 'dns: { sinkhole: "::" }', (c: Config) => c.dns.sinkhole, '::'],
    ['DNS signal thresholds', 'dns: { signals: { unique_subdomains: 500, window: 24h } }', (c: Config) => [c.dns.signals.unique_subdomains, c.dns.signals.window], [500, 86_400_000]],
  ])('%s', (_intent, text, pick, expected) => {
    expect(pick(configOf(text))).toEqual(expected);
  });
});

describe('each bad value → its error', () => {
  it.each([
    ['unknown top-level key', 'telemetry: {}', ['telemetry: unknown key']],
    ['unknown key at depth, with the likely typo', 'proxy:\n  timeouts:\n    conect: 5s', ['proxy.timeouts.conect: unknown key (did you mean "connect"?)']],
    ['unknown key far from any known one', 'log:\n  color: true', ['log.color: unknown key']],
    ['unknown key with odd characters', 'proxy:\n  "a.b": 1', ['proxy["a.b"]: unknown key']],
    ['bad duration', 'proxy:\n  timeouts:\n    connect: ten', ['proxy.timeouts.connect: expected a duration like "10s", got "ten"']],
    ['zero timeout', 'proxy:\n  timeouts:\n    idle: 0s', ['proxy.timeouts.idle: expected a duration greater than 0, got "0s"']],
    ['zero resolver timeout', 'resolver: { timeout: 0 }', ['resolver.timeout: expected a duration greater than 0, got 0']],
    ['a DNS sinkhole that is not an IP', 'dns: { sinkhole: sinkhole.example }', ['dns.sinkhole: expected null or an IP address like "0.0.0.0" or "::", got "sinkhole.example"']],
    ['zero DNS tries', 'dns: { tries: 0 }', ['dns.tries: expected an integer from 1 to 10, got 0']],
    ['bad CIDR', 'proxy:\n  clients: [10.0.0.300/8]', ['proxy.clients[0]: expected a CIDR like "10.0.0.0/8" or an IP address, got "10.0.0.300/8"']],
    ['CIDR with host bits', 'network:\n  internal: [10.0.0.1/8]',
      ['network.internal[0]: expected a network address without host bits (did you mean "10.0.0.0/8"?), got "10.0.0.1/8"']],
    ['bad listen address', 'proxy:\n  listen: "3128"', ['proxy.listen: expected a listen address like "0.0.0.0:3128" or "[::1]:3128", got "3128"']],
    ['port 70000', 'admin:\n  listen: "127.0.0.1:70000"', ['admin.listen: expected a port from 0 to 65535, got "127.0.0.1:70000"']],
    ['upstream port 0', 'dns:\n  upstream: ["192.0.2.53:0"]', ['dns.upstream[0]: expected a port from 1 to 65535, got "192.0.2.53:0"']],
    ['resolver server given by name', 'resolver:\n  servers: [dns.google]',
      ['resolver.servers[0]: expected a DNS server like "192.0.2.53", "192.0.2.53:53" or "[2001:db8::53]:53", got "dns.google"']],
    ['section of the wrong type', 'proxy: 5', ['proxy: expected a mapping, got 5']],
    ['list where a mapping belongs', 'proxy: [a]', ['proxy: expected a mapping, got a list']],
    ['string where a list belongs', 'proxy:\n  clients: 10.0.0.0/8', ['proxy.clients: expected a list, got "10.0.0.0/8"']],
    ['null where a list belongs', 'dns:\n  upstream: null', ['dns.upstream: expected a list, got null']],
    ['boolean where an integer belongs', 'proxy:\n  max_flows: true', ['proxy.max_flows: expected an integer of at least 1, got true']],
    ['max_flows 0', 'proxy:\n  max_flows: 0', ['proxy.max_flows: expected an integer of at least 1, got 0']],
    ['fractional integer', 'resolver:\n  cache_size: 1.5', ['resolver.cache_size: expected an integer of at least 0, got 1.5']],
    ['an integer that overflows to infinity', 'resolver:\n  cache_size: 1e400', ['resolver.cache_size: expected an integer of at least 0, got Infinity']],
    ['header limit too small', 'proxy:\n  max_header_bytes: 100', ['proxy.max_header_bytes: expected an integer from 1024 to 1048576, got 100']],
    ['null listen where null is not allowed', 'admin:\n  listen: null', ['admin.listen: expected a listen address like "0.0.0.0:3128" or "[::1]:3128", got null']],
    ['unknown log level', 'log:\n  level: verbose', ['log.level: expected one of debug, info, warn, error, got "verbose"']],
    ['empty log path', 'log:\n  flows: ""', ['log.flows: expected "-" or a file path, got ""']],
    ['no policy files', 'policy:\n  files: []', ['policy.files: expected at least one policy file, got an empty list']],
    ['number as a policy file', 'policy:\n  files: [5]', ['policy.files[0]: expected a file path, got 5']],
    ['the top level is a list', '- proxy', ['(top level): expected a mapping, got a list']],
    ['the top level is a scalar', 'hello', ['(top level): expected a mapping, got "hello"']],
    ['a __proto__ key', '__proto__: { admin: { token: x } }', ['__proto__: unknown key']],
  ])('%s', (_intent, text, expected) => {
    expect(errorsOf(text)).toEqual(expected);
  });

  it('names the token\'s problem without ever showing the token', () => {
    const errors = errorsOf('admin:\n  token: "s3cret with space"');
    expect(errors).toEqual(['admin.token: expected null or a bearer token of letters, digits and -._~+/ (RFC 6750), got a string that is not one']);
    expect(errors.join('\n')).not.toContain('s3cret');
    expect(errorsOf('admin:\n  token: 123456789').join('\n')).not.toContain('123456789');
  });

  it('does not let a __proto__ key reach the prototype', () => {
    parse('__proto__: { polluted: true }');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('all errors at once, in file order, with file:line:col', () => {
  const text = [
    'proxy:', //                                 1
    '  listen: "0.0.0.0:70000"', //              2
    '  timeouts:', //                            3
    '    connect: ten', //                       4
    '    conect: 5s', //                         5
    'telemetry: {}', //                          6
    'admin:', //                                 7
    '  token: "${NOT_SET}"', //                  8
    'network:', //                               9
    '  internal: [10.0.0.0/8, 10.0.0.0/33]', // 10
  ].join('\n');

  it('reports every one, each with its position', () => {
    const r = parseConfigText(text, { baseDir: BASE, env: {}, source: 'egress.yaml' });
    expect(r).toEqual({
      ok: false,
      code: 'CONFIG_INVALID',
      errors: [
        'egress.yaml:2:11: proxy.listen: expected a port from 0 to 65535, got "0.0.0.0:70000"',
        'egress.yaml:4:14: proxy.timeouts.connect: expected a duration like "10s", got "ten"',
        'egress.yaml:5:5: proxy.timeouts.conect: unknown key (did you mean "connect"?)',
        'egress.yaml:6:1: telemetry: unknown key',
        'egress.yaml:8:10: admin.token: environment variable NOT_SET is not set',
        'egress.yaml:10:26: network.internal[1]: expected an IPv4 prefix length from 0 to 32, got "10.0.0.0/33"',
      ],
    });
  });

  it('throws them from loadConfig as one CONFIG_INVALID, one error per line', async () => {
    const file = join(tmp, 'broken.yaml');
    await writeFile(file, text);
    const err: unknown = await loadConfig({ file, baseDir: '/unused', env: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toBeInstanceOf(EgressError);
    const e = err as ConfigError;
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.errors).toHaveLength(6);
    expect(e.message.split('\n')).toEqual(e.errors);
    expect(e.errors[0]).toBe(`${file}:2:11: proxy.listen: expected a port from 0 to 65535, got "0.0.0.0:70000"`);
  });

  it('positions a value reached through a YAML alias at the anchored node', () => {
    const r = parseConfigText('proxy:\n  clients: &nets [10.0.0.0/33]\nnetwork:\n  internal: *nets\n', { baseDir: BASE, env: {}, source: 'a.yaml' });
    expect(r).toMatchObject({
      errors: [
        'a.yaml:2:19: proxy.clients[0]: expected an IPv4 prefix length from 0 to 32, got "10.0.0.0/33"',
        'a.yaml:2:19: network.internal[0]: expected an IPv4 prefix length from 0 to 32, got "10.0.0.0/33"',
      ],
    });
  });
});

describe('YAML that does not parse → CONFIG_READ with line:col', () => {
  it.each([
    ['an unclosed flow list', 'proxy:\n  clients: [10.0.0.0/8\nlog: {}\n', /^c\.yaml:3:\d+: /],
    ['a key written twice', 'proxy: {}\nproxy: {}\n', /^c\.yaml:2:1: Map keys must be unique$/],
    ['a tab used for indentation', 'proxy:\n\tlisten: x\n', /^c\.yaml:2:1: /],
    ['an unknown tag', 'proxy: !secret x\n', /^c\.yaml:1:8: Unresolved tag: !secret$/],
  ])('%s', (_intent, text, pattern) => {
    const r = parseConfigText(text, { baseDir: BASE, env: {}, source: 'c.yaml' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.code).toBe('CONFIG_READ');
    expect(r.errors[0]).toMatch(pattern);
  });

  it('gives line:col even without a file name', () => {
    expect(parse('a: [1\nb: 2\n')).toMatchObject({ ok: false, code: 'CONFIG_READ', errors: [expect.stringMatching(/^2:1: Flow sequence/)] });
  });

  it('refuses an alias bomb instead of expanding it', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++) levels.push(`${'abcdefgh'[i]}: &${'abcdefgh'[i]} [${Array(10).fill(`*${'abcdefgh'[i - 1]}`).join(', ')}]`);
    expect(parse(levels.join('\n'))).toMatchObject({ ok: false, code: 'CONFIG_READ', errors: [expect.stringMatching(/alias count/)] });
  });

  it('survives a self-referencing alias', () => {
    expect(errorsOf('proxy:\n  clients: &c [*c]\n')).toEqual(['proxy.clients[0]: expected a CIDR like "10.0.0.0/8" or an IP address, got a list']);
  });
});

describe('${ENV} expansion', () => {
  it.each([
    ['a whole value', 'admin: { token: "${TOKEN}" }', { TOKEN: 'abc123' }, (c: Config) => c.admin.token, 'abc123'],
    ['inside a value', 'proxy: { listen: "127.0.0.1:${PORT}" }', { PORT: '8080' }, (c: Config) => c.proxy.listen, { host: '127.0.0.1', port: 8080 }],
    ['into an integer key', 'proxy: { max_flows: "${MAX}" }', { MAX: '500' }, (c: Config) => c.proxy.max_flows, 500],
    ['in a list item', 'proxy: { clients: ["${NET}"] }', { NET: '192.0.2.0/24' }, (c: Config) => c.proxy.clients, ['192.0.2.0/24']],
    ['twice in one value', 'log: { flows: "/${A}/${B}.jsonl" }', { A: 'var', B: 'flows' }, (c: Config) => c.log.flows, '/var/flows.jsonl'],
    ['$${ as a literal ${', 'log: { flows: "/tmp/$${X}" }', { X: 'no' }, (c: Config) => c.log.flows, '/tmp/${X}'],
    ['a lone $ kept', 'log: { flows: "/tmp/$HOME/a" }', {}, (c: Config) => c.log.flows, '/tmp/$HOME/a'],
    ['a value not expanded twice', 'log: { flows: "/tmp/${A}" }', { A: '${B}', B: 'no' }, (c: Config) => c.log.flows, '/tmp/${B}'],
  ])('%s', (_intent, text, env, pick, expected) => {
    expect(pick(configOf(text, env))).toEqual(expected);
  });

  it.each([
    ['an unset variable names the key and the variable', 'admin:\n  token: "${ADMIN_TOKEN}"', ['admin.token: environment variable ADMIN_TOKEN is not set']],
    ['in a list item', 'policy:\n  files: [a.yaml, "${P}"]', ['policy.files[1]: environment variable P is not set']],
    ['an unterminated reference', 'log:\n  flows: "${LOG"', ['log.flows: unterminated "${" (write "$${" for a literal "${")']],
    ['an invalid name', 'log:\n  flows: "${1X}"', ['log.flows: invalid variable name "1X" in "${…}"']],
  ])('%s', (_intent, text, expected) => {
    expect(errorsOf(text)).toEqual(expected);
  });

  it('is checked, not only expanded: the expanded value must still be valid', () => {
    expect(errorsOf('proxy: { listen: "0.0.0.0:${PORT}" }', { PORT: '99999' })).toEqual([
      'proxy.listen: expected a port from 0 to 65535, got "0.0.0.0:99999"',
    ]);
  });

  it('leaves keys alone', () => {
    expect(errorsOf('proxy: { "${K}": 1 }', { K: 'listen' })).toEqual(['proxy["${K}"]: unknown key']);
  });
});

describe('admin token from EGRESS_ADMIN_TOKEN', () => {
  it.each([
    ['used when the file leaves it null', 'admin: { token: null }', { EGRESS_ADMIN_TOKEN: 'from-env' }, 'from-env'],
    ['used when the file has no admin section', '', { EGRESS_ADMIN_TOKEN: 'from-env' }, 'from-env'],
    ['ignored when the file sets one', 'admin: { token: from-file }', { EGRESS_ADMIN_TOKEN: 'from-env' }, 'from-file'],
    ['empty counts as unset', '', { EGRESS_ADMIN_TOKEN: '' }, null],
    ['unset leaves the token null', '', {}, null],
  ])('%s', (_intent, text, env, expected) => {
    expect(configOf(text, env).admin.token).toBe(expected);
  });

  it('is validated like the file value, without echoing it', () => {
    const errors = errorsOf('', { EGRESS_ADMIN_TOKEN: 'has space' });
    expect(errors).toEqual(['EGRESS_ADMIN_TOKEN: expected null or a bearer token of letters, digits and -._~+/ (RFC 6750), got a string that is not one']);
    expect(() => defaultConfig(BASE, { EGRESS_ADMIN_TOKEN: 'has space' })).toThrow(ConfigError);
  });

  it('is also read by defaultConfig', () => {
    expect(defaultConfig(BASE, { EGRESS_ADMIN_TOKEN: 'tok' }).admin.token).toBe('tok');
  });
});

describe('relative paths', () => {
  it('resolve against the base directory; absolute paths and "-" stay', () => {
    const c = configOf(
      'policy: { files: [p/a.yaml, /etc/egress/b.yaml, ../c.yaml] }\nlog: { flows: logs/flows.jsonl }\ntls: { ca_dir: ./ca, upstream_ca: [extra.pem] }',
    );
    expect(c.policy.files).toEqual([`${BASE}/p/a.yaml`, '/etc/egress/b.yaml', '/srv/c.yaml']);
    expect(c.log.flows).toBe(`${BASE}/logs/flows.jsonl`);
    expect(c.tls).toEqual({ ca_dir: `${BASE}/ca`, upstream_ca: [`${BASE}/extra.pem`], observe: true });
    expect(configOf('log: { flows: "-" }').log.flows).toBe('-');
  });

  it('resolve against the config file\'s directory, not baseDir nor the working directory', async () => {
    const file = join(tmp, 'sub', 'egress.yaml');
    await import('node:fs/promises').then((fs) => fs.mkdir(join(tmp, 'sub'), { recursive: true }));
    await writeFile(file, 'policy: { files: [mine.yaml] }\nlog: { flows: flows.jsonl }\n');
    const c = await loadConfig({ file, baseDir: '/somewhere/else', env: {} });
    expect(c.policy.files).toEqual([join(tmp, 'sub', 'mine.yaml')]);
    expect(c.log.flows).toBe(join(tmp, 'sub', 'flows.jsonl'));
    expect(c.tls.ca_dir).toBe(join(tmp, 'sub', 'certs'));
  });

  it('with no file, resolve against the baseDir the caller passes', async () => {
    const c = await loadConfig({ baseDir: '/opt/egress', env: {} });
    expect(c.policy.files).toEqual(['/opt/egress/policies/never-bump.yaml', '/opt/egress/policies/default.yaml']);
    expect(c.tls.ca_dir).toBe('/opt/egress/certs');
  });
});

describe('loadConfig', () => {
  it('refuses a missing file with CONFIG_READ naming it', async () => {
    const file = join(tmp, 'nope.yaml');
    await expect(loadConfig({ file, baseDir: BASE, env: {} })).rejects.toMatchObject({
      code: 'CONFIG_READ',
      message: `${file}: cannot read the config file (ENOENT)`,
    });
  });

  it('refuses a directory with CONFIG_READ', async () => {
    await expect(loadConfig({ file: tmp, baseDir: BASE, env: {} })).rejects.toMatchObject({ code: 'CONFIG_READ' });
  });

  it('refuses a syntax error with CONFIG_READ and line:col', async () => {
    const file = join(tmp, 'syntax.yaml');
    await writeFile(file, 'proxy:\n  listen: [\n');
    await expect(loadConfig({ file, baseDir: BASE, env: {} })).rejects.toMatchObject({
      code: 'CONFIG_READ',
      message: expect.stringMatching(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+:\\d+: `)),
    });
  });

  it('loads config/example.yaml, which spells out the defaults', async () => {
    const c = await loadConfig({ file: join(ROOT, 'config', 'example.yaml'), baseDir: '/unused', env: {} });
    // The example sits in config/ and points at ../policies and ../certs, i.e. the package root's.
    expect(c).toEqual(defaultConfig(ROOT, {}));
    expect(c.policy.files).toEqual([join(ROOT, 'policies', 'never-bump.yaml'), join(ROOT, 'policies', 'default.yaml')]);
  });
});

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'egress-config-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('hostile input', () => {
  it('caps the error list so the first causes stay readable', () => {
    const r = parse(`proxy:\n  clients: [${Array(60).fill('10.0.0.1/8').join(', ')}]`);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toHaveLength(51);
    expect(r.errors[0]).toMatch(/^proxy\.clients\[0\]: /);
    expect(r.errors[50]).toBe('… and 10 more errors');
  });

  it('refuses nesting deep enough to overflow the YAML parser with CONFIG_READ', () => {
    expect(parse('['.repeat(100_000))).toMatchObject({ ok: false, code: 'CONFIG_READ' });
  });

  it('shortens a huge value in the message', () => {
    const [error] = errorsOf(`log:\n  level: ${'x'.repeat(10_000)}`);
    expect(error).toBe(`log.level: expected one of debug, info, warn, error, got "${'x'.repeat(75)}…"`);
  });
});

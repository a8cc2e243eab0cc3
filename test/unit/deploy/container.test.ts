/**
 * The container image and its compose example, checked without a Docker daemon: the Dockerfile and compose.yaml
 * are parsed, and the image's config is loaded with the proxy's own loader, so that
 *  - every listener of the image's config is EXPOSEd and published by compose (proxy TCP, DNS UDP+TCP, admin),
 *  - the admin port is written once (ENV EGRESS_ADMIN_PORT) and the HEALTHCHECK finds it through the config,
 *  - the shipped policies are outside every volume and the image's configs load them,
 *  - the image carries the OCI annotations.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfigText } from '../../../src/config/load.js';
import { DEFAULTS, type Config } from '../../../src/config/schema.js';
import { loadPolicy } from '../../../src/policy/load.js';
import { ROOT } from '../../helpers/cli.js';

const CONTAINER = join(ROOT, 'deploy', 'container');

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Dockerfile instructions of the final stage, with `\` continuations joined and comments dropped. */
function finalStage(text: string): Instruction[] {
  const joined = text.replace(/\\\n/g, ' ');
  const all = joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const sp = l.search(/\s/);
      return { op: l.slice(0, sp).toUpperCase(), args: l.slice(sp + 1).trim() };
    });
  const lastFrom = all.map((i) => i.op).lastIndexOf('FROM');
  return all.slice(lastFrom);
}

/** ENV of the final stage: both `ENV K=V K2=V2` and the legacy `ENV K V`. */
function envOf(stage: Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of stage.filter((x) => x.op === 'ENV')) {
    if (!i.args.includes('=')) {
      const [k, ...v] = i.args.split(/\s+/);
      if (k !== undefined) env[k] = v.join(' ');
      continue;
    }
    for (const m of i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) env[m[1] ?? ''] = (m[2] ?? '').replace(/^"|"$/g, '');
  }
  return env;
}

/** Docker's `${VAR}` substitution in EXPOSE and friends. */
function substitute(text: string, env: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a: string | undefined, b: string | undefined) => env[a ?? b ?? ''] ?? '');
}

/** The listeners of a config as `port/proto` strings, the form EXPOSE and compose use. */
function listenerPorts(c: Config): string[] {
  const out = [`${c.proxy.listen.port}/tcp`, `${c.admin.listen.port}/tcp`];
  if (c.dns.listen !== null) out.push(`${c.dns.listen.port}/udp`, `${c.dns.listen.port}/tcp`);
  return out.sort();
}

/** Paths inside the image mapped onto this checkout, to check that what the image's configs name exists. */
function imagePathToRepo(p: string): string {
  if (p.startsWith('/etc/egress-inspector/')) return join(CONTAINER, 'config', p.slice('/etc/egress-inspector/'.length));
  if (p.startsWith('/app/')) return join(ROOT, p.slice('/app/'.length));
  return p;
}

describe('container image (Dockerfile, deploy/container)', () => {
  let stage: Instruction[];
  let env: Record<string, string>;
  let imageConfig: Config;
  let compose: { services: Record<string, { ports: string[]; volumes: string[]; environment: Record<string, string> }> };

  beforeAll(async () => {
    stage = finalStage(await readFile(join(ROOT, 'Dockerfile'), 'utf8'));
    env = envOf(stage);
    // The image's default config, read with the image's environment, as the proxy reads it there.
    const parsed = parseConfigText(await readFile(join(CONTAINER, 'egress.yaml'), 'utf8'), { baseDir: '/app/config', env });
    if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
    imageConfig = parsed.config;
    compose = parse(await readFile(join(CONTAINER, 'compose.yaml'), 'utf8')) as typeof compose;
  });

  it('ships its config as the default EGRESS_CONFIG, with the healthcheck beside the program', () => {
    const copies = stage.filter((i) => i.op === 'COPY').map((i) => i.args.split(/\s+/));
    expect(copies).toContainEqual(['deploy/container/egress.yaml', `.${env.EGRESS_CONFIG?.replace(/^\/app/, '')}`]);
    expect(copies).toContainEqual(['deploy/container/healthcheck.mjs', './deploy/container/healthcheck.mjs']);
    expect(stage.find((i) => i.op === 'WORKDIR')?.args).toBe('/app');
  });

  it('EXPOSEs every listener of its config, with the ports written once in ENV', () => {
    const exposed = stage
      .filter((i) => i.op === 'EXPOSE')
      .flatMap((i) => substitute(i.args, env).split(/\s+/))
      .sort();
    expect(exposed).toEqual(listenerPorts(imageConfig));
    // The same ports as `npm start`'s embedded defaults: one set of numbers to document.
    expect(listenerPorts(imageConfig)).toEqual(['3128/tcp', '5300/tcp', '5300/udp', '9180/tcp'].sort());
    expect(`${DEFAULTS.proxy.listen} ${DEFAULTS.dns.listen} ${DEFAULTS.admin.listen}`).toBe('0.0.0.0:3128 0.0.0.0:5300 127.0.0.1:9180');
    // Reachable through a published port: the admin listener is not on the container's loopback.
    expect(imageConfig.admin.listen.host).toBe('0.0.0.0');
  });

  it('health-checks /readyz on the configured admin port, never a hard-coded one', async () => {
    const hc = stage.find((i) => i.op === 'HEALTHCHECK')?.args ?? '';
    expect(hc).toContain('CMD ["node", "deploy/container/healthcheck.mjs"]');
    expect(hc).not.toMatch(/9180/);
    const script = await readFile(join(CONTAINER, 'healthcheck.mjs'), 'utf8');
    expect(script).toContain("path: '/readyz'");
    expect(script).not.toMatch(/9180/);
    // The port is in ENV and in the config as ${EGRESS_ADMIN_PORT}, nowhere else in the image's files.
    expect(await readFile(join(CONTAINER, 'egress.yaml'), 'utf8')).toContain('${EGRESS_ADMIN_PORT}');
    expect(imageConfig.admin.listen.port).toBe(Number(env.EGRESS_ADMIN_PORT));
    // A moved port moves the listener.
    const moved = parseConfigText(await readFile(join(CONTAINER, 'egress.yaml'), 'utf8'), { baseDir: '/app/config', env: { ...env, EGRESS_ADMIN_PORT: '9999' } });
    expect(moved.ok && moved.config.admin.listen.port).toBe(9999);
  });

  it('keeps the shipped policies outside every volume, and both configs load them', async () => {
    const volumes = stage.filter((i) => i.op === 'VOLUME').flatMap((i) => JSON.parse(i.args) as string[]);
    expect(volumes.length).toBeGreaterThan(0);
    for (const v of volumes) expect('/app/policies/'.startsWith(`${v.replace(/\/$/, '')}/`)).toBe(false);
    expect(stage.some((i) => i.op === 'COPY' && i.args === 'policies ./policies')).toBe(true);
    // The image's config and the operator example used by compose: every policy file exists, and they compile.
    const operator = parseConfigText(await readFile(join(CONTAINER, 'config', 'egress.yaml'), 'utf8'), { baseDir: '/etc/egress-inspector', env });
    if (!operator.ok) throw new Error(operator.errors.join('\n'));
    for (const c of [imageConfig, operator.config]) {
      expect(c.policy.files.slice(0, 2)).toEqual(['/app/policies/never-bump.yaml', '/app/policies/default.yaml']);
      const loaded = await loadPolicy(c.policy.files.map(imagePathToRepo));
      expect(loaded.ok, JSON.stringify(loaded.ok ? null : loaded.errors)).toBe(true);
      // Writable state is on the volumes.
      expect(volumes).toContain(c.tls.ca_dir);
      expect(volumes).toContain(c.baseline.dir);
    }
    expect(operator.config.policy.files).toContain('/etc/egress-inspector/policies/local.yaml');
  });

  it('carries the OCI image annotations', () => {
    const labels = stage.filter((i) => i.op === 'LABEL').map((i) => i.args).join(' ');
    for (const key of ['title', 'description', 'licenses', 'version', 'revision', 'created', 'source']) {
      expect(labels).toContain(`org.opencontainers.image.${key}=`);
    }
    expect(labels).toContain('org.opencontainers.image.licenses="Apache-2.0"');
  });

  it('compose publishes every listener and mounts config, certs and data, with the admin token from the environment', async () => {
    const svc = compose.services['egress-inspector'];
    if (svc === undefined) throw new Error('no egress-inspector service');
    // "[host_ip:]host:container/proto" → container port/proto
    const published = svc.ports.map((p) => p.split(':').at(-1) ?? '').sort();
    expect(published).toEqual(listenerPorts(imageConfig));
    expect(svc.ports.find((p) => p.endsWith(`:${env.EGRESS_ADMIN_PORT}/tcp`))).toMatch(/^127\.0\.0\.1:/);
    const targets = svc.volumes.map((v) => v.split(':')[1]);
    expect(targets).toEqual(expect.arrayContaining(['/etc/egress-inspector', imageConfig.tls.ca_dir, imageConfig.baseline.dir]));
    expect(svc.environment.EGRESS_CONFIG).toBe('/etc/egress-inspector/egress.yaml');
    expect(svc.environment.EGRESS_ADMIN_TOKEN).toMatch(/^\$\{EGRESS_ADMIN_TOKEN:\?/);
    // The mounted config directory is the one in this repository.
    expect(existsSync(join(CONTAINER, svc.volumes.find((v) => v.includes('/etc/egress-inspector'))?.split(':')[0] ?? 'missing', 'egress.yaml'))).toBe(true);
  });

  it('.dockerignore keeps what the Dockerfile copies', async () => {
    const ignored = (await readFile(join(ROOT, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    const sources = stage.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from')).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const src of sources) {
      expect(ignored.some((pattern) => src === pattern || src.startsWith(`${pattern.replace(/\/\*$/, '')}/`)), src).toBe(false);
    }
  });
});

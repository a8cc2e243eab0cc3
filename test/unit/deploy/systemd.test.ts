/**
 * deploy/systemd: the unit file passes systemd's own checks (`systemd-analyze verify`, and the offline
 * `systemd-analyze security` review), keeps the hardening the deployment relies on, and agrees with the example
 * config and the logrotate config about where config, state and the flow log live.
 *
 * verify needs ExecStart's binary to exist, so a copy of the unit with ExecStart pointed at this Node and this
 * checkout is checked; everything else is the shipped file byte for byte.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.js';
import { ROOT } from '../../helpers/cli.js';

const UNIT = join(ROOT, 'deploy', 'systemd', 'egress-inspector.service');
const EXAMPLE = join(ROOT, 'deploy', 'systemd', 'egress.yaml');
const LOGROTATE = join(ROOT, 'deploy', 'logrotate', 'egress-inspector');
/** Where deploy/README.md installs the program. */
const INSTALL_DIR = '/opt/egress-inspector';

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The unit's [Service] settings, each key with every value it is given (systemd keys may repeat). */
function settings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

describe('deploy/systemd/egress-inspector.service', () => {
  let dir: string;
  let text: string;
  let unitCopy: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'egress-systemd-'));
    text = await readFile(UNIT, 'utf8');
    const exec = `${process.execPath} ${join(ROOT, 'dist', 'main.js')}`;
    unitCopy = join(dir, 'egress-inspector.service');
    await writeFile(unitCopy, text.replace(`/usr/bin/node ${INSTALL_DIR}/dist/main.js`, exec));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes systemd-analyze verify with no error or warning', async () => {
    expect(text).toContain(`ExecStart=/usr/bin/node ${INSTALL_DIR}/dist/main.js start --config /etc/egress-inspector/egress.yaml`);
    const r = await run('systemd-analyze', ['verify', unitCopy]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // And verify does check: a missing ExecStart binary is reported.
    const broken = join(dir, 'broken.service');
    await writeFile(broken, text.replace(/^ExecStart=\S+/m, 'ExecStart=/nonexistent/node'));
    const bad = await run('systemd-analyze', ['verify', broken]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('/nonexistent/node');
  });

  it('scores a low exposure in the offline security review', async () => {
    const r = await run('systemd-analyze', ['security', '--offline=yes', unitCopy]);
    expect(r.code).toBe(0);
    const m = /Overall exposure level for [^:]+: (\d+(?:\.\d+)?)/.exec(r.stdout);
    expect(m).not.toBeNull();
    // 1.5 with systemd 252; scores move a little between systemd versions, hence the margin. 10 = unprotected.
    expect(Number(m?.[1])).toBeLessThan(3);
  });

  it('keeps the hardening the deployment relies on', () => {
    const s = settings(text);
    const one = (key: string): string | undefined => s.get(key)?.at(-1);
    expect(one('DynamicUser')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ProtectHome')).toBe('yes');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('AmbientCapabilities')).toBe('CAP_NET_BIND_SERVICE');
    expect(one('CapabilityBoundingSet')).toBe('CAP_NET_BIND_SERVICE');
    expect(s.get('SystemCallFilter')).toContain('@system-service');
    expect(one('RestrictAddressFamilies')?.split(' ').sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
    expect(Number(one('LimitNOFILE'))).toBeGreaterThanOrEqual(2 * 10_000); // two sockets per flow at proxy.max_flows
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID'); // src/main.ts: SIGHUP reloads the policy
    expect(one('Restart')).toBe('on-failure');
    expect(one('UMask')).toBe('0077'); // the CA key and the baseline store stay private
    // V8's JIT needs writable+executable pages: this setting would stop Node at start.
    expect(s.has('MemoryDenyWriteExecute')).toBe(false);
    // A user namespace would take CAP_NET_BIND_SERVICE's effect on the host's ports away.
    expect(s.has('PrivateUsers')).toBe(false);
  });

  it('agrees with the example config and the logrotate config about every path', async () => {
    const s = settings(text);
    const conf = `/etc/${s.get('ConfigurationDirectory')?.[0]}`;
    const state = `/var/lib/${s.get('StateDirectory')?.[0]}`;
    const logs = `/var/log/${s.get('LogsDirectory')?.[0]}`;
    expect(s.get('ExecStart')?.[0]).toContain(`--config ${conf}/egress.yaml`);
    const parsed = parseConfigText(await readFile(EXAMPLE, 'utf8'), { baseDir: conf, env: {} });
    if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
    const c = parsed.config;
    // ProtectSystem=strict: the service can write only these directories.
    expect(c.log.flows.startsWith(`${logs}/`)).toBe(true);
    expect(c.tls.ca_dir.startsWith(`${state}/`)).toBe(true);
    expect(c.baseline.dir.startsWith(`${state}/`)).toBe(true);
    // Port 53 is the reason for CAP_NET_BIND_SERVICE.
    expect(c.dns.listen?.port).toBe(53);
    expect(c.admin.listen.host).toBe('127.0.0.1');
    // The policies it names are the shipped ones, installed under /opt/egress-inspector.
    expect(c.policy.files).toEqual([`${INSTALL_DIR}/policies/never-bump.yaml`, `${INSTALL_DIR}/policies/default.yaml`]);
    for (const f of c.policy.files) expect(existsSync(f.replace(INSTALL_DIR, ROOT))).toBe(true);
    // logrotate rotates the very file the proxy writes.
    const rotate = await readFile(LOGROTATE, 'utf8');
    expect(rotate).toMatch(new RegExp(`^${c.log.flows.replaceAll('.', '\\.')} \\{`, 'm'));
  });
});

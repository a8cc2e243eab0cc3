/**
 * scripts/ensure-test-deps.sh, the "pretest" step: quiet and fast when every program is there; when one is
 * missing, root with apt-get installs it without starting services (policy-rc.d, removed only if the script
 * made it), anyone else gets the one command to run. `id` and `apt-get` are stubs on PATH here, so nothing is
 * installed and the root branch runs without root.
 *
 * It also keeps the list honest: every program a test spawns by name must be on it.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/cli.js';

const SCRIPT = join(ROOT, 'scripts', 'ensure-test-deps.sh');
const MISSING = 'egress-no-such-tool:egress-no-such-pkg';

interface Run {
  code: number;
  stderr: string;
  ms: number;
}

function runScript(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile('sh', [SCRIPT, ...args], { env, timeout: 10_000 }, (err, _stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stderr, ms: performance.now() - started });
    });
  });
}

/** The script's binary:package pairs. */
async function depList(): Promise<{ bin: string; pkg: string }[]> {
  const text = await readFile(SCRIPT, 'utf8');
  const body = /^DEPS="([^"]*)"/m.exec(text)?.[1] ?? '';
  return body.split(/\s+/).filter((p) => p !== '').map((p) => ({ bin: p.split(':')[0] ?? '', pkg: p.split(':')[1] ?? '' }));
}

async function* walk(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(p);
    else if (p.endsWith('.ts')) yield p;
  }
}

describe('scripts/ensure-test-deps.sh', () => {
  let dir: string;
  let stubs: string;
  let aptLog: string;
  let policyRc: string;

  /** PATH with the stubs first; `id -u` answers `uid`; `apt-get` logs and, for install, checks the policy-rc.d. */
  async function stubEnv(uid: number, aptInstallCode = 0): Promise<NodeJS.ProcessEnv> {
    await writeFile(join(stubs, 'id'), `#!/bin/sh\necho ${uid}\n`);
    await writeFile(
      join(stubs, 'apt-get'),
      [
        '#!/bin/sh',
        `echo "apt-get $*" >> "${aptLog}"`,
        `if [ "$1" != update ]; then sh "${policyRc}"; echo "policy-rc.d says $?" >> "${aptLog}"; exit ${aptInstallCode}; fi`,
        'exit 0',
        '',
      ].join('\n'),
    );
    await chmod(join(stubs, 'id'), 0o755);
    await chmod(join(stubs, 'apt-get'), 0o755);
    return { PATH: `${stubs}:/usr/bin:/bin`, EGRESS_POLICY_RC: policyRc, HOME: dir };
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'egress-deps-'));
    stubs = join(dir, 'bin');
    await mkdir(stubs);
    aptLog = join(dir, 'apt.log');
    policyRc = join(dir, 'policy-rc.d');
    // Every listed program present (as a stub): the "everything installed" machine.
    for (const { bin } of await depList()) {
      await writeFile(join(stubs, bin), '#!/bin/sh\nexit 0\n');
      await chmod(join(stubs, bin), 0o755);
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is silent, succeeds and takes well under a second when everything is present', async () => {
    const r = await runScript([], await stubEnv(1000));
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.ms).toBeLessThan(1000);
  });

  it('as a user: stops at once with the one command that installs what is missing', async () => {
    await rm(aptLog, { force: true });
    const r = await runScript([MISSING], await stubEnv(1000));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('missing: egress-no-such-tool');
    expect(r.stderr).toContain('  sudo apt-get install -y egress-no-such-pkg\n');
    expect(existsSync(aptLog)).toBe(false);
  });

  it('EGRESS_TEST_DEPS=skip skips the check', async () => {
    const r = await runScript([MISSING], { ...(await stubEnv(1000)), EGRESS_TEST_DEPS: 'skip' });
    expect(r.code).toBe(0);
  });

  it('as root: installs with services forbidden, and removes the policy-rc.d it created', async () => {
    await rm(aptLog, { force: true });
    await rm(policyRc, { force: true });
    const r = await runScript([MISSING, 'egress-other-tool:egress-no-such-pkg'], await stubEnv(0));
    expect(r.code, r.stderr).toBe(0);
    const log = await readFile(aptLog, 'utf8');
    // One package named once, even when two binaries come from it; services refused (101) during the install.
    expect(log).toBe('apt-get update -qq\napt-get install -y -qq --no-install-recommends egress-no-such-pkg\npolicy-rc.d says 101\n');
    expect(existsSync(policyRc)).toBe(false);
    expect(r.stderr).toContain('apt-get install -y --no-install-recommends egress-no-such-pkg');
  });

  it('as root: leaves an existing policy-rc.d alone, and removes its own even when apt-get fails', async () => {
    await writeFile(policyRc, '#!/bin/sh\nexit 101\n# the admin\'s own\n');
    const kept = await runScript([MISSING], await stubEnv(0));
    expect(kept.code).toBe(0);
    expect(await readFile(policyRc, 'utf8')).toContain("# the admin's own");
    await rm(policyRc);
    const failed = await runScript([MISSING], await stubEnv(0, 100));
    expect(failed.code).not.toBe(0);
    expect(existsSync(policyRc)).toBe(false);
  });

  it('lists every program a test spawns by name', async () => {
    const listed = new Set((await depList()).map((d) => d.bin));
    const spawned = new Map<string, string>();
    // execFile, execFileSync, spawn, spawnSync or run (a local helper) with a literal program name.
    const CALL = /\b(?:execFile|execFileSync|spawn|spawnSync|run)\(\s*'([a-z][a-z0-9-]*)'/g;
    for await (const file of walk(join(ROOT, 'test'))) {
      for (const m of (await readFile(file, 'utf8')).matchAll(CALL)) spawned.set(m[1] ?? '', relative(ROOT, file));
    }
    for (const always of ['sh', 'node']) spawned.delete(always);
    expect(spawned.size).toBeGreaterThan(3);
    for (const [bin, where] of spawned) expect(listed.has(bin), `${bin} (${where}) is not in scripts/ensure-test-deps.sh`).toBe(true);
    // The daemons the helpers find by path.
    for (const bin of ['redis-server', 'dnsmasq']) expect(listed.has(bin)).toBe(true);
  });
});

/**
 * README's quick start stays two commands, and what it says `npm start` listens on is what the embedded
 * defaults (src/config/schema.ts) are, so the two cannot drift apart.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/schema.js';
import { ROOT } from '../../helpers/cli.js';

describe('README quick start', () => {
  let readme: string;
  let quickStart: string;

  beforeAll(async () => {
    readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    quickStart = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('\n## ', readme.indexOf('## Quick start') + 1));
  });

  it('is exactly the two commands', () => {
    const block = /```sh\n([\s\S]*?)```/.exec(quickStart)?.[1] ?? '';
    const commands = block.split('\n').filter((l) => l.trim() !== '').map((l) => l.replace(/\s+#.*$/, ''));
    expect(commands).toEqual(['npm install && npm start', 'npm install && npm test']);
  });

  it('names the addresses npm start listens on, as the embedded defaults have them', () => {
    const row = (name: string): string => quickStart.split('\n').find((l) => l.startsWith(`| ${name}`)) ?? '';
    expect(row('forward proxy')).toContain(`\`${DEFAULTS.proxy.listen}\``);
    expect(row('DNS forwarder')).toContain(`\`${DEFAULTS.dns.listen}\``);
    expect(row('admin')).toContain(`\`${DEFAULTS.admin.listen}\``);
    expect(DEFAULTS.admin.listen.startsWith('127.0.0.1:')).toBe(true); // "loopback only"
    for (const f of DEFAULTS.policy.files) expect(quickStart).toContain(`\`${f}\``);
  });

  it('links the deployment kit, and the test prerequisites script exists', () => {
    expect(quickStart).toContain('(deploy/README.md)');
    expect(existsSync(join(ROOT, 'deploy', 'README.md'))).toBe(true);
    expect(quickStart).toContain('(scripts/ensure-test-deps.sh)');
    expect(existsSync(join(ROOT, 'scripts', 'ensure-test-deps.sh'))).toBe(true);
  });
});

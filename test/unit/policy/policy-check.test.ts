import { describe, expect, it } from 'vitest';
import { runPolicyCheck } from '../../../src/cli/policy-check.js';
import { capture } from '../../helpers/cli.js';


async function check(files: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  const code = await runPolicyCheck(files, { stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

describe('policy check', () => {
  it('exits 0 with a one-line summary for a valid policy', async () => {
    const { code, stdout, stderr } = await check(['policies/default.yaml', 'test/fixtures/policy/good/lists-only.yaml']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^policy ok: 9 rules, 4 lists, 2 files, 27 tests passed, sha256 [0-9a-f]{64}\n$/);
    expect(stderr).toBe('');
  });

  it('exits 1 with one file:line:col line per error on stdout and a count on stderr', async () => {
    const file = 'test/fixtures/policy/broken/list-without-operator.yaml';
    const { code, stdout, stderr } = await check([file]);
    expect(code).toBe(1);
    expect(stdout.split('\n').filter(Boolean)).toEqual([
      `${file}:7:25: destination.port: a list needs an operator, e.g. { in: […] }`,
      `${file}:11:21: process.name: a list needs an operator, e.g. { in: $hosts }`,
    ]);
    expect(stderr).toBe('policy check: 2 errors\n');
  });

  it('exits 1 for an unreadable file', async () => {
    const { code, stdout } = await check(['test/fixtures/policy/nope.yaml']);
    expect(code).toBe(1);
    expect(stdout).toBe('test/fixtures/policy/nope.yaml:1:1: cannot read the policy file (ENOENT)\n');
  });

  it('exits 1 when no file is given', async () => {
    const { code, stderr } = await check([]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/at least one policy file/);
  });
});

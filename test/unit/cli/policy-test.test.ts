import { describe, expect, it } from 'vitest';
import { runPolicyCheck } from '../../../src/cli/policy-check.js';
import { runPolicyTest } from '../../../src/cli/policy-test.js';
import { capture } from '../../helpers/cli.js';


async function run(command: typeof runPolicyTest, files: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  const code = await command(files, { stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

const WRONG = 'test/fixtures/policy/tests/wrong-expectation.yaml';

describe('policy test', () => {
  it('exits 0 on the shipped policy files, loaded in the default order', async () => {
    const { code, stdout, stderr } = await run(runPolicyTest, ['policies/never-bump.yaml', 'policies/default.yaml']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^policy test: \d+ tests passed\n$/);
  });

  it('exits 1 with file:line:col lines for a wrong expectation, and a count on stderr', async () => {
    const { code, stdout, stderr } = await run(runPolicyTest, [WRONG]);
    expect(code).toBe(1);
    expect(stdout.split('\n').filter(Boolean)).toEqual([
      `${WRONG}:17:5: test "port 443 is blocked (wrong on purpose)": expected action block, got allow (no rule decided)`,
      `${WRONG}:17:5: test "port 443 is blocked (wrong on purpose)": expected rule block-4444, got no rule decided (action allow)`,
    ]);
    expect(stderr).toBe('policy test: 1 test failed, 2 passed\n');
  });

  it('exits 1 with the load errors of a broken tests: block', async () => {
    const file = 'test/fixtures/policy/tests/bad-tests.yaml';
    const { code, stdout } = await run(runPolicyTest, [file]);
    expect(code).toBe(1);
    expect(stdout).toContain(`${file}:9:13: test flow: unknown field "process.nme" (did you mean "process.name"?)`);
    expect(stdout).toContain(`${file}:4:11: mode must be one of live, shadow (got string "dry-run")`);
  });

  it('a file without tests passes, saying so', async () => {
    const { code, stdout } = await run(runPolicyTest, ['test/fixtures/policy/good/lists-only.yaml']);
    expect(code).toBe(0);
    expect(stdout).toBe('policy test: 0 tests passed (the files have no tests:)\n');
  });

  it('exits 1 when no file is given', async () => {
    expect((await run(runPolicyTest, [])).code).toBe(1);
  });
});

describe('policy check runs the tests too', () => {
  it('fails a valid policy whose tests fail', async () => {
    const { code, stdout, stderr } = await run(runPolicyCheck, [WRONG]);
    expect(code).toBe(1);
    expect(stdout).toContain(`${WRONG}:17:5: test "port 443 is blocked (wrong on purpose)": expected action block`);
    expect(stderr).toBe('policy check: 1 test failed, 2 passed\n');
  });

  it('counts shadow rules and passed tests in its summary', async () => {
    const fixed = 'test/fixtures/policy/tests/shadow-ok.yaml';
    const { code, stdout } = await run(runPolicyCheck, [fixed]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^policy ok: 1 rule \(\+1 shadow\), 0 lists, 1 file, 2 tests passed, sha256 [0-9a-f]{64}\n$/);
  });
});

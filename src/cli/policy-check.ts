/**
 * `egress-inspector policy check FILE...`: validates policy files exactly as the proxy loads them.
 *
 * Exit 0 with a one-line summary on stdout when valid and the files' `tests:` pass. Exit 1 when not, with one `file:line:col: message`
 * line per error on **stdout** — the errors are the command's output, so `policy check f | head` and editor
 * integrations (compilers print the same format) read them directly — and a count on stderr.
 */
import { loadPolicy } from '../policy/load.js';
import { reportPolicyTests } from './policy-test.js';

export interface PolicyCheckIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

export async function runPolicyCheck(files: string[], io: PolicyCheckIo): Promise<number> {
  if (files.length === 0) {
    io.stderr.write('policy check: give at least one policy file\n');
    return 1;
  }
  const result = await loadPolicy(files);
  if (!result.ok) {
    for (const issue of result.errors) io.stdout.write(`${issue.format()}\n`);
    io.stderr.write(`policy check: ${plural(result.errors.length, 'error')}\n`);
    return 1;
  }
  const { policy } = result;
  // The files' `tests:` too: a policy whose own tests fail is not one to deploy (docs/policy.md "Testing a policy").
  const tests = reportPolicyTests(policy, io);
  if (tests.failed > 0) {
    io.stderr.write(`policy check: ${plural(tests.failed, 'test')} failed, ${tests.passed} passed\n`);
    return 1;
  }
  const shadow = policy.shadowRules.length === 0 ? '' : ` (+${policy.shadowRules.length} shadow)`;
  const testCount = policy.tests.length === 0 ? '' : `, ${plural(policy.tests.length, 'test')} passed`;
  io.stdout.write(
    `policy ok: ${plural(policy.rules.length, 'rule')}${shadow}, ${plural(policy.lists.size, 'list')}, ` +
      `${plural(policy.files.length, 'file')}${testCount}, sha256 ${policy.sha256}\n`,
  );
  return 0;
}

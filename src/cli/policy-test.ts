/**
 * `egress-inspector policy test FILE...`: runs the `tests:` of policy files (docs/policy.md "Testing a policy").
 *
 * The files are compiled as one policy, in the order given (as the proxy loads `policy.files`), and every test
 * runs through the real evaluator (src/policy/run-tests.ts). Exit 0 when every test passes; exit 1 when a file
 * is invalid or a test fails, with one `file:line:col: message` line per problem on stdout (as `policy check`)
 * and a count on stderr.
 */
import { loadPolicy } from '../policy/load.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { formatTestFailures, runPolicyTests } from '../policy/run-tests.js';
import type { PolicyCheckIo } from './policy-check.js';

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** Runs the tests of a compiled policy; writes failure lines to stdout. Returns [passed, failed]. */
export function reportPolicyTests(policy: CompiledPolicy, io: PolicyCheckIo): { readonly passed: number; readonly failed: number } {
  let failed = 0;
  for (const result of runPolicyTests(policy)) {
    if (result.failures.length === 0) continue;
    failed++;
    for (const line of formatTestFailures(result)) io.stdout.write(`${line}\n`);
  }
  return { passed: policy.tests.length - failed, failed };
}

export async function runPolicyTest(files: string[], io: PolicyCheckIo): Promise<number> {
  if (files.length === 0) {
    io.stderr.write('policy test: give at least one policy file\n');
    return 1;
  }
  const result = await loadPolicy(files);
  if (!result.ok) {
    for (const issue of result.errors) io.stdout.write(`${issue.format()}\n`);
    io.stderr.write(`policy test: ${plural(result.errors.length, 'error')}\n`);
    return 1;
  }
  const { passed, failed } = reportPolicyTests(result.policy, io);
  if (failed > 0) {
    io.stderr.write(`policy test: ${plural(failed, 'test')} failed, ${passed} passed\n`);
    return 1;
  }
  io.stdout.write(`policy test: ${plural(passed, 'test')} passed${passed === 0 ? ' (the files have no tests:)' : ''}\n`);
  return 0;
}

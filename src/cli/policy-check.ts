/**
 * `egress-inspector policy check FILE...`: validates policy files exactly as the proxy loads them.
 *
 * Exit 0 with a one-line summary on stdout when valid. Exit 1 when not, with one `file:line:col: message`
 * line per error on **stdout** — the errors are the command's output, so `policy check f | head` and editor
 * integrations (compilers print the same format) read them directly — and a count on stderr.
 */
import { loadPolicy } from '../policy/load.js';

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
  io.stdout.write(
    `policy ok: ${plural(policy.rules.length, 'rule')}, ${plural(policy.lists.size, 'list')}, ` +
      `${plural(policy.files.length, 'file')}, sha256 ${policy.sha256}\n`,
  );
  return 0;
}

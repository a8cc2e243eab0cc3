/**
 * `egress-inspector policy import-sigma RULE.yml|DIR… [-o FILE] [--action tag|block] [--json]`: converts
 * Sigma rules (docs/sigma.md) into one policy file.
 *
 * Without --json the policy goes to FILE (or stdout) and a summary to stderr: how many rules converted, and
 * each refused rule with its reason. With --json a machine summary goes to stdout
 * (`{converted, refused, rules, refusals, output}`) and the policy is written only with -o. Directories are
 * read recursively for `*.yml` / `*.yaml`, in sorted order so the output is stable.
 *
 * Exit 0 when at least one rule converted and every input could be read; 1 otherwise.
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImportAction } from '../policy/sigma/convert.js';
import { importSigma, type SigmaSource } from '../policy/sigma/import.js';

export interface ImportSigmaOptions {
  readonly output?: string;
  readonly action?: string;
  readonly json?: boolean;
}

export interface ImportSigmaIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

const RULE_FILE = /\.ya?ml$/i;
/** Files read from directories at most; SigmaHQ holds about 3,500 rules. */
const MAX_FILES = 20_000;

async function collect(path: string, out: string[], errors: string[]): Promise<void> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    errors.push(`${path}: cannot read (${err instanceof Error && 'code' in err ? String(err.code) : String(err)})`);
    return;
  }
  if (!info.isDirectory()) {
    out.push(path);
    return;
  }
  const entries = (await readdir(path, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    if (out.length >= MAX_FILES) return;
    const child = join(path, entry.name);
    if (entry.isDirectory()) await collect(child, out, errors);
    else if (entry.isFile() && RULE_FILE.test(entry.name)) out.push(child);
  }
}

function isImportAction(value: string): value is ImportAction {
  return value === 'tag' || value === 'block';
}

export async function runImportSigma(inputs: readonly string[], options: ImportSigmaOptions, io: ImportSigmaIo): Promise<number> {
  const action = options.action ?? 'tag';
  if (!isImportAction(action)) {
    io.stderr.write(`policy import-sigma: --action must be tag or block (got "${action}")\n`);
    return 1;
  }
  if (inputs.length === 0) {
    io.stderr.write('policy import-sigma: give at least one Sigma rule file or directory\n');
    return 1;
  }
  const files: string[] = [];
  const errors: string[] = [];
  for (const input of inputs) await collect(input, files, errors);
  const sources: SigmaSource[] = [];
  for (const file of files) {
    try {
      sources.push({ source: file, text: await readFile(file, 'utf8') });
    } catch (err) {
      errors.push(`${file}: cannot read (${err instanceof Error && 'code' in err ? String(err.code) : String(err)})`);
    }
  }
  const result = importSigma(sources, { action, generatedFrom: `policy import-sigma --action ${action} ${inputs.join(' ')}` });
  if (options.output !== undefined) {
    try {
      await writeFile(options.output, result.policyText);
    } catch (err) {
      io.stderr.write(`policy import-sigma: cannot write ${options.output} (${err instanceof Error ? err.message : String(err)})\n`);
      return 1;
    }
  } else if (options.json !== true) {
    io.stdout.write(result.policyText);
  }
  const ok = errors.length === 0 && result.converted.length > 0;
  if (options.json === true) {
    const summary = {
      converted: result.converted.length,
      refused: result.refused.length,
      unreadable: errors,
      output: options.output ?? null,
      rules: result.converted.map((rule) => ({ id: rule.id, sigma_id: rule.sigma.id, title: rule.sigma.title, source: rule.sigma.source, author: rule.sigma.author })),
      refusals: result.refused.map((r) => ({ source: r.source, sigma_id: r.id, title: r.title, reason: r.reason })),
    };
    io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return ok ? 0 : 1;
  }
  for (const error of errors) io.stderr.write(`policy import-sigma: ${error}\n`);
  for (const r of result.refused) {
    io.stderr.write(`refused ${r.source}${r.id === null ? '' : ` (${r.id})`}: ${r.reason}\n`);
  }
  const total = result.converted.length + result.refused.length;
  io.stderr.write(`policy import-sigma: ${result.converted.length} of ${total} rule${total === 1 ? '' : 's'} converted, ${result.refused.length} refused\n`);
  return ok ? 0 : 1;
}

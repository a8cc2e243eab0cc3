/**
 * Reading policy files from disk: read every file (async), parse each, compile them together. The pure part
 * (`buildPolicy`) takes bytes, so tests and the policy store share exactly the path `policy check` uses.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { compilePolicy } from './compile.js';
import type { CompiledPolicy } from './compile.js';
import { parsePolicyText, PolicyIssue } from './parse.js';
import type { WrittenPolicyFile } from './parse.js';

export { PolicyIssue } from './parse.js';
export type { CompiledPolicy, CompiledRule } from './compile.js';

export type LoadResult = { readonly ok: true; readonly policy: CompiledPolicy } | { readonly ok: false; readonly errors: readonly PolicyIssue[] };

export interface PolicySource {
  /** The path as given; it is the `file` of every issue. */
  readonly file: string;
  readonly bytes: Uint8Array;
}

/** Parses and compiles policy sources given in order. Pure; never throws for any bytes. */
export function buildPolicy(sources: readonly PolicySource[]): LoadResult {
  const hash = createHash('sha256');
  const written: WrittenPolicyFile[] = [];
  const issues: PolicyIssue[] = [];
  let unreadable = false;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (const source of sources) {
    hash.update(source.bytes);
    let text: string;
    try {
      text = decoder.decode(source.bytes);
    } catch {
      issues.push(new PolicyIssue({ file: source.file, line: 1, col: 1 }, 'the file is not valid UTF-8'));
      unreadable = true;
      continue;
    }
    const parsed = parsePolicyText(source.file, text);
    issues.push(...parsed.issues);
    if (parsed.written === null) unreadable = true;
    else written.push(parsed.written);
  }
  // With a file missing from the set, its lists are missing too: compiling the rest would report every use
  // of them as an unknown list. Report what was found so far and stop.
  if (unreadable) return { ok: false, errors: issues };
  if (sources.length === 0) {
    return { ok: false, errors: [new PolicyIssue({ file: '(none)', line: 1, col: 1 }, 'no policy files given')] };
  }
  return compilePolicy(written, hash.digest('hex'), issues);
}

/** Reads, validates and compiles the policy files at `paths`, in order. Never throws. */
export async function loadPolicy(paths: readonly string[]): Promise<LoadResult> {
  const reads = await Promise.all(
    paths.map(async (file) => {
      try {
        return { file, bytes: await readFile(file) as Uint8Array, error: null };
      } catch (err) {
        const reason = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : String(err);
        return { file, bytes: null, error: new PolicyIssue({ file, line: 1, col: 1 }, `cannot read the policy file (${reason})`, 'POLICY_READ') };
      }
    }),
  );
  const readErrors = reads.flatMap((read) => (read.error === null ? [] : [read.error]));
  if (readErrors.length > 0) {
    // Still check the readable files on their own so one run reports everything it can; cross-file checks
    // (lists, duplicate ids) wait until every file can be read.
    const others = reads.flatMap((read) => (read.bytes === null ? [] : parseAlone(read.file, read.bytes)));
    return { ok: false, errors: [...readErrors, ...others] };
  }
  return buildPolicy(reads.map((read) => ({ file: read.file, bytes: read.bytes ?? new Uint8Array() })));
}

function parseAlone(file: string, bytes: Uint8Array): readonly PolicyIssue[] {
  const text = new TextDecoder('utf-8').decode(bytes);
  return parsePolicyText(file, text).issues;
}

import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { runPolicyReplay, type PolicyReplayOptions } from '../../../src/cli/replay.js';
import { ROOT } from '../../helpers/cli.js';

const FIX = join(ROOT, 'test', 'fixtures', 'replay');
const FLOWS = join(FIX, 'flows.jsonl');
const POLICY = join(FIX, 'policy.yaml');
const CANDIDATE = join(FIX, 'candidate.yaml');

async function run(options: PolicyReplayOptions, stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await runPolicyReplay(options, { stdin: Readable.from([Buffer.from(stdin)]), stdout, stderr });
  return { code, stdout: out, stderr: err };
}

describe('egress-inspector policy replay (command function)', () => {
  it('--json: one object with total, changed and the changes; exit 3; the bad line reported with file:line', async () => {
    const r = await run({ flows: [FLOWS], policy: [CANDIDATE], json: true });
    expect(r.code).toBe(3);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({ total: 4, changed: 1, skipped: { builtin: 1 }, invalid_lines: 1, invalid_examples: [{ file: FLOWS, line: 3 }] });
    expect(out['changes']).toEqual([
      expect.objectContaining({ rule: 'block-c2', change: 'newly_blocked', count: 1, examples: [expect.objectContaining({ url: 'http://beacon.c2.example/a', process: 'wscript.exe', at: `${FLOWS}:2` })] }),
      expect.objectContaining({ rule: 'block-c2', change: 'tags_changed', count: 1 }),
    ]);
  });

  it('text: per rule and change a count and example flows', async () => {
    const r = await run({ flows: [FLOWS], policy: [CANDIDATE] });
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('newly blocked by block-c2: 1 flow');
    expect(r.stdout).toMatch(/2026-12-01T10:00:01\.000Z 10\.0\.0\.8:50002 wscript\.exe → beacon\.c2\.example:80 \(203\.0\.113\.9\) http:\/\/beacon\.c2\.example\/a \[allow → block \(block-c2\)\]/);
    expect(r.stdout).toContain(`${FLOWS}:3: not JSON`);
    expect(r.stderr).toBe(''); // not a terminal: no progress line
  });

  it('identical policies: exit 0 and no change, recorded or --against', async () => {
    expect(await run({ flows: [FLOWS], policy: [POLICY] })).toMatchObject({ code: 0, stdout: expect.stringContaining('no change') });
    expect((await run({ flows: [FLOWS], policy: [CANDIDATE], against: [CANDIDATE], json: true })).code).toBe(0);
  });

  it('reads gzip by its magic bytes whatever the name, several files, and - for stdin', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'replay-cli-'));
    try {
      const gz = join(dir, 'flows.log.1');
      await writeFile(gz, gzipSync(await readFile(FLOWS)));
      const r = await run({ flows: [gz, '-'], policy: [CANDIDATE], json: true }, await readFile(FLOWS, 'utf8'));
      expect(JSON.parse(r.stdout)).toMatchObject({ total: 8, changed: 2, invalid_lines: 2 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each<[string, PolicyReplayOptions, RegExp]>([
    ['no --flows', { policy: [POLICY] }, /give --flows/],
    ['an invalid policy', { flows: [FLOWS], policy: [join(FIX, 'flows.jsonl')] }, /candidate \(--policy\) policy is not valid/],
    ['a missing flow file', { flows: [join(FIX, 'nope.jsonl')], policy: [POLICY] }, /ENOENT/],
    ['a bad --examples', { flows: [FLOWS], policy: [POLICY], examples: 'many' }, /--examples/],
    ['stdin twice', { flows: ['-', '-'], policy: [POLICY] }, /once/],
  ])('%s: exit 1 with a message', async (_name, options, message) => {
    const r = await run(options);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
  });

  it('input without a single record is an error (wrong file given)', async () => {
    const r = await run({ flows: ['-'], policy: [POLICY] }, 'garbage\nmore garbage\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no flow record/);
  });
});

describe('policy replay as a process', () => {
  it('spawned: real stdin/stdout, exit code 3 on changes, 0 without', async () => {
    // Through the command function (src/main.ts wires it as `policy replay`; this test does not depend on that).
    const script = `import { runPolicyReplay } from ${JSON.stringify(join(ROOT, 'src', 'cli', 'replay.ts'))};
      const [policy, json] = process.argv.slice(-2);
      process.exitCode = await runPolicyReplay({ flows: ['-'], policy: [policy], json: json === 'json' }, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });`;
    const spawnRun = (policy: string): Promise<{ code: number | null; stdout: string }> =>
      new Promise((resolve) => {
        const child = spawn(join(ROOT, 'node_modules', '.bin', 'tsx'), ['--input-type=module', '-e', script, policy, 'json'], { cwd: ROOT });
        let stdout = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.on('close', (code) => resolve({ code, stdout }));
        void readFile(FLOWS).then((bytes) => child.stdin.end(bytes));
      });
    const changed = await spawnRun(CANDIDATE);
    expect(changed.code).toBe(3);
    expect(JSON.parse(changed.stdout)).toMatchObject({ total: 4, changed: 1 });
    expect((await spawnRun(POLICY)).code).toBe(0);
  }, 30_000);
});

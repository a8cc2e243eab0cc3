import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCoverage, type CoverageIo } from '../../../src/cli/coverage.js';
import type { CoverageReport } from '../../../src/coverage/tally.js';
import type { CoverageInputSummary } from '../../../src/coverage/read-flows.js';
import { ROOT } from '../../helpers/cli.js';

const FIXTURE = join(ROOT, 'test', 'fixtures', 'coverage', 'flows.jsonl');

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(args: Parameters<typeof runCoverage>[0], opts: { stdin?: string | Buffer; tty?: boolean } = {}): Promise<Captured> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const io: CoverageIo = {
    stdin: Readable.from(opts.stdin === undefined ? [] : [Buffer.from(opts.stdin)]),
    stdout: Object.assign(stdout, { isTTY: opts.tty === true }),
    stderr,
  };
  const code = await runCoverage(args, io);
  return { code, stdout: out, stderr: err };
}

type JsonOut = CoverageReport & { input: CoverageInputSummary };

describe('egress-inspector coverage --flows', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coverage-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--json: overall share, follow-up counted once, unmanaged clients, stale telemetry', async () => {
    const r = await run({ flows: [FIXTURE], json: true });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout) as JsonOut;
    expect(report.flows).toBe(13);
    expect(report.attributed).toBe(7);
    expect(report.attributed_share).toBeCloseTo(7 / 13, 3);
    expect(report.by_method).toEqual({ telemetry: 6, header: 1, none: 6 });
    expect(report.late_attributed).toBe(1);
    expect(report.managed_source).toBe('flow-records');
    const ws5 = report.hosts.find((h) => h['source.ip'] === '10.0.0.5');
    expect(ws5).toMatchObject({ managed: true, flows: 5, attributed: 5, attributed_share: 1, host_names: ['ws5.corp.local'], last_flow: '2026-03-02T10:38:00.000Z' });
    expect(report.unmanaged.map((h) => [h['source.ip'], h.flows])).toEqual([
      ['10.0.0.6', 4],
      ['10.0.0.7', 3],
      ['10.0.0.8', 1],
    ]);
    expect(report.stale_telemetry).toEqual([
      expect.objectContaining({ 'source.ip': '10.0.0.6', host_names: ['ws6.corp.local'], last_telemetry: '2026-03-02T10:00:05.000Z', last_flow: '2026-03-02T10:40:00.000Z', minutes_since_telemetry: 39 }),
    ]);
    expect(report.input).toMatchObject({ records: 13, followups: 2, invalid_lines: 1 });
    expect(report.input.invalid_examples[0]).toMatchObject({ line: 5 });
    // The follow-up for a flow of a log not given is not counted, and the report says so.
    expect(report.bounds).toMatchObject({ followups_unmatched: 1, cut: true, evicted_clients: 0 });
  });

  it('--stale moves the threshold', async () => {
    const report = JSON.parse((await run({ flows: [FIXTURE], json: true, stale: '45' })).stdout) as JsonOut;
    expect(report.stale_telemetry).toEqual([]);
    expect(report.stale_minutes).toBe(45);
  });

  it('reads gzip by its magic bytes (no .gz name) and stdin as -', async () => {
    const gz = join(dir, 'rotated.1');
    await writeFile(gz, gzipSync(await readFile(FIXTURE)));
    const fromGzip = JSON.parse((await run({ flows: [gz], json: true })).stdout) as JsonOut;
    expect(fromGzip.flows).toBe(13);
    const fromStdin = JSON.parse((await run({ flows: ['-'], json: true }, { stdin: await readFile(FIXTURE) })).stdout) as JsonOut;
    expect(fromStdin.attributed).toBe(7);
  });

  it('several files are one log: a follow-up in the second file joins a flow of the first', async () => {
    const lines = (await readFile(FIXTURE, 'utf8')).split('\n');
    const a = join(dir, 'a.jsonl');
    const b = join(dir, 'b.jsonl');
    await writeFile(a, `${lines.slice(0, 6).join('\n')}\n`);
    await writeFile(b, `${lines.slice(6).join('\n')}\n`);
    const report = JSON.parse((await run({ flows: [a, b], json: true })).stdout) as JsonOut;
    expect(report.late_attributed).toBe(1);
    expect(report.flows).toBe(13);
  });

  it('plain text when stdout is not a terminal: tab-separated client lines', async () => {
    const r = await run({ flows: [FIXTURE] });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^coverage: 13 flows, 53\.8% attributed \(telemetry 6, header 1, none 6; 1 late/);
    expect(r.stdout).toContain('unmanaged clients making flows: 3');
    expect(r.stdout).toMatch(/\n {2}10\.0\.0\.6\tunmanaged\t4\t25\.0%\t1\/0\/3\t/);
    expect(r.stdout).toContain('stale telemetry (attributed before, none in the last 15 min, still making flows): 1');
    expect(r.stdout).toContain('1 follow-up record for flows not seen');
  });

  it('an aligned table on a terminal', async () => {
    const r = await run({ flows: [FIXTURE] }, { tty: true });
    expect(r.stdout).not.toContain('\t');
    expect(r.stdout).toMatch(/source\.ip {2,}managed {2,}flows/);
  });

  it.each([
    [{ flows: [] }, /give --flows/],
    [{ flows: ['-', '-'] }, /stdin.*once/],
    [{ flows: [FIXTURE], stale: 'ten' }, /--stale/],
    [{ flows: [FIXTURE], stale: '0' }, /--stale/],
    [{ flows: ['/nonexistent/flows.jsonl'] }, /nonexistent/],
  ])('exit 1 on bad input %#', async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('exit 1 when no line is a flow record', async () => {
    const r = await run({ flows: ['-'] }, { stdin: 'garbage\n{"a":1}\n' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no flow record in the input \(2 invalid lines\)/);
  });

  it('exit 1 on a corrupt gzip stream', async () => {
    const bad = join(dir, 'bad.gz');
    await writeFile(bad, Buffer.concat([gzipSync(Buffer.from('{}\n')).subarray(0, 12), Buffer.from('not deflate data at all')]));
    const r = await run({ flows: [bad] });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('bad.gz');
  });
});

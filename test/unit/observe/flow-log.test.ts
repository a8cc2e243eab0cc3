import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, renameSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFlowLog } from '../../../src/observe/flow-log.js';

const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : []);

async function until(pred: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('flow log', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('writes one line per record, and every queued record is on disk after flush()', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'egress-log-'));
    dirs.push(dir);
    const file = join(dir, 'flows.jsonl');
    const log = openFlowLog(file, () => undefined);
    for (let i = 0; i < 100; i++) log.write(JSON.stringify({ n: i }));
    await until(() => existsSync(file));
    log.flush();
    await until(() => lines(file).length === 100);
    expect(lines(file).map((l) => (JSON.parse(l) as { n: number }).n)).toEqual([...Array(100).keys()]);
    await log.close();
  });

  it('reopen() after a rotation sends later records to a new file, losing none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'egress-log-'));
    dirs.push(dir);
    const file = join(dir, 'flows.jsonl');
    const log = openFlowLog(file, () => undefined);
    log.write('{"n":1}');
    log.flush();
    await until(() => lines(file).length === 1);
    renameSync(file, `${file}.1`); // what logrotate does
    log.reopen?.();
    log.write('{"n":2}');
    await until(() => lines(file).length === 1);
    log.flush();
    await log.close();
    expect(lines(`${file}.1`)).toEqual(['{"n":1}']);
    expect(lines(file)).toEqual(['{"n":2}']);
  });
});

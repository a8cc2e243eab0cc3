import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFlowLog } from '../../../src/observe/flow-log.js';

/** The cluster primary's flow log (src/observe/flow-log.ts, writeLines): worker batches written as they came. */
describe('flow log of a cluster primary', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tempFile = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'egress-sink-'));
    dirs.push(dir);
    return join(dir, 'flows.jsonl');
  };
  const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : []);
  const batch = (from: number, n: number): Uint8Array => Buffer.from(Array.from({ length: n }, (_, i) => `${JSON.stringify({ n: from + i, s: 'é' })}\n`).join(''));

  it('writes batches of whole lines byte for byte, with single records in between, nothing lost at close', async () => {
    const file = tempFile();
    const log = openFlowLog(file, () => undefined);
    log.writeLines(batch(0, 500));
    log.write(JSON.stringify({ n: 500, s: 'é' }));
    log.writeLines(batch(501, 499));
    log.writeLines(new Uint8Array(0));
    log.flush();
    await log.close();
    const got = lines(file).map((l) => JSON.parse(l) as { n: number; s: string });
    expect(got.map((r) => r.n)).toEqual([...Array(1000).keys()]);
    expect(got.every((r) => r.s === 'é')).toBe(true);
  });

  it('takes a view into a larger buffer (what the IPC deserializer hands over) without the bytes around it', async () => {
    const file = tempFile();
    const log = openFlowLog(file, () => undefined);
    const whole = Buffer.from('garbage{"n":1}\n{"n":2}\nmore garbage');
    log.writeLines(whole.subarray(7, 7 + 16));
    log.flush();
    await log.close();
    expect(lines(file)).toEqual(['{"n":1}', '{"n":2}']);
  });

  it('reopen() after rotation: earlier batches in the old file, later ones in the new', async () => {
    const file = tempFile();
    const log = openFlowLog(file, () => undefined);
    log.writeLines(batch(0, 3));
    for (let i = 0; i < 100 && lines(file).length < 3; i++) {
      log.flush(); // a no-op until the file is open
      await new Promise((r) => setTimeout(r, 10));
    }
    renameSync(file, `${file}.1`);
    log.reopen?.();
    log.writeLines(batch(3, 2));
    // The new file opens asynchronously; the periodic flush writes the batch there.
    for (let i = 0; i < 200 && lines(file).length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    await log.close();
    expect(lines(`${file}.1`).length).toBe(3);
    expect(lines(file).map((l) => (JSON.parse(l) as { n: number }).n)).toEqual([3, 4]);
  });

  it('a string log takes batches too (through a string)', async () => {
    const file = tempFile();
    const log = openFlowLog(file, () => undefined);
    log.writeLines(batch(0, 2));
    log.flush();
    await log.close();
    expect(lines(file).length).toBe(2);
  });
});

import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { isGzip, readFileLines, readLines } from '../../../src/replay/read-lines.js';

async function linesOf(chunks: readonly (Buffer | string)[], maxLineBytes?: number): Promise<{ lines: string[]; overlong: Array<[number, number]> }> {
  const lines: string[] = [];
  const overlong: Array<[number, number]> = [];
  await readLines(Readable.from(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c))), { line: (t, n) => lines.push(`${n}:${t}`), overlong: (n, b) => overlong.push([n, b]) }, maxLineBytes === undefined ? {} : { maxLineBytes });
  return { lines, overlong };
}

/** Splits bytes into pieces of `size` (a pipe delivering small chunks). */
function pieces(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

describe('reading flow-log lines', () => {
  const text = '{"a":1}\n{"b":"é→"}\r\n\nlast';

  it('splits lines, keeps blank ones numbered, gives the last line without a newline', async () => {
    expect((await linesOf([text])).lines).toEqual(['1:{"a":1}', '2:{"b":"é→"}\r', '3:', '4:last']);
  });

  it('the same lines whatever the chunking (a multi-byte character split across chunks included)', async () => {
    for (const size of [1, 2, 3, 7]) expect((await linesOf(pieces(Buffer.from(text), size))).lines).toEqual(['1:{"a":1}', '2:{"b":"é→"}\r', '3:', '4:last']);
  });

  it('gzip is told by its magic bytes, not by a name; several members are one stream; 1-byte chunks work', async () => {
    const gz = Buffer.concat([gzipSync('{"a":1}\n{"b":2'), gzipSync('}\n{"c":3}\n')]);
    expect(isGzip(gz)).toBe(true);
    expect(isGzip(Buffer.from('{"'))).toBe(false);
    expect((await linesOf([gz])).lines).toEqual(['1:{"a":1}', '2:{"b":2}', '3:{"c":3}']);
    expect((await linesOf(pieces(gz, 1))).lines).toEqual(['1:{"a":1}', '2:{"b":2}', '3:{"c":3}']);
  });

  it('a corrupt gzip stream is an error, not a silent end', async () => {
    const gz = gzipSync('{"a":1}\n'.repeat(1000));
    await expect(linesOf([gz.subarray(0, gz.length - 40)])).rejects.toThrow(/unexpected end|incorrect|invalid/i);
  });

  it('a line longer than the limit is dropped and reported, with the lines around it kept', async () => {
    const long = 'x'.repeat(100);
    for (const size of [1, 16, 1000]) {
      const got = await linesOf(pieces(Buffer.from(`ok\n${long}\nafter\n${long}`), size), 50);
      expect(got.lines).toEqual(['1:ok', '3:after']);
      expect(got.overlong).toEqual([[2, 100], [4, 100]]);
    }
  });

  it('empty input: no lines', async () => {
    expect((await linesOf([])).lines).toEqual([]);
  });
});

describe('reading a flow-log file (two buffers, the next chunk read while this one is handled)', () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'read-lines-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // ~3.4 MB: more than three 1 MiB chunks, lines of every length from 0 to 2,999 bytes, multi-byte characters
  // falling across chunk boundaries somewhere.
  const lines = Array.from({ length: 3000 }, (_, i) => `${i}:${'é→x'.repeat(i % 1000)}`);
  const text = `${lines.join('\n')}\n`;

  it('gives every line of a file larger than both buffers, in order and numbered, plain or gzip', async () => {
    const plain = join(dir, 'flows.jsonl');
    const gz = join(dir, 'flows.log.1');
    writeFileSync(plain, text);
    writeFileSync(gz, gzipSync(text));
    expect(Buffer.byteLength(text)).toBeGreaterThan(3 * 1024 * 1024);
    for (const file of [plain, gz]) {
      const got: string[] = [];
      let bytes = 0;
      await readFileLines(file, { line: (t, n) => got.push(`${n}|${t}`), overlong: () => expect.fail('no line is overlong') }, { onBytes: (b) => (bytes += b) });
      expect(got).toEqual(lines.map((l, i) => `${i + 1}|${l}`));
      expect(bytes).toBe(file === plain ? Buffer.byteLength(text) : gzipSync(text).length);
    }
  });

  it('a handler that throws ends the read with its error, with a read still in flight (the file is closed after it)', async () => {
    const plain = join(dir, 'throws.jsonl');
    writeFileSync(plain, text);
    let seen = 0;
    const failing = readFileLines(plain, {
      line: () => {
        if (++seen === 5) throw new Error('handler failed at line 5');
      },
      overlong: () => undefined,
    });
    await expect(failing).rejects.toThrow('handler failed at line 5');
    // The same file reads whole again afterwards.
    let count = 0;
    await readFileLines(plain, { line: () => void count++, overlong: () => undefined });
    expect(count).toBe(lines.length);
  });
});


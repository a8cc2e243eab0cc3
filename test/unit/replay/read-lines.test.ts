import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { isGzip, readLines } from '../../../src/replay/read-lines.js';

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

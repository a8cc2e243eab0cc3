import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HEAP_GROWING_PERCENT, explicitFlags, planHeap } from '../../../src/cli/heap.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('explicitFlags', () => {
  it('finds V8 flags on the command line and in NODE_OPTIONS, in either spelling', () => {
    const flags = explicitFlags(['--heap_growing_percent=0', '--import', 'tsx', '--no-concurrent-marking'], ' --trace-gc  --Max-Old-Space-Size=512 ');
    expect([...flags].sort()).toEqual(['concurrent-marking', 'heap-growing-percent', 'import', 'max-old-space-size', 'trace-gc']);
  });

  it('ignores what is not a flag (values, an empty or missing NODE_OPTIONS)', () => {
    expect(explicitFlags(['tsx', '-e', ''], undefined).size).toBe(0);
    expect(explicitFlags([], '').size).toBe(0);
  });
});

describe('planHeap', () => {
  it('sets the growing factor by default and leaves it to an operator who set it', () => {
    expect(planHeap(new Set())).toEqual({ growingPercent: HEAP_GROWING_PERCENT, holdYoungAtStart: true });
    expect(planHeap(new Set(['max-semi-space-size', 'trace-gc']))).toEqual({ growingPercent: HEAP_GROWING_PERCENT, holdYoungAtStart: true });
    expect(planHeap(new Set(['heap-growing-percent']))).toEqual({ growingPercent: null, holdYoungAtStart: true });
    expect(planHeap(new Set(['semi-space-growth-factor']))).toEqual({ growingPercent: HEAP_GROWING_PERCENT, holdYoungAtStart: false });
  });
});

/**
 * New-space capacity (MB) in a child process after start-up-like allocation (everything survives) while held,
 * then after `started()` and the same again: `held,after`.
 */
function youngCapacity(execArgv: string): Promise<[number, number]> {
  const script = `
    const v8 = (await import('node:v8')).default;
    const { tuneHeap } = await import(${JSON.stringify(join(ROOT, 'src', 'cli', 'heap.ts'))});
    const heap = tuneHeap({ execArgv: ${execArgv}, nodeOptions: undefined });
    const keep = [];
    const survive = () => { for (let i = 0; i < 300000; i++) keep.push({ i, s: 'v' + i }); };
    const newSpace = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1e6;
    survive();
    const held = newSpace();
    heap.started();
    survive();
    process.stdout.write(held + ',' + newSpace());
  `;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, timeout: 30_000, env: { ...process.env, NODE_OPTIONS: '' } }, (err, stdout, stderr) => {
      if (err !== null) return reject(new Error(`${err.message}\n${stderr}`));
      const [held, after] = stdout.trim().split(',').map(Number);
      resolve([held ?? Number.NaN, after ?? Number.NaN]);
    });
  });
}

describe('the young generation while the program starts', () => {
  it('stays at its first size until started(), then grows with the load as V8 would', async () => {
    const [[held, after], [operatorHeld]] = await Promise.all([youngCapacity('[]'), youngCapacity("['--semi-space-growth-factor=2']")]);
    // Unheld, this allocation grows the new space to its maximum (two 16 MB semi-spaces); held, it stays where the
    // child's own start (tsx's loader, before tuneHeap runs) left it: 1–2 MB semi-spaces.
    expect(held).toBeLessThanOrEqual(8.4);
    expect(after).toBeGreaterThanOrEqual(16);
    expect(after).toBeGreaterThan(held * 3);
    // The operator's own flag wins: nothing is held.
    expect(operatorHeld).toBeGreaterThanOrEqual(16);
  });
});

/**
 * The effect, in a child process (V8 flags are per process): after a full GC, V8 prints the factor its next
 * old-generation limit was computed with (`--trace-gc-verbose`: "[HeapController] Limit: … (factor)").
 */
function limitFactor(tune: 'tuned' | 'operator-set'): Promise<string> {
  const script = `
    const { tuneHeap } = await import(${JSON.stringify(join(ROOT, 'src', 'cli', 'heap.ts'))});
    tuneHeap({ execArgv: ${tune === 'tuned' ? '[]' : "['--heap-growing-percent=0']"}, nodeOptions: undefined });
    globalThis.gc();
  `;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--expose-gc', '--trace-gc-verbose', '--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: ROOT, timeout: 30_000, env: { ...process.env, NODE_OPTIONS: '' } },
      (err, stdout, stderr) => {
        if (err !== null) return reject(new Error(`${err.message}\n${stderr}`));
        const factors = [...stdout.matchAll(/\[HeapController\] Limit: [^\n]*\((\d+\.\d)\)/g)].map((m) => m[1]);
        resolve(factors.at(-1) ?? 'none');
      },
    );
  });
}

describe('tuneHeap', () => {
  it('makes V8 compute the next old-generation limit with a factor of 1 + percent / 100, unless the operator set one', async () => {
    const [tuned, operatorSet] = await Promise.all([limitFactor('tuned'), limitFactor('operator-set')]);
    expect(tuned).toBe((1 + HEAP_GROWING_PERCENT / 100).toFixed(1));
    expect(operatorSet).not.toBe('none');
    expect(operatorSet).not.toBe(tuned);
  });
});

import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPolicyStore } from '../../../src/policy/policy-store.js';
import type { PolicyStore, ReloadResult } from '../../../src/policy/policy-store.js';

const WAIT_MS = 5_000;

const policyText = (id: string, port: number): string =>
  `version: 1\nrules:\n  - id: ${id}\n    when: { destination.port: ${port} }\n    action: block\n`;

/** Collects onReload results; `next()` waits for the next one, bounded so a missed event fails fast. */
function reloadRecorder(): { onReload: (result: ReloadResult) => void; next: () => Promise<ReloadResult>; count: () => number } {
  const results: ReloadResult[] = [];
  let waiter: ((result: ReloadResult) => void) | null = null;
  let taken = 0;
  return {
    onReload(result) {
      results.push(result);
      if (waiter !== null) {
        const resolve = waiter;
        waiter = null;
        taken++;
        resolve(result);
      }
    },
    next() {
      const ready = results[taken];
      if (ready !== undefined) {
        taken++;
        return Promise.resolve(ready);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no reload within ${WAIT_MS} ms`)), WAIT_MS);
        waiter = (result) => {
          clearTimeout(timer);
          resolve(result);
        };
      });
    },
    count: () => results.length,
  };
}

/**
 * The next result with the wanted outcome. An editor's save can fire several events, so a reload may read
 * a half-written file first; the debounce makes that rare, and this makes the tests immune to it.
 */
async function nextWith(recorder: ReturnType<typeof reloadRecorder>, ok: boolean): Promise<ReloadResult> {
  for (;;) {
    const result = await recorder.next();
    if (result.ok === ok) return result;
  }
}

describe('policy store', () => {
  let dir: string;
  let file: string;
  let store: PolicyStore | null = null;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'egress-policy-'));
    file = join(dir, 'policy.yaml');
    await writeFile(file, policyText('first', 1111));
  });

  afterEach(async () => {
    store?.close();
    store = null;
    await rm(dir, { recursive: true, force: true });
  });

  it('loads the policy on start', async () => {
    store = createPolicyStore({ files: [file], debounceMs: 20 });
    await store.start();
    expect(store.current().rules.map((rule) => rule.id)).toEqual(['first']);
    expect(store.current().files).toEqual([file]);
  });

  it('refuses to start on an invalid policy, listing every error as file:line:col', async () => {
    await writeFile(file, 'version: 2\nrules:\n  - id: x\n    when: { process.nmae: a }\n    action: deny\n');
    store = createPolicyStore({ files: [file], debounceMs: 20 });
    await expect(store.start()).rejects.toThrow(
      [
        `${file}:1:10: version must be 1 (got number 2)`,
        `${file}:4:13: unknown field "process.nmae" (did you mean "process.name"?)`,
        `${file}:5:13: action must be one of allow, block, tag, bump, splice (got string "deny") (did you mean "block"?)`,
      ].join('\n'),
    );
    expect(() => store?.current()).toThrow(/not been started/);
  });

  it('swaps in a good edit', async () => {
    const recorder = reloadRecorder();
    store = createPolicyStore({ files: [file], debounceMs: 20, onReload: recorder.onReload });
    await store.start();
    const before = store.current();
    await writeFile(file, policyText('second', 2222));
    const result = await nextWith(recorder, true);
    expect(result.ok).toBe(true);
    expect(store.current().rules.map((rule) => rule.id)).toEqual(['second']);
    expect(store.current().sha256).not.toBe(before.sha256);
    // The old policy object is untouched: flows that started on it finish on it.
    expect(before.rules.map((rule) => rule.id)).toEqual(['first']);
  });

  it('keeps the last good policy on a bad edit and reports the errors', async () => {
    const recorder = reloadRecorder();
    store = createPolicyStore({ files: [file], debounceMs: 20, onReload: recorder.onReload });
    await store.start();
    // Written by rename so no reload can see a half-written file (whose errors would differ).
    const temporary = join(dir, '.policy.yaml.tmp');
    await writeFile(temporary, 'version: 1\nrules:\n  - id: broken\n    when: { destination.port: { gt: [1] } }\n    action: block\n');
    await rename(temporary, file);
    const result = await nextWith(recorder, false);
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.errors.map((issue) => issue.format())).toEqual([`${file}:4:37: gt needs a number, got a list`]);
    expect(store.current().rules.map((rule) => rule.id)).toEqual(['first']);
  });

  it('notices a save by atomic rename (write a temporary file, rename it over the policy)', async () => {
    const recorder = reloadRecorder();
    store = createPolicyStore({ files: [file], debounceMs: 20, onReload: recorder.onReload });
    await store.start();
    for (const [id, port] of [['renamed-once', 3333], ['renamed-twice', 4444]] as const) {
      const temporary = join(dir, `.policy.yaml.${id}.tmp`);
      await writeFile(temporary, policyText(id, port));
      await rename(temporary, file);
      const result = await nextWith(recorder, true);
      expect(result.ok).toBe(true);
      expect(store.current().rules.map((rule) => rule.id)).toEqual([id]);
    }
  });

  it('ignores changes to other files in the same directory', async () => {
    const recorder = reloadRecorder();
    store = createPolicyStore({ files: [file], debounceMs: 20, onReload: recorder.onReload });
    await store.start();
    await writeFile(join(dir, 'unrelated.yaml'), 'not: a policy');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(recorder.count()).toBe(0);
    // ...and still sees its own file afterwards.
    await writeFile(file, policyText('after-noise', 5555));
    expect((await nextWith(recorder, true)).ok).toBe(true);
    expect(store.current().rules.map((rule) => rule.id)).toEqual(['after-noise']);
  });

  it('reload() reports whether the live policy is good, without reporting unchanged bytes', async () => {
    const recorder = reloadRecorder();
    store = createPolicyStore({ files: [file], debounceMs: 10_000, onReload: recorder.onReload });
    await store.start();
    expect(await store.reload()).toBe(true);
    expect(recorder.count()).toBe(0);
    await writeFile(file, 'version: 1\nrules: [');
    expect(await store.reload()).toBe(false);
    expect(store.current().rules.map((rule) => rule.id)).toEqual(['first']);
    await writeFile(file, policyText('manual', 6666));
    expect(await store.reload()).toBe(true);
    expect(store.current().rules.map((rule) => rule.id)).toEqual(['manual']);
  });

  it('survives an onReload callback that throws', async () => {
    store = createPolicyStore({
      files: [file],
      debounceMs: 10_000,
      onReload: () => {
        throw new Error('observer bug');
      },
    });
    await store.start();
    await writeFile(file, policyText('still-swapped', 7777));
    expect(await store.reload()).toBe(true);
    expect(store.current().rules.map((rule) => rule.id)).toEqual(['still-swapped']);
  });

  it('stops reloading after close()', async () => {
    const recorder = reloadRecorder();
    store = createPolicyStore({ files: [file], debounceMs: 20, onReload: recorder.onReload });
    await store.start();
    store.close();
    await writeFile(file, policyText('too-late', 8888));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(recorder.count()).toBe(0);
    expect(store.current().rules.map((rule) => rule.id)).toEqual(['first']);
  });
});

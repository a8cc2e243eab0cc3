import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPolicyStore, watchPolicyFiles } from '../../../src/policy/policy-store.js';

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The cluster primary watches the policy files itself (src/cluster/primary.ts); its workers' stores do not. */
describe('watching policy files for a cluster', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'egress-watch-'));
    dirs.push(dir);
    return dir;
  };

  it('an editor-style save (write a temp file, rename it over) calls onChange once, after the quiet time', async () => {
    const dir = tempDir();
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, 'version: 1\n');
    let changes = 0;
    const watch = watchPolicyFiles([file], () => changes++, 50);
    try {
      writeFileSync(join(dir, '.policy.yaml.swp'), 'version: 1\nrules: []\n');
      renameSync(join(dir, '.policy.yaml.swp'), file);
      writeFileSync(file, 'version: 1\nrules: []\n');
      for (let i = 0; i < 40 && changes === 0; i++) await wait(25);
      await wait(150);
      expect(changes).toBe(1);
      writeFileSync(join(dir, 'unrelated.txt'), 'x');
      await wait(200);
      expect(changes).toBe(1);
    } finally {
      watch.close();
    }
    writeFileSync(file, 'version: 1\n');
    await wait(200);
    expect(changes).toBe(1);
  });

  it('a store with watch: false does not reload on a change, but reloads when asked', async () => {
    const dir = tempDir();
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, 'version: 1\n');
    let reloads = 0;
    const store = createPolicyStore({ files: [file], watch: false, debounceMs: 20, onReload: () => reloads++ });
    await store.start();
    try {
      const before = store.current().sha256;
      writeFileSync(file, 'version: 1\nrules: []\n');
      await wait(300);
      expect(reloads).toBe(0);
      expect(store.current().sha256).toBe(before);
      expect(await store.reload()).toBe(true);
      expect(store.current().sha256).not.toBe(before);
    } finally {
      store.close();
    }
  });
});

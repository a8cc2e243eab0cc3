/**
 * A reload never weakens the policy by accident (issue 11): the settle rule (a file change reloads once the files
 * stopped changing) and the refusal rule (a policy that drops every rule or every block rule is refused).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPolicyStore, decideSettle, snapshotFiles, watchPolicyFiles, weakeningReason } from '../../../src/policy/policy-store.js';
import type { FilesSnapshot, PolicyStore, ReloadReport, ReloadResult } from '../../../src/policy/policy-store.js';
import type { RuleAction } from '../../../src/policy/decision.js';

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const rules = (...actions: RuleAction[]): { rules: { id: string; action: RuleAction; file: string }[] } => ({
  rules: actions.map((action, i) => ({ id: `r${i}-${action}`, action, file: 'p.yaml' })),
});
const BLOCKING = 'version: 1\nrules:\n  - id: block-c2\n    when: { destination.port: 4444 }\n    action: block\n  - id: tag-web\n    when: { destination.port: 443 }\n    action: tag\n    tags: [web]\n';
const TAG_ONLY = 'version: 1\nrules:\n  - id: tag-web\n    when: { destination.port: 443 }\n    action: tag\n    tags: [web]\n';
const HALF = 'version: 1\nrules:\n';

describe('weakeningReason: which reloads are refused', () => {
  const cases: Array<{ intent: string; before: RuleAction[]; after: RuleAction[]; refused: RegExp | null }> = [
    { intent: 'every rule dropped (a half-written file)', before: ['block', 'allow'], after: [], refused: /no rules, the one in force has 2 \(1 block\)/ },
    { intent: 'every rule dropped, even when none blocked', before: ['tag'], after: [], refused: /no rules/ },
    { intent: 'every block rule dropped, others kept', before: ['block', 'block', 'tag'], after: ['tag'], refused: /no block rules, the one in force has 2 \(r0-block, r1-block\)/ },
    { intent: 'some block rules dropped: an edit, accepted', before: ['block', 'block'], after: ['block'], refused: null },
    { intent: 'rules added', before: ['block'], after: ['block', 'allow'], refused: null },
    { intent: 'an empty policy replaced by an empty policy', before: [], after: [], refused: null },
    { intent: 'no block rule before, none after', before: ['allow', 'tag'], after: ['tag'], refused: null },
    { intent: 'a first block rule added to an empty policy', before: [], after: ['block'], refused: null },
  ];
  for (const c of cases) {
    it(c.intent, () => {
      const reason = weakeningReason(rules(...c.before), rules(...c.after));
      if (c.refused === null) expect(reason).toBeNull();
      else expect(reason).toMatch(c.refused);
    });
  }

  it('names at most three block rules', () => {
    expect(weakeningReason(rules('block', 'block', 'block', 'block', 'block'), rules('allow'))).toContain('r0-block, r1-block, r2-block … 2 more');
  });
});

describe('decideSettle: when a changed file has settled', () => {
  const opts = { settleMs: 500, maxSettleMs: 5000 };
  const snap = (takenMs: number, signature: string): FilesSnapshot => ({ takenMs, signature });

  it('waits for a second snapshot', () => {
    expect(decideSettle({ firstEventMs: 0, lastEventMs: 0, previous: null, current: snap(500, 'a') }, opts)).toEqual({ reload: false, checkInMs: 500 });
  });
  it('reloads once two snapshots a settle window apart agree and no event came between', () => {
    expect(decideSettle({ firstEventMs: 0, lastEventMs: 0, previous: snap(0, 'a'), current: snap(500, 'a') }, opts)).toEqual({ reload: true, settled: true });
  });
  it('waits when the content changed between the snapshots (the second write of an editor)', () => {
    expect(decideSettle({ firstEventMs: 0, lastEventMs: 0, previous: snap(0, 'half'), current: snap(500, 'full') }, opts)).toEqual({ reload: false, checkInMs: 500 });
  });
  it('waits when a change event came after the first snapshot, even if the bytes look the same', () => {
    expect(decideSettle({ firstEventMs: 0, lastEventMs: 400, previous: snap(0, 'a'), current: snap(500, 'a') }, opts)).toEqual({ reload: false, checkInMs: 500 });
  });
  it('waits when the snapshots are closer than the settle window', () => {
    expect(decideSettle({ firstEventMs: 0, lastEventMs: 0, previous: snap(0, 'a'), current: snap(300, 'a') }, opts)).toEqual({ reload: false, checkInMs: 500 });
  });
  it('reloads unsettled once the bound has passed since the first event (a file that never stops changing)', () => {
    expect(decideSettle({ firstEventMs: 0, lastEventMs: 4990, previous: snap(4500, 'x'), current: snap(5000, 'y') }, opts)).toEqual({ reload: true, settled: false });
  });
});

describe('policy store: refusal and settling', () => {
  let dir: string;
  let file: string;
  let store: PolicyStore | null = null;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'egress-policy-safety-'));
    file = join(dir, 'policy.yaml');
    await writeFile(file, BLOCKING);
  });
  afterEach(async () => {
    store?.close();
    store = null;
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a reload to an empty rule list: keeps the policy, reports why, names the file', async () => {
    const results: ReloadResult[] = [];
    const reports: ReloadReport[] = [];
    store = createPolicyStore({ files: [file], watch: false, onReload: (r) => results.push(r), onReloadEnd: (r) => reports.push(r) });
    await store.start();
    const before = store.current();
    await writeFile(file, HALF);
    expect(await store.reload({ trigger: 'signal' })).toBe(false);
    expect(store.current()).toBe(before);
    expect(store.lastErrors()).toEqual([expect.stringMatching(new RegExp(`^${file.replaceAll(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:1:1: reload refused: the new policy has no rules, the one in force has 2 \\(1 block\\)`))]);
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ ok: false, refused: true });
    expect(reports).toEqual([
      expect.objectContaining({ trigger: 'signal', forced: false, outcome: 'refused', rulesBefore: 2, rulesAfter: 0, blockRulesBefore: 1, blockRulesAfter: 0, sha256: before.sha256 }),
    ]);
    expect(reports[0]?.reason).toMatch(/no rules/);
    expect(reports[0]?.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('refuses a reload that keeps rules but drops every block rule', async () => {
    store = createPolicyStore({ files: [file], watch: false });
    await store.start();
    await writeFile(file, TAG_ONLY);
    expect(await store.reload()).toBe(false);
    expect(store.current().rules.map((r) => r.id)).toEqual(['block-c2', 'tag-web']);
    expect(store.lastErrors()[0]).toMatch(/no block rules, the one in force has 1 \(block-c2\)/);
  });

  it('applies the same policy when forced, and reports it as forced', async () => {
    const reports: ReloadReport[] = [];
    store = createPolicyStore({ files: [file], watch: false, onReloadEnd: (r) => reports.push(r) });
    await store.start();
    await writeFile(file, HALF);
    expect(await store.reload({ trigger: 'api', force: true })).toBe(true);
    expect(store.current().rules).toEqual([]);
    expect(store.lastErrors()).toEqual([]);
    expect(reports.at(-1)).toMatchObject({ trigger: 'api', forced: true, outcome: 'success', rulesBefore: 2, rulesAfter: 0 });
  });

  it('reports an unchanged reload to onReloadEnd (for the log) but not to onReload', async () => {
    const reports: ReloadReport[] = [];
    let reloads = 0;
    store = createPolicyStore({ files: [file], watch: false, onReload: () => reloads++, onReloadEnd: (r) => reports.push(r) });
    await store.start();
    expect(await store.reload()).toBe(true);
    expect(reloads).toBe(0);
    expect(reports).toEqual([expect.objectContaining({ trigger: 'manual', outcome: 'unchanged', rulesBefore: 2, rulesAfter: 2 })]);
  });

  it('a file written in two steps 150 ms apart is reloaded once, whole: the half file is never even read as a policy', async () => {
    const reports: ReloadReport[] = [];
    // The default settle window; the writes are far enough inside it that a loaded machine keeps them inside.
    store = createPolicyStore({ files: [file], onReloadEnd: (r) => reports.push(r) });
    await store.start();
    await writeFile(file, HALF);
    await wait(150);
    await writeFile(file, BLOCKING.replace('4444', '5555'));
    for (let i = 0; i < 200 && reports.length === 0; i++) await wait(20);
    await wait(400);
    expect(reports.map((r) => [r.trigger, r.outcome, r.rulesAfter])).toEqual([['file', 'success', 2]]);
    expect(store.current().rules.map((r) => r.id)).toEqual(['block-c2', 'tag-web']);
  });

  it('a half file whose rest comes after the settle window is refused, then the whole one applied', async () => {
    const reports: ReloadReport[] = [];
    store = createPolicyStore({ files: [file], settleMs: 50, onReloadEnd: (r) => reports.push(r) });
    await store.start();
    const before = store.current().sha256;
    await writeFile(file, HALF);
    for (let i = 0; i < 100 && reports.length === 0; i++) await wait(20);
    expect(reports.map((r) => r.outcome)).toEqual(['refused']);
    expect(store.current().sha256).toBe(before);
    await writeFile(file, BLOCKING.replace('4444', '5555'));
    for (let i = 0; i < 100 && reports.length < 2; i++) await wait(20);
    expect(reports.map((r) => r.outcome)).toEqual(['refused', 'success']);
    expect(store.current().sha256).not.toBe(before);
  });
});

describe('watchPolicyFiles: settling', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'egress-settle-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('a file rewritten every 40 ms still reloads, unsettled, within the bound', async () => {
    const file = join(dir, 'p.yaml');
    await writeFile(file, 'version: 1\n');
    const calls: Array<{ settled: boolean; waitedMs: number }> = [];
    const watch = watchPolicyFiles([file], (info) => calls.push(info), { settleMs: 100, maxSettleMs: 400 });
    try {
      const started = Date.now();
      for (let i = 0; calls.length === 0 && Date.now() - started < 3000; i++) {
        await writeFile(file, `version: 1\n# ${i}\n`);
        await wait(40);
      }
      expect(calls[0]?.settled).toBe(false);
      expect(calls[0]?.waitedMs).toBeGreaterThanOrEqual(400);
      expect(calls[0]?.waitedMs).toBeLessThan(1500);
    } finally {
      watch.close();
    }
  });

  it('snapshots tell contents apart and name an unreadable file', async () => {
    const file = join(dir, 'p.yaml');
    await writeFile(file, 'version: 1\n#a\n');
    const a = await snapshotFiles([file]);
    await writeFile(file, 'version: 1\n#b\n');
    const b = await snapshotFiles([file]);
    expect(a.signature).not.toBe(b.signature);
    expect((await snapshotFiles([file])).signature).toBe(b.signature);
    expect((await snapshotFiles([join(dir, 'missing.yaml')])).signature).toBe('unreadable:ENOENT');
  });
});

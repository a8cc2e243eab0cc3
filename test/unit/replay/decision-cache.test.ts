import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CACHE_REST, CACHE_WINDOW, DecisionCache, hashSlots, MAX_CACHED, sameSlots, type Replayed } from '../../../src/replay/decision-cache.js';
import { Replayer } from '../../../src/replay/replay.js';
import type { ReplaySummary } from '../../../src/replay/tally.js';
import type { CompiledPolicy } from '../../../src/policy/load.js';
import { compileYaml } from '../policy/policy-kit.js';
import { BLOCK_C2_RULE, REPLAY_BASE_POLICY, withRule } from '../../fixtures/replay/policies.js';

const BASE = withRule(REPLAY_BASE_POLICY, '  - id: alert-score\n    when: { egress.score: { gte: 50 } }\n    action: tag\n    severity: medium\n    tags: [anomaly]\n', 'block-lolbin');
const CANDIDATE = withRule(BASE, BLOCK_C2_RULE.replace('    tags: [c2]\n', '    severity: high\n    tags: [c2]\n'));
const base = compileYaml(BASE);
const candidate = compileYaml(CANDIDATE);

function replay(lines: readonly string[], cached: boolean, against: CompiledPolicy | null, examples = 2): { summary: ReplaySummary; replayer: Replayer } {
  const replayer = new Replayer({ candidate, against, examples, decisionCache: cached });
  lines.forEach((line, i) => replayer.line(line, 'flows.jsonl', i + 1));
  return { summary: replayer.summary(), replayer };
}

/**
 * Records from a small space of values, so that tuples repeat and the cache is hit, with the decision fields a
 * record shows varied independently of its facts (a recorded baseline that disagrees with any policy), values of
 * the wrong type, follow-ups, and lines that are not records.
 */
const recordArb = fc
  .record({
    domain: fc.constantFrom('www.example.com', 'x.c2.example', 'wiki.corp.example', 'beacon.c2.example', 'cdn.example.net'),
    port: fc.constantFrom(443, 80, 8443, 4444, '443'),
    internal: fc.constantFrom(true, false, undefined),
    process: fc.constantFrom('chrome.exe', 'rundll32.exe', undefined, 7),
    score: fc.constantFrom(0, 10, 50, 79, 85, -0, Infinity, undefined),
    action: fc.constantFrom('allow', 'block', 'other', undefined),
    ruleId: fc.constantFrom('block-lolbin', 'allow-wiki', 'builtin:internal-destination', 'builtin:capacity', undefined),
    tags: fc.constantFrom([], ['odd-port'], ['an0922', 'odd-port'], ['anomaly'], undefined),
    rules: fc.constantFrom([], ['tag-odd-port'], ['block-lolbin'], ['alert-score', 'tag-odd-port'], undefined),
    kind: fc.constantFrom('event', 'alert', undefined),
    followup: fc.constantFrom(undefined, undefined, undefined, 'abc'),
    junk: fc.constantFrom(0, 0, 0, 0, 0, 0, 1, 2),
  })
  .map((r) => {
    if (r.junk === 1) return '{"destination":{"port":443';
    if (r.junk === 2) return 'not a record';
    // Written by hand: -0 and Infinity (as 1e999, out of range: a rejected value) as JSON text; JSON.stringify cannot.
    const members: string[] = [];
    members.push(`"event":{${[r.kind === undefined ? null : `"kind":"${r.kind}"`, r.action === undefined ? null : `"action":"${r.action}"`].filter((m) => m !== null).join(',')}}`);
    members.push(`"destination":{"domain":"${r.domain}","port":${JSON.stringify(r.port)}}`);
    const egress = [
      r.internal === undefined ? null : `"destination":{"internal":${r.internal}}`,
      r.score === undefined ? null : `"score":${Object.is(r.score, -0) ? '-0' : r.score === Infinity ? '1e999' : r.score}`,
      r.rules === undefined ? null : `"rules":${JSON.stringify(r.rules)}`,
      r.followup === undefined ? null : `"followup_of":"${r.followup}"`,
    ].filter((m) => m !== null);
    members.push(`"egress":{${egress.join(',')}}`);
    if (r.process !== undefined) members.push(`"process":{"name":${JSON.stringify(r.process)}}`);
    if (r.ruleId !== undefined) members.push(`"rule":{"id":"${r.ruleId}"}`);
    if (r.tags !== undefined) members.push(`"tags":${JSON.stringify(r.tags)}`);
    return `{${members.join(',')}}`;
  });

describe('the decision cache never changes the report', () => {
  it('cached and uncached replays of generated records give identical reports (recorded baseline and --against)', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { minLength: 1, maxLength: 200 }), fc.boolean(), (lines, useAgainst) => {
        const against = useAgainst ? base : null;
        const withCache = replay(lines, true, against);
        const without = replay(lines, false, against);
        expect(withCache.summary).toEqual(without.summary);
        // The cache was used: a record whose tuple was seen before is a hit.
        const stats = withCache.replayer.cacheStats;
        expect(stats).not.toBeNull();
        expect(without.replayer.cacheStats).toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it('repeated tuples are hits: the second pass over the same records decides nothing again', () => {
    const lines = fc.sample(recordArb, { numRuns: 300, seed: 7 });
    const { replayer } = replay([...lines, ...lines], true, null);
    const stats = replayer.cacheStats;
    if (stats === null) throw new Error('cache off');
    // Every record of the second pass (those that reach the comparison) is a hit.
    expect(stats.hits).toBeGreaterThanOrEqual(stats.lookups / 2);
    expect(stats.entries).toBeLessThanOrEqual(stats.lookups / 2);
  });

  it('keys unique per record (a rule on source.port): the cache rests after one window, the report is the same', () => {
    const perPort = compileYaml(`version: 1
rules:
  - id: odd-source-port
    when: { source.port: { gte: 50000 } }
    action: block
`);
    const lines = Array.from({ length: CACHE_WINDOW * 3 }, (_, i) => `{"event":{"action":"allow"},"source":{"port":${40000 + i}},"destination":{"domain":"d${i % 7}.example"}}`);
    const run = (cached: boolean): { summary: ReplaySummary; replayer: Replayer } => {
      const replayer = new Replayer({ candidate: perPort, against: null, examples: 1, decisionCache: cached });
      lines.forEach((line, i) => replayer.line(line, 'f', i + 1));
      return { summary: replayer.summary(), replayer };
    };
    const withCache = run(true);
    expect(withCache.summary).toEqual(run(false).summary);
    expect(withCache.summary.changed).toBeGreaterThan(0);
    const stats = withCache.replayer.cacheStats;
    if (stats === null) throw new Error('cache off');
    expect(stats.lookups).toBe(CACHE_WINDOW);
    expect(stats.hits).toBe(0);
    expect(stats.bypassed).toBe(lines.length - CACHE_WINDOW);
    expect(stats.entries).toBe(0);
  });
});

describe('the cache itself', () => {
  const replayed: Replayed = { skip: 'undecided' };

  it('holds at most MAX_CACHED entries whatever the input', () => {
    const cache = new DecisionCache();
    // Hits on every other lookup keep it active while distinct tuples keep coming.
    for (let i = 0; i < MAX_CACHED * 3; i++) {
      const values = [`d${i}`];
      const hash = hashSlots(values);
      if (cache.get(hash, values) === undefined) cache.set(hash, values, replayed);
      expect(cache.get(hash, values)).toBe(replayed);
    }
    expect(cache.stats.entries).toBeLessThanOrEqual(MAX_CACHED);
    expect(cache.stats.bypassed).toBe(0);
  });

  it('an old-generation entry used again survives the next turnover (least recently used goes first)', () => {
    const cache = new DecisionCache();
    const keep = ['keep'];
    cache.set(hashSlots(keep), keep, replayed);
    for (let i = 0; i < MAX_CACHED * 2; i++) {
      const values = [i];
      cache.set(hashSlots(values), values, replayed);
      // Used once per generation's worth of inserts: never dropped.
      if (i % 4096 === 0) expect(cache.get(hashSlots(keep), keep)).toBe(replayed);
    }
    expect(cache.get(hashSlots(keep), keep)).toBe(replayed);
  });

  it('rests for CACHE_REST records after a window below the hit rate, then tries again', () => {
    const cache = new DecisionCache();
    for (let i = 0; i < CACHE_WINDOW; i++) {
      expect(cache.isActive()).toBe(true);
      cache.get(i, [i]);
    }
    let resting = 0;
    while (!cache.isActive()) resting++;
    expect(resting).toBe(CACHE_REST);
  });

  it('equal tuples hash alike; a hash collision never returns another tuple', () => {
    expect(hashSlots(['a', 1, true, undefined, ['x', 'y']])).toBe(hashSlots(['a', 1, true, undefined, ['x', 'y']]));
    const cache = new DecisionCache();
    cache.set(42, ['a'], replayed);
    expect(cache.get(42, ['b'])).toBeUndefined();
    expect(cache.get(42, ['a'])).toBe(replayed);
  });

  it('tells apart what a policy can tell apart: -0 and 0, a string and a number, list boundaries', () => {
    expect(sameSlots([-0], [0])).toBe(false);
    expect(sameSlots(['1'], [1])).toBe(false);
    expect(sameSlots([['ab', 'c']], [['a', 'bc']])).toBe(false);
    expect(sameSlots([['a']], ['a'])).toBe(false);
    expect(sameSlots([undefined], [false])).toBe(false);
    expect(sameSlots([[{ a: 1 }]], [[{ a: 1 }]])).toBe(true);
    expect(sameSlots([[{ a: 1 }]], [[{ a: 2 }]])).toBe(false);
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.double(), fc.boolean(), fc.constant(undefined), fc.array(fc.string(), { maxLength: 3 }))), (values) => {
        expect(sameSlots(values, values.slice())).toBe(true);
        expect(hashSlots(values)).toBe(hashSlots(values.slice()));
      }),
    );
  });

  it('a cached value does not keep the record line it was cut from alive', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const LINES = 400;
    const PAD = 100_000;
    /** Record lines as the reader makes them (flat strings) and a value cut from each as the scanner does. */
    const cutValues = (): string[] =>
      Array.from({ length: LINES }, (_, i) => {
        const line = Buffer.from(`{"destination":{"domain":"host-${i}.example.net"},"pad":"${'x'.repeat(PAD)}"}`).toString('utf8');
        return line.slice(26, 26 + `host-${i}.example.net`.length);
      });
    const heapAfter = (keep: () => unknown): number => {
      gc();
      const before = getHeapStatistics().used_heap_size;
      const held = keep();
      gc();
      const grown = getHeapStatistics().used_heap_size - before;
      expect(held).toBeDefined();
      return grown;
    };
    const lines = LINES * PAD;
    // The control: the cut values themselves keep their lines (V8's sliced strings); the test could fail.
    expect(heapAfter(() => cutValues())).toBeGreaterThan(lines * 0.8);
    // Cached, they do not.
    const cache = new DecisionCache();
    const grown = heapAfter(() => {
      for (const value of cutValues()) cache.set(hashSlots([value]), [value], replayed);
      return cache;
    });
    expect(grown).toBeLessThan(lines * 0.1);
    expect(cache.get(hashSlots(['host-7.example.net']), ['host-7.example.net'])).toBe(replayed);
  });
});

import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BucketHistogram } from '../../../src/observe/bucket-histogram.js';
import { aggregateMetrics } from '../../../src/cluster/supervise.js';

const BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30];
const PROTOCOLS = ['http', 'tls', 'dns', 'unknown'] as const;

/** The same observations into prom-client's Histogram and ours, each in its own registry. */
function pair(observations: readonly (readonly [protocol: string, value: number])[], zeroed: readonly string[] = []) {
  const theirs = new Registry();
  const ours = new Registry();
  const p = new Histogram({ name: 'egress_x_seconds', help: 'x', labelNames: ['protocol'], buckets: BUCKETS, registers: [theirs] });
  const b = new BucketHistogram({ name: 'egress_x_seconds', help: 'x', labelNames: ['protocol'], buckets: BUCKETS, registers: [ours] });
  for (const protocol of zeroed) {
    p.zero({ protocol });
    b.zero({ protocol });
  }
  for (const [protocol, value] of observations) {
    p.labels({ protocol }).observe(value);
    b.labels({ protocol }).observe(value);
  }
  return { theirs, ours, b };
}

describe('BucketHistogram', () => {
  it('exposes exactly what prom-client does for the same observations: text, JSON and the cluster aggregate', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom(...PROTOCOLS), fc.oneof(fc.double({ min: -1, max: 100, noNaN: true }), fc.constantFrom(...BUCKETS))), { maxLength: 60 }),
        fc.subarray([...PROTOCOLS]),
        async (observations, zeroed) => {
          const { theirs, ours } = pair(observations, zeroed);
          expect(await ours.metrics()).toBe(await theirs.metrics());
          const strip = (json: unknown): unknown => JSON.parse(JSON.stringify(json, (k, v: unknown) => (k === 'exemplar' ? undefined : v)));
          expect(strip(await ours.getMetricsAsJSON())).toEqual(strip(await theirs.getMetricsAsJSON()));
          const twice = async (r: Registry) => (await aggregateMetrics([await r.getMetricsAsJSON(), await r.getMetricsAsJSON()])).text;
          expect(await twice(ours)).toBe(await twice(theirs));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a histogram without labels has its one series from the start, and observe(value) counts into it', async () => {
    const registry = new Registry();
    const h = new BucketHistogram({ name: 'egress_y_seconds', help: 'y', buckets: [0.1, 1], registers: [registry] });
    expect(await registry.metrics()).toContain('egress_y_seconds_count 0');
    h.observe(0.05);
    h.observe(2);
    const text = await registry.metrics();
    expect(text).toContain('egress_y_seconds_bucket{le="0.1"} 1');
    expect(text).toContain('egress_y_seconds_bucket{le="1"} 1');
    expect(text).toContain('egress_y_seconds_bucket{le="+Inf"} 2');
    expect(text).toContain('egress_y_seconds_sum 2.05');
    h.reset();
    expect(await registry.metrics()).toContain('egress_y_seconds_count 0');
  });

  it('refuses what prom-client refuses: a non-finite value, a missing label, le as a label, unordered buckets', () => {
    const h = new BucketHistogram({ name: 'egress_z', help: 'z', labelNames: ['protocol'], buckets: [1, 2], registers: [] });
    expect(() => h.labels({ protocol: 'http' }).observe(Number.NaN)).toThrow(/not a finite number/);
    expect(() => h.labels({} as { protocol: string })).toThrow(/label protocol has no value/);
    expect(() => new BucketHistogram({ name: 'egress_z', help: 'z', labelNames: ['le'], registers: [] })).toThrow(/reserved/);
    expect(() => new BucketHistogram({ name: 'egress_z', help: 'z', buckets: [2, 1], registers: [] })).toThrow(/ascending/);
  });
});

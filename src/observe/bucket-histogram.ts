/**
 * A Prometheus histogram for the per-flow path (flow duration, decision latency, score: three observations a
 * flow). prom-client's own builds an object and hashes the label set on every `observe`, even on a kept child
 * (~200 ns and garbage each); here a series is a Float64Array of bucket counts found once per label set, and an
 * observation is a short loop over the bounds and three additions.
 *
 * It lives in prom-client's registry beside prom-client's metrics and is read the same way (`get()`: scrapes,
 * `getMetricsAsJSON` for the cluster primary's aggregate): the same series in the same order with the same text —
 * test/unit/observe/bucket-histogram.test.ts compares the two on the same observations. Label values are closed
 * sets (src/observe/metrics.ts), so the series are bounded like the label sets.
 */
import type { Registry } from 'prom-client';

/** One value as prom-client's registry reads it. */
export interface HistogramValue {
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

export interface HistogramSnapshot {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram';
  readonly aggregator: 'sum';
  readonly values: HistogramValue[];
}

/** The counts of one label set. */
export class HistogramSeries {
  /** Per upper bound (not cumulative); observations above the last bound are in `count` only. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`histogram value is not a finite number: ${String(value)}`);
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        (this.counts[i] as number)++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }
}

export interface BucketHistogramOptions<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly L[];
  /** Upper bounds, ascending (prom-client's default when absent). */
  readonly buckets?: readonly number[];
  readonly registers: readonly Registry[];
}

/** prom-client's default buckets (lib/histogram.js). */
const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class BucketHistogram<L extends string = never> {
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly name: string;
  readonly help: string;
  private readonly labelNames: readonly L[];
  private readonly bounds: readonly number[];
  /** By the label values in labelNames order, joined; insertion order is the exposition order (as prom-client). */
  private readonly series = new Map<string, HistogramSeries>();

  constructor(opts: BucketHistogramOptions<L>) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = opts.labelNames ?? [];
    if (this.labelNames.includes('le' as L)) throw new Error('le is a reserved label name');
    const bounds = [...(opts.buckets ?? DEFAULT_BUCKETS)];
    for (let i = 0; i < bounds.length; i++) {
      if (!Number.isFinite(bounds[i]) || (i > 0 && (bounds[i] as number) <= (bounds[i - 1] as number))) throw new Error(`${opts.name}: buckets must be finite and ascending`);
    }
    this.bounds = Object.freeze(bounds);
    if (this.labelNames.length === 0) this.labels({} as Record<L, string>);
    // prom-client's Registry takes any object with name/help/type/get(); its type declarations only know its own.
    for (const registry of opts.registers) registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series of a label set (created at 0 the first time): keep it and call `observe` on it. */
  labels(labels: Readonly<Record<L, string>>): HistogramSeries {
    let key = '';
    for (const name of this.labelNames) {
      const value = labels[name];
      if (typeof value !== 'string') throw new Error(`${this.name}: label ${name} has no value`);
      key += `${value}\u0000`;
    }
    let series = this.series.get(key);
    if (series === undefined) {
      const own: Record<string, string> = {};
      for (const name of this.labelNames) own[name] = labels[name];
      series = new HistogramSeries(own, this.bounds);
      this.series.set(key, series);
    }
    return series;
  }

  /** Observe on the label set given, or on the only series of a histogram without labels. */
  observe(labelsOrValue: Readonly<Record<L, string>> | number, value?: number): void {
    if (typeof labelsOrValue === 'number') this.labels({} as Record<L, string>).observe(labelsOrValue);
    else this.labels(labelsOrValue).observe(value ?? Number.NaN);
  }

  /** The series exists (at 0) from now on: `rate()` needs a sample before the first event. */
  zero(labels: Readonly<Record<L, string>>): void {
    this.labels(labels);
  }

  reset(): void {
    this.series.clear();
    if (this.labelNames.length === 0) this.labels({} as Record<L, string>);
  }

  /** What prom-client's registry reads: per series the cumulative buckets, `+Inf`, `_sum` and `_count`. */
  get(): Promise<HistogramSnapshot> {
    const values: HistogramValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const series of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += series.counts[i] as number;
        values.push({ metricName: bucket, labels: { le: this.bounds[i] as number, ...series.labels }, value: cumulative });
      }
      values.push({ metricName: bucket, labels: { le: '+Inf', ...series.labels }, value: series.count });
      values.push({ metricName: `${this.name}_sum`, labels: { ...series.labels }, value: series.sum });
      values.push({ metricName: `${this.name}_count`, labels: { ...series.labels }, value: series.count });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}

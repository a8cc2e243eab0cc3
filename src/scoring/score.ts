import type { Flow } from '../flow/flow.js';
import { DEFAULT_WEIGHTS, type SignalName, type Weights } from './signals.js';

/** One thing that makes a flow unusual: which signal, how strongly (0–1], and why in plain words. */
export interface Signal {
  readonly signal: SignalName;
  readonly strength: number;
  readonly reason: string;
}

/** A scorer looks at the facts and features known so far and names what is unusual. Pure, synchronous, cheap. */
export interface Scorer {
  readonly name: string;
  score(flow: Flow): Signal | null;
}

/**
 * A feature family: computes its `egress.features.*` fields once, when its inputs are there. `extract` returns
 * true once the family is done for this flow (its bit is then set and it is not called again); false means
 * "inputs not there yet, ask me at the next stage".
 */
export interface FeatureExtractor {
  readonly name: string;
  extract(flow: Flow): boolean;
}

/** What the pipeline calls: at every stage, and once more when the flow ends. */
export interface Scoring {
  /** Compute the features that can be computed now and recompute egress.score / egress.reasons. */
  score(flow: Flow): void;
  /** The flow has ended: the end-only features (request body), the last score, and what learns from the flow. */
  finish(flow: Flow): void;
}

export interface ScoringOptions {
  readonly extractors: readonly FeatureExtractor[];
  /** Features known only at the end (body entropy); run by `finish` before the last score. */
  readonly endExtractors?: readonly FeatureExtractor[];
  readonly scorers: readonly Scorer[];
  /** The weights in force (the policy file's `scoring.weights` over the defaults); read per flow stage. */
  readonly weights?: () => Weights;
  /** After the last score: baselines and beacons learn from the flow, metrics count its signals. */
  readonly onFinished?: (flow: Flow, signals: readonly SignalName[]) => void;
}

/** Rounded points of a signal: whole points, at least 1 for any positive strength of a non-zero weight. */
function pointsOf(weight: number, strength: number): number {
  const points = weight * Math.min(1, strength);
  return points > 0 ? Math.max(1, Math.round(points)) : 0;
}

/**
 * Recompute egress.score (0–100), egress.reasons and egress.signals from every scorer. Each stage can only add
 * evidence (the facts of earlier stages stay), so the score is a running total that is final at the end.
 * Reasons are listed highest points first, each as `<plain words> (+<points> <signal>)`.
 */
export function scoreFlow(flow: Flow, scorers: readonly Scorer[], weights: Weights = DEFAULT_WEIGHTS): readonly SignalName[] {
  // The hits of this call, in module-level scratch arrays (scoring is synchronous): no per-call objects, and an
  // insertion sort instead of Array.prototype.sort, which copies into a work array each call (issue 9: the two
  // were ~10 % of what a keep-alive request allocated).
  let n = 0;
  let total = 0;
  for (const scorer of scorers) {
    const hit = scorer.score(flow);
    if (hit === null) continue;
    const points = pointsOf(weights[hit.signal], hit.strength);
    if (points <= 0) continue;
    // Highest points first; equal points keep the scorers' order (as the stable sort did).
    let i = n++;
    while (i > 0 && (HIT_POINTS[i - 1] as number) < points) {
      HIT_POINTS[i] = HIT_POINTS[i - 1] as number;
      HITS[i] = HITS[i - 1] as Signal;
      i--;
    }
    HIT_POINTS[i] = points;
    HITS[i] = hit;
    total += points;
  }
  flow.set('egress.score', Math.min(100, total));
  if (n === 0) {
    flow.set('egress.reasons', NONE);
    flow.set('egress.signals', NONE);
    return NONE as readonly SignalName[];
  }
  const reasons = new Array<string>(n);
  const names = new Array<SignalName>(n);
  for (let i = 0; i < n; i++) {
    const hit = HITS[i] as Signal;
    reasons[i] = `${hit.reason} (+${HIT_POINTS[i] as number} ${hit.signal})`;
    names[i] = hit.signal;
    HITS[i] = null; // hold no flow's signal past this call
  }
  flow.set('egress.reasons', reasons);
  flow.set('egress.signals', names);
  return names;
}

/** Scratch for scoreFlow: one entry per scorer at most, so they grow to the number of scorers and stay there. */
const HITS: (Signal | null)[] = [];
const HIT_POINTS: number[] = [];

const NONE: readonly string[] = Object.freeze([]);

function runExtractors(flow: Flow, extractors: readonly FeatureExtractor[], offset: number): void {
  for (let i = 0; i < extractors.length; i++) {
    const bit = 1 << (i + offset);
    if ((flow.computedFeatures & bit) !== 0) continue;
    const extractor = extractors[i];
    if (extractor !== undefined && extractor.extract(flow)) flow.computedFeatures |= bit;
  }
}

export function createScoring(opts: ScoringOptions): Scoring {
  const extractors = opts.extractors;
  const endExtractors = opts.endExtractors ?? [];
  if (extractors.length + endExtractors.length > 30) throw new Error('at most 30 feature families (one bit each)');
  const weights = opts.weights ?? (() => DEFAULT_WEIGHTS);
  return {
    score(flow) {
      runExtractors(flow, extractors, 0);
      scoreFlow(flow, opts.scorers, weights());
    },
    finish(flow) {
      runExtractors(flow, extractors, 0);
      runExtractors(flow, endExtractors, extractors.length);
      const signals = scoreFlow(flow, opts.scorers, weights());
      opts.onFinished?.(flow, signals);
    },
  };
}

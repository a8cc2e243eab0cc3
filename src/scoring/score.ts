import type { Flow } from '../flow/flow.js';

/** One thing that makes a flow unusual, with its weight. */
export interface ScoreReason {
  readonly points: number;
  readonly reason: string;
}

/** A scorer looks at the facts known so far and names what is unusual. Pure, synchronous, cheap. */
export interface Scorer {
  readonly name: string;
  score(flow: Flow): ScoreReason | null;
}

/**
 * egress.score (0–100) and egress.reasons from every scorer, recomputed from the facts known at each stage,
 * so a later stage can only add evidence. Reasons are listed highest weight first.
 */
export function scoreFlow(flow: Flow, scorers: readonly Scorer[]): void {
  let total = 0;
  const hits: ScoreReason[] = [];
  for (const scorer of scorers) {
    const hit = scorer.score(flow);
    if (hit !== null && hit.points > 0) {
      hits.push(hit);
      total += hit.points;
    }
  }
  hits.sort((a, b) => b.points - a.points);
  flow.set('egress.score', Math.min(100, Math.round(total)));
  flow.set('egress.reasons', hits.map((h) => h.reason));
}

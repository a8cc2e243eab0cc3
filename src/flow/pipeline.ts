import type { Facts } from './facts.js';
import { fieldStages, STAGES, type FieldName, type Stage } from './fields.js';
import { Flow, type FlowKind } from './flow.js';
import { builtinDecision, type Decision, type FinalDecision } from '../policy/decision.js';
import type { HintSource } from '../enrich/hints.js';
import type { Scoring } from '../scoring/score.js';
import { isEgressError } from '../errors.js';

/** The policy as the pipeline needs it: evaluation, and which rules may open internal destinations. */
export interface PolicyView {
  evaluate(facts: Facts): Decision;
  /** Settle the `tag` rules a final decision deferred, with the facts the flow has at its end. */
  completeDeferred(decision: FinalDecision, facts: Facts): FinalDecision;
  /**
   * Evaluate the shadow rules (`mode: shadow`) with the facts the flow ends with: they are recorded in the
   * decision's `shadow`, never change it otherwise, and so never make a flow wait (src/policy/evaluate.ts).
   */
  settleShadow?(decision: Decision, facts: Facts): Decision;
  /** true when the rule names the destination (ip, domain or `egress.destination.internal`) in its `when`. */
  opensInternal(ruleId: string): boolean;
  /** While rules pend: the block that is certain whatever they turn out to be, or null (evaluate.ts). */
  certainBlock(facts: Facts, internal: boolean, internalRuleId: string): FinalDecision | null;
}

export interface DestinationLookup {
  resolve(host: string): Promise<ReadonlyArray<{ readonly address: string; readonly family: 4 | 6 }>>;
}

/** The destination check (src/net/address-class.ts createDestinationGuard), run on the IP about to be dialled. */
export interface AddressClass {
  isInternal(ip: string): boolean;
  /** Why the address can never be dialled (unspecified "this host", multicast, broadcast), or null. */
  neverDialled(ip: string): string | null;
}

/** Enrichers add facts at a stage (GeoIP, DNS memory, attribution …). Sync ones stay on the fast path. */
export interface Enricher {
  readonly name: string;
  readonly stages: readonly Stage[];
  enrich(flow: Flow): void | Promise<void>;
}

/** Called once per flow when it ends, with the flow complete (record + metrics). */
export type FlowObserver = (flow: Flow) => void;

export interface PipelineDeps {
  policy: () => PolicyView;
  resolver: DestinationLookup;
  addresses: AddressClass;
  hints: HintSource;
  hintWaitMs: number;
  enrichers: readonly Enricher[];
  /** Run once the address to dial is known (GeoIP/ASN, fleet prevalence): sync, after resolution. */
  destinationEnrichers?: readonly ((flow: Flow) => void)[];
  /** Features and egress.score at every stage, and once more at the end (src/scoring/score.ts). */
  scoring: Scoring;
  observe: FlowObserver;
  onOpen?: (flow: Flow) => void;
  onDecided?: (flow: Flow, decision: FinalDecision) => void;
}

/** Built-in rule id for the default deny of internal destinations (SPEC network.internal). */
export const INTERNAL_DESTINATION_RULE = 'builtin:internal-destination';
/** Decides flows to addresses that are never a destination (no rule can open them). */
export const UNROUTABLE_DESTINATION_RULE = 'builtin:unroutable-destination';

/** Stages whose facts arrive on their own (no wait budget): the caller reads them from the client. */
const SELF_ARRIVING: ReadonlySet<Stage> = new Set<Stage>(['connect', 'client-hello', 'http-request', 'dns-query']);

/**
 * The only sequencer of a flow's life: open → (stage: enrich → score → decide)* → end. Listeners feed it
 * the facts of each stage and act on the decision it returns; they never evaluate the policy themselves.
 */
export class Pipeline {
  private readonly deps: PipelineDeps;
  private active = new Set<Flow>();

  constructor(deps: PipelineDeps) {
    this.deps = deps;
  }

  /** Start a flow for a client connection. */
  open(kind: FlowKind, sourceIp: string, sourcePort: number): Flow {
    const flow = new Flow(kind, this.deps.hints.isManaged(sourceIp));
    flow.set('source.ip', sourceIp);
    flow.set('source.port', sourcePort);
    flow.set('network.transport', kind === 'dns' ? 'udp' : 'tcp');
    if (!flow.canStillReach('hint')) flow.set('egress.attribution', 'none');
    this.active.add(flow);
    this.deps.onOpen?.(flow);
    return flow;
  }

  get activeCount(): number {
    return this.active.size;
  }

  /**
   * Run one stage whose facts the caller has just set, and return the decision. A `pending` decision means
   * a self-arriving stage (e.g. the ClientHello) must come first; the caller gathers it and calls again.
   * Destination resolution happens inside the first stage, and only when the policy has not already
   * blocked on the name alone: a name we block is never looked up (its nameserver could be the C2 channel).
   */
  async decide(flow: Flow, stage: Stage): Promise<Decision> {
    flow.closeStage(stage);
    const earlier = flow.decision;
    if (earlier !== null && earlier.status === 'final') {
      // Already decided (first match wins): a later stage only adds facts and evidence to the record. No score
      // here: nothing reads it before the end, and `end` scores the flow on every fact it has (scoring.finish).
      await this.enrich(flow, stage);
      return earlier;
    }
    // The first stage that names a destination also resolves and classifies it.
    if ((stage === 'connect' || stage === 'http-request') && flow.get('egress.destination.internal') === undefined) {
      flow.resolving = true;
    }
    this.deps.hints.attach(flow);
    await this.enrich(flow, stage);
    this.deps.scoring.score(flow);

    const policy = this.deps.policy();
    let decision = policy.evaluate(flow);
    if (flow.resolving) {
      const blocked = decision.status === 'final' && decision.verdict === 'block';
      const never = blocked ? null : await this.resolve(flow);
      flow.resolving = false;
      if (never !== null) {
        // SECURITY: whatever network.internal and the rules say, this address is not dialled.
        const decided = builtinDecision('block', UNROUTABLE_DESTINATION_RULE, `destination ${flow.get('destination.ip') ?? ''} is ${never}: never dialled`);
        flow.decision = decided;
        this.deps.onDecided?.(flow, decided);
        return decided;
      }
      // The address facts are in (or will never come): families waiting for them (baselines) run now.
      if (!blocked) this.deps.scoring.score(flow);
      decision = policy.evaluate(flow);
    }

    if (decision.status === 'pending') {
      // SPEC: a CONNECT whose outcome does not depend on the ClientHello is answered before 200. When no outcome
      // of the pending rules could allow the flow (an internal destination nothing can open, a certain block),
      // decide now, rather than open a tunnel only to close it or wait for a hint that cannot change it.
      const certain = policy.certainBlock(flow, flow.get('egress.destination.internal') === true, INTERNAL_DESTINATION_RULE);
      if (certain !== null) decision = certain;
    }

    while (decision.status === 'pending' && !this.awaitsSelfArrivingStage(flow, decision.pendingFields)) {
      // Only the hint can still bring the missing facts: wait for it within the budget, then decide.
      if (flow.canStillReach('hint')) {
        const remaining = this.deps.hintWaitMs - (Date.now() - flow.startedMs);
        if (remaining > 0) await this.deps.hints.waitFor(flow, remaining);
        flow.closeStage('hint');
        // With the hint stage closed, fallbacks (a verified process claim) may now attribute the flow.
        this.deps.hints.attach(flow);
        if (flow.get('egress.attribution') === undefined) flow.set('egress.attribution', 'none');
        this.deps.scoring.score(flow);
        decision = policy.evaluate(flow);
      } else {
        // Defensive: a pending field whose stage cannot come (should not happen) must not hang the flow.
        for (const name of decision.pendingFields) for (const stage of fieldStages(name)) flow.closeStage(stage);
        decision = policy.evaluate(flow);
      }
    }

    if (decision.status === 'final') decision = this.applyInternalDefault(flow, decision, policy);
    flow.decision = decision;
    if (decision.status === 'final') this.deps.onDecided?.(flow, decision);
    return decision;
  }

  /** End the flow: the record is written exactly once. */
  end(flow: Flow): void {
    if (flow.ended) return;
    flow.ended = true;
    this.active.delete(flow);
    // Nothing more can arrive for this record (a later hint makes a follow-up record): close every stage,
    // so facts still missing are absent, not pending.
    for (const stage of STAGES) flow.closeStage(stage);
    // A hint that arrived while the flow ran still lands in its record, with the score it adds.
    if (flow.get('process.name') === undefined) this.deps.hints.attach(flow);
    if (flow.get('egress.attribution') === undefined) flow.set('egress.attribution', 'none');
    // The last score first: deferred tag rules (an alert on egress.score) are settled on the final one.
    this.deps.scoring.finish(flow);
    const decision = flow.decision;
    if (decision !== null) {
      const policy = this.deps.policy();
      if (decision.status === 'final' && decision.deferredRuleIds !== undefined) flow.decision = policy.completeDeferred(decision, flow);
      // Shadow rules are settled here only, on the facts the flow ends with (even a flow that ended undecided).
      if (policy.settleShadow !== undefined) flow.decision = policy.settleShadow(flow.decision ?? decision, flow);
    }
    this.deps.observe(flow);
  }

  /** Flows still running (for shutdown). */
  activeFlows(): Flow[] {
    return [...this.active];
  }

  private awaitsSelfArrivingStage(flow: Flow, pending: readonly FieldName[]): boolean {
    // Every stage the field depends on: egress.score waits for the ClientHello, a fit feature for hello and hint.
    for (const name of pending) {
      for (const stage of fieldStages(name)) if (SELF_ARRIVING.has(stage) && flow.canStillReach(stage)) return true;
    }
    return false;
  }

  private async enrich(flow: Flow, stage: Stage): Promise<void> {
    for (const enricher of this.deps.enrichers) {
      if (!enricher.stages.includes(stage)) continue;
      const pending = enricher.enrich(flow);
      if (pending !== undefined) await pending;
    }
  }

  /** Resolve destination.domain (unless the host was an IP literal) and classify the address we will dial. */
  private async resolve(flow: Flow): Promise<string | null> {
    const domain = flow.get('destination.domain');
    if (domain !== undefined && flow.get('destination.ip') === undefined) {
      try {
        const addresses = await this.deps.resolver.resolve(domain);
        const first = addresses[0];
        // We dial exactly this address (actions read destination.ip): no second lookup, no rebinding.
        if (first !== undefined) flow.set('destination.ip', first.address);
        else flow.fail('RESOLVE_FAILED', `could not resolve "${domain}": no addresses`);
      } catch (err) {
        flow.fail('RESOLVE_FAILED', isEgressError(err) ? err.message : `could not resolve "${domain}"`);
      }
    }
    const ip = flow.get('destination.ip');
    if (ip === undefined) return null;
    const never = this.deps.addresses.neverDialled(ip);
    flow.set('egress.destination.internal', never !== null || this.deps.addresses.isInternal(ip));
    if (never !== null) return never;
    for (const enrich of this.deps.destinationEnrichers ?? []) enrich(flow);
    return null;
  }

  /**
   * SPEC: a flow to an internal destination is blocked unless a policy rule allows it. A blanket allow
   * (say, `destination.port: 443`) does not count: the allowing rule must name the destination, so an
   * operator opens internal networks only on purpose.
   */
  private applyInternalDefault(flow: Flow, decision: FinalDecision, policy: PolicyView): FinalDecision {
    if (decision.verdict !== 'allow' || flow.get('egress.destination.internal') !== true) return decision;
    if (decision.ruleId !== null && policy.opensInternal(decision.ruleId)) return decision;
    return {
      ...decision,
      verdict: 'block',
      ruleId: INTERNAL_DESTINATION_RULE,
      reasons: [...decision.reasons, `destination ${flow.get('destination.ip') ?? ''} is internal (network.internal)`],
    };
  }
}

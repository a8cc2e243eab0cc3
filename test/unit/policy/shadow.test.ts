import { describe, expect, it } from 'vitest';
import type { HintSource } from '../../../src/enrich/hints.js';
import { noHints } from '../../../src/enrich/hints.js';
import type { Flow } from '../../../src/flow/flow.js';
import { Pipeline, type PipelineDeps } from '../../../src/flow/pipeline.js';
import { createDestinationGuard, DEFAULT_INTERNAL_CIDRS } from '../../../src/net/address-class.js';
import { buildEcsRecord } from '../../../src/observe/ecs.js';
import { createMetrics, createRuleMatchCounter, initialisePolicyRuleSeries } from '../../../src/observe/metrics.js';
import { certainBlock, createPolicyView, evaluatePolicy, evaluateShadow, settleShadow } from '../../../src/policy/evaluate.js';
import type { FinalDecision } from '../../../src/policy/decision.js';
import { defaultScorers } from '../../../src/scoring/scorers.js';
import { createScoring } from '../../../src/scoring/score.js';
import { compileYaml, fakeFacts, issuesOf } from './policy-kit.js';

const POLICY = `version: 1
rules:
  - id: live-tag
    when: { destination.port: 443 }
    action: tag
    tags: [web]
  - id: shadow-block-rundll32
    description: what blocking rundll32 would catch
    mode: shadow
    when: { process.name: rundll32.exe }
    action: block
    severity: critical
    tags: [would-block]
  - id: shadow-allow-any
    mode: shadow
    when: { destination.port: { gte: 1 } }
    action: allow
  - id: live-allow
    mode: live
    when: { destination.domain: example.test }
    action: allow
`;

describe('shadow rules: compile', () => {
  it('keeps shadow rules out of the live rules, reachable by id, with their mode', () => {
    const policy = compileYaml(POLICY);
    expect(policy.rules.map((r) => r.id)).toEqual(['live-tag', 'live-allow']);
    expect(policy.shadowRules.map((r) => r.id)).toEqual(['shadow-block-rundll32', 'shadow-allow-any']);
    expect(policy.ruleById('shadow-block-rundll32')?.mode).toBe('shadow');
    expect(policy.ruleById('live-allow')?.mode).toBe('live');
    expect(policy.fields.has('process.name')).toBe(true);
  });

  it('refuses an unknown mode at file:line:col with a suggestion', () => {
    const text = 'version: 1\nrules:\n  - id: r\n    mode: shadw\n    when: {}\n    action: block\n';
    expect(issuesOf(text)).toEqual(['inline.yaml:4:11: mode must be one of live, shadow (got string "shadw") (did you mean "shadow"?)']);
    expect(issuesOf(text.replace('shadw', '1'))).toEqual(['inline.yaml:4:11: mode must be one of live, shadow (got number 1)']);
  });

  it('lets a shadow block rule read facts known only at the end (it never decides), unlike a live one', () => {
    const rule = (mode: string) => `version: 1\nrules:\n  - id: r\n    mode: ${mode}\n    when: { egress.features.body_encrypted: true }\n    action: block\n`;
    expect(issuesOf(rule('shadow'))).toEqual([]);
    expect(issuesOf(rule('live'))[0]).toMatch(/known only when the flow ends/);
  });
});

describe('shadow rules: evaluation', () => {
  const policy = compileYaml(POLICY);

  it('never decides: a matching shadow block leaves the verdict to the live rules', () => {
    const facts = fakeFacts({ 'process.name': 'rundll32.exe', 'destination.port': 443, 'destination.domain': 'other.test' });
    const decision = evaluatePolicy(policy, facts);
    expect(decision).toMatchObject({ status: 'final', verdict: 'allow', ruleId: null, matchedRuleIds: ['live-tag'], tags: ['web'], severity: null });
  });

  it('never holds a flow pending: a shadow rule on process.name with the hint still to come', () => {
    const facts = fakeFacts({ 'destination.port': 80, 'destination.domain': 'x.test' }, ['process.name']);
    expect(evaluatePolicy(policy, facts)).toMatchObject({ status: 'final', verdict: 'allow' });
    expect(certainBlock(policy, facts, false, 'builtin:internal-destination')).toBeNull();
    // Only-shadow policy: nothing at all for the pipeline to wait for.
    const onlyShadow = compileYaml('version: 1\nrules:\n  - id: s\n    mode: shadow\n    when: { process.name: rundll32.exe }\n    action: block\n');
    expect(evaluatePolicy(onlyShadow, facts)).toMatchObject({ status: 'final', verdict: 'allow', matchedRuleIds: [] });
  });

  it('reports each matching shadow rule with its would-be action, its reason prefixed "shadow:"', () => {
    const facts = fakeFacts({ 'process.name': 'rundll32.exe', 'destination.port': 443 });
    expect(evaluateShadow(policy, facts)).toEqual([
      { rule: 'shadow-block-rundll32', action: 'block', severity: 'critical', tags: ['would-block'], reason: 'shadow: rule shadow-block-rundll32: process.name is rundll32.exe' },
      expect.objectContaining({ rule: 'shadow-allow-any', action: 'allow' }),
    ]);
    expect(evaluateShadow(policy, fakeFacts({}))).toBeNull();
  });

  it('a pending fact does not match a shadow rule', () => {
    expect(evaluateShadow(policy, fakeFacts({}, ['process.name', 'destination.port']))).toBeNull();
  });

  it('settleShadow adds shadow and reasons only; verdict, rule, tags and severity are untouched', () => {
    const facts = fakeFacts({ 'process.name': 'rundll32.exe', 'destination.port': 443, 'destination.domain': 'example.test' });
    const decision = evaluatePolicy(policy, facts) as FinalDecision;
    const settled = settleShadow(policy, decision, facts);
    expect(settled).toMatchObject({ verdict: 'allow', ruleId: 'live-allow', matchedRuleIds: ['live-tag', 'live-allow'], tags: ['web'], severity: null });
    expect(settled.shadow?.map((m) => [m.rule, m.action])).toEqual([
      ['shadow-block-rundll32', 'block'],
      ['shadow-allow-any', 'allow'],
    ]);
    expect(settled.reasons.slice(-2).every((r) => r.startsWith('shadow: rule '))).toBe(true);
  });

  it('returns the very same decision object when no shadow rule matches (no allocation)', () => {
    const facts = fakeFacts({ 'destination.domain': 'example.test' });
    const decision = evaluatePolicy(policy, facts);
    expect(settleShadow(policy, decision, facts)).toBe(decision);
    const noShadow = compileYaml('version: 1\nrules:\n  - id: a\n    when: {}\n    action: allow\n');
    const d2 = evaluatePolicy(noShadow, facts);
    expect(createPolicyView(noShadow).settleShadow(d2, facts)).toBe(d2);
  });
});

describe('shadow rules: the record and the metric', () => {
  it('writes egress.shadow as [{rule, action}], the reasons in egress.explanation, and no alert from a shadow severity', async () => {
    const { pipeline, ended } = makePipeline(POLICY, noHints);
    const flow = connectFlow(pipeline, 'other.test', 443);
    flow.set('process.name', 'rundll32.exe');
    await pipeline.decide(flow, 'connect');
    pipeline.end(flow);
    const record = buildEcsRecord(ended[0] as Flow) as Record<string, unknown> & { egress: Record<string, unknown>; event: Record<string, unknown> };
    expect(record.egress['shadow']).toEqual([
      { rule: 'shadow-block-rundll32', action: 'block' },
      { rule: 'shadow-allow-any', action: 'allow' },
    ]);
    expect(record.event['kind']).toBe('event');
    expect(record.event['action']).toBe('allow');
    expect(record.egress['rules']).toEqual(['live-tag']);
    expect(record['tags']).toEqual(['web']);
    expect(record.egress['explanation']).toContain('shadow: rule shadow-block-rundll32: process.name is rundll32.exe');
  });

  it('a record without shadow matches has no egress.shadow', async () => {
    const { pipeline, ended } = makePipeline(POLICY.replace('gte: 1', 'gte: 70000'), noHints);
    const flow = connectFlow(pipeline, 'other.test', 443);
    await pipeline.decide(flow, 'connect');
    pipeline.end(flow);
    const record = buildEcsRecord(ended[0] as Flow) as { egress: Record<string, unknown> };
    expect(record.egress['shadow']).toBeUndefined();
  });

  it('counts egress_rule_matches_total{rule,mode} once per flow per rule, with every rule at 0 after a load', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const policy = compileYaml(POLICY);
    initialisePolicyRuleSeries(m, policy);
    const text0 = await m.registry.metrics();
    expect(text0).toContain('egress_rule_matches_total{rule="shadow-block-rundll32",mode="shadow"} 0');
    expect(text0).toContain('egress_rule_matches_total{rule="live-allow",mode="live"} 0');
    const count = createRuleMatchCounter(m);
    const facts = fakeFacts({ 'process.name': 'rundll32.exe', 'destination.port': 443 });
    const decision = settleShadow(policy, evaluatePolicy(policy, facts), facts);
    count(decision);
    count(decision);
    count({ status: 'final', verdict: 'block', ruleId: 'builtin:internal-destination', matchedRuleIds: [], tags: [], severity: null, tunnel: 'splice', reasons: [] });
    const text = await m.registry.metrics();
    expect(text).toContain('egress_rule_matches_total{rule="shadow-block-rundll32",mode="shadow"} 2');
    expect(text).toContain('egress_rule_matches_total{rule="shadow-allow-any",mode="shadow"} 2');
    expect(text).toContain('egress_rule_matches_total{rule="live-tag",mode="live"} 2');
    expect(text).toContain('egress_rule_matches_total{rule="live-allow",mode="live"} 0');
    expect(text).toContain('egress_rule_matches_total{rule="builtin:internal-destination",mode="live"} 1');
  });
});

describe('shadow rules: no wait in the pipeline', () => {
  const SHADOW_ONLY = 'version: 1\nrules:\n  - id: s\n    mode: shadow\n    when: { process.name: rundll32.exe }\n    action: block\n';

  it('an unmanaged client does not wait, and its record has no shadow match without a process', async () => {
    const { pipeline, ended } = makePipeline(SHADOW_ONLY, noHints, 5000);
    const flow = connectFlow(pipeline, 'example.test', 443);
    const started = Date.now();
    expect(await pipeline.decide(flow, 'connect')).toMatchObject({ status: 'final', verdict: 'allow' });
    expect(Date.now() - started).toBeLessThan(1000);
    pipeline.end(flow);
    expect(ended[0]?.decision?.shadow).toBeUndefined();
  });

  it('a managed client does not wait either; a hint that comes before the end is settled into the record', async () => {
    let hinted = false;
    let waited = false;
    const hints: HintSource = {
      isManaged: () => true,
      attach: (flow) => {
        if (!hinted) return false;
        flow.set('process.name', 'rundll32.exe');
        return true;
      },
      waitFor: (_flow, ms) => {
        waited = true;
        return new Promise((resolve) => setTimeout(() => resolve(false), ms));
      },
    };
    const { pipeline, ended } = makePipeline(SHADOW_ONLY, hints, 5000);
    const flow = connectFlow(pipeline, 'example.test', 443);
    const started = Date.now();
    expect(await pipeline.decide(flow, 'connect')).toMatchObject({ status: 'final', verdict: 'allow' });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(waited).toBe(false);
    hinted = true;
    pipeline.end(flow);
    expect(ended[0]?.decision).toMatchObject({ verdict: 'allow', shadow: [{ rule: 's', action: 'block' }] });
  });
});

function makePipeline(policyYaml: string, hints: HintSource, hintWaitMs = 100): { pipeline: Pipeline; ended: Flow[] } {
  const ended: Flow[] = [];
  const view = createPolicyView(compileYaml(policyYaml));
  const deps: PipelineDeps = {
    policy: () => view,
    resolver: { resolve: () => Promise.resolve([{ address: '93.184.216.34', family: 4 }]) },
    addresses: createDestinationGuard({ internal: DEFAULT_INTERNAL_CIDRS }),
    hints,
    hintWaitMs,
    enrichers: [],
    scoring: createScoring({ extractors: [], scorers: defaultScorers }),
    observe: (flow) => ended.push(flow),
  };
  return { pipeline: new Pipeline(deps), ended };
}

function connectFlow(p: Pipeline, domain: string, port: number): Flow {
  const flow = p.open('connect', '192.168.1.10', 50000);
  flow.set('destination.domain', domain);
  flow.set('destination.port', port);
  flow.set('http.request.method', 'CONNECT');
  return flow;
}

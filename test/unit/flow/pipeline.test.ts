import { describe, expect, it } from 'vitest';
import { Pipeline, INTERNAL_DESTINATION_RULE, type PipelineDeps } from '../../../src/flow/pipeline.js';
import type { Flow } from '../../../src/flow/flow.js';
import type { HintSource } from '../../../src/enrich/hints.js';
import { noHints } from '../../../src/enrich/hints.js';
import { createPolicyView } from '../../../src/policy/evaluate.js';
import { createDestinationGuard, DEFAULT_INTERNAL_CIDRS } from '../../../src/net/address-class.js';
import { EgressError } from '../../../src/errors.js';
import { defaultScorers } from '../../../src/scoring/scorers.js';
import { createScoring } from '../../../src/scoring/score.js';
import { compileYaml } from '../policy/policy-kit.js';

/** A pipeline over an inline policy with a fake resolver; `lookups` counts DNS lookups. */
function makePipeline(policyYaml: string, overrides: Partial<PipelineDeps> = {}) {
  const lookups: string[] = [];
  const ended: Flow[] = [];
  const deps: PipelineDeps = {
    policy: () => createPolicyView(compileYaml(policyYaml)),
    resolver: {
      resolve: async (host) => {
        lookups.push(host);
        if (host === 'nx.test') throw new EgressError('RESOLVE_FAILED', 'could not resolve "nx.test": NXDOMAIN');
        return [{ address: host === 'intranet.test' ? '10.1.2.3' : '93.184.216.34', family: 4 }];
      },
    },
    addresses: createDestinationGuard({ internal: DEFAULT_INTERNAL_CIDRS }),
    hints: noHints,
    hintWaitMs: 100,
    enrichers: [],
    scoring: createScoring({ extractors: [], scorers: defaultScorers }),
    observe: (flow) => ended.push(flow),
    ...overrides,
  };
  return { pipeline: new Pipeline(deps), lookups, ended };
}

function connectFlow(p: Pipeline, domain: string, port = 443): Flow {
  const flow = p.open('connect', '192.168.1.10', 50000);
  flow.set('destination.domain', domain);
  flow.set('destination.port', port);
  flow.set('http.request.method', 'CONNECT');
  return flow;
}

/** A hint source for one managed client whose hint arrives after `delayMs` (or never). */
function delayedHint(processName: string, delayMs: number | null): HintSource {
  return {
    isManaged: (ip) => ip === '192.168.1.10',
    attach: () => false,
    waitFor: (flow, ms) =>
      new Promise((resolve) => {
        if (delayMs === null || delayMs > ms) return void setTimeout(() => resolve(false), ms);
        setTimeout(() => {
          flow.set('process.name', processName);
          flow.set('egress.attribution', 'telemetry');
          resolve(true);
        }, delayMs);
      }),
  };
}

describe('Pipeline stages and decisions', () => {
  it('decides on the CONNECT alone when no rule needs later facts, resolving the name once', async () => {
    const { pipeline, lookups } = makePipeline('version: 1\nrules:\n  - id: a\n    when: { destination.port: 443 }\n    action: allow\n');
    const flow = connectFlow(pipeline, 'example.test');
    const d = await pipeline.decide(flow, 'connect');
    expect(d).toMatchObject({ status: 'final', verdict: 'allow', ruleId: 'a' });
    expect(flow.get('destination.ip')).toBe('93.184.216.34');
    expect(flow.get('egress.destination.internal')).toBe(false);
    expect(lookups).toEqual(['example.test']);
  });

  it('does not resolve a name the policy blocks on the name alone', async () => {
    const { pipeline, lookups } = makePipeline('version: 1\nrules:\n  - id: b\n    when: { destination.domain: { endswith: .evil.test } }\n    action: block\n');
    const d = await pipeline.decide(connectFlow(pipeline, 'c2.evil.test'), 'connect');
    expect(d).toMatchObject({ status: 'final', verdict: 'block', ruleId: 'b' });
    expect(lookups).toEqual([]);
  });

  it('stays pending on a TLS rule at CONNECT, then decides at the ClientHello (file order wins)', async () => {
    const { pipeline } = makePipeline(
      'version: 1\nrules:\n  - id: ja3\n    when: { tls.client.ja3: 0123456789abcdef0123456789abcdef }\n    action: block\n  - id: allow-all\n    when: { destination.port: 443 }\n    action: allow\n',
    );
    const flow = connectFlow(pipeline, 'example.test');
    const first = await pipeline.decide(flow, 'connect');
    expect(first).toMatchObject({ status: 'pending', pendingRuleId: 'ja3', pendingFields: ['tls.client.ja3'] });
    flow.set('tls.client.ja3', '0123456789ABCDEF0123456789ABCDEF');
    const second = await pipeline.decide(flow, 'client-hello');
    expect(second).toMatchObject({ status: 'final', verdict: 'block', ruleId: 'ja3' });
  });

  it('a TLS rule on a flow that turned out not to be TLS does not match', async () => {
    const { pipeline } = makePipeline('version: 1\nrules:\n  - id: sni\n    when: { tls.client.server_name: x.test }\n    action: block\n');
    const flow = connectFlow(pipeline, 'example.test');
    expect((await pipeline.decide(flow, 'connect')).status).toBe('pending');
    flow.set('network.protocol', 'unknown');
    expect(await pipeline.decide(flow, 'client-hello')).toMatchObject({ status: 'final', verdict: 'allow', ruleId: null });
  });

  it('unmanaged clients never wait for a process hint: process rules just do not match', async () => {
    const { pipeline } = makePipeline('version: 1\nrules:\n  - id: p\n    when: { process.name: rundll32.exe }\n    action: block\n', { hintWaitMs: 5000 });
    const flow = connectFlow(pipeline, 'example.test');
    const started = Date.now();
    expect(await pipeline.decide(flow, 'connect')).toMatchObject({ status: 'final', verdict: 'allow' });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(flow.get('egress.attribution')).toBe('none');
  });

  it('managed clients wait up to hint_wait for a hint that a pending rule needs', async () => {
    const { pipeline } = makePipeline('version: 1\nrules:\n  - id: p\n    when: { process.name: rundll32.exe }\n    action: block\n', {
      hints: delayedHint('rundll32.exe', 20),
      hintWaitMs: 500,
    });
    const flow = connectFlow(pipeline, 'example.test');
    expect(await pipeline.decide(flow, 'connect')).toMatchObject({ status: 'final', verdict: 'block', ruleId: 'p' });
    expect(flow.get('egress.attribution')).toBe('telemetry');
  });

  it('a hint that does not come in time leaves process.* absent and the flow is decided without it', async () => {
    const { pipeline } = makePipeline('version: 1\nrules:\n  - id: p\n    when: { process.name: rundll32.exe }\n    action: block\n', {
      hints: delayedHint('rundll32.exe', null),
      hintWaitMs: 60,
    });
    const flow = connectFlow(pipeline, 'example.test');
    const started = Date.now();
    expect(await pipeline.decide(flow, 'connect')).toMatchObject({ status: 'final', verdict: 'allow' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(50);
    expect(flow.get('egress.attribution')).toBe('none');
  });

  it('does not wait for a hint that only a tag rule needs; the tag lands in the record if the hint comes before the end', async () => {
    const policy = 'version: 1\nrules:\n  - id: t\n    when: { process.name: rundll32.exe }\n    action: tag\n    severity: medium\n    tags: [an0922]\n';
    let hinted = false;
    const hints: HintSource = {
      isManaged: () => true,
      attach: (flow) => {
        if (!hinted) return false;
        flow.set('process.name', 'rundll32.exe');
        flow.set('egress.attribution', 'telemetry');
        return true;
      },
      waitFor: (_flow, ms) => new Promise((resolve) => setTimeout(() => resolve(false), ms)),
    };
    const { pipeline, ended } = makePipeline(policy, { hints, hintWaitMs: 5000 });
    const flow = connectFlow(pipeline, 'example.test');
    const started = Date.now();
    expect(await pipeline.decide(flow, 'connect')).toMatchObject({ status: 'final', verdict: 'allow', deferredRuleIds: ['t'] });
    expect(Date.now() - started).toBeLessThan(1000);
    hinted = true; // the hint arrives while the tunnel runs
    pipeline.end(flow);
    expect(ended[0]?.decision).toMatchObject({ verdict: 'allow', tags: ['an0922'], severity: 'medium', matchedRuleIds: ['t'] });
  });

  it('does not wait for a hint when no rule needs process facts, even for managed clients', async () => {
    const { pipeline } = makePipeline('version: 1\nrules:\n  - id: a\n    when: { destination.port: 443 }\n    action: allow\n', {
      hints: delayedHint('rundll32.exe', null),
      hintWaitMs: 5000,
    });
    const started = Date.now();
    await pipeline.decide(connectFlow(pipeline, 'example.test'), 'connect');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('blocks internal destinations unless the allowing rule names the destination', async () => {
    const blanket = makePipeline('version: 1\nrules:\n  - id: any443\n    when: { destination.port: 443 }\n    action: allow\n');
    const flow = connectFlow(blanket.pipeline, 'intranet.test');
    expect(await blanket.pipeline.decide(flow, 'connect')).toMatchObject({ verdict: 'block', ruleId: INTERNAL_DESTINATION_RULE });
    expect(flow.get('egress.destination.internal')).toBe(true);

    const named = makePipeline('version: 1\nrules:\n  - id: intranet\n    when: { destination.domain: intranet.test }\n    action: allow\n');
    expect(await named.pipeline.decide(connectFlow(named.pipeline, 'intranet.test'), 'connect')).toMatchObject({ verdict: 'allow', ruleId: 'intranet' });
  });

  it('a name that does not resolve leaves destination.ip absent and records why', async () => {
    const { pipeline } = makePipeline('version: 1\n');
    const flow = connectFlow(pipeline, 'nx.test');
    expect(await pipeline.decide(flow, 'connect')).toMatchObject({ status: 'final', verdict: 'allow' });
    expect(flow.get('destination.ip')).toBeUndefined();
    expect(flow.errorCode).toBe('RESOLVE_FAILED');
  });

  it('scores at every stage and explains the score', async () => {
    const { pipeline } = makePipeline('version: 1\n');
    const flow = connectFlow(pipeline, 'example.test', 8081);
    await pipeline.decide(flow, 'connect');
    expect(flow.get('egress.score')).toBe(25);
    expect(flow.get('egress.reasons')).toEqual(['uncommon destination port 8081 (+25 uncommon_port)']);
    expect(flow.get('egress.signals')).toEqual(['uncommon_port']);
  });

  it('a rule on egress.score waits for the facts that can still change it, and sees the final score', async () => {
    // A managed client's process can still arrive: a verdict on the score waits for it (within hint_wait).
    const policy = 'version: 1\nrules:\n  - id: high-score\n    when: { egress.score: { gte: 50 } }\n    action: block\n';
    const hints: HintSource = {
      isManaged: () => true,
      attach: () => false,
      waitFor: (flow) => {
        flow.set('process.name', 'chrome.exe');
        flow.set('egress.claim.process_name', 'rundll32.exe');
        flow.set('egress.attribution', 'telemetry');
        return Promise.resolve(true);
      },
    };
    const { pipeline } = makePipeline(policy, { hints });
    const flow = connectFlow(pipeline, 'example.test', 8081);
    flow.closeStage('client-hello');
    // uncommon port (25) + process claim mismatch (40), the latter known only after the hint.
    expect(await pipeline.decide(flow, 'connect')).toMatchObject({ status: 'final', verdict: 'block', ruleId: 'high-score' });
    expect(flow.get('egress.score')).toBe(65);
  });

  it('a block rule on egress.score of an unmanaged CONNECT waits for the ClientHello, then decides on the final score', async () => {
    const policy = 'version: 1\nrules:\n  - id: high-score\n    when: { egress.score: { gte: 50 } }\n    action: block\n';
    const { pipeline } = makePipeline(policy);
    const flow = connectFlow(pipeline, 'example.test', 8081);
    // Only the port is known (25): the hello can still add evidence, so the listener must gather it first.
    expect(await pipeline.decide(flow, 'connect')).toMatchObject({ status: 'pending', pendingRuleId: 'high-score', pendingFields: ['egress.score'] });
    flow.set('egress.tls.malformed', 'bad length at offset 5');
    expect(await pipeline.decide(flow, 'client-hello')).toMatchObject({ status: 'final', verdict: 'block', ruleId: 'high-score' });
    expect(flow.get('egress.score')).toBe(55);
  });

  it('a tag rule on egress.score is settled on the final score when the flow ends', async () => {
    const policy = 'version: 1\nrules:\n  - id: alert-score\n    when: { egress.score: { gte: 50 } }\n    action: tag\n    severity: high\n';
    const { pipeline, ended } = makePipeline(policy);
    const flow = connectFlow(pipeline, 'example.test', 8081);
    const decision = await pipeline.decide(flow, 'connect');
    // Only the port is known yet (25); the ClientHello can still add evidence, so the tag is deferred.
    expect(decision).toMatchObject({ status: 'final', verdict: 'allow', deferredRuleIds: ['alert-score'] });
    flow.set('egress.tls.malformed', 'bad length at offset 5');
    await pipeline.decide(flow, 'client-hello');
    pipeline.end(flow);
    expect(ended[0]?.get('egress.score')).toBe(55);
    expect(ended[0]?.decision).toMatchObject({ status: 'final', severity: 'high', matchedRuleIds: ['alert-score'] });
  });

  it('a later stage of a decided flow is not scored again: the end scores it on every fact (one pass saved)', async () => {
    const passes = { score: 0, finish: 0 };
    const inner = createScoring({ extractors: [], scorers: defaultScorers });
    const scoring = {
      score: (f: Flow) => (passes.score++, inner.score(f)),
      finish: (f: Flow) => (passes.finish++, inner.finish(f)),
    };
    const { pipeline, ended } = makePipeline('version: 1\nrules:\n  - id: a\n    when: { destination.port: 8081 }\n    action: allow\n', { scoring });
    const flow = connectFlow(pipeline, 'example.test', 8081);
    expect(await pipeline.decide(flow, 'connect')).toMatchObject({ status: 'final', ruleId: 'a' });
    const atConnect = passes.score;
    flow.set('egress.tls.malformed', 'bad length at offset 5');
    await pipeline.decide(flow, 'client-hello');
    expect(passes.score).toBe(atConnect);
    pipeline.end(flow);
    expect(passes.finish).toBe(1);
    // The hello's evidence (+30 malformed) is in the record's score all the same.
    expect(ended[0]?.get('egress.score')).toBe(55);
    expect(ended[0]?.get('egress.signals')).toContain('malformed_client_hello');
  });

  it('a later stage of a decided flow adds facts but never changes the decision', async () => {
    const { pipeline } = makePipeline('version: 1\nrules:\n  - id: a\n    when: { destination.port: 443 }\n    action: allow\n  - id: late\n    when: { tls.client.server_name: x.test }\n    action: block\n');
    const flow = connectFlow(pipeline, 'example.test');
    const first = await pipeline.decide(flow, 'connect');
    flow.set('tls.client.server_name', 'x.test');
    expect(await pipeline.decide(flow, 'client-hello')).toBe(first);
  });

  it('ends each flow exactly once', async () => {
    const { pipeline, ended } = makePipeline('version: 1\n');
    const flow = connectFlow(pipeline, 'example.test');
    expect(pipeline.activeCount).toBe(1);
    pipeline.end(flow);
    pipeline.end(flow);
    expect(ended).toHaveLength(1);
    expect(pipeline.activeCount).toBe(0);
  });
});

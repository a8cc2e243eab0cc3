/**
 * certainBlock: while rules pend, is a block already certain whatever the pending facts bring? (SPEC: a CONNECT
 * whose outcome does not depend on the ClientHello is answered before 200.)
 */
import { describe, expect, it } from 'vitest';
import { certainBlock } from '../../../src/policy/evaluate.js';
import { compileYaml, fakeFacts } from './policy-kit.js';

const INTERNAL = 'builtin:internal-destination';
const SNI_PENDING = ['tls.client.server_name'] as const;

describe('certainBlock', () => {
  it('an internal destination with only rules that cannot open it is blocked now', () => {
    const policy = compileYaml('version: 1\nrules:\n  - id: allow-sni\n    when: { tls.client.server_name: ok.test }\n    action: allow\n');
    const facts = fakeFacts({ 'destination.ip': '10.1.2.3', 'egress.destination.internal': true }, [...SNI_PENDING]);
    expect(certainBlock(policy, facts, true, INTERNAL)).toMatchObject({ status: 'final', verdict: 'block', ruleId: INTERNAL });
  });

  it('a pending allow that names the destination keeps the flow open', () => {
    const policy = compileYaml('version: 1\nrules:\n  - id: open-wiki\n    when: { destination.ip: 10.1.2.3, tls.client.server_name: wiki.test }\n    action: allow\n');
    const facts = fakeFacts({ 'destination.ip': '10.1.2.3', 'egress.destination.internal': true }, [...SNI_PENDING]);
    expect(certainBlock(policy, facts, true, INTERNAL)).toBeNull();
  });

  it('an external destination: any pending allow, or the default allow, keeps it open', () => {
    const policy = compileYaml('version: 1\nrules:\n  - id: block-sni\n    when: { tls.client.server_name: evil.test }\n    action: block\n');
    expect(certainBlock(policy, fakeFacts({ 'destination.port': 443 }, [...SNI_PENDING]), false, INTERNAL)).toBeNull();
  });

  it('pending blocks before a certain block: the certain one decides, with the pending tag rules deferred', () => {
    const policy = compileYaml(`version: 1
rules:
  - id: block-sni
    when: { tls.client.server_name: evil.test }
    action: block
  - id: alert-ja4
    when: { tls.client.ja4: { startswith: t13 } }
    action: tag
    severity: high
  - id: block-port
    when: { destination.port: 4444 }
    action: block
`);
    const facts = fakeFacts({ 'destination.port': 4444 }, ['tls.client.server_name', 'tls.client.ja4']);
    expect(certainBlock(policy, facts, false, INTERNAL)).toMatchObject({ verdict: 'block', ruleId: 'block-port', deferredRuleIds: ['alert-ja4'] });
  });

  it('a pending allow before a certain block leaves the outcome open', () => {
    const policy = compileYaml('version: 1\nrules:\n  - id: allow-sni\n    when: { tls.client.server_name: ok.test }\n    action: allow\n  - id: block-port\n    when: { destination.port: 4444 }\n    action: block\n');
    expect(certainBlock(policy, fakeFacts({ 'destination.port': 4444 }, [...SNI_PENDING]), false, INTERNAL)).toBeNull();
  });
});

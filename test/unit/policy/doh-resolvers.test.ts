import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { evaluatePolicy } from '../../../src/policy/evaluate.js';
import { buildPolicy } from '../../../src/policy/load.js';
import { fakeFacts } from './policy-kit.js';

const SITE = `version: 1
rules:
  - id: doh-bypass
    when:
      any:
        - destination.domain: { in: $doh_resolvers }
        - destination.ip: { in: $doh_resolver_ips }
    action: tag
    severity: medium
    tags: [doh-bypass]
`;

function load() {
  const files = ['policies/doh-resolvers.yaml', 'policies/default.yaml'];
  const sources = files.map((file) => ({ file, bytes: new Uint8Array(readFileSync(file)) }));
  const result = buildPolicy([...sources, { file: 'site.yaml', bytes: new TextEncoder().encode(SITE) }]);
  if (!result.ok) throw new Error(result.errors.map((issue) => issue.format()).join('\n'));
  return result.policy;
}

describe('policies/doh-resolvers.yaml', () => {
  it('loads together with policies/default.yaml, its lists usable from a later file', () => {
    const policy = load();
    expect(policy.lists.get('doh_resolvers')?.has('dns.google')).toBe(true);
    expect(policy.lists.get('doh_resolvers')?.has('cloudflare-dns.com')).toBe(true);
    expect(policy.rules.map((r) => r.id)).toContain('doh-bypass');
  });

  it.each([
    ['a DoH name', { 'destination.domain': 'DNS.Google', 'destination.ip': '203.0.113.1', 'destination.port': 443, 'egress.destination.internal': false }, true],
    ['a DoH anycast IP', { 'destination.ip': '1.1.1.1', 'destination.port': 443, 'egress.destination.internal': false }, true],
    ['an ordinary site', { 'destination.domain': 'example.com', 'destination.ip': '203.0.113.1', 'destination.port': 443, 'egress.destination.internal': false }, false],
  ] as const)('%s', (_intent, values, tagged) => {
    const decision = evaluatePolicy(load(), fakeFacts(values));
    expect(decision.tags.includes('doh-bypass')).toBe(tagged);
  });

  it('holds names only in lower case without a trailing dot', () => {
    const text = readFileSync('policies/doh-resolvers.yaml', 'utf8');
    const names = [...text.matchAll(/^ {4}- ([^\s#]+)/gm)].map((m) => m[1] ?? '');
    expect(names.length).toBeGreaterThan(40);
    for (const n of names) expect(n, n).toBe(n.toLowerCase().replace(/\.$/, ''));
  });
});

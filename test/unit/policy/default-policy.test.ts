import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FIELDS, isMatchableField } from '../../../src/flow/fields.js';
import type { FieldName, FlowFields } from '../../../src/flow/fields.js';
import type { CompiledPolicy } from '../../../src/policy/compile.js';
import { evaluatePolicy } from '../../../src/policy/evaluate.js';
import { loadPolicy } from '../../../src/policy/load.js';
import { OPERATORS } from '../../../src/policy/matchers.js';
import { fakeFacts } from './policy-kit.js';

async function loadDefault(): Promise<CompiledPolicy> {
  const result = await loadPolicy(['policies/default.yaml']);
  if (!result.ok) throw new Error(result.errors.map((issue) => issue.format()).join('\n'));
  return result.policy;
}

const EXTERNAL: FlowFields = { 'destination.domain': 'c2.example', 'destination.ip': '203.0.113.10', 'egress.destination.internal': false };

interface Case {
  readonly name: string;
  readonly values: FlowFields;
  readonly pending?: readonly FieldName[];
  readonly expected: Record<string, unknown>;
}

const LOLBIN: FlowFields = { 'process.name': 'rundll32.exe', 'egress.features.process_category': 'lolbin' };
const SCRIPT_HOST: FlowFields = { 'process.name': 'mshta.exe', 'egress.features.process_category': 'script-host' };
const POWERSHELL: FlowFields = { 'process.name': 'powershell.exe', 'egress.features.process_category': 'admin-tool' };
const CHROME: FlowFields = { 'process.name': 'chrome.exe', 'egress.features.process_category': 'browser' };

const CASES: readonly Case[] = [
  {
    name: 'a LOLBin to an external host on a non-web port is blocked as a high alert',
    values: { ...EXTERNAL, ...LOLBIN, 'destination.port': 4444, 'egress.score': 0 },
    expected: { status: 'final', verdict: 'block', ruleId: 'script-host-uncommon-port', severity: 'high', tags: ['attack.t1071', 'attack.t1571', 'an0922'] },
  },
  {
    name: 'an admin tool (PowerShell) on a non-web port is blocked too',
    values: { ...EXTERNAL, ...POWERSHELL, 'destination.port': 8080, 'egress.score': 0 },
    expected: { status: 'final', verdict: 'block', ruleId: 'script-host-uncommon-port' },
  },
  {
    name: 'a script host to an external web port is allowed and tagged as a medium alert',
    values: { ...EXTERNAL, ...SCRIPT_HOST, 'destination.port': 443, 'egress.score': 25 },
    expected: { status: 'final', verdict: 'allow', ruleId: null, severity: 'medium', matchedRuleIds: ['script-host-external'] },
  },
  {
    name: 'an admin\'s PowerShell to a web port with nothing unusual raises no alert',
    values: { ...EXTERNAL, ...POWERSHELL, 'destination.port': 443, 'egress.score': 0 },
    expected: { status: 'final', verdict: 'allow', severity: null, matchedRuleIds: [] },
  },
  {
    name: 'PowerShell with anomalies (score 50) is a high alert',
    values: { ...EXTERNAL, ...POWERSHELL, 'destination.port': 443, 'egress.score': 50 },
    expected: { status: 'final', verdict: 'allow', severity: 'high', matchedRuleIds: ['admin-tool-anomaly', 'anomaly-score-notable'] },
  },
  {
    name: 'PowerShell that beacons is a high alert',
    values: { ...EXTERNAL, ...POWERSHELL, 'destination.port': 443, 'egress.score': 30, 'egress.beacon.score': 0.92 },
    expected: { status: 'final', severity: 'high', matchedRuleIds: ['admin-tool-anomaly'] },
  },
  {
    name: 'any process scoring 80 or more is a high alert',
    values: { ...EXTERNAL, ...CHROME, 'destination.port': 443, 'egress.score': 85 },
    expected: { status: 'final', verdict: 'allow', severity: 'high', matchedRuleIds: ['anomaly-score-high'] },
  },
  {
    name: 'a known C2 URI shape is a high alert from any process',
    values: { ...EXTERNAL, ...CHROME, 'destination.port': 80, 'egress.score': 60, 'egress.features.uri_c2_shape': 'cobaltstrike-default-get' },
    expected: { status: 'final', severity: 'high', matchedRuleIds: ['c2-framework-default', 'anomaly-score-notable'] },
  },
  {
    name: 'SNI that differs from the CONNECT host (fronting) is a medium alert',
    values: { ...EXTERNAL, 'destination.port': 443, 'egress.score': 40, 'egress.features.sni_mismatch': true },
    expected: { status: 'final', severity: 'medium', matchedRuleIds: ['tls-fronting'] },
  },
  {
    name: 'a BITS job from a bare IP is a high alert',
    values: { 'destination.ip': '203.0.113.10', 'egress.destination.ip_literal': true, 'egress.destination.internal': false, 'destination.port': 80, 'egress.score': 30, 'egress.features.ua_family': 'bits' },
    expected: { status: 'final', severity: 'high', matchedRuleIds: ['ip-literal-destination', 'bits-bare-ip'] },
  },
  {
    name: 'an ordinary process with an ordinary flow is allowed with no alert',
    values: { ...EXTERNAL, ...CHROME, 'destination.port': 4444, 'egress.score': 25 },
    expected: { status: 'final', verdict: 'allow', ruleId: null, severity: null, matchedRuleIds: [] },
  },
  {
    name: 'an unmanaged client (no process, ever) is allowed without waiting',
    values: { ...EXTERNAL, 'destination.port': 4444, 'egress.score': 25 },
    expected: { status: 'final', verdict: 'allow', matchedRuleIds: [] },
  },
  {
    name: 'a managed client on a web port does not wait: only tag rules need the process or the final score, and they are deferred',
    values: { ...EXTERNAL, 'destination.port': 443, 'egress.score': 0 },
    pending: ['egress.features.process_category', 'egress.score'],
    expected: { status: 'final', verdict: 'allow', ruleId: null, deferredRuleIds: ['script-host-external', 'admin-tool-anomaly', 'anomaly-score-high', 'anomaly-score-notable'] },
  },
  {
    name: 'a managed client on a non-web port waits for the process hint',
    values: { ...EXTERNAL, 'destination.port': 4444, 'egress.score': 25 },
    pending: ['egress.features.process_category', 'egress.score'],
    expected: { status: 'pending', pendingRuleId: 'script-host-uncommon-port', pendingFields: ['egress.features.process_category'] },
  },
  {
    name: 'an internal destination is left to the pipeline default (no rule here allows or blocks it)',
    values: { 'destination.domain': 'fileserver', 'destination.ip': '10.0.0.5', 'egress.destination.internal': true, 'destination.port': 445, ...LOLBIN, 'egress.score': 25 },
    expected: { status: 'final', verdict: 'allow', ruleId: null, matchedRuleIds: [] },
  },
  {
    name: 'an IP-literal destination is tagged',
    values: { 'destination.ip': '203.0.113.10', 'egress.destination.ip_literal': true, 'egress.destination.internal': false, 'destination.port': 443, 'egress.score': 20 },
    expected: { status: 'final', tags: ['raw-ip-destination'], matchedRuleIds: ['ip-literal-destination'] },
  },
  {
    name: 'a named destination is not tagged as an IP literal, even once resolved',
    values: { 'destination.domain': 'example.com', 'destination.ip': '203.0.113.10', 'egress.destination.ip_literal': false, 'egress.destination.internal': false, 'destination.port': 443, 'egress.score': 0 },
    expected: { status: 'final', matchedRuleIds: [] },
  },
  {
    name: 'a DNS query is not an IP-literal destination',
    values: { 'dns.question.name': 'example.com', 'egress.score': 0 },
    expected: { status: 'final', matchedRuleIds: [] },
  },
];

describe('policies/default.yaml', () => {
  it('compiles with the AN0922 rules and lists', async () => {
    const policy = await loadDefault();
    expect(policy.rules.map((rule) => rule.id)).toEqual([
      'ip-literal-destination',
      'script-host-uncommon-port',
      'script-host-external',
      'c2-framework-default',
      'tls-fronting',
      'bits-bare-ip',
      'admin-tool-anomaly',
      'anomaly-score-high',
      'anomaly-score-notable',
    ]);
    expect([...(policy.lists.get('suspect_categories') ?? [])]).toEqual(['script-host', 'lolbin']);
    expect([...(policy.lists.get('admin_categories') ?? [])]).toEqual(['admin-tool']);
  });

  it.each(CASES)('$name', async ({ values, pending, expected }) => {
    expect(evaluatePolicy(await loadDefault(), fakeFacts(values, pending))).toMatchObject(expected);
  });
});

describe('policies/schema.json', () => {
  const schema = JSON.parse(readFileSync('policies/schema.json', 'utf8')) as {
    $schema: string;
    $defs: { when: { properties: Record<string, unknown> }; matcher: { properties: Record<string, unknown> }; rule: { properties: { action: { enum: string[] } } } };
  };

  it('is draft 2020-12', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
  });

  it('offers exactly the matchable fields and all/any/not as when keys', () => {
    const matchable = (Object.keys(FIELDS) as FieldName[]).filter(isMatchableField);
    expect(Object.keys(schema.$defs.when.properties).sort()).toEqual([...matchable, 'all', 'any', 'not'].sort());
  });

  it('offers exactly the operators of the matcher table', () => {
    expect(Object.keys(schema.$defs.matcher.properties).sort()).toEqual([...OPERATORS].sort());
  });

  it('offers exactly the rule actions', () => {
    expect(schema.$defs.rule.properties.action.enum).toEqual(['allow', 'block', 'tag', 'bump', 'splice']);
  });
});

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

const EXTERNAL: FlowFields = { 'destination.domain': 'c2.example', 'destination.ip': '203.0.113.10', 'destination.internal': false };

interface Case {
  readonly name: string;
  readonly values: FlowFields;
  readonly pending?: readonly FieldName[];
  readonly expected: Record<string, unknown>;
}

const CASES: readonly Case[] = [
  {
    name: 'a LOLBin to an external host on a non-web port is blocked as a high alert',
    values: { ...EXTERNAL, 'destination.port': 4444, 'process.name': 'rundll32.exe' },
    expected: { status: 'final', verdict: 'block', ruleId: 'script-host-uncommon-port', severity: 'high', tags: ['attack.t1071', 'attack.t1571', 'an0922'] },
  },
  {
    name: 'a script host to an external web port is allowed and tagged as a medium alert',
    values: { ...EXTERNAL, 'destination.port': 443, 'process.name': 'mshta.exe' },
    expected: { status: 'final', verdict: 'allow', ruleId: null, severity: 'medium', matchedRuleIds: ['script-host-external'] },
  },
  {
    name: 'process names match ignoring case',
    values: { ...EXTERNAL, 'destination.port': 8080, 'process.name': 'PowerShell.EXE' },
    expected: { status: 'final', verdict: 'block', ruleId: 'script-host-uncommon-port' },
  },
  {
    name: 'an ordinary process is allowed with no alert',
    values: { ...EXTERNAL, 'destination.port': 4444, 'process.name': 'chrome.exe' },
    expected: { status: 'final', verdict: 'allow', ruleId: null, severity: null, matchedRuleIds: [] },
  },
  {
    name: 'an unmanaged client (no process, ever) is allowed without waiting',
    values: { ...EXTERNAL, 'destination.port': 4444 },
    expected: { status: 'final', verdict: 'allow', matchedRuleIds: [] },
  },
  {
    name: 'a managed client on a web port does not wait: only the tag rule needs the process, and it is deferred',
    values: { ...EXTERNAL, 'destination.port': 443 },
    pending: ['process.name'],
    expected: { status: 'final', verdict: 'allow', ruleId: null, deferredRuleIds: ['script-host-external'] },
  },
  {
    name: 'a managed client on a non-web port waits for the process hint',
    values: { ...EXTERNAL, 'destination.port': 4444 },
    pending: ['process.name'],
    expected: { status: 'pending', pendingRuleId: 'script-host-uncommon-port', pendingFields: ['process.name'] },
  },
  {
    name: 'an internal destination is left to the pipeline default (no rule here allows or blocks it)',
    values: { 'destination.domain': 'fileserver', 'destination.ip': '10.0.0.5', 'destination.internal': true, 'destination.port': 445, 'process.name': 'rundll32.exe' },
    expected: { status: 'final', verdict: 'allow', ruleId: null, matchedRuleIds: [] },
  },
  {
    name: 'an IP-literal destination is tagged',
    values: { 'destination.ip': '203.0.113.10', 'destination.ip_literal': true, 'destination.internal': false, 'destination.port': 443 },
    expected: { status: 'final', tags: ['raw-ip-destination'], matchedRuleIds: ['ip-literal-destination'] },
  },
  {
    name: 'a named destination is not tagged as an IP literal, even once resolved',
    values: { 'destination.domain': 'example.com', 'destination.ip': '203.0.113.10', 'destination.ip_literal': false, 'destination.internal': false, 'destination.port': 443 },
    expected: { status: 'final', matchedRuleIds: [] },
  },
  {
    name: 'a DNS query is not an IP-literal destination',
    values: { 'dns.question.name': 'example.com' },
    expected: { status: 'final', matchedRuleIds: [] },
  },
];

describe('policies/default.yaml', () => {
  it('compiles with the AN0922 rules and lists', async () => {
    const policy = await loadDefault();
    expect(policy.rules.map((rule) => rule.id)).toEqual(['ip-literal-destination', 'script-host-uncommon-port', 'script-host-external']);
    const lolbins = policy.lists.get('lolbins');
    for (const name of ['rundll32.exe', 'regsvr32.exe', 'msiexec.exe', 'certutil.exe', 'bitsadmin.exe', 'installutil.exe', 'msbuild.exe', 'cmstp.exe', 'odbcconf.exe', 'msxsl.exe']) {
      expect(lolbins?.has(name), name).toBe(true);
    }
    for (const name of ['mshta.exe', 'wscript.exe', 'cscript.exe', 'powershell.exe', 'pwsh.exe']) {
      expect(policy.lists.get('script_hosts')?.has(name), name).toBe(true);
    }
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

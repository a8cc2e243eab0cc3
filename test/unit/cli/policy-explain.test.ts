import { describe, expect, it } from 'vitest';
import { runPolicyExplain, type PolicyExplainOptions } from '../../../src/cli/policy-explain.js';
import { capture } from '../../helpers/cli.js';


async function explain(opts: Partial<Omit<PolicyExplainOptions, 'flow'>> & { flow: unknown }): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  const flow = typeof opts.flow === 'string' ? opts.flow : JSON.stringify(opts.flow);
  const code = await runPolicyExplain({ policy: ['policies/never-bump.yaml', 'policies/default.yaml'], ...opts, flow }, { stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

interface Explained {
  rules: Array<{ rule: string; mode: string; status: string; why: string; afterDecision: boolean }>;
  decision: { status: string; verdict?: string; ruleId?: string | null; pendingRuleId?: string; pendingFields?: string[]; shadow?: Array<{ rule: string; action: string }> };
}

const RUNDLL32_4444 = { process: { name: 'rundll32.exe' }, 'egress.features.process_category': 'lolbin', 'destination.port': 4444, 'destination.internal': false };

describe('policy explain', () => {
  it('prints every rule with matched / failed (the failing condition and the actual value), then the decision', async () => {
    const { code, stdout } = await explain({ flow: { ...RUNDLL32_4444, 'destination.port': 443 } });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^no {6}script-host-uncommon-port \(block\) .*default\.yaml:\d+\n {10}destination\.port is not one of \$web_ports \[80, 443\] is false: destination\.port is 443$/m);
    expect(stdout).toMatch(/^match {3}script-host-external \(tag\) /m);
    expect(stdout).toMatch(/egress\.score is absent \(wanted: egress\.score is at least 80\)/);
    expect(stdout.trimEnd().split('\n').at(-1)).toBe('decision: allow (no rule decided: the default); tags [attack.t1071, an0922]; alert (severity medium)');
  });

  it('--json gives each rule and the decision; rules after the decision are marked', async () => {
    const { code, stdout } = await explain({ flow: RUNDLL32_4444, json: true });
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as Explained;
    expect(out.decision).toMatchObject({ status: 'final', verdict: 'block', ruleId: 'script-host-uncommon-port' });
    const byId = new Map(out.rules.map((r) => [r.rule, r]));
    expect(byId.get('never-bump')).toMatchObject({ status: 'failed', afterDecision: false });
    expect(byId.get('script-host-uncommon-port')).toMatchObject({ status: 'matched', afterDecision: false });
    expect(byId.get('script-host-external')).toMatchObject({ status: 'matched', afterDecision: true });
    expect(out.rules.map((r) => r.rule)[0]).toBe('never-bump'); // file order across files
  });

  it('--open hint shows the rules that would wait for the process hint, and the pending decision', async () => {
    const { stdout } = await explain({ flow: { 'destination.port': 4444, 'destination.internal': false }, open: ['hint'], json: true });
    const out = JSON.parse(stdout) as Explained;
    expect(out.decision).toMatchObject({ status: 'pending', pendingRuleId: 'script-host-uncommon-port' });
    expect(out.decision.pendingFields).toContain('egress.features.process_category');
    expect(out.rules.find((r) => r.rule === 'script-host-uncommon-port')).toMatchObject({ status: 'pending', why: 'waits for egress.features.process_category' });
  });

  it('applies the internal-destination default and reports shadow rules', async () => {
    const { stdout } = await explain({
      flow: { 'destination.ip': '10.0.0.5', 'destination.port': 443, 'egress.destination.internal': true, 'process.name': 'rundll32.exe' },
      policy: ['test/fixtures/policy/tests/shadow-ok.yaml'],
      json: true,
    });
    const out = JSON.parse(stdout) as Explained;
    expect(out.decision).toMatchObject({ verdict: 'block', ruleId: 'builtin:internal-destination', shadow: [{ rule: 'shadow-block-rundll32', action: 'block' }] });
    expect(out.rules.find((r) => r.rule === 'shadow-block-rundll32')).toMatchObject({ mode: 'shadow', status: 'matched' });
  });

  it('takes a pasted flow record: fields the decision wrote are left out', async () => {
    const record = { '@timestamp': '2025-01-01T00:00:00Z', event: { kind: 'alert', action: 'block' }, rule: { id: 'x' }, destination: { port: 4444 }, tls: { client: { supported_ciphers: ['TLS_AES_128_GCM_SHA256'] } } };
    const { code, stdout } = await explain({ flow: record });
    expect(code).toBe(0);
    expect(stdout).toMatch(/decision: allow/);
  });

  it('refuses an unknown field with a suggestion, a wrong type, bad JSON and an unknown stage (exit 1)', async () => {
    expect(await explain({ flow: { 'process.nmae': 'x' } })).toMatchObject({ code: 1, stderr: 'policy explain: --flow: unknown field "process.nmae" (did you mean "process.name"?)\n' });
    expect(await explain({ flow: { 'destination.port': '443' } })).toMatchObject({ code: 1, stderr: 'policy explain: --flow: destination.port needs a number, got string "443"\n' });
    expect((await explain({ flow: '{"a":' })).stderr).toMatch(/^policy explain: --flow is not JSON/);
    expect((await explain({ flow: '[1]' })).stderr).toMatch(/must be a JSON object/);
    expect((await explain({ flow: {}, open: ['later'] })).code).toBe(1);
  });

  it('exits 1 with file:line:col lines for an invalid policy', async () => {
    const { code, stdout } = await explain({ flow: {}, policy: ['test/fixtures/policy/broken/wrong-action.yaml'] });
    expect(code).toBe(1);
    expect(stdout).toMatch(/^test\/fixtures\/policy\/broken\/wrong-action\.yaml:\d+:\d+: /);
  });
});

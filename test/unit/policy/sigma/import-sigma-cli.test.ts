import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runImportSigma, type ImportSigmaOptions } from '../../../../src/cli/import-sigma.js';
import { evaluatePolicy } from '../../../../src/policy/evaluate.js';
import { loadPolicy } from '../../../../src/policy/load.js';
import { importSigma } from '../../../../src/policy/sigma/import.js';
import { parseSigmaText } from '../../../../src/policy/sigma/parse.js';
import { fakeFacts } from '../policy-kit.js';
import { capture } from '../../../helpers/cli.js';

const RULES = 'test/fixtures/sigma/rules';


async function run(inputs: string[], options: ImportSigmaOptions = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  const code = await runImportSigma(inputs, options, { stdout: stdout.stream, stderr: stderr.stream });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

describe('policy import-sigma', () => {
  it('imports a directory recursively, writes a policy the real loader accepts, and reports refusals on stderr', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'sigma-')), 'sigma.yaml');
    const { code, stdout, stderr } = await run([RULES], { output: out });
    expect(code).toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toContain(`refused ${RULES}/proc_creation_refused.yml (0c7f4a52-5f0e-4a8b-9a43-3b1d3b8c1a04): logsource category "process_creation" is not one the proxy observes`);
    expect(stderr).toContain(`refused ${RULES}/net_source_port_refused.yml (0c7f4a52-5f0e-4a8b-9a43-3b1d3b8c1a05): field SourcePort is not supported`);
    expect(stderr).toMatch(/policy import-sigma: 3 of 5 rules converted, 2 refused\n$/);

    const loaded = await loadPolicy([out]);
    if (!loaded.ok) throw new Error(loaded.errors.map((e) => e.format()).join('\n'));
    expect(loaded.policy.rules.map((r) => r.id)).toEqual([
      'sigma.0c7f4a52-5f0e-4a8b-9a43-3b1d3b8c1a03',
      'sigma.0c7f4a52-5f0e-4a8b-9a43-3b1d3b8c1a02',
      'sigma.0c7f4a52-5f0e-4a8b-9a43-3b1d3b8c1a01',
    ]);
    const text = readFileSync(out, 'utf8');
    expect(text).toContain('Detection Rule License (DRL) 1.1');
    expect(text).toContain('# author: egress-inspector tests');
    expect(text).toContain(`# source: ${RULES}/proxy_c2_user_agent.yml`);
    expect(text).toContain('# reference: https://github.com/SigmaHQ/sigma/tree/master/rules/proxy');

    // The imported proxy rule fires on the flow it describes (plain HTTP through the proxy: absolute-form target).
    const flow = {
      'user_agent.original': 'Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko',
      'url.original': 'http://203.0.113.9/login/process.php',
      'http.request.method': 'POST',
    } as const;
    const decision = evaluatePolicy(loaded.policy, fakeFacts(flow));
    expect(decision.matchedRuleIds).toEqual(['sigma.0c7f4a52-5f0e-4a8b-9a43-3b1d3b8c1a01']);
    expect(decision.severity).toBe('high');
    expect(decision.tags).toContain('attack.t1071.001');
    expect(decision.tags).toContain('sigma.author:egress-inspector tests');
    expect(decision.status === 'final' && decision.verdict).toBe('allow'); // tag by default: alert, not block
    expect(evaluatePolicy(loaded.policy, fakeFacts({ ...flow, 'http.request.method': 'GET' })).matchedRuleIds).toEqual([]);
  });

  it('--action block makes the imported rules block', async () => {
    const { code, stdout } = await run([`${RULES}/nested/dns_tunnel_service.yml`], { action: 'block' });
    expect(code).toBe(0);
    expect(stdout).toContain('action: block');
    const imported = importSigma([{ source: 'x.yml', text: readFileSync(`${RULES}/nested/dns_tunnel_service.yml`, 'utf8') }], { action: 'block' });
    expect(imported.converted[0]?.action).toBe('block');
  });

  it('--json prints a machine summary', async () => {
    const { code, stdout } = await run([RULES], { json: true });
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as { converted: number; refused: number; rules: { id: string; author: string }[]; refusals: { sigma_id: string; reason: string }[] };
    expect(summary.converted).toBe(3);
    expect(summary.refused).toBe(2);
    expect(summary.rules.map((r) => r.author)).toEqual(['egress-inspector tests', 'egress-inspector tests', 'egress-inspector tests']);
    expect(summary.refusals.map((r) => r.sigma_id).sort()).toEqual(['0c7f4a52-5f0e-4a8b-9a43-3b1d3b8c1a04', '0c7f4a52-5f0e-4a8b-9a43-3b1d3b8c1a05']);
  });

  it('exits 1 for a missing path, a broken file, or a bad --action', async () => {
    const missing = await run(['test/fixtures/sigma/nope.yml']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('test/fixtures/sigma/nope.yml: cannot read (ENOENT)');
    const broken = await run(['test/fixtures/sigma/broken']);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/refused test\/fixtures\/sigma\/broken\/not_yaml\.yml: YAML syntax error/);
    expect(broken.stdout).toContain('version: 1'); // still a valid (empty) policy
    const action = await run([RULES], { action: 'allow' });
    expect(action.code).toBe(1);
    expect(action.stderr).toContain('--action must be tag or block');
  });

  it('reads multi-document files and names each document', () => {
    const text = `${readFileSync(`${RULES}/proxy_c2_user_agent.yml`, 'utf8')}---\n${readFileSync(`${RULES}/net_rundll32_egress.yml`, 'utf8')}`;
    const docs = parseSigmaText(text, 'two.yml');
    expect(docs.map((d) => (d.ok ? d.rule.source : d.error))).toEqual(['two.yml#1', 'two.yml#2']);
    expect(parseSigmaText('action: global\ntitle: x\n', 'g.yml')[0]).toMatchObject({ ok: false, error: expect.stringMatching(/rule collections/) });
    expect(parseSigmaText('', 'e.yml')[0]).toMatchObject({ ok: false, error: 'the file holds no YAML document' });
  });

  it('refuses a second rule with the same id', () => {
    const text = readFileSync(`${RULES}/proxy_c2_user_agent.yml`, 'utf8');
    const result = importSigma([{ source: 'a.yml', text }, { source: 'b.yml', text }]);
    expect(result.converted).toHaveLength(1);
    expect(result.refused[0]?.reason).toBe('duplicate Sigma id (first in a.yml)');
  });
});

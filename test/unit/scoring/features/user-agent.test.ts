import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ProcessCategory } from '../../../../src/scoring/features/process.js';
import type { UaFacts, UaFamily, UserAgentCatalogue } from '../../../../src/scoring/features/user-agent.js';
import { compileUserAgents, loadUserAgents, SHIPPED_USER_AGENTS } from '../../../../src/scoring/features/user-agent.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

let catalogue: UserAgentCatalogue;
beforeAll(async () => {
  catalogue = await loadUserAgents(SHIPPED_USER_AGENTS);
});

function compileErrors(text: string): string[] {
  const r = compileUserAgents(text, 'ua.yaml');
  if (r.ok) throw new Error('expected the catalogue to be rejected');
  return r.errors;
}

function compiled(text: string, cache: { max?: number; ttlMs?: number } = {}): UserAgentCatalogue {
  const r = compileUserAgents(text, 'ua.yaml', cache);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.catalogue;
}

const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const EDGE = `${CHROME} Edg/131.0.0.0`;
const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0';
const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15';
const IE11_WIN7 = 'Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko';

describe('the shipped catalogue', () => {
  it('lives in policies/data next to the package', () => {
    expect(SHIPPED_USER_AGENTS).toBe(resolve(REPO, 'policies/data/user-agents.yaml'));
  });

  it('loads', () => {
    expect(catalogue.size).toBeGreaterThan(40);
  });
});

describe('classify', () => {
  it.each<[string, string | undefined, Partial<UaFacts>]>([
    ['Chrome', CHROME, { family: 'browser', browserLike: true, knownC2: null, outdatedBrowser: false }],
    ['Edge', EDGE, { family: 'browser', browserLike: true, outdatedBrowser: false }],
    ['Firefox', FIREFOX, { family: 'browser', browserLike: true, outdatedBrowser: false }],
    ['Safari', SAFARI, { family: 'browser', browserLike: true, outdatedBrowser: false }],
    ['an old Chrome', CHROME.replace('131.0.0.0', '96.0.4664.45'), { family: 'browser', outdatedBrowser: true }],
    ['an old Firefox', FIREFOX.replaceAll('133.0', '78.0'), { family: 'browser', outdatedBrowser: true }],
    ['Chrome on Windows 7', CHROME.replace('Windows NT 10.0', 'Windows NT 6.1'), { family: 'browser', outdatedBrowser: true }],
    ['legacy EdgeHTML', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19582', { outdatedBrowser: true }],
    // Cobalt Strike / Empire defaults are genuine old IE strings: outdated, not known C2 (Sigma pairs them with URIs).
    ['IE 11 on Windows 7 (Empire, CS amazon profile)', IE11_WIN7, { family: 'browser', browserLike: true, knownC2: null, outdatedBrowser: true }],
    ['IE 9 (a CS default)', 'Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; WOW64; Trident/5.0; MALC)', { family: 'browser', knownC2: null, outdatedBrowser: true }],
    ['IE 11 on Windows 10 (IE mode)', 'Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko', { family: 'browser', outdatedBrowser: false }],
    // Exact strings from Sigma lists are known.
    ['a CS malleable profile string', 'Mozilla/4.0 (compatible; MSIE 6.0;Windows NT 5.1)', { family: 'browser', browserLike: false, knownC2: 'Cobalt Strike malleable profile', outdatedBrowser: true }],
    ['a CS profile suffix', 'Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; MANM; MANM)', { knownC2: 'Cobalt Strike malleable profile' }],
    ['Metasploit', 'Mozilla/4.0 (compatible; Metasploit RSPEC)', { knownC2: 'Metasploit' }],
    ['a malware agent', 'Mozilla/5.0 WinInet', { family: 'wininet', knownC2: 'malware User-Agent' }],
    ['an APT agent', 'Mozilla/5.0 (Windows NT 6.1; WOW64) WinHttp/1.6.3.8 (WinHTTP/5.1) like Gecko', { family: 'winhttp', knownC2: 'APT User-Agent' }],
    ['sqlmap', 'sqlmap/1.8#stable (https://sqlmap.org)', { knownC2: 'hack tool User-Agent' }],
    ['rclone', 'rclone/v1.66.0', { knownC2: 'rclone (exfiltration)' }],
    ['a Base64 agent', 'TW96aWxsYS81LjA=', { knownC2: 'Base64-encoded User-Agent' }],
    ['a header name inside the value', 'User-Agent: Mozilla/5.0', { knownC2: 'suspicious User-Agent' }],
    ['a Mozilla/3.0 tool', 'Mozilla/3.0 (compatible; Indy Library)', { knownC2: 'suspicious User-Agent' }],
    ["Acrobat's own Mozilla/3.0 agent (the rule's exception)", 'Mozilla/3.0 (compatible; Acrobat 5.0; Windows)', { knownC2: null }],
    ['matching ignores case', 'MOZILLA/4.0 (COMPATIBLE; METASPLOIT RSPEC)', { knownC2: 'Metasploit' }],
    ['PowerShell 5.1', 'Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.1682', { family: 'powershell', browserLike: false, knownC2: null }],
    ['PowerShell 7', 'Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.19045; en-US) PowerShell/7.4.1', { family: 'powershell', browserLike: false }],
    ['curl', 'curl/8.4.0', { family: 'curl' }],
    ['Wget', 'Wget/1.21.3', { family: 'wget' }],
    ['python-requests', 'python-requests/2.31.0', { family: 'python' }],
    ['urllib', 'Python-urllib/3.11', { family: 'python' }],
    ['Go', 'Go-http-client/1.1', { family: 'go' }],
    ['Java', 'Java-http-client/17.0.15', { family: 'java' }],
    ['Node fetch', 'node', { family: 'node' }],
    ['BITS', 'Microsoft BITS/7.8', { family: 'bits' }],
    ['Windows Update', 'Windows-Update-Agent/10.0.10011.16384 Client-Protocol/2.50', { family: 'windows-update' }],
    ['Delivery Optimization', 'Microsoft-Delivery-Optimization/10.0', { family: 'delivery-optimization' }],
    ['CryptoAPI', 'Microsoft-CryptoAPI/10.0', { family: 'crypto-api' }],
    ['certutil', 'CertUtil URL Agent', { family: 'certutil', knownC2: null }],
    ['WebDAV', 'Microsoft-WebDAV-MiniRedir/10.0.19045', { family: 'webdav' }],
    ['SCCM', 'SMS CCM 5.0', { family: 'sccm' }],
    ['.NET SOAP', 'Mozilla/4.0 (compatible; MSIE 6.0; MS Web Services Client Protocol 4.0.30319.42000)', { family: 'dotnet', knownC2: null }],
    ['Office', 'Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17231; Pro)', { family: 'office' }],
    ['Office through WinINet', 'Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E; ms-office; MSOffice 16)', { family: 'office', outdatedBrowser: false }],
    ['Teams', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Teams/1.6.00.4472 Chrome/108.0.5359.215 Electron/22.3.27 Safari/537.36', { family: 'teams', browserLike: true }],
    ['Slack (Electron)', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.41.105 Chrome/130.0.6723.191 Electron/33.2.1 Safari/537.36', { family: 'electron' }],
    ['npm', 'npm/10.2.4 node/v20.11.0 win32 x64 workspaces/false', { family: 'package-manager' }],
    ['a truncated browser string (no engine)', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64)', { family: 'unknown', browserLike: false, knownC2: 'malware User-Agent' }],
    ['something else', 'MyUpdater/2.1', { family: 'unknown', browserLike: false, knownC2: null, outdatedBrowser: false }],
    ['an empty header (Sigma 21e44d78)', '', { family: 'empty', knownC2: null }],
    ['a blank header', '   ', { family: 'empty' }],
    ['no header', undefined, { family: 'empty', knownC2: null }],
  ])('%s', (_name, ua, expected) => {
    expect(catalogue.classify(ua)).toMatchObject(expected);
  });

  it('a very long agent is classified on its first characters, without throwing', () => {
    const long = `${CHROME} ${'x'.repeat(20_000)}`;
    expect(catalogue.classify(long)).toMatchObject({ family: 'browser', browserLike: true });
  });
});

describe('fitsProcess', () => {
  it.each<[UaFamily, ProcessCategory, string, boolean | null]>([
    ['browser', 'browser', 'chrome.exe', true],
    ['browser', 'collaboration', 'teams.exe', true],
    ['browser', 'office', 'winword.exe', true],
    ['browser', 'browser', 'msedgewebview2.exe', true],
    ['browser', 'lolbin', 'rundll32.exe', false],
    ['browser', 'admin-tool', 'powershell.exe', false],
    ['browser', 'system', 'svchost.exe', false],
    ['browser', 'unknown', 'payload.exe', false],
    ['powershell', 'admin-tool', 'powershell.exe', true],
    ['powershell', 'admin-tool', 'PWSH.EXE', true],
    ['powershell', 'lolbin', 'rundll32.exe', false],
    ['powershell', 'unknown', 'loader.exe', false],
    ['curl', 'admin-tool', 'curl.exe', true],
    ['curl', 'admin-tool', '/usr/bin/curl', true],
    ['curl', 'lolbin', 'rundll32.exe', false],
    ['curl', 'unknown', 'x.exe', null],
    ['python', 'dev-tool', 'python.exe', true],
    ['python', 'lolbin', 'rundll32.exe', false],
    ['python', 'unknown', 'packed.exe', null],
    ['bits', 'system', 'svchost.exe', true],
    ['bits', 'admin-tool', 'powershell.exe', false],
    ['certutil', 'lolbin', 'certutil.exe', true],
    ['certutil', 'script-host', 'mshta.exe', false],
    ['crypto-api', 'lolbin', 'rundll32.exe', null],
    ['unknown', 'lolbin', 'rundll32.exe', null],
    ['empty', 'lolbin', 'rundll32.exe', null],
  ])('%s from %s %s → %s', (family, category, name, expected) => {
    expect(catalogue.fitsProcess(family, category, name)).toBe(expected);
  });
});

const SMALL = `version: 1
families:
  - family: curl
    starts_with: [curl/]
    source: documented
known_c2:
  - label: test
    equals: [evil]
    source: test
`;

describe('the classify() cache', () => {
  it('returns the cached facts for a repeated agent', () => {
    const c = compiled(SMALL);
    const first = c.classify('curl/8.0');
    expect(c.classify('curl/8.0')).toBe(first);
  });

  it('is bounded: the least recently used agent is forgotten', () => {
    const c = compiled(SMALL, { max: 2 });
    const first = c.classify('curl/1');
    c.classify('curl/2');
    c.classify('curl/3');
    const again = c.classify('curl/1');
    expect(again).toEqual(first);
    expect(again).not.toBe(first);
  });

  it('expires entries after the TTL', async () => {
    const c = compiled(SMALL, { ttlMs: 5 });
    const first = c.classify('curl/1');
    await new Promise((r) => setTimeout(r, 30));
    expect(c.classify('curl/1')).not.toBe(first);
  });

  it('does not keep very long agents', () => {
    const c = compiled(SMALL);
    const long = `curl/${'9'.repeat(600)}`;
    expect(c.classify(long)).not.toBe(c.classify(long));
  });

  it('classify() takes at most 2 µs per call (median) on a realistic mix', () => {
    const mix = [CHROME, EDGE, FIREFOX, SAFARI, IE11_WIN7, 'curl/8.4.0', 'Microsoft BITS/7.8', 'Microsoft-CryptoAPI/10.0', 'Windows-Update-Agent/10.0.10011.16384 Client-Protocol/2.50', 'python-requests/2.31.0'];
    for (let i = 0; i < 2000; i++) catalogue.classify(mix[i % mix.length]);
    const perCall: number[] = [];
    const batch = 1000;
    for (let round = 0; round < 200; round++) {
      const t0 = performance.now();
      for (let i = 0; i < batch; i++) catalogue.classify(mix[i % mix.length]);
      perCall.push(((performance.now() - t0) * 1000) / batch);
    }
    perCall.sort((a, b) => a - b);
    const median = perCall[perCall.length >> 1] ?? Infinity;
    expect(median).toBeLessThan(2);
  });
});

describe('malformed catalogues give positioned errors', () => {
  it('an unknown family, with a did-you-mean hint, and a family the code reserves', () => {
    const errors = compileErrors('version: 1\nfamilies:\n  - family: powershel\n    contains: [x]\n    source: s\n  - family: empty\n    equals: [y]\n    source: s\n');
    expect(errors[0]).toMatch(/^ua\.yaml:3:13: unknown family "powershel" \(did you mean "powershell"\?\)/);
    expect(errors[1]).toMatch(/^ua\.yaml:6:13: unknown family "empty"/);
  });

  it('bad patterns: a wildcard, an empty list, no positive matcher, a control character', () => {
    const text = [
      'version: 1',
      'families:',
      '  - family: curl',
      "    starts_with: ['curl/*']",
      '    source: s',
      '  - family: go',
      '    contains: []',
      '    source: s',
      '  - family: java',
      '    except_contains: [x]',
      '    source: s',
      '  - family: node',
      '    equals: ["no\\u0007de"]',
      '    source: s',
    ].join('\n');
    expect(compileErrors(text)).toEqual([
      'ua.yaml:4:19: families[0].starts_with: "curl/*" has a *; patterns are literal strings (use starts_with, contains or ends_with instead of a wildcard)',
      'ua.yaml:7:15: families[1].contains is an empty list; leave the key out instead',
      'ua.yaml:9:5: families[2] needs at least one of equals, starts_with, contains, ends_with',
      'ua.yaml:13:14: families[3].equals: "no\u0007de" has a control character',
    ]);
  });

  it('missing sources and labels, unknown keys, bad fits', () => {
    const text = [
      'version: 1',
      'families:',
      '  - family: curl',
      '    startswith: [curl/]',
      'known_c2:',
      '  - equals: [x]',
      '    source: s',
      'fits:',
      '  curl:',
      '    categories: [lolbins]',
      '    unknown_process: maybe',
      '  curly: {}',
    ].join('\n');
    const errors = compileErrors(text);
    expect(errors).toContain('ua.yaml:4:5: unknown key "startswith" in families[0] (did you mean "starts_with"?)');
    expect(errors).toContain('ua.yaml:3:5: families[0] needs "source" (where the strings come from)');
    expect(errors).toContain('ua.yaml:3:5: families[0] needs at least one of equals, starts_with, contains, ends_with');
    expect(errors).toContain('ua.yaml:6:5: known_c2[0] needs "label"');
    expect(errors.some((e) => e.startsWith('ua.yaml:10:18: unknown category "lolbins" (did you mean "lolbin"?)'))).toBe(true);
    expect(errors).toContain('ua.yaml:11:22: fits.curl.unknown_process must be true, false or null, got "maybe"');
    expect(errors.some((e) => e.startsWith('ua.yaml:12:3: unknown family "curly" (did you mean "curl"?)'))).toBe(true);
  });
});

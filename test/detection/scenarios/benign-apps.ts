/**
 * Benign applications: Microsoft 365 (Word, Outlook, Teams, OneDrive), collaboration and sync clients installed
 * per user under AppData (a user-writable folder is not malice by itself), security and monitoring agents,
 * remote-access clients, vendor updaters on odd ports, and the admin who fetches from the organisation's own
 * update server with PowerShell.
 */
import { winHeaders } from '../shapes.js';
import type { Scenario } from '../types.js';
import { every, EXPLORER, home, POWERSHELL, SYS32, SYSTEM } from './kit.js';

const M365 = 'Microsoft Learn "Microsoft 365 URLs and IP address ranges"';
const OFFICE = 'C:\\Program Files\\Microsoft Office\\root\\Office16';
const SERVICES = `${SYS32}\\services.exe`;

/** The organisation's own update server: an external name under its own domain, used fleet-wide. */
export const ORG_UPDATE_SERVER = 'updates.contoso.com';

export const benignAppScenarios: readonly Scenario[] = [
  {
    id: 'benign-word-office-services',
    label: 'benign',
    cls: 'office-365',
    title: 'WINWORD.EXE: licensing, roaming settings, feature config (*.office.com, *.officeapps.live.com)',
    sources: [M365 + ' (officeclient.microsoft.com, *.officeapps.live.com, ecs.office.com)'],
    placement: { fleet: 4 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc({ image: `${OFFICE}\\WINWORD.EXE`, commandLine: `"${OFFICE}\\WINWORD.EXE" /n "${home(host)}\\Documents\\Q3 plan.docx"`, parentImage: EXPLORER }, host);
        for (const name of ['ecs.office.com', 'officeclient.microsoft.com', 'roaming.officeapps.live.com', 'nexusrules.officeapps.live.com']) {
          await p.tls({ connect: `${name}:443`, hello: 'schannel-alpn', upload: [ctx.rng.int(800, 2500)] });
        }
      }
    },
  },
  {
    id: 'benign-outlook-exchange-online',
    label: 'benign',
    cls: 'office-365',
    title: 'OUTLOOK.EXE: autodiscover, then MAPI/HTTP requests to outlook.office365.com every ~2 s',
    sources: [M365 + ' (outlook.office365.com, autodiscover-s.outlook.com)', 'Microsoft Learn "MAPI over HTTP" (NotificationWait long polls)'],
    long: true,
    async play(ctx) {
      const p = ctx.proc({ image: `${OFFICE}\\OUTLOOK.EXE`, parentImage: EXPLORER });
      await p.tls({ connect: 'autodiscover-s.outlook.com:443', hello: 'schannel-alpn', upload: [1200] });
      await every(ctx, 6, 2000, 0.3, () => p.tls({ connect: 'outlook.office365.com:443', hello: 'schannel-alpn', upload: [ctx.rng.int(900, 3000)], server: { perChunkReply: ctx.rng.int(400, 9000) } }));
    },
  },
  {
    id: 'benign-teams-presence-heartbeat',
    label: 'benign',
    cls: 'benign-beacon',
    title: 'Classic Teams (per-user install in %LOCALAPPDATA%) presence heartbeat, 5 hosts, one every ~2 s (real: ~30 s)',
    sources: [M365 + ' (*.teams.microsoft.com)', 'Classic Teams installs per user under %LOCALAPPDATA%\\Microsoft\\Teams\\current (Microsoft Learn "Install Microsoft Teams using Microsoft Endpoint Configuration Manager")', 'Period compressed to the C2 beacons\' 1–2 s so a beacon detector sees as many samples as for C2'],
    placement: { fleet: 5 },
    long: true,
    async play(ctx) {
      await Promise.all(ctx.hosts.map(async (host) => {
        const p = ctx.proc({ image: `${home(host)}\\AppData\\Local\\Microsoft\\Teams\\current\\Teams.exe`, commandLine: `"${home(host)}\\AppData\\Local\\Microsoft\\Teams\\current\\Teams.exe" --system-initiated`, parentImage: `${home(host)}\\AppData\\Local\\Microsoft\\Teams\\Update.exe` }, host);
        await every(ctx, 8, 2000, 0.05, () => p.tls({ connect: 'presence.teams.microsoft.com:443', hello: 'chromium', upload: [420], server: { perChunkReply: 160 } }));
      }));
    },
  },
  {
    id: 'benign-new-teams-trouter',
    label: 'benign',
    cls: 'office-365',
    title: 'New Teams (WindowsApps package) opens its trouter websocket and loads teams.microsoft.com',
    sources: [M365 + ' (*.teams.microsoft.com, *.trouter.teams.microsoft.com)'],
    placement: { fleet: 2 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const image = 'C:\\Program Files\\WindowsApps\\MSTeams_24124.2315.2911.3357_x64__8wekyb3d8bbwe\\ms-teams.exe';
        const p = ctx.proc({ image, parentImage: EXPLORER }, host);
        await p.tls({ connect: 'teams.microsoft.com:443', hello: 'edge', upload: [1500, 900], server: { perChunkReply: 40_000 } });
        await p.tls({ connect: `go-eu.trouter.teams.microsoft.com:443`, hello: 'edge', upload: [700, 100, 100], holdMs: 1200 });
      }
    },
  },
  {
    id: 'benign-onedrive-sync-upload',
    label: 'benign',
    cls: 'office-365',
    title: 'OneDrive.exe (per-user, %LOCALAPPDATA%) uploads a zip in 64 KB chunks to <tenant>-my.sharepoint.com',
    sources: [M365 + ' (<tenant>-my.sharepoint.com, *.live.net)', 'OneDrive per-user install path %LOCALAPPDATA%\\Microsoft\\OneDrive'],
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive.exe`, commandLine: '/background', parentImage: EXPLORER });
      await p.tls({ connect: 'skyapi.live.net:443', hello: 'schannel-alpn', upload: [800] });
      await p.tls({ connect: 'contoso-my.sharepoint.com:443', hello: 'schannel-alpn', upload: [65_536, 65_536, 65_536, 30_000], server: { perChunkReply: 300 } });
    },
  },
  {
    id: 'benign-zoom-meeting',
    label: 'benign',
    cls: 'collaboration',
    title: 'Zoom.exe (per-user, %APPDATA%\\Zoom\\bin) joins a meeting: web, then a long media session over 443',
    sources: ['Zoom support "Zoom network firewall or proxy server settings" (zoom.us, 443 fallback through proxies)'],
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Roaming\\Zoom\\bin\\Zoom.exe`, parentImage: EXPLORER });
      await p.tls({ connect: 'zoom.us:443', hello: 'schannel-alpn', upload: [1200] });
      await p.tls({ connect: 'us05web.zoom.us:443', hello: 'schannel-alpn', upload: [900] });
      await p.tls({ connect: 'zoomfrn93mmr.zoom.us:443', hello: 'schannel', upload: [20_000, 20_000, 20_000, 20_000], server: { perChunkReply: 16_000 }, holdMs: 800 });
    },
  },
  {
    id: 'benign-slack-websocket',
    label: 'benign',
    cls: 'collaboration',
    title: 'Slack desktop (per-user %LOCALAPPDATA%\\slack) loads app.slack.com and holds wss-primary.slack.com',
    sources: ['FoxIO-LLC/ja4 pcap/latest.pcapng (app.slack.com, Slack/Electron ClientHello)', 'Slack help "Slack network requirements"'],
    placement: { fleet: 2 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc({ image: `${home(host)}\\AppData\\Local\\slack\\app-4.38.125\\slack.exe`, parentImage: `${home(host)}\\AppData\\Local\\slack\\slack.exe` }, host);
        await p.tls({ connect: 'app.slack.com:443', hello: 'electron', upload: [1500], server: { perChunkReply: 30_000 } });
        await p.tls({ connect: 'wss-primary.slack.com:443', hello: 'electron', upload: [600, 80, 80], holdMs: 1200 });
      }
    },
  },
  {
    id: 'benign-dropbox-sync',
    label: 'benign',
    cls: 'collaboration',
    title: 'Dropbox client syncs: client.dropbox.com, api/content.dropboxapi.com uploads',
    sources: ['Dropbox help "Dropbox firewall / proxy" domains', 'SigmaHQ 25eabf56-22f0-4915-a1ed-056b8dae0a68 "Suspicious Dropbox API Usage" (DRL-1.1): the Dropbox client is its filter'],
    async play(ctx) {
      const p = ctx.proc({ image: 'C:\\Program Files (x86)\\Dropbox\\Client\\Dropbox.exe', parentImage: EXPLORER });
      await p.tls({ connect: 'client.dropbox.com:443', hello: 'schannel-alpn', upload: [900] });
      await p.tls({ connect: 'api.dropboxapi.com:443', hello: 'schannel-alpn', upload: [1400] });
      await p.tls({ connect: 'content.dropboxapi.com:443', hello: 'schannel-alpn', upload: [40_000, 40_000], server: { perChunkReply: 200 } });
    },
  },
  {
    id: 'benign-crowdstrike-sensor-cloud',
    label: 'benign',
    cls: 'security-agent',
    title: 'CrowdStrike Falcon sensor keeps its cloud channel to ts01-b.cloudsink.net (3 hosts)',
    sources: ['CrowdStrike Falcon documentation: sensor cloud endpoints (ts01-*.cloudsink.net, 443, proxy-aware)'],
    placement: { fleet: 3 },
    async play(ctx) {
      await Promise.all(ctx.hosts.map(async (host) => {
        const p = ctx.proc({ image: 'C:\\Program Files\\CrowdStrike\\CSFalconService.exe', parentImage: SERVICES, user: SYSTEM }, host);
        await p.tls({ connect: 'ts01-b.cloudsink.net:443', hello: 'openssl', upload: [1800, 300, 300, 5000], server: { perChunkReply: 200 }, holdMs: 800 });
      }));
    },
  },
  {
    id: 'benign-splunk-forwarder-9997',
    label: 'benign',
    cls: 'odd-port-updater',
    title: 'Splunk Universal Forwarder (OpenSSL) sends TLS on 9997 to Splunk Cloud inputs',
    sources: ['Splunk docs "Configure forwarders to use a different port" / Splunk Cloud Platform forwarder port 9997'],
    placement: { fleet: 2 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc({ image: 'C:\\Program Files\\SplunkUniversalForwarder\\bin\\splunkd.exe', commandLine: '"C:\\Program Files\\SplunkUniversalForwarder\\bin\\splunkd.exe" service', parentImage: SERVICES, user: SYSTEM }, host);
        await p.tls({ connect: 'inputs1.contoso.splunkcloud.com:9997', hello: 'openssl', upload: [12_000, 8000, 15_000], server: { perChunkReply: 40 } });
      }
    },
  },
  {
    id: 'benign-spotify-ap-4070',
    label: 'benign',
    cls: 'odd-port-updater',
    title: 'Spotify (per-user %APPDATA%\\Spotify) speaks its own non-TLS access-point protocol on 4070',
    sources: ['Spotify support: the desktop client uses TCP 4070 (falls back to 443/80)', 'librespot-org/librespot docs (AP protocol: ClientHello protobuf, Shannon cipher — not TLS)'],
    async play(ctx) {
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Roaming\\Spotify\\Spotify.exe`, parentImage: EXPLORER });
      const hello = Buffer.concat([Buffer.from([0x00, 0x04, 0x00, 0x00, 0x01, 0x0c]), ctx.rng.bytes(262)]);
      await p.raw({ connect: 'ap-gew4.spotify.com:4070', send: [hello, ctx.rng.bytes(90), ctx.rng.bytes(400)], server: { perChunkReply: 500 } });
      await p.tls({ connect: 'spclient.wg.spotify.com:443', hello: 'chromium', upload: [900], server: { perChunkReply: 20_000 } });
    },
  },
  {
    id: 'benign-vendor-updater-8443',
    label: 'benign',
    cls: 'odd-port-updater',
    title: 'A vendor agent in Program Files checks its update service on 8443 (3 hosts)',
    sources: ['Common vendor practice: update/management consoles on 8443 (SigmaHQ 4b89abaa and 6d8c3d20 exclude C:\\Program Files\\ images for this reason)'],
    placement: { fleet: 3 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc({ image: 'C:\\Program Files\\Acme\\AcmeAgent\\AcmeUpdate.exe', commandLine: '"C:\\Program Files\\Acme\\AcmeAgent\\AcmeUpdate.exe" /check', parentImage: SERVICES, user: SYSTEM }, host);
        await p.tls({ connect: 'updates.acme-software.com:8443', hello: 'schannel', upload: [700] });
      }
    },
  },
  {
    id: 'benign-vendor-updater-8080-http',
    label: 'benign',
    cls: 'odd-port-updater',
    title: 'The same vendor agent asks a plain-HTTP version endpoint on 8080 (query: product, version, os)',
    sources: ['SigmaHQ 6d8c3d20-a5e1-494f-8412-4571d716cf5c "Communication To Uncommon Destination Ports" (DRL-1.1): filter_optional_sys_directories'],
    placement: { fleet: 2 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc({ image: 'C:\\Program Files\\Acme\\AcmeAgent\\AcmeUpdate.exe', parentImage: SERVICES, user: SYSTEM }, host);
        await p.http({ url: 'http://updates.acme-software.com:8080/api/v2/check?product=agent&version=4.2.1&os=win64&channel=stable', headers: winHeaders('AcmeUpdate/4.2.1'), response: { type: 'application/json', bytes: 300 } });
      }
    },
  },
  {
    id: 'benign-zabbix-agent-10051',
    label: 'benign',
    cls: 'odd-port-updater',
    title: 'Zabbix agent 2 sends active checks (ZBXD header + JSON) to its server on 10051',
    sources: ['Zabbix manual "Zabbix protocols: header" ("ZBXD", flags, data length), default trapper port 10051'],
    async play(ctx) {
      const p = ctx.proc({ image: 'C:\\Program Files\\Zabbix Agent 2\\zabbix_agent2.exe', commandLine: '"C:\\Program Files\\Zabbix Agent 2\\zabbix_agent2.exe" -c "C:\\Program Files\\Zabbix Agent 2\\zabbix_agent2.conf"', parentImage: SERVICES, user: SYSTEM });
      const json = JSON.stringify({ request: 'agent data', session: 'a2f5e8c41b7d4e0f9c3b6a1d8e2f7c40', data: [{ host: ctx.host.fqdn, key: 'system.cpu.load[all,avg1]', value: '0.120000', clock: Math.floor(Date.now() / 1000), ns: 123456789 }] });
      const frame = Buffer.alloc(13 + json.length);
      frame.write('ZBXD', 0, 'latin1');
      frame.writeUInt8(1, 4);
      frame.writeUInt32LE(json.length, 5);
      frame.write(json, 13, 'latin1');
      await p.raw({ connect: 'zabbix.contoso-monitoring.net:10051', send: [frame], server: { perChunkReply: 60 } });
    },
  },
  {
    id: 'benign-rdp-gateway-session',
    label: 'benign',
    cls: 'remote-access',
    title: 'mstsc.exe through the company RD Gateway over 443 (long session)',
    sources: ['Microsoft Learn "Remote Desktop Gateway" (HTTPS transport, 443)'],
    async play(ctx) {
      const p = ctx.proc({ image: `${SYS32}\\mstsc.exe`, commandLine: '"C:\\Windows\\system32\\mstsc.exe" "C:\\Users\\Public\\Desktop\\Jump host.rdp"', parentImage: EXPLORER });
      await p.tls({ connect: 'rdgw.contoso.com:443', hello: 'schannel', upload: [2000, 600, 600, 600], server: { perChunkReply: 6000 }, holdMs: 1200 });
    },
  },
  {
    id: 'benign-citrix-workspace',
    label: 'benign',
    cls: 'remote-access',
    title: 'Citrix Workspace wfica32.exe to the company gateway (443, long-lived)',
    sources: ['Citrix docs "Communication ports used by Citrix technologies" (ICA over TLS via Gateway, 443)'],
    async play(ctx) {
      const p = ctx.proc({ image: 'C:\\Program Files (x86)\\Citrix\\ICA Client\\wfica32.exe', parentImage: 'C:\\Program Files (x86)\\Citrix\\ICA Client\\SelfServicePlugin\\SelfService.exe' });
      await p.tls({ connect: 'citrix.contoso-apps.com:443', hello: 'schannel', upload: [1800, 400, 400], server: { perChunkReply: 9000 }, holdMs: 1000 });
    },
  },
  {
    id: 'benign-jenkins-inbound-agent-50000',
    label: 'benign',
    cls: 'odd-port-updater',
    title: 'Jenkins inbound agent (java -jar agent.jar) connects to the controller\'s TCP agent port 50000',
    sources: ['Jenkins docs "Managing Nodes: inbound agents" (TCP agent listener, default 50000; JNLP4-connect protocol)'],
    async play(ctx) {
      const java = 'C:\\Program Files\\Eclipse Adoptium\\jdk-17.0.10.7-hotspot\\bin\\java.exe';
      const p = ctx.proc({ image: java, commandLine: `"${java}" -jar C:\\jenkins\\agent.jar -url https://ci.contoso-dev.com/ -secret @C:\\jenkins\\secret -name win-build-07 -workDir C:\\jenkins`, parentImage: SERVICES, user: SYSTEM });
      await p.tls({ connect: 'ci.contoso-dev.com:443', hello: 'openssl', upload: [900] });
      const proto = Buffer.from('Protocol:JNLP4-connect', 'latin1');
      const head = Buffer.alloc(2);
      head.writeUInt16BE(proto.length, 0);
      await p.raw({ connect: 'ci.contoso-dev.com:50000', send: [Buffer.concat([head, proto]), ctx.rng.bytes(600), ctx.rng.bytes(200)], server: { perChunkReply: 300 }, holdMs: 800 });
    },
  },
  {
    id: 'benign-contoso-agent-fleet',
    label: 'benign',
    cls: 'org-infrastructure',
    title: 'The organisation\'s own agent (Program Files) checks updates.contoso.com on 6 hosts',
    sources: ['Corpus design: makes the organisation\'s update server a fleet-common destination'],
    placement: { fleet: 6 },
    async play(ctx) {
      await Promise.all(ctx.hosts.map(async (host) => {
        const p = ctx.proc({ image: 'C:\\Program Files\\Contoso\\Agent\\ContosoAgent.exe', parentImage: SERVICES, user: SYSTEM }, host);
        await p.tls({ connect: `${ORG_UPDATE_SERVER}:443`, hello: 'schannel', upload: [800] });
      }));
    },
  },
  {
    id: 'benign-admin-powershell-org-update-server',
    label: 'benign',
    cls: 'org-infrastructure',
    title: 'An admin runs Invoke-WebRequest against the organisation\'s update server on 443 (must not be flagged)',
    sources: ['Corpus brief: admin PowerShell to the organisation\'s update server', 'SigmaHQ 1f21ec3f-810d-4b0e-8045-322202e22b4b "Network Connection Initiated By PowerShell Process" (DRL-1.1) lists admin scripts as its false positive'],
    async play(ctx) {
      const p = ctx.proc({
        image: POWERSHELL,
        commandLine: `"${POWERSHELL}" -NoProfile -Command "Invoke-WebRequest -Uri https://${ORG_UPDATE_SERVER}/scripts/Deploy-Agent.ps1 -OutFile $env:TEMP\\Deploy-Agent.ps1"`,
        parentImage: EXPLORER,
      });
      await p.tls({ connect: `${ORG_UPDATE_SERVER}:443`, hello: 'schannel', upload: [600], server: { perChunkReply: 14_000 } });
      await ctx.sleep(ctx.rng.int(800, 2000));
      await p.tls({ connect: `${ORG_UPDATE_SERVER}:443`, hello: 'schannel', upload: [600], server: { perChunkReply: 90_000 } });
    },
  },
  {
    id: 'benign-adobe-arm-update',
    label: 'benign',
    cls: 'odd-port-updater',
    title: 'Adobe Acrobat updater (AdobeARM.exe) fetches its manifest and a patch',
    sources: ['Adobe Enterprise Toolkit "Endpoints for Acrobat and Reader updates" (armmf.adobe.com, ardownload*.adobe.com)'],
    async play(ctx) {
      const p = ctx.proc({ image: 'C:\\Program Files (x86)\\Common Files\\Adobe\\ARM\\1.0\\AdobeARM.exe', commandLine: '"C:\\Program Files (x86)\\Common Files\\Adobe\\ARM\\1.0\\AdobeARM.exe" /PRODUCT:Reader /VERSION:24.0 /MODE:3', parentImage: 'C:\\Program Files\\Adobe\\Acrobat DC\\Acrobat\\Acrobat.exe' });
      await p.http({ url: 'http://armmf.adobe.com/arm-manifests/win/ArmManifest3.msi', headers: winHeaders('Adobe Manager'), response: { type: 'application/octet-stream', bytes: 40_000 } });
      await p.tls({ connect: 'ardownload3.adobe.com:443', hello: 'schannel', upload: [700], server: { perChunkReply: 120_000 } });
    },
  },
];

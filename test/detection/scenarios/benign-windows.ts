/**
 * Benign Windows platform traffic: Windows Update, Delivery Optimization, certificate revocation (OCSP/CRL/CTL),
 * Defender, SmartScreen, telemetry, push notifications, Entra ID tokens, Edge updates, SCCM, Intune.
 * Endpoint names follow Microsoft Learn "Manage connection endpoints for Windows 10/11 Enterprise" and the
 * Windows Update / Delivery Optimization endpoint lists; several of these flows are plain HTTP by design
 * (content is signed; the channel is not trusted).
 */
import { deliveryOptimizationQuery, guid, hex, ocspGetPath, UA_BITS, UA_CRYPTOAPI, UA_DELIVERY_OPTIMIZATION, winHeaders } from '../shapes.js';
import type { Scenario } from '../types.js';
import { every, LOCAL_SERVICE, NETWORK_SERVICE, SVCHOST, SYS32, SYSTEM } from './kit.js';

const SERVICES = `${SYS32}\\services.exe`;
const ENDPOINTS_DOC = 'Microsoft Learn "Manage connection endpoints for Windows 11 Enterprise"';
const svchost = (group: string, service: string, user: string): { image: string; commandLine: string; parentImage: string; user: string } => ({
  image: SVCHOST,
  commandLine: `C:\\Windows\\system32\\svchost.exe -k ${group} -p -s ${service}`,
  parentImage: SERVICES,
  user,
});

export const benignWindowsScenarios: readonly Scenario[] = [
  {
    id: 'benign-windows-update-download',
    label: 'benign',
    cls: 'windows-platform',
    title: 'wuauserv: TLS to the update service, then BITS ranged GETs of a KB .psf (SHA-1 in the file name) over HTTP',
    sources: [ENDPOINTS_DOC + ' (*.delivery.mp.microsoft.com, download.windowsupdate.com over HTTP)', 'Windows Update content names (windows10.0-kb<n>-x64_<sha1>.psf)'],
    placement: { fleet: 3 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const wu = ctx.proc(svchost('netsvcs', 'wuauserv', SYSTEM), host);
        await wu.tls({ connect: 'fe3cr.delivery.mp.microsoft.com:443', hello: 'schannel', upload: [2200, 1800], server: { perChunkReply: 12_000 } });
        const file = `/c/msdownload/update/software/secu/2024/05/windows10.0-kb5037768-x64_${hex(ctx.rng, 40)}.psf`;
        for (const range of ['0-1048575', '1048576-2097151']) {
          await wu.http({ url: `http://download.windowsupdate.com${file}`, headers: winHeaders(UA_BITS, [['Range', `bytes=${range}`]]), response: { status: 206, type: 'application/octet-stream', bytes: 200_000 } });
        }
      }
    },
  },
  {
    id: 'benign-wuauclt-update-deploy',
    label: 'benign',
    cls: 'windows-platform',
    title: 'wuauclt.exe /UpdateDeploymentProvider UpdateDeploy.dll /RunHandlerComServer talks to *.update.microsoft.com',
    sources: ['SigmaHQ c649a6c7-cd8c-4a78-9c04-000fc76df954 "Potentially Suspicious Wuauclt Network Connection" (DRL-1.1): the UUS UpdateDeploy.dll command line is its benign filter', ENDPOINTS_DOC],
    async play(ctx) {
      const p = ctx.proc({ image: `${SYS32}\\wuauclt.exe`, commandLine: `"C:\\Windows\\system32\\wuauclt.exe" /UpdateDeploymentProvider C:\\Windows\\UUS\\amd64\\UpdateDeploy.dll /ClassId ${guid(ctx.rng)} /RunHandlerComServer`, parentImage: SVCHOST, user: SYSTEM });
      await p.tls({ connect: 'sls.update.microsoft.com:443', hello: 'schannel', upload: [900] });
      await p.tls({ connect: 'fe2cr.update.microsoft.com:443', hello: 'schannel', upload: [3000, 2000], server: { perChunkReply: 20_000 } });
    },
  },
  {
    id: 'benign-cryptsvc-ctl-downloads',
    label: 'benign',
    cls: 'windows-platform',
    title: 'CryptSvc fetches authrootstl.cab?<hex>, disallowedcertstl.cab?<hex>, pinrulesstl.cab?<hex> over HTTP',
    sources: [ENDPOINTS_DOC + ' (ctldl.windowsupdate.com, "Automatic Root Certificates Update")', 'Microsoft Learn "Configure Trusted Roots and Disallowed Certificates"'],
    placement: { fleet: 4 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc(svchost('NetworkService', 'CryptSvc', NETWORK_SERVICE), host);
        for (const cab of ['authrootstl.cab', 'disallowedcertstl.cab', 'pinrulesstl.cab']) {
          await p.http({ url: `http://ctldl.windowsupdate.com/msdownload/update/v3/static/trustedr/en/${cab}?${hex(ctx.rng, 16)}`, headers: winHeaders(UA_CRYPTOAPI), response: { type: 'application/vnd.ms-cab-compressed', bytes: 9000 } });
        }
      }
    },
  },
  {
    id: 'benign-delivery-optimization',
    label: 'benign',
    cls: 'windows-platform',
    title: 'DoSvc: geo/kv lookups over TLS, then ranged GETs of /filestreamingservice/files/<guid>?P1=…&P4=<base64>',
    sources: ['Microsoft Learn "Delivery Optimization and Microsoft Connected Cache content type endpoints" (*.dl.delivery.mp.microsoft.com over HTTP)', 'UA "Microsoft-Delivery-Optimization/10.0"'],
    placement: { fleet: 3 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc(svchost('NetworkService', 'DoSvc', NETWORK_SERVICE), host);
        await p.tls({ connect: 'geo.prod.do.dsp.mp.microsoft.com:443', hello: 'schannel', upload: [700] });
        await p.tls({ connect: 'kv601.prod.do.dsp.mp.microsoft.com:443', hello: 'schannel', upload: [900] });
        const url = `http://tlu.dl.delivery.mp.microsoft.com/filestreamingservice/files/${guid(ctx.rng)}?${deliveryOptimizationQuery(ctx.rng)}`;
        for (let i = 0; i < 3; i++) {
          await p.http({ url, headers: winHeaders(UA_DELIVERY_OPTIMIZATION, [['Range', `bytes=${i * 1_048_576}-${(i + 1) * 1_048_576 - 1}`], ['MS-CV', `${b64cv(ctx.rng.int(0, 1e9))}.${i}`]]), response: { status: 206, type: 'application/octet-stream', bytes: 150_000 } });
        }
      }
    },
  },
  {
    id: 'benign-ocsp-crl-cryptoapi',
    label: 'benign',
    cls: 'windows-platform',
    title: 'lsass/CryptSvc revocation checks: GET /MFEwTz… OCSP, CRLs, "Microsoft-CryptoAPI/10.0"',
    sources: ['RFC 6960 Appendix A.1 and RFC 5019 §5 (OCSP GET with base64 DER in the path)', 'Microsoft Learn "Certificate revocation checking" (CryptoAPI URL retrieval)'],
    placement: { fleet: 4 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc({ image: `${SYS32}\\lsass.exe`, commandLine: 'C:\\Windows\\system32\\lsass.exe', parentImage: `${SYS32}\\wininit.exe`, user: SYSTEM }, host);
        await p.http({ url: `http://ocsp.digicert.com${ocspGetPath(ctx.rng)}`, headers: winHeaders(UA_CRYPTOAPI), response: { type: 'application/ocsp-response', bytes: 471 } });
        await p.http({ url: `http://oneocsp.microsoft.com/ocsp${ocspGetPath(ctx.rng)}`, headers: winHeaders(UA_CRYPTOAPI), response: { type: 'application/ocsp-response', bytes: 1800 } });
        const svc = ctx.proc(svchost('NetworkService', 'CryptSvc', NETWORK_SERVICE), host);
        await svc.http({ url: 'http://crl3.digicert.com/DigiCertGlobalRootG2.crl', headers: winHeaders(UA_CRYPTOAPI), response: { type: 'application/pkix-crl', bytes: 1200 } });
        await svc.http({ url: 'http://www.microsoft.com/pkiops/crl/Microsoft%20Azure%20RSA%20TLS%20Issuing%20CA%2004.crl', headers: winHeaders(UA_CRYPTOAPI), response: { type: 'application/pkix-crl', bytes: 60_000 } });
      }
    },
  },
  {
    id: 'benign-defender-cloud-and-signatures',
    label: 'benign',
    cls: 'windows-platform',
    title: 'MsMpEng.exe (ProgramData platform path) to wdcp.microsoft.com and a signature download',
    sources: ['Microsoft Learn "Configure device proxy and Internet connectivity settings" / "Microsoft Defender Antivirus cloud protection URLs"', 'Defender platform under C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\<version>'],
    placement: { fleet: 4 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc({ image: 'C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24050.7-0\\MsMpEng.exe', parentImage: SERVICES, user: SYSTEM }, host);
        await p.tls({ connect: 'wdcp.microsoft.com:443', hello: 'schannel', upload: [3000, 900] });
        await p.tls({ connect: 'definitionupdates.microsoft.com:443', hello: 'schannel', upload: [600], server: { perChunkReply: 60_000 } });
      }
    },
  },
  {
    id: 'benign-smartscreen-edge',
    label: 'benign',
    cls: 'windows-platform',
    title: 'Edge SmartScreen lookups (ping-edge / data-edge.smartscreen.microsoft.com)',
    sources: ['FoxIO-LLC/ja4 pcap/latest.pcapng (these exact names with an Edge ClientHello)'],
    placement: { fleet: 3 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc({ image: 'C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe', parentImage: 'C:\\Windows\\explorer.exe' }, host);
        await p.tls({ connect: 'ping-edge.smartscreen.microsoft.com:443', hello: 'edge', upload: [500] });
        await p.tls({ connect: 'data-edge.smartscreen.microsoft.com:443', hello: 'edge', upload: [1200] });
      }
    },
  },
  {
    id: 'benign-diagtrack-telemetry',
    label: 'benign',
    cls: 'windows-platform',
    title: 'DiagTrack (utcsvc) uploads compressed event batches to self.events / v10.events.data.microsoft.com',
    sources: ['FoxIO-LLC/ja4 pcap/ssh2.pcapng (self.events.data.microsoft.com, SChannel ClientHello)', ENDPOINTS_DOC + ' (Connected User Experiences and Telemetry)'],
    placement: { fleet: 3 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc(svchost('utcsvc', 'DiagTrack', SYSTEM), host);
        await p.tls({ connect: 'self.events.data.microsoft.com:443', hello: 'schannel', upload: [ctx.rng.int(8000, 20_000)] });
        await p.tls({ connect: 'v10.events.data.microsoft.com:443', hello: 'schannel', upload: [ctx.rng.int(6000, 16_000), ctx.rng.int(3000, 9000)] });
      }
    },
  },
  {
    id: 'benign-wns-push-channel',
    label: 'benign',
    cls: 'windows-platform',
    title: 'WpnService keeps a long-lived push channel to client.wns.windows.com',
    sources: ['Microsoft Learn "Enterprise firewall and proxy configurations to support WNS traffic" (*.wns.windows.com, 443)'],
    placement: { fleet: 2 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc(svchost('netsvcs', 'WpnService', SYSTEM), host);
        await p.tls({ connect: 'client.wns.windows.com:443', hello: 'schannel', upload: [400, 120, 120], holdMs: 1500 });
      }
    },
  },
  {
    id: 'benign-aad-broker-token-refresh',
    label: 'benign',
    cls: 'windows-platform',
    title: 'Microsoft.AAD.BrokerPlugin refreshes Entra ID tokens (login.microsoftonline.com)',
    sources: ['Microsoft Learn "Microsoft 365 URLs and IP address ranges" (login.microsoftonline.com, ID 56)'],
    placement: { fleet: 3 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc({ image: 'C:\\Windows\\SystemApps\\Microsoft.AAD.BrokerPlugin_cw5n1h2txyewy\\Microsoft.AAD.BrokerPlugin.exe', parentImage: `${SYS32}\\svchost.exe` }, host);
        await p.tls({ connect: 'login.microsoftonline.com:443', hello: 'schannel-alpn', upload: [2400, 1200] });
      }
    },
  },
  {
    id: 'benign-edge-update-delivery',
    label: 'benign',
    cls: 'windows-platform',
    title: 'MicrosoftEdgeUpdate checks msedge.api.cdp.microsoft.com, downloads from msedge.f.tlu.dl.delivery.mp.microsoft.com',
    sources: ['Microsoft Learn "Microsoft Edge enterprise: allow list for update endpoints"', 'Delivery Optimization content URLs (P1–P4 query)'],
    async play(ctx) {
      const p = ctx.proc({ image: 'C:\\Program Files (x86)\\Microsoft\\EdgeUpdate\\MicrosoftEdgeUpdate.exe', commandLine: '"C:\\Program Files (x86)\\Microsoft\\EdgeUpdate\\MicrosoftEdgeUpdate.exe" /ua /installsource scheduler', parentImage: `${SYS32}\\svchost.exe`, user: SYSTEM });
      await p.tls({ connect: 'msedge.api.cdp.microsoft.com:443', hello: 'schannel', upload: [1500] });
      await p.http({ url: `http://msedge.f.tlu.dl.delivery.mp.microsoft.com/filestreamingservice/files/${guid(ctx.rng)}?${deliveryOptimizationQuery(ctx.rng)}`, headers: winHeaders(UA_BITS, [['Range', 'bytes=0-2097151']]), response: { status: 206, type: 'application/octet-stream', bytes: 300_000 } });
    },
  },
  {
    id: 'benign-sccm-mp-policy-poll',
    label: 'benign',
    cls: 'management-agent',
    title: 'CcmExec polls its management point over HTTP: MPLIST, key info, compressed policy POSTs every ~1.5 s',
    sources: ['Microsoft Learn "Ports used in Configuration Manager" (client → management point, HTTP 80 / HTTPS 443)', 'Configuration Manager management point interface (/SMS_MP/.sms_aut?MPLIST, /ccm_system/request); CCM_POST is refused by the HTTP core, so POST stands in'],
    placement: { fleet: 3 },
    long: true,
    async play(ctx) {
      await Promise.all(ctx.hosts.map(async (host) => {
        const p = ctx.proc({ image: 'C:\\Windows\\CCM\\CcmExec.exe', commandLine: 'C:\\Windows\\CCM\\CcmExec.exe', parentImage: SERVICES, user: SYSTEM }, host);
        await p.http({ url: 'http://sccm-mp01.contoso.com/SMS_MP/.sms_aut?MPLIST', headers: winHeaders('SMS CCM 5.0'), response: { type: 'text/xml', bytes: 900 } });
        await p.http({ url: 'http://sccm-mp01.contoso.com/SMS_MP/.sms_aut?MPKEYINFORMATIONEX', headers: winHeaders('SMS CCM 5.0'), response: { type: 'text/xml', bytes: 2400 } });
        await every(ctx, 6, 1500, 0.15, () =>
          p.http({ url: 'http://sccm-mp01.contoso.com/ccm_system/request', method: 'POST', headers: winHeaders('ccmhttp', [['Content-Type', 'multipart/mixed; boundary="aAbBcCdDv1234567890VxXyYzZ"']]), body: ctx.rng.bytes(ctx.rng.int(2000, 6000)), response: { type: 'multipart/mixed', bytes: 3000 } }),
        );
      }));
    },
  },
  {
    id: 'benign-sccm-cloud-management-gateway',
    label: 'benign',
    cls: 'management-agent',
    title: 'CcmExec reaches the Configuration Manager cloud management gateway over HTTPS',
    sources: ['Microsoft Learn "Overview of cloud management gateway" (<name>.<region>.cloudapp.azure.com, 443)'],
    placement: { fleet: 2 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc({ image: 'C:\\Windows\\CCM\\CcmExec.exe', parentImage: SERVICES, user: SYSTEM }, host);
        for (let i = 0; i < 2; i++) await p.tls({ connect: 'contosocmg.westeurope.cloudapp.azure.com:443', hello: 'schannel', upload: [ctx.rng.int(2000, 5000)] });
      }
    },
  },
  {
    id: 'benign-intune-management-extension',
    label: 'benign',
    cls: 'management-agent',
    title: 'Intune Management Extension checks in with *.manage.microsoft.com',
    sources: ['Microsoft Learn "Network endpoints for Microsoft Intune"'],
    placement: { fleet: 2 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc({ image: 'C:\\Program Files (x86)\\Microsoft Intune Management Extension\\Microsoft.Management.Services.IntuneWindowsAgent.exe', parentImage: SERVICES, user: SYSTEM }, host);
        await p.tls({ connect: 'euprodimedatapri.azureedge.net:443', hello: 'schannel-alpn', upload: [900] });
        await p.tls({ connect: 'fef.msuc03.manage.microsoft.com:443', hello: 'schannel-alpn', upload: [2600, 800] });
      }
    },
  },
  {
    id: 'benign-ncsi-dns-probe',
    label: 'benign',
    cls: 'windows-platform',
    title: 'NlaSvc resolves dns.msftncsi.com (NCSI DNS probe)',
    sources: ['Microsoft Learn "Network Connectivity Status Indicator" (dns.msftncsi.com → 131.107.255.255)'],
    placement: { fleet: 4 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc(svchost('LocalService', 'NlaSvc', LOCAL_SERVICE), host);
        await p.dns({ name: 'dns.msftncsi.com' });
        await p.dns({ name: 'dns.msftncsi.com', type: 'AAAA' });
      }
    },
  },
];

/** MS-CV correlation vector base (base64 of 12 bytes, 16 characters). */
function b64cv(n: number): string {
  return Buffer.from(`cv${String(n).padStart(10, '0')}`).toString('base64').slice(0, 16);
}

/**
 * Benign DNS that looks odd: random NXDOMAIN probes, search-suffix NXDOMAIN bursts, a mail gateway's TXT
 * lookups (SPF/DKIM/DMARC), hash-reputation and DNSBL lookups with long hex or reversed-IP labels, and CDN
 * names with random-looking labels.
 */
import { ALPHA } from '../rng.js';
import { hex } from '../shapes.js';
import type { Scenario } from '../types.js';
import { LOCAL_SERVICE, NETWORK_SERVICE, SVCHOST, SYS32 } from './kit.js';
import { CHROME } from './benign-web.js';

const DNSCACHE = { image: SVCHOST, commandLine: 'C:\\Windows\\system32\\svchost.exe -k NetworkService -p -s Dnscache', parentImage: `${SYS32}\\services.exe`, user: NETWORK_SERVICE };
const SENDERS = ['google.com', 'outlook.com', 'amazonses.com', 'sendgrid.net', 'mailchimp.com', 'salesforce.com', 'zendesk.com', 'atlassian.net', 'docusign.net', 'linkedin.com', 'github.com', 'dropbox.com', 'paypal.com', 'adobe.com', 'slack.com'];

export const benignDnsScenarios: readonly Scenario[] = [
  {
    id: 'benign-chrome-random-probe-nxdomain',
    label: 'benign',
    cls: 'dns-benign',
    title: 'Chrome\'s intranet-redirect detector: 3 random single-label names (7–15 letters) → NXDOMAIN, on 4 hosts',
    sources: ['Chromium chrome/browser/intranet_redirect_detector.cc (three random 7–15 letter hostnames)', 'APNIC blog / Verisign (2020) "Chromium\'s impact on root DNS traffic"'],
    placement: { fleet: 4 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc({ image: CHROME, parentImage: 'C:\\Windows\\explorer.exe' }, host);
        for (let i = 0; i < 3; i++) await p.dns({ name: ctx.rng.chars(ALPHA.lower, ctx.rng.int(7, 15)), nx: true });
        await p.dns({ name: 'www.google.com' });
        await p.dns({ name: 'clients2.google.com' });
      }
    },
  },
  {
    id: 'benign-dns-suffix-search-nxdomain',
    label: 'benign',
    cls: 'dns-benign',
    title: 'Windows DNS client appends search suffixes to short names: a burst of NXDOMAINs (wpad, intranet names)',
    sources: ['Microsoft Learn "DNS client resolution / primary DNS suffix and suffix search list"', 'RFC 1536 §6 (search-list queries)'],
    placement: { fleet: 2 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc(DNSCACHE, host);
        for (const short of ['wpad', 'printsrv', 'wiki', 'jira', 'fileshare']) {
          await p.dns({ name: `${short}.corp.contoso.com.contoso.com`, nx: true });
          await p.dns({ name: `${short}.contoso.com`, nx: true });
          await ctx.sleep(ctx.rng.int(10, 60));
        }
      }
    },
  },
  {
    id: 'benign-mail-gateway-spf-dkim-dmarc',
    label: 'benign',
    cls: 'dns-benign',
    title: 'Unmanaged mail gateway: ~45 TXT lookups (SPF, _dmarc, DKIM selectors) for 15 sender domains in seconds',
    sources: ['RFC 7208 §4.4 (SPF: TXT of the sender domain)', 'RFC 6376 §3.6.2 (DKIM: TXT at <selector>._domainkey.<domain>)', 'RFC 7489 §6.1 (DMARC: TXT at _dmarc.<domain>)'],
    placement: 'server',
    async play(ctx) {
      for (const d of SENDERS) {
        ctx.lab.txt(d, 'v=spf1 include:_spf.example.net ~all');
        ctx.lab.txt(`_dmarc.${d}`, 'v=DMARC1; p=reject; rua=mailto:dmarc@example.net');
        ctx.lab.txt(`selector1._domainkey.${d}`, `v=DKIM1; k=rsa; p=${ctx.rng.bytes(160).toString('base64')}`);
      }
      const p = ctx.proc({ image: '/usr/sbin/rspamd' });
      for (const d of SENDERS) {
        await p.dns({ name: d, type: 'TXT' });
        await p.dns({ name: `_dmarc.${d}`, type: 'TXT' });
        await p.dns({ name: `selector1._domainkey.${d}`, type: 'TXT' });
        await p.dns({ name: d, type: 'MX' });
        await ctx.sleep(ctx.rng.int(20, 120));
      }
    },
  },
  {
    id: 'benign-malware-hash-registry-lookups',
    label: 'benign',
    cls: 'dns-benign',
    title: 'Unmanaged mail gateway AV checks 25 attachment MD5s against Team Cymru MHR (TXT <32 hex>.malware.hash.cymru.com)',
    sources: ['Team Cymru "Malware Hash Registry" (DNS interface: TXT lookups of <md5|sha1>.malware.hash.cymru.com)'],
    placement: 'server',
    async play(ctx) {
      ctx.lab.zone('malware.hash.cymru.com', { txt: () => `${Math.floor(Date.now() / 1000)} ${ctx.rng.int(0, 90)}` });
      const p = ctx.proc({ image: '/usr/sbin/amavisd' });
      for (let i = 0; i < 25; i++) {
        await p.dns({ name: `${hex(ctx.rng, 32)}.malware.hash.cymru.com`, type: 'TXT' });
        await ctx.sleep(ctx.rng.int(30, 200));
      }
    },
  },
  {
    id: 'benign-dnsbl-reversed-ip-lookups',
    label: 'benign',
    cls: 'dns-benign',
    title: 'Unmanaged mail gateway checks 30 connecting IPs against zen.spamhaus.org (reversed-IP names, mostly NXDOMAIN)',
    sources: ['RFC 5782 §2.1 (DNSBL: reversed IPv4 octets under the list zone; NXDOMAIN = not listed)', 'Spamhaus "ZEN" usage'],
    placement: 'server',
    async play(ctx) {
      const p = ctx.proc({ image: '/usr/sbin/postscreen' });
      for (let i = 0; i < 30; i++) {
        const rev = `${ctx.rng.int(1, 254)}.${ctx.rng.int(0, 255)}.${ctx.rng.int(0, 255)}.${ctx.rng.int(1, 223)}.zen.spamhaus.org`;
        if (i % 7 === 3) ctx.lab.zone(rev, { a: '127.0.0.2', txt: () => 'Listed by SBL, see https://check.spamhaus.org/' });
        await p.dns({ name: rev, nx: i % 7 !== 3 });
        await ctx.sleep(ctx.rng.int(20, 150));
      }
    },
  },
  {
    id: 'benign-cdn-random-looking-names',
    label: 'benign',
    cls: 'dns-benign',
    title: 'Workstations resolve CDN names with random-looking labels (CloudFront, Akamai, ELB, Azure Blob, Traffic Manager)',
    sources: ['AWS CloudFront distribution domains (d<13 chars>.cloudfront.net)', 'Akamai edge names (e<n>.dscx.akamaiedge.net)', 'AWS ELB DNS names (<name>-<id>.<region>.elb.amazonaws.com)'],
    placement: { fleet: 3 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc({ image: SVCHOST, commandLine: 'C:\\Windows\\system32\\svchost.exe -k NetworkService -p -s Dnscache', parentImage: `${SYS32}\\services.exe`, user: LOCAL_SERVICE }, host);
        const names = [
          `d${ctx.rng.chars(ALPHA.lowerAlnum, 13)}.cloudfront.net`,
          `e${ctx.rng.int(1000, 99999)}.dscx.akamaiedge.net`,
          `app-prod-${ctx.rng.int(1_000_000_000, 1_999_999_999)}.eu-west-1.elb.amazonaws.com`,
          `contoso${ctx.rng.chars(ALPHA.lowerAlnum, 10)}.blob.core.windows.net`,
          'onedscolprdweu04.westeurope.cloudapp.azure.com',
          `${ctx.rng.chars(ALPHA.hex, 8)}.r.cloudfront.net`,
          'clientservices.googleapis.com',
          'settings-win.data.microsoft.com',
        ];
        for (const name of names) {
          await p.dns({ name });
          await ctx.sleep(ctx.rng.int(10, 80));
        }
      }
    },
  },
];

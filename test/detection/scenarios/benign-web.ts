/**
 * Benign browsing. TLS flows replay the captured browser hellos. The plain-HTTP ones carry URL shapes that
 * look like C2 to a naive URI test (content hashes, OAuth codes, analytics beacons, component-updater paths):
 * some are plain HTTP on the internet today (OCSP, component downloads, analytics on http:// sites); for the
 * rest, plain HTTP stands for what the proxy sees when it intercepts TLS.
 */
import { ALPHA } from '../rng.js';
import { b64url, browserHeaders, contentHash, guid, hex, ocspRequestDer, UA_CHROME, UA_EDGE, UA_FIREFOX, winHeaders } from '../shapes.js';
import type { Proc, Scenario } from '../types.js';
import { browse, EXPLORER, SVCHOST, LOCAL_SERVICE } from './kit.js';

export const CHROME = 'C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe';
export const EDGE = 'C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe';
export const FIREFOX = 'C:\\Program Files\\Mozilla Firefox\\firefox.exe';

const chrome = { image: CHROME, parentImage: EXPLORER, commandLine: `"${CHROME}"` };
const edge = { image: EDGE, parentImage: EXPLORER, commandLine: `"${EDGE}" --single-argument` };
const firefox = { image: FIREFOX, parentImage: EXPLORER };

/** Open several TLS connections to `names` in browsing rhythm. */
async function visit(p: Proc, hello: 'chromium' | 'edge' | 'firefox', names: readonly string[], download = 8000): Promise<void> {
  for (const name of names) await p.tls({ connect: `${name}:443`, hello, upload: [600, 900], server: { perChunkReply: download } });
}

export const benignWebScenarios: readonly Scenario[] = [
  {
    id: 'benign-chrome-search',
    label: 'benign',
    cls: 'browser',
    title: 'Chrome: Google search and its static hosts over TLS (captured Chromium hello)',
    sources: ['test/fixtures/tls/chromium.pcapng (Chromium 156 ClientHello)'],
    placement: { fleet: 3 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc(chrome, host);
        await visit(p, 'chromium', ['www.google.com', 'www.gstatic.com', 'apis.google.com', 'fonts.gstatic.com']);
      }
    },
  },
  {
    id: 'benign-edge-news-site',
    label: 'benign',
    cls: 'browser',
    title: 'Edge: a news site with its image and script CDNs',
    sources: ['FoxIO-LLC/ja4 pcap/browsers-x509.pcapng (Edge/Chromium ClientHello)'],
    placement: { fleet: 2 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc(edge, host);
        await visit(p, 'edge', ['www.bbc.co.uk', 'static.files.bbci.co.uk', 'ichef.bbci.co.uk', 'edge.microsoft.com'], 30_000);
      }
    },
  },
  {
    id: 'benign-firefox-wikipedia',
    label: 'benign',
    cls: 'browser',
    title: 'Firefox: Wikipedia and upload.wikimedia.org',
    sources: ['FoxIO-LLC/ja4 pcap/tls12.pcap (Firefox ClientHello)'],
    async play(ctx) {
      const p = ctx.proc(firefox);
      await visit(p, 'firefox', ['en.wikipedia.org', 'upload.wikimedia.org', 'en.wikipedia.org']);
    },
  },
  {
    id: 'benign-chrome-youtube-video',
    label: 'benign',
    cls: 'browser',
    title: 'Chrome: YouTube with googlevideo.com media hosts (random-looking labels), large downloads',
    sources: ['test/fixtures/tls/chromium.pcapng', 'googlevideo.com media host naming (rr<n>---sn-<id>.googlevideo.com)'],
    async play(ctx) {
      const p = ctx.proc(chrome);
      const media = `rr${ctx.rng.int(1, 6)}---sn-${ctx.rng.chars(ALPHA.lowerAlnum, 8)}.googlevideo.com`;
      await visit(p, 'chromium', ['www.youtube.com', 'i.ytimg.com', 'yt3.ggpht.com']);
      await p.tls({ connect: `${media}:443`, hello: 'chromium', upload: [900, 900, 900, 900], server: { perChunkReply: 16_000 }, holdMs: 600 });
    },
  },
  {
    id: 'benign-ga-utm-gif-http-shop',
    label: 'benign',
    cls: 'browser-http-shapes',
    title: 'Chrome on an http:// shop: page, assets, legacy Google Analytics GET /__utm.gif?utmwv=…',
    sources: ['Google Analytics ga.js "__utm.gif" request parameters (developers.google.com/analytics/resources/concepts/gaConceptsTrackingOverview)'],
    async play(ctx) {
      const p = ctx.proc(chrome);
      await p.http({ url: 'http://www.garden-supplies-shop.com/', headers: browserHeaders(UA_CHROME) });
      await p.http({ url: `http://www.garden-supplies-shop.com/static/css/main.${contentHash(ctx.rng)}.css`, headers: browserHeaders(UA_CHROME, 'text/css,*/*;q=0.1'), response: { type: 'text/css', bytes: 24_000 } });
      const utm = [
        'utmwv=5.7.2', `utms=${ctx.rng.int(1, 9)}`, `utmn=${ctx.rng.int(1_000_000_000, 2_147_483_647)}`, 'utmhn=www.garden-supplies-shop.com', 'utmcs=UTF-8',
        'utmsr=1920x1080', 'utmvp=1903x961', 'utmsc=24-bit', 'utmul=en-us', 'utmje=0', 'utmfl=-', 'utmdt=Garden%20Supplies', `utmhid=${ctx.rng.int(100_000_000, 999_999_999)}`,
        'utmr=-', 'utmp=%2F', `utmht=${Date.now()}`, 'utmac=UA-2202604-2',
        `utmcc=__utma%3D${ctx.rng.int(10_000_000, 99_999_999)}.${ctx.rng.int(1_000_000_000, 2_000_000_000)}.1716000000.1716000000.1716000000.1%3B%2B__utmz%3D${ctx.rng.int(10_000_000, 99_999_999)}.1716000000.1.1.utmcsr%3D(direct)%7Cutmccn%3D(direct)%7Cutmcmd%3D(none)%3B`,
        'utmu=q~',
      ].join('&');
      await p.http({ url: `http://www.google-analytics.com/__utm.gif?${utm}`, headers: browserHeaders(UA_CHROME, 'image/avif,image/webp,image/apng,image/*,*/*;q=0.8', [['Referer', 'http://www.garden-supplies-shop.com/']]), response: { type: 'image/gif', bytes: 35 } });
    },
  },
  {
    id: 'benign-webpack-next-chunks',
    label: 'benign',
    cls: 'browser-http-shapes',
    title: 'A web app loading webpack/Next.js/Vite content-hashed chunks',
    sources: ['webpack docs "Caching" ([contenthash])', 'Next.js build output (/_next/static/<buildId>/, chunks/pages/_app-<hash>.js)', 'Vite build output (assets/index-<hash>.js)'],
    placement: { fleet: 2 },
    async play(ctx) {
      const build = ctx.rng.chars(ALPHA.base64url.replace(/[-_]/g, ''), 21);
      for (const host of ctx.hosts) {
        const p = ctx.proc(chrome, host);
        const site = 'http://app.projectboard-saas.com';
        const js = browserHeaders(UA_CHROME, '*/*', [['Referer', `${site}/`]]);
        await p.http({ url: `${site}/`, headers: browserHeaders(UA_CHROME) });
        await browse(ctx, 5, 20, 120, async (i) => {
          const paths = [
            `/_next/static/chunks/webpack-${contentHash(ctx.rng, 16)}.js`,
            `/_next/static/chunks/pages/_app-${contentHash(ctx.rng, 16)}.js`,
            `/_next/static/${build}/_buildManifest.js`,
            `/static/js/${ctx.rng.int(100, 999)}.${contentHash(ctx.rng)}.chunk.js`,
            `/assets/index-${b64url(ctx.rng, 6)}.js`,
          ];
          await p.http({ url: `${site}${paths[i] ?? paths[0]}`, headers: js, response: { type: 'application/javascript', bytes: ctx.rng.int(4000, 90_000) } });
        });
      }
    },
  },
  {
    id: 'benign-oauth-code-redirect',
    label: 'benign',
    cls: 'browser-http-shapes',
    title: 'Edge: Entra ID sign-in, then the app callback ?code=<long base64url>&state=…&session_state=<guid>',
    sources: ['RFC 6749 §4.1.2 (authorization response: code, state)', 'OpenID Connect Core 1.0 §3.1.2.5; Microsoft identity platform "OAuth 2.0 authorization code flow"'],
    async play(ctx) {
      const p = ctx.proc(edge);
      await p.tls({ connect: 'login.microsoftonline.com:443', hello: 'edge', upload: [1400, 900] });
      await p.tls({ connect: 'aadcdn.msftauth.net:443', hello: 'edge', upload: [700] });
      const state = b64url(ctx.rng, 96);
      await p.http({
        url: `http://portal.fabrikam-hr.com/signin-oidc?code=0.AXEA${b64url(ctx.rng, 600)}&state=${state}&session_state=${guid(ctx.rng)}`,
        headers: browserHeaders(UA_EDGE, undefined, [['Referer', 'https://login.microsoftonline.com/']]),
        response: { status: 302, bytes: 0 },
      });
      await p.http({ url: 'http://portal.fabrikam-hr.com/home', headers: browserHeaders(UA_EDGE) });
    },
  },
  {
    id: 'benign-cdn-asset-hashes',
    label: 'benign',
    cls: 'browser-http-shapes',
    title: 'Firefox: CDN assets with hashed and versioned names (jsDelivr, Google Fonts, googleusercontent, Shopify)',
    sources: ['jsDelivr npm URLs (cdn.jsdelivr.net/npm/<pkg>@<ver>/…)', 'Google Fonts static URLs (fonts.gstatic.com/s/<family>/v<n>/<id>.woff2)', 'Shopify CDN (?v=<unix time>)'],
    async play(ctx) {
      const p = ctx.proc(firefox);
      const hdr = browserHeaders(UA_FIREFOX, '*/*', [['Referer', 'http://www.outdoor-gear-blog.com/']]);
      await p.http({ url: 'http://www.outdoor-gear-blog.com/2024/05/best-tents', headers: browserHeaders(UA_FIREFOX) });
      await p.http({ url: 'http://cdn.jsdelivr.net/npm/bootstrap@5.3.3/dist/js/bootstrap.bundle.min.js', headers: hdr, response: { type: 'application/javascript', bytes: 80_000 } });
      await p.http({ url: `http://fonts.gstatic.com/s/roboto/v30/${ctx.rng.chars(ALPHA.alnum, 20)}.woff2`, headers: hdr, response: { type: 'font/woff2', bytes: 15_000 } });
      await p.http({ url: `http://lh3.googleusercontent.com/a/ACg8oc${ctx.rng.chars(ALPHA.base64url, 60)}=s96-c`, headers: hdr, response: { type: 'image/jpeg', bytes: 4000 } });
      await p.http({ url: `http://cdn.shopify.com/s/files/1/0${ctx.rng.int(100, 999)}/${ctx.rng.int(1000, 9999)}/${ctx.rng.int(1000, 9999)}/files/tent-${hex(ctx.rng, 8)}.jpg?v=${ctx.rng.int(1_690_000_000, 1_716_000_000)}`, headers: hdr, response: { type: 'image/jpeg', bytes: 60_000 } });
    },
  },
  {
    id: 'benign-chrome-component-updater',
    label: 'benign',
    cls: 'browser-http-shapes',
    title: 'Chrome component updater downloads a .crx3 over HTTP from edgedl.me.gvt1.com (random-looking 32-char segments)',
    sources: ['Chromium components/update_client (CRX downloads from *.gvt1.com over http, hash-verified)', 'Chromium extension/component ids: 32 characters a–p'],
    async play(ctx) {
      const p = ctx.proc(chrome);
      const ap = (n: number): string => ctx.rng.chars('abcdefghijklmnop', n);
      const ver = `${ctx.rng.int(1, 9)}.${ctx.rng.int(0, 99)}.0.${ctx.rng.int(0, 9)}`;
      await p.http({ url: `http://edgedl.me.gvt1.com/edgedl/release2/chrome_component/${ctx.rng.chars(ALPHA.lowerAlnum, 26)}_${ver}/${ap(32)}_${ver}_all_${ctx.rng.chars(ALPHA.lowerAlnum, 26)}.crx3`, headers: winHeaders(UA_CHROME), response: { type: 'application/x-chrome-extension', bytes: 120_000 } });
      await p.http({ url: `http://redirector.gvt1.com/edgedl/release2/chrome_component/${ctx.rng.chars(ALPHA.lowerAlnum, 26)}_${ver}/${ap(32)}_${ver}_win64_${ctx.rng.chars(ALPHA.lowerAlnum, 26)}.crx3`, headers: winHeaders(UA_CHROME), response: { status: 302, bytes: 0 } });
    },
  },
  {
    id: 'benign-firefox-ocsp-post',
    label: 'benign',
    cls: 'browser-http-shapes',
    title: 'Firefox OCSP: POST of an 83-byte DER request (application/ocsp-request) to r3.o.lencr.org and ocsp.digicert.com',
    sources: ['RFC 6960 Appendix A.1 (OCSP over HTTP POST)', 'Mozilla Firefox security.OCSP.enabled (POST requests)'],
    placement: { fleet: 2 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc(firefox, host);
        for (const url of ['http://r3.o.lencr.org/', 'http://ocsp.digicert.com/']) {
          await p.http({ url, method: 'POST', headers: [['User-Agent', UA_FIREFOX], ['Accept', '*/*'], ['Content-Type', 'application/ocsp-request']], body: ocspRequestDer(ctx.rng), response: { type: 'application/ocsp-response', bytes: 503 } });
        }
      }
    },
  },
  {
    id: 'benign-connectivity-checks',
    label: 'benign',
    cls: 'browser-http-shapes',
    title: 'Chrome generate_204 and Windows NCSI connecttest.txt (captive-portal checks)',
    sources: ['Chromium captive portal detection (http://www.gstatic.com/generate_204)', 'Microsoft Learn "Network Connectivity Status Indicator" (www.msftconnecttest.com/connecttest.txt, UA "Microsoft NCSI")'],
    placement: { fleet: 3 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const ncsi = ctx.proc({ image: SVCHOST, commandLine: 'C:\\Windows\\system32\\svchost.exe -k LocalService -p -s NlaSvc', parentImage: 'C:\\Windows\\System32\\services.exe', user: LOCAL_SERVICE }, host);
        await ncsi.dns({ name: 'www.msftconnecttest.com' });
        await ncsi.http({ url: 'http://www.msftconnecttest.com/connecttest.txt', headers: [['Connection', 'Close'], ['User-Agent', 'Microsoft NCSI']], response: { type: 'text/plain', bytes: 22 } });
        const p = ctx.proc(chrome, host);
        await p.http({ url: 'http://www.gstatic.com/generate_204', headers: winHeaders(UA_CHROME), response: { status: 204, bytes: 0 } });
      }
    },
  },
];

/**
 * Benign developer and server tooling: git over HTTPS and over SSH on 443, package managers (npm, pip, NuGet,
 * Gradle/Maven, Go modules), VS Code, and unmanaged Linux servers (apt, docker pull, certbot). Several of these
 * run from user-writable folders (per-user Python, VS Code, Gradle JDKs) or use Go's TLS stack, like implants do.
 */
import { hex } from '../shapes.js';
import type { Scenario } from '../types.js';
import { EXPLORER, home, SYS32 } from './kit.js';

const CMD = `${SYS32}\\cmd.exe`;

export const benignDevScenarios: readonly Scenario[] = [
  {
    id: 'benign-git-clone-github-https',
    label: 'benign',
    cls: 'developer',
    title: 'git clone over HTTPS: git-remote-https.exe (curl/OpenSSL) to github.com, large pack download',
    sources: ['test/fixtures/tls/curl-tls13.pcapng (curl/OpenSSL ClientHello)', 'Git for Windows layout (mingw64\\libexec\\git-core\\git-remote-https.exe)'],
    placement: { fleet: 2 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc({ image: 'C:\\Program Files\\Git\\mingw64\\libexec\\git-core\\git-remote-https.exe', commandLine: 'git-remote-https origin https://github.com/contoso/platform-api.git', parentImage: 'C:\\Program Files\\Git\\mingw64\\bin\\git.exe' }, host);
        await p.tls({ connect: 'github.com:443', hello: 'curl', upload: [900, 2400], server: { perChunkReply: 120_000 } });
      }
    },
  },
  {
    id: 'benign-git-ssh-over-443',
    label: 'benign',
    cls: 'developer',
    title: 'git over SSH through the proxy: connect.exe CONNECTs ssh.github.com:443 and speaks SSH (not TLS) on 443',
    sources: ['GitHub Docs "Using SSH over the HTTPS port" (ssh.github.com, port 443)', 'Git for Windows connect.exe (ProxyCommand for HTTP proxies)', 'RFC 4253 §4.2 (identification string)'],
    async play(ctx) {
      const p = ctx.proc({ image: 'C:\\Program Files\\Git\\mingw64\\bin\\connect.exe', commandLine: 'connect.exe -H proxy.contoso.com:3128 ssh.github.com 443', parentImage: 'C:\\Program Files\\Git\\usr\\bin\\ssh.exe' });
      await p.raw({ connect: 'ssh.github.com:443', send: ['SSH-2.0-OpenSSH_9.6\r\n', ctx.rng.bytes(1500), ctx.rng.bytes(48), ctx.rng.bytes(700)], server: { banner: `SSH-2.0-babeld-${hex(ctx.rng, 8)}\r\n`, perChunkReply: 900 } });
    },
  },
  {
    id: 'benign-npm-install',
    label: 'benign',
    cls: 'developer',
    title: 'npm install: node.exe fetches packuments and tarballs from registry.npmjs.org',
    sources: ['test/fixtures/tls/node-https.pcapng (Node ClientHello)', 'npm docs "registry" (registry.npmjs.org)'],
    placement: { fleet: 2 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const p = ctx.proc({ image: 'C:\\Program Files\\nodejs\\node.exe', commandLine: '"C:\\Program Files\\nodejs\\node.exe" "C:\\Program Files\\nodejs\\node_modules\\npm\\bin\\npm-cli.js" install', parentImage: CMD }, host);
        for (let i = 0; i < 4; i++) await p.tls({ connect: 'registry.npmjs.org:443', hello: 'node', upload: [700, 700], server: { perChunkReply: 40_000 } });
      }
    },
  },
  {
    id: 'benign-pip-install-user-python',
    label: 'benign',
    cls: 'developer',
    title: 'pip install from a per-user Python (%LOCALAPPDATA%\\Programs\\Python): pypi.org, files.pythonhosted.org',
    sources: ['test/fixtures/tls/python-ssl.pcapng (Python ClientHello)', 'python.org Windows installer default per-user path', 'SigmaHQ bef0bc5a-b9ae-425d-85c6-7b2d705980c6 "Python Initiated Connection" (DRL-1.1) lists pip as false positive'],
    async play(ctx) {
      const python = `${home(ctx.host)}\\AppData\\Local\\Programs\\Python\\Python312\\python.exe`;
      const p = ctx.proc({ image: python, commandLine: `"${python}" -m pip install requests pandas`, parentImage: CMD });
      await p.tls({ connect: 'pypi.org:443', hello: 'python', upload: [600, 600], server: { perChunkReply: 20_000 } });
      for (let i = 0; i < 3; i++) await p.tls({ connect: 'files.pythonhosted.org:443', hello: 'python', upload: [600], server: { perChunkReply: 150_000 } });
    },
  },
  {
    id: 'benign-vscode-marketplace-update',
    label: 'benign',
    cls: 'developer',
    title: 'VS Code (per-user install) checks updates and extensions: update.code.visualstudio.com, marketplace, gallery CDN',
    sources: ['VS Code docs "Network connections in Visual Studio Code" (update.code.visualstudio.com, marketplace.visualstudio.com, *.gallerycdn.vsassets.io)'],
    placement: { fleet: 2 },
    async play(ctx) {
      for (const host of ctx.hosts) {
        const code = `${home(host)}\\AppData\\Local\\Programs\\Microsoft VS Code\\Code.exe`;
        const p = ctx.proc({ image: code, parentImage: EXPLORER }, host);
        for (const name of ['update.code.visualstudio.com', 'marketplace.visualstudio.com', 'ms-python.gallerycdn.vsassets.io', 'vscode-sync.trafficmanager.net']) {
          await p.tls({ connect: `${name}:443`, hello: 'chromium', upload: [900], server: { perChunkReply: 25_000 } });
        }
      }
    },
  },
  {
    id: 'benign-dotnet-nuget-restore',
    label: 'benign',
    cls: 'developer',
    title: 'dotnet restore pulls packages from api.nuget.org',
    sources: ['NuGet docs "NuGet.org service index" (api.nuget.org/v3/index.json)'],
    async play(ctx) {
      const p = ctx.proc({ image: 'C:\\Program Files\\dotnet\\dotnet.exe', commandLine: '"C:\\Program Files\\dotnet\\dotnet.exe" restore', parentImage: CMD });
      for (let i = 0; i < 3; i++) await p.tls({ connect: 'api.nuget.org:443', hello: 'schannel-alpn', upload: [800], server: { perChunkReply: 60_000 } });
    },
  },
  {
    id: 'benign-gradle-maven-user-jdk',
    label: 'benign',
    cls: 'developer',
    title: 'Gradle with a toolchain JDK under %USERPROFILE%\\.gradle\\jdks downloads from Maven Central and the plugin portal',
    sources: ['Gradle docs "Toolchains for JVM projects" (auto-provisioned JDKs in ~/.gradle/jdks)', 'repo.maven.apache.org, plugins.gradle.org'],
    async play(ctx) {
      const java = `${home(ctx.host)}\\.gradle\\jdks\\eclipse_adoptium-17-amd64-windows\\jdk-17.0.10+7\\bin\\java.exe`;
      const p = ctx.proc({ image: java, commandLine: `"${java}" -Xmx2g -classpath gradle-wrapper.jar org.gradle.wrapper.GradleWrapperMain build`, parentImage: CMD });
      for (const name of ['services.gradle.org', 'plugins.gradle.org', 'repo.maven.apache.org', 'repo.maven.apache.org']) {
        await p.tls({ connect: `${name}:443`, hello: 'openssl', upload: [700], server: { perChunkReply: 80_000 } });
      }
    },
  },
  {
    id: 'benign-go-modules-download',
    label: 'benign',
    cls: 'developer',
    title: 'go build downloads modules through proxy.golang.org and sum.golang.org (Go crypto/tls, like Go implants)',
    sources: ['Go docs "Module proxy" (proxy.golang.org, sum.golang.org)', 'Go crypto/tls ClientHello (same stack as Go implants)'],
    async play(ctx) {
      const p = ctx.proc({ image: 'C:\\Program Files\\Go\\bin\\go.exe', commandLine: 'go build ./...', parentImage: CMD });
      await p.tls({ connect: 'proxy.golang.org:443', hello: 'go', upload: [500, 500], server: { perChunkReply: 50_000 } });
      await p.tls({ connect: 'sum.golang.org:443', hello: 'go', upload: [500] });
      await p.tls({ connect: 'storage.googleapis.com:443', hello: 'go', upload: [500], server: { perChunkReply: 100_000 } });
    },
  },
  {
    id: 'benign-linux-apt-update',
    label: 'benign',
    cls: 'server',
    title: 'Unmanaged Debian server: apt update/upgrade over HTTP (deb.debian.org, security.debian.org)',
    sources: ['Debian apt sources (http://deb.debian.org/debian, http://security.debian.org/debian-security); UA "Debian APT-HTTP/1.3"'],
    placement: 'server',
    async play(ctx) {
      const p = ctx.proc({ image: '/usr/lib/apt/methods/http' });
      const ua: ReadonlyArray<readonly [string, string]> = [['User-Agent', 'Debian APT-HTTP/1.3 (2.6.1)']];
      await p.http({ url: 'http://deb.debian.org/debian/dists/bookworm/InRelease', headers: ua, response: { type: 'application/octet-stream', bytes: 150_000 } });
      await p.http({ url: 'http://security.debian.org/debian-security/dists/bookworm-security/InRelease', headers: ua, response: { type: 'application/octet-stream', bytes: 48_000 } });
      await p.http({ url: 'http://deb.debian.org/debian/pool/main/c/curl/curl_7.88.1-10+deb12u8_amd64.deb', headers: ua, response: { type: 'application/vnd.debian.binary-package', bytes: 315_000 } });
    },
  },
  {
    id: 'benign-linux-docker-pull',
    label: 'benign',
    cls: 'server',
    title: 'Unmanaged build server: docker pull (Go TLS) from registry-1.docker.io and its blob CDN',
    sources: ['Docker docs "Docker Hub: allowed domains" (registry-1.docker.io, auth.docker.io, production.cloudflare.docker.com)'],
    placement: 'server',
    async play(ctx) {
      const p = ctx.proc({ image: '/usr/bin/dockerd' });
      await p.tls({ connect: 'auth.docker.io:443', hello: 'go', upload: [600] });
      await p.tls({ connect: 'registry-1.docker.io:443', hello: 'go', upload: [700, 700] });
      for (let i = 0; i < 3; i++) await p.tls({ connect: 'production.cloudflare.docker.com:443', hello: 'go', upload: [800], server: { perChunkReply: 200_000 } });
    },
  },
  {
    id: 'benign-linux-certbot-dns01',
    label: 'benign',
    cls: 'server',
    title: 'Unmanaged web server: certbot (Python) talks to Let\'s Encrypt and checks _acme-challenge TXT records',
    sources: ['RFC 8555 §8.4 (dns-01: TXT at _acme-challenge.<domain>)', 'Let\'s Encrypt API endpoint acme-v02.api.letsencrypt.org'],
    placement: 'server',
    async play(ctx) {
      for (const d of ['www.contoso.com', 'shop.contoso.com', 'api.contoso.com']) ctx.lab.txt(`_acme-challenge.${d}`, ctx.rng.bytes(32).toString('base64url'));
      const p = ctx.proc({ image: '/usr/bin/certbot' });
      await p.tls({ connect: 'acme-v02.api.letsencrypt.org:443', hello: 'python', upload: [900, 1400, 1400] });
      for (const d of ['www.contoso.com', 'shop.contoso.com', 'api.contoso.com']) await p.dns({ name: `_acme-challenge.${d}`, type: 'TXT' });
      await p.tls({ connect: 'acme-v02.api.letsencrypt.org:443', hello: 'python', upload: [1400, 1400] });
    },
  },
];

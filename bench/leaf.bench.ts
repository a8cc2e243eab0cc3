/**
 * Leaf certificates for TLS interception (issue 10): cost of a new leaf (build + sign + createSecureContext)
 * and of a cache hit, for the RSA-2048 CA of `ca init` and an operator's ECDSA P-256 CA.
 * Targets: new leaf ≤ 2 ms median, hit ≤ 20 µs.
 * Run: npx tsx bench/leaf.bench.ts [names]   (default 300 names) → a table, then one JSON line on stdout.
 *
 * Each new-leaf sample awaits secureContext() for a name not seen before, one at a time (no overlap), so it is
 * the latency a first handshake to that host waits for. Hit samples await secureContext() for names already
 * minted, cycling over all of them; `cachedContext` is the synchronous look-up an SNICallback can use. The
 * parts (native sign, createSecureContext with a leaf + CA chain) are timed alone to show where a mint goes.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { createCa } from '../src/net/ca.js';
import { loadCa, type LoadedCa } from '../src/net/ca-load.js';
import { createLeafMinter } from '../src/net/leaf-certs.js';

const names = Math.max(200, Number(process.argv[2] ?? 300));
const HIT_SAMPLES = 100_000;
const P256_PEM = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function stats(samples: number[]): { median: number; p99: number } {
  const s = Float64Array.from(samples).sort();
  return { median: percentile(s, 50), p99: percentile(s, 99) };
}

const nowUs = (): number => Number(process.hrtime.bigint()) / 1000;

async function caPair(tmp: string): Promise<Array<{ label: string; ca: LoadedCa }>> {
  const rsa = createCa('bench RSA CA');
  writeFileSync(join(tmp, 'ca.pem'), rsa.certPem);
  writeFileSync(join(tmp, 'ca-key.pem'), rsa.keyPem, { mode: 0o600 });
  const rsaCa = await loadCa(tmp);
  const ecDir = join(tmp, 'ec');
  mkdirSync(ecDir);
  writeFileSync(join(ecDir, 'req.cnf'), '[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n[dn]\nCN = bench EC CA\n[ext]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign\nsubjectKeyIdentifier = hash\n');
  execFileSync('openssl', ['req', '-x509', '-config', join(ecDir, 'req.cnf'), '-nodes', '-days', '30', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', join(ecDir, 'ca-key.pem'), '-out', join(ecDir, 'ca.pem')], { stdio: 'ignore' });
  chmodSync(join(ecDir, 'ca-key.pem'), 0o600);
  return [
    { label: 'RSA-2048 CA', ca: rsaCa },
    { label: 'ECDSA P-256 CA', ca: await loadCa(ecDir) },
  ];
}

interface Row {
  readonly ca: string;
  readonly new_leaf_median_ms: number;
  readonly new_leaf_p99_ms: number;
  readonly hit_median_us: number;
  readonly hit_p99_us: number;
  readonly cached_sync_median_us: number;
  readonly sign_median_ms: number;
  readonly context_cert_median_ms: number;
  readonly context_key_median_ms: number;
}

async function measure(label: string, ca: LoadedCa): Promise<Row> {
  const minter = createLeafMinter(ca, { cacheSize: names + 100 });
  for (let i = 0; i < 30; i++) await minter.secureContext(`warm-${i}.bench.example`); // warm-up, not measured
  const mint: number[] = [];
  for (let i = 0; i < names; i++) {
    const name = `host-${i}.bench.example`;
    const t0 = nowUs();
    await minter.secureContext(name);
    mint.push((nowUs() - t0) / 1000);
  }
  const hit: number[] = [];
  const sync: number[] = [];
  for (let i = 0; i < HIT_SAMPLES; i++) {
    const name = `host-${i % names}.bench.example`;
    const t0 = nowUs();
    await minter.secureContext(name);
    hit.push(nowUs() - t0);
    const t1 = nowUs();
    minter.cachedContext(name);
    sync.push(nowUs() - t1);
  }
  if (minter.stats().mints !== names + 30) throw new Error(`expected ${names + 30} mints, got ${minter.stats().mints}`);

  // The parts alone: a native signature over a leaf-sized TBSCertificate, and a context from PEM.
  const leaf = await minter.certificate('host-0.bench.example');
  const tbs = leaf.der.subarray(4, 4 + 450);
  const signMs: number[] = [];
  const certCtxMs: number[] = [];
  const keyCtxMs: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = nowUs();
    sign('sha256', tbs, ca.key);
    signMs.push((nowUs() - t0) / 1000);
  }
  // A context from the chain alone and from a P-256 key alone (the minter's key is not exported): their sum is
  // about what createSecureContext costs per mint.
  for (let i = 0; i < 200; i++) {
    const t0 = nowUs();
    tls.createSecureContext({ cert: leaf.pem + ca.certPem });
    certCtxMs.push((nowUs() - t0) / 1000);
    const t1 = nowUs();
    tls.createSecureContext({ key: P256_PEM });
    keyCtxMs.push((nowUs() - t1) / 1000);
  }
  const m = stats(mint);
  const h = stats(hit);
  return {
    ca: label,
    new_leaf_median_ms: m.median,
    new_leaf_p99_ms: m.p99,
    hit_median_us: h.median,
    hit_p99_us: h.p99,
    cached_sync_median_us: stats(sync).median,
    sign_median_ms: stats(signMs).median,
    context_cert_median_ms: stats(certCtxMs).median,
    context_key_median_ms: stats(keyCtxMs).median,
  };
}

const tmp = mkdtempSync(join(tmpdir(), 'egress-leaf-bench-'));
try {
  const rows: Row[] = [];
  for (const { label, ca } of await caPair(tmp)) rows.push(await measure(label, ca));
  const f = (n: number, d = 3): string => n.toFixed(d).padStart(9);
  console.log(`new leaf = secureContext() for an unseen name (${names} names, sequential); hit = secureContext() for a cached name (${HIT_SAMPLES} calls)`);
  console.log('CA               new median ms  new p99 ms  hit median µs  hit p99 µs  cachedContext µs  sign ms  ctx(chain) ms  ctx(key) ms');
  for (const r of rows) {
    console.log(
      [
        r.ca.padEnd(16),
        f(r.new_leaf_median_ms).padStart(13),
        f(r.new_leaf_p99_ms).padStart(11),
        f(r.hit_median_us, 2).padStart(14),
        f(r.hit_p99_us, 2).padStart(11),
        f(r.cached_sync_median_us, 2).padStart(17),
        f(r.sign_median_ms).padStart(8),
        f(r.context_cert_median_ms).padStart(14),
        f(r.context_key_median_ms).padStart(12),
      ].join(' '),
    );
  }
  console.log(JSON.stringify({ bench: 'leaf', node: process.version, names, rows }));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

/**
 * GeoIP + ASN lookup cost (target ≥ 0.5 M lookups/s with the record cache; DEPENDENCIES.md, maxmind 5.0.x).
 * Run: npx tsx bench/geoip.bench.ts [lookups]   → a table on stderr, one JSON line on stdout.
 *
 * Databases are built with the test writer (no downloads): a City-shaped IPv6 database with NETWORKS random
 * IPv4 /24s and NETWORKS/4 IPv6 /48s, and an ASN database over the same networks, both opened with openGeoIp.
 * Each lookup() asks both. Workloads (a fifth IPv6 in each):
 *   repeat      1,000 addresses cycled: the busy destinations of a proxy, answered from the per-address LRU;
 *   new-addr    ~140,000 distinct addresses in 800 networks: every lookup misses the per-address LRU (two
 *               tree walks) but hits mmdb-lib's record cache — the "maxmind with its cache" figure;
 *   new-net     ~220,000 distinct addresses over all networks, more than the 10k-record cache holds: tree
 *               walks plus record decoding for most lookups (the worst case).
 * Throughput = lookups over wall time; median = median over batches of BATCH lookups (one hrtime pair per
 * batch, so the timer's own cost is spread), divided by BATCH.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openGeoIp } from '../src/enrich/geoip.js';
import { writeMmdb } from '../test/helpers/mmdb-writer.js';
import { mulberry32 } from '../test/helpers/prng.js';

const LOOKUPS = Number(process.argv[2] ?? 2_000_000);
const NETWORKS = 20_000;
const BATCH = 100;

/** Seeded, so every run measures the same addresses. */
const next = mulberry32(42);
const rand = (n: number): number => Math.floor(next() * n);

const v4 = Array.from({ length: NETWORKS }, () => `${1 + rand(222)}.${rand(256)}.${rand(256)}`);
const v6 = Array.from({ length: NETWORKS / 4 }, () => `2001:db8:${rand(0x10000).toString(16)}`);
const city = writeMmdb({
  databaseType: 'GeoLite2-City',
  ipVersion: 6,
  recordSize: 28,
  networks: [
    ...v4.map((p, i) => ({ cidr: `${p}.0/24`, data: { country: { iso_code: 'NL', geoname_id: i, names: { en: 'Netherlands', de: 'Niederlande' } }, location: { latitude: 52.3, longitude: 4.9 } } })),
    ...v6.map((p) => ({ cidr: `${p}::/48`, data: { country: { iso_code: 'DE', names: { en: 'Germany' } } } })),
  ],
});
const asn = writeMmdb({
  databaseType: 'GeoLite2-ASN',
  ipVersion: 6,
  networks: [...v4.map((p, i) => ({ cidr: `${p}.0/24`, data: { autonomous_system_number: 64_512 + i, autonomous_system_organization: `Example ${i}` } })), ...v6.map((p) => ({ cidr: `${p}::/48`, data: { autonomous_system_number: 64_500, autonomous_system_organization: 'Example v6' } }))],
});

const dir = await mkdtemp(join(tmpdir(), 'geoip-bench-'));
await writeFile(join(dir, 'city.mmdb'), city);
await writeFile(join(dir, 'asn.mmdb'), asn);
const geo = await openGeoIp({ city: join(dir, 'city.mmdb'), asn: join(dir, 'asn.mmdb') });
if (geo === null) throw new Error('openGeoIp returned null');

function address(net: number): string {
  return net % 5 === 4 ? `${v6[net % v6.length]}:${rand(0x10000).toString(16)}::${rand(0x10000).toString(16)}` : `${v4[net % v4.length]}.${rand(256)}`;
}
const workloads: Record<string, string[]> = {
  repeat: Array.from({ length: 1000 }, (_, i) => address(i % 800)),
  'new-addr': [...new Set(Array.from({ length: 220_000 }, (_, i) => address(i % 800)))],
  'new-net': [...new Set(Array.from({ length: 220_000 }, () => address(rand(NETWORKS))))],
};

let sink = 0;
for (const [name, ips] of Object.entries(workloads)) process.stderr.write(`  ${name}: ${ips.length} distinct addresses\n`);
const results: Record<string, { lookupsPerSec: number; medianUs: number; hitRate: number }> = {};
for (const [name, ips] of Object.entries(workloads)) {
  for (let i = 0; i < 200_000; i++) sink += geo.lookup(ips[i % ips.length]!) === null ? 0 : 1; // warm-up
  const batches = Math.floor(LOOKUPS / BATCH);
  const times = new Float64Array(batches);
  let found = 0;
  const t0 = process.hrtime.bigint();
  for (let b = 0, k = 0; b < batches; b++) {
    const s = process.hrtime.bigint();
    for (let j = 0; j < BATCH; j++, k++) found += geo.lookup(ips[k % ips.length]!) === null ? 0 : 1;
    times[b] = Number(process.hrtime.bigint() - s) / 1000 / BATCH;
  }
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  times.sort();
  results[name] = { lookupsPerSec: Math.round((batches * BATCH) / wallS), medianUs: Number(times[batches >> 1]!.toFixed(3)), hitRate: found / (batches * BATCH) };
  sink += found;
}
await rm(dir, { recursive: true, force: true });

process.stderr.write(`GeoIP lookup (city + ASN per lookup), ${NETWORKS} IPv4 + ${NETWORKS / 4} IPv6 networks\n`);
for (const [name, r] of Object.entries(results)) {
  process.stderr.write(`  ${name.padEnd(8)} ${(r.lookupsPerSec / 1e6).toFixed(2)} M lookups/s   median ${r.medianUs.toFixed(3)} µs   found ${(r.hitRate * 100).toFixed(0)}%\n`);
}
process.stdout.write(`${JSON.stringify({ bench: 'geoip', lookups: LOOKUPS, networks: NETWORKS, results, sink: sink > 0 })}\n`);

import { describe, it, expect } from 'vitest';
import { PassThrough } from 'node:stream';
import { runFingerprint } from '../../../src/cli/fingerprint.js';
import { FIXTURES, loadVectorRows } from '../parsers/hello-builder.js';

async function run(opts: { pcap?: string }, input: string): Promise<{ code: number; lines: Record<string, unknown>[] }> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  let text = '';
  stdout.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
  });
  stdin.end(input);
  const code = await runFingerprint(opts, { stdin, stdout });
  stdout.end();
  return { code, lines: text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const rows = loadVectorRows();
const row = (pcap: string) => {
  const r = rows.find((x) => x.pcap === pcap);
  if (r === undefined) throw new Error(`fixture ${pcap} missing`);
  return r;
};

describe('egress-inspector fingerprint (stdin hex)', () => {
  it('prints one SPEC object per line, an error object for a bad line, and goes on', async () => {
    const a = row('badcurveball.pcap');
    const b = row('tls12.pcap');
    const spaced = (b.record_hex.match(/.{1,32}/g) ?? []).join(' ');
    const input = [a.record_hex, 'this is not hex', `0x${spaced.toUpperCase()}`, '', '160301'].join('\n');
    const { code, lines } = await run({}, input);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toEqual({
      sni: 'bad.curveballtest.com',
      alpn: ['h2', 'http/1.1'],
      ja3_full: a.ja3_full,
      ja3: a.ja3,
      ja4: 't13d1615h2_46e7e9700bed_45f260be83e2',
      ja4_r: a.foxio_expected_python?.JA4_r,
    });
    expect(Object.keys(lines[0] ?? {})).toEqual(['sni', 'alpn', 'ja3_full', 'ja3', 'ja4', 'ja4_r']);
    expect(lines[1]).toEqual({ error: 'line is not hex' });
    expect(lines[2]?.['ja3']).toBe(b.ja3);
    expect(lines[2]?.['ja4']).toBe(b.foxio_expected_python?.JA4);
    expect(String(lines[3]?.['error'])).toContain('truncated');
    expect(code).toBe(1);
  });

  it('exits 0 when every line is a ClientHello, and prints null SNI and [] ALPN when absent', async () => {
    const r = row('https-connect.pcap');
    const { code, lines } = await run({}, `${r.record_hex}\n`);
    expect(code).toBe(0);
    expect(lines).toEqual([
      { sni: null, alpn: [], ja3_full: r.ja3_full, ja3: r.ja3, ja4: 't12i860500_e18388e7f3a3_a1e935682795', ja4_r: r.ja4_r_wireshark_4_4_19 },
    ]);
  });

  it('explains records that are not ClientHellos', async () => {
    const { lines } = await run({}, ['474554202f', '16030100050200000100', 'abc'].join('\n'));
    expect(String(lines[0]?.['error'])).toContain('not a TLS ClientHello record');
    expect(String(lines[1]?.['error'])).toContain('handshake.msg_type');
    expect(lines[2]).toEqual({ error: 'odd number of hex digits' });
  });
});

describe('egress-inspector fingerprint --pcap', () => {
  it('prints each hello with src, dst and stream, including the one behind CONNECT', async () => {
    const { code, lines } = await run({ pcap: `${FIXTURES}vectors/ja4-foxio/pcap/https-connect.pcap` }, '');
    expect(code).toBe(0);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ sni: null, ja4: 't12i860500_e18388e7f3a3_a1e935682795', src: '10.11.12.13:54723', dst: '10.9.8.7:8080', stream: 0 });
  });

  it('writes IPv6 endpoints in brackets', async () => {
    const { lines } = await run({ pcap: `${FIXTURES}vectors/ja4-foxio/pcap/ipv6.pcapng` }, '');
    expect(lines[0]).toMatchObject({ src: '[2001:4998:ef83:14:8000::100d]:64034', dst: '[2606:4700::6811:d209]:443', sni: 'www.cloudflare.com' });
  });

  it('prints every hello of a capture in stream order and one QUIC skipped line', async () => {
    const { code, lines } = await run({ pcap: `${FIXTURES}vectors/ja4-foxio/pcap/tls-handshake.pcapng` }, '');
    expect(code).toBe(0);
    const hellos = lines.filter((l) => 'ja4' in l);
    expect(hellos).toHaveLength(rows.filter((r) => r.pcap === 'tls-handshake.pcapng').length);
    const streams = hellos.map((l) => Number(l['stream']));
    expect(streams).toEqual([...streams].sort((x, y) => x - y));
    expect(lines.at(-1)).toMatchObject({ skipped: 'quic' });
    expect(lines.filter((l) => 'skipped' in l)).toHaveLength(1);
  });

  it('exits 2 with an error object for a missing file or a non-capture', async () => {
    const missing = await run({ pcap: `${FIXTURES}does-not-exist.pcap` }, '');
    expect(missing.code).toBe(2);
    expect(String(missing.lines[0]?.['error'])).toContain('cannot read');
    const notPcap = await run({ pcap: `${FIXTURES}vectors/ja4-foxio/README.md` }, '');
    expect(notPcap.code).toBe(2);
    expect(String(notPcap.lines[0]?.['error'])).toContain('unknown capture format');
  });
});

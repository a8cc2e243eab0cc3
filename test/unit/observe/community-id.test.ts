import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { communityId, ipBytes } from '../../../src/observe/community-id.js';

// corelight/community-id-spec baseline/baseline_deflt.json (seed 0) and baseline_seed1.json (seed 1): the TCP and
// UDP entries, both directions of each flow.
const BASELINE: ReadonlyArray<[proto: 'tcp' | 'udp', saddr: string, daddr: string, sport: number, dport: number, seed0: string, seed1: string]> = [
  ['tcp', '2001:470:e5bf:dead:4957:2174:e82c:4887', '2607:f8b0:400c:c03::1a', 63943, 25, '1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=', '1:eJYTW6AOzFLlSUoESovMjnu7rMw='],
  ['tcp', '2607:f8b0:400c:c03::1a', '2001:470:e5bf:dead:4957:2174:e82c:4887', 25, 63943, '1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=', '1:eJYTW6AOzFLlSUoESovMjnu7rMw='],
  ['tcp', '128.232.110.120', '66.35.250.204', 34855, 80, '1:LQU9qZlK+B5F3KDmev6m5PMibrg=', '1:3V71V58M3Ksw/yuFALMcW0LAHvc='],
  ['tcp', '66.35.250.204', '128.232.110.120', 80, 34855, '1:LQU9qZlK+B5F3KDmev6m5PMibrg=', '1:3V71V58M3Ksw/yuFALMcW0LAHvc='],
  ['udp', '192.168.1.52', '8.8.8.8', 54585, 53, '1:d/FP5EW3wiY1vCndhwleRRKHowQ=', '1:Q9We8WO3piVF8yEQBNJF4uiSVrI='],
  ['udp', '8.8.8.8', '192.168.1.52', 53, 54585, '1:d/FP5EW3wiY1vCndhwleRRKHowQ=', '1:Q9We8WO3piVF8yEQBNJF4uiSVrI='],
];

describe('Community ID v1', () => {
  it.each(BASELINE)('%s %s → %s (%d → %d) matches the spec baseline, seed 0 and seed 1', (proto, saddr, daddr, sport, dport, seed0, seed1) => {
    expect(communityId(saddr, sport, daddr, dport, proto)).toBe(seed0);
    expect(communityId(saddr, sport, daddr, dport, proto, 1)).toBe(seed1);
  });

  it('equal IPs: the ports decide the order (spec README), so both directions hash alike', () => {
    const a = communityId('10.0.0.1', 1234, '10.0.0.1', 80, 'tcp');
    expect(a).toBe(communityId('10.0.0.1', 80, '10.0.0.1', 1234, 'tcp'));
    expect(a).toMatch(/^1:[A-Za-z0-9+/]{27}=$/);
  });

  it('an IPv4-mapped IPv6 peer hashes as its IPv4 address', () => {
    expect(communityId('::ffff:128.232.110.120', 34855, '66.35.250.204', 80, 'tcp')).toBe('1:LQU9qZlK+B5F3KDmev6m5PMibrg=');
  });

  it('gives null for names, mixed families, bad ports and other transports', () => {
    expect(communityId('example.com', 1, '10.0.0.1', 2, 'tcp')).toBeNull();
    expect(communityId('10.0.0.1', 1, '2001:db8::1', 2, 'tcp')).toBeNull();
    expect(communityId('10.0.0.1', 70000, '10.0.0.2', 2, 'tcp')).toBeNull();
    expect(communityId('10.0.0.1', 1, '10.0.0.2', 2, 'sctp')).toBeNull();
  });

  it('reads every IPv6 spelling to the same 16 bytes', () => {
    expect(Buffer.from(ipBytes('2001:db8::1') ?? []).toString('hex')).toBe('20010db8000000000000000000000001');
    expect(Buffer.from(ipBytes('::') ?? []).toString('hex')).toBe('0'.repeat(32));
    expect(Buffer.from(ipBytes('fe80::1%eth0') ?? []).toString('hex')).toBe(`fe80${'0'.repeat(26)}01`);
    expect(Buffer.from(ipBytes('::ffff:1.2.3.4') ?? []).toString('hex')).toBe(`${'0'.repeat(20)}ffff01020304`);
  });

  it('never throws and is direction-free for any address pair', () => {
    const ip = fc.oneof(fc.ipV4(), fc.ipV6(), fc.string());
    fc.assert(
      fc.property(ip, ip, fc.integer({ min: -1, max: 70000 }), fc.integer({ min: -1, max: 70000 }), (a, b, p, q) => {
        expect(communityId(a, p, b, q, 'udp')).toBe(communityId(b, q, a, p, 'udp'));
      }),
      { numRuns: 2000 },
    );
  });
});

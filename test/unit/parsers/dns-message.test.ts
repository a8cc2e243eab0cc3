import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DnsParseError,
  RCODE,
  decodeDnsMessage,
  decodeDnsQuery,
  encodeBadVers,
  encodeErrorResponse,
  encodeFormErr,
  encodeSinkholeResponse,
  encodeTruncated,
  inspectDnsMessage,
  ipv6Bytes,
  prepareSinkhole,
  readRecordLayout,
  typeName,
  typeNumber,
  withId,
} from '../../../src/parsers/dns-message.js';
import { createDnsFrameReader, frameDnsMessage, DnsFrameError } from '../../../src/parsers/dns-framing.js';
import { formatIPv6Bytes } from '../../../src/net/address-class.js';

function query(name: string, type: dnsPacket.RecordType = 'A', opts: { id?: number; edns?: boolean; dnssecOk?: boolean } = {}): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: opts.id ?? 0x1234,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    additionals: opts.edns === true ? [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: opts.dnssecOk === true ? dnsPacket.DNSSEC_OK : 0, flag_do: opts.dnssecOk === true, options: [] }] : [],
  });
}

/** Header bytes with the given counts and nothing after (or `rest`). */
function header(counts: { qd?: number; an?: number; ns?: number; ar?: number; flags?: number }, rest: number[] = []): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0xbeef, 0);
  h.writeUInt16BE(counts.flags ?? 0x0100, 2);
  h.writeUInt16BE(counts.qd ?? 0, 4);
  h.writeUInt16BE(counts.an ?? 0, 6);
  h.writeUInt16BE(counts.ns ?? 0, 8);
  h.writeUInt16BE(counts.ar ?? 0, 10);
  return Buffer.concat([h, Buffer.from(rest)]);
}

function parseError(fn: () => unknown): DnsParseError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DnsParseError) return err;
    throw err;
  }
  throw new Error('expected a DnsParseError');
}

describe('decodeDnsQuery', () => {
  it('reads the question lower-cased without a trailing dot, and the OPT record', () => {
    const q = decodeDnsQuery(query('WWW.Example.COM', 'AAAA', { edns: true, dnssecOk: true }));
    expect(q.question).toEqual({ name: 'www.example.com', type: 28, qclass: 1 });
    expect(q.header).toMatchObject({ id: 0x1234, isResponse: false, recursionDesired: true, qdcount: 1, arcount: 1 });
    expect(q.opt).toEqual({ udpSize: 4096, version: 0, dnssecOk: true, extendedRcode: 0, clientSubnet: false });
  });

  it('notices an EDNS Client Subnet option (RFC 7871) among other options, and an option list that overruns', () => {
    const withOptions = (options: dnsPacket.PacketOpt[]): Buffer =>
      dnsPacket.encode({
        type: 'query',
        id: 1,
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [{ type: 'A', name: 'ecs.example', class: 'IN' }],
        additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options }],
      });
    const padding: dnsPacket.PacketOpt = { code: 12, length: 8 };
    const ecs: dnsPacket.PacketOpt = { code: 8, ip: '192.0.2.0', sourcePrefixLength: 24 };
    expect(decodeDnsQuery(withOptions([padding])).opt?.clientSubnet).toBe(false);
    expect(decodeDnsQuery(withOptions([padding, ecs])).opt?.clientSubnet).toBe(true);
    // An option claiming more bytes than its OPT holds: unreadable, so treated as possibly ECS.
    const bad = withOptions([padding]);
    bad.writeUInt16BE(200, bad.length - 10);
    expect(decodeDnsQuery(bad).opt?.clientSubnet).toBe(true);
  });

  it('escapes bytes that are not letters, digits, - or _ as \\DDD (RFC 4343), so a dot inside a label stays one label', () => {
    const raw = header({ qd: 1 }, [3, 0x61, 0x2e, 0x62, 7, ...Buffer.from('example'), 3, ...Buffer.from('com'), 0, 0, 1, 0, 1]);
    expect(decodeDnsQuery(raw).question.name).toBe('a\\046b.example.com');
  });

  it.each([
    ['a response', header({ qd: 1, flags: 0x8100 }, [0, 0, 1, 0, 1]), 'header flags', true],
    ['no question', header({}), 'header QDCOUNT', true],
    ['two questions', header({ qd: 2 }, [0, 0, 1, 0, 1, 0, 0, 1, 0, 1]), 'header QDCOUNT', true],
    ['a NOTIFY (opcode 4)', header({ qd: 1, flags: 0x2000 }, [0, 0, 1, 0, 1]), 'header opcode', true],
    ['a short header', Buffer.from([0xbe, 0xef, 1]), 'header', false],
  ])('refuses %s, naming the field', (_intent, raw, field, hasHeader) => {
    const err = parseError(() => decodeDnsQuery(raw));
    expect(err.field).toBe(field);
    expect(err.header !== null).toBe(hasHeader);
  });
});

describe('inspectDnsMessage: hostile input', () => {
  it('refuses header counts the bytes cannot hold, before decoding anything (24 bytes claiming 65535 answers)', () => {
    const raw = header({ qd: 1, an: 0xffff }, [0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect(raw.length).toBe(24);
    const err = parseError(() => inspectDnsMessage(raw));
    expect(err.field).toBe('header counts');
    expect(err.message).toMatch(/AN=65535 NS=0 AR=0 need at least \d+ bytes, the message has 24/);
    expect(() => decodeDnsMessage(raw)).toThrow(DnsParseError);
  });

  it('refuses a compression pointer to itself', () => {
    const raw = header({ qd: 1 }, [0xc0, 12, 0, 1, 0, 1]);
    const err = parseError(() => inspectDnsMessage(raw));
    expect(err).toMatchObject({ offset: 12, field: 'question 0 name' });
    expect(err.message).toMatch(/does not point to an earlier name/);
  });

  it('refuses a two-pointer loop', () => {
    // question name: label "a", pointer to 12 (its own start) — a loop through an earlier label.
    const raw = header({ qd: 1 }, [1, 0x61, 0xc0, 12, 0, 1, 0, 1]);
    expect(parseError(() => inspectDnsMessage(raw)).message).toMatch(/compression pointer to 12/);
  });

  it('refuses a forward pointer', () => {
    const raw = header({ qd: 1 }, [0xc0, 20, 0, 1, 0, 1, 0, 0, 0]);
    expect(parseError(() => inspectDnsMessage(raw)).field).toBe('question 0 name');
  });

  it('follows a legitimate backward pointer in an answer', () => {
    const resp = dnsPacket.encode({
      type: 'response',
      id: 1,
      questions: [{ type: 'A', name: 'a.example', class: 'IN' }],
      answers: [{ type: 'A', name: 'a.example', ttl: 60, data: '192.0.2.1' }, { type: 'CNAME', name: 'a.example', ttl: 5, data: 'b.example' }],
    });
    expect(inspectDnsMessage(resp, { withAnswers: true }).answers).toEqual([
      { name: 'a.example', type: 'A', ttl: 60, data: '192.0.2.1' },
      { name: 'a.example', type: 'CNAME', ttl: 5, data: 'b.example' },
    ]);
  });

  it('refuses a name longer than 255 octets (RFC 1035 §3.1), however compressed', () => {
    const labels: number[] = [];
    for (let i = 0; i < 5; i++) labels.push(63, ...Buffer.alloc(63, 0x61));
    const raw = header({ qd: 1 }, [...labels, 0, 0, 1, 0, 1]);
    expect(parseError(() => inspectDnsMessage(raw)).message).toMatch(/longer than 255 octets/);
  });

  it.each([
    ['truncated inside a label', header({ qd: 1 }, [7, 0x61, 0x62])],
    ['truncated before type/class', header({ qd: 1 }, [1, 0x61, 0])],
    ['rdata longer than the message', header({ an: 1 }, [0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 200, 1, 2, 3, 4])],
    ['extended label type 0x40', header({ qd: 1 }, [0x41, 0, 0, 1, 0, 1])],
    ['two OPT records', header({ qd: 1, ar: 2 }, [0, 0, 1, 0, 1, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0])],
    ['OPT in the answer section', header({ qd: 1, an: 1 }, [0, 0, 1, 0, 1, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0])],
  ])('refuses %s', (_intent, raw) => {
    expect(() => inspectDnsMessage(raw)).toThrow(DnsParseError);
  });

  it('ignores bytes after the last record', () => {
    expect(decodeDnsQuery(Buffer.concat([query('x.test'), Buffer.from([0, 0, 0])])).question.name).toBe('x.test');
  });

  it('property: random bytes give a view or a DnsParseError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        try {
          inspectDnsMessage(bytes, { withAnswers: true });
        } catch (err) {
          if (!(err instanceof DnsParseError)) throw err;
        }
        try {
          decodeDnsMessage(bytes);
        } catch (err) {
          if (!(err instanceof DnsParseError)) throw err;
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('property: mutated real messages give a view or a DnsParseError, never anything else', () => {
    const seeds = [
      query('www.example.com', 'A', { edns: true }),
      dnsPacket.encode({
        type: 'response',
        id: 7,
        flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
        questions: [{ type: 'MX', name: 'mail.example.org', class: 'IN' }],
        answers: [
          { type: 'MX', name: 'mail.example.org', ttl: 300, data: { preference: 10, exchange: 'mx1.example.org' } },
          { type: 'TXT', name: 'mail.example.org', ttl: 300, data: ['v=spf1 -all', 'x'] },
          { type: 'AAAA', name: 'mx1.example.org', ttl: 300, data: '2001:db8::25' },
        ],
        authorities: [{ type: 'NS', name: 'example.org', ttl: 300, data: 'ns1.example.org' }],
      }),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        (seed, edits, cut) => {
          const bytes = Buffer.from(seed);
          for (const [at, value] of edits) bytes[at % bytes.length] = value;
          const mutated = bytes.subarray(0, cut % 3 === 0 ? cut % (bytes.length + 1) : bytes.length);
          for (const fn of [() => inspectDnsMessage(mutated, { withAnswers: true }), () => decodeDnsMessage(mutated), () => decodeDnsQuery(mutated), () => readRecordLayout(mutated)]) {
            try {
              fn();
            } catch (err) {
              if (!(err instanceof DnsParseError)) throw err;
            }
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('readRecordLayout (for the answer cache)', () => {
  const resp = dnsPacket.encode({
    type: 'response',
    id: 7,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | 3,
    questions: [{ type: 'A', name: 'gone.example', class: 'IN' }],
    answers: [{ type: 'CNAME', name: 'gone.example', ttl: 600, data: 'x.example' }],
    authorities: [{ type: 'SOA', name: 'example', ttl: 900, data: { mname: 'ns.example', rname: 'h.example', serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 120 } }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [{ code: 12, length: 4 }] }],
  });

  it('finds every TTL but the OPT’s, the smallest, the SOA MINIMUM (RFC 2308), the OPT and the end', () => {
    const layout = readRecordLayout(Buffer.concat([resp, Buffer.from([0, 0])]));
    expect(layout.ttlOffsets.map((at) => resp.readUInt32BE(at))).toEqual([600, 900]);
    expect(layout).toMatchObject({ minTtl: 600, soaMinimum: 120, rcode: 3, end: resp.length, signed: false, questions: [{ name: 'gone.example', type: 1, qclass: 1 }] });
    expect(layout.opt).toEqual({ rdlengthAt: resp.length - 10, end: resp.length });
  });

  it('counts a TTL with the top bit set as 0 (RFC 2181 §8), and notices a signature record', () => {
    const bytes = Buffer.from(resp);
    const first = readRecordLayout(bytes).ttlOffsets[0] as number;
    bytes.writeUInt32BE(0x80000001, first);
    expect(readRecordLayout(bytes).minTtl).toBe(0);
    const sig = Buffer.alloc(15);
    sig.writeUInt16BE(250, 1);
    sig.writeUInt16BE(255, 3);
    sig.writeUInt16BE(4, 9);
    const signed = Buffer.concat([resp, sig]);
    signed.writeUInt16BE(signed.readUInt16BE(10) + 1, 10);
    expect(readRecordLayout(signed).signed).toBe(true);
  });

  it('refuses what inspectDnsMessage refuses', () => {
    expect(() => readRecordLayout(header({ qd: 1, an: 0xffff }, [0, 0, 1, 0, 1]))).toThrow(DnsParseError);
  });
});

describe('encoders', () => {
  it('NXDOMAIN echoes the ID, RD and the question, with an OPT when the query had one (RFC 6891 §7)', () => {
    const raw = query('blocked.example', 'A', { id: 4242, edns: true, dnssecOk: true });
    const reply = dnsPacket.decode(encodeErrorResponse(raw, decodeDnsQuery(raw), RCODE.NXDOMAIN));
    expect(reply).toMatchObject({ id: 4242, type: 'response', rcode: 'NXDOMAIN', flag_rd: true, flag_ra: true });
    expect(reply.questions).toEqual([{ name: 'blocked.example', type: 'A', class: 'IN' }]);
    expect(reply.additionals).toHaveLength(1);
    expect(reply.additionals?.[0]).toMatchObject({ type: 'OPT', udpPayloadSize: 1232, flag_do: true });
  });

  it.each([
    ['SERVFAIL', RCODE.SERVFAIL],
    ['REFUSED', RCODE.REFUSED],
    ['FORMERR', RCODE.FORMERR],
  ])('%s without EDNS has no OPT', (name, rcode) => {
    const raw = query('x.example');
    const reply = dnsPacket.decode(encodeErrorResponse(raw, decodeDnsQuery(raw), rcode));
    expect((reply as { rcode?: string }).rcode).toBe(name);
    expect(reply.additionals).toEqual([]);
  });

  it('FORMERR for an unreadable body echoes the header ID only', () => {
    const raw = header({ qd: 1 }, [0xc0, 12, 0, 1, 0, 1]);
    const err = parseError(() => decodeDnsQuery(raw));
    if (err.header === null) throw new Error('header expected');
    const reply = dnsPacket.decode(encodeFormErr(err.header));
    expect(reply).toMatchObject({ id: 0xbeef, rcode: 'FORMERR', type: 'response' });
    expect(reply.questions).toEqual([]);
  });

  it('BADVERS carries the extended RCODE in the OPT (RFC 6891 §6.1.3)', () => {
    const raw = query('x.example', 'A', { edns: true });
    const out = encodeBadVers(raw, decodeDnsQuery(raw));
    expect(inspectDnsMessage(out).rcode).toBe(16);
  });

  it.each([
    ['0.0.0.0', 'A', { type: 'A', data: '0.0.0.0' }],
    ['0.0.0.0', 'AAAA', { type: 'AAAA', data: '::' }],
    ['192.0.2.66', 'A', { type: 'A', data: '192.0.2.66' }],
    ['192.0.2.66', 'AAAA', null],
    ['192.0.2.66', 'TXT', null],
    ['2001:db8::66', 'AAAA', { type: 'AAAA', data: '2001:db8::66' }],
    ['2001:db8::66', 'A', null],
    ['::', 'A', { type: 'A', data: '0.0.0.0' }],
  ] as const)('sinkhole %s answers %s with %j', (address, type, expected) => {
    const raw = query('Evil.Example', type, { edns: true });
    const reply = dnsPacket.decode(encodeSinkholeResponse(raw, decodeDnsQuery(raw), prepareSinkhole(address), 60));
    expect((reply as { rcode?: string }).rcode).toBe('NOERROR');
    expect(reply.id).toBe(0x1234);
    expect(reply.questions?.[0]?.name).toBe('Evil.Example'); // the question as the client sent it (0x20 case kept)
    if (expected === null) expect(reply.answers).toEqual([]);
    else expect(reply.answers).toEqual([{ name: 'Evil.Example', type: expected.type, class: 'IN', ttl: 60, data: expected.data, flush: false }]);
    expect(reply.additionals?.[0]?.type).toBe('OPT');
  });

  it('a truncated answer keeps the question and sets TC', () => {
    const raw = query('big.example', 'TXT');
    const q = decodeDnsQuery(raw);
    const resp = dnsPacket.encode({ type: 'response', id: 0x1234, questions: [{ type: 'TXT', name: 'big.example' }], answers: [] });
    const out = dnsPacket.decode(encodeTruncated(raw, q, inspectDnsMessage(resp)));
    expect(out).toMatchObject({ flag_tc: true, id: 0x1234 });
    expect(out.questions).toHaveLength(1);
  });

  it('withId changes the ID only', () => {
    const raw = query('x.example');
    const copy = withId(raw, 0xabcd);
    expect(copy.readUInt16BE(0)).toBe(0xabcd);
    expect(copy.subarray(2)).toEqual(raw.subarray(2));
    expect(raw.readUInt16BE(0)).toBe(0x1234);
  });
});

describe('helpers', () => {
  it.each([
    ['2001:db8::1', '2001:db8::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
  ])('IPv6 %s round-trips as %s (RFC 5952)', (text, expected) => {
    expect(formatIPv6Bytes(ipv6Bytes(text), 0)).toBe(expected);
  });

  it('names types', () => {
    expect(typeName(16)).toBe('TXT');
    expect(typeName(65280)).toBe('TYPE65280');
    expect(typeNumber('txt')).toBe(16);
    expect(typeNumber('TYPE65')).toBe(65);
    expect(typeNumber('BOGUS')).toBeUndefined();
  });
});

describe('TCP framing (RFC 1035 §4.2.2)', () => {
  it('splits pipelined messages and joins a message split across reads', () => {
    const a = query('a.example');
    const b = query('b.example');
    const stream = Buffer.concat([frameDnsMessage(a), frameDnsMessage(b)]);
    const reader = createDnsFrameReader();
    const out: Buffer[] = [];
    for (let i = 0; i < stream.length; i += 7) out.push(...reader.push(stream.subarray(i, i + 7)));
    expect(out.map((m) => decodeDnsQuery(m).question.name)).toEqual(['a.example', 'b.example']);
    expect(reader.buffered).toBe(0);
  });

  it('refuses a length over the limit and a zero length', () => {
    expect(() => createDnsFrameReader(100).push(Buffer.from([0x01, 0x00]))).toThrow(DnsFrameError);
    expect(() => createDnsFrameReader().push(Buffer.from([0, 0]))).toThrow(DnsFrameError);
  });
});

import { describe, it, expect } from 'vitest';
import {
  MAX_SERVER_FLIGHT_BYTES,
  negotiatedVersion,
  parseServerHello,
  readServerFlight,
  serverFlightObserver,
} from '../../../src/parsers/server-hello.js';
import type { ServerFlightDecision, ServerFlightResult } from '../../../src/parsers/server-hello.js';
import {
  HRR_RANDOM,
  TLS12_HELLO,
  TLS13_HELLO,
  certificateBody,
  frameRecords,
  handshakeMessage,
  serverHelloBody,
} from '../../helpers/pcap-server-flights.js';
import type { ServerHelloSpec } from '../../helpers/pcap-server-flights.js';

const CERT_A = Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x07]);
const CERT_B = Uint8Array.from([0x30, 0x04, 0x02, 0x02, 0x01, 0x00]);

const helloMsg = (spec: ServerHelloSpec): number[] => handshakeMessage(2, serverHelloBody(spec));
const certMsg = (ders: Uint8Array[]): number[] => handshakeMessage(11, certificateBody(ders));
const bytes = (...parts: number[][]): Uint8Array => Uint8Array.from(parts.flat());

function completeOf(r: ServerFlightResult): Extract<ServerFlightResult, { kind: 'complete' }> {
  if (r.kind !== 'complete') throw new Error(`expected complete, got ${r.kind}${r.kind === 'invalid' ? `: ${r.error.message}` : ''}`);
  return r;
}

function invalidOf(r: ServerFlightResult): Extract<ServerFlightResult, { kind: 'invalid' }> {
  if (r.kind !== 'invalid') throw new Error(`expected invalid, got ${r.kind}`);
  return r;
}

/** A TLS 1.2 flight: ServerHello + Certificate (2 certs) + ServerHelloDone in one record. */
const TLS12_FLIGHT = bytes(frameRecords([...helloMsg(TLS12_HELLO), ...certMsg([CERT_A, CERT_B]), ...handshakeMessage(14, [])]));

describe('parseServerHello', () => {
  it('reads every field of a TLS 1.3 ServerHello (RFC 8446 §4.1.3)', () => {
    const h = parseServerHello(Uint8Array.from(serverHelloBody(TLS13_HELLO)));
    expect(h.legacyVersion).toBe(0x0303);
    expect(h.selectedVersion).toBe(0x0304);
    expect(negotiatedVersion(h)).toBe(0x0304);
    expect(h.cipherSuite).toBe(0x1301);
    expect(h.compressionMethod).toBe(0);
    expect(h.sessionId).toHaveLength(32);
    expect(h.random[0]).toBe(1);
    expect(h.extensions.map((e) => e.type)).toEqual([0x002b, 0x0033]);
    expect([...(h.extensions[1]?.data ?? [])].slice(0, 4)).toEqual([0x00, 0x1d, 0x00, 0x20]);
    expect(h.alpn).toBeNull();
    expect(h.helloRetryRequest).toBe(false);
  });

  it('reads the chosen ALPN and keeps extensions in wire order', () => {
    const h = parseServerHello(Uint8Array.from(serverHelloBody(TLS12_HELLO)));
    expect(h.alpn).toBe('h2');
    expect(h.selectedVersion).toBeNull();
    expect(negotiatedVersion(h)).toBe(0x0303);
    expect(h.extensions.map((e) => e.type)).toEqual([0xff01, 0x000b, 0x0023, 0x0010]);
  });

  it('accepts a TLS 1.0 ServerHello without an extensions block (RFC 5246 §7.4.1.3)', () => {
    const h = parseServerHello(Uint8Array.from(serverHelloBody({ legacyVersion: 0x0301, cipherSuite: 0x0005, extensions: null })));
    expect(h.extensions).toEqual([]);
    expect(negotiatedVersion(h)).toBe(0x0301);
  });

  it('marks a HelloRetryRequest by its special random', () => {
    const h = parseServerHello(Uint8Array.from(serverHelloBody({ ...TLS13_HELLO, random: HRR_RANDOM })));
    expect(h.helloRetryRequest).toBe(true);
  });

  it.each([
    ['duplicate extension', { cipherSuite: 1, extensions: [{ type: 0x0b, data: [1, 0] }, { type: 0x0b, data: [1, 0] }] }, 'extension.type'],
    ['two ALPN names', { cipherSuite: 1, extensions: [{ type: 0x10, data: [0, 6, 2, 0x68, 0x32, 2, 0x68, 0x33] }] }, 'alpn.protocol_name_list'],
    ['supported_versions with a list', { cipherSuite: 1, extensions: [{ type: 0x2b, data: [2, 3, 4] }] }, 'supported_versions'],
    ['session id over 32 bytes', { cipherSuite: 1, sessionId: Array.from({ length: 33 }, () => 0) }, 'server_hello.legacy_session_id_echo'],
  ] as const)('refuses %s, naming the field', (_name, spec, field) => {
    expect(() => parseServerHello(Uint8Array.from(serverHelloBody(spec as ServerHelloSpec)))).toThrow(expect.objectContaining({ field }));
  });

  it('refuses trailing bytes after the extensions', () => {
    const body = [...serverHelloBody(TLS12_HELLO), 0];
    expect(() => parseServerHello(Uint8Array.from(body))).toThrow(/server_hello at offset \d+: 1 unexpected trailing byte/);
  });
});

describe('readServerFlight', () => {
  it('decides TLS 1.3 as soon as the ServerHello is complete, with no certificates (they are encrypted)', () => {
    const flight = bytes(frameRecords(helloMsg(TLS13_HELLO)), [0x14, 3, 3, 0, 1, 1], [0x17, 3, 3, 0, 2, 9, 9]);
    const r = completeOf(readServerFlight(flight));
    expect(r.certificates).toBeNull();
    expect(r.certificateError).toBeNull();
    expect(r.consumed).toBe(frameRecords(helloMsg(TLS13_HELLO)).length);
    // The hello alone is enough: no need to wait for the ChangeCipherSpec.
    expect(readServerFlight(flight.subarray(0, r.consumed)).kind).toBe('complete');
  });

  it('returns the TLS 1.2 Certificate list, leaf first', () => {
    const r = completeOf(readServerFlight(TLS12_FLIGHT));
    expect(r.hello.cipherSuite).toBe(0xc02f);
    expect(r.certificates?.map((c) => [...c])).toEqual([[...CERT_A], [...CERT_B]]);
    expect(r.consumed).toBe(TLS12_FLIGHT.length);
  });

  it('reassembles messages split across records and several messages in one record', () => {
    const hs = [...helloMsg(TLS12_HELLO), ...certMsg([CERT_A, CERT_B])];
    for (const sizes of [[1], [3, 1, 1], [10, 50], [hs.length - 1], [2, 2, 2, 2, 2, 2, 2, 2, 2, 2]]) {
      const r = completeOf(readServerFlight(bytes(frameRecords(hs, sizes))));
      expect(r.hello.alpn).toBe('h2');
      expect(r.certificates?.length).toBe(2);
    }
  });

  it('says incomplete for every prefix of a TLS 1.2 flight until the Certificate is complete', () => {
    const hs = [...helloMsg(TLS12_HELLO), ...certMsg([CERT_A, CERT_B])];
    const flight = bytes(frameRecords(hs, [20]));
    for (let n = 0; n < flight.length; n++) expect(readServerFlight(flight.subarray(0, n)).kind).toBe('incomplete');
    expect(readServerFlight(flight).kind).toBe('complete');
  });

  it('completes without certificates when the next message is not a Certificate (PSK, anonymous)', () => {
    const r = completeOf(readServerFlight(bytes(frameRecords([...helloMsg(TLS12_HELLO), ...handshakeMessage(12, [1, 2, 3])]))));
    expect(r.certificates).toBeNull();
    expect(r.certificateError).toBeNull();
  });

  it('completes without certificates for a resumed TLS 1.2 session (ChangeCipherSpec follows)', () => {
    const r = completeOf(readServerFlight(bytes(frameRecords(helloMsg(TLS12_HELLO)), [0x14, 3, 3, 0, 1, 1])));
    expect(r.certificates).toBeNull();
  });

  it('waits after a TLS 1.2 ServerHello that ends its record', () => {
    expect(readServerFlight(bytes(frameRecords(helloMsg(TLS12_HELLO)))).kind).toBe('incomplete');
  });

  it('decides a HelloRetryRequest at once', () => {
    const r = completeOf(readServerFlight(bytes(frameRecords(helloMsg({ ...TLS13_HELLO, random: HRR_RANDOM })))));
    expect(r.hello.helloRetryRequest).toBe(true);
    expect(r.certificates).toBeNull();
  });

  it('keeps the ServerHello when the Certificate message is broken, and says why', () => {
    const broken = handshakeMessage(11, [0, 0, 9, 0, 0, 2, 1]); // the list claims 9 bytes, has 4
    const r = completeOf(readServerFlight(bytes(frameRecords([...helloMsg(TLS12_HELLO), ...broken]))));
    expect(r.certificates).toBeNull();
    expect(r.certificateError).toMatch(/^invalid certificate.certificate_list at offset \d+/);
  });

  it('keeps the ServerHello when the Certificate message exceeds the cap', () => {
    const hs = [...helloMsg(TLS12_HELLO), 11, 0x01, 0x00, 0x00]; // a 64 KiB Certificate announced
    const r = completeOf(readServerFlight(bytes(frameRecords(hs))));
    expect(r.certificates).toBeNull();
    expect(r.certificateError).toMatch(/exceeds the 65536-byte cap/);
  });

  it('names an alert instead of a ServerHello', () => {
    const r = invalidOf(readServerFlight(Uint8Array.from([0x15, 3, 3, 0, 2, 2, 40])));
    expect(r.error.message).toBe('invalid record.content_type at offset 0: the server sent an alert (level 2, description 40) instead of a ServerHello');
  });

  it('refuses a plain-text answer from its first byte', () => {
    const r = invalidOf(readServerFlight(Uint8Array.from(Buffer.from('HTTP/1.1 400 Bad Request\r\n'))));
    expect(r.error.field).toBe('record.content_type');
    expect(r.error.message).toMatch(/first byte 0x48/);
  });

  it('refuses a first handshake message that is not a ServerHello as soon as its type byte arrives', () => {
    const r = invalidOf(readServerFlight(Uint8Array.from([0x16, 3, 3, 0x40, 0x00, 11])));
    expect(r.error.message).toBe('invalid handshake.msg_type at offset 5: expected server_hello (2), got 11');
  });

  it('refuses records that are too long, zero-length, or from another major version', () => {
    expect(invalidOf(readServerFlight(Uint8Array.from([0x16, 3, 3, 0x40, 0x01]))).error.message).toMatch(/record.length at offset 3: 16385 exceeds 2\^14/);
    expect(invalidOf(readServerFlight(Uint8Array.from([0x16, 3, 3, 0, 0]))).error.message).toMatch(/zero-length/);
    expect(invalidOf(readServerFlight(Uint8Array.from([0x16, 2, 0, 0, 4]))).error.field).toBe('record.legacy_record_version');
  });

  it('reports a broken ServerHello with its offset in the caller buffer', () => {
    const msg = helloMsg(TLS12_HELLO);
    msg[4 + 2 + 32 + 1 + 2 + 1 + 1] = 0xff; // extensions length low byte → longer than the message
    const r = invalidOf(readServerFlight(bytes(frameRecords(msg, [10]))));
    expect(r.error.field).toBe('server_hello.extensions');
    // The cursor stops after the 2-byte length (body offset 40, handshake offset 44); two record headers
    // (5 bytes each) come before it in the caller's buffer.
    expect(r.error.offset).toBe(5 + 5 + 4 + 40);
  });

  it('refuses more than 256 records before the ServerHello is complete', () => {
    const hs = helloMsg({ ...TLS12_HELLO, extensions: [{ type: 0xfe00, data: Array.from({ length: 400 }, () => 0) }] });
    const r = invalidOf(readServerFlight(bytes(frameRecords(hs, Array.from({ length: 300 }, () => 1)))));
    expect(r.error.message).toMatch(/more than 256 records/);
  });
});

describe('serverFlightObserver with throughRetry', () => {
  it('skips a HelloRetryRequest (and the ChangeCipherSpec after it) and decides on the real ServerHello, in any chunking', () => {
    const hrr = frameRecords(helloMsg({ ...TLS13_HELLO, random: HRR_RANDOM, cipherSuite: 0x1302 }));
    const ccs = frameRecords([0x01], [], 0x14);
    const real = frameRecords(helloMsg({ ...TLS13_HELLO, cipherSuite: 0x1301 }));
    const all = bytes(hrr, ccs, real);
    for (const split of [[all.length], [hrr.length, all.length], [hrr.length + ccs.length, all.length], [...all.keys()].map((i) => i + 1)]) {
      const results: ServerFlightDecision[] = [];
      const obs = serverFlightObserver((r) => results.push(r), { throughRetry: true });
      let from = 0;
      for (const to of split) {
        obs.push(all.subarray(from, to));
        from = to;
      }
      expect(results).toHaveLength(1);
      const r = completeOf(results[0] as ServerFlightResult);
      expect(r.hello.helloRetryRequest).toBe(false);
      expect(r.hello.cipherSuite).toBe(0x1301);
    }
    // Without the option the HelloRetryRequest itself is the decision.
    const plain: ServerFlightDecision[] = [];
    serverFlightObserver((r) => plain.push(r)).push(all);
    expect(completeOf(plain[0] as ServerFlightResult).hello.helloRetryRequest).toBe(true);
  });
});

describe('serverFlightObserver', () => {
  function observe(chunks: Uint8Array[]): ServerFlightDecision[] {
    const results: ServerFlightDecision[] = [];
    const obs = serverFlightObserver((r) => results.push(r));
    for (const c of chunks) obs.push(c);
    obs.end();
    expect(obs.done).toBe(true);
    return results;
  }

  it('gives the same result byte by byte as in one piece, once', () => {
    const whole = observe([TLS12_FLIGHT]);
    const dribbled = observe([...TLS12_FLIGHT].map((b) => Uint8Array.of(b)));
    expect(whole).toHaveLength(1);
    expect(dribbled).toHaveLength(1);
    const a = completeOf(whole[0] as ServerFlightResult);
    const b = completeOf(dribbled[0] as ServerFlightResult);
    expect(b.hello.extensions.map((e) => [e.type, [...e.data]])).toEqual(a.hello.extensions.map((e) => [e.type, [...e.data]]));
    expect(b.certificates?.map((c) => [...c])).toEqual([[...CERT_A], [...CERT_B]]);
  });

  it('results do not share the caller buffer: later writes to the chunk do not change them', () => {
    const chunk = TLS12_FLIGHT.slice();
    const [r] = observe([chunk]);
    chunk.fill(0);
    const c = completeOf(r as ServerFlightResult);
    expect(c.hello.cipherSuite).toBe(0xc02f);
    expect([...(c.certificates?.[0] ?? [])]).toEqual([...CERT_A]);
    expect(c.hello.alpn).toBe('h2');
  });

  it('decides invalid when the stream ends early, naming how much arrived', () => {
    const [r] = observe([TLS12_FLIGHT.subarray(0, 30)]);
    expect(invalidOf(r as ServerFlightResult).error.message).toMatch(/ended after 30 bytes/);
  });

  it('refuses a non-TLS answer on its first chunk', () => {
    const results: ServerFlightDecision[] = [];
    const obs = serverFlightObserver((r) => results.push(r));
    obs.push(Uint8Array.from(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n')));
    expect(obs.done).toBe(true);
    expect(results[0]?.kind).toBe('invalid');
  });

  it('copies at most the cap and decides instead of buffering more', () => {
    // A record header announcing 16 KiB fragments of a never-ending ServerHello.
    const results: ServerFlightDecision[] = [];
    const obs = serverFlightObserver((r) => results.push(r));
    const hugeHello = [2, 0x00, 0xff, 0xff];
    obs.push(Uint8Array.from([0x16, 3, 3, 0x40, 0x00, ...hugeHello]));
    for (let i = 0; i < 100 && !obs.done; i++) obs.push(new Uint8Array(16 * 1024));
    expect(obs.done).toBe(true);
    expect(results).toHaveLength(1);
    expect(invalidOf(results[0] as ServerFlightResult).error.message).toMatch(/65536/);
    obs.push(new Uint8Array(10));
    expect(results).toHaveLength(1);
    expect(MAX_SERVER_FLIGHT_BYTES).toBe(65536);
  });
});

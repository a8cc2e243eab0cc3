import { describe, it, expect } from 'vitest';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello, readClientHello } from '../../../src/parsers/client-hello.js';
import type { ClientHello, ReadResult } from '../../../src/parsers/client-hello.js';
import {
  SPEC_EXAMPLE,
  buildHandshake,
  buildHelloBody,
  buildRecord,
  ext,
  frameRecords,
  frameRecordsAt,
  hex,
  loadCaptureRows,
  loadVectorRows,
  u16,
  vec16,
} from './hello-builder.js';

function complete(result: ReadResult): { hello: ClientHello; consumed: number } {
  if (result.kind !== 'complete') throw new Error(`expected complete, got ${JSON.stringify(result)}`);
  return result;
}

function invalidError(result: ReadResult): { field: string; offset: number; message: string } {
  if (result.kind !== 'invalid') throw new Error(`expected invalid, got ${result.kind}`);
  return result.error;
}

const vectors = loadVectorRows();
const badcurveball = vectors.find((r) => r.pcap === 'badcurveball.pcap');
if (badcurveball === undefined) throw new Error('fixture missing');
const chromium = loadCaptureRows().find((r) => r.client === 'chromium');
if (chromium === undefined) throw new Error('fixture missing');

describe('parseClientHello / readClientHello on real hellos', () => {
  it('decodes every field of a real TLS 1.3 hello (badcurveball.pcap)', () => {
    const bytes = hex(badcurveball.record_hex);
    const { hello, consumed } = complete(readClientHello(bytes));
    expect(consumed).toBe(bytes.length);
    expect(hello.legacyVersion).toBe(0x0303);
    expect(hello.random.length).toBe(32);
    expect(hello.sessionId.length).toBe(32);
    expect(hello.cipherSuites.slice(0, 4)).toEqual([0xaaaa, 0x1301, 0x1302, 0x1303]); // GREASE kept in the parse
    expect(hello.compressionMethods).toEqual([0]);
    expect(hello.extensions.map((e) => e.type)).toEqual([
      0x4a4a, 0x0000, 0x0017, 0xff01, 0x000a, 0x000b, 0x0023, 0x0010, 0x0005, 0x000d, 0x0012, 0x0033, 0x002d, 0x002b, 0x001b,
      0x7a7a, 0x0015,
    ]);
    expect(hello.serverName).toBe('bad.curveballtest.com');
    expect(hello.alpn).toEqual(['h2', 'http/1.1']);
    expect(hello.supportedVersions).toEqual([0x2a2a, 0x0304, 0x0303, 0x0302, 0x0301]);
    expect(hello.supportedGroups).toEqual([0xcaca, 0x001d, 0x0017, 0x0018]);
    expect(hello.ecPointFormats).toEqual([0]);
    expect(hello.signatureAlgorithms).toEqual([0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0201]);
    expect(hello.signatureAlgorithmsCert).toBeNull();
    expect(hello.keyShares).toEqual([
      { group: 0xcaca, keyExchangeLength: 1 },
      { group: 0x001d, keyExchangeLength: 32 },
    ]);
    expect(hello.pskKeyExchangeModes).toEqual([1]);
    expect(hello.hasEncryptedClientHello).toBe(false);
  });

  it('sees ECH in a Chromium hello captured on loopback', () => {
    const { hello } = complete(readClientHello(hex(chromium.record_hex)));
    expect(hello.hasEncryptedClientHello).toBe(true);
    expect(hello.serverName).toBe('localhost');
  });

  it('parses all 161 vector hellos completely, consuming exactly their records', () => {
    const failures = vectors.filter((r) => {
      const res = readClientHello(hex(r.record_hex));
      return res.kind !== 'complete' || res.consumed !== r.record_hex.length / 2 || res.hello.serverName !== r.sni;
    });
    expect(failures.map((r) => `${r.pcap}#${r.frame}`)).toEqual([]);
  });

  it('parseClientHello takes the body after the 4-byte handshake header', () => {
    const body = buildHelloBody(SPEC_EXAMPLE);
    const hello = parseClientHello(Uint8Array.from(body));
    expect(hello.serverName).toBe('example.com');
    expect(hello.extensions).toHaveLength(16);
    expect([...(hello.extensions[1]?.data ?? [])]).toEqual(vec16([0, ...vec16([...Buffer.from('example.com')])]));
  });

  it('accepts a hello with no extensions block (RFC 5246 §7.4.1.2)', () => {
    const { hello } = complete(readClientHello(buildRecord({ ciphers: [0x002f, 0x0035] })));
    expect(hello.extensions).toEqual([]);
    expect(hello.serverName).toBeNull();
    expect(hello.alpn).toBeNull();
    expect(hello.supportedVersions).toBeNull();
  });

  it('decodes signature_algorithms_cert separately from signature_algorithms', () => {
    const { hello } = complete(
      readClientHello(buildRecord({ extensions: [ext.signatureAlgorithms(0x0403), ext.signatureAlgorithmsCert(0x0401, 0x0201)] })),
    );
    expect(hello.signatureAlgorithms).toEqual([0x0403]);
    expect(hello.signatureAlgorithmsCert).toEqual([0x0401, 0x0201]);
  });
});

describe('readClientHello framing', () => {
  const handshake = buildHandshake(buildHelloBody(SPEC_EXAMPLE));
  const single = frameRecords(handshake);

  it('reassembles a hello fragmented over several records', () => {
    const multi = frameRecords(handshake, 50);
    expect(multi.length).toBeGreaterThan(single.length + 5 * 3);
    const a = complete(readClientHello(single)).hello;
    const { hello, consumed } = complete(readClientHello(multi));
    expect(consumed).toBe(multi.length);
    expect(hello.extensions.map((e) => e.type)).toEqual(a.extensions.map((e) => e.type));
    expect(hello.cipherSuites).toEqual(a.cipherSuites);
  });

  it('handles a handshake header split across records (1 + 2 + rest)', () => {
    const split = frameRecordsAt(handshake, [1, 2]);
    const { hello, consumed } = complete(readClientHello(split));
    expect(consumed).toBe(split.length);
    expect(hello.serverName).toBe('example.com');
  });

  it('says incomplete for every strict prefix, whatever the record split', () => {
    for (const buf of [single, frameRecords(handshake, 37), frameRecordsAt(handshake, [1, 2, 3])]) {
      for (let n = 0; n < buf.length; n++) {
        expect(readClientHello(buf.subarray(0, n)).kind, `prefix ${n}`).toBe('incomplete');
      }
      expect(readClientHello(buf).kind).toBe('complete');
    }
  });

  it('leaves bytes after the hello records to the caller', () => {
    const withMore = Uint8Array.from([...single, 0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x17, 0x03]);
    expect(complete(readClientHello(withMore)).consumed).toBe(single.length);
  });
});

describe('readClientHello: not TLS', () => {
  it.each([
    ['HTTP request', 'GET / HTTP/1.1\r\n', 'first byte 0x47'],
    ['SSH banner', 'SSH-2.0-OpenSSH', 'first byte 0x53'],
    ['one byte is enough', 'G', 'first byte 0x47'],
  ])('%s', (_name, text, reason) => {
    const r = readClientHello(Uint8Array.from(Buffer.from(text, 'latin1')));
    expect(r.kind).toBe('not-tls');
    if (r.kind === 'not-tls') expect(r.reason).toContain(reason);
  });

  it('decides from the second byte when the record major version is not 3', () => {
    expect(readClientHello(Uint8Array.from([0x16, 0x02])).kind).toBe('not-tls');
    expect(readClientHello(Uint8Array.from([0x16])).kind).toBe('incomplete');
  });

  it('decides from the third byte when the minor version is implausible', () => {
    expect(readClientHello(Uint8Array.from([0x16, 0x03, 0x09])).kind).toBe('not-tls');
    expect(readClientHello(Uint8Array.from([0x16, 0x03, 0x01])).kind).toBe('incomplete');
  });

  it('names the SSL 2.0-compatible hello', () => {
    const r = readClientHello(Uint8Array.from([0x80, 0x2e, 0x01, 0x00, 0x02]));
    expect(r).toEqual({ kind: 'not-tls', reason: 'SSL 2.0-compatible ClientHello is not supported' });
  });
});

describe('readClientHello: invalid, with field and offset', () => {
  const body = buildHelloBody(SPEC_EXAMPLE);

  it('refuses a handshake message that is not a ClientHello as soon as its type byte arrives', () => {
    const serverHello = frameRecords(buildHandshake(body, 2));
    const err = invalidError(readClientHello(serverHello.subarray(0, 6)));
    expect(err.field).toBe('handshake.msg_type');
    expect(err.offset).toBe(5);
  });

  it('refuses zero-length and oversized records', () => {
    expect(invalidError(readClientHello(Uint8Array.from([0x16, 0x03, 0x01, 0x00, 0x00]))).field).toBe('record.length');
    expect(invalidError(readClientHello(Uint8Array.from([0x16, 0x03, 0x01, 0x40, 0x01]))).message).toContain('2^14');
  });

  it('refuses a declared hello larger than the cap before buffering it', () => {
    const r = readClientHello(Uint8Array.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, ...[0x01, 0x00, 0x00]]));
    const err = invalidError(r);
    expect(err.field).toBe('handshake.length');
    expect(err.message).toContain(String(MAX_CLIENT_HELLO_BYTES));
  });

  it('refuses records that exceed the cap in total', () => {
    // A hello of ~60 KiB split into 1-byte records: the record headers push it over 64 KiB.
    const big = buildHandshake(buildHelloBody({ extensions: [{ type: 0x0015, data: new Array<number>(20_000).fill(0) }] }));
    const r = readClientHello(frameRecords(big, 1));
    expect(invalidError(r).message).toContain('cap');
  });

  it('refuses a non-handshake record before the hello is complete', () => {
    const first = frameRecords(buildHandshake(body)).subarray(0, 40);
    const fixed = Uint8Array.from([0x16, 0x03, 0x01, ...u16(35), ...first.subarray(5, 40), 0x17, 0x03, 0x03, 0x00, 0x01, 0x00]);
    const err = invalidError(readClientHello(fixed));
    expect(err.field).toBe('record.content_type');
    expect(err.offset).toBe(40);
  });

  it('refuses duplicate extensions (RFC 8446 §4.2)', () => {
    const r = readClientHello(buildRecord({ extensions: [ext.sni('a.example'), ext.alpn('h2'), ext.sni('b.example')] }));
    expect(invalidError(r).message).toContain('duplicate extension 0x0000');
  });

  it('refuses a session id longer than 32 bytes', () => {
    const r = readClientHello(buildRecord({ sessionId: new Array<number>(33).fill(1) }));
    const err = invalidError(r);
    expect(err.field).toBe('client_hello.legacy_session_id');
    expect(err.offset).toBe(5 + 4 + 34); // record header + handshake header + version + random
  });

  it('refuses an odd-length cipher list', () => {
    // version (2) + random (32) + empty session id (1), then cipher_suites: length 3, three bytes.
    const b = [0x03, 0x03, ...new Array<number>(32).fill(0), 0x00, 0x00, 0x03, 0x13, 0x01, 0x00, 0x01, 0x00];
    const err = invalidError(readClientHello(frameRecords(buildHandshake(b))));
    expect(err.field).toBe('client_hello.cipher_suites');
  });

  it('maps a bad length inside an extension to its offset in the buffer', () => {
    // SNI whose server_name_list length claims more than the extension holds.
    const badSni = { type: 0x0000, data: [0x00, 0x20, 0x00, 0x00, 0x01, 0x61] };
    const rec = buildRecord({ extensions: [badSni] });
    const err = invalidError(readClientHello(rec));
    expect(err.field).toBe('server_name.server_name_list');
    // record(5) + handshake(4) + version(2) + random(32) + sid(1) + ciphers(2+2) + compression(1+1)
    // + extensions length(2) + type(2) + ext length(2) + list length(2) = the list starts at 58.
    expect(err.offset).toBe(58);
    expect(rec[err.offset - 2]).toBe(0x00);
    expect(rec[err.offset - 1]).toBe(0x20);
  });

  it('refuses trailing bytes inside an extension', () => {
    const r = readClientHello(buildRecord({ extensions: [{ type: 0x002b, data: [2, 0x03, 0x04, 0xff] }] }));
    expect(invalidError(r).field).toBe('supported_versions');
  });

  it('refuses bytes after the extensions block inside the hello', () => {
    const b = buildHelloBody({ extensions: [ext.alpn('h2')] });
    const r = readClientHello(frameRecords(buildHandshake([...b, 0x00])));
    expect(invalidError(r).field).toBe('client_hello');
  });

  it('refuses a handshake length too small for any ClientHello', () => {
    const r = readClientHello(Uint8Array.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00]));
    expect(invalidError(r).field).toBe('handshake.length');
  });
});

/**
 * Property tests for the ClientHello reader: whatever bytes arrive, in whatever segmentation, it returns
 * one of its four results quickly and never throws (mitmproxy's test_tls_fuzz.py in spirit).
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { readClientHello } from '../../../src/parsers/client-hello.js';
import type { ReadResult } from '../../../src/parsers/client-hello.js';
import { computeJa3 } from '../../../src/fingerprint/ja3.js';
import { computeJa4 } from '../../../src/fingerprint/ja4.js';
import { SPEC_EXAMPLE, buildHandshake, buildHelloBody, frameRecordsAt, hex, loadCaptureRows, loadVectorRows } from './hello-builder.js';

const KINDS = new Set(['complete', 'incomplete', 'not-tls', 'invalid']);

/** Calls the reader, failing the property if it throws or returns something outside its union. */
function readSafely(buf: Uint8Array): ReadResult {
  let result: ReadResult;
  try {
    result = readClientHello(buf);
  } catch (err) {
    throw new Error(`readClientHello threw: ${String(err)}`, { cause: err });
  }
  expect(KINDS.has(result.kind)).toBe(true);
  if (result.kind === 'complete') {
    expect(result.consumed).toBeGreaterThan(0);
    expect(result.consumed).toBeLessThanOrEqual(buf.length);
  }
  if (result.kind === 'invalid') {
    expect(result.error.offset).toBeGreaterThanOrEqual(0);
    expect(result.error.offset).toBeLessThanOrEqual(buf.length);
    expect(result.error.field.length).toBeGreaterThan(0);
  }
  return result;
}

/** A few valid hellos of different shapes: spec example, real browsers and libraries. */
const vectors = loadVectorRows();
const captures = loadCaptureRows();
const SAMPLES: Uint8Array[] = [
  Uint8Array.from(frameRecordsAt(buildHandshake(buildHelloBody(SPEC_EXAMPLE)), [])),
  hex((vectors.find((r) => r.pcap === 'tls12.pcap') ?? vectors[0])!.record_hex),
  hex((vectors.find((r) => r.pcap === 'https-connect.pcap') ?? vectors[0])!.record_hex),
  hex((captures.find((r) => r.client === 'chromium') ?? captures[0])!.record_hex),
  hex((captures.find((r) => r.client === 'openssl-tls12') ?? captures[0])!.record_hex),
];

/** The handshake message inside a single-record hello. */
function handshakeOf(record: Uint8Array): number[] {
  return [...record.subarray(5)];
}

describe('readClientHello properties', () => {
  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        readSafely(bytes);
      }),
      { numRuns: 3000 },
    );
  });

  it('never throws on random bytes behind a plausible record header', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4 }), fc.uint8Array({ maxLength: 4096 }), (minor, rest) => {
        const buf = Uint8Array.from([0x16, 0x03, minor, (rest.length >> 8) & 0xff, rest.length & 0xff, 0x01, ...rest]);
        readSafely(buf);
      }),
      { numRuns: 3000 },
    );
  });

  it('gives incomplete (never invalid) for every truncation of valid hellos', () => {
    for (const sample of SAMPLES) {
      for (let n = 0; n < sample.length; n++) {
        expect(readSafely(sample.subarray(0, n)).kind).toBe('incomplete');
      }
      expect(readSafely(sample).kind).toBe('complete');
    }
  });

  it('survives any single-byte mutation, and mutated length fields give a result of the union', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: SAMPLES.length - 1 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (which, at, value) => {
        const copy = Uint8Array.from(SAMPLES[which]!);
        copy[at % copy.length] = value;
        readSafely(copy);
      }),
      { numRuns: 5000 },
    );
  });

  it('survives mutated 16-bit length fields set to extreme values', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: SAMPLES.length - 1 }),
        fc.nat(),
        fc.constantFrom(0x0000, 0x0001, 0x7fff, 0xfffe, 0xffff),
        (which, at, value) => {
          const copy = Uint8Array.from(SAMPLES[which]!);
          const i = at % (copy.length - 1);
          copy[i] = value >> 8;
          copy[i + 1] = value & 0xff;
          readSafely(copy);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('gives the same fingerprints however the hello is split into records', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: SAMPLES.length - 1 }),
        fc.array(fc.integer({ min: 1, max: 600 }), { minLength: 1, maxLength: 40 }),
        (which, sizes) => {
          const sample = SAMPLES[which]!;
          const expected = readSafely(sample);
          if (expected.kind !== 'complete') throw new Error('sample must be complete');
          const framed = frameRecordsAt(handshakeOf(sample), sizes);
          const got = readSafely(framed);
          expect(got.kind).toBe('complete');
          if (got.kind !== 'complete') return;
          expect(got.consumed).toBe(framed.length);
          expect(computeJa3(got.hello)).toEqual(computeJa3(expected.hello));
          expect(computeJa4(got.hello)).toEqual(computeJa4(expected.hello));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('is incomplete at every TCP segment boundary until the last byte arrives', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: SAMPLES.length - 1 }),
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 200 }), { maxLength: 20 }),
        (which, recordSizes, segmentSizes) => {
          const framed = frameRecordsAt(handshakeOf(SAMPLES[which]!), recordSizes);
          let have = 0;
          for (const size of segmentSizes) {
            have = Math.min(framed.length, have + size);
            const r = readSafely(framed.subarray(0, have));
            expect(r.kind).toBe(have === framed.length ? 'complete' : 'incomplete');
          }
          expect(readSafely(framed).kind).toBe('complete');
        },
      ),
      { numRuns: 500 },
    );
  });

  it('answers a 64 KiB random buffer quickly (no quadratic blow-up, no hang)', () => {
    const rnd = Uint8Array.from({ length: 64 * 1024 }, (_, i) => (i * 7919) & 0xff);
    rnd.set([0x16, 0x03, 0x01, 0x00, 0x01, 0x01]);
    // 1-byte records: the worst case for the record walk.
    const oneByteRecords = frameRecordsAt(buildHandshake(buildHelloBody(SPEC_EXAMPLE)), new Array<number>(400).fill(1));
    const started = performance.now();
    for (let i = 0; i < 50; i++) {
      readSafely(rnd);
      readSafely(oneByteRecords);
    }
    expect(performance.now() - started).toBeLessThan(2000);
    expect(readSafely(oneByteRecords).kind).toBe('complete');
  });
});

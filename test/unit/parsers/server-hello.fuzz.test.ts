/**
 * Property tests for the server-flight reader: whatever a (hostile) server sends, in whatever segmentation,
 * `readServerFlight` returns one of its three results quickly and never throws; the observer decides once
 * and never holds more than the cap.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { MAX_SERVER_FLIGHT_BYTES, readServerFlight, serverFlightObserver } from '../../../src/parsers/server-hello.js';
import type { ServerFlightDecision, ServerFlightResult } from '../../../src/parsers/server-hello.js';
import { computeJa3s } from '../../../src/fingerprint/ja3s.js';
import { computeJa4s } from '../../../src/fingerprint/ja4s.js';
import {
  TLS12_HELLO,
  TLS13_HELLO,
  certificateBody,
  frameRecords,
  handshakeMessage,
  loadFoxioServerCases,
  serverHelloBody,
} from '../../helpers/pcap-server-flights.js';
import { FIXTURES } from './hello-builder.js';

const KINDS = new Set(['complete', 'incomplete', 'invalid']);

function readSafely(buf: Uint8Array): ServerFlightResult {
  let result: ServerFlightResult;
  try {
    result = readServerFlight(buf);
  } catch (err) {
    throw new Error(`readServerFlight threw: ${String(err)}`, { cause: err });
  }
  expect(KINDS.has(result.kind)).toBe(true);
  if (result.kind === 'complete') {
    expect(result.consumed).toBeGreaterThan(0);
    expect(result.consumed).toBeLessThanOrEqual(buf.length);
    // Fingerprinting any hello the reader accepts must not throw either.
    computeJa3s(result.hello);
    computeJa4s(result.hello);
  }
  if (result.kind === 'invalid') {
    expect(result.error.name).toBe('ParseError');
    expect(result.error.offset).toBeGreaterThanOrEqual(0);
    expect(result.error.offset).toBeLessThanOrEqual(Math.max(buf.length, MAX_SERVER_FLIGHT_BYTES));
    expect(result.error.field.length).toBeGreaterThan(0);
  }
  return result;
}

const CERT = Uint8Array.from({ length: 700 }, (_, i) => (i * 31) & 0xff);
const built = (hs: number[], sizes: number[] = []): Uint8Array => Uint8Array.from(frameRecords(hs, sizes));
const TLS12_HS = [...handshakeMessage(2, serverHelloBody(TLS12_HELLO)), ...handshakeMessage(11, certificateBody([CERT, CERT])), ...handshakeMessage(14, [])];

/** Valid flights of several shapes: built ones and real ones from FoxIO's pcaps (TLS 1.2 with chains, TLS 1.3). */
const real = loadFoxioServerCases(`${FIXTURES}vectors/ja4-foxio/`)
  .filter((c) => c.pcap === 'tls-alpn-h2.pcap' || c.pcap === 'macos_tcp_flags.pcap' || c.pcap === 'badcurveball.pcap')
  .map((c) => {
    const bytes = c.flight?.bytes ?? new Uint8Array(0);
    const r = readServerFlight(bytes);
    return r.kind === 'complete' ? bytes.slice(0, r.consumed) : new Uint8Array(0);
  })
  .filter((b) => b.length > 0);
const SAMPLES: Uint8Array[] = [built(TLS12_HS), built(TLS12_HS, [100, 3, 500]), built(handshakeMessage(2, serverHelloBody(TLS13_HELLO))), ...real];

describe('readServerFlight properties', () => {
  it('has real samples to mutate', () => {
    expect(real.length).toBe(3);
    for (const s of SAMPLES) expect(readSafely(s).kind).toBe('complete');
  });

  it('never throws on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => void readSafely(bytes)), { numRuns: 3000 });
  });

  it('never throws on random bytes behind a plausible record and ServerHello header', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4 }), fc.uint8Array({ maxLength: 4096 }), (minor, rest) => {
        const len = rest.length + 1;
        readSafely(Uint8Array.from([0x16, 0x03, minor, (len >> 8) & 0xff, len & 0xff, 0x02, ...rest]));
      }),
      { numRuns: 3000 },
    );
  });

  it('survives any single-byte mutation of valid flights', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: SAMPLES.length - 1 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (which, at, value) => {
        const copy = Uint8Array.from(SAMPLES[which]!);
        copy[at % copy.length] = value;
        readSafely(copy);
      }),
      { numRuns: 5000 },
    );
  });

  it('survives 16- and 24-bit length fields set to extreme values', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: SAMPLES.length - 1 }),
        fc.nat(),
        fc.constantFrom(0x000000, 0x000001, 0x007fff, 0x00ffff, 0xffffff, 0x010000),
        fc.boolean(),
        (which, at, value, wide) => {
          const copy = Uint8Array.from(SAMPLES[which]!);
          const i = at % (copy.length - 2);
          if (wide) copy[i] = (value >> 16) & 0xff;
          copy[i + (wide ? 1 : 0)] = (value >> 8) & 0xff;
          copy[i + (wide ? 2 : 1)] = value & 0xff;
          readSafely(copy);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('gives the same hello and certificates however the handshake is split into records', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 600 }), { minLength: 1, maxLength: 40 }), (sizes) => {
        const expected = readSafely(built(TLS12_HS));
        const got = readSafely(built(TLS12_HS, sizes));
        if (expected.kind !== 'complete' || got.kind !== 'complete') throw new Error('both must be complete');
        expect(computeJa4s(got.hello)).toEqual(computeJa4s(expected.hello));
        expect(got.certificates?.map((c) => c.length)).toEqual([700, 700]);
      }),
      { numRuns: 1000 },
    );
  });

  it('the observer decides exactly once and equals the one-shot reader, for any chunking and any input', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: 0, max: SAMPLES.length - 1 }).map((i) => SAMPLES[i]!),
          fc.uint8Array({ maxLength: 1500 }),
          fc.tuple(fc.integer({ min: 0, max: SAMPLES.length - 1 }), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([w, at, v]) => {
            const c = Uint8Array.from(SAMPLES[w]!);
            c[at % c.length] = v;
            return c;
          }),
        ),
        fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 30 }),
        (input, chunks) => {
          const results: ServerFlightDecision[] = [];
          const obs = serverFlightObserver((r) => results.push(r));
          let pos = 0;
          for (let i = 0; pos < input.length; i++) {
            const n = chunks[i % chunks.length]!;
            obs.push(input.subarray(pos, pos + n));
            pos += n;
          }
          obs.end();
          expect(results).toHaveLength(1);
          const oneShot = readSafely(input);
          const r = results[0]!;
          if (oneShot.kind === 'incomplete') {
            expect(r.kind).toBe('invalid');
          } else if (oneShot.kind === 'complete') {
            // The observer may decide on a prefix; a decision on the whole input must agree with it.
            expect(r.kind).toBe('complete');
            if (r.kind === 'complete') expect(computeJa3s(r.hello)).toEqual(computeJa3s(oneShot.hello));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('answers adversarial 64 KiB inputs quickly (1-byte records, random bytes)', () => {
    const big = handshakeMessage(2, serverHelloBody({ ...TLS12_HELLO, extensions: [{ type: 0xfe00, data: new Array<number>(200).fill(0) }] }));
    const oneByteRecords = built(big, new Array<number>(255).fill(1));
    const rnd = Uint8Array.from({ length: 64 * 1024 }, (_, i) => (i * 7919) & 0xff);
    rnd.set([0x16, 0x03, 0x03, 0x3f, 0xff, 0x02, 0x00, 0x3f, 0xfb]);
    const started = performance.now();
    for (let i = 0; i < 50; i++) {
      readSafely(oneByteRecords);
      readSafely(rnd);
    }
    // The observer fed the 1-byte records one byte at a time re-reads once per record, never per byte.
    const obs = serverFlightObserver(() => undefined);
    for (const b of oneByteRecords) obs.push(Uint8Array.of(b));
    expect(performance.now() - started).toBeLessThan(3000);
  });
});

/**
 * Property tests for the DER walker and the certificate facts: random and mutated certificates give a
 * result or a ParseError, never another exception, a hang or memory out of proportion to the input.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { readServerFlight } from '../../../src/parsers/server-hello.js';
import { describeCertificate, parseX509, subjectAltNames } from '../../../src/parsers/x509.js';
import { computeJa4x } from '../../../src/fingerprint/ja4x.js';
import { tlsServerFactsOf } from '../../../src/fingerprint/tls-server-facts.js';
import { loadFoxioServerCases } from '../../helpers/pcap-server-flights.js';
import { FIXTURES } from './hello-builder.js';

/** Real certificates (leaf and intermediates, RSA and EC) from the FoxIO pcaps' cleartext TLS 1.2 chains. */
const CERTS: Uint8Array[] = [];
for (const c of loadFoxioServerCases(`${FIXTURES}vectors/ja4-foxio/`)) {
  const r = readServerFlight(c.flight?.bytes ?? new Uint8Array(0));
  if (r.kind === 'complete' && r.certificates !== null) for (const der of r.certificates) if (CERTS.length < 12) CERTS.push(der.slice());
}

/** Runs `f`; a ParseError is an allowed outcome, anything else thrown fails the property. */
function parsesOrParseError(f: () => unknown): 'ok' | 'parse-error' {
  try {
    f();
    return 'ok';
  } catch (err) {
    if (err instanceof Error && err.name === 'ParseError') return 'parse-error';
    throw new Error(`unexpected ${String(err)}`, { cause: err });
  }
}

function checkAll(der: Uint8Array): void {
  const outcome = parsesOrParseError(() => parseX509(der));
  parsesOrParseError(() => computeJa4x(der));
  parsesOrParseError(() => describeCertificate(der));
  if (outcome === 'ok') parsesOrParseError(() => subjectAltNames(parseX509(der)));
  // The flow facts never throw at all.
  const facts = tlsServerFactsOf(null, der, Date.now());
  expect(facts['tls.server.ja4x'] !== undefined || facts['egress.tls.certificate_error'] !== undefined).toBe(true);
}

describe('X.509 walker properties', () => {
  it('has real certificates to mutate, and they all parse', () => {
    expect(CERTS.length).toBeGreaterThanOrEqual(8);
    for (const der of CERTS) expect(parsesOrParseError(() => describeCertificate(der))).toBe('ok');
  });

  it('never throws anything but ParseError on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => checkAll(b)), { numRuns: 3000 });
  });

  it('never throws anything but ParseError on random bytes inside a SEQUENCE header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 1500 }), (b) => {
        checkAll(Uint8Array.from([0x30, 0x82, (b.length >> 8) & 0xff, b.length & 0xff, ...b]));
      }),
      { numRuns: 2000 },
    );
  });

  it('survives single-byte mutations, truncations and insertions of real certificates', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: CERTS.length - 1 }),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        fc.constantFrom('set', 'truncate', 'insert'),
        (which, at, value, how) => {
          const der = CERTS[which]!;
          const i = at % der.length;
          let m: Uint8Array;
          if (how === 'set') {
            m = der.slice();
            m[i] = value;
          } else if (how === 'truncate') {
            m = der.slice(0, i);
          } else {
            m = Uint8Array.from([...der.subarray(0, i), value, ...der.subarray(i)]);
          }
          checkAll(m);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('stays fast on deep or long adversarial DER (no recursion, linear time)', () => {
    // 5,000 nested SEQUENCEs and a 200 KiB blob of 1-byte TLVs.
    const nested: number[] = [];
    for (let i = 0; i < 5000; i++) nested.push(0x30, 0x80);
    const flat = new Uint8Array(200 * 1024);
    const started = performance.now();
    for (let i = 0; i < 20; i++) {
      checkAll(Uint8Array.from(nested));
      checkAll(Uint8Array.from([0x30, 0x83, (flat.length >> 16) & 0xff, (flat.length >> 8) & 0xff, flat.length & 0xff, ...flat]));
    }
    expect(performance.now() - started).toBeLessThan(3000);
  });
});

/**
 * Property tests for computeJa4h: whatever method, version and header array a client manages to send, it
 * returns the fixed a_b_c_d shape and never throws, and the fingerprint has the invariances the spec implies
 * (cookie order, header values, where Cookie and Referer sit).
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { computeJa4h } from '../../../src/fingerprint/ja4h.js';
import type { Ja4hParts } from '../../../src/fingerprint/ja4h.js';

/** a = method(2) version(2) c|n r|n count(2) language(4); then three 12-hex hashes. */
const JA4H_SHAPE = /^[a-z0-9-]{2}[0-9]{2}[cn][rn][0-9]{2}[a-z0-9*]{4}_[0-9a-f]{12}_[0-9a-f]{12}_[0-9a-f]{12}$/;
/** ASCII-only case folding, like field-name comparison (JS toLowerCase would also fold U+212A KELVIN SIGN). */
const COOKIE_OR_REFERER = /^(?:cookie|referer)$/i;
const sha12 = (s: string): string => createHash('sha256').update(s, 'latin1').digest('hex').slice(0, 12);

function computeSafely(method: string, version: string, rawHeaders: readonly string[]): Ja4hParts {
  let got: Ja4hParts;
  try {
    got = computeJa4h(method, version, rawHeaders);
  } catch (err) {
    throw new Error(`computeJa4h threw: ${String(err)}`, { cause: err });
  }
  expect(got.ja4h).toMatch(JA4H_SHAPE);
  const a = got.ja4h.slice(0, 12);
  expect(got.ja4h_r.startsWith(`${a}_`)).toBe(true);
  expect(got.ja4h_ro.startsWith(`${a}_`)).toBe(true);
  expect(got.ja4h_r.length).toBe(got.ja4h_ro.length); // same pieces, another order
  return got;
}

/** Names that exercise the special cases, in random case, plus arbitrary strings. */
const specialName = fc.constantFrom('Cookie', 'Referer', 'Accept-Language', ':method', ':path', 'Host', 'User-Agent', '', 'X_Y', 'a,b');
const randomCase = (s: string): fc.Arbitrary<string> =>
  fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }).map((up) => [...s].map((ch, i) => (up[i] ? ch.toUpperCase() : ch.toLowerCase())).join(''));
const headerName = fc.oneof(specialName.chain(randomCase), fc.string({ maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 12 }));
const headerValue = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.array(fc.constantFrom('a=1', 'b', '=', ';', ' ', 'x=y=z', '_', 'é', '\t'), { maxLength: 10 }).map((p) => p.join('')),
);
const rawHeaders = fc.oneof(
  fc.array(fc.tuple(headerName, headerValue), { maxLength: 40 }).map((pairs) => pairs.flat()),
  fc.array(fc.oneof(headerName, headerValue), { maxLength: 41 }), // odd lengths too
);
const method = fc.oneof(fc.constantFrom('GET', 'POST', 'CONNECT', 'M-SEARCH', 'get', ''), fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 4 }));
const version = fc.oneof(fc.constantFrom('1.0', '1.1', '2.0', '3', 'HTTP/1.1', ''), fc.string({ maxLength: 8 }));

const cookieName = fc.stringMatching(/^[A-Za-z0-9_$-]{1,10}$/);
const cookieValue = fc.stringMatching(/^[A-Za-z0-9_.:%=-]{0,12}$/);

describe('computeJa4h never throws and always gives a_b_c_d', () => {
  it('on arbitrary methods, versions and header arrays', () => {
    fc.assert(
      fc.property(method, version, rawHeaders, (m, v, rh) => {
        computeSafely(m, v, rh);
      }),
      { numRuns: 3000 },
    );
  });

  it('on a request as large as Node lets through (2000 fields) in well under a second', () => {
    const rh = Array.from({ length: 2000 }, (_, i) => (i % 3 === 0 ? ['Cookie', `c${i}=v; d${i}=w`] : [`X-F${i}`, 'v'])).flat();
    const t0 = performance.now();
    const got = computeSafely('GET', '1.1', rh);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(got.ja4h.slice(4, 8)).toBe('cn99');
  });
});

describe('computeJa4h invariances', () => {
  it('the header count is the number of named, non-pseudo, non-Cookie, non-Referer fields, capped at 99', () => {
    fc.assert(
      fc.property(rawHeaders, (rh) => {
        let n = 0;
        for (let i = 0; i < rh.length; i += 2) {
          const name = rh[i] as string;
          if (name !== '' && !name.startsWith(':') && !COOKIE_OR_REFERER.test(name)) n++;
        }
        expect(Number(computeSafely('GET', '1.1', rh).ja4h.slice(6, 8))).toBe(Math.min(n, 99));
      }),
    );
  });

  it('the order of cookies changes ja4h_ro only; ja4h and ja4h_r stay the same', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(cookieName, cookieValue), { minLength: 1, maxLength: 12 }),
        fc.infiniteStream(fc.nat()),
        (pairs, rnd) => {
          const asText = pairs.map(([n, v]) => `${n}=${v}`);
          const shuffled = [...asText];
          const it = rnd[Symbol.iterator]();
          for (let i = shuffled.length - 1; i > 0; i--) {
            const j = (it.next().value as number) % (i + 1);
            [shuffled[i], shuffled[j]] = [shuffled[j] as string, shuffled[i] as string];
          }
          const base = ['Host', 'h', 'User-Agent', 'u'];
          const x = computeSafely('GET', '1.1', [...base, 'Cookie', asText.join('; ')]);
          const y = computeSafely('GET', '1.1', [...base, 'Cookie', shuffled.join('; ')]);
          // One cookie per field (HTTP/2 style) gives the same fingerprint as one joined field.
          const z = computeSafely('GET', '2.0', [...base, ...shuffled.flatMap((c) => ['cookie', c])]);
          expect(y.ja4h).toBe(x.ja4h);
          expect(y.ja4h_r).toBe(x.ja4h_r);
          expect(z.ja4h.slice(4)).toBe(x.ja4h.slice(4));
          expect(x.ja4h.split('_')[2]).toBe(sha12(pairs.map(([n]) => n).sort().join(',')));
        },
      ),
    );
  });

  it('values other than Cookie and Accept-Language do not change ja4h; inserting a Referer only sets the flag', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.stringMatching(/^X-[A-Za-z0-9-]{1,12}$/), fc.string({ maxLength: 20 })), { maxLength: 15 }),
        fc.string({ maxLength: 20 }),
        fc.nat(),
        (fields, otherValue, at) => {
          const rh = fields.flat();
          const revalued = fields.flatMap(([n]) => [n, otherValue]);
          const x = computeSafely('POST', '1.1', rh);
          expect(computeSafely('POST', '1.1', revalued).ja4h).toBe(x.ja4h);
          const pos = 2 * (at % (fields.length + 1));
          const withReferer = [...rh.slice(0, pos), 'Referer', 'https://r.example/', ...rh.slice(pos)];
          const y = computeSafely('POST', '1.1', withReferer);
          expect(y.ja4h.slice(5, 6)).toBe('r');
          expect(y.ja4h.slice(0, 5) + y.ja4h.slice(6)).toBe(x.ja4h.slice(0, 5) + x.ja4h.slice(6));
        },
      ),
    );
  });
});

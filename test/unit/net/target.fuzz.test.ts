/**
 * Property tests for the request-target and CONNECT-authority parsers (issue 2, "Property tests"): for any input
 * string the result is a valid Target or an EgressError BAD_TARGET — never another exception — and what is
 * accepted agrees with the WHATWG URL parser on the host and round-trips through its formatter.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EgressError } from '../../../src/errors.js';
import { formatIPv4 } from '../../../src/net/address-class.js';
import type { Target } from '../../../src/net/target.js';
import {
  formatAbsoluteTarget,
  formatAuthority,
  parseAbsoluteTarget,
  parseConnectAuthority,
} from '../../../src/net/target.js';

const RUNS = 3000;

/** Calls `parse`; returns the value, or null for BAD_TARGET; any other exception fails the property. */
function parseOrNull<T>(parse: (s: string) => T, input: string): T | null {
  try {
    return parse(input);
  } catch (err) {
    if (err instanceof EgressError && err.code === 'BAD_TARGET' && err.message.length > 0) return null;
    throw err;
  }
}

function expectValidTarget(t: Target): void {
  expect(Number.isInteger(t.port) && t.port >= 1 && t.port <= 65535).toBe(true);
  expect(t.host.length).toBeGreaterThan(0);
  expect(t.host.length).toBeLessThanOrEqual(253);
  expect(t.host).toBe(t.host.toLowerCase());
  expect(t.host.endsWith('.')).toBe(false);
  if (t.family === null) expect(t.ip).toBeNull();
  else expect(t.ip).toBe(t.host);
}

// Characters that matter to authority and URI syntax, so that random strings hit the interesting branches.
const syntaxChar = fc.constantFrom(
  ...'abcXYZ019.-_:[]@/?#%\\ \t\r\n\u0000\u007fé0x'.split(''),
  '\u00e9',
  '\ud83d\ude00',
);
const syntaxString = fc.array(syntaxChar, { maxLength: 40 }).map((cs) => cs.join(''));

/** Not an A-label: an `xn--` label must be valid Punycode (RFC 5890 §2.3.2.1), which these random ones are not. */
const notALabel = (l: string): boolean => !l.startsWith('xn--');
const label = fc.stringMatching(/^[a-z0-9_]([a-z0-9_-]{0,10}[a-z0-9_])?$/).filter(notALabel);
/** The last label starts with a letter: a name ending in a number is an IPv4 address or invalid (URL Standard). */
const lastLabel = fc.stringMatching(/^[a-z]([a-z0-9_-]{0,10}[a-z0-9_])?$/).filter(notALabel);
const dnsName = fc
  .tuple(fc.array(label, { maxLength: 3 }), lastLabel)
  .map(([ls, last]) => [...ls, last].join('.'));
/** IPv4 in the odd spellings clients may use: the parts as decimal, octal or hex, 1 to 4 of them. */
const ipv4Spelling = fc
  .tuple(
    fc.integer({ min: 0, max: 0xffffffff }),
    fc.integer({ min: 1, max: 4 }),
    fc.array(fc.constantFrom('dec', 'oct', 'hex'), { minLength: 4, maxLength: 4 }),
  )
  .map(([addr, count, radixes]) => {
    const bytes = [(addr >>> 24) & 255, (addr >>> 16) & 255, (addr >>> 8) & 255, addr & 255];
    const parts = bytes.slice(0, count - 1);
    const lastBytes = bytes.slice(count - 1);
    const last = lastBytes.reduce((acc, b) => acc * 256 + b, 0);
    const spell = (n: number, radix: string | undefined): string =>
      radix === 'oct' ? `0${n.toString(8)}` : radix === 'hex' ? `0x${n.toString(16)}` : String(n);
    return {
      text: [...parts, last].map((n, i) => spell(n, radixes[i])).join('.'),
      canonical: formatIPv4(addr),
    };
  });
const ipv6 = fc.ipV6();
const host = fc.oneof(
  dnsName,
  ipv4Spelling.map((v) => v.text),
  ipv6.map((a) => `[${a}]`),
);
const port = fc.integer({ min: 1, max: 65535 });
const authority = fc.tuple(host, port).map(([h, p]) => `${h}:${p}`);
const pathAndQuery = fc.webPath().chain((p) => fc.option(fc.webQueryParameters(), { nil: undefined }).map((q) => (q === undefined ? p : `${p}?${q}`)));
const absoluteUri = fc.tuple(authority, pathAndQuery).map(([a, pq]) => `http://${a}${pq}`);

/** Inserts, deletes or replaces characters of a valid input, so the fuzzer lives near the valid/invalid edge. */
function mutate(base: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .tuple(base, fc.array(fc.tuple(fc.nat(), fc.constantFrom('insert', 'delete', 'replace'), syntaxChar), { minLength: 1, maxLength: 4 }))
    .map(([s, edits]) => {
      let out = s;
      for (const [pos, kind, ch] of edits) {
        const i = out.length === 0 ? 0 : pos % (out.length + 1);
        if (kind === 'insert') out = out.slice(0, i) + ch + out.slice(i);
        else if (kind === 'delete') out = out.slice(0, i) + out.slice(i + 1);
        else out = out.slice(0, i) + ch + out.slice(i + 1);
      }
      return out;
    });
}

describe('parseConnectAuthority properties', () => {
  it('any string: a valid Target or BAD_TARGET, never another exception', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), syntaxString), (input) => {
        const t = parseOrNull(parseConnectAuthority, input);
        if (t !== null) expectValidTarget(t);
      }),
      { numRuns: RUNS },
    );
  });

  it('mutated valid authorities: a valid Target or BAD_TARGET', () => {
    fc.assert(
      fc.property(mutate(authority), (input) => {
        const t = parseOrNull(parseConnectAuthority, input);
        if (t !== null) expectValidTarget(t);
      }),
      { numRuns: RUNS },
    );
  });

  it('valid authorities parse, and formatAuthority round-trips them', () => {
    fc.assert(
      fc.property(authority, (input) => {
        const t = parseConnectAuthority(input);
        expect(parseConnectAuthority(formatAuthority(t))).toEqual(t);
      }),
      { numRuns: RUNS },
    );
  });

  it('every IPv4 spelling normalises to the dotted quad it denotes', () => {
    fc.assert(
      fc.property(ipv4Spelling, port, (v4, p) => {
        const t = parseConnectAuthority(`${v4.text}:${p}`);
        expect(t).toEqual({ host: v4.canonical, port: p, ip: v4.canonical, family: 4 });
      }),
      { numRuns: RUNS },
    );
  });

  it('an accepted host is the host the WHATWG URL parser sees (no spelling can mean two addresses)', () => {
    fc.assert(
      fc.property(fc.oneof(authority, mutate(authority)), (input) => {
        const t = parseOrNull(parseConnectAuthority, input);
        if (t === null) return;
        const url = new URL(`http://${input}/`);
        const whatwgHost = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '');
        expect(t.host).toBe(whatwgHost);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('parseAbsoluteTarget properties', () => {
  it('any string: a valid HttpTarget or BAD_TARGET, never another exception', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), syntaxString.map((s) => `http://${s}`)), (input) => {
        const t = parseOrNull(parseAbsoluteTarget, input);
        if (t !== null) {
          expectValidTarget(t);
          expect(t.path.startsWith('/')).toBe(true);
          expect(t.original).toBe(input);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('mutated valid URIs: a valid HttpTarget or BAD_TARGET', () => {
    fc.assert(
      fc.property(mutate(absoluteUri), (input) => {
        const t = parseOrNull(parseAbsoluteTarget, input);
        if (t !== null) expectValidTarget(t);
      }),
      { numRuns: RUNS },
    );
  });

  it('valid URIs parse, and formatAbsoluteTarget round-trips them', () => {
    fc.assert(
      fc.property(absoluteUri, (input) => {
        const t = parseAbsoluteTarget(input);
        const again = parseAbsoluteTarget(formatAbsoluteTarget(t));
        expect({ ...again, original: '' }).toEqual({ ...t, original: '' });
      }),
      { numRuns: RUNS },
    );
  });

  it('an accepted URI has the host and port the WHATWG URL parser sees', () => {
    fc.assert(
      fc.property(fc.oneof(absoluteUri, mutate(absoluteUri)), (input) => {
        const t = parseOrNull(parseAbsoluteTarget, input);
        if (t === null) return;
        const url = new URL(input);
        expect(t.host).toBe(url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, ''));
        expect(t.port).toBe(url.port === '' ? 80 : Number(url.port));
      }),
      { numRuns: RUNS },
    );
  });
});

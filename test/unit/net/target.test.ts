import { describe, expect, it } from 'vitest';
import { EgressError } from '../../../src/errors.js';
import {
  formatAbsoluteTarget,
  formatAuthority,
  normalizeHost,
  parseAbsoluteTarget,
  parseConnectAuthority,
} from '../../../src/net/target.js';

function badTargetMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EgressError);
    expect((err as EgressError).code).toBe('BAD_TARGET');
    return (err as EgressError).message;
  }
  throw new Error('expected a BAD_TARGET error, got a result');
}

describe('parseConnectAuthority: accepted authorities', () => {
  const cases: Array<[intent: string, input: string, host: string, port: number, ip: string | null, family: 4 | 6 | null]> = [
    ['plain name and port', 'example.com:443', 'example.com', 443, null, null],
    ['name is lower-cased', 'ExAmple.COM:443', 'example.com', 443, null, null],
    ['one trailing dot is stripped', 'example.com.:443', 'example.com', 443, null, null],
    ['underscore in a label is tolerated', '_svc.example.com:8443', '_svc.example.com', 8443, null, null],
    ['a valid Punycode A-label is kept as it is', 'XN--bcher-kva.example:443', 'xn--bcher-kva.example', 443, null, null],
    ['single-label name', 'intranet:80', 'intranet', 80, null, null],
    ['dotted-quad IPv4', '93.184.216.34:443', '93.184.216.34', 443, '93.184.216.34', 4],
    ['decimal IPv4 is normalised', '2130706433:443', '127.0.0.1', 443, '127.0.0.1', 4],
    ['octal IPv4 is normalised', '0177.0.0.1:443', '127.0.0.1', 443, '127.0.0.1', 4],
    ['hex short IPv4 is normalised', '0x7f.1:443', '127.0.0.1', 443, '127.0.0.1', 4],
    ['upper-case hex IPv4 is normalised', '0X7F.0X1:443', '127.0.0.1', 443, '127.0.0.1', 4],
    ['two-part short IPv4 is normalised', '127.1:443', '127.0.0.1', 443, '127.0.0.1', 4],
    ['three-part IPv4 fills the last 16 bits', '10.1.258:443', '10.1.1.2', 443, '10.1.1.2', 4],
    ['IPv4 with a trailing dot', '127.0.0.1.:443', '127.0.0.1', 443, '127.0.0.1', 4],
    ['metadata IP in decimal', '2852039166:80', '169.254.169.254', 80, '169.254.169.254', 4],
    ['bracketed IPv6 loopback', '[::1]:443', '::1', 443, '::1', 6],
    ['IPv6 is compressed and lower-cased', '[2001:DB8:0:0:0:0:0:1]:443', '2001:db8::1', 443, '2001:db8::1', 6],
    ['IPv4-mapped IPv6 keeps its IPv6 form', '[::ffff:127.0.0.1]:443', '::ffff:7f00:1', 443, '::ffff:7f00:1', 6],
    ['hex IPv4-mapped IPv6', '[::FFFF:7f00:1]:443', '::ffff:7f00:1', 443, '::ffff:7f00:1', 6],
    ['lowest port', 'example.com:1', 'example.com', 1, null, null],
    ['highest port', 'example.com:65535', 'example.com', 65535, null, null],
    ['port with a leading zero', 'example.com:0443', 'example.com', 443, null, null],
  ];
  it.each(cases)('%s (%s)', (_intent, input, host, port, ip, family) => {
    expect(parseConnectAuthority(input)).toEqual({ host, port, ip, family });
  });
});

describe('parseConnectAuthority: rejected authorities say what is wrong', () => {
  const cases: Array<[intent: string, input: string, message: string | RegExp]> = [
    ['an xn-- label that is not Punycode (the URL parser refuses it too)', 'xn--_:1', /has an "xn--" label that is not valid Punycode/],
    ['no port', 'foo', 'CONNECT authority "foo" has no port; CONNECT needs host:port'],
    ['empty', '', 'CONNECT authority is empty'],
    ['empty port', 'foo:', /has an empty port/],
    ['port zero', 'foo:0', /port "0", which is not in 1-65535/],
    ['port too large', 'foo:65536', /port "65536", which is not in 1-65535/],
    ['port too long', 'foo:0000443', /not in 1-65535/],
    ['port with a sign', 'foo:+443', /port "\+443", which is not a number/],
    ['port with hex', 'foo:0x1bb', /which is not a number/],
    ['empty host', ':443', /has an empty host/],
    ['userinfo', 'user:pass@example.com:443', /userinfo/],
    ['path', 'example.com:443/x', /has a path/],
    ['full URI', 'https://example.com:443', /is a URI; CONNECT takes host:port only/],
    ['query', 'example.com:443?x', /has a query/],
    ['fragment', 'example.com:443#x', /has a fragment/],
    ['space', 'example.com :443', /whitespace or a control character/],
    ['tab', 'example.com:\t443', /whitespace or a control character/],
    ['NUL byte', 'example.com\u0000.evil:443', /whitespace or a control character/],
    ['CRLF injection', 'example.com:443\r\nX: y', /whitespace or a control character/],
    ['DEL byte', 'exa\u007fmple.com:443', /whitespace or a control character/],
    ['non-ASCII name', 'bücher.de:443', /non-ASCII character; international names must be sent as punycode/],
    ['percent-encoded dot', '127%2e0.0.1:443', /percent-encoding/],
    ['empty label', 'a..b:443', /empty label/],
    ['two trailing dots', 'example.com..:443', /empty label/],
    ['only a dot', '.:443', /empty host/],
    ['label over 63 characters', `${'a'.repeat(64)}.com:443`, /label longer than 63/],
    ['host over 253 characters', `${'a.'.repeat(127)}ab:443`, /longer than 253/],
    ['bare IPv6', '::1:443', /IPv6 address must be written in brackets/],
    ['unclosed bracket', '[::1:443', /without a closing "]"/],
    ['junk after bracket', '[::1]x:443', /after the IPv6 address/],
    ['IPv6 without port', '[::1]', /has no port/],
    ['invalid IPv6', '[::g]:443', /is not a valid IPv6 address/],
    ['IPv6 zone id', '[fe80::1%25eth0]:443', /percent-encoding|zone/],
    ['IPv4 in brackets', '[127.0.0.1]:443', /not a valid IPv6 address/],
    ['octal in embedded IPv4 of IPv6', '[::ffff:0177.0.0.1]:443', /not a valid IPv6 address/],
    ['IPv4 octet over 255', '1.2.3.256:443', /ends in a number but is not a valid IPv4 address/],
    ['IPv4 with five parts', '1.2.3.4.5:443', /not a valid IPv4 address/],
    ['invalid octal digit', '09.0.0.1:443', /not a valid IPv4 address/],
    ['decimal over 32 bits', '4294967296:443', /not a valid IPv4 address/],
    ['numeric last label', 'example.123:443', /not a valid IPv4 address/],
    ['bad character', 'exa!mple.com:443', /"!" in the host/],
    ['backslash', 'example.com\\.evil:443', /in the host/],
  ];
  it.each(cases)('%s (%j)', (_intent, input, message) => {
    const got = badTargetMessage(() => parseConnectAuthority(input));
    if (typeof message === 'string') expect(got).toBe(message);
    else expect(got).toMatch(message);
  });

  it('refuses a non-string with BAD_TARGET', () => {
    expect(badTargetMessage(() => parseConnectAuthority(42 as unknown as string))).toMatch(/not a string/);
  });

  it('keeps huge inputs out of the message', () => {
    const got = badTargetMessage(() => parseConnectAuthority(`${'a'.repeat(100_000)}`));
    expect(got.length).toBeLessThan(300);
  });
});

describe('parseAbsoluteTarget: accepted targets', () => {
  it('splits host, port, path and query', () => {
    const input = 'http://Example.COM:8080/a/b?x=1&y=2';
    expect(parseAbsoluteTarget(input)).toEqual({
      scheme: 'http',
      host: 'example.com',
      port: 8080,
      ip: null,
      family: null,
      path: '/a/b',
      query: 'x=1&y=2',
      original: input,
    });
  });

  const cases: Array<[intent: string, input: string, fields: Record<string, unknown>]> = [
    ['default port and path', 'http://example.com', { port: 80, path: '/', query: null }],
    ['upper-case scheme', 'HTTP://example.com/', { host: 'example.com', port: 80, path: '/' }],
    ['query without a path', 'http://example.com?q', { path: '/', query: 'q' }],
    ['empty query is kept apart from no query', 'http://example.com/?', { path: '/', query: '' }],
    ['empty port means the default', 'http://example.com:/x', { port: 80, path: '/x' }],
    ['percent-encoding in the path passes through', 'http://example.com/a%20b', { path: '/a%20b' }],
    ['dot segments are not rewritten', 'http://example.com/a/../b', { path: '/a/../b' }],
    ['decimal IPv4 host', 'http://2130706433/', { host: '127.0.0.1', ip: '127.0.0.1', family: 4 }],
    ['octal IPv4 host', 'http://0177.0.0.1/', { host: '127.0.0.1', ip: '127.0.0.1', family: 4 }],
    ['hex IPv4 host', 'http://0x7f.1/', { host: '127.0.0.1', ip: '127.0.0.1', family: 4 }],
    ['metadata IP in hex', 'http://0xa9fea9fe/latest', { host: '169.254.169.254', path: '/latest' }],
    ['IPv6 host with port', 'http://[::1]:8080/', { host: '::1', ip: '::1', family: 6, port: 8080 }],
    ['IPv4-mapped IPv6 host', 'http://[::ffff:169.254.169.254]/', { host: '::ffff:a9fe:a9fe', family: 6 }],
  ];
  it.each(cases)('%s (%s)', (_intent, input, fields) => {
    expect(parseAbsoluteTarget(input)).toMatchObject({ ...fields, original: input });
  });
});

describe('parseAbsoluteTarget: rejected targets say what is wrong', () => {
  const cases: Array<[intent: string, input: string, message: RegExp]> = [
    ['origin-form', '/index.html', /proxy requests need an absolute URI/],
    ['asterisk-form', '*', /proxy requests need an absolute URI/],
    ['authority-form outside CONNECT', 'example.com:443', /proxy requests need an absolute URI/],
    ['no scheme separator', 'example.com', /proxy requests need an absolute URI/],
    ['scheme without authority', 'http:example.com/', /proxy requests need an absolute URI/],
    ['https absolute-form', 'https://example.com/', /https URI; send HTTPS through the proxy with CONNECT/],
    ['other scheme', 'ftp://example.com/', /scheme "ftp"; the proxy forwards http:\/\/ URIs only/],
    ['userinfo', 'http://user:pw@example.com/', /userinfo.*credentials in URLs are refused/],
    ['phishing-style userinfo', 'http://allowed.example@169.254.169.254/', /userinfo/],
    ['fragment', 'http://example.com/#top', /fragment/],
    ['empty host', 'http:///path', /has no host/],
    ['empty', '', /request target is empty/],
    ['space in path', 'http://example.com/a b', /whitespace or a control character/],
    ['non-ASCII in path', 'http://example.com/ä', /non-ASCII/],
    ['port out of range', 'http://example.com:70000/', /not in 1-65535/],
    ['bad port', 'http://example.com:8o/', /not a number/],
    ['percent-encoded host', 'http://127.0.0.%31/', /percent-encoding in the host/],
    ['backslash in host', 'http://example.com\\@evil.com/', /userinfo|in the host/],
    ['invalid IPv4', 'http://256.0.0.1/', /not a valid IPv4 address/],
  ];
  it.each(cases)('%s (%j)', (_intent, input, message) => {
    expect(badTargetMessage(() => parseAbsoluteTarget(input))).toMatch(message);
  });
});

describe('normalizeHost', () => {
  it.each([
    ['Example.com.', 'example.com', null],
    ['0x7f000001', '127.0.0.1', 4],
    ['::FFFF:7F00:1', '::ffff:7f00:1', 6],
    ['[fe80::1]', 'fe80::1', 6],
  ] as const)('%s → %s', (input, host, family) => {
    expect(normalizeHost(input)).toMatchObject({ host, family });
  });

  it('rejects an invalid host with BAD_TARGET', () => {
    expect(badTargetMessage(() => normalizeHost('a b'))).toMatch(/whitespace/);
  });
});

describe('formatting round-trips', () => {
  it('formatAuthority brackets IPv6', () => {
    expect(formatAuthority(parseConnectAuthority('[::1]:443'))).toBe('[::1]:443');
    expect(formatAuthority(parseConnectAuthority('0x7f.1:443'))).toBe('127.0.0.1:443');
  });

  it('formatAbsoluteTarget omits the default port and keeps an empty query', () => {
    expect(formatAbsoluteTarget(parseAbsoluteTarget('http://Example.com:80/?'))).toBe('http://example.com/?');
    expect(formatAbsoluteTarget(parseAbsoluteTarget('http://[::1]:81/p?q'))).toBe('http://[::1]:81/p?q');
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { startHarness, type Harness } from '../helpers/harness.js';
import { curl, rawExchange } from '../helpers/servers.js';

/**
 * Random request targets and CONNECT authorities against the live proxy: every one gets a well-formed HTTP
 * answer (never a crash, never a hang) and the proxy keeps serving. The policy blocks every well-formed
 * target on its port alone — before any name is resolved or any address dialled — so nothing generated here
 * can cause traffic beyond loopback.
 */
describe('request-target and CONNECT-authority fuzzing against the live proxy', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      policy: 'version: 1\nrules:\n  - id: block-everything\n    when: { destination.port: { gte: 0 } }\n    action: block\n',
    });
  });
  afterAll(async () => h.stop());

  // Printable ASCII without spaces, CR or LF (those end the request line and are a different test), plus
  // the characters that matter for authorities and URIs.
  const targetChar = fc.constantFrom(...'abcxyz019.:/@[]%?#-_~!$&\'()*+,;=\\'.split(''), ...'ABC'.split(''));
  const target = fc.oneof(
    fc.string({ unit: targetChar, maxLength: 60 }),
    fc.tuple(fc.constantFrom('http://', 'https://', 'HTTP://', 'ftp://', '//', ''), fc.string({ unit: targetChar, maxLength: 40 })).map(([a, b]) => a + b),
  );

  it('absolute-form targets: always an HTTP status, 4xx for bad ones, 403 for well-formed ones', async () => {
    await fc.assert(
      fc.asyncProperty(target, async (t) => {
        const reply = await rawExchange(h.port, `GET ${t} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 2000);
        const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(reply)?.[1]);
        expect([400, 403]).toContain(status);
      }),
      { numRuns: 120 },
    );
  });

  it('CONNECT authorities: always an HTTP status, 400 for bad ones, 403 for well-formed ones', async () => {
    await fc.assert(
      fc.asyncProperty(target, async (t) => {
        const reply = await rawExchange(h.port, `CONNECT ${t} HTTP/1.1\r\nHost: x\r\n\r\n`, 2000);
        const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(reply)?.[1]);
        expect([400, 403]).toContain(status);
      }),
      { numRuns: 120 },
    );
    // Still serving afterwards, and every answer became a record.
    expect((await curl(['-x', h.proxyUrl, 'http://example.test/'])).status).toBe(403);
    expect(h.records.length).toBeGreaterThanOrEqual(240);
    expect(h.dns.queries).toHaveLength(0);
  });
});

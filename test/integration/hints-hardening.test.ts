/**
 * Hardening of POST /v1/hints (issue 11) against the real admin listener: oversized bodies (chunked or declared)
 * get a readable 413 before the connection closes, unreadable bodies 400 with the line and offset, the Bearer
 * scheme is case-insensitive, and control/bidi characters reach the flow record only as visible marks.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eid3, freeSourcePort } from '../helpers/sysmon.js';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { curl, echoHandler, startOrigin, type TestServer } from '../helpers/servers.js';
import { bearerTokenMatches, parseBearerToken, signProcessClaim } from '../../src/enrich/identity.js';
import { decodeNeutralized } from '../../src/enrich/neutralize.js';

const KEY = 'endpoint-agent-shared-secret-0123';
const TOKEN = 'test-token';
const MB = 1024 * 1024;

interface RawExchange {
  /** Everything the server sent, as text. */
  readonly response: string;
  /** Body bytes the client had written when the first response byte arrived. */
  readonly writtenAtResponse: number;
  /** The connection ended with FIN (true) or a reset / error (false). */
  readonly cleanClose: boolean;
  readonly error: string | null;
}

/**
 * Send a request head, then up to `bodyBytes` of body (chunked or raw) over a plain socket, reading the answer
 * while writing — what a shipper streaming a large batch does. Stops writing once the server has answered and
 * `stopOnAnswer` is set (curl's behaviour), else writes everything it can.
 */
function rawUpload(port: number, head: string, bodyBytes: number, chunked: boolean, stopOnAnswer = false): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const piece = Buffer.alloc(64 * 1024, 0x61);
    const framedPiece = chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece;
    let written = 0;
    let writtenAtResponse = -1;
    let response = '';
    let error: string | null = null;
    let clean = false;
    socket.on('data', (d: Buffer) => {
      if (writtenAtResponse < 0) writtenAtResponse = written;
      response += d.toString('latin1');
      if (stopOnAnswer) socket.end(); // curl: "HTTP error before end of send, stop sending", then it closes
    });
    socket.on('end', () => {
      clean = error === null;
      socket.end();
    });
    socket.on('error', (err) => {
      error = (err as NodeJS.ErrnoException).code ?? err.message;
    });
    socket.on('close', () => resolve({ response, writtenAtResponse, cleanClose: clean, error }));
    const pump = (): void => {
      while (written < bodyBytes && !socket.destroyed && !(stopOnAnswer && writtenAtResponse >= 0)) {
        written += piece.length;
        if (!socket.write(framedPiece)) {
          socket.once('drain', pump);
          return;
        }
      }
      if (chunked && !socket.destroyed && written >= bodyBytes) socket.write('0\r\n\r\n');
    };
    socket.write(head, pump);
  });
}

function statusOf(raw: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
}

function jsonOf(raw: string): Record<string, unknown> {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4).split('\n')[0] ?? '') as Record<string, unknown>;
}

describe('POST /v1/hints hardening (issue 11)', () => {
  let h: Harness;
  let origin: TestServer;
  let adminPort: number;

  const post = (body: string | Uint8Array, opts: { auth?: string; type?: string } = {}): Promise<Response> =>
    fetch(`${h.adminUrl}/v1/hints`, {
      method: 'POST',
      headers: { authorization: opts.auth ?? `Bearer ${TOKEN}`, 'content-type': opts.type ?? 'application/x-ndjson' },
      body,
    });

  beforeAll(async () => {
    origin = await startOrigin(echoHandler());
    h = await startHarness({
      policy: `version: 1
rules:
  - id: lolbin-egress
    when:
      process.name: { in: [rundll32.exe, mshta.exe] }
      url.path: { startswith: /c2 }
    action: block
`,
      config: {
        policy: 'policy:\n  files: ["POLICY_FILE"]\n  hint_wait: 1s',
        identity: `identity:\n  process_hmac_key: "${KEY}"`,
      },
    });
    adminPort = Number(new URL(h.adminUrl).port);
  });
  afterAll(async () => {
    await h.stop();
    await origin.close();
  });

  describe('413 for bodies over hints.max_body_bytes (10 MiB here)', () => {
    const head = (framing: string): string => `POST /v1/hints HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/x-ndjson\r\n${framing}\r\n`;

    it('a 50 MB chunked body: the client reads a JSON 413 while still sending, then the server closes cleanly', async () => {
      const r = await rawUpload(adminPort, head('Transfer-Encoding: chunked\r\n'), 50 * MB, true);
      expect(statusOf(r.response)).toBe(413);
      expect(r.response).toMatch(/\r\nconnection: close\r\n/i);
      expect(jsonOf(r.response)).toMatchObject({ code: 'BODY_TOO_LARGE', limit: 10_485_760, error: expect.stringMatching(/grew over hints\.max_body_bytes/) as unknown });
      // Answered at the limit, not after buffering the whole body.
      expect(r.writtenAtResponse).toBeGreaterThan(0);
      expect(r.writtenAtResponse).toBeLessThan(20 * MB);
      // The rest was read and discarded (lingering close), so the connection ends with FIN, not a reset.
      expect(r.error).toBeNull();
      expect(r.cleanClose).toBe(true);
    });

    it('a client that stops sending at the 413 (as curl does) gets it and a clean close', async () => {
      const r = await rawUpload(adminPort, head('Transfer-Encoding: chunked\r\n'), 50 * MB, true, true);
      expect(statusOf(r.response)).toBe(413);
      expect(jsonOf(r.response)['code']).toBe('BODY_TOO_LARGE');
      expect(r.error).toBeNull();
    });

    it('a declared Content-Length over the limit is answered before the body is read', async () => {
      const r = await rawUpload(adminPort, head(`Content-Length: ${50 * MB}\r\n`), 50 * MB, false);
      expect(statusOf(r.response)).toBe(413);
      expect(jsonOf(r.response)).toMatchObject({ code: 'BODY_TOO_LARGE', error: expect.stringMatching(/^Content-Length is over/) as unknown });
      expect(r.writtenAtResponse).toBeLessThan(20 * MB);
      expect(r.error).toBeNull();
    });

    it("Node's http client streaming a chunked body gets the 413 response, not an error", async () => {
      const got = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: adminPort, method: 'POST', path: '/v1/hints', headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        const piece = Buffer.alloc(256 * 1024, 0x20);
        let sent = 0;
        const pump = (): void => {
          while (sent < 30 * MB) {
            sent += piece.length;
            if (!req.write(piece)) return void req.once('drain', pump);
          }
          req.end();
        };
        pump();
      });
      expect(got.status).toBe(413);
      expect(JSON.parse(got.body)).toMatchObject({ code: 'BODY_TOO_LARGE' });
    });

    it('fetch with a Content-Length over the limit gets 413, and the listener keeps serving', async () => {
      const res = await post('x'.repeat(11 * MB));
      expect(res.status).toBe(413);
      expect(((await res.json()) as { code: string }).code).toBe('BODY_TOO_LARGE');
      expect((await post(JSON.stringify(eid3(1, 'C:\\a.exe')))).status).toBe(202);
    });

    /** Send a head with `Expect: 100-continue` and no body; resolve with what the server says first. */
    const firstAnswer = (headers: string): Promise<string> =>
      new Promise((resolve) => {
        const socket = net.connect(adminPort, '127.0.0.1');
        let got = '';
        const done = (): void => {
          socket.destroy();
          resolve(got);
        };
        const timer = setTimeout(done, 3000);
        socket.on('data', (c: Buffer) => {
          got += c.toString('latin1');
          if (got.includes('\r\n\r\n')) {
            clearTimeout(timer);
            done();
          }
        });
        socket.on('error', done);
        socket.write(`POST /v1/hints HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nExpect: 100-continue\r\n${headers}\r\n`);
      });

    it('Expect: 100-continue: a too-large announced body gets 413 before it is sent, a fitting one gets 100', async () => {
      const big = await firstAnswer(`Authorization: Bearer ${TOKEN}\r\nContent-Length: ${50 * MB}\r\n`);
      expect(big).toMatch(/^HTTP\/1\.1 413 /);
      expect(big).not.toContain('100 Continue');
      const small = await firstAnswer(`Authorization: Bearer ${TOKEN}\r\nContent-Length: 10\r\n`);
      expect(small).toMatch(/^HTTP\/1\.1 100 Continue/);
      const stranger = await firstAnswer(`Content-Length: 10\r\n`);
      expect(stranger).toMatch(/^HTTP\/1\.1 401 /);
    });
  });

  describe('400 when nothing in the body can be read as an event; 202 when some of it can', () => {
    it.each([
      ['text that is not JSON', 'hello world', /^nothing in the body can be read as an event: line 1 \(byte offset 0\) is not valid JSON/],
      ['a broken JSON array', '[{"EventID": 3},', /^body is not a valid JSON array/],
      ['a top-level number', '42', /line 1 \(byte offset 0\) is a number, not a JSON object/],
      ['NDJSON lines none of which is JSON', '\nfoo\nbar\n', /line 2 \(byte offset 1\) is not valid JSON.*\(and 1 more line\(s\), none a JSON object\)$/],
      ['a 3 MiB line without a newline', 'a'.repeat(3 * MB), /line 1 \(byte offset 0\) is longer than 1048576 bytes/],
      ['deeply nested arrays', `${'['.repeat(500_000)}${']'.repeat(500_000)}`, /^(no element of the JSON array is an object|body is not a valid JSON array)/],
    ])('%s → 400 with the reason', async (_intent, body, reason) => {
      const res = await post(body);
      expect(res.status).toBe(400);
      const answer = (await res.json()) as { error: string; code: string; accepted: number; rejected: number; errors: Array<{ index: number }> };
      expect(answer.code).toBe('HINT_PARSE');
      expect(answer.error).toMatch(reason);
      expect(answer).toMatchObject({ accepted: 0, rejected: 1, errors: [{ index: -1 }] });
    });

    it('invalid UTF-8 → 400 naming the byte offset', async () => {
      const res = await post(Buffer.concat([Buffer.from('{"Image":"C:\\\\'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]));
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/line 1 \(byte offset 0\) is not valid UTF-8 \(byte offset 14\)/);
    });

    it('a content type that is not JSON → 415', async () => {
      const res = await post('<html/>', { type: 'text/html' });
      expect(res.status).toBe(415);
      expect(((await res.json()) as { code: string }).code).toBe('HINT_CONTENT_TYPE');
    });

    it('good and bad events together → 202 with the counts (SPEC), bad lines named', async () => {
      const res = await post([JSON.stringify(eid3(2, 'C:\\a.exe')), 'not json', '{"EventID": 7}', '42'].join('\n'));
      expect(res.status).toBe(202);
      const body = (await res.json()) as { accepted: number; rejected: number; errors: Array<{ index: number; reason: string }> };
      expect([body.accepted, body.rejected]).toEqual([1, 3]);
      expect(body.errors[0]?.reason).toMatch(/^line 2 \(byte offset \d+\) is not valid JSON/);
    });

    it('only invalid events (but readable objects) → 202 with every event rejected; an empty body → 202 with zeros', async () => {
      const res = await post('{"EventID": 7}\n{}');
      expect(res.status).toBe(202);
      expect(await res.json()).toMatchObject({ accepted: 0, rejected: 2 });
      const empty = await post('');
      expect(empty.status).toBe(202);
      expect(await empty.json()).toMatchObject({ accepted: 0, rejected: 0 });
    });
  });

  describe('Authorization: the Bearer scheme is case-insensitive (RFC 9110 §11.1)', () => {
    const rawPost = (auth: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: adminPort, method: 'POST', path: '/v1/hints', headers: { authorization: auth, 'content-type': 'application/json' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end('[]');
      });

    it.each([`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER ${TOKEN}`, `bEaReR ${TOKEN}`, `Bearer   ${TOKEN}`, `Bearer\t${TOKEN}`, `  Bearer ${TOKEN}  `])('%j is accepted', async (auth) => {
      expect(await rawPost(auth)).toBe(202);
    });

    it.each([`Bearer${TOKEN}`, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `Basic ${TOKEN}`, `Bearer ${TOKEN} extra`, 'Bearer ', ''])('%j is refused with 401', async (auth) => {
      expect(await rawPost(auth)).toBe(401);
    });

    it('parseBearerToken / bearerTokenMatches (the check the admin listener runs)', () => {
      expect(parseBearerToken('BeArEr abc.DEF-_~+/==')).toBe('abc.DEF-_~+/==');
      expect(parseBearerToken('Bearer a=b')).toBeNull(); // token68: '=' only at the end
      expect(parseBearerToken(undefined)).toBeNull();
      expect(bearerTokenMatches('bearer  s3cret', 's3cret')).toBe(true);
      expect(bearerTokenMatches('Bearer s3cre', 's3cret')).toBe(false);
      expect(bearerTokenMatches('Bearer', '')).toBe(false);
    });
  });

  describe('control, bidi and invisible characters reach the record only as visible marks', () => {
    it('an RLO in the image name, a zero-width space in the user, an isolate in the host: marked and listed in egress.neutralized', async () => {
      const port = await freeSourcePort();
      const image = 'C:\\Users\\alice\\Downloads\\invoice\u202Eexe.pdf';
      const ev = { ...eid3(port, image), User: 'CORP\\al\u200bice', Hostname: 'WS\u20665' };
      expect((await post(JSON.stringify(ev))).status).toBe(202);
      const r = await curl(['-x', h.proxyUrl, '--local-port', String(port), `http://127.0.0.1:${origin.port}/c2/rlo`]);
      expect(r.status).toBe(200); // not rundll32.exe: its real name is not on the list (docs/process-hints.md)
      const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/c2/rlo');
      expect(field(rec, 'process.name')).toBe('invoice<U+202E>exe.pdf');
      expect(field(rec, 'process.executable')).toBe('C:\\Users\\alice\\Downloads\\invoice<U+202E>exe.pdf');
      expect(decodeNeutralized(field(rec, 'process.executable') as string)).toBe(image);
      expect(field(rec, 'user.name')).toBe('al<U+200B>ice');
      expect(field(rec, 'host.name')).toBe('ws<U+2066>5');
      expect(field(rec, 'egress.neutralized')).toEqual(['process.name', 'process.executable', 'user.name', 'host.name']);
      expect(JSON.stringify(rec)).not.toMatch(/[\u202e\u200b\u2066]/);
    });

    it('clean names are untouched and still match the policy; a zero-width spoof of rundll32.exe does not', async () => {
      const clean = await freeSourcePort();
      await post(JSON.stringify(eid3(clean, 'C:\\Windows\\System32\\rundll32.exe')));
      expect((await curl(['-x', h.proxyUrl, '--local-port', String(clean), `http://127.0.0.1:${origin.port}/c2/clean`])).status).toBe(403);
      const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/c2/clean');
      expect(field(rec, 'process.name')).toBe('rundll32.exe');
      expect(field(rec, 'egress.neutralized')).toBeUndefined();

      const spoof = await freeSourcePort();
      await post(JSON.stringify(eid3(spoof, 'C:\\Users\\Public\\rundll32\u200b.exe')));
      expect((await curl(['-x', h.proxyUrl, '--local-port', String(spoof), `http://127.0.0.1:${origin.port}/c2/spoof`])).status).toBe(200);
      const srec = await h.waitForRecord((x) => field(x, 'url.path') === '/c2/spoof');
      expect(field(srec, 'process.name')).toBe('rundll32<U+200B>.exe');
      expect(field(srec, 'egress.neutralized')).toEqual(['process.name', 'process.executable']);
    });

    it('the X-Egress-Process header path: a UTF-8 name with an RLO verifies and is recorded marked', async () => {
      const claim = signProcessClaim('invoice\u202Eexe.pdf', 77, KEY, Date.now());
      const r = await curl(['-x', h.proxyUrl, '-H', `X-Egress-Process: ${claim}`, `http://127.0.0.1:${origin.port}/claim-rlo`]);
      expect(r.status).toBe(200);
      const rec = await h.waitForRecord((x) => field(x, 'url.path') === '/claim-rlo');
      expect(field(rec, 'egress.claim.process_name')).toBe('invoice<U+202E>exe.pdf');
      expect(field(rec, 'egress.claim.verified')).toBe(true);
      expect(field(rec, 'egress.neutralized')).toContain('egress.claim.process_name');
    });

    it('rejection reasons quote values neutralised', async () => {
      const res = await post(JSON.stringify({ ...eid3(3, 'C:\\a.exe'), ProcessGuid: '\u202e{bad}' }));
      const body = (await res.json()) as { errors: Array<{ reason: string }> };
      expect(body.errors[0]?.reason).toBe('ProcessGuid: not a GUID: "<U+202E>{bad}"');
    });
  });
});

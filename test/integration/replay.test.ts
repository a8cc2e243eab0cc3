/**
 * `policy replay` on what the real proxy wrote (issue 12 done-when): drive HTTP and CONNECT flows to loopback
 * origins through the proxy with one policy, take its flow records, and replay them against a candidate that adds
 * one block rule — exactly the flows that rule matches are newly blocked — and against the same policy — exit 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { runPolicyReplay } from '../../src/cli/replay.js';
import { field, startHarness, type Harness } from '../helpers/harness.js';
import { curl, echoHandler, rawExchange, startOrigin, startTcpServer, type TestServer } from '../helpers/servers.js';

const POLICY = `version: 1
rules:
  - id: tag-odd-port
    when: { destination.port: { not_in: [80, 443] } }
    action: tag
    tags: [odd-port]
  - id: block-bad
    when: { destination.domain: { endswith: .bad.test } }
    action: block
    severity: medium
`;
const CANDIDATE = POLICY.replace('rules:\n', 'rules:\n  - id: block-c2\n    when: { destination.domain: { endswith: .c2.test } }\n    action: block\n    severity: high\n');

async function replay(flows: string, policy: string, against?: string): Promise<{ code: number; json: Record<string, unknown> }> {
  const stdout = new PassThrough();
  let out = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await runPolicyReplay(
    { flows: [flows], policy: [policy], ...(against === undefined ? {} : { against: [against] }), json: true, examples: 10 },
    { stdin: Readable.from([]), stdout, stderr: new PassThrough() },
  );
  return { code, json: JSON.parse(out) as Record<string, unknown> };
}

describe('policy replay over records the proxy wrote', () => {
  let h: Harness;
  let origin: TestServer;
  let echo: TestServer;
  let dir: string;
  const HOSTS = { 'www.test': { A: ['127.0.0.1'] }, 'beacon.c2.test': { A: ['127.0.0.1'] }, 'drop.c2.test': { A: ['127.0.0.1'] }, 'x.bad.test': { A: ['127.0.0.1'] } };

  beforeAll(async () => {
    origin = await startOrigin(echoHandler());
    echo = await startTcpServer();
    h = await startHarness({ policy: POLICY, dns: HOSTS });
    dir = await mkdtemp(join(tmpdir(), 'replay-int-'));
    // Plain HTTP: an ordinary site, a C2 beacon, a host the policy already blocks.
    for (const host of ['www.test', 'beacon.c2.test', 'x.bad.test']) await curl(['-s', '-x', h.proxyUrl, `http://${host}:${origin.port}/p?q=1`]);
    // CONNECT tunnels: an ordinary one and one to the C2 domain.
    for (const host of ['www.test', 'drop.c2.test']) await rawExchange(h.port, `CONNECT ${host}:${echo.port} HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 500);
    const want = (host: string, method: string): Promise<unknown> =>
      h.waitForRecord((r) => field(r, 'destination.domain') === host && field(r, 'http.request.method') === method);
    await Promise.all([want('www.test', 'GET'), want('beacon.c2.test', 'GET'), want('x.bad.test', 'GET'), want('www.test', 'CONNECT'), want('drop.c2.test', 'CONNECT')]);
    await writeFile(join(dir, 'flows.jsonl'), `${h.records.map((r) => JSON.stringify(r)).join('\n')}\n`);
    await writeFile(join(dir, 'policy.yaml'), POLICY);
    await writeFile(join(dir, 'candidate.yaml'), CANDIDATE);
  }, 30_000);

  afterAll(async () => {
    await h?.stop();
    await origin?.close();
    await echo?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('a candidate with one more block rule lists exactly the flows that rule blocks (HTTP and CONNECT), with examples', async () => {
    const { code, json } = await replay(join(dir, 'flows.jsonl'), join(dir, 'candidate.yaml'));
    expect(code).toBe(3);
    expect(json['total']).toBe(h.records.length);
    const changes = json['changes'] as Array<{ rule: string; change: string; count: number; examples: Array<{ destination: string; url: string | null }> }>;
    const blocked = changes.filter((c) => c.change === 'newly_blocked');
    expect(blocked.map((c) => [c.rule, c.count])).toEqual([['block-c2', 2]]);
    expect(blocked[0]?.examples.map((e) => e.destination.split(':')[0]).sort()).toEqual(['beacon.c2.test', 'drop.c2.test']);
    expect(blocked[0]?.examples.map((e) => e.url).sort()).toEqual([`drop.c2.test:${echo.port}`, `http://beacon.c2.test:${origin.port}/p?q=1`]);
    // The new rule has a severity; the odd-port tag no longer reaches the flows it now decides first.
    expect(changes.filter((c) => c.change !== 'newly_blocked').map((c) => [c.rule, c.change, c.count])).toEqual([
      ['block-c2', 'newly_alerted', 2],
      ['tag-odd-port', 'tags_changed', 2],
    ]);
  });

  it('the policy that was in force: exit 0, no change (recorded decisions and --against alike)', async () => {
    const recorded = await replay(join(dir, 'flows.jsonl'), join(dir, 'policy.yaml'));
    expect(recorded).toMatchObject({ code: 0, json: { changed: 0, changes: [], invalid_lines: 0 } });
    expect((recorded.json['replayed'] as number) > 0).toBe(true);
    const against = await replay(join(dir, 'flows.jsonl'), join(dir, 'candidate.yaml'), join(dir, 'candidate.yaml'));
    expect(against).toMatchObject({ code: 0, json: { changed: 0 } });
  });
});

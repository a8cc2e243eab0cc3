import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createWorkerLink, type WorkerChannel } from '../../../src/cluster/worker-link.js';
import { isPrimaryMessage, isWorkerMessage, type PrimaryMessage, type WorkerMessage } from '../../../src/cluster/messages.js';
import { networkEvent } from '../../helpers/hint-events.js';

/** A channel whose other end is the test: `sent` collects, `deliver` plays the primary. */
function fakeChannel(opts: { fail?: boolean; hold?: boolean } = {}): WorkerChannel & { sent: WorkerMessage[]; deliver: (m: unknown) => void; release: () => void } {
  let listener: (m: unknown) => void = () => undefined;
  const held: (() => void)[] = [];
  const sent: WorkerMessage[] = [];
  return {
    sent,
    deliver: (m) => listener(m),
    release: () => held.splice(0).forEach((f) => f()),
    send(message, done) {
      sent.push(message);
      if (opts.hold === true) held.push(() => done(null));
      else done(opts.fail === true ? new Error('channel closed') : null);
    },
    onMessage(l) {
      listener = l;
    },
  };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('the worker link', () => {
  it('shares of one event-loop turn leave as one message', async () => {
    const ch = fakeChannel();
    const link = createWorkerLink(ch, 1);
    link.shareHints([networkEvent(1)]);
    link.shareDns([['10.0.0.1', 'a.example', '192.0.2.1']]);
    link.shareHints([networkEvent(2)]);
    expect(ch.sent).toHaveLength(0);
    await turn();
    expect(ch.sent).toHaveLength(1);
    const m = ch.sent[0];
    expect(m?.kind).toBe('share');
    if (m?.kind === 'share') {
      expect(m.hints.map((e) => e.timeMs)).toEqual([1, 2]);
      expect(m.dns).toEqual([['10.0.0.1', 'a.example', '192.0.2.1']]);
    }
  });

  it('the outbox and the unsent messages are bounded: the rest is dropped and reported', async () => {
    let dropped = 0;
    const ch = fakeChannel({ hold: true });
    const link = createWorkerLink(ch, 1, { maxOutbox: 3, maxUnsentShares: 1, onShareDropped: (n) => (dropped += n) });
    link.shareDns([
      ['c', 'n', '192.0.2.1'],
      ['c', 'n', '192.0.2.2'],
    ]);
    link.shareDns([
      ['c', 'n', '192.0.2.3'],
      ['c', 'n', '192.0.2.4'],
    ]); // over maxOutbox
    expect(dropped).toBe(2);
    await turn();
    link.shareDns([['c', 'n', '192.0.2.5']]);
    await turn(); // the first message is still unsent: this batch is dropped
    expect(dropped).toBe(3);
    ch.release();
    link.shareDns([['c', 'n', '192.0.2.6']]);
    await turn();
    expect(ch.sent.filter((m) => m.kind === 'share')).toHaveLength(2);
    expect(dropped).toBe(3);
  });

  it('shares from the primary reach every applier; malformed messages are ignored', () => {
    const ch = fakeChannel();
    const link = createWorkerLink(ch, 2);
    const got: string[] = [];
    link.onDns((items) => items.forEach(([, name]) => got.push(name)));
    link.onHints((events) => events.forEach((e) => got.push(e.kind)));
    ch.deliver({ kind: 'share', hints: [networkEvent(1)], dns: [['c', 'x.example', '192.0.2.1']] });
    ch.deliver({ kind: 'share', hints: [{ kind: 'network' }], dns: [] }); // no timeMs: not a hint event
    ch.deliver({ kind: 'share', hints: [], dns: [['c', 42, '192.0.2.1']] });
    ch.deliver('share');
    ch.deliver(null);
    expect(got).toEqual(['network', 'x.example']);
  });

  it('questions to the primary are matched to their answers by id', async () => {
    const ch = fakeChannel();
    const link = createWorkerLink(ch, 1);
    const a = link.scrape();
    const b = link.reloadAll();
    const [qa, qb] = ch.sent;
    expect(qa?.kind).toBe('metrics');
    expect(qb?.kind).toBe('reload-all');
    const idOf = (m: WorkerMessage | undefined): number => (m !== undefined && 'id' in m ? m.id : -1);
    ch.deliver({ kind: 'reload-all-done', id: idOf(qb), result: { ok: true, sha256: 'aa', errors: [], workers: [] } } satisfies PrimaryMessage);
    ch.deliver({ kind: 'metrics-text', id: idOf(qa), contentType: 'text/plain', text: 'egress_flows_total 3\n' } satisfies PrimaryMessage);
    expect(await a).toEqual({ contentType: 'text/plain', text: 'egress_flows_total 3\n' });
    expect((await b).sha256).toBe('aa');
  });

  it('a question the primary does not answer fails after requestTimeoutMs; one it cannot send fails at once', async () => {
    const link = createWorkerLink(fakeChannel(), 1, { requestTimeoutMs: 20 });
    await expect(link.status()).rejects.toThrow(/did not answer within 20 ms/);
    const broken = createWorkerLink(fakeChannel({ fail: true }), 1, { requestTimeoutMs: 60_000 });
    await expect(broken.status()).rejects.toThrow(/channel closed/);
  });

  it('answers the primary: reload and collect, by id', async () => {
    const ch = fakeChannel();
    const link = createWorkerLink(ch, 1);
    link.onReload(() => Promise.resolve({ ok: false, sha256: 'aa', errors: ['p.yaml:1:1: bad'] }));
    link.onCollect(() => Promise.resolve([]));
    ch.deliver({ kind: 'reload', id: 7 });
    ch.deliver({ kind: 'collect', id: 8 });
    await turn();
    expect(ch.sent).toEqual([
      { kind: 'reloaded', id: 7, result: { ok: false, sha256: 'aa', errors: ['p.yaml:1:1: bad'] } },
      { kind: 'collected', id: 8, metrics: [] },
    ]);
  });

  it('a stop that arrives while the worker is still starting runs once it can stop', () => {
    const ch = fakeChannel();
    const link = createWorkerLink(ch, 1);
    ch.deliver({ kind: 'stop' });
    let stops = 0;
    link.onStop(() => stops++);
    expect(stops).toBe(1);
  });

  it('sendDrained sends what is still in the outbox first', async () => {
    const ch = fakeChannel();
    const link = createWorkerLink(ch, 1);
    link.shareDns([['c', 'n', '192.0.2.1']]);
    await link.sendDrained();
    expect(ch.sent.map((m) => m.kind)).toEqual(['share', 'drained']);
  });
});

describe('message guards', () => {
  it('never throw, whatever arrives', () => {
    fc.assert(
      fc.property(fc.anything(), (m) => {
        expect(typeof isWorkerMessage(m)).toBe('boolean');
        expect(typeof isPrimaryMessage(m)).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    [{ kind: 'flow-lines', lines: new Uint8Array([0x7b, 0x7d, 0x0a]), count: 1 }, true],
    [{ kind: 'flow-lines', lines: '{}\n', count: 1 }, false],
    [{ kind: 'flow-lines', lines: new Uint8Array(1), count: -1 }, false],
    [{ kind: 'ready', proxy: { address: '127.0.0.1', family: 'IPv4', port: 1 }, admin: { address: '127.0.0.1', family: 'IPv4', port: 2 }, dns: null }, true],
    [{ kind: 'ready', proxy: { address: '127.0.0.1', family: 'IPv4', port: 1 }, admin: null, dns: null }, false],
    [{ kind: 'reloaded', id: 1, result: { ok: true, sha256: 'aa', errors: [] } }, true],
    [{ kind: 'reloaded', id: 1, result: { ok: 'yes', sha256: 'aa', errors: [] } }, false],
    [{ kind: 'start-failed', code: 'POLICY_INVALID', message: 'p.yaml:4:7: unknown field' }, true],
    [{ kind: 'start-failed', code: null, message: 'EADDRINUSE' }, true],
    [{ kind: 'start-failed', code: 'toString', message: 'x' }, false],
    [{ kind: 'bogus' }, false],
  ])('worker message %#', (m, valid) => {
    expect(isWorkerMessage(m)).toBe(valid);
  });
});

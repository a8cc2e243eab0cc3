import { afterEach, describe, expect, it, vi } from 'vitest';
import { createIpcFlowLog, type LineSender } from '../../../src/cluster/ipc-flow-log.js';

interface Sent {
  text: string;
  count: number;
  done: (err: Error | null) => void;
}

/** A channel that holds each batch until the test says it is on the wire. */
function fakeChannel(): { send: LineSender; sent: Sent[] } {
  const sent: Sent[] = [];
  return { sent, send: (lines, count, done) => void sent.push({ text: lines.toString('utf8'), count, done }) };
}

describe('the IPC flow log of a worker', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends whole lines, in order, in batches of about batchBytes', () => {
    const ch = fakeChannel();
    const log = createIpcFlowLog(ch.send, () => undefined, { batchBytes: 100 });
    for (let i = 0; i < 20; i++) log.write(JSON.stringify({ n: i, pad: 'x'.repeat(20) }));
    expect(ch.sent.length).toBeGreaterThanOrEqual(5);
    for (const b of ch.sent) {
      expect(b.text.endsWith('\n')).toBe(true);
      expect(b.text.split('\n').length - 1).toBe(b.count);
    }
    log.flush();
    const all = ch.sent.map((b) => b.text).join('');
    expect(all.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { n: number }).n)).toEqual([...Array(20).keys()]);
  });

  it('a record written alone goes out after flushEveryMs', () => {
    vi.useFakeTimers();
    const ch = fakeChannel();
    const log = createIpcFlowLog(ch.send, () => undefined, { batchBytes: 1 << 20, flushEveryMs: 100 });
    log.write('{"a":1}');
    expect(ch.sent).toHaveLength(0);
    vi.advanceTimersByTime(99);
    expect(ch.sent).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(ch.sent.map((b) => b.text)).toEqual(['{"a":1}\n']);
  });

  it('close() sends what is queued and waits until every batch is on the channel; later writes are ignored', async () => {
    const ch = fakeChannel();
    const log = createIpcFlowLog(ch.send, () => undefined, { batchBytes: 1 << 20 });
    log.write('{"a":1}');
    let closed = false;
    const closing = log.close().then(() => (closed = true));
    await Promise.resolve();
    expect(ch.sent).toHaveLength(1);
    expect(closed).toBe(false);
    ch.sent[0]?.done(null);
    await closing;
    expect(closed).toBe(true);
    log.write('{"late":1}');
    log.flush();
    expect(ch.sent).toHaveLength(1);
  });

  it('close() gives up after closeTimeoutMs when the channel never takes the batch', async () => {
    const ch = fakeChannel();
    const log = createIpcFlowLog(ch.send, () => undefined, { closeTimeoutMs: 20 });
    log.write('{"a":1}');
    const t0 = Date.now();
    await log.close();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(15);
  });

  it('counts records beyond the backlog, and those of a batch the channel failed to send, as dropped', () => {
    const ch = fakeChannel();
    let dropped = 0;
    const log = createIpcFlowLog(ch.send, (n) => (dropped += n), { batchBytes: 10, maxBacklogBytes: 50 });
    for (let i = 0; i < 10; i++) log.write('{"n":12345}'); // 12 bytes each; nothing is acknowledged
    expect(dropped).toBeGreaterThan(0);
    const sentRecords = ch.sent.reduce((s, b) => s + b.count, 0);
    expect(sentRecords + dropped).toBe(10);
    const before = dropped;
    ch.sent[0]?.done(new Error('channel closed'));
    expect(dropped).toBe(before + (ch.sent[0]?.count ?? 0));
  });
});

import { describe, expect, it } from 'vitest';
import { NoAnswer, startStoreThread } from '../../src/store-thread.js';

// A thread that answers {id, echo}, ignores "slow" requests, dies on "crash", and exits on {t: 'close'}.
const SOURCE = `
parentPort.on('message', (m) => {
  if (m.t === 'close') { parentPort.close(); return; }
  if (m.t === 'slow') return;
  if (m.t === 'crash') process.exit(3);
  if (m.t === 'block') { const end = Date.now() + m.ms; while (Date.now() < end); parentPort.postMessage({ id: m.id }); return; }
  if (m.t === 'bad') { parentPort.postMessage({ id: m.id, error: 'refused' }); return; }
  parentPort.postMessage({ id: m.id, echo: m.v });
});
parentPort.postMessage({ id: 0, hello: workerData.hello, threadId: require('node:worker_threads').threadId });
`;

function start(onDied: (m: string) => void = () => undefined) {
  return startStoreThread({ source: SOURCE, workerData: { hello: 'hi' }, name: 'test thread', startTimeoutMs: 5_000, onDied });
}

describe('startStoreThread', () => {
  it('hands over the ready message, answers requests by id, and closes without a death notice', async () => {
    const died: string[] = [];
    const { thread, ready } = start((m) => died.push(m));
    expect((await ready).hello).toBe('hi');
    const answers = await Promise.all([thread.call({ t: 'echo', v: 1 }), thread.call({ t: 'echo', v: 2 })]);
    expect(answers.map((a) => a.echo)).toEqual([1, 2]);
    await expect(thread.call({ t: 'bad' })).rejects.toThrow('refused');
    await thread.close({ t: 'close' });
    expect(thread.alive()).toBe(false);
    expect(died).toEqual([]);
  });

  it('a request without an answer in time is rejected with NoAnswer', async () => {
    const { thread, ready } = start();
    await ready;
    await expect(thread.call({ t: 'slow' }, { ms: 50, message: 'no answer' })).rejects.toBeInstanceOf(NoAnswer);
    await thread.kill();
  });

  it('a thread that dies fails what waits, says so once, and refuses later calls', async () => {
    const died: string[] = [];
    const { thread, ready } = start((m) => died.push(m));
    await ready;
    const waiting = thread.call({ t: 'slow' });
    void thread.call({ t: 'crash' }).catch(() => undefined);
    await expect(waiting).rejects.toThrow('the test thread exited (3)');
    expect(died).toEqual(['the test thread exited (3)']);
    expect(thread.alive()).toBe(false);
    await expect(thread.call({ t: 'echo', v: 1 })).rejects.toThrow('exited');
  });

  it('a thread that does not start is reported and terminated', async () => {
    const { ready } = startStoreThread({ source: 'setInterval(() => {}, 1000);', workerData: null, name: 'mute thread', startTimeoutMs: 100, onDied: () => undefined });
    await expect(ready).rejects.toThrow('the mute thread did not start');
  });

  it('runs every store of the process on one thread, and ends that thread with the last store', async () => {
    const a = start();
    const b = start();
    const [readyA, readyB] = await Promise.all([a.ready, b.ready]);
    expect(typeof readyA.threadId).toBe('number');
    expect(readyB.threadId).toBe(readyA.threadId);
    expect((await b.thread.call({ t: 'echo', v: 'b' })).echo).toBe('b');
    await a.thread.close({ t: 'close' });
    expect((await b.thread.call({ t: 'echo', v: 'still' })).echo).toBe('still');
    await b.thread.close({ t: 'close' });
    // Both closed: the next store starts on a new thread.
    const c = start();
    expect((await c.ready).threadId).not.toBe(readyA.threadId);
    await c.thread.close({ t: 'close' });
  });

  it('a store that crashes its thread fails every store on it, each told once, and the next store gets a new thread', async () => {
    const died: string[] = [];
    const a = start((m) => died.push(`a: ${m}`));
    const b = start((m) => died.push(`b: ${m}`));
    const first = await a.ready;
    await b.ready;
    const waitingOnB = b.thread.call({ t: 'slow' });
    void a.thread.call({ t: 'crash' }).catch(() => undefined);
    await expect(waitingOnB).rejects.toThrow('the test thread exited (3)');
    expect(died.sort()).toEqual(['a: the test thread exited (3)', 'b: the test thread exited (3)']);
    const c = start();
    expect((await c.ready).threadId).not.toBe(first.threadId);
    await c.thread.close({ t: 'close' });
  });

  it('killing a store stuck in a synchronous call ends its thread; the others are told and a new store starts anew', async () => {
    const died: string[] = [];
    const stuck = start();
    const other = start((m) => died.push(m));
    const first = await stuck.ready;
    await other.ready;
    // One store holds the thread (a long synchronous call), so the other's request waits behind it.
    void stuck.thread.call({ t: 'block', ms: 3_000 }).catch(() => undefined);
    const behind = other.thread.call({ t: 'echo', v: 1 });
    await expect(stuck.thread.call({ t: 'echo', v: 2 }, { ms: 100, message: 'no answer' })).rejects.toBeInstanceOf(NoAnswer);
    await stuck.thread.kill();
    await expect(behind).rejects.toThrow('stopped');
    expect(died).toEqual(['the test thread was stopped with its thread']);
    expect(other.thread.alive()).toBe(false);
    const fresh = start();
    expect((await fresh.ready).threadId).not.toBe(first.threadId);
    expect((await fresh.thread.call({ t: 'echo', v: 3 })).echo).toBe(3);
    await fresh.thread.close({ t: 'close' });
  });

  it('a source that throws while starting is reported, and the thread serves the others', async () => {
    const good = start();
    await good.ready;
    const bad = startStoreThread({ source: 'throw new Error("no database here")', workerData: null, name: 'broken thread', startTimeoutMs: 5_000, onDied: () => undefined });
    await expect(bad.ready).rejects.toThrow('the broken thread failed to start: no database here');
    expect((await good.thread.call({ t: 'echo', v: 'ok' })).echo).toBe('ok');
    await good.thread.close({ t: 'close' });
  });
});

import { describe, expect, it } from 'vitest';
import { NoAnswer, startStoreThread } from '../../src/store-thread.js';

// A thread that answers {id, echo}, ignores "slow" requests, dies on "crash", and exits on {t: 'close'}.
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
parentPort.on('message', (m) => {
  if (m.t === 'close') { parentPort.close(); return; }
  if (m.t === 'slow') return;
  if (m.t === 'crash') process.exit(3);
  if (m.t === 'bad') { parentPort.postMessage({ id: m.id, error: 'refused' }); return; }
  parentPort.postMessage({ id: m.id, echo: m.v });
});
parentPort.postMessage({ id: 0, hello: workerData.hello });
`;
const LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 };

function start(onDied: (m: string) => void = () => undefined) {
  return startStoreThread({ source: SOURCE, workerData: { hello: 'hi' }, resourceLimits: LIMITS, name: 'test thread', startTimeoutMs: 5_000, onDied });
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
    const { ready } = startStoreThread({ source: 'setInterval(() => {}, 1000);', workerData: null, resourceLimits: LIMITS, name: 'mute thread', startTimeoutMs: 100, onDied: () => undefined });
    await expect(ready).rejects.toThrow('the mute thread did not start');
  });
});

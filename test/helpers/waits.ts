/** Waiting helpers shared by the store tests (baseline, hint store, console history): bounded, polling. */

/** Polls `pred` every 10 ms until it holds; rejects naming `what` after `ms`. Resolves with the time waited. */
export async function waitFor(pred: () => boolean | Promise<boolean>, ms = 5_000, what = 'condition'): Promise<number> {
  const start = Date.now();
  while (!(await pred())) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - start;
}

/** The error `p` rejects with; fails when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

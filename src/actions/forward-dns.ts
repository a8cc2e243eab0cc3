/**
 * The DNS forwarder's upstream client: sends a client's query to `dns.upstream` and returns the answer with
 * the client's own ID put back.
 *
 * - UDP first, from a small pool of sockets on OS-chosen ports, with a per-try timeout; a try that times out
 *   moves on to the next server, `tries` rounds over the server list in all.
 * - Every upstream query gets a fresh random ID from `crypto` (RFC 5452 §9.2); the client's ID never leaves
 *   the box. An answer is accepted only when it comes from the address and port the query went to, carries
 *   the ID, is a response, and asks the same question (name case-insensitively, type and class: RFC 5452
 *   §4.2, RFC 1035 §7.3). Anything else is dropped and counted, and the real answer is still waited for.
 * - TC set (RFC 1035 §4.2.1, RFC 7766 §5) → the query is asked again over TCP with two-byte length framing
 *   (RFC 1035 §4.2.2).
 * - The client's bytes are forwarded as they are apart from the ID, so EDNS (the OPT record, its options, DO)
 *   passes through untouched in both directions (RFC 6891).
 *
 * The hot path is one query object per client query and no timer of its own: every UDP try waits the same
 * `timeoutMs`, so deadlines come due in the order tries start, and one queue with one timer serves them all
 * (DeadlineQueue). Once the server list is known, nothing is awaited before a query goes out; queries of one
 * event-loop turn are sent back to back at its end (flushSends). The answer's bytes are handed back with the
 * client's ID written in place (the datagram is ours), not copied.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, isIPv6, type Socket as TcpSocket } from 'node:net';
import type { HostPort } from '../config/listen.js';
import { createDnsFrameReader, frameDnsMessage } from '../parsers/dns-framing.js';
import {
  DNS_HEADER_LENGTH,
  RCODE,
  inspectDnsMessage,
  isSameQuestion,
  withId,
  type DnsMessageView,
  type DnsQuestion,
} from '../parsers/dns-message.js';

export type DnsTransport = 'udp' | 'tcp';
export type UpstreamOutcome = 'answer' | 'timeout' | 'error';
/** Why an upstream datagram was not taken as the answer (a spoofing attempt, a late or confused server). */
export type UpstreamDropReason = 'unknown_id' | 'wrong_source' | 'wrong_question' | 'malformed';

export interface DnsForwarderOptions {
  /** Upstream servers, in the order they are tried; a promise while /etc/resolv.conf is read. */
  readonly servers: readonly HostPort[] | Promise<readonly HostPort[]>;
  /** Per-try timeout (UDP), and the whole TCP exchange's timeout. */
  readonly timeoutMs: number;
  /** Rounds over the server list (≥ 1). */
  readonly tries: number;
  /** Queries waiting for upstream answers at once; over it a query fails at once. Default 10000. */
  readonly maxInflight?: number;
  /** UDP sockets per address family. Default 8. */
  readonly sockets?: number;
  /** One upstream exchange finished (for the latency histogram). */
  readonly onExchange?: (transport: DnsTransport, outcome: UpstreamOutcome, seconds: number) => void;
  readonly onDrop?: (reason: UpstreamDropReason) => void;
}

export type ForwardResult =
  | {
      readonly ok: true;
      /** The answer to send back, with the client's ID. */
      readonly response: Buffer;
      readonly view: DnsMessageView;
      readonly transport: DnsTransport;
      readonly server: string;
    }
  | { readonly ok: false; readonly message: string };

type Answered = Extract<ForwardResult, { ok: true }>;

export interface DnsForwarder {
  /** Forward `raw` (a validated query asking `question`); never rejects. `raw` is not modified. */
  forward(raw: Uint8Array, question: DnsQuestion): Promise<ForwardResult>;
  close(): void;
}

interface PoolSocket {
  readonly socket: UdpSocket;
  /** Queries waiting on this socket, by the ID they were sent with. */
  readonly pending: Map<number, Ask>;
}

/** One configured server: its UDP sockets (connected to it, so the kernel drops datagrams from anyone else). */
interface Upstream {
  readonly server: HostPort;
  /** `host:port` / `[v6]:port`, made once (records and messages name the server). */
  readonly text: string;
  readonly sockets: PoolSocket[];
}

/** One client query on its way through the server list. Plain mutable state; one object per query. */
class Ask {
  readonly raw: Uint8Array;
  readonly question: DnsQuestion;
  readonly clientId: number;
  readonly list: readonly Upstream[];
  readonly resolve: (result: ForwardResult) => void;
  /** Round over the list, and the index of the next server to try in it. */
  round = 0;
  next = 0;
  /** Servers that answered SERVFAIL/REFUSED: not asked again (created on the first). */
  answered: Set<number> | null = null;
  fallback: ForwardResult | null = null;
  lastReason = 'no answer';
  settled = false;
  // The UDP try in flight (socket null when none).
  socket: PoolSocket | null = null;
  server = 0;
  id = 0;
  started = 0;
  deadline = 0;
  /** Position in the deadline queue. */
  slot = -1;
  /** UDP tries started so far: tells a queued datagram whether its try is still the current one. */
  tries = 0;

  constructor(raw: Uint8Array, question: DnsQuestion, list: readonly Upstream[], resolve: (result: ForwardResult) => void) {
    this.raw = raw;
    this.question = question;
    this.clientId = ((raw[0] as number) << 8) | (raw[1] as number);
    this.list = list;
    this.resolve = resolve;
  }
}

type TcpExchange = { readonly kind: 'answer'; readonly msg: Buffer; readonly view: DnsMessageView } | { readonly kind: 'failed'; readonly reason: string };

const DEFAULT_SOCKETS = 8;
const DEFAULT_MAX_INFLIGHT = 10_000;
const RANDOM_POOL = 4096;
const INITIAL_QUEUE = 1024;

/** Random 16-bit values from `crypto`, drawn in blocks so a query does not pay a syscall. */
function createIdSource(): () => number {
  let pool = randomBytes(RANDOM_POOL);
  let at = 0;
  return () => {
    if (at + 2 > pool.length) {
      pool = randomBytes(RANDOM_POOL);
      at = 0;
    }
    const v = ((pool[at] as number) << 8) | (pool[at + 1] as number);
    at += 2;
    return v;
  };
}

function serverText(s: HostPort): string {
  return isIPv6(s.host) ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

/** rinfo.address and a configured IPv6 server can spell one address differently; compare canonical forms. */
function canonicalHost(host: string): string {
  if (!isIPv6(host)) return host;
  return new URL(`http://[${host}]/`).hostname.slice(1, -1);
}

/**
 * The timeouts of every UDP try, oldest first. Each try waits the same time, so a try started later is due
 * later: a FIFO ring holds them, and one timer, armed for the oldest live one, serves them all. A try that ends
 * early leaves a hole (null), so no finished query stays referenced; holes are skipped as the head reaches them.
 */
export class DeadlineQueue<T extends { deadline: number }> {
  private items: (T | null)[] = new Array<T | null>(INITIAL_QUEUE).fill(null);
  private mask = INITIAL_QUEUE - 1;
  /** Absolute positions: [head, tail) are queued. */
  private head = 0;
  private tail = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Inside `expire`: items pushed by the handlers are armed for once the pass is over. */
  private expiring = false;
  private readonly onExpired: (item: T) => void;
  private readonly now: () => number;

  constructor(onExpired: (item: T) => void, now: () => number = () => performance.now()) {
    this.onExpired = onExpired;
    this.now = now;
  }

  /** Queues an item whose deadline is not before any queued one's; returns its slot for `remove`. */
  push(item: T): number {
    if (this.tail - this.head > this.mask) this.grow();
    const slot = this.tail++;
    this.items[slot & this.mask] = item;
    if (this.timer === null && !this.expiring) this.arm();
    return slot;
  }

  /** The item of `slot` is done before its deadline. */
  remove(slot: number): void {
    if (slot >= this.head && slot < this.tail) this.items[slot & this.mask] = null;
  }

  /** Queued slots, holes included (tests). */
  get length(): number {
    return this.tail - this.head;
  }

  clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.items.fill(null);
    this.head = this.tail;
  }

  private grow(): void {
    const size = (this.mask + 1) * 2;
    const items = new Array<T | null>(size).fill(null);
    for (let at = this.head; at < this.tail; at++) items[at & (size - 1)] = this.items[at & this.mask] ?? null;
    this.items = items;
    this.mask = size - 1;
  }

  private arm(): void {
    while (this.head < this.tail && this.items[this.head & this.mask] === null) this.head++;
    const first = this.head < this.tail ? this.items[this.head & this.mask] : null;
    if (first === null || first === undefined) return;
    this.timer = setTimeout(() => this.expire(), Math.max(1, Math.ceil(first.deadline - this.now())));
  }

  private expire(): void {
    this.timer = null;
    const now = this.now();
    this.expiring = true;
    try {
      while (this.head < this.tail) {
        const at = this.head & this.mask;
        const item = this.items[at] ?? null;
        if (item !== null && item.deadline > now) break;
        this.items[at] = null;
        this.head++;
        if (item !== null) this.onExpired(item);
      }
    } finally {
      this.expiring = false;
    }
    this.arm();
  }
}

export function createDnsForwarder(opts: DnsForwarderOptions): DnsForwarder {
  const nextRandom = createIdSource();
  const poolSize = Math.max(1, opts.sockets ?? DEFAULT_SOCKETS);
  const maxInflight = opts.maxInflight ?? DEFAULT_MAX_INFLIGHT;
  const tries = Math.max(1, opts.tries);
  const tcpSockets = new Set<TcpSocket>();
  const deadlines = new DeadlineQueue<Ask>(onTimeout);
  /** The servers with their sockets, once known (null while /etc/resolv.conf is read). */
  let upstreams: readonly Upstream[] | null = null;
  let inflight = 0;
  let closed = false;
  /** UDP tries waiting for the end of this event-loop turn to be sent (flushSends), with their datagrams. */
  let outbox: Ask[] = [];
  let outboxTries: number[] = [];
  let outboxBytes: Buffer[] = [];
  let flushQueued = false;
  const ready: Promise<readonly Upstream[]> = Promise.resolve(opts.servers).then(async (list) => {
    const made = list.map((s): Upstream => {
      const server = { host: canonicalHost(s.host), port: s.port };
      return { server, text: serverText(server), sockets: [] };
    });
    await Promise.all(made.map(openPool));
    upstreams = made;
    return made;
  });
  ready.catch(() => undefined);

  /**
   * Connected sockets (connect(2) on UDP): sends skip the per-datagram address lookup, the kernel delivers only
   * datagrams from the server, and an ICMP port-unreachable comes back as ECONNREFUSED, so a server that is down
   * fails its queries at once instead of after the timeout. Ports are chosen by the OS (RFC 5452 §9.2 wants
   * them random; Linux picks ephemeral ports at random).
   */
  async function openPool(up: Upstream): Promise<void> {
    const { server } = up;
    await Promise.all(
      Array.from({ length: poolSize }, async () => {
        const socket = createSocket({ type: isIPv6(server.host) ? 'udp6' : 'udp4' });
        const entry: PoolSocket = { socket, pending: new Map() };
        socket.on('message', (msg, rinfo) => onDatagram(entry, msg, rinfo.address, rinfo.port));
        socket.on('error', (err: NodeJS.ErrnoException) => failAll(entry, `${up.text}: ${err.code ?? err.message}`));
        await new Promise<void>((resolve) => {
          socket.once('error', () => resolve());
          socket.connect(server.port, server.host, () => resolve());
        });
        socket.unref();
        if (closed) socket.close();
        else up.sockets.push(entry);
      }),
    );
  }

  function finish(ask: Ask, result: ForwardResult): void {
    if (ask.settled) return;
    ask.settled = true;
    inflight--;
    ask.resolve(result);
  }

  /** The UDP try in flight is over (answered, failed or timed out): forget its ID and its deadline. */
  function endTry(ask: Ask): number {
    const entry = ask.socket;
    if (entry !== null) entry.pending.delete(ask.id);
    deadlines.remove(ask.slot);
    ask.socket = null;
    return (performance.now() - ask.started) / 1000;
  }

  /** Sends to the next server not yet done with, or settles the query when every try is spent. */
  function tryNext(ask: Ask): void {
    const list = ask.list;
    for (;;) {
      if (closed) return finish(ask, { ok: false, message: 'the DNS forwarder is closed' });
      if (ask.next >= list.length) {
        ask.round++;
        ask.next = 0;
        if (ask.round >= tries) return finish(ask, ask.fallback ?? { ok: false, message: ask.lastReason });
      }
      const index = ask.next++;
      if (ask.answered?.has(index) === true) continue;
      if (sendUdp(ask, index)) return;
    }
  }

  /** Starts a UDP try to server `index`; false (with `lastReason`) when it could not be sent. */
  function sendUdp(ask: Ask, index: number): boolean {
    const up = ask.list[index] as Upstream;
    const pool = up.sockets;
    if (pool.length === 0) {
      ask.lastReason = `no socket to ${up.text}`;
      return false;
    }
    const entry = pool[nextRandom() % pool.length] as PoolSocket;
    let id = nextRandom();
    // Never two queries with one ID on one socket: the second answer would be taken for the first.
    for (let guard = 0; entry.pending.has(id); guard++) {
      if (guard > 64) {
        ask.lastReason = 'no free query ID';
        return false;
      }
      id = nextRandom();
    }
    ask.socket = entry;
    ask.server = index;
    ask.id = id;
    ask.tries++;
    ask.started = performance.now();
    ask.deadline = ask.started + opts.timeoutMs;
    entry.pending.set(id, ask);
    ask.slot = deadlines.push(ask);
    // A copy per try: the client's bytes stay untouched, and a datagram libuv still holds is never rewritten.
    outbox.push(ask);
    outboxTries.push(ask.tries);
    outboxBytes.push(withId(ask.raw, id));
    if (!flushQueued) {
      flushQueued = true;
      setImmediate(flushSends);
    }
    return true;
  }

  /**
   * Upstream queries go out together once the datagrams read in this turn of the event loop have been handled
   * (setImmediate runs right after the poll phase). Node's dgram has no sendmmsg, but back-to-back sends find the
   * server still awake, where one send per query interleaved with reads wakes it each time (see the listener).
   * A try that ended before its turn (the forwarder closed, the socket failed) is skipped.
   */
  function flushSends(): void {
    flushQueued = false;
    const asks = outbox;
    const triesOf = outboxTries;
    const bytes = outboxBytes;
    outbox = [];
    outboxTries = [];
    outboxBytes = [];
    for (let i = 0; i < asks.length; i++) {
      const ask = asks[i] as Ask;
      const entry = ask.socket;
      if (entry === null || ask.settled || ask.tries !== triesOf[i]) continue;
      try {
        entry.socket.send(bytes[i] as Buffer);
      } catch (err) {
        const up = ask.list[ask.server] as Upstream;
        opts.onExchange?.('udp', 'error', endTry(ask));
        ask.lastReason = `cannot send to ${up.text}: ${(err as Error).message}`;
        tryNext(ask);
      }
    }
  }

  function onTimeout(ask: Ask): void {
    if (ask.socket === null || ask.settled) return;
    const up = ask.list[ask.server] as Upstream;
    opts.onExchange?.('udp', 'timeout', endTry(ask));
    ask.lastReason = `timeout (no answer from ${up.text} in ${opts.timeoutMs} ms)`;
    tryNext(ask);
  }

  /** A socket error (ICMP unreachable → ECONNREFUSED) concerns every query waiting on that socket's server. */
  function failAll(entry: PoolSocket, reason: string): void {
    const asks = [...entry.pending.values()];
    for (const ask of asks) {
      opts.onExchange?.('udp', 'error', endTry(ask));
      ask.lastReason = reason;
      tryNext(ask);
    }
  }

  function onDatagram(entry: PoolSocket, msg: Buffer, address: string, port: number): void {
    if (msg.length < DNS_HEADER_LENGTH) {
      opts.onDrop?.('malformed');
      return;
    }
    const ask = entry.pending.get(((msg[0] as number) << 8) | (msg[1] as number));
    if (ask === undefined) {
      opts.onDrop?.('unknown_id');
      return;
    }
    const up = ask.list[ask.server] as Upstream;
    if (address !== up.server.host || port !== up.server.port) {
      opts.onDrop?.('wrong_source');
      return;
    }
    let view: DnsMessageView;
    try {
      view = inspectDnsMessage(msg, { withAnswers: true });
    } catch {
      opts.onDrop?.('malformed');
      return;
    }
    const q = view.questions[0];
    if (!view.header.isResponse || view.questions.length !== 1 || q === undefined || !isSameQuestion(q, ask.question)) {
      opts.onDrop?.('wrong_question');
      return;
    }
    opts.onExchange?.('udp', 'answer', endTry(ask));
    const index = ask.server;
    if (!view.header.truncated) {
      conclude(ask, index, answer(ask, msg, view, 'udp'));
      return;
    }
    // RFC 7766 §5: a truncated UDP answer is retried over TCP; if TCP fails the truncated answer still tells the
    // client to try TCP itself.
    void exchangeTcp(up, ask.raw, ask.question).then((tcp) => {
      conclude(ask, index, tcp.kind === 'answer' ? answer(ask, tcp.msg, tcp.view, 'tcp') : answer(ask, msg, view, 'udp'));
    });
  }

  /** The upstream's answer, with the client's ID written over ours (the bytes are ours to change). */
  function answer(ask: Ask, msg: Buffer, view: DnsMessageView, transport: DnsTransport): Answered {
    msg[0] = ask.clientId >>> 8;
    msg[1] = ask.clientId & 0xff;
    return { ok: true, response: msg, view, transport, server: (ask.list[ask.server] as Upstream).text };
  }

  function conclude(ask: Ask, index: number, result: Answered): void {
    if (ask.settled) return;
    const rcode = result.view.rcode;
    // SERVFAIL and REFUSED speak for that server only: another server may answer; a server that answered is
    // not asked again.
    const answered = ask.answered?.size ?? 0;
    if ((rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED) && answered + 1 < ask.list.length) {
      ask.answered ??= new Set();
      ask.answered.add(index);
      ask.fallback = result;
      tryNext(ask);
      return;
    }
    finish(ask, result);
  }

  function exchangeTcp(up: Upstream, raw: Uint8Array, question: DnsQuestion): Promise<TcpExchange> {
    return new Promise((resolve) => {
      const { server } = up;
      const id = nextRandom();
      const started = performance.now();
      const socket = connect({ host: server.host, port: server.port });
      tcpSockets.add(socket);
      const reader = createDnsFrameReader();
      let settled = false;
      const done = (result: TcpExchange, outcome: UpstreamOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        tcpSockets.delete(socket);
        opts.onExchange?.('tcp', outcome, (performance.now() - started) / 1000);
        resolve(result);
      };
      const timer = setTimeout(() => done({ kind: 'failed', reason: `timeout (no TCP answer from ${up.text})` }, 'timeout'), opts.timeoutMs);
      socket.on('connect', () => socket.write(frameDnsMessage(withId(raw, id))));
      socket.on('error', (err) => done({ kind: 'failed', reason: `TCP to ${up.text}: ${err.message}` }, 'error'));
      socket.on('close', () => done({ kind: 'failed', reason: `${up.text} closed the TCP connection without an answer` }, 'error'));
      socket.on('data', (chunk: Buffer) => {
        let messages: Buffer[];
        try {
          messages = reader.push(chunk);
        } catch (err) {
          done({ kind: 'failed', reason: `bad TCP framing from ${up.text}: ${(err as Error).message}` }, 'error');
          return;
        }
        for (const msg of messages) {
          if (msg.length < DNS_HEADER_LENGTH || msg.readUInt16BE(0) !== id) {
            opts.onDrop?.(msg.length < DNS_HEADER_LENGTH ? 'malformed' : 'unknown_id');
            continue;
          }
          let view: DnsMessageView;
          try {
            view = inspectDnsMessage(msg, { withAnswers: true });
          } catch {
            opts.onDrop?.('malformed');
            continue;
          }
          const q = view.questions[0];
          if (!view.header.isResponse || view.questions.length !== 1 || q === undefined || !isSameQuestion(q, question)) {
            opts.onDrop?.('wrong_question');
            continue;
          }
          // A copy: the message is a view into the reader's buffer.
          done({ kind: 'answer', msg: Buffer.from(msg), view }, 'answer');
          return;
        }
      });
    });
  }

  function start(list: readonly Upstream[], raw: Uint8Array, question: DnsQuestion): Promise<ForwardResult> {
    if (closed) return Promise.resolve({ ok: false, message: 'the DNS forwarder is closed' });
    if (list.length === 0) return Promise.resolve({ ok: false, message: 'no DNS upstream servers configured' });
    if (inflight >= maxInflight) return Promise.resolve({ ok: false, message: `more than ${maxInflight} queries waiting for upstream answers` });
    inflight++;
    return new Promise((resolve) => tryNext(new Ask(raw, question, list, resolve)));
  }

  return {
    forward(raw, question) {
      if (closed) return Promise.resolve({ ok: false, message: 'the DNS forwarder is closed' });
      // Synchronous once the servers are known; only the first queries after start-up wait for them.
      if (upstreams !== null) return start(upstreams, raw, question);
      return ready.then(
        (list) => start(list, raw, question),
        (err: unknown) => ({ ok: false, message: `no DNS upstream: ${(err as Error).message}` }),
      );
    },
    close() {
      if (closed) return;
      closed = true;
      for (const up of upstreams ?? []) {
        for (const entry of up.sockets) {
          failAll(entry, 'the DNS forwarder is closed');
          entry.socket.close();
        }
        up.sockets.length = 0;
      }
      deadlines.clear();
      for (const socket of tcpSockets) socket.destroy();
      tcpSockets.clear();
    },
  };
}

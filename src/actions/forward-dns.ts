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

export interface DnsForwarder {
  /** Forward `raw` (a validated query asking `question`); never rejects. */
  forward(raw: Uint8Array, question: DnsQuestion): Promise<ForwardResult>;
  close(): void;
}

interface Pending {
  readonly host: string;
  readonly port: number;
  readonly question: DnsQuestion;
  readonly started: number;
  readonly timer: NodeJS.Timeout;
  readonly done: (result: Exchange) => void;
}

type Exchange = { readonly kind: 'answer'; readonly msg: Buffer; readonly view: DnsMessageView } | { readonly kind: 'failed'; readonly reason: string };

interface PoolSocket {
  readonly socket: UdpSocket;
  readonly pending: Map<number, Pending>;
}

/** The UDP sockets of one upstream server, connected to it, so the kernel drops datagrams from anyone else. */
interface ServerPool {
  readonly server: HostPort;
  readonly sockets: readonly PoolSocket[];
}

const DEFAULT_SOCKETS = 8;
const DEFAULT_MAX_INFLIGHT = 10_000;
const RANDOM_POOL = 4096;

/** Random 16-bit values from `crypto`, drawn in blocks so a query does not pay a syscall. */
function createIdSource(): () => number {
  let pool = randomBytes(RANDOM_POOL);
  let at = 0;
  return () => {
    if (at + 2 > pool.length) {
      pool = randomBytes(RANDOM_POOL);
      at = 0;
    }
    const v = pool.readUInt16BE(at);
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

export function createDnsForwarder(opts: DnsForwarderOptions): DnsForwarder {
  const nextRandom = createIdSource();
  const poolSize = Math.max(1, opts.sockets ?? DEFAULT_SOCKETS);
  const maxInflight = opts.maxInflight ?? DEFAULT_MAX_INFLIGHT;
  /** One pool per configured server (a fixed, small set), made once the server list is known. */
  const pools = new Map<string, ServerPool>();
  const tcpSockets = new Set<TcpSocket>();
  let inflight = 0;
  let closed = false;
  const servers: Promise<readonly HostPort[]> = Promise.resolve(opts.servers).then(async (list) => {
    const canonical = list.map((s) => ({ host: canonicalHost(s.host), port: s.port }));
    await Promise.all(canonical.map(openPool));
    return canonical;
  });
  servers.catch(() => undefined);

  function poolKey(server: HostPort): string {
    return `${server.host} ${server.port}`;
  }

  /**
   * Connected sockets (connect(2) on UDP): sends skip the per-datagram address lookup, the kernel delivers only
   * datagrams from the server, and an ICMP port-unreachable comes back as ECONNREFUSED, so a server that is down
   * fails its queries at once instead of after the timeout. Ports are chosen by the OS (RFC 5452 §9.2 wants
   * them random; Linux picks ephemeral ports at random).
   */
  async function openPool(server: HostPort): Promise<void> {
    const key = poolKey(server);
    if (pools.has(key)) return;
    const sockets: PoolSocket[] = [];
    pools.set(key, { server, sockets });
    await Promise.all(
      Array.from({ length: poolSize }, async () => {
        const socket = createSocket({ type: isIPv6(server.host) ? 'udp6' : 'udp4' });
        const entry: PoolSocket = { socket, pending: new Map() };
        socket.on('message', (msg, rinfo) => onDatagram(entry, msg, rinfo.address, rinfo.port));
        socket.on('error', (err: NodeJS.ErrnoException) => failAll(entry, `${serverText(server)}: ${err.code ?? err.message}`));
        await new Promise<void>((resolve) => {
          socket.once('error', () => resolve());
          socket.connect(server.port, server.host, () => resolve());
        });
        socket.unref();
        sockets.push(entry);
      }),
    );
  }

  /** A socket error (ICMP unreachable → ECONNREFUSED) concerns every query waiting on that socket's server. */
  function failAll(entry: PoolSocket, reason: string): void {
    for (const [id, p] of entry.pending) {
      entry.pending.delete(id);
      clearTimeout(p.timer);
      opts.onExchange?.('udp', 'error', (performance.now() - p.started) / 1000);
      p.done({ kind: 'failed', reason });
    }
  }

  function onDatagram(entry: PoolSocket, msg: Buffer, address: string, port: number): void {
    if (msg.length < DNS_HEADER_LENGTH) {
      opts.onDrop?.('malformed');
      return;
    }
    const id = msg.readUInt16BE(0);
    const p = entry.pending.get(id);
    if (p === undefined) {
      opts.onDrop?.('unknown_id');
      return;
    }
    if (address !== p.host || port !== p.port) {
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
    if (!view.header.isResponse || view.questions.length !== 1 || q === undefined || !isSameQuestion(q, p.question)) {
      opts.onDrop?.('wrong_question');
      return;
    }
    entry.pending.delete(id);
    clearTimeout(p.timer);
    opts.onExchange?.('udp', 'answer', (performance.now() - p.started) / 1000);
    p.done({ kind: 'answer', msg, view });
  }

  function exchangeUdp(server: HostPort, raw: Uint8Array, question: DnsQuestion): Promise<Exchange> {
    return new Promise((resolve) => {
      const pool = pools.get(poolKey(server))?.sockets ?? [];
      if (pool.length === 0) return resolve({ kind: 'failed', reason: `no socket to ${serverText(server)}` });
      const entry = pool[nextRandom() % pool.length] as PoolSocket;
      let id = nextRandom();
      // Never two queries with one ID on one socket: the second answer would be taken for the first.
      for (let guard = 0; entry.pending.has(id); guard++) {
        if (guard > 64) return resolve({ kind: 'failed', reason: 'no free query ID' });
        id = nextRandom();
      }
      const started = performance.now();
      const timer = setTimeout(() => {
        entry.pending.delete(id);
        opts.onExchange?.('udp', 'timeout', (performance.now() - started) / 1000);
        resolve({ kind: 'failed', reason: `timeout (no answer from ${serverText(server)} in ${opts.timeoutMs} ms)` });
      }, opts.timeoutMs);
      entry.pending.set(id, { host: server.host, port: server.port, question, started, timer, done: resolve });
      try {
        entry.socket.send(withId(raw, id));
      } catch (err) {
        entry.pending.delete(id);
        clearTimeout(timer);
        opts.onExchange?.('udp', 'error', (performance.now() - started) / 1000);
        resolve({ kind: 'failed', reason: `cannot send to ${serverText(server)}: ${(err as Error).message}` });
      }
    });
  }

  function exchangeTcp(server: HostPort, raw: Uint8Array, question: DnsQuestion): Promise<Exchange> {
    return new Promise((resolve) => {
      const id = nextRandom();
      const started = performance.now();
      const socket = connect({ host: server.host, port: server.port });
      tcpSockets.add(socket);
      const reader = createDnsFrameReader();
      let settled = false;
      const finish = (result: Exchange, outcome: UpstreamOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        tcpSockets.delete(socket);
        opts.onExchange?.('tcp', outcome, (performance.now() - started) / 1000);
        resolve(result);
      };
      const timer = setTimeout(() => finish({ kind: 'failed', reason: `timeout (no TCP answer from ${serverText(server)})` }, 'timeout'), opts.timeoutMs);
      socket.on('connect', () => socket.write(frameDnsMessage(withId(raw, id))));
      socket.on('error', (err) => finish({ kind: 'failed', reason: `TCP to ${serverText(server)}: ${err.message}` }, 'error'));
      socket.on('close', () => finish({ kind: 'failed', reason: `${serverText(server)} closed the TCP connection without an answer` }, 'error'));
      socket.on('data', (chunk: Buffer) => {
        let messages: Buffer[];
        try {
          messages = reader.push(chunk);
        } catch (err) {
          finish({ kind: 'failed', reason: `bad TCP framing from ${serverText(server)}: ${(err as Error).message}` }, 'error');
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
          finish({ kind: 'answer', msg: Buffer.from(msg), view }, 'answer');
          return;
        }
      });
    });
  }

  async function forward(raw: Uint8Array, question: DnsQuestion): Promise<ForwardResult> {
    if (closed) return { ok: false, message: 'the DNS forwarder is closed' };
    let list: readonly HostPort[];
    try {
      list = await servers;
    } catch (err) {
      return { ok: false, message: `no DNS upstream: ${(err as Error).message}` };
    }
    if (list.length === 0) return { ok: false, message: 'no DNS upstream servers configured' };
    if (inflight >= maxInflight) return { ok: false, message: `more than ${maxInflight} queries waiting for upstream answers` };
    inflight++;
    try {
      return await ask(list, raw, question);
    } finally {
      inflight--;
    }
  }

  async function ask(list: readonly HostPort[], raw: Uint8Array, question: DnsQuestion): Promise<ForwardResult> {
    const clientId = (raw[0] as number) * 256 + (raw[1] as number);
    const answered = new Set<number>();
    let fallback: ForwardResult | null = null;
    let lastReason = 'no answer';
    for (let round = 0; round < Math.max(1, opts.tries); round++) {
      for (let i = 0; i < list.length; i++) {
        if (closed) return { ok: false, message: 'the DNS forwarder is closed' };
        if (answered.has(i)) continue;
        const server = list[i] as HostPort;
        const udp = await exchangeUdp(server, raw, question);
        if (udp.kind === 'failed') {
          lastReason = udp.reason;
          continue;
        }
        let result: ForwardResult = { ok: true, response: withId(udp.msg, clientId), view: udp.view, transport: 'udp', server: serverText(server) };
        if (udp.view.header.truncated) {
          // RFC 7766 §5: a truncated UDP answer is retried over TCP; if TCP fails the truncated answer still
          // tells the client to try TCP itself.
          const tcp = await exchangeTcp(server, raw, question);
          if (tcp.kind === 'answer') {
            result = { ok: true, response: withId(tcp.msg, clientId), view: tcp.view, transport: 'tcp', server: serverText(server) };
          }
        }
        const rcode = result.ok ? result.view.rcode : RCODE.NOERROR;
        // SERVFAIL and REFUSED speak for that server only: another server may answer; a server that answered
        // is not asked again.
        if ((rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED) && answered.size + 1 < list.length) {
          answered.add(i);
          fallback = result;
          continue;
        }
        return result;
      }
    }
    return fallback ?? { ok: false, message: lastReason };
  }

  return {
    forward,
    close() {
      if (closed) return;
      closed = true;
      for (const pool of pools.values()) {
        for (const entry of pool.sockets) {
          failAll(entry, 'the DNS forwarder is closed');
          entry.socket.close();
        }
      }
      pools.clear();
      for (const socket of tcpSockets) socket.destroy();
      tcpSockets.clear();
    },
  };
}

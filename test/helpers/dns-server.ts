/**
 * A tiny authoritative DNS server for tests: UDP and TCP (RFC 1035 §4.2.2 two-byte length framing) on
 * 127.0.0.1, one port for both, chosen by the OS. Answers A and AAAA from `records`, NOERROR with no answer for
 * other types of a known name, NXDOMAIN for unknown names.
 *
 * `records` is read at each query, not copied: a test may change it between queries (e.g. DNS rebinding tests).
 */
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { createServer } from 'node:net';
import type { Server as TcpServer, Socket as TcpSocket } from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer, Packet } from 'dns-packet';

export interface DnsRecords {
  [name: string]: { A?: string[]; AAAA?: string[]; ttl?: number };
}

export interface DnsServerOptions {
  /** wait this long before each answer. */
  delayMs?: number;
  /** answer every query with SERVFAIL. */
  servfail?: boolean;
  /** never answer (queries are still recorded): a server that is up but silent, for timeout tests. */
  drop?: boolean;
}

export interface DnsQueryLog {
  name: string;
  type: string;
}

export interface TestDnsServer {
  port: number;
  address: string;
  /** "127.0.0.1:port", as resolver options take it. */
  server: string;
  queries: DnsQueryLog[];
  close(): Promise<void>;
}

const DEFAULT_TTL = 300;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const HEADER_LENGTH = 12;

export async function startDnsServer(records: DnsRecords, opts: DnsServerOptions = {}): Promise<TestDnsServer> {
  const queries: DnsQueryLog[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const tcpSockets = new Set<TcpSocket>();

  function answer(query: Buffer, send: (reply: Buffer) => void): void {
    if (query.length < HEADER_LENGTH) return;
    let packet: Packet;
    try {
      packet = dnsPacket.decode(query);
    } catch {
      return; // a test server: garbage is dropped, not answered
    }
    const question = packet.questions?.[0];
    if (question === undefined) return;
    queries.push({ name: question.name, type: question.type });
    if (opts.drop === true) return;
    const reply = buildReply(packet, question.name, question.type);
    const delay = opts.delayMs ?? 0;
    if (delay <= 0) {
      send(reply);
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      send(reply);
    }, delay);
    timers.add(timer);
  }

  function buildReply(packet: Packet, name: string, type: string): Buffer {
    const base = {
      type: 'response' as const,
      id: packet.id ?? 0,
      questions: packet.questions ?? [],
    };
    if (opts.servfail === true) {
      return dnsPacket.encode({ ...base, flags: dnsPacket.RECURSION_DESIRED | RCODE_SERVFAIL, answers: [] });
    }
    const entry = findRecord(records, name);
    if (entry === undefined) {
      return dnsPacket.encode({
        ...base,
        flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | RCODE_NXDOMAIN,
        answers: [],
      });
    }
    const ttl = entry.ttl ?? DEFAULT_TTL;
    const answers: Answer[] = [];
    if (type === 'A') for (const data of entry.A ?? []) answers.push({ type: 'A', name, ttl, class: 'IN', data });
    if (type === 'AAAA') {
      for (const data of entry.AAAA ?? []) answers.push({ type: 'AAAA', name, ttl, class: 'IN', data });
    }
    return dnsPacket.encode({
      ...base,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED,
      answers,
    });
  }

  for (let attempt = 0; ; attempt++) {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => {
        udp.off('error', reject);
        resolve();
      });
    });
    const port = udp.address().port;
    const tcp = createServer((socket) => serveTcp(socket, answer, tcpSockets));
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, '127.0.0.1', () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      // The UDP port's TCP twin was taken by someone else; try another port.
      udp.close();
      if (attempt >= 10) throw err;
      continue;
    }
    udp.on('message', (msg, rinfo) => {
      answer(msg, (reply) => udp.send(reply, rinfo.port, rinfo.address));
    });
    return {
      port,
      address: '127.0.0.1',
      server: `127.0.0.1:${port}`,
      queries,
      close: () => closeAll(udp, tcp, tcpSockets, timers),
    };
  }
}

function findRecord(records: DnsRecords, name: string): DnsRecords[string] | undefined {
  const wanted = name.toLowerCase().replace(/\.$/, '');
  for (const [key, value] of Object.entries(records)) {
    if (key.toLowerCase().replace(/\.$/, '') === wanted) return value;
  }
  return undefined;
}

function serveTcp(
  socket: TcpSocket,
  answer: (query: Buffer, send: (reply: Buffer) => void) => void,
  sockets: Set<TcpSocket>,
): void {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => socket.destroy());
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 2) {
      const length = pending.readUInt16BE(0);
      if (pending.length < 2 + length) break;
      const message = pending.subarray(2, 2 + length);
      pending = pending.subarray(2 + length);
      answer(message, (reply) => {
        if (socket.destroyed) return;
        const framed = Buffer.alloc(2 + reply.length);
        framed.writeUInt16BE(reply.length, 0);
        reply.copy(framed, 2);
        socket.write(framed);
      });
    }
  });
}

async function closeAll(
  udp: UdpSocket,
  tcp: TcpServer,
  sockets: Set<TcpSocket>,
  timers: Set<NodeJS.Timeout>,
): Promise<void> {
  for (const timer of timers) clearTimeout(timer);
  timers.clear();
  for (const socket of sockets) socket.destroy();
  await Promise.all([
    new Promise<void>((resolve) => udp.close(() => resolve())),
    new Promise<void>((resolve) => tcp.close(() => resolve())),
  ]);
}

/**
 * A DNS server whose every answer a test writes: UDP and TCP (RFC 1035 §4.2.2 framing) on one loopback port.
 * For behaviour a real server will not show on demand: truncated UDP answers, spoofed or mismatched replies,
 * answers from another port.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';

export interface ScriptedContext {
  readonly transport: 'udp' | 'tcp';
  readonly query: DecodedPacket;
  readonly raw: Buffer;
  /** Send bytes back to the querier (framed for TCP). */
  reply(bytes: Buffer): void;
  /** Send a datagram from another socket (another source port): a spoofing attempt (UDP only). */
  replyFromElsewhere(bytes: Buffer): void;
}

export interface ScriptedServer {
  readonly port: number;
  readonly server: string;
  readonly seen: ScriptedContext[];
  close(): Promise<void>;
}

/** A response to `query` with the given answers and flags; `id`/`name` override for mismatch tests. */
export function answerTo(query: DecodedPacket, answers: Answer[], opts: { flags?: number; id?: number; name?: string; rcode?: number } = {}): Buffer {
  const q = query.questions?.[0];
  return dnsPacket.encode({
    type: 'response',
    id: opts.id ?? query.id ?? 0,
    flags: (opts.flags ?? 0) | dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (opts.rcode ?? 0),
    questions: q === undefined ? [] : [{ ...q, name: opts.name ?? q.name }],
    answers,
  });
}

export async function startScriptedDnsServer(handle: (ctx: ScriptedContext) => void): Promise<ScriptedServer> {
  const seen: ScriptedContext[] = [];
  const sockets = new Set<Socket>();
  const elsewhere = createSocket('udp4');
  await new Promise<void>((r) => elsewhere.bind(0, '127.0.0.1', () => r()));
  for (let attempt = 0; ; attempt++) {
    const udp: UdpSocket = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    const port = udp.address().port;
    const tcp: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      let pending = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
          const raw = pending.subarray(2, 2 + pending.readUInt16BE(0));
          pending = pending.subarray(2 + raw.length);
          dispatch('tcp', Buffer.from(raw), (bytes) => {
            const framed = Buffer.alloc(2 + bytes.length);
            framed.writeUInt16BE(bytes.length, 0);
            bytes.copy(framed, 2);
            if (!socket.destroyed) socket.write(framed);
          }, () => undefined);
        }
      });
    });
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!ok) {
      udp.close();
      if (attempt > 10) throw new Error('no port for the scripted DNS server');
      continue;
    }
    udp.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      dispatch('udp', msg, (bytes) => udp.send(bytes, rinfo.port, rinfo.address), (bytes) => elsewhere.send(bytes, rinfo.port, rinfo.address));
    });
    return {
      port,
      server: `127.0.0.1:${port}`,
      seen,
      async close() {
        for (const s of sockets) s.destroy();
        await Promise.all([
          new Promise<void>((r) => udp.close(() => r())),
          new Promise<void>((r) => elsewhere.close(() => r())),
          new Promise<void>((r) => tcp.close(() => r())),
        ]);
      },
    };
  }

  function dispatch(transport: 'udp' | 'tcp', raw: Buffer, reply: (b: Buffer) => void, replyFromElsewhere: (b: Buffer) => void): void {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(raw);
    } catch {
      return;
    }
    const ctx: ScriptedContext = { transport, query, raw, reply, replyFromElsewhere };
    seen.push(ctx);
    handle(ctx);
  }
}

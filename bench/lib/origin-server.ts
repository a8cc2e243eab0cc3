/**
 * The benchmark's destinations, run in their own process (started by origin.ts) so their CPU time is not
 * charged to the load generator. Prints one line `ORIGIN {"http":…,"sink":…,"echo":…}` once listening on
 * 127.0.0.1, and exits when stdin closes (the parent died) or on SIGTERM.
 *
 * - http: a static HTTP/1.1 keep-alive responder (1 KiB body). It is a few lines over `net`, not
 *   `http.createServer`, because on a 2-core machine every cycle the origin spends is taken from the proxy
 *   under test; it answers each request head (`\r\n\r\n`) and so supports only body-less requests (GET),
 *   which is all wrk and the proxies send here.
 * - sink: reads and discards. The stream may start with one TLS record (the ClientHello, skipped), then
 *   carries frames of [u32 big-endian length][payload]; each complete frame is acknowledged with one
 *   byte. The client stops its clock when every frame is acknowledged, so the figure covers delivery,
 *   not just what sat in socket buffers. (Acknowledging on half-close would be simpler, but Squid closes
 *   both sides of a tunnel when the client half-closes.)
 * - echo: answers the first bytes it gets (the ClientHello) with one byte and closes — the cheapest
 *   "server" for measuring new tunnels per second. Closing first puts TIME_WAIT on this side, which
 *   keeps the load generator's ephemeral ports free.
 */
import net from 'node:net';

const BODY_BYTES = 1024;
const BODY = Buffer.alloc(BODY_BYTES, 'x');
const RESPONSE = Buffer.concat([
  Buffer.from(
    'HTTP/1.1 200 OK\r\n' +
      'Content-Type: application/octet-stream\r\n' +
      'Cache-Control: no-store\r\n' +
      `Content-Length: ${BODY_BYTES}\r\n` +
      'Connection: keep-alive\r\n' +
      '\r\n',
  ),
  BODY,
]);
const HEAD_END = Buffer.from('\r\n\r\n');

function httpServer(): net.Server {
  return net.createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    // Bytes after the last complete head: at most 3, enough to spot a "\r\n\r\n" split across reads.
    let carry: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      const buf = carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
      let heads = 0;
      let from = 0;
      for (let at = buf.indexOf(HEAD_END, from); at !== -1; at = buf.indexOf(HEAD_END, from)) {
        heads++;
        from = at + HEAD_END.length;
      }
      carry = buf.subarray(Math.max(from, buf.length - (HEAD_END.length - 1)));
      if (heads === 1) socket.write(RESPONSE);
      else if (heads > 1) socket.write(Buffer.concat(Array.from({ length: heads }, () => RESPONSE)));
    });
  });
}

type SinkPhase = 'start' | 'record-header' | 'record-body' | 'frame-header' | 'frame-body';

function sinkServer(): net.Server {
  return net.createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    let phase: SinkPhase = 'start';
    // A header split across reads is collected here; bodies are only counted down.
    let header = Buffer.alloc(0);
    let remaining = 0;
    socket.on('data', (chunk: Buffer) => {
      let at = 0;
      let acks = 0;
      while (at < chunk.length) {
        if (phase === 'start') phase = chunk[at] === 0x16 ? 'record-header' : 'frame-header';
        if (phase === 'record-body' || phase === 'frame-body') {
          const take = Math.min(remaining, chunk.length - at);
          remaining -= take;
          at += take;
        } else {
          const size = phase === 'record-header' ? 5 : 4;
          const take = Math.min(size - header.length, chunk.length - at);
          header = Buffer.concat([header, chunk.subarray(at, at + take)]);
          at += take;
          if (header.length < size) break;
          remaining = phase === 'record-header' ? header.readUInt16BE(3) : header.readUInt32BE(0);
          phase = phase === 'record-header' ? 'record-body' : 'frame-body';
          header = Buffer.alloc(0);
        }
        if (remaining === 0 && (phase === 'record-body' || phase === 'frame-body')) {
          if (phase === 'frame-body') acks++;
          phase = 'frame-header';
        }
      }
      if (acks > 0) socket.write(Buffer.alloc(acks, 1));
    });
    socket.once('end', () => socket.end());
  });
}

function echoServer(): net.Server {
  return net.createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    socket.once('data', () => {
      socket.end(Buffer.of(0x16));
      socket.resume();
    });
  });
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => resolve((server.address() as net.AddressInfo).port));
  });
}

const servers = [httpServer(), sinkServer(), echoServer()] as const;
const [http, sink, echo] = await Promise.all(servers.map(listen));
process.stdout.write(`ORIGIN ${JSON.stringify({ http, sink, echo })}\n`);

const exit = (): void => process.exit(0);
process.once('SIGTERM', exit);
process.stdin.once('end', exit);
process.stdin.once('close', exit);
process.stdin.resume();

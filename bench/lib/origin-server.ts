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
 * - httpClose: the http responder's one-request-per-connection twin: it answers the first request head
 *   with the same 1 KiB body and `Connection: close`, then closes (RFC 9112 §9.6). The direct baseline
 *   of "a new connection per request" (bench/core.bench.ts) needs it: wrk only reconnects when the
 *   response says close, and the keep-alive responder never does.
 * - source: the sink's mirror, for downstream (destination → client) throughput. The stream may start
 *   with one TLS record (the ClientHello, skipped); then each 4-byte big-endian number N the client sends
 *   asks for N more bytes, which the source writes from one random 64 KiB block (incompressible, and no
 *   allocation per write), honouring backpressure.
 */
import { randomBytes } from 'node:crypto';
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

const RESPONSE_CLOSE = Buffer.concat([
  Buffer.from(
    'HTTP/1.1 200 OK\r\n' +
      'Content-Type: application/octet-stream\r\n' +
      'Cache-Control: no-store\r\n' +
      `Content-Length: ${BODY_BYTES}\r\n` +
      'Connection: close\r\n' +
      '\r\n',
  ),
  BODY,
]);

function httpCloseServer(): net.Server {
  return net.createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      if (head.indexOf(HEAD_END) === -1) {
        if (head.length > 64 * 1024) socket.destroy(); // not an HTTP client: do not buffer forever
        return;
      }
      socket.off('data', onData);
      socket.resume(); // discard anything after the first request
      socket.end(RESPONSE_CLOSE);
    };
    socket.on('data', onData);
  });
}

const SOURCE_BLOCK = randomBytes(64 * 1024);

type SourcePhase = 'start' | 'record-header' | 'record-body' | 'requests';

function sourceServer(): net.Server {
  return net.createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    let phase: SourcePhase = 'start';
    let header = Buffer.alloc(0);
    let remaining = 0;
    let owed = 0;
    let waitingForDrain = false;
    const pump = (): void => {
      while (owed > 0 && !socket.destroyed) {
        const block = owed >= SOURCE_BLOCK.length ? SOURCE_BLOCK : SOURCE_BLOCK.subarray(0, owed);
        owed -= block.length;
        if (!socket.write(block)) {
          waitingForDrain = true;
          socket.once('drain', () => {
            waitingForDrain = false;
            pump();
          });
          return;
        }
      }
    };
    socket.on('data', (chunk: Buffer) => {
      let at = 0;
      while (at < chunk.length) {
        if (phase === 'start') phase = chunk[at] === 0x16 ? 'record-header' : 'requests';
        if (phase === 'record-body') {
          const take = Math.min(remaining, chunk.length - at);
          remaining -= take;
          at += take;
          if (remaining === 0) phase = 'requests';
          continue;
        }
        const size = phase === 'record-header' ? 5 : 4;
        const take = Math.min(size - header.length, chunk.length - at);
        header = Buffer.concat([header, chunk.subarray(at, at + take)]);
        at += take;
        if (header.length < size) break;
        if (phase === 'record-header') {
          remaining = header.readUInt16BE(3);
          phase = remaining === 0 ? 'requests' : 'record-body';
        } else owed += header.readUInt32BE(0);
        header = Buffer.alloc(0);
      }
      if (!waitingForDrain) pump();
    });
    socket.once('end', () => socket.end());
  });
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => resolve((server.address() as net.AddressInfo).port));
  });
}

const servers = [httpServer(), sinkServer(), echoServer(), httpCloseServer(), sourceServer()] as const;
const [http, sink, echo, httpClose, source] = await Promise.all(servers.map(listen));
process.stdout.write(`ORIGIN ${JSON.stringify({ http, sink, echo, httpClose, source })}\n`);

const exit = (): void => process.exit(0);
process.once('SIGTERM', exit);
process.stdin.once('end', exit);
process.stdin.once('close', exit);
process.stdin.resume();

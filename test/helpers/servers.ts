/** Real servers and clients on loopback for integration tests. */
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import net from 'node:net';

export interface TestServer {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: () => number;
  close(): Promise<void>;
}

function closeServer(server: net.Server, sockets: Set<net.Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

function track(server: net.Server): { sockets: Set<net.Socket>; count: () => number } {
  const sockets = new Set<net.Socket>();
  let count = 0;
  server.on('connection', (s: net.Socket) => {
    count++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return { sockets, count: () => count };
}

/** An HTTP origin on 127.0.0.1; the handler decides each response. */
export async function startOrigin(handler: http.RequestListener): Promise<TestServer & { server: http.Server }> {
  const server = http.createServer(handler);
  const t = track(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    connections: t.count,
    close: () => closeServer(server, t.sockets),
  };
}

/**
 * An origin that accepts any method token, extension methods included (Node's HTTP server refuses them), written
 * in Python so it shares no parser with the proxy. Answers JSON {method, path, headers, body}.
 */
export async function startAnyMethodOrigin(): Promise<{ port: number; close(): Promise<void> }> {
  const script = fileURLToPath(new URL('./any-method-origin.py', import.meta.url));
  const child = spawn('python3', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('python origin did not start in 5 s')), 5000);
    child.stdout.once('data', (d: Buffer) => {
      clearTimeout(timer);
      resolve(Number(d.toString().trim()));
    });
    child.once('error', reject);
  });
  return {
    port,
    close: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill();
      }),
  };
}

/** An origin that answers JSON describing what it received (method, url, headers, body length). */
export function echoHandler(): http.RequestListener {
  return (req, res) => {
    let size = 0;
    req.on('data', (c: Buffer) => (size += c.length));
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyBytes: size });
      res.writeHead(200, { 'content-type': 'application/json', connection: 'close', 'keep-alive': 'timeout=5', 'x-origin': 'yes' });
      res.end(body);
    });
  };
}

/** A raw TCP server: echoes bytes back (or runs `onSocket`). */
export async function startTcpServer(onSocket?: (s: net.Socket) => void): Promise<TestServer> {
  const server = net.createServer(onSocket ?? ((s) => s.pipe(s)));
  const t = track(server);
  server.on('connection', (s) => s.on('error', () => s.destroy()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as net.AddressInfo).port, connections: t.count, close: () => closeServer(server, t.sockets) };
}

/** A port with nothing listening (bound then released). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface CurlResult {
  code: number;
  status: number;
  body: string;
  stderr: string;
}

/** Run curl through the proxy; `-w` appends the status on its own line. */
export function curl(args: string[], timeoutMs = 10_000): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-sS', '--max-time', String(Math.ceil(timeoutMs / 1000)), '-w', '\n%{http_code}', ...args],
      { timeout: timeoutMs + 2000 },
      (err, stdout, stderr) => {
        const idx = stdout.lastIndexOf('\n');
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
        resolve({ code, status: Number(stdout.slice(idx + 1)) || 0, body: stdout.slice(0, idx), stderr });
      },
    );
  });
}

/** Send raw bytes to host:port and collect everything until the server closes (or `ms`). */
export function rawExchange(port: number, payload: string | Buffer, ms = 3000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(done, ms);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', done);
    socket.on('error', done);
    socket.on('connect', () => socket.write(payload));
  });
}

/** Open a CONNECT tunnel through the proxy (from `localAddress`, another 127.x, if given); resolves with the socket after the 2xx, or the raw refusal. */
export function openTunnel(proxyPort: number, authority: string, localAddress?: string): Promise<{ socket: net.Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: proxyPort, host: '127.0.0.1', ...(localAddress === undefined ? {} : { localAddress }) });
    let buf = '';
    socket.on('error', reject);
    socket.on('connect', () => socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
    const onData = (c: Buffer): void => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      socket.off('error', reject);
      const rest = buf.slice(end + 4);
      if (rest.length > 0) socket.unshift(Buffer.from(rest, 'latin1'));
      resolve({ socket, head: buf.slice(0, end) });
    };
    socket.on('data', onData);
    socket.on('end', () => resolve({ socket, head: buf }));
  });
}

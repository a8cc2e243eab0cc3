/**
 * "bare-node": the forward proxy a Node developer would write in an afternoon, with no inspection at all —
 * the reference for what Node itself costs (issue 9). egress-inspector is compared with it and with Squid
 * in bench/core.bench.ts: the gap to bare-node is what our own work costs, the gap from bare-node to Squid is
 * the platform.
 *
 * - Absolute-form requests (RFC 9112 §3.2.2): `http.createServer` + `http.request` through one keep-alive
 *   `http.Agent`, bodies piped both ways, hop-by-hop fields dropped (RFC 9110 §7.6.1).
 * - CONNECT (RFC 9110 §9.3.6): `net.connect` to the authority, `200`, then `pipe()` both ways.
 * - No policy, no records, no metrics, no timeouts beyond Node's defaults.
 *
 * Run as its own process so its CPU and memory are measured alone: `startBareNode()` below transpiles this
 * file to plain JavaScript (TypeScript's transpileModule: types removed, nothing else) and starts it with
 * `node`, not `node --import tsx` — tsx's loader thread and esbuild would double the idle RSS (≈ 90 MB
 * instead of ≈ 45 MB for an idle `http.Server` on Node 20) and make the memory comparison meaningless. It
 * prints `BARE_NODE {"port":N}` once listening on 127.0.0.1 and exits when stdin closes (the parent died) or
 * on SIGTERM. It may also be run by hand: `npx tsx bench/lib/bare-node.ts`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Child, Endpoint } from './proc.js';

// ---- the proxy (runs in the child) ------------------------------------------------------------------------

/** RFC 9110 §7.6.1 (and §11.7 for the Proxy-* pair): fields meant for one hop only, never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'proxy-connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

/** Drops hop-by-hop fields, including those the Connection field names (RFC 9110 §7.6.1). */
function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = new Set((headers.connection ?? '').split(',').map((t) => t.trim().toLowerCase()));
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && !named.has(name)) out[name] = value;
  }
  return out;
}

function serveHttp(agent: http.Agent, req: http.IncomingMessage, res: http.ServerResponse): void {
  let target: URL;
  try {
    target = new URL(req.url ?? '');
  } catch {
    res.writeHead(400).end();
    return;
  }
  if (target.protocol !== 'http:') {
    res.writeHead(400).end();
    return;
  }
  const upstream = http.request(
    { agent, host: target.hostname, port: target.port === '' ? 80 : Number(target.port), method: req.method, path: `${target.pathname}${target.search}`, headers: endToEnd(req.headers) },
    (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, endToEnd(upRes.headers));
      upRes.pipe(res);
    },
  );
  upstream.on('error', () => {
    if (res.headersSent) res.destroy();
    else res.writeHead(502).end();
  });
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy(); // the client left first
  });
  req.pipe(upstream);
}

const BRACKETS = /^\[(.*)\]$/;

function serveConnect(req: http.IncomingMessage, client: net.Socket, head: Buffer): void {
  // authority-form "host:port" (RFC 9112 §3.2.3); a bracketed IPv6 literal keeps its last colon.
  const authority = req.url ?? '';
  const colon = authority.lastIndexOf(':');
  const host = authority.slice(0, colon).replace(BRACKETS, '$1');
  const port = Number(authority.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    return;
  }
  const upstream = net.connect({ host, port, noDelay: true });
  const fail = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', fail);
  upstream.on('error', () => {
    if (upstream.connecting) client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
    fail();
  });
  upstream.once('connect', () => {
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
}

/** Starts the proxy on 127.0.0.1:`port` (0 = any free port) and resolves with the port. */
export function serveBareNode(port = 0): Promise<number> {
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => serveHttp(agent, req, res));
  server.on('connect', serveConnect);
  server.on('clientError', (_err, socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => resolve((server.address() as net.AddressInfo).port));
  });
}

const isMain = process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url;
if (isMain) {
  const port = await serveBareNode();
  process.stdout.write(`BARE_NODE ${JSON.stringify({ port })}\n`);
  const exit = (): void => process.exit(0);
  process.once('SIGTERM', exit);
  process.stdin.once('end', exit);
  process.stdin.once('close', exit);
  process.stdin.resume();
}

// ---- the launcher (runs in the bench) ---------------------------------------------------------------------

export interface BareNodeInstance {
  readonly proxy: Endpoint;
  readonly child: Child;
  stop(): Promise<void>;
}

/**
 * Transpiles this file into `dir` and starts it with plain `node`. The launcher's own imports are dynamic
 * so that the transpiled copy, which runs from `dir`, never needs ./proc.js.
 */
export async function startBareNode(opts: { readonly dir: string; readonly nodeArgs?: readonly string[] }): Promise<BareNodeInstance> {
  const { spawnChild, waitForOutput } = await import('./proc.js');
  const ts = (await import('typescript')).default;
  const source = readFileSync(fileURLToPath(import.meta.url), 'utf8');
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const file = join(opts.dir, 'bare-node.mjs');
  writeFileSync(file, js);
  const child = spawnChild('bare-node', process.execPath, [...(opts.nodeArgs ?? []), file], { stdio: ['pipe', 'pipe', 'pipe'] });
  const m = await waitForOutput(child, /BARE_NODE (\{[^\n]*\})/, 15_000);
  const { port } = JSON.parse(m[1] ?? '{}') as { port: number };
  return { proxy: { host: '127.0.0.1', port }, child, stop: () => child.stop(2000) };
}

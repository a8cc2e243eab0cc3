/** Starts bench/lib/origin-server.ts in its own process and reports its three loopback ports. */
import { fileURLToPath } from 'node:url';
import { spawnChild, waitForOutput, type Child, type Endpoint } from './proc.js';

export interface Origin {
  /** Static 1 KiB keep-alive HTTP responder. */
  readonly http: Endpoint;
  /** Discards bytes; answers the count on half-close. */
  readonly sink: Endpoint;
  /** Answers the first bytes with one byte and closes. */
  readonly echo: Endpoint;
  /** Static 1 KiB responder that answers one request with `Connection: close` and closes. */
  readonly httpClose: Endpoint;
  /** Sends N random bytes for every 4-byte big-endian N it receives (after an optional ClientHello). */
  readonly source: Endpoint;
  readonly child: Child;
  stop(): Promise<void>;
}

const SERVER = fileURLToPath(new URL('./origin-server.ts', import.meta.url));

export async function startOrigin(): Promise<Origin> {
  // tsx's loader only compiles the file at start; the servers then run as plain JavaScript.
  const child = spawnChild('origin', process.execPath, ['--import', 'tsx', SERVER], { stdio: ['pipe', 'pipe', 'pipe'] });
  const match = await waitForOutput(child, /ORIGIN (\{[^\n]*\})/, 15_000);
  const ports = JSON.parse(match[1] ?? '{}') as { http: number; sink: number; echo: number; httpClose: number; source: number };
  const at = (port: number): Endpoint => ({ host: '127.0.0.1', port });
  return {
    http: at(ports.http),
    sink: at(ports.sink),
    echo: at(ports.echo),
    httpClose: at(ports.httpClose),
    source: at(ports.source),
    child,
    stop: () => child.stop(2000),
  };
}

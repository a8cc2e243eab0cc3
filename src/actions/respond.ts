import type net from 'node:net';
import { STATUS_CODES } from 'node:http';

/**
 * A complete short plain-text answer of the proxy's own (blocks, errors, 407), head and body, with our
 * `Connection`. Bodies never echo client input unescaped.
 */
export function textResponse(status: number, body: string, headers: Readonly<Record<string, string>>, close: boolean): string {
  const text = `${body}\n`;
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\ncache-control: no-store\r\n`;
  for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
  head += close ? 'connection: close\r\n\r\n' : 'connection: keep-alive\r\n\r\n';
  return head + text;
}

/** The same on a raw socket (CONNECT and parse errors), which it then closes. */
export function sendRawText(socket: net.Socket | import('node:stream').Duplex, status: number, body: string, headers: Readonly<Record<string, string>> = {}): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(textResponse(status, body, headers, true));
}

/** SPEC: a blocked request or CONNECT gets 403 with a short body naming the rule id. */
export function blockMessage(ruleId: string | null): string {
  return ruleId === null ? 'Blocked by egress policy' : `Blocked by egress policy rule ${ruleId}`;
}

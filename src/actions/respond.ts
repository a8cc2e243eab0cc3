import type net from 'node:net';
import { STATUS_CODES } from 'node:http';

/** A short plain-text answer of the proxy's own on a raw socket (CONNECT and parse errors); closes it. Bodies never echo client input unescaped. */
export function sendRawText(socket: net.Socket | import('node:stream').Duplex, status: number, body: string, headers: Record<string, string> = {}): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const text = `${body}\n`;
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\ncache-control: no-store\r\nconnection: close\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  socket.end(`${head}\r\n${text}`);
}

/** SPEC: a blocked request or CONNECT gets 403 with a short body naming the rule id. */
export function blockMessage(ruleId: string | null): string {
  return ruleId === null ? 'Blocked by egress policy' : `Blocked by egress policy rule ${ruleId}`;
}

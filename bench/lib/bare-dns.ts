/**
 * "bare-node" for DNS: the UDP forwarder a Node developer would write with `node:dgram` and no inspection at all —
 * no parsing beyond the 16-bit ID, no policy, no records, no metrics. It is the platform's figure for the DNS
 * forwarder (issue 9 item 6): what Node's own UDP path costs per forwarded query (one receive and one send on
 * each side), measured in the same run as dnsmasq and egress-inspector by bench/dns.bench.ts.
 *
 * It keeps a table of the queries in flight indexed by a fresh 16-bit upstream ID (the client's ID is restored
 * on the answer), so two clients using the same ID cannot get each other's answers; an entry is dropped when
 * its answer comes or when its slot is reused 65,536 queries later (bounded, no timer).
 *
 * Runs as its own plain-JavaScript process (so its CPU is its own): prints `BARE_DNS {"port":N}` once bound on
 * 127.0.0.1 and exits when stdin closes or on SIGTERM.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnChild, waitForOutput, type Child } from './proc.js';

const SOURCE = `
import dgram from 'node:dgram';
const [upHost, upPortText] = process.argv[2].split(':');
const upPort = Number(upPortText);
const front = dgram.createSocket('udp4');
const back = dgram.createSocket('udp4');
const clients = new Array(65536);
let nextId = 0;
front.on('message', (msg, rinfo) => {
  if (msg.length < 12) return;
  const id = nextId;
  nextId = (nextId + 1) & 0xffff;
  clients[id] = { address: rinfo.address, port: rinfo.port, id: msg.readUInt16BE(0) };
  msg.writeUInt16BE(id, 0);
  back.send(msg, upPort, upHost);
});
back.on('message', (msg) => {
  if (msg.length < 12) return;
  const id = msg.readUInt16BE(0);
  const c = clients[id];
  if (c === undefined) return;
  clients[id] = undefined;
  msg.writeUInt16BE(c.id, 0);
  front.send(msg, c.port, c.address);
});
back.bind(0, '127.0.0.1', () => front.bind(0, '127.0.0.1', () => {
  process.stdout.write('BARE_DNS ' + JSON.stringify({ port: front.address().port }) + '\\n');
}));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
`;

export interface BareDns {
  readonly child: Child;
  readonly port: number;
}

/** Starts the bare relay in `dir` (a temp directory) forwarding to `upstream` ("127.0.0.1:port"). */
export async function startBareDns(dir: string, upstream: string): Promise<BareDns> {
  const file = join(dir, 'bare-dns.mjs');
  writeFileSync(file, SOURCE);
  const child = spawnChild('bare-node dns', process.execPath, [file, upstream], { stdio: ['pipe', 'pipe', 'pipe'] });
  const m = await waitForOutput(child, /BARE_DNS (\{.*\})/, 10_000);
  return { child, port: (JSON.parse(m[1] ?? '{}') as { port: number }).port };
}

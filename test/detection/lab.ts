/**
 * The loopback "internet" the corpus talks to: an address plan, origin servers created on first use, and an
 * authoritative DNS server for every name the scenarios use.
 *
 * Linux routes all of 127.0.0.0/8 to `lo`, so every endpoint host, every destination and every client gets its
 * own address: destinations differ by IP (as they would on the internet), and endpoint hosts differ by source
 * IP (so the proxy's per-client state — managed clients, DNS memory, beacons — is per host, as in a fleet).
 * The proxy runs with `network.internal: [10.0.0.0/8]` and `network.allow_loopback: true`, so 127.x counts as external.
 *
 * Address plan (second octet):
 *   10  fleet workstations (managed: Sysmon)   20  hosts of C2 scenarios (managed)   30  servers (unmanaged)
 *   100–139  named destinations (A records)    150–189  bare-IP destinations (no name)
 * Destinations use one block of each range per run, picked at random, so that two runs on one machine (the CLI
 * and the test) rarely collide on a listening address.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer, Packet } from 'dns-packet';

/** What an origin at ip:port is. The first declaration for an address wins; a conflicting kind is a corpus bug. */
export type EndpointKind =
  | { readonly kind: 'http' }
  /** A TLS peer stand-in: reads the hello, answers `firstReply` bytes, then `perChunkReply` per client write. */
  | { readonly kind: 'tls'; readonly firstReply?: number; readonly perChunkReply?: number }
  /** A non-TLS TCP service: optional banner on connect, `perChunkReply` bytes per client write. */
  | { readonly kind: 'raw'; readonly banner?: string; readonly perChunkReply?: number };

export interface HttpResponseSpec {
  readonly status?: number;
  /** Body size in bytes (default 256). */
  readonly bytes?: number;
  readonly type?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** How a DNS zone (a name and everything below it) answers. */
export interface ZoneAnswers {
  readonly a?: string;
  /** TXT data for a query name (≤ 255 characters). */
  readonly txt?: (name: string) => string;
  readonly cname?: (name: string) => string;
  readonly mx?: (name: string) => string;
  /** NULL record data (RFC 1035 §3.3.10), as iodine asks for. */
  readonly nullData?: (name: string) => Buffer;
}

export interface Lab {
  /** "127.0.0.1:port" of the authoritative test DNS server. */
  readonly dnsServer: string;
  /** The address the test DNS gives `name` (allocated on first use). */
  addressOf(name: string): string;
  /** A public-looking address with no name: the bare-IP destinations. Same key, same address. */
  bareIp(key: string): string;
  /** TXT answers for exactly `name` (the name is then known: other types answer NOERROR, empty). */
  txt(name: string, ...texts: string[]): void;
  /** `suffix` and every name below it answer as given (longest suffix wins over a shorter zone). */
  zone(suffix: string, answers: ZoneAnswers): void;
  /** Start (once) an origin of `kind` at ip:port. */
  ensure(ip: string, port: number, kind: EndpointKind): Promise<void>;
  /** What the HTTP origin at ip:port answers to `method target` (origin-form); returns an undo. */
  respond(ip: string, port: number, method: string, target: string, spec: HttpResponseSpec): () => void;
  /** What the test DNS would answer for an A query of `name`: its address, true (known, no A) or null (NXDOMAIN). */
  describe(name: string): string | true | null;
  /** DNS questions the test server saw (for diagnostics). */
  readonly dnsQueries: () => number;
  close(): Promise<void>;
}

const DEFAULT_TTL = 300;
const RCODE_NXDOMAIN = 3;
const DEFAULT_BODY = 256;

function norm(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function addressFromIndex(base: number, i: number): string {
  // Skip .0 and .255 in the last octet so no address looks like a network or broadcast address.
  const perBlock = 254;
  const block = Math.floor(i / perBlock);
  return `127.${base + Math.floor(block / 256)}.${block % 256}.${(i % perBlock) + 1}`;
}

interface Running {
  readonly kind: EndpointKind;
  readonly close: () => Promise<void>;
}

export async function startLab(): Promise<Lab> {
  const runBlock = randomInt(0, 40);
  const names = new Map<string, string>();
  const bare = new Map<string, string>();
  const txts = new Map<string, string[]>();
  const zones = new Map<string, ZoneAnswers>();
  const servers = new Map<string, Promise<Running>>();
  const routes = new Map<string, HttpResponseSpec>();
  let questions = 0;

  const addressOf = (name: string): string => {
    const n = norm(name);
    let ip = names.get(n);
    if (ip === undefined) {
      ip = addressFromIndex(100 + runBlock, names.size);
      names.set(n, ip);
    }
    return ip;
  };

  const zoneOf = (name: string): ZoneAnswers | undefined => {
    for (let n = name; n !== ''; ) {
      const z = zones.get(n);
      if (z !== undefined) return z;
      const dot = n.indexOf('.');
      if (dot === -1) break;
      n = n.slice(dot + 1);
    }
    return undefined;
  };

  function reply(query: Packet): Buffer {
    const q = query.questions?.[0];
    const base = { type: 'response' as const, id: query.id ?? 0, questions: query.questions ?? [] };
    const flags = dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE;
    if (q === undefined) return dnsPacket.encode({ ...base, flags, answers: [] });
    const name = norm(q.name);
    const answers: Answer[] = [];
    const ttl = DEFAULT_TTL;
    const ip = names.get(name);
    const texts = txts.get(name);
    const zone = ip === undefined && texts === undefined ? zoneOf(name) : undefined;
    if (ip === undefined && texts === undefined && zone === undefined) {
      return dnsPacket.encode({ ...base, flags: flags | RCODE_NXDOMAIN, answers: [] });
    }
    const at = q.name;
    switch (q.type) {
      case 'A': {
        const a = ip ?? zone?.a;
        if (a !== undefined) answers.push({ type: 'A', name: at, ttl, class: 'IN', data: a });
        break;
      }
      case 'TXT': {
        const data = texts ?? (zone?.txt === undefined ? undefined : [zone.txt(name)]);
        if (data !== undefined) answers.push({ type: 'TXT', name: at, ttl: 0, class: 'IN', data });
        break;
      }
      case 'CNAME':
        if (zone?.cname !== undefined) answers.push({ type: 'CNAME', name: at, ttl: 0, class: 'IN', data: zone.cname(name) });
        break;
      case 'MX':
        if (zone?.mx !== undefined) answers.push({ type: 'MX', name: at, ttl: 0, class: 'IN', data: { preference: 10, exchange: zone.mx(name) } });
        break;
      case 'NULL':
        if (zone?.nullData !== undefined) answers.push({ type: 'NULL', name: at, ttl: 0, class: 'IN', data: zone.nullData(name) } as Answer);
        break;
      default:
        break; // NOERROR, no answer (e.g. AAAA for a v4-only name)
    }
    return dnsPacket.encode({ ...base, flags, answers });
  }

  const udp: UdpSocket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(0, '127.0.0.1', () => {
      udp.off('error', reject);
      resolve();
    });
  });
  udp.on('message', (msg, rinfo) => {
    let packet: Packet;
    try {
      packet = dnsPacket.decode(msg);
    } catch {
      return;
    }
    questions++;
    udp.send(reply(packet), rinfo.port, rinfo.address);
  });

  function startHttp(ip: string, port: number): Promise<Running> {
    const sockets = new Set<net.Socket>();
    const server = http.createServer((req, res) => {
      req.on('data', () => undefined);
      req.on('end', () => {
        const spec = routes.get(`${ip}:${port} ${req.method ?? 'GET'} ${req.url ?? '/'}`) ?? {};
        const size = spec.bytes ?? DEFAULT_BODY;
        const type = spec.type ?? 'text/html';
        const binary = !type.startsWith('text/') && !type.includes('json') && !type.includes('xml');
        res.writeHead(spec.status ?? 200, { 'content-type': type, 'content-length': String(size), connection: 'close', ...spec.headers });
        res.end(binary ? randomBytes(size) : Buffer.alloc(size, 0x61));
      });
    });
    server.on('connection', (s: net.Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    });
    server.on('clientError', (_e, s) => s.destroy());
    return listen(server, ip, port, { kind: 'http' }, sockets);
  }

  function startTcp(ip: string, port: number, kind: Exclude<EndpointKind, { kind: 'http' }>): Promise<Running> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
      let first = true;
      if (kind.kind === 'raw' && kind.banner !== undefined) s.write(kind.banner);
      s.on('data', () => {
        if (s.destroyed || !s.writable) return;
        if (kind.kind === 'tls' && first) {
          // ServerHello … ServerHelloDone (or the TLS 1.3 encrypted flight) stands in as one opaque record.
          const n = kind.firstReply ?? 2800;
          s.write(Buffer.concat([Buffer.from([0x16, 0x03, 0x03, (n >> 8) & 0xff, n & 0xff]), randomBytes(n)]));
        } else {
          const n = kind.perChunkReply ?? (kind.kind === 'tls' ? 512 : 64);
          if (n > 0) {
            const body = randomBytes(n);
            s.write(kind.kind === 'tls' ? Buffer.concat([Buffer.from([0x17, 0x03, 0x03, (n >> 8) & 0xff, n & 0xff]), body]) : body);
          }
        }
        first = false;
      });
      s.on('end', () => s.end());
    });
    return listen(server, ip, port, kind, sockets);
  }

  function listen(server: net.Server, ip: string, port: number, kind: EndpointKind, sockets: Set<net.Socket>): Promise<Running> {
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EACCES') {
          reject(new Error(`cannot listen on ${ip}:${port} (${err.code}): the corpus needs ports below 1024 — run as root, ` +
            'with CAP_NET_BIND_SERVICE, or after `sysctl net.ipv4.ip_unprivileged_port_start=0`'));
        } else reject(err);
      });
      server.listen(port, ip, () =>
        resolve({
          kind,
          close: () => {
            for (const s of sockets) s.destroy();
            return new Promise<void>((r) => server.close(() => r()));
          },
        }),
      );
    });
  }

  return {
    dnsServer: `127.0.0.1:${udp.address().port}`,
    addressOf,
    bareIp(key) {
      let ip = bare.get(key);
      if (ip === undefined) {
        ip = addressFromIndex(150 + runBlock, bare.size);
        bare.set(key, ip);
      }
      return ip;
    },
    txt(name, ...texts) {
      txts.set(norm(name), texts);
    },
    zone(suffix, answers) {
      zones.set(norm(suffix), answers);
    },
    async ensure(ip, port, kind) {
      const key = `${ip}:${port}`;
      let running = servers.get(key);
      if (running === undefined) {
        running = kind.kind === 'http' ? startHttp(ip, port) : startTcp(ip, port, kind);
        servers.set(key, running);
      }
      const r = await running;
      if (r.kind.kind !== kind.kind) throw new Error(`corpus bug: ${key} is already a ${r.kind.kind} endpoint, not ${kind.kind}`);
    },
    respond(ip, port, method, target, spec) {
      const key = `${ip}:${port} ${method} ${target}`;
      routes.set(key, spec);
      return () => {
        if (routes.get(key) === spec) routes.delete(key);
      };
    },
    describe(name) {
      const n = norm(name);
      const ip = names.get(n);
      if (ip !== undefined) return ip;
      if (txts.has(n)) return true;
      const z = zoneOf(n);
      return z === undefined ? null : (z.a ?? true);
    },
    dnsQueries: () => questions,
    async close() {
      const all = await Promise.allSettled([...servers.values()]);
      await Promise.all(all.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
      await new Promise<void>((r) => udp.close(() => r()));
    },
  };
}

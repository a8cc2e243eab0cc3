/**
 * Plays scenarios through the live proxy as an endpoint fleet would: each connection comes from its host's own
 * loopback address, and — for managed hosts — the Sysmon events an agent ships are posted to /v1/hints first:
 * Event ID 1 once per process, Event ID 3 for each connection to the proxy (SourceIp/SourcePort = the client
 * socket's local address, as Sysmon records it), Event ID 22 for each DNS query.
 *
 * Every connection and query is written to a ledger (source ip|port, start time, scenario) so the runner can
 * give each flow record of the proxy back to the scenario that caused it.
 */
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { appDataRecords, clientHello } from './hellos.js';
import type { Lab } from './lab.js';
import { createRng, type Rng } from './rng.js';
import type { DnsRequest, DnsResult, HttpRequest, LabHost, PlayContext, Proc, ProcessSpec, RawRequest, TlsRequest } from './types.js';

export interface ProxyEndpoints {
  readonly proxyPort: number;
  readonly dnsPort: number;
  readonly adminUrl: string;
  readonly token: string;
}

/** One connection or query made by a scenario. */
export interface LedgerEntry {
  readonly scenario: string;
  readonly key: string;
  readonly startMs: number;
}

export interface Ledger {
  readonly entries: LedgerEntry[];
  /** Hint posts the proxy refused (should stay 0). */
  hintErrors: number;
}

const IO_TIMEOUT_MS = 8000;
const REPLY_WAIT_MS = 1200;
const DNS_TIMEOUT_MS = 2000;

/** Sysmon's UtcTime: "2026-11-26 13:21:57.504". */
function sysmonTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

function baseName(path: string): string {
  return path.slice(Math.max(path.lastIndexOf('\\'), path.lastIndexOf('/')) + 1);
}

function isIp(host: string): boolean {
  return net.isIP(host) !== 0;
}

function splitAuthority(authority: string): { host: string; port: number } {
  const i = authority.lastIndexOf(':');
  return { host: authority.slice(0, i), port: Number(authority.slice(i + 1)) };
}

/** A stable fake SHA-256 per image path: the same binary hashes the same on every host. */
function hashesOf(image: string): string {
  const sha = createHash('sha256').update(image.toLowerCase()).digest('hex').toUpperCase();
  const md5 = createHash('md5').update(image.toLowerCase()).digest('hex').toUpperCase();
  return `MD5=${md5},SHA256=${sha}`;
}

export async function postHints(px: ProxyEndpoints, events: readonly object[], ledger: Ledger): Promise<void> {
  const res = await fetch(`${px.adminUrl}/v1/hints`, {
    method: 'POST',
    headers: { authorization: `Bearer ${px.token}`, 'content-type': 'application/x-ndjson' },
    body: events.map((e) => JSON.stringify(e)).join('\n'),
  });
  const body = (await res.json().catch(() => ({}))) as { rejected?: number };
  if (res.status !== 202 || (body.rejected ?? 0) > 0) ledger.hintErrors += events.length;
}

/** Resolves with the next chunk's arrival (true), or false on close/timeout. */
function nextData(socket: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(false);
    const done = (v: boolean): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(v);
    };
    const onData = (): void => done(true);
    const onClose = (): void => done(false);
    const timer = setTimeout(() => done(false), ms);
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

function closed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    const timer = setTimeout(() => {
      socket.destroy();
      resolve();
    }, IO_TIMEOUT_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

interface PlayerDeps {
  readonly lab: Lab;
  readonly px: ProxyEndpoints;
  readonly ledger: Ledger;
  readonly scenario: string;
  readonly hosts: readonly LabHost[];
}

/** Builds the PlayContext one scenario plays with. */
export function createPlayContext(deps: PlayerDeps): PlayContext {
  const { lab, px, ledger, scenario } = deps;
  const rng: Rng = createRng(scenario);
  let procCount = 0;
  const firstHost = deps.hosts[0];
  if (firstHost === undefined) throw new Error(`scenario ${scenario} has no host`);
  const first: LabHost = firstHost;

  const record = (host: LabHost, port: number, startMs: number): void => {
    ledger.entries.push({ scenario, key: `${host.ip}|${port}`, startMs });
  };

  /** Open a TCP connection to the proxy from the host's address; the Sysmon EID 3 is posted before any byte. */
  async function openToProxy(host: LabHost, eid3: ((port: number) => object) | null): Promise<net.Socket> {
    const socket = net.connect({ host: '127.0.0.1', port: px.proxyPort, localAddress: host.ip });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    socket.on('error', () => socket.destroy());
    const port = socket.localPort ?? 0;
    record(host, port, Date.now());
    if (eid3 !== null) await postHints(px, [eid3(port)], ledger);
    return socket;
  }

  /** CONNECT, then the status code of the proxy's answer. */
  function connectThrough(socket: net.Socket, authority: string): Promise<number> {
    return new Promise((resolve) => {
      let buf = '';
      const timer = setTimeout(() => finish(0), IO_TIMEOUT_MS);
      const finish = (status: number): void => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve(status);
      };
      const onData = (c: Buffer): void => {
        buf += c.toString('latin1');
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        // Bytes after the head (a server-first banner) are not needed by any scenario: dropped.
        finish(Number(/^HTTP\/1\.[01] (\d{3})/.exec(buf)?.[1] ?? 0));
      };
      const onClose = (): void => finish(0);
      socket.on('data', onData);
      socket.on('close', onClose);
      socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    });
  }

  function proc(spec: ProcessSpec, host: LabHost = first): Proc {
    procCount++;
    const pid = 1000 + ((createHash('md5').update(`${scenario}|${procCount}`).digest().readUInt16BE(0)) % 30000) * 4;
    const guidHex = createHash('md5').update(`${scenario}|${host.fqdn}|${procCount}|${spec.image}`).digest('hex');
    const guid = `{${guidHex.slice(0, 8)}-${guidHex.slice(8, 12)}-${guidHex.slice(12, 16)}-${guidHex.slice(16, 20)}-${guidHex.slice(20, 32)}}`;
    const user = spec.user ?? host.user;
    const startedMs = Date.now() - rng.int(2_000, 60_000);
    let announced: Promise<void> | null = null;

    const common = (atMs: number): Record<string, string> => ({
      UtcTime: sysmonTime(atMs),
      Hostname: host.fqdn,
      ProcessGuid: guid,
      ProcessId: String(pid),
      Image: spec.image,
      User: user,
    });
    const announce = (): Promise<void> => {
      if (!host.managed) return Promise.resolve();
      announced ??= postHints(px, [{
        EventID: 1,
        ...common(startedMs),
        CommandLine: spec.commandLine ?? `"${spec.image}"`,
        CurrentDirectory: 'C:\\Windows\\system32\\',
        ParentImage: spec.parentImage ?? 'C:\\Windows\\explorer.exe',
        ParentCommandLine: spec.parentCommandLine ?? (spec.parentImage === undefined ? 'C:\\Windows\\Explorer.EXE' : `"${spec.parentImage}"`),
        OriginalFileName: spec.originalFileName ?? baseName(spec.image),
        Hashes: hashesOf(spec.image),
        IntegrityLevel: user.startsWith('NT AUTHORITY') ? 'System' : 'Medium',
      }], ledger);
      return announced;
    };
    const eid3 = (port: number): object => ({
      EventID: 3,
      ...common(Date.now()),
      Protocol: 'tcp',
      Initiated: 'true',
      SourceIsIpv6: 'false',
      SourceIp: host.ip,
      SourceHostname: host.fqdn,
      SourcePort: String(port),
      SourcePortName: '-',
      DestinationIsIpv6: 'false',
      DestinationIp: '127.0.0.1',
      DestinationHostname: '-',
      DestinationPort: String(px.proxyPort),
      DestinationPortName: '-',
    });

    const open = async (): Promise<net.Socket> => {
      await announce();
      return openToProxy(host, host.managed ? eid3 : null);
    };

    return {
      host,
      async http(req: HttpRequest): Promise<number> {
        const u = new URL(req.url);
        if (u.protocol !== 'http:') throw new Error(`corpus bug: ${req.url} is not http://`);
        const hostName = u.hostname.replace(/^\[|\]$/g, '');
        const port = u.port === '' ? 80 : Number(u.port);
        const ip = isIp(hostName) ? hostName : lab.addressOf(hostName);
        await lab.ensure(ip, port, { kind: 'http' });
        const method = req.method ?? 'GET';
        const target = `${u.pathname}${u.search}`;
        const undo = lab.respond(ip, port, method, target, req.response ?? {});
        const body = req.body === undefined ? Buffer.alloc(0) : Buffer.from(req.body);
        const lines = [`${method} ${req.url} HTTP/1.1`, `Host: ${u.host}`];
        for (const [k, v] of req.headers ?? []) lines.push(`${k}: ${v}`);
        if (body.length > 0 || method === 'POST' || method === 'PUT') lines.push(`Content-Length: ${body.length}`);
        lines.push('Connection: close');
        const socket = await open();
        let head = '';
        socket.on('data', (c: Buffer) => {
          if (head.length < 64) head += c.toString('latin1');
        });
        socket.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]));
        await closed(socket);
        undo();
        return Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      },

      async tls(req: TlsRequest): Promise<number> {
        const { host: target, port } = splitAuthority(req.connect);
        const ip = isIp(target) ? target : lab.addressOf(target);
        await lab.ensure(ip, port, { kind: 'tls', ...req.server });
        const sni = req.sni === undefined ? (isIp(target) ? null : target) : req.sni;
        const socket = await open();
        const status = await connectThrough(socket, req.connect);
        if (status !== 200) {
          socket.destroy();
          return status;
        }
        socket.on('data', () => undefined);
        socket.write(clientHello(req.hello, sni));
        if (await nextData(socket, REPLY_WAIT_MS)) {
          for (const size of req.upload ?? []) {
            if (socket.destroyed) break;
            socket.write(appDataRecords(size, (n) => rng.bytes(n)));
            await nextData(socket, REPLY_WAIT_MS);
          }
          if ((req.holdMs ?? 0) > 0 && !socket.destroyed) await new Promise((r) => setTimeout(r, req.holdMs));
        }
        socket.end();
        await closed(socket);
        return status;
      },

      async raw(req: RawRequest): Promise<number> {
        const { host: target, port } = splitAuthority(req.connect);
        const ip = isIp(target) ? target : lab.addressOf(target);
        await lab.ensure(ip, port, { kind: 'raw', ...req.server });
        const socket = await open();
        const status = await connectThrough(socket, req.connect);
        if (status !== 200) {
          socket.destroy();
          return status;
        }
        socket.on('data', () => undefined);
        for (const chunk of req.send) {
          if (socket.destroyed) break;
          socket.write(chunk);
          await nextData(socket, REPLY_WAIT_MS);
        }
        if ((req.holdMs ?? 0) > 0 && !socket.destroyed) await new Promise((r) => setTimeout(r, req.holdMs));
        socket.end();
        await closed(socket);
        return status;
      },

      async dns(req: DnsRequest): Promise<DnsResult> {
        const type = req.type ?? 'A';
        if (req.nx !== true && lab.describe(req.name) === null) lab.addressOf(req.name);
        const sock = createSocket('udp4');
        await new Promise<void>((resolve, reject) => {
          sock.once('error', reject);
          sock.bind({ address: host.ip, port: 0 }, () => resolve());
        });
        const port = sock.address().port;
        record(host, port, Date.now());
        if (host.managed) {
          // Sysmon Event ID 22 names the asking process; it is posted before the query so that the proxy can
          // attribute the flow at once (a real agent ships it a moment later; the proxy then writes a follow-up).
          await announce();
          // QueryStatus is the Win32 status: 0, or 9003 (DNS_ERROR_RCODE_NAME_ERROR) for NXDOMAIN.
          const known = lab.describe(req.name);
          const results = typeof known === 'string' && type === 'A' ? `::ffff:${known};` : '-';
          await postHints(px, [{ EventID: 22, ...common(Date.now()), QueryName: req.name, QueryStatus: known === null ? '9003' : '0', QueryResults: results }], ledger);
        }
        const query = dnsPacket.encode({
          type: 'query',
          id: rng.int(1, 65535),
          flags: dnsPacket.RECURSION_DESIRED,
          questions: [{ type: type as dnsPacket.RecordType, name: req.name }],
        });
        const result = await new Promise<DnsResult>((resolve) => {
          const timer = setTimeout(() => resolve({ rcode: 'TIMEOUT', answers: 0 }), DNS_TIMEOUT_MS);
          sock.on('message', (msg) => {
            clearTimeout(timer);
            try {
              const p = dnsPacket.decode(msg) as dnsPacket.DecodedPacket & { rcode?: string };
              resolve({ rcode: p.rcode ?? 'NOERROR', answers: p.answers?.length ?? 0 });
            } catch {
              resolve({ rcode: 'MALFORMED', answers: 0 });
            }
          });
          sock.send(query, px.dnsPort, '127.0.0.1');
        });
        sock.close();
        return result;
      },
    };
  }

  return {
    hosts: deps.hosts,
    host: first,
    rng,
    lab,
    proc,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
}

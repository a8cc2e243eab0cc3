/**
 * One CONNECT tunnel, bulk bytes up (client → destination) and down (destination → client), through
 * (a) the old pipe() relay, (b) the relay of src/actions/tunnel.ts (onread both ways), (c) the same relay
 * with Node's stream reads on the client side, (d) Squid (Debian's, our own instance on loopback, when
 * installed) and (e) no relay at all (direct) — in one run, rounds interleaved, loopback only (issue 9
 * item 3).
 *
 *   npx tsx bench/tunnel.bench.ts [--rounds 5] [--mib 1024] [--max-ms 8000]
 *                                 [--only pipe,relay,relay-stream-up,squid,direct] [--cpu-prof]
 *
 * Each relay runs in its own process (the same CONNECT front end as the proxy: http.Server 'connect'),
 * so its CPU is measured on its own (from /proc/<pid>/stat) and reported as CPU seconds per GB: a figure
 * that stays meaningful when other work shares the machine, unlike MB/s. Both ends (client and
 * destination) run in this process: senders write 1 MiB chunks and honour backpressure; receivers only
 * count. A transfer is timed from its first byte to the receiver's last (up: the destination's one-byte
 * acknowledgement), so bytes sitting in socket buffers are not counted as delivered.
 *
 * Output: a table of medians, then one JSON line.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { dialUpstream, splice, relayBufferStats } from '../src/actions/tunnel.js';
import { spawnChild, waitForOutput, type Child, type Endpoint } from './lib/proc.js';
import { startSquid, type SquidInstance } from './lib/start-squid.js';
import { openTunnel } from './lib/tunnel-client.js';

const MiB = 1024 * 1024;
const VARIANTS = ['pipe', 'relay', 'relay-stream-up'] as const;
type Variant = (typeof VARIANTS)[number];
type Subject = Variant | 'squid' | 'direct';
type Direction = 'up' | 'down';

// ---- the relay process -----------------------------------------------------------------------------------

/** The relay before issue 9: pipe() both ways, a socket timeout per side (kept here as the baseline). */
function pipeSplice(client: net.Socket, upstream: net.Socket, idleMs: number, replay: Buffer): Promise<void> {
  return new Promise((resolve) => {
    let closed = 0;
    const onClose = (): void => {
      if (++closed === 2) resolve();
    };
    const fail = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', fail);
    upstream.on('error', fail);
    client.setTimeout(idleMs, fail);
    upstream.setTimeout(idleMs, fail);
    const drainOther = (other: net.Socket): void => {
      if (other.destroyed) return;
      other.end();
      other.resume();
    };
    client.once('close', () => {
      drainOther(upstream);
      onClose();
    });
    upstream.once('close', () => {
      drainOther(client);
      onClose();
    });
    if (replay.length > 0) upstream.write(replay);
    client.pipe(upstream);
    upstream.pipe(client);
  });
}

async function serveRelay(variant: Variant): Promise<void> {
  const server = http.createServer();
  server.timeout = 300_000; // as the proxy: server.timeout = idle
  server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    void (async () => {
      socket.on('error', () => socket.destroy());
      const [host, port] = (req.url ?? '').split(':');
      const upstream = await dialUpstream(host ?? '127.0.0.1', Number(port), 5000, { relay: variant !== 'pipe' });
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (variant === 'pipe') await pipeSplice(socket, upstream, 300_000, head);
      else await splice(socket, upstream, 300_000, head, { adoptReads: variant === 'relay' });
    })().catch(() => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  process.stdout.write(`RELAY ${(server.address() as net.AddressInfo).port}\n`);
  process.stdin.once('end', () => process.exit(0));
  process.once('SIGTERM', () => process.exit(0)); // exit(), so that --cpu-prof writes its profile
  process.stdin.resume();
  // For the leak check at the end of the run (after a moment, so the last tunnel has closed).
  process.on('SIGUSR2', () => setTimeout(() => process.stdout.write(`BUFFERS ${JSON.stringify(relayBufferStats())}\n`), 300));
}

// ---- the two ends ----------------------------------------------------------------------------------------

const payload = randomBytes(MiB);

/**
 * The destination. First 9 bytes of a connection: 'U' or 'D' + u64 byte count. 'U': count that many
 * bytes in, then answer one byte. 'D': send that many bytes.
 */
function startDestination(): Promise<net.Server> {
  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    let header = Buffer.alloc(0);
    let remaining = -1;
    const onData = (chunk: Buffer): void => {
      if (remaining < 0) {
        header = Buffer.concat([header, chunk]);
        if (header.length < 9) return;
        const op = String.fromCharCode(header[0] ?? 0);
        remaining = Number(header.readBigUInt64BE(1));
        chunk = header.subarray(9);
        if (op === 'D') {
          socket.off('data', onData);
          void send(socket, remaining);
          return;
        }
      }
      remaining -= chunk.length;
      if (remaining === 0) socket.write('K');
    };
    socket.on('data', onData);
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

async function send(socket: net.Socket, bytes: number): Promise<void> {
  for (let left = bytes; left > 0 && !socket.destroyed; left -= payload.length) {
    const chunk = left >= payload.length ? payload : payload.subarray(0, left);
    if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
  }
}

function header(op: 'U' | 'D', bytes: number): Buffer {
  const b = Buffer.alloc(9);
  b.write(op, 0, 'latin1');
  b.writeBigUInt64BE(BigInt(bytes), 1);
  return b;
}

interface Transfer {
  readonly mbPerSec: number;
  /** Relay process CPU seconds per GB moved; null for direct. */
  readonly cpuSecPerGb: number | null;
}

/** Relay CPU time so far (user + system), seconds; Linux /proc, clock ticks of 10 ms. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function transfer(via: Endpoint | null, relayPid: number | null, dest: Endpoint, dir: Direction, bytes: number, maxMs: number): Promise<Transfer> {
  const socket = await openTunnel(via, dest, 5000);
  try {
    const cpu0 = relayPid === null ? 0 : cpuSeconds(relayPid);
    const t0 = process.hrtime.bigint();
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${dir} transfer of ${bytes} bytes not done in ${maxMs} ms`)), maxMs);
      let received = 0;
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if ((dir === 'up' && received >= 1) || (dir === 'down' && received >= bytes)) {
          clearTimeout(timer);
          resolve();
        }
      });
      socket.once('close', () => reject(new Error(`tunnel closed during the ${dir} transfer`)));
      socket.resume();
    });
    socket.write(header(dir === 'up' ? 'U' : 'D', bytes));
    if (dir === 'up') await send(socket, bytes);
    await done;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = relayPid === null ? null : cpuSeconds(relayPid) - cpu0;
    return { mbPerSec: bytes / 1e6 / seconds, cpuSecPerGb: cpu === null ? null : cpu / (bytes / 1e9) };
  } finally {
    socket.destroy();
  }
}

// ---- main ------------------------------------------------------------------------------------------------

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at === -1 ? Number.NaN : Number(process.argv[at + 1]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

async function main(): Promise<void> {
  const rounds = arg('rounds', 5);
  const bytes = arg('mib', 1024) * MiB;
  const maxMs = arg('max-ms', 8000);
  const self = fileURLToPath(import.meta.url);
  const dest = await startDestination();
  const destEnd: Endpoint = { host: '127.0.0.1', port: (dest.address() as net.AddressInfo).port };
  const relays = new Map<Variant, { child: Child; via: Endpoint }>();
  const only = process.argv.includes('--only') ? (process.argv[process.argv.indexOf('--only') + 1] ?? '').split(',') : null;
  const squidBinary = ['/usr/sbin/squid', '/usr/bin/squid'].find((p) => existsSync(p)) ?? null;
  let squid: SquidInstance | null = null;
  try {
    if (squidBinary !== null && (only === null || only.includes('squid'))) squid = await startSquid({ binary: squidBinary });
    for (const variant of VARIANTS) {
      // --cpu-prof: each relay process writes a V8 CPU profile to bench/results/profiles/ when it exits.
      const prof = process.argv.includes('--cpu-prof') ? ['--cpu-prof', '--cpu-prof-dir', fileURLToPath(new URL('./results/profiles/', import.meta.url))] : [];
      const child = spawnChild(`relay-${variant}`, process.execPath, [...prof, '--import', 'tsx', self, 'relay', variant], { stdio: ['pipe', 'pipe', 'pipe'] });
      const port = Number((await waitForOutput(child, /RELAY (\d+)/, 15_000))[1]);
      relays.set(variant, { child, via: { host: '127.0.0.1', port } });
    }
    const subjects = ([...VARIANTS, 'squid', 'direct'] as Subject[]).filter((s) => (only === null || only.includes(s)) && (s !== 'squid' || squid !== null));
    const results = new Map<string, Transfer[]>();
    const run = async (subject: Subject, dir: Direction, n: number): Promise<Transfer> => {
      if (subject === 'squid' && squid !== null) return transfer(squid.proxy, squid.child.proc.pid ?? null, destEnd, dir, n, maxMs);
      const relay = subject === 'direct' || subject === 'squid' ? undefined : relays.get(subject);
      return transfer(relay?.via ?? null, relay?.child.proc.pid ?? null, destEnd, dir, n, maxMs);
    };
    for (const s of subjects) for (const d of ['up', 'down'] as const) await run(s, d, 64 * MiB); // warm-up (JIT, TCP windows)
    for (let round = 0; round < rounds; round++) {
      // Interleaved, and the order rotates each round so no subject always follows the same one.
      const order = subjects.map((_, i) => subjects[(i + round) % subjects.length] as Subject);
      for (const s of order) {
        for (const d of ['up', 'down'] as const) {
          const r = await run(s, d, bytes);
          results.set(`${s} ${d}`, [...(results.get(`${s} ${d}`) ?? []), r]);
          process.stderr.write(`round ${round + 1}/${rounds} ${s} ${d}: ${r.mbPerSec.toFixed(0)} MB/s${r.cpuSecPerGb === null ? '' : `, relay ${r.cpuSecPerGb.toFixed(3)} CPU s/GB`}\n`);
        }
      }
    }
    const leaks: Record<string, unknown> = {};
    for (const [variant, relay] of relays) {
      if (variant === 'pipe') continue;
      relay.child.proc.kill('SIGUSR2');
      leaks[variant] = JSON.parse((await waitForOutput(relay.child, /BUFFERS (\{[^\n]*\})/, 5000))[1] ?? '{}');
    }
    const rows = subjects.flatMap((s) =>
      (['up', 'down'] as const).map((d) => {
        const rs = results.get(`${s} ${d}`) ?? [];
        const cpu = rs.flatMap((r) => (r.cpuSecPerGb === null ? [] : [r.cpuSecPerGb]));
        return {
          subject: s,
          direction: d,
          mbPerSec: Math.round(median(rs.map((r) => r.mbPerSec))),
          min: Math.round(Math.min(...rs.map((r) => r.mbPerSec))),
          max: Math.round(Math.max(...rs.map((r) => r.mbPerSec))),
          relayCpuSecPerGb: cpu.length === 0 ? null : Number(median(cpu).toFixed(3)),
        };
      }),
    );
    const say = (line: string): void => void process.stdout.write(`${line}\n`);
    say(`\nOne tunnel, ${bytes / MiB} MiB per transfer, ${rounds} interleaved rounds, medians (min–max); loopback, ${process.version}`);
    say(`${'subject'.padEnd(18)}${'dir'.padEnd(6)}${'MB/s'.padStart(7)}${'min–max'.padStart(14)}${'relay CPU s/GB'.padStart(16)}`);
    for (const r of rows) {
      say(
        `${r.subject.padEnd(18)}${r.direction.padEnd(6)}${String(r.mbPerSec).padStart(7)}${`${r.min}–${r.max}`.padStart(14)}${(r.relayCpuSecPerGb === null ? '-' : r.relayCpuSecPerGb.toFixed(3)).padStart(16)}`,
      );
    }
    say(JSON.stringify({ bench: 'tunnel relay', node: process.version, rounds, bytesPerTransfer: bytes, rows, relayBuffersAfter: leaks }));
  } finally {
    for (const { child } of relays.values()) await child.stop(2000);
    if (squid !== null) {
      await squid.stop();
      rmSync(squid.dir, { recursive: true, force: true });
    }
    dest.close();
  }
}

if (process.argv[2] === 'relay') await serveRelay((process.argv[3] ?? 'relay') as Variant);
else await main();

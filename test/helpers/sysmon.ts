/** Sysmon events and client ports for attribution tests. */
import { createServer } from 'node:net';

/** Sysmon's UtcTime format: "2026-11-26 13:21:57.504". */
export function sysmonTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/** A raw Sysmon Event ID 3 from 127.0.0.1:port, as OTRF/NXLog ship it (strings everywhere). */
export function eid3(port: number, image: string, atMs = Date.now(), guid = `{5a9b1c2d-0000-0000-0000-${String(port).padStart(12, '0')}}`): Record<string, unknown> {
  return {
    EventID: 3,
    UtcTime: sysmonTime(atMs),
    Hostname: 'WORKSTATION5.corp.local',
    ProcessGuid: guid,
    ProcessId: '4242',
    Image: image,
    User: 'CORP\\alice',
    Protocol: 'tcp',
    Initiated: 'true',
    SourceIp: '127.0.0.1',
    SourcePort: String(port),
    DestinationIp: '127.0.0.1',
    DestinationPort: '3128',
  };
}

/**
 * A source port for curl --local-port: below Linux's ephemeral range (32768–60999), where the suite's own
 * connections and their TIME_WAIT live, and free right now (bound and released).
 */
export async function freeSourcePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const probe = createServer();
    const free = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (free) {
      await new Promise<void>((r) => probe.close(() => r()));
      return port;
    }
  }
  throw new Error('no free local port for curl');
}

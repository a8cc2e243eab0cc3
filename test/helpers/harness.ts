/**
 * Starts the real proxy in-process on loopback port 0, with a local DNS server and an in-memory flow log,
 * for integration tests. Everything stays on 127.0.0.1.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/load.js';
import { startProxy, type RunningProxy } from '../../src/cli/start.js';
import type { FlowLog } from '../../src/observe/flow-log.js';
import type { EcsRecord } from '../../src/observe/ecs.js';
import { silentLogger } from '../../src/observe/logger.js';
import { startDnsServer, type DnsRecords, type TestDnsServer } from './dns-server.js';

export interface HarnessOptions {
  /** Policy YAML (a `version: 1` file). */
  policy: string;
  /**
   * Extra config YAML merged by text: sections given here replace the harness defaults of that section
   * (write POLICY_FILE where the harness's policy file path belongs).
   */
  config?: Record<string, string>;
  dns?: DnsRecords;
}

export interface Harness {
  readonly proxy: RunningProxy;
  readonly port: number;
  readonly proxyUrl: string;
  readonly adminUrl: string;
  readonly dir: string;
  readonly policyFile: string;
  readonly dns: TestDnsServer;
  readonly records: EcsRecord[];
  /** Resolves with the first record matching `pred` (waits up to `ms`). */
  waitForRecord(pred: (r: EcsRecord) => boolean, ms?: number): Promise<EcsRecord>;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

/** In-memory flow log: the records as the file would hold them (JSON round trip). */
export function memoryFlowLog(records: EcsRecord[]): FlowLog {
  return {
    write: (line) => void records.push(JSON.parse(line) as EcsRecord),
    flush: () => undefined,
    close: () => Promise.resolve(),
  };
}

/** Read a dotted path from a nested record. */
export function field(record: EcsRecord, path: string): unknown {
  if (path === '@timestamp') return record[path];
  let node: unknown = record;
  for (const key of path.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

export async function startHarness(opts: HarnessOptions): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'egress-test-'));
  const policyFile = join(dir, 'policy.yaml');
  await writeFile(policyFile, opts.policy);
  const dns = await startDnsServer(opts.dns ?? {});
  const sections: Record<string, string> = {
    proxy: 'proxy:\n  listen: "127.0.0.1:0"\n  timeouts: { connect: 2s, response: 2s, idle: 10s, headers: 5s }\n  drain: 2s',
    admin: 'admin:\n  listen: "127.0.0.1:0"\n  token: test-token',
    dns: 'dns:\n  listen: null',
    resolver: `resolver:\n  servers: ["${dns.server}"]\n  timeout: 500ms`,
    // Loopback stands in for "the internet" in these tests; the internal-destination tests override this.
    network: 'network:\n  internal: [10.0.0.0/8]\n  allow_loopback: true',
    policy: `policy:\n  files: ["${policyFile}"]\n  hint_wait: 100ms`,
    log: 'log:\n  flows: "-"\n  level: error',
    ...opts.config,
  };
  // A section given by the test may name the harness's policy file as POLICY_FILE.
  const text = Object.values(sections).join('\n').replaceAll('POLICY_FILE', policyFile);
  const parsed = parseConfigText(text, { baseDir: dir, env: {} });
  if (!parsed.ok) throw new Error(`harness config invalid:\n${parsed.errors.join('\n')}`);
  const records: EcsRecord[] = [];
  const proxy = await startProxy(parsed.config, { logger: silentLogger(), flowLog: memoryFlowLog(records) });
  const port = proxy.proxyAddress.port;
  const adminUrl = `http://127.0.0.1:${proxy.adminAddress.port}`;
  return {
    proxy,
    port,
    proxyUrl: `http://127.0.0.1:${port}`,
    adminUrl,
    dir,
    policyFile,
    dns,
    records,
    async waitForRecord(pred, ms = 6000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = records.find(pred);
        if (found !== undefined) return found;
        if (Date.now() > deadline) throw new Error(`no matching flow record within ${ms} ms; have:\n${records.map((r) => JSON.stringify(r)).join('\n')}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async metrics() {
      return proxy.metrics.registry.metrics();
    },
    async stop() {
      await proxy.stop();
      await dns.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

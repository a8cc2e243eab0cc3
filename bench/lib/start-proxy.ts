/**
 * Starts egress-inspector from its build (dist/main.js) with a bench config on loopback. The built
 * JavaScript is measured, not tsx's on-the-fly loader, so the figures are what `npm start` users get
 * after `npm run build`.
 */
import { createReadStream, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnChild, waitForOutput, type Child, type Endpoint } from './proc.js';

export interface ProxyOptions {
  /** Repository root (holds dist/ and node_modules/). */
  readonly root: string;
  /** A private temp directory for the config, extra policy and flow log. */
  readonly dir: string;
  /** Label used in file names and errors. */
  readonly name: string;
  /** tls.observe: false only to measure the observation's cost. */
  readonly observe: boolean;
  /** Policy files, in order (absolute paths). */
  readonly policyFiles: readonly string[];
  /** Extra node flags, e.g. --cpu-prof. */
  readonly nodeArgs?: readonly string[];
  /** Further config sections (e.g. `scoring`, `baseline`), merged over the bench defaults. */
  readonly extraConfig?: Readonly<Record<string, unknown>>;
}

export interface ProxyInstance {
  readonly proxy: Endpoint;
  readonly admin: Endpoint;
  readonly flowLog: string;
  readonly child: Child;
  /** Flow records written so far (lines of the flow log). */
  flowRecords(): Promise<number>;
  stop(): Promise<void>;
}

export function distEntry(root: string): string {
  return join(root, 'dist', 'main.js');
}

export async function startProxy(opts: ProxyOptions): Promise<ProxyInstance> {
  const entry = distEntry(opts.root);
  if (!existsSync(entry)) throw new Error(`${entry} is missing: build first (npx tsc -p tsconfig.build.json)`);
  const flowLog = join(opts.dir, `${opts.name}.flows.jsonl`);
  const configFile = join(opts.dir, `${opts.name}.config.yaml`);
  // JSON is valid YAML, and JSON.stringify quotes every path safely.
  const config = {
    proxy: { listen: '127.0.0.1:0', drain: '1s' },
    // No DNS forwarder; and should anything ever resolve a name, it may only ask loopback.
    dns: { listen: null },
    resolver: { servers: ['127.0.0.1:53'], timeout: '200ms' },
    // The origins are on 127.0.0.1: without this, loopback counts as internal and every flow is blocked.
    network: { internal: ['10.0.0.0/8'], allow_loopback: true },
    admin: { listen: '127.0.0.1:0' },
    policy: { files: opts.policyFiles },
    // Records go to a file, as Squid writes its access log: both pay for logging.
    log: { flows: flowLog, level: 'warn' },
    tls: { observe: opts.observe },
    // The baseline store lives in the bench's temp directory, not in the repository's data/.
    baseline: { dir: join(opts.dir, `${opts.name}.data`) },
    ...opts.extraConfig,
  };
  writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);

  const child = spawnChild(opts.name, process.execPath, [...(opts.nodeArgs ?? []), entry, 'start', '--config', configFile], {
    cwd: opts.root,
    env: { ...process.env, NODE_ENV: 'production' },
  });
  const m = await waitForOutput(child, /proxy on ([\d.]+):(\d+), admin on ([\d.]+):(\d+)/, 20_000);
  const endpoint = (host: string | undefined, port: string | undefined): Endpoint => ({ host: host ?? '127.0.0.1', port: Number(port) });
  return {
    proxy: endpoint(m[1], m[2]),
    admin: endpoint(m[3], m[4]),
    flowLog,
    child,
    flowRecords: () => countLines(flowLog),
    // drain is 1 s; leave room for the last records to be flushed before SIGKILL.
    stop: () => child.stop(5000),
  };
}

/** Lines in a file, streamed: a flow log after a full run holds hundreds of MB. */
export async function countLines(file: string): Promise<number> {
  if (!existsSync(file)) return 0;
  let n = 0;
  for await (const chunk of createReadStream(file)) {
    const buf = chunk as Buffer;
    for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
  }
  return n;
}

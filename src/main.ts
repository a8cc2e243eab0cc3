#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { tuneHeap } from './cli/heap.js';
import { isEgressError } from './errors.js';
import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.js';
import type { RunningProxy } from './cli/start.js';

// Each command imports what it needs when it runs (`await import`): `policy check` never loads the proxy, the
// proxy never loads node-forge (`ca init`), and `start` tunes V8's heap before the bulk of the program is loaded
// (cli/heap.ts).

/** The package root (where package.json, policies/ and certs/ live), from src/ or dist/. */
const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const VERSION = (JSON.parse(readFileSync(resolve(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function fail(err: unknown): never {
  process.stderr.write(`egress-inspector: ${isEgressError(err) ? `${err.code}: ${err.message}` : String(err)}\n`);
  process.exit(1);
}

/** What the signal handlers drive: one process (proxy.workers: 1, the default) or a cluster primary. */
interface Running {
  readonly proxyAddress: AddressInfo;
  readonly adminAddress: AddressInfo;
  readonly dnsAddress: AddressInfo | null;
  readonly workers: number;
  reloadPolicy(): Promise<unknown>;
  reopenFlowLog(): void;
  /** Resolves false when something had to be cut at the deadline (exit code 1). */
  stop(): Promise<boolean>;
  kill(): void;
  /** A cluster resolves this when every worker was given up. */
  readonly failed?: Promise<string>;
}

function singleProcess(proxy: RunningProxy): Running {
  return {
    proxyAddress: proxy.proxyAddress,
    adminAddress: proxy.adminAddress,
    dnsAddress: proxy.dnsAddress,
    workers: 1,
    reloadPolicy: () => proxy.reloadPolicy('signal'),
    reopenFlowLog: () => proxy.reopenFlowLog(),
    stop: () => proxy.stop().then(() => true),
    kill: () => undefined,
  };
}

/** proxy.workers > 1: this process becomes the cluster primary (loaded only then: one process pays nothing for it). */
async function startWorkers(config: Config): Promise<Running> {
  const { startCluster } = await import('./cluster/primary.js');
  return startCluster(config);
}

const program = new Command()
  .name('egress-inspector')
  .description('Egress forward proxy that attributes, fingerprints and polices outbound flows')
  .version(VERSION);

program
  .command('start')
  .description('run the proxy, the DNS forwarder and the admin server')
  .option('-c, --config <file>', 'YAML configuration file (default: embedded defaults; env EGRESS_CONFIG)')
  .action(async (opts: { config?: string }) => {
    // First: the heap limits V8 computes while the program loads already follow it.
    const heap = tuneHeap();
    // node:cluster runs this same command in each worker (proxy.workers > 1): the primary sends it the config.
    if (cluster.isWorker) {
      const { runWorker } = await import('./cluster/worker.js');
      return runWorker()
        .then(() => heap.started())
        .catch(fail);
    }
    const env = process.env.EGRESS_CONFIG;
    const file = opts.config ?? (env === undefined || env === '' ? undefined : env);
    let running: Running;
    try {
      const [{ loadConfig }, { startProxy, formatHostPort }] = await Promise.all([import('./config/load.js'), import('./cli/start.js')]);
      const config = await loadConfig(file === undefined ? { baseDir: PACKAGE_ROOT } : { file, baseDir: process.cwd() });
      running = config.proxy.workers > 1 ? await startWorkers(config) : singleProcess(await startProxy(config));
      heap.started(); // listening: the young generation may grow with the load from here
      process.stderr.write(
        `egress-inspector ${VERSION}: proxy on ${formatHostPort(running.proxyAddress)}, admin on ${formatHostPort(running.adminAddress)}` +
          `${running.dnsAddress === null ? '' : `, dns on ${formatHostPort(running.dnsAddress)}`}` +
          `${running.workers > 1 ? `, ${running.workers} workers` : ''}\n`,
      );
    } catch (err) {
      fail(err);
    }
    const proxy = running;
    let signals = 0;
    const stop = (signal: string): void => {
      if (++signals > 1) {
        proxy.kill(); // a second signal: stop now
        process.exit(130);
      }
      process.stderr.write(`egress-inspector: ${signal}, draining\n`);
      proxy.stop().then(
        (drained) => process.exit(drained ? 0 : 1),
        (err: unknown) => fail(err),
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => void proxy.reloadPolicy());
    process.on('SIGUSR1', () => proxy.reopenFlowLog()); // after logrotate moved the flow log
    void proxy.failed?.then((reason) => {
      process.stderr.write(`egress-inspector: ${reason}; stopping\n`);
      proxy.stop().then(
        () => process.exit(1),
        () => process.exit(1),
      );
    });
  });

const policy = program.command('policy').description('policy file tools');
policy
  .command('check')
  .description('validate policy files; exit 0 when valid, 1 with file:line:col: message lines when not')
  .argument('<files...>', 'policy files, in the order they are loaded')
  .action(async (files: string[]) => {
    const { runPolicyCheck } = await import('./cli/policy-check.js');
    process.exitCode = await runPolicyCheck(files, { stdout: process.stdout, stderr: process.stderr });
  });
policy
  .command('test')
  .description('run the tests: of policy files; exit 0 when all pass, 1 with file:line:col: message lines')
  .argument('<files...>', 'policy files, in the order they are loaded')
  .action(async (files: string[]) => {
    const { runPolicyTest } = await import('./cli/policy-test.js');
    process.exitCode = await runPolicyTest(files, { stdout: process.stdout, stderr: process.stderr });
  });
policy
  .command('explain')
  .description('show rule by rule why a flow gets its decision')
  .requiredOption('--flow <json>', 'the flow as JSON record fields, e.g. {"process.name":"rundll32.exe","destination.port":4444}')
  .option('--policy <files...>', 'policy files, in load order (default: policy.files of --config, or of the embedded defaults)')
  .option('--config <file>', 'take policy.files from this config file')
  .option('--open <stages>', 'comma-separated stages whose facts may still come (e.g. hint): their absent fields are pending')
  .option('--json', 'print one JSON object')
  .action(async (opts: { flow: string; policy?: string[]; config?: string; open?: string; json?: boolean }) => {
    const [{ runPolicyExplain }, { loadConfig }] = await Promise.all([import('./cli/policy-explain.js'), import('./config/load.js')]);
    let files = opts.policy;
    if (files === undefined) {
      try {
        const config = await loadConfig(opts.config === undefined ? { baseDir: PACKAGE_ROOT } : { file: opts.config, baseDir: process.cwd() });
        files = [...config.policy.files];
      } catch (err) {
        fail(err);
      }
    }
    const open = opts.open === undefined ? [] : opts.open.split(',').map((s) => s.trim()).filter((s) => s !== '');
    process.exitCode = await runPolicyExplain(
      { flow: opts.flow, policy: files, open, ...(opts.json === true ? { json: true } : {}) },
      { stdout: process.stdout, stderr: process.stderr },
    );
  });
policy
  .command('replay')
  .description('re-decide recorded flow records under a candidate policy; exit 0 no change, 3 changes, 1 error (docs/replay.md)')
  .requiredOption('--flows <files...>', 'flow logs (JSON lines, gzip or not; - for stdin)')
  .requiredOption('--policy <files...>', 'candidate policy files, in load order')
  .option('--against <files...>', 'compare with these policy files instead of the recorded decisions')
  .option('--examples <n>', 'example flows per rule and change', '3')
  .option('--json', 'print one JSON object')
  .action(async (opts: { flows: string[]; policy: string[]; against?: string[]; examples: string; json?: boolean }) => {
    const { runPolicyReplay } = await import('./cli/replay.js');
    process.exitCode = await runPolicyReplay(opts, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
  });
policy
  .command('import-sigma')
  .description('convert Sigma rules (files or directories) into one policy file; exit 1 when nothing converted (docs/sigma.md)')
  .argument('<inputs...>', 'Sigma rule files, or directories read recursively for *.yml / *.yaml')
  .option('-o, --output <file>', 'write the policy to this file instead of stdout')
  .option('--action <action>', 'action of the imported rules: tag or block', 'tag')
  .option('--json', 'print a machine summary on stdout (the policy is written only with -o)')
  .action(async (inputs: string[], opts: { output?: string; action: string; json?: boolean }) => {
    const { runImportSigma } = await import('./cli/import-sigma.js');
    process.exitCode = await runImportSigma(inputs, opts, { stdout: process.stdout, stderr: process.stderr });
  });

program
  .command('coverage')
  .description('attribution coverage of recorded flows: overall, per client, unmanaged clients, stale telemetry (docs/coverage.md)')
  .requiredOption('--flows <files...>', 'flow logs (JSON lines, gzip or not; - for stdin)')
  .option('--json', 'print one JSON object')
  .option('--stale <minutes>', 'telemetry is stale after this many minutes without an attributed flow', '15')
  .option('--managed-window <minutes>', 'hints.managed_window, for reading "managed" from the records', '10')
  .action(async (opts: { flows: string[]; json?: boolean; stale: string; managedWindow: string }) => {
    const { runCoverage } = await import('./cli/coverage.js');
    process.exitCode = await runCoverage(opts, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
  });

program
  .command('fingerprint')
  .description('print SNI, ALPN, JA3 and JA4 of ClientHellos (hex records on stdin, one per line, or a pcap)')
  .option('--pcap <file>', 'read ClientHellos from a pcap or pcapng capture')
  .action(async (opts: { pcap?: string }) => {
    const { runFingerprint } = await import('./cli/fingerprint.js');
    process.exitCode = await runFingerprint(opts.pcap === undefined ? {} : { pcap: opts.pcap }, { stdin: process.stdin, stdout: process.stdout });
  });

const ca = program.command('ca').description('the TLS interception CA');
ca.command('init')
  .description('create the interception CA: ca.pem and ca-key.pem (mode 0600)')
  .option('--dir <dir>', 'directory for ca.pem and ca-key.pem', 'certs')
  .option('--force', 'replace an existing CA')
  .action(async (opts: { dir: string; force?: boolean }) => {
    // node-forge (~40 modules) is loaded by this command only, never by a running proxy.
    const { runCaInit } = await import('./cli/ca-init.js');
    process.exitCode = await runCaInit({ dir: opts.dir, force: opts.force === true }, { stdout: process.stdout, stderr: process.stderr });
  });

program
  .command('user-hash')
  .description('print a users-file line (identity.users_file) for USER; the password is read from stdin')
  .argument('<user>', 'user name')
  .action(async (user: string) => {
    let input = '';
    for await (const chunk of process.stdin) input += String(chunk);
    const password = input.replace(/\r?\n$/, '');
    if (password === '') fail(new Error('no password on stdin'));
    const { hashPassword } = await import('./enrich/identity.js');
    process.stdout.write(`${await hashPassword(user, password)}\n`);
  });

program.parseAsync(process.argv).catch(fail);

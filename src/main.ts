#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { loadConfig } from './config/load.js';
import { startProxy, formatHostPort } from './cli/start.js';
import { runPolicyCheck } from './cli/policy-check.js';
import { runFingerprint } from './cli/fingerprint.js';
import { runCaInit } from './cli/ca-init.js';
import { isEgressError } from './errors.js';
import { hashPassword } from './enrich/identity.js';

/** The package root (where package.json, policies/ and certs/ live), from src/ or dist/. */
const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const VERSION = (JSON.parse(readFileSync(resolve(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function fail(err: unknown): never {
  process.stderr.write(`egress-inspector: ${isEgressError(err) ? `${err.code}: ${err.message}` : String(err)}\n`);
  process.exit(1);
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
    const env = process.env.EGRESS_CONFIG;
    const file = opts.config ?? (env === undefined || env === '' ? undefined : env);
    let running;
    try {
      const config = await loadConfig(file === undefined ? { baseDir: PACKAGE_ROOT } : { file, baseDir: process.cwd() });
      running = await startProxy(config);
      process.stderr.write(
        `egress-inspector ${VERSION}: proxy on ${formatHostPort(running.proxyAddress)}, admin on ${formatHostPort(running.adminAddress)}` +
          `${running.dnsAddress === null ? '' : `, dns on ${formatHostPort(running.dnsAddress)}`}\n`,
      );
    } catch (err) {
      fail(err);
    }
    const proxy = running;
    let signals = 0;
    const stop = (signal: string): void => {
      if (++signals > 1) process.exit(130); // a second signal: stop now
      process.stderr.write(`egress-inspector: ${signal}, draining\n`);
      proxy.stop().then(
        () => process.exit(0),
        (err: unknown) => fail(err),
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => void proxy.policy.reload());
    process.on('SIGUSR1', () => proxy.reopenFlowLog()); // after logrotate moved the flow log
  });

const policy = program.command('policy').description('policy file tools');
policy
  .command('check')
  .description('validate policy files; exit 0 when valid, 1 with file:line:col: message lines when not')
  .argument('<files...>', 'policy files, in the order they are loaded')
  .action(async (files: string[]) => {
    process.exitCode = await runPolicyCheck(files, { stdout: process.stdout, stderr: process.stderr });
  });

program
  .command('fingerprint')
  .description('print SNI, ALPN, JA3 and JA4 of ClientHellos (hex records on stdin, one per line, or a pcap)')
  .option('--pcap <file>', 'read ClientHellos from a pcap or pcapng capture')
  .action(async (opts: { pcap?: string }) => {
    process.exitCode = await runFingerprint(opts.pcap === undefined ? {} : { pcap: opts.pcap }, { stdin: process.stdin, stdout: process.stdout });
  });

const ca = program.command('ca').description('the TLS interception CA');
ca.command('init')
  .description('create the interception CA: ca.pem and ca-key.pem (mode 0600)')
  .option('--dir <dir>', 'directory for ca.pem and ca-key.pem', 'certs')
  .option('--force', 'replace an existing CA')
  .action(async (opts: { dir: string; force?: boolean }) => {
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
    process.stdout.write(`${await hashPassword(user, password)}\n`);
  });

program.parseAsync(process.argv).catch(fail);

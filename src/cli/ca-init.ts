import { mkdir, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createCa } from '../net/ca.js';

export interface CaInitIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Write a file that must not exist yet, with the given mode from the start (never briefly world-readable). */
async function writeNew(path: string, text: string, mode: number): Promise<void> {
  const file = await open(path, 'wx', mode);
  try {
    await file.writeFile(text);
    await file.chmod(mode); // the umask may have narrowed or widened the create mode
  } finally {
    await file.close();
  }
}

/**
 * `egress-inspector ca init [--dir DIR] [--force]`: create the interception CA in DIR (default certs/):
 * ca.pem (certificate) and ca-key.pem (private key, mode 0600). An existing CA is never replaced silently:
 * endpoints trust it, and replacing it breaks every intercepted connection until they trust the new one.
 */
export async function runCaInit(opts: { dir: string; force?: boolean }, io: CaInitIo): Promise<number> {
  const certPath = join(opts.dir, 'ca.pem');
  const keyPath = join(opts.dir, 'ca-key.pem');
  if (!opts.force && ((await exists(certPath)) || (await exists(keyPath)))) {
    io.stderr.write(`egress-inspector: ${opts.dir} already holds a CA (ca.pem / ca-key.pem); use --force to replace it\n`);
    return 1;
  }
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });
  const ca = createCa();
  if (opts.force) {
    await rm(certPath, { force: true });
    await rm(keyPath, { force: true });
  }
  await writeNew(keyPath, ca.keyPem, 0o600);
  await writeNew(certPath, ca.certPem, 0o644);
  io.stdout.write(
    `created ${certPath} and ${keyPath} (mode 0600)\nSHA-256 fingerprint: ${ca.fingerprint}\n` +
      `Distribute ca.pem to the endpoints' trust stores (e.g. by GPO); keep ca-key.pem secret.\n`,
  );
  return 0;
}

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
  io.stdout.write(`created ${certPath} and ${keyPath} (mode 0600)\nSHA-256 fingerprint: ${ca.fingerprint}\n\n${distributionHelp(certPath, keyPath)}`);
  return 0;
}

/**
 * How to make endpoints trust the CA, printed by `ca init`: each platform and runtime keeps its own trust
 * store, and a client that does not trust the CA fails every intercepted connection. Only the certificate is
 * distributed; the key never leaves the proxy host.
 */
export function distributionHelp(certPath: string, keyPath: string): string {
  return [
    `Next, make the endpoints trust ${certPath} (the certificate only; the key never leaves this host).`,
    `Compare the SHA-256 fingerprint above with what each store shows after import.`,
    `  Windows (domain)  Group Policy: Computer Configuration > Policies > Windows Settings > Security Settings >`,
    `                    Public Key Policies > Trusted Root Certification Authorities > Import (the wizard lists .cer/.crt:`,
    `                    copy the file as ca.crt, the PEM content is accepted)`,
    `  Windows (one host, elevated)  certutil -addstore -f Root ${certPath}`,
    `  Debian/Ubuntu     cp ${certPath} /usr/local/share/ca-certificates/egress-inspector.crt && update-ca-certificates`,
    `                    (the file name must end in .crt)`,
    `  RHEL/Fedora       cp ${certPath} /etc/pki/ca-trust/source/anchors/egress-inspector.pem && update-ca-trust`,
    `  macOS             sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${certPath}`,
    `  Firefox           enterprise policy Certificates.ImportEnterpriseRoots: true (trusts the Windows/macOS store)`,
    `                    or Certificates.Install: ["<path to ca.pem>"] (any platform)`,
    `  Java              has its own store: keytool -importcert -cacerts -alias egress-inspector -file ${certPath}`,
    `                    (Java 9+; the store's default password is changeit)`,
    `                    (Debian/Ubuntu's Java follows update-ca-certificates through ca-certificates-java)`,
    `  Node.js           bundles its own roots: NODE_EXTRA_CA_CERTS=<path to ca.pem> (read at process start)`,
    `  Python requests   uses certifi, not the OS store: REQUESTS_CA_BUNDLE=<bundle with the public roots and ca.pem>,`,
    `                    e.g. /etc/ssl/certs/ca-certificates.crt after update-ca-certificates (SSL_CERT_FILE for ssl/httpx)`,
    `Keep ${keyPath} secret (mode 0600).`,
    '',
  ].join('\n');
}

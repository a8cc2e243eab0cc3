/**
 * TLS interception at start-up (issue 10): the CA of `tls.ca_dir` (made by `egress-inspector ca init`), the
 * leaf minter, the pinned-client memory and the roots that verify destinations (`tls.upstream_ca` on top of the
 * system's). All of it exists only when a CA is there: the proxy then can bump, and a policy may say `bump`.
 *
 * A CA directory without ca.pem and ca-key.pem means "no interception": nothing is loaded (node-forge, which
 * builds leaf certificates, is not even imported), and a policy with a `bump` rule is refused — at start and
 * on every reload — with a message that names `ca init` (acceptPolicy). A CA that is there but unusable
 * (exposed key, expired, not a CA, key and certificate that do not match) stops the start: the operator meant
 * to intercept, and running without it would let every bump rule silently splice.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { PinnedClients } from '../actions/bump.js';
import { loadUpstreamTrust, type UpstreamTrust } from '../actions/upstream-tls.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { PolicyIssue } from '../policy/parse.js';
import type { LeafMinter } from '../net/leaf-certs.js';

export interface Interception {
  readonly leaves: LeafMinter;
  readonly pinned: PinnedClients;
  readonly trust: UpstreamTrust;
  /** SHA-256 fingerprint of the CA certificate, for the start-up log. */
  readonly caFingerprint: string;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The interception machinery, or null when `tls.ca_dir` holds no CA. Rejects (CA_INVALID, CONFIG_INVALID) on a CA or root file that is there but unusable. */
export async function createInterception(config: Config): Promise<Interception | null> {
  const dir = config.tls.ca_dir;
  const [cert, key] = await Promise.all([exists(join(dir, 'ca.pem')), exists(join(dir, 'ca-key.pem'))]);
  if (!cert && !key) return null;
  const [{ loadCa }, { createLeafMinter }] = await Promise.all([import('../net/ca-load.js'), import('../net/leaf-certs.js')]);
  const ca = await loadCa(dir);
  const trust = await loadUpstreamTrust(config.tls.upstream_ca);
  return { leaves: createLeafMinter(ca), pinned: new PinnedClients(), trust, caFingerprint: ca.cert.fingerprint256 };
}

/** Policy issues this process cannot carry out: every `bump` rule when no CA is loaded. */
export function interceptionIssues(policy: CompiledPolicy, interception: Interception | null, caDir: string): PolicyIssue[] {
  if (interception !== null) return [];
  return policy.rules
    .filter((rule) => rule.action === 'bump')
    .map(
      (rule) =>
        new PolicyIssue(
          { file: rule.file, line: rule.line, col: 1 },
          `rule ${rule.id} says bump, but there is no interception CA in ${caDir}: run \`egress-inspector ca init --dir ${caDir}\`, distribute ca.pem to the endpoints, and restart`,
        ),
    );
}

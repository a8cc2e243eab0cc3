#!/usr/bin/env node
/**
 * The container HEALTHCHECK: `GET /readyz` on the admin listener of the configuration the proxy runs with.
 *
 * Why a script and not `curl` on a fixed port: the admin port is set in the config (admin.listen, in the image
 * `0.0.0.0:${EGRESS_ADMIN_PORT}`), and an operator who moves it must not get a container that is "unhealthy"
 * forever. So this loads the config exactly as `egress-inspector start` does (src/main.ts: EGRESS_CONFIG, else
 * the embedded defaults relative to the package root) with the proxy's own loader, and asks that address.
 *
 * /readyz (src/listeners/admin.ts) is 200 once the policy is loaded and every listener is up, 503 before and
 * while draining. Exit 0 = healthy, 1 = unhealthy (Docker's convention:
 * https://docs.docker.com/reference/dockerfile/#healthcheck); one line on stdout says why, and
 * `docker inspect --format '{{json .State.Health}}'` shows it.
 *
 * Lives at deploy/container/ in the repository and in the image (/app/deploy/container/), so the package root
 * is two directories up in both. Without a build (tests run from source under tsx) it loads src/ instead.
 */
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';

const ROOT = new URL('../../', import.meta.url);
const TIMEOUT_MS = 2_000;

/** The proxy's config loader: the built one in an image, the source one (under tsx) in a checkout without dist/. */
async function configLoader() {
  const built = new URL('dist/config/load.js', ROOT);
  return import(existsSync(fileURLToPath(built)) ? built.href : new URL('src/config/load.ts', ROOT).href);
}

/** Where to reach a listener bound to `host`: the wildcard addresses are reached over loopback. */
function probeHost(host) {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

/** GET /readyz; resolves to the HTTP status, or an error message. */
function readyz(host, port) {
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/readyz', method: 'GET', timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', (err) => resolve(err.message));
    req.end();
  });
}

async function main() {
  const { loadConfig } = await configLoader();
  const env = process.env.EGRESS_CONFIG;
  const file = env === undefined || env === '' ? undefined : env;
  const config = await loadConfig(file === undefined ? { baseDir: fileURLToPath(ROOT) } : { file, baseDir: process.cwd() });
  const { host, port } = config.admin.listen;
  const target = probeHost(host);
  const shown = target.includes(':') ? `[${target}]:${port}` : `${target}:${port}`;
  const status = await readyz(target, port);
  if (status === 200) {
    process.stdout.write(`ready: /readyz on ${shown} answered 200\n`);
    return 0;
  }
  process.stdout.write(`not ready: /readyz on ${shown}: ${typeof status === 'number' ? `HTTP ${status}` : status}\n`);
  return 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stdout.write(`not ready: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

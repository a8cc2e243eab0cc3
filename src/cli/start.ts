import type { AddressInfo } from 'node:net';
import type { Config, HostPort } from '../config/schema.js';
import { createPipeline } from './compose.js';
import { AdminListener, sendJson } from '../listeners/admin.js';
import { ProxyListener } from '../listeners/proxy.js';
import { createAddressClassifier } from '../net/address-class.js';
import { createHttpForwarder } from '../actions/forward-http.js';
import { createMetrics, label, setPolicyInfo, type Metrics } from '../observe/metrics.js';
import { openFlowLog, type FlowLog } from '../observe/flow-log.js';
import { createLogger, type Logger } from '../observe/logger.js';
import { createPolicyStore, type PolicyStore } from '../policy/policy-store.js';
import { noHints } from '../enrich/hints.js';
import { withProcessClaims } from '../enrich/claims.js';
import { identifyRequest, loadUsersFile, ProxyAuthenticator, type IdentityOutcome } from '../enrich/identity.js';
import type { Flow } from '../flow/flow.js';
import type { IncomingHttpHeaders } from 'node:http';
import { EgressError } from '../errors.js';

export interface RunningProxy {
  readonly proxyAddress: AddressInfo;
  readonly adminAddress: AddressInfo;
  readonly metrics: Metrics;
  readonly policy: PolicyStore;
  /** Graceful stop: drain, write every record, close listeners and the log. */
  stop(): Promise<void>;
}

/** Proxy authentication, trusted identity headers and process claims, from the `identity` config. */
async function createIdentify(config: Config): Promise<(flow: Flow, headers: IncomingHttpHeaders) => Promise<IdentityOutcome>> {
  const id = config.identity;
  const authenticator = id.users_file === null ? null : new ProxyAuthenticator(await loadUsersFile(id.users_file));
  if (id.require_auth && authenticator === null) {
    throw new EgressError('CONFIG_INVALID', 'identity.require_auth: needs identity.users_file');
  }
  const trusted = createAddressClassifier(id.trusted_proxies);
  const options = {
    authenticator,
    requireAuth: id.require_auth,
    isTrustedProxy: (ip: string) => id.trusted_proxies.length > 0 && trusted.contains(ip),
    userHeaders: id.user_headers,
    forwardedFor: id.forwarded_for,
    processHeader: id.process_header,
    processHmacKey: id.process_hmac_key,
  };
  return (flow, headers) => identifyRequest(flow, headers, options);
}

export function formatHostPort(a: HostPort | AddressInfo): string {
  const host = 'address' in a ? a.address : a.host;
  return host.includes(':') ? `[${host}]:${a.port}` : `${host}:${a.port}`;
}

/**
 * Build every part from the config and start listening (the composition root). Nothing here runs per
 * flow; the pipeline and the listeners own the hot path.
 */
export async function startProxy(config: Config, opts: { logger?: Logger; flowLog?: FlowLog } = {}): Promise<RunningProxy> {
  const logger = opts.logger ?? createLogger(config.log.level);
  // Read the users file first: a broken one refuses to start before anything listens or is opened.
  const identify = await createIdentify(config);
  const metrics = createMetrics();
  const flowLog = opts.flowLog ?? openFlowLog(config.log.flows, (n) => metrics.flowLogDropped.inc(n));

  const policy = createPolicyStore({
    files: config.policy.files,
    onReload: (result) => {
      if (result.ok) {
        label.reload(metrics, 'success');
        setPolicyInfo(metrics, result.policy.sha256);
        logger.info({ sha256: result.policy.sha256, rules: result.policy.rules.length }, 'policy reloaded');
      } else {
        label.reload(metrics, 'failure');
        logger.error({ errors: result.errors.map((e) => e.format()) }, 'policy reload failed; keeping the last good policy');
      }
    },
  });
  try {
    await policy.start();
  } catch (err) {
    label.reload(metrics, 'failure');
    await flowLog.close();
    throw err;
  }
  label.reload(metrics, 'success');
  setPolicyInfo(metrics, policy.current().sha256);

  const hints = withProcessClaims(noHints);
  const { pipeline, resolver } = createPipeline(config, { policy, hints, metrics, flowLog });
  const clients = createAddressClassifier(config.proxy.clients);
  const forwarder = createHttpForwarder({ connectTimeoutMs: config.proxy.timeouts.connect, responseTimeoutMs: config.proxy.timeouts.response });
  const proxy = new ProxyListener(
    {
      host: config.proxy.listen.host,
      port: config.proxy.listen.port,
      maxFlows: config.proxy.max_flows,
      maxHeaderBytes: config.proxy.max_header_bytes,
      timeouts: {
        headersMs: config.proxy.timeouts.headers,
        connectMs: config.proxy.timeouts.connect,
        responseMs: config.proxy.timeouts.response,
        idleMs: config.proxy.timeouts.idle,
        clientHelloMs: config.proxy.timeouts.client_hello,
      },
      isAllowedClient: (ip) => clients.contains(ip),
      observeClientHello: config.tls.observe,
    },
    {
      pipeline,
      forwarder,
      logger,
      identify,
      authRealm: config.identity.realm,
      identityHeaders: [...config.identity.user_headers, config.identity.process_header],
    },
  );

  let ready = false;
  const admin = new AdminListener(
    { host: config.admin.listen.host, port: config.admin.listen.port, token: config.admin.token },
    { registry: metrics.registry, isReady: () => ready, logger },
  );
  admin.addRoute('GET', '/v1/policy', (_req, res) => {
    const current = policy.current();
    sendJson(res, 200, { sha256: current.sha256, files: current.files, rules: current.rules.map((r) => ({ id: r.id, action: r.action, file: r.file, line: r.line })) });
  });

  const adminAddress = await admin.listen();
  let proxyAddress: AddressInfo;
  try {
    proxyAddress = await proxy.listen();
  } catch (err) {
    await admin.close();
    policy.close();
    await flowLog.close();
    throw err;
  }
  ready = true;
  logger.info({ proxy: formatHostPort(proxyAddress), admin: formatHostPort(adminAddress) }, 'egress-inspector listening');

  let stopping: Promise<void> | null = null;
  return {
    proxyAddress,
    adminAddress,
    metrics,
    policy,
    stop() {
      stopping ??= (async () => {
        ready = false;
        policy.close();
        await proxy.shutdown(config.proxy.drain);
        forwarder.close();
        resolver.close();
        await admin.close();
        flowLog.flush();
        await flowLog.close();
      })();
      return stopping;
    },
  };
}

import type { AddressInfo } from 'node:net';
import type { Config, HostPort } from '../config/schema.js';
import { createPipeline } from './compose.js';
import { AdminListener, sendJson } from '../listeners/admin.js';
import { ProxyListener } from '../listeners/proxy.js';
import { createAddressClassifier } from '../net/address-class.js';
import { createHttpForwarder } from '../actions/forward-http.js';
import { createMetrics, initialisePolicyRuleSeries, initialiseRuleSeries, label, recordPolicyLoad, type Metrics } from '../observe/metrics.js';
import { openFlowLog, type FlowLog } from '../observe/flow-log.js';
import { createLogger, type Logger } from '../observe/logger.js';
import { createPolicyStore, type PolicyStore, type ReloadReport, type ReloadTrigger } from '../policy/policy-store.js';
import { DnsListener } from '../listeners/dns.js';
import { createDnsForwarder, type DnsForwarder } from '../actions/forward-dns.js';
import { createDnsCache } from '../actions/dns-cache.js';
import { prepareSinkhole } from '../parsers/dns-message.js';
import { readNameservers } from '../net/resolver.js';
import { createTelemetry } from './telemetry.js';
import { createInterception, interceptionIssues } from './interception.js';
import { createPolicyView } from '../policy/evaluate.js';
import { identifyRequest, loadUsersFile, ProxyAuthenticator, type IdentityOutcome } from '../enrich/identity.js';
import type { Flow } from '../flow/flow.js';
import type { HintStore } from '../enrich/hint-store.js';
import type { Baseline } from '../enrich/baseline/baseline.js';
import type { WorkerReload } from '../cluster/messages.js';
import type { IncomingHttpHeaders } from 'node:http';
import { EgressError } from '../errors.js';
import type { ClusterLink } from '../cluster/worker-link.js';
import { createIpcFlowLog } from '../cluster/ipc-flow-log.js';
import { shareDnsMemory, shareHintStore } from '../cluster/share.js';
import { workerCounts } from '../cluster/supervise.js';
import { createLiveCoverage } from '../coverage/live.js';
import { createOperatorConsole, type OperatorConsole } from '../console/console.js';
import { noFlowHistory, openFlowHistory } from '../console/history.js';
import { readOrCreateTokenFile } from '../console/token-file.js';
import { PACKAGE_VERSION } from '../observe/metrics.js';
import { join } from 'node:path';

export interface RunningProxy {
  readonly proxyAddress: AddressInfo;
  readonly adminAddress: AddressInfo;
  /** null when dns.listen is null (the DNS forwarder is off). */
  readonly dnsAddress: AddressInfo | null;
  readonly metrics: Metrics;
  readonly policy: PolicyStore;
  /**
   * Reload the policy files now, logged and counted with what asked for it (SIGHUP: 'signal'). Resolves true
   * when the files are in force, false when the last good policy stays (invalid, or refused as a weakening).
   */
  reloadPolicy(trigger?: ReloadTrigger, force?: boolean): Promise<boolean>;
  /** Reopen the flow log file after rotation (SIGUSR1). */
  reopenFlowLog(): void;
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

/** Rule ids the proxy decides with itself (src/flow/pipeline.ts, src/listeners/proxy.ts), counted like rules. */
const BUILTIN_RULE_IDS = [
  'builtin:internal-destination',
  'builtin:unroutable-destination',
  'builtin:client-denied',
  'builtin:bad-request',
  'builtin:capacity',
  'builtin:auth-required',
] as const;

const FORCE_QUERY = /[?&]force=(?:true|1)(?:&|$)/;

/** The end of a reload attempt in the log: info when the files are in force, warn when refused, error when invalid. */
function logReload(logger: Logger, report: ReloadReport): void {
  const fields = {
    trigger: report.trigger,
    forced: report.forced,
    outcome: report.outcome,
    files: report.files,
    rulesBefore: report.rulesBefore,
    rulesAfter: report.rulesAfter,
    blockRulesBefore: report.blockRulesBefore,
    blockRulesAfter: report.blockRulesAfter,
    sha256: report.sha256,
    durationMs: Math.round(report.durationMs * 10) / 10,
  };
  if (report.outcome === 'success') logger.info(fields, 'policy reloaded');
  else if (report.outcome === 'unchanged') logger.info(fields, 'policy reload: files unchanged');
  else if (report.outcome === 'refused') logger.warn({ ...fields, reason: report.reason, errors: report.errors }, 'policy reload refused; keeping the last good policy');
  else logger.error({ ...fields, errors: report.errors }, 'policy reload failed; keeping the last good policy');
}

/** What the hint store holds, for the console's health page. */
function hintsHeld(store: HintStore): string {
  const size = store.size();
  return `${size.network} network, ${size.process} process, ${size.dns} DNS events; ${size.managed} managed clients; ${store.evictions()} evicted`;
}

/** What the baseline holds, for the console's health page. */
function baselineHeld(baseline: Baseline | null): string {
  if (baseline === null) return 'off (scoring disabled)';
  return `${baseline.sizes().entries} entries in memory; learning until ${new Date(baseline.learningUntilMs).toISOString()}`;
}

export function formatHostPort(a: HostPort | AddressInfo): string {
  const host = 'address' in a ? a.address : a.host;
  return host.includes(':') ? `[${host}]:${a.port}` : `${host}:${a.port}`;
}

/**
 * Build every part from the config and start listening (the composition root). Nothing here runs per
 * flow; the pipeline and the listeners own the hot path.
 *
 * `cluster`: this process is one worker of several (`proxy.workers` > 1, src/cluster/worker.ts). Then its records
 * go to the primary's flow log, the primary watches the policy files and has every worker reload together,
 * hints and DNS answers are shared with the other workers, and /metrics serves the cluster's aggregate.
 */
export async function startProxy(config: Config, opts: { logger?: Logger; flowLog?: FlowLog; cluster?: ClusterLink } = {}): Promise<RunningProxy> {
  const startedMs = Date.now();
  const logger = opts.logger ?? createLogger(config.log.level);
  const link = opts.cluster;
  // Read the users file first: a broken one refuses to start before anything listens or is opened.
  const identify = await createIdentify(config);
  // Then the interception CA: one that is there but unusable refuses to start, like a broken users file.
  const interception = await createInterception(config);
  const metrics = createMetrics();
  const onDropped = (n: number): void => metrics.flowLogDropped.inc(n);
  const flowLog = opts.flowLog ?? (link === undefined ? openFlowLog(config.log.flows, onDropped) : createIpcFlowLog(link.sendFlowLines, onDropped));
  // The operator console (docs/console.md), built once the stores it reads exist; reloads reach it from the start.
  let operatorConsole: OperatorConsole | null = null;

  // Every reload attempt is logged at its start and its end (what asked for it, rules before → after, how long),
  // and counted: docs/policy.md "Reloading", docs/metrics.md.
  const policy = createPolicyStore({
    files: config.policy.files,
    watch: link === undefined,
    accept: (compiled) => interceptionIssues(compiled, interception, config.tls.ca_dir),
    onReloadStart: (start) => logger.info({ trigger: start.trigger, forced: start.forced, files: start.files, rulesBefore: start.rulesBefore }, 'policy reload started'),
    onReloadEnd: (report) => {
      recordPolicyLoad(metrics, report.outcome, report.sha256);
      if (report.outcome === 'success') initialisePolicyRuleSeries(metrics, policy.current());
      operatorConsole?.reloadEnded(report);
      logReload(logger, report);
    },
  });
  // What start-up has opened so far, closed in reverse order if a later step fails.
  const opened: Array<() => unknown> = [() => flowLog.close()];
  const undo = async (err: unknown): Promise<never> => {
    for (const close of opened.reverse()) await Promise.resolve(close()).catch(() => undefined);
    throw err;
  };
  try {
    await policy.start();
  } catch (err) {
    recordPolicyLoad(metrics, 'failure', '');
    return undo(err);
  }
  opened.push(() => policy.close());
  recordPolicyLoad(metrics, 'success', policy.current().sha256);
  initialisePolicyRuleSeries(metrics, policy.current());
  initialiseRuleSeries(metrics, BUILTIN_RULE_IDS);

  // Follow-up records (late hints) are scored by the detection engine, which is built after telemetry.
  let rescore: (flow: Flow) => void = () => undefined;
  // Attribution coverage of this process's flows (GET /v1/coverage, docs/coverage.md): bounded, fed beside the
  // record path; follow-up records reach it through the flow log telemetry writes them to.
  // The follow-up join mirrors telemetry's late-hint watch: at most 10,000 flows, for twice hints.window.
  const coverage = createLiveCoverage({ maxPending: 10_000, pendingTtlMs: 2 * config.hints.window });
  let ready = false;
  // Filled in once the listeners listen (the health page reads it).
  const listening: { name: string; address: string }[] = [];
  // One console per process: with proxy.workers > 1 each worker would hold its own flows and sessions behind one
  // port, so the console is not served there (docs/console.md); /v1/coverage and the flow log still are.
  if (config.console.enabled && link === undefined) {
    const secret = config.admin.token ?? (await readOrCreateTokenFile(config.console.token_file).catch(undo)).token;
    const history = config.console.history.store === 'sqlite'
      ? await openFlowHistory({
        path: join(config.console.history.dir, 'flows.sqlite'),
        retentionMs: config.console.history.retention,
        maxRows: config.console.history.max_rows,
        maxRate: config.console.max_rate,
      }).catch(undo)
      : noFlowHistory();
    operatorConsole = createOperatorConsole(
      {
        secret,
        secureCookie: config.console.secure_cookie,
        recent: config.console.recent,
        liveRate: config.console.live_rate,
        maxRate: config.console.max_rate,
        sessionIdleMs: config.console.session_idle,
        sessionMaxAgeMs: config.console.session_max_age,
        version: PACKAGE_VERSION,
        startedMs,
      },
      {
        history,
        policy,
        // Called from a page, so after start-up: reloadHere, telemetry and detection exist by then.
        reloadPolicy: async () => (await reloadHere('api')).ok,
        metrics,
        coverage: () => coverage.report(),
        logger,
        isReady: () => ready,
        listeners: () => listening,
        stores: () => [
          { name: 'hints', backend: config.hints.store === 'memory' ? 'memory' : 'redis', state: 'ok', detail: hintsHeld(telemetry.store) },
          { name: 'baseline', backend: config.baseline.store.startsWith('redis') ? 'redis' : config.baseline.store, state: 'ok', detail: baselineHeld(detection.baseline) },
        ],
        flowLog: config.log.flows === '-' ? 'stdout' : config.log.flows,
        dnsEnabled: config.dns.listen !== null,
      },
    );
    const consoleRef = operatorConsole;
    opened.push(() => consoleRef.close());
  }
  const telemetry = await createTelemetry(config, {
    metrics,
    // Follow-up records (late attribution) reach the coverage tally and the console's rows through this log.
    flowLog: operatorConsole === null ? coverage.tapFollowUps(flowLog) : operatorConsole.tapFollowUps(coverage.tapFollowUps(flowLog)),
    logger,
    policy: () => createPolicyView(policy.current()),
    rescore: (flow) => rescore(flow),
    // A Redis store is shared by every process already; the memory store is fanned out by the primary.
    ...(link !== undefined && config.hints.store === 'memory' ? { wrapStore: (store: HintStore) => shareHintStore(store, link) } : {}),
  }).catch(undo);
  opened.push(() => telemetry.close());
  coverage.watchHints(telemetry.store);
  const { pipeline, resolver, dnsMemory, dnsSignals, detection } = await createPipeline(config, {
    policy,
    hints: telemetry.hints,
    metrics,
    flowLog,
    // Coverage and the console first: flowEnded may write the flow's follow-up at once, and the follow-up joins
    // the counted flow (and follows its row).
    afterRecord: (flow, line) => {
      coverage.flowRecorded(flow);
      operatorConsole?.flowRecorded(flow, line);
      telemetry.flowEnded(flow);
    },
  }).catch(undo);
  opened.push(() => detection.close());
  rescore = (flow) => detection.scoring.score(flow);
  const clients = createAddressClassifier(config.proxy.clients);
  const forwarder = createHttpForwarder({
    connectTimeoutMs: config.proxy.timeouts.connect,
    responseTimeoutMs: config.proxy.timeouts.response,
    maxTotalSockets: config.proxy.max_flows,
    idleSocketMs: Math.min(config.proxy.timeouts.idle, 30_000),
    ...(interception === null ? {} : { trust: interception.trust }),
  });
  if (interception !== null) {
    metrics.leafStats.read = () => interception.leaves.stats();
    logger.info({ ca: config.tls.ca_dir, fingerprint: interception.caFingerprint, upstreamRoots: interception.trust.roots, rootSources: interception.trust.sources }, 'TLS interception ready (bump rules allowed)');
  }
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
      ja4h: config.scoring.ja4h,
    },
    {
      pipeline,
      forwarder,
      logger,
      identify,
      authRealm: config.identity.realm,
      identityHeaders: [...config.identity.user_headers, config.identity.process_header],
      interception,
    },
  );

  const admin = new AdminListener(
    { host: config.admin.listen.host, port: config.admin.listen.port, token: config.admin.token },
    { registry: metrics.registry, isReady: () => ready, logger, ...(link === undefined ? {} : { scrape: () => link.scrape() }) },
  );
  admin.addRoute('POST', '/v1/hints', telemetry.api, { maxBodyBytes: config.hints.max_body_bytes });
  admin.addRoute('GET', '/v1/coverage', coverage.api);
  const reloadHere = async (trigger: ReloadTrigger, force = false): Promise<WorkerReload> => {
    // The same path as a file change or SIGHUP: read → validate → compile → swap; a failure keeps the last good.
    const ok = await policy.reload({ trigger, force });
    return { ok, sha256: policy.current().sha256, errors: policy.lastErrors() };
  };
  admin.addRoute('POST', '/v1/policy/reload', async (req, res) => {
    // ?force=true applies a policy that drops every (block) rule, which a reload otherwise refuses.
    const force = FORCE_QUERY.test(req.url ?? '');
    if (link === undefined) {
      const result = await reloadHere('api', force);
      return sendJson(res, result.ok ? 200 : 422, result);
    }
    if (force) {
      return sendJson(res, 400, { ok: false, sha256: policy.current().sha256, errors: ['force is not available with proxy.workers > 1: restart the proxy to apply a policy a reload refuses'] });
    }
    // Every worker reloads; the answer comes once all of them did (src/cluster/primary.ts).
    const result = await link.reloadAll().catch((err: unknown) => err as Error);
    if (result instanceof Error) return sendJson(res, 503, { ok: false, sha256: null, errors: [result.message] });
    sendJson(res, result.ok ? 200 : 422, result);
  });
  admin.addRoute('GET', '/v1/cluster', async (_req, res) => {
    if (link !== undefined) {
      const status = await link.status().catch((err: unknown) => err as Error);
      return status instanceof Error ? sendJson(res, 503, { error: status.message }) : sendJson(res, 200, status);
    }
    const counts = workerCounts(await metrics.registry.getMetricsAsJSON());
    sendJson(res, 200, { primaryPid: null, workers: [{ id: 0, pid: process.pid, state: 'up', restarts: 0, startedMs, ...counts }] });
  });
  link?.onReload(() => reloadHere('cluster'));
  if (operatorConsole !== null) admin.mountConsole(operatorConsole.handler);
  else if (config.console.enabled) {
    admin.mountConsole((_req, res) => sendJson(res, 503, { error: 'the operator console is not served with proxy.workers > 1 (each worker holds its own flows); use /v1/coverage, /metrics and the flow log (docs/console.md)' }));
  }
  link?.onCollect(() => metrics.registry.getMetricsAsJSON());
  admin.addRoute('GET', '/v1/policy', (_req, res) => {
    const current = policy.current();
    // Live and shadow rules in file order (the order they are read in), each with its mode.
    const rules = [...current.rules, ...current.shadowRules]
      .sort((a, b) => current.files.indexOf(a.file) - current.files.indexOf(b.file) || a.line - b.line)
      .map((r) => ({ id: r.id, action: r.action, mode: r.mode, file: r.file, line: r.line }));
    sendJson(res, 200, { sha256: current.sha256, files: current.files, rules, tests: current.tests.length });
  });

  // The DNS forwarder (issue 5): dns.upstream, or the nameservers of /etc/resolv.conf read once, async.
  let dnsForwarder: DnsForwarder | null = null;
  let dnsListener: DnsListener | null = null;
  if (config.dns.listen !== null) {
    const upstream = config.dns.upstream.length > 0
      ? config.dns.upstream
      : readNameservers('/etc/resolv.conf').then((found) => found.map((host) => ({ host, port: 53 })));
    dnsForwarder = createDnsForwarder({
      servers: upstream,
      timeoutMs: config.dns.timeout,
      tries: config.dns.tries,
      onExchange: (transport, outcome, seconds) => label.dnsUpstream(metrics, transport, outcome, seconds),
      onDrop: (reason) => label.dnsUpstreamDropped(metrics, reason),
    });
    const dnsCache = createDnsCache({
      size: config.dns.cache.size,
      maxTtlMs: config.dns.cache.max_ttl,
      negativeTtlMs: config.dns.cache.negative_ttl,
      onLookup: (result) => label.dnsCache(metrics, result),
    });
    if (dnsCache !== null) metrics.dnsTables.set('cache', () => dnsCache.size);
    dnsListener = new DnsListener(
      {
        host: config.dns.listen.host,
        port: config.dns.listen.port,
        isAllowedClient: (ip) => clients.contains(ip),
        sinkhole: config.dns.sinkhole === null ? null : prepareSinkhole(config.dns.sinkhole),
        sinkholeTtl: 60,
        tcpIdleMs: config.dns.tcp_idle,
        maxTcpConnections: config.dns.max_tcp_connections,
        maxFlows: config.proxy.max_flows,
      },
      // A cluster worker shares the answers it gives: the client may connect through another worker.
      { pipeline, forwarder: dnsForwarder, metrics, logger, memory: link === undefined ? dnsMemory : shareDnsMemory(dnsMemory, link), signals: dnsSignals, cache: dnsCache },
    );
  }

  opened.push(() => forwarder.close(), () => resolver.close(), () => dnsForwarder?.close());
  const adminAddress = await admin.listen().catch(undo);
  opened.push(() => admin.close());
  const proxyAddress = await proxy.listen().catch(undo);
  opened.push(() => proxy.shutdown(0));
  // Ready only once every listener listens.
  const dnsAddress = dnsListener === null ? null : await dnsListener.listen().catch(undo);
  ready = true;
  listening.push({ name: 'proxy', address: formatHostPort(proxyAddress) }, { name: 'admin', address: formatHostPort(adminAddress) });
  if (dnsAddress !== null) listening.push({ name: 'dns', address: formatHostPort(dnsAddress) });
  logger.info({ proxy: formatHostPort(proxyAddress), admin: formatHostPort(adminAddress), dns: dnsAddress === null ? null : formatHostPort(dnsAddress) }, 'egress-inspector listening');
  if (operatorConsole !== null) {
    // The token itself is never logged: where to find it is.
    const signIn = config.admin.token === null ? `sign in with the token in ${config.console.token_file}` : 'sign in with admin.token';
    logger.info({ console: `http://${formatHostPort(adminAddress)}/ui/` }, `operator console: http://${formatHostPort(adminAddress)}/ui/ (${signIn})`);
  }

  let stopping: Promise<void> | null = null;
  return {
    proxyAddress,
    adminAddress,
    dnsAddress,
    metrics,
    policy,
    reloadPolicy: (trigger = 'manual', force = false) => policy.reload({ trigger, force }),
    reopenFlowLog() {
      flowLog.reopen?.();
      logger.info('flow log reopened');
    },
    stop() {
      stopping ??= (async () => {
        ready = false;
        policy.close();
        await dnsListener?.close(Math.min(config.proxy.drain, 2000));
        await proxy.shutdown(config.proxy.drain);
        dnsForwarder?.close();
        forwarder.close();
        resolver.close();
        await telemetry.close();
        await operatorConsole?.close();
        // After the last flow ended: what the baselines learned from it is persisted.
        await detection.close();
        await admin.close();
        // close() writes every queued record, in order, then closes (flush() is for a sudden exit).
        await flowLog.close();
      })();
      return stopping;
    },
  };
}

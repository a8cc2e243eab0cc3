/**
 * Runs the labelled corpus through ONE live proxy and scores what it wrote.
 *
 * The proxy is the real thing (`startProxy`, in-process) with the shipped policy file (policies/default.yaml,
 * read from where it lives, not copied), the DNS forwarder and the hints API on, and `network.internal:
 * [10.0.0.0/8]` so that loopback plays the internet (test/helpers/harness.ts does the same). Its flow log goes
 * to memory; every record is given back to the scenario whose connection or query made it (ledger: source
 * ip|port and start time).
 *
 * Verdicts (the corpus contract):
 *   - a flow is flagged when event.action is block, or event.kind is alert, or egress.score ≥ 50;
 *   - a C2 scenario is detected when any of its flows is flagged, and detected for the right reason when a
 *     flagged flow's reasons / rule ids / tags match one of the scenario's `expect` regexes;
 *   - a benign scenario is a false positive when any of its flows is flagged.
 */
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../../src/config/load.js';
import { startProxy } from '../../src/cli/start.js';
import type { EcsRecord } from '../../src/observe/ecs.js';
import { silentLogger } from '../../src/observe/logger.js';
import { field, memoryFlowLog } from '../helpers/harness.js';
import { startLab } from './lab.js';
import { createPlayContext, postHints, type Ledger, type LedgerEntry, type ProxyEndpoints } from './player.js';
import { createRng } from './rng.js';
import type { Label, LabHost, Scenario } from './types.js';

export const POLICY_FILE = fileURLToPath(new URL('../../policies/default.yaml', import.meta.url));
export const FLAG_SCORE = 50;
const TOKEN = 'corpus-hints-token';

export interface CorpusOptions {
  readonly scenarios: readonly Scenario[];
  /** Scenarios played at once besides the long ones (default 8). */
  readonly concurrency?: number;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

/** What one flow said, reduced to what the report needs. */
export interface FlowSummary {
  readonly kind: string;
  readonly target: string;
  readonly action: string;
  readonly alert: boolean;
  readonly score: number;
  readonly reasons: readonly string[];
  readonly rule: string | null;
  readonly rules: readonly string[];
  readonly tags: readonly string[];
  readonly process: string | null;
}

export interface ScenarioResult {
  readonly id: string;
  readonly label: Label;
  readonly cls: string;
  readonly title: string;
  readonly expect: readonly string[];
  /** Flow records that belong to the scenario (follow-ups included). */
  readonly flows: number;
  /** Connections/queries the scenario made that have no record. */
  readonly unrecorded: number;
  readonly flaggedFlows: number;
  readonly flagged: boolean;
  /** C2 only; null for benign. */
  readonly rightReason: boolean | null;
  readonly maxScore: number;
  /** The flagged flow with the highest score, else the highest-scoring flow. */
  readonly worst: FlowSummary | null;
  readonly error: string | null;
}

export interface ClassSummary {
  readonly label: Label;
  readonly cls: string;
  readonly scenarios: number;
  readonly flagged: number;
  readonly rightReason: number;
}

export interface CorpusResult {
  readonly policyFile: string;
  readonly scenarios: readonly ScenarioResult[];
  readonly classes: readonly ClassSummary[];
  readonly c2: number;
  readonly benign: number;
  readonly truePositives: number;
  readonly rightReason: number;
  readonly falsePositives: number;
  readonly tpr: number;
  readonly tprRightReason: number;
  readonly fpr: number;
  readonly records: number;
  readonly unmatchedRecords: number;
  readonly hintErrors: number;
  readonly durationMs: number;
}

export function isFlagged(r: EcsRecord): boolean {
  const score = field(r, 'egress.score');
  return field(r, 'event.action') === 'block' || field(r, 'event.kind') === 'alert' || (typeof score === 'number' && score >= FLAG_SCORE);
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

export function summarize(r: EcsRecord): FlowSummary {
  const rule = field(r, 'rule.id');
  const proc = field(r, 'process.name');
  const dnsName = field(r, 'dns.question.name');
  const target = typeof dnsName === 'string' ? `${dnsName} ${String(field(r, 'dns.question.type') ?? '')}`.trim() : String(field(r, 'url.original') ?? '');
  const score = field(r, 'egress.score');
  return {
    kind: typeof dnsName === 'string' ? 'dns' : String(field(r, 'http.request.method') ?? '?'),
    target: target.length > 120 ? `${target.slice(0, 117)}…` : target,
    action: String(field(r, 'event.action') ?? '?'),
    alert: field(r, 'event.kind') === 'alert',
    score: typeof score === 'number' ? score : 0,
    reasons: strings(field(r, 'egress.reasons')),
    rule: typeof rule === 'string' ? rule : null,
    rules: strings(field(r, 'egress.rules')),
    tags: strings(field(r, 'tags')),
    process: typeof proc === 'string' ? proc : null,
  };
}

/** The texts a right-reason regex is tried against. */
function evidenceOf(f: FlowSummary): string[] {
  return [...f.reasons, ...(f.rule === null ? [] : [f.rule]), ...f.rules, ...f.tags];
}

const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory', 'niaj', 'olivia', 'peggy', 'rupert', 'sybil', 'trent', 'victor', 'walter', 'yolanda'];
export const FLEET_SIZE = 20;
const DOMAIN = 'corp.contoso.com';

function fleetHost(i: number): LabHost {
  return { fqdn: `WKS-${String(101 + i).padStart(4, '0')}.${DOMAIN}`, ip: `127.10.0.${i + 1}`, managed: true, user: `CORP\\${USERS[i % USERS.length] ?? 'user'}` };
}

/** Hosts per scenario: a fleet of shared workstations, fresh workstations for C2 stories, unmanaged servers. */
function planHosts(scenarios: readonly Scenario[]): Map<string, LabHost[]> {
  const fleet = Array.from({ length: FLEET_SIZE }, (_, i) => fleetHost(i));
  const plan = new Map<string, LabHost[]>();
  let nextFleet = 0;
  let own = 0;
  let servers = 0;
  for (const s of scenarios) {
    const where = s.placement ?? (s.label === 'c2' ? 'own' : { fleet: 1 });
    if (where === 'own') {
      own++;
      plan.set(s.id, [{ fqdn: `WKS-${String(2000 + own * 7)}.${DOMAIN}`, ip: `127.20.${Math.floor(own / 250)}.${(own % 250) + 1}`, managed: true, user: `CORP\\${USERS[(own * 3) % USERS.length] ?? 'user'}` }]);
    } else if (where === 'server') {
      servers++;
      plan.set(s.id, [{ fqdn: `srv-${String(servers).padStart(2, '0')}.dmz.${DOMAIN}`, ip: `127.30.0.${servers}`, managed: false, user: 'root' }]);
    } else {
      const hosts: LabHost[] = [];
      for (let i = 0; i < where.fleet; i++) hosts.push(fleet[(nextFleet + i) % FLEET_SIZE] as LabHost);
      nextFleet += where.fleet;
      plan.set(s.id, hosts);
    }
  }
  return plan;
}

function configText(dnsServer: string): string {
  return [
    'proxy:',
    '  listen: "127.0.0.1:0"',
    '  timeouts: { connect: 2s, response: 5s, idle: 30s, headers: 5s, client_hello: 3s }',
    '  drain: 2s',
    'admin:',
    '  listen: "127.0.0.1:0"',
    `  token: ${TOKEN}`,
    'dns:',
    '  listen: "127.0.0.1:0"',
    `  upstream: ["${dnsServer}"]`,
    '  timeout: 1s',
    '  tries: 1',
    'resolver:',
    `  servers: ["${dnsServer}"]`,
    '  timeout: 1s',
    // Loopback plays the internet; the fleet's own network is 10/8 (as in test/helpers/harness.ts).
    'network:',
    '  internal: [10.0.0.0/8]',
    '  allow_loopback: true',
    'policy:',
    `  files: ["${POLICY_FILE}"]`,
    'log:',
    '  flows: "-"',
    '  level: error',
  ].join('\n');
}

/** Runs `tasks` with at most `limit` at once. */
async function pool(tasks: ReadonlyArray<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const task = tasks[next++];
      if (task !== undefined) await task();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}

function ratio(n: number, d: number): number {
  return d === 0 ? 0 : n / d;
}

export async function runCorpus(opts: CorpusOptions): Promise<CorpusResult> {
  const started = Date.now();
  const log = opts.log ?? (() => undefined);
  const ids = new Set<string>();
  for (const s of opts.scenarios) {
    if (ids.has(s.id)) throw new Error(`duplicate scenario id ${s.id}`);
    ids.add(s.id);
  }
  const lab = await startLab();
  const parsed = parseConfigText(configText(lab.dnsServer), { baseDir: process.cwd(), env: {} });
  if (!parsed.ok) {
    await lab.close();
    throw new Error(`corpus proxy config invalid:\n${parsed.errors.join('\n')}`);
  }
  const records: EcsRecord[] = [];
  const proxy = await startProxy(parsed.config, { logger: silentLogger(), flowLog: memoryFlowLog(records) }).catch(async (err: unknown) => {
    await lab.close();
    throw err;
  });
  const ledger: Ledger = { entries: [], hintErrors: 0 };
  const errors = new Map<string, string>();
  try {
    const dnsPort = proxy.dnsAddress?.port;
    if (dnsPort === undefined) throw new Error('the DNS forwarder did not start');
    const px: ProxyEndpoints = { proxyPort: proxy.proxyAddress.port, dnsPort, adminUrl: `http://127.0.0.1:${proxy.adminAddress.port}`, token: TOKEN };
    const plan = planHosts(opts.scenarios);

    // Every managed host has shipped telemetry before the story starts (an agent reports continuously), so the
    // proxy knows it as a managed client and can tie its DNS queries to its Sysmon DNS events.
    const managed = new Map<string, LabHost>();
    for (const hosts of plan.values()) for (const h of hosts) if (h.managed) managed.set(h.ip, h);
    const now = Date.now();
    await postHints(px, [...managed.values()].map((h, i) => ({
      EventID: 3,
      UtcTime: new Date(now - 5000).toISOString().replace('T', ' ').replace('Z', ''),
      Hostname: h.fqdn,
      ProcessGuid: `{0a0a0a0a-${String(i).padStart(4, '0')}-0000-0000-000000000003}`,
      ProcessId: '1376',
      Image: 'C:\\Windows\\System32\\svchost.exe',
      User: 'NT AUTHORITY\\NETWORK SERVICE',
      Protocol: 'tcp',
      Initiated: 'true',
      SourceIp: h.ip,
      SourcePort: '9',
      DestinationIp: '127.0.0.1',
      DestinationPort: String(px.proxyPort),
    })), ledger);

    const play = (s: Scenario) => async (): Promise<void> => {
      const t0 = Date.now();
      const ctx = createPlayContext({ lab, px, ledger, scenario: s.id, hosts: plan.get(s.id) ?? [] });
      try {
        await s.play(ctx);
      } catch (err) {
        errors.set(s.id, err instanceof Error ? err.message : String(err));
      }
      log(`  played ${s.id} (${Date.now() - t0} ms)`);
    };
    // Long (periodic) scenarios run beside everything else; the rest in a seeded, label-mixed order.
    const order = createRng('corpus-order');
    const long = opts.scenarios.filter((s) => s.long === true);
    const rest = opts.scenarios
      .filter((s) => s.long !== true)
      .map((s) => ({ s, k: order.next() }))
      .sort((a, b) => a.k - b.k)
      .map((x) => x.s);
    await Promise.all([Promise.all(long.map((s) => play(s)())), pool(rest.map(play), opts.concurrency ?? 8)]);

    // Records are written when flows end; wait until every ledger entry has one or nothing new arrives.
    let seen = -1;
    for (let quiet = 0; quiet < 10 && records.length < ledger.entries.length; ) {
      await new Promise((r) => setTimeout(r, 100));
      quiet = records.length === seen ? quiet + 1 : 0;
      seen = records.length;
    }
  } finally {
    await proxy.stop();
    await lab.close();
  }

  // Give each record back to its scenario: same source ip|port, nearest start time.
  const byKey = new Map<string, LedgerEntry[]>();
  for (const e of ledger.entries) {
    const list = byKey.get(e.key) ?? [];
    list.push(e);
    byKey.set(e.key, list);
  }
  const owner = new Map<EcsRecord, string>();
  const byEventId = new Map<string, string>();
  const used = new Set<LedgerEntry>();
  let unmatched = 0;
  for (const r of records) {
    const followed = field(r, 'egress.followup_of');
    if (typeof followed === 'string') continue;
    const key = `${String(field(r, 'source.ip') ?? '').replace(/^::ffff:/, '')}|${String(field(r, 'source.port') ?? '')}`;
    const t = Date.parse(String(field(r, '@timestamp') ?? ''));
    let best: LedgerEntry | null = null;
    for (const e of byKey.get(key) ?? []) {
      if (best === null || Math.abs(e.startMs - t) < Math.abs(best.startMs - t)) best = e;
    }
    if (best === null) {
      unmatched++;
      continue;
    }
    used.add(best);
    owner.set(r, best.scenario);
    const id = field(r, 'event.id');
    if (typeof id === 'string') byEventId.set(id, best.scenario);
  }
  for (const r of records) {
    const followed = field(r, 'egress.followup_of');
    if (typeof followed !== 'string') continue;
    const s = byEventId.get(followed);
    if (s === undefined) unmatched++;
    else owner.set(r, s);
  }
  const flowsOf = new Map<string, EcsRecord[]>();
  for (const [r, s] of owner) {
    const list = flowsOf.get(s) ?? [];
    list.push(r);
    flowsOf.set(s, list);
  }
  const unrecordedOf = new Map<string, number>();
  for (const e of ledger.entries) if (!used.has(e)) unrecordedOf.set(e.scenario, (unrecordedOf.get(e.scenario) ?? 0) + 1);

  const results: ScenarioResult[] = opts.scenarios.map((s) => {
    const flows = (flowsOf.get(s.id) ?? []).map(summarize);
    const flagged = flows.filter((f) => f.alert || f.action === 'block' || f.score >= FLAG_SCORE);
    const rightReason = s.label === 'c2' ? flagged.some((f) => evidenceOf(f).some((text) => (s.expect ?? []).some((re) => re.test(text)))) : null;
    const pickFrom = flagged.length > 0 ? flagged : flows;
    const worst = pickFrom.reduce<FlowSummary | null>((a, f) => (a === null || f.score > a.score ? f : a), null);
    return {
      id: s.id,
      label: s.label,
      cls: s.cls,
      title: s.title,
      expect: (s.expect ?? []).map((re) => re.toString()),
      flows: flows.length,
      unrecorded: unrecordedOf.get(s.id) ?? 0,
      flaggedFlows: flagged.length,
      flagged: flagged.length > 0,
      rightReason,
      maxScore: flows.reduce((m, f) => Math.max(m, f.score), 0),
      worst,
      error: errors.get(s.id) ?? null,
    };
  });

  const classes = new Map<string, { label: Label; cls: string; scenarios: number; flagged: number; rightReason: number }>();
  for (const r of results) {
    const k = `${r.label}|${r.cls}`;
    const c = classes.get(k) ?? { label: r.label, cls: r.cls, scenarios: 0, flagged: 0, rightReason: 0 };
    c.scenarios++;
    if (r.flagged) c.flagged++;
    if (r.rightReason === true) c.rightReason++;
    classes.set(k, c);
  }
  const c2 = results.filter((r) => r.label === 'c2');
  const benign = results.filter((r) => r.label === 'benign');
  const tp = c2.filter((r) => r.flagged).length;
  const rr = c2.filter((r) => r.rightReason === true).length;
  const fp = benign.filter((r) => r.flagged).length;
  return {
    policyFile: POLICY_FILE,
    scenarios: results,
    classes: [...classes.values()].sort((a, b) => (a.label === b.label ? a.cls.localeCompare(b.cls) : a.label === 'c2' ? -1 : 1)),
    c2: c2.length,
    benign: benign.length,
    truePositives: tp,
    rightReason: rr,
    falsePositives: fp,
    tpr: ratio(tp, c2.length),
    tprRightReason: ratio(rr, c2.length),
    fpr: ratio(fp, benign.length),
    records: records.length,
    unmatchedRecords: unmatched,
    hintErrors: ledger.hintErrors,
    durationMs: Date.now() - started,
  };
}

/**
 * deploy/grafana and deploy/prometheus against the metrics the proxy really exports: a panel or an alert whose
 * PromQL names a metric that does not exist shows "No data" or never fires, and neither Grafana nor
 * `promtool check rules` says so. So every metric name of every `expr` of the dashboard (panels, annotations,
 * template variables) and of the alert rules is looked up in the text of a registry built by createMetrics()
 * (what GET /metrics serves; a histogram counts as its _bucket/_sum/_count series). The dashboard's PromQL is
 * also parsed by promtool (as recording rules), and its layout and datasource templating are checked: panels
 * import into any Grafana with any Prometheus datasource, and none hides another.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createClusterMetrics, createMetrics } from '../../../src/observe/metrics.js';
import { ROOT } from '../../helpers/cli.js';

const DASHBOARD = join(ROOT, 'deploy', 'grafana', 'egress-inspector.json');
const RULES = join(ROOT, 'deploy', 'prometheus', 'egress-inspector-rules.yml');
const PROMTOOL = '/usr/bin/promtool';
const HAS_PROMTOOL = existsSync(PROMTOOL);

/** Series Prometheus itself adds to every scrape target (not exported by the proxy, always there). */
const SCRAPE_SERIES = ['up'] as const;

/** The panels issue 13 asks for: dropping one of these metrics from the dashboard fails the test. */
const REQUIRED_ON_DASHBOARD = [
  'egress_flows_total',
  'egress_rule_matches_total',
  'egress_score_bucket',
  'egress_attributed_flows_total',
  'egress_hints_total',
  'egress_hint_correlation_lag_seconds_bucket',
  'egress_dns_queries_total',
  'egress_decision_seconds_bucket',
  'egress_active_flows',
  'egress_flow_log_dropped_total',
  'egress_policy_reloads_total',
  'egress_policy_last_reload_success',
  'egress_tls_tunnels_total',
  'process_cpu_seconds_total',
  'process_resident_memory_bytes',
] as const;

/** PromQL functions, aggregation operators and keywords (Prometheus docs "Functions", "Operators"). */
const PROMQL_WORDS: ReadonlySet<string> = new Set([
  'abs', 'absent', 'absent_over_time', 'acos', 'acosh', 'asin', 'asinh', 'atan', 'atanh', 'avg_over_time', 'ceil',
  'changes', 'clamp', 'clamp_max', 'clamp_min', 'cos', 'cosh', 'count_over_time', 'days_in_month', 'day_of_month',
  'day_of_week', 'day_of_year', 'deg', 'delta', 'deriv', 'exp', 'floor', 'histogram_quantile', 'holt_winters', 'hour',
  'idelta', 'increase', 'irate', 'label_join', 'label_replace', 'last_over_time', 'ln', 'log10', 'log2',
  'max_over_time', 'min_over_time', 'minute', 'month', 'pi', 'predict_linear', 'present_over_time',
  'quantile_over_time', 'rad', 'rate', 'resets', 'round', 'scalar', 'sgn', 'sin', 'sinh', 'sort', 'sort_desc', 'sqrt',
  'stddev_over_time', 'stdvar_over_time', 'sum_over_time', 'tan', 'tanh', 'time', 'timestamp', 'vector', 'year',
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless', 'inf', 'nan',
]);

const STRING = /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g;
const MATCHERS = /\{[^}]*\}/g;
const RANGE = /\[[^\]]*\]/g;
const GROUPING = /\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g;
const IDENTIFIER = /(?<![\w.:])[A-Za-z_:][\w:]*/g;
const LABEL_VALUES = /^\s*label_values\((.*),\s*[A-Za-z_]\w*\s*\)\s*$/s;
/** A selector as written, label matchers included: `name{…}`. */
const SELECTOR = /(?<![\w.:])([A-Za-z_:][\w:]*)\s*\{([^}]*)\}/g;

/** Each metric read by a PromQL expression (or a Grafana `label_values(selector, label)` query), in order. */
function metricReferences(expr: string): Array<{ readonly name: string; readonly selector: boolean }> {
  const inner = LABEL_VALUES.exec(expr);
  const promql = inner?.[1] ?? expr;
  const stripped = promql.replace(STRING, '""').replace(MATCHERS, '{}').replace(RANGE, '[]').replace(GROUPING, '$1');
  const out: Array<{ name: string; selector: boolean }> = [];
  for (const match of stripped.matchAll(IDENTIFIER)) {
    const word = match[0];
    if (PROMQL_WORDS.has(word)) continue;
    const after = stripped.slice((match.index ?? 0) + word.length).trimStart();
    if (after.startsWith('(')) continue; // a function not listed above: not a metric either way
    out.push({ name: word, selector: after.startsWith('{') });
  }
  return out;
}

/** The metric names a PromQL expression reads, sorted, once each. */
function metricNames(expr: string): string[] {
  return [...new Set(metricReferences(expr).map((r) => r.name))].sort();
}

/** Every series name a scrape of this registry text holds (histograms and summaries with their suffixes). */
function exportedNames(text: string): Set<string> {
  const out = new Set<string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name = '', type] = match;
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) out.add(name + suffix);
    else if (type === 'summary') for (const suffix of ['', '_sum', '_count']) out.add(name + suffix);
    else out.add(name);
  }
  return out;
}

/** Every string under an `expr` key (targets, annotations) and every variable query, with where it was found. */
function collectExprs(node: unknown, path: string, out: Array<{ where: string; expr: string }>): void {
  if (Array.isArray(node)) {
    node.forEach((item, i) => collectExprs(item, `${path}[${i}]`, out));
    return;
  }
  if (node === null || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if (key === 'expr' && typeof value === 'string') out.push({ where: path, expr: value });
    else collectExprs(value, `${path}.${key}`, out);
  }
}

interface GridPos { readonly h: number; readonly w: number; readonly x: number; readonly y: number }
interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly gridPos: GridPos;
  readonly datasource?: { type: string; uid: string };
  readonly targets?: ReadonlyArray<{ expr: string; refId: string; datasource?: { type: string; uid: string } }>;
}
interface Variable { readonly name: string; readonly type: string; readonly query?: unknown; readonly definition?: string; readonly datasource?: unknown }
interface Dashboard {
  readonly __inputs: ReadonlyArray<{ name: string; type: string; pluginId: string }>;
  readonly schemaVersion: number;
  readonly uid: string;
  readonly panels: readonly Panel[];
  readonly templating: { list: readonly Variable[] };
}

function overlaps(a: GridPos, b: GridPos): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/** The dashboard's PromQL with the template variables replaced by values Prometheus can parse. */
function substituteVariables(expr: string, alertRules: string): string {
  return expr
    .replaceAll('$__rate_interval', '5m')
    .replaceAll('$__range', '1h')
    .replaceAll('$alert_rules', alertRules)
    .replaceAll('$job', '.+')
    .replaceAll('$instance', '.+');
}

function run(cmd: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

describe('metricNames (the PromQL scan the checks below rely on)', () => {
  it('finds the metrics and skips functions, labels, ranges, strings and grouping clauses', () => {
    expect(metricNames('histogram_quantile(0.99, sum by (le) (rate(egress_decision_seconds_bucket{job=~"$job"}[$__rate_interval])))')).toEqual([
      'egress_decision_seconds_bucket',
    ]);
    expect(metricNames('sum by (method) (rate(a_total{x="rate(b)"}[5m])) / ignoring (method) group_left () sum(rate(b_total[5m] offset 1h))')).toEqual([
      'a_total',
      'b_total',
    ]);
    expect(metricNames('time() - egress_policy_last_reload_success_timestamp_seconds{instance=~"$instance"} > 1e3')).toEqual([
      'egress_policy_last_reload_success_timestamp_seconds',
    ]);
    expect(metricNames('label_values(egress_build_info{job=~"$job"}, instance)')).toEqual(['egress_build_info']);
    expect(metricNames('up == 0 and on (instance, job) topk(1, x)')).toEqual(['up', 'x']);
    expect(metricReferences('a{j="x"} / b').map((r) => r.selector)).toEqual([true, false]);
  });

  it('reports a misspelled metric, so a typo on the dashboard fails the test', () => {
    expect(metricNames('sum(rate(egress_flow_total{job=~"$job"}[5m]))')).toEqual(['egress_flow_total']);
  });
});

describe('deploy/grafana/egress-inspector.json', () => {
  let dashboard: Dashboard;
  let exprs: Array<{ where: string; expr: string }>;
  let exported: Set<string>;

  beforeAll(async () => {
    dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
    exprs = [];
    collectExprs(dashboard, '$', exprs);
    for (const variable of dashboard.templating.list) {
      const query = variable.query;
      if (variable.type !== 'query') continue;
      const text = typeof query === 'string' ? query : (query as { query?: unknown } | undefined)?.query;
      if (typeof text === 'string') exprs.push({ where: `templating.${variable.name}`, expr: text });
    }
    const metrics = createMetrics();
    const cluster = new Registry();
    createClusterMetrics(cluster);
    exported = exportedNames(`${await metrics.registry.metrics()}\n${await cluster.metrics()}`);
  });

  it('names only metrics the proxy exports', () => {
    expect(exprs.length).toBeGreaterThan(30);
    expect(exported.has('egress_decision_seconds_bucket')).toBe(true);
    expect(exported.has('process_resident_memory_bytes')).toBe(true);
    const allowed = new Set([...exported, ...SCRAPE_SERIES]);
    const unknown = exprs.flatMap(({ where, expr }) => metricNames(expr).filter((name) => !allowed.has(name)).map((name) => `${where}: ${name}`));
    expect(unknown).toEqual([]);
  });

  it('has a panel on every metric issue 13 asks for', () => {
    const used = new Set(exprs.flatMap(({ expr }) => metricNames(expr)));
    for (const name of REQUIRED_ON_DASHBOARD) expect(used.has(name), name).toBe(true);
  });

  it('restricts every selector to the $job and $instance variables', () => {
    for (const { where, expr } of exprs) {
      if (where.startsWith('templating.')) continue;
      // Every metric read goes through a selector: a bare name would read that metric from every target.
      expect(metricReferences(expr).filter((r) => !r.selector).map((r) => r.name), `${where}: ${expr}`).toEqual([]);
      const selectors = [...expr.matchAll(SELECTOR)];
      for (const [, , matchers = ''] of selectors) {
        expect(matchers, `${where}: ${expr}`).toContain('job=~"$job"');
        expect(matchers, `${where}: ${expr}`).toContain('instance=~"$instance"');
      }
    }
  });

  it('takes its datasource from the ${DS_PROMETHEUS} input through the `datasource` variable, never a fixed uid', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(dashboard.__inputs).toContainEqual(expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }));
    const variables = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    expect(variables.get('datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const name of ['job', 'instance']) {
      expect(variables.get(name), name).toMatchObject({ type: 'query', datasource: { type: 'prometheus', uid: '${datasource}' }, includeAll: true, multi: true });
    }
    expect(variables.get('instance')?.definition).toContain('job=~"$job"');
    const uids = new Set<string>();
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node !== null && typeof node === 'object') {
        const record = node as Record<string, unknown>;
        const ds = record['datasource'];
        if (ds !== null && typeof ds === 'object' && (ds as { type?: unknown }).type === 'prometheus') uids.add(String((ds as { uid?: unknown }).uid));
        Object.values(record).forEach(walk);
      }
    };
    walk(dashboard.panels);
    walk(dashboard.templating);
    expect([...uids]).toEqual(['${datasource}']);
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.datasource, panel.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
    }
  });

  it('has unique panel ids and refIds, and panels that fit the 24-column grid without overlapping', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.uid).toBe('egress-inspector');
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(Number.isInteger(x) && Number.isInteger(y) && Number.isInteger(w) && Number.isInteger(h), panel.title).toBe(true);
      expect(x >= 0 && y >= 0 && w >= 1 && h >= 1 && x + w <= 24, `${panel.title} ${JSON.stringify(panel.gridPos)}`).toBe(true);
      const refIds = (panel.targets ?? []).map((t) => t.refId);
      expect(new Set(refIds).size, panel.title).toBe(refIds.length);
    }
    const clashes: string[] = [];
    dashboard.panels.forEach((a, i) => {
      for (const b of dashboard.panels.slice(i + 1)) if (overlaps(a.gridPos, b.gridPos)) clashes.push(`${a.title} / ${b.title}`);
    });
    expect(clashes).toEqual([]);
  });

  it.skipIf(!HAS_PROMTOOL)('is valid PromQL: every expression passes `promtool check rules` as a recording rule', async () => {
    const alertRules = String((dashboard.templating.list.find((v) => v.name === 'alert_rules')?.query as string | undefined) ?? '.+');
    const rules = exprs
      .filter(({ where }) => !where.startsWith('templating.'))
      .map(({ expr }, i) => ({ record: `grafana_expr_${i}`, expr: substituteVariables(expr, alertRules) }));
    const dir = await mkdtemp(join(tmpdir(), 'grafana-promql-'));
    try {
      const file = join(dir, 'rules.yml');
      await writeFile(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
      const { code, output } = await run(PROMTOOL, ['check', 'rules', file]);
      expect(output).toContain('SUCCESS');
      expect(code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/prometheus/egress-inspector-rules.yml', () => {
  it('names only metrics the proxy exports (or `up`), in every alert', async () => {
    const doc = parseYaml(await readFile(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string; expr: string }> }> };
    const metrics = createMetrics();
    const allowed = new Set([...exportedNames(await metrics.registry.metrics()), ...SCRAPE_SERIES]);
    const rules = doc.groups.flatMap((g) => g.rules);
    expect(rules.length).toBeGreaterThanOrEqual(13);
    const unknown = rules.flatMap((r) => metricNames(r.expr).filter((name) => !allowed.has(name)).map((name) => `${r.alert ?? '?'}: ${name}`));
    expect(unknown).toEqual([]);
  });
});

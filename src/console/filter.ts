/**
 * The console's flow filter: read from a query string (the filter form, the live stream's URL) and tested
 * against a flow. Text fields are case-insensitive substrings (an operator types "rundll" or "evil.example";
 * `host` matches the endpoint's name or its address); rule and tag are exact, since they are ids. Parsing never throws: an unknown or malformed parameter is named
 * in `errors` and left out, so a hand-edited URL shows what was ignored instead of a blank page.
 */
import type { ConsoleFlowSummary, FlowFilter } from './model.js';

/** Longest text accepted for one filter field (a longer one is cut and named in the errors). */
export const MAX_FILTER_TEXT = 200;

const TEXT_FIELDS = ['host', 'user', 'process', 'rule', 'tag', 'destination'] as const;

export interface ParsedFilter {
  readonly filter: FlowFilter;
  readonly errors: readonly string[];
}

/** The filter in `params` (empty values mean "any"). */
export function parseFilter(params: URLSearchParams): ParsedFilter {
  const errors: string[] = [];
  const filter: { -readonly [K in keyof FlowFilter]: FlowFilter[K] } = {};
  const action = params.get('action');
  if (action === 'allow' || action === 'block') filter.action = action;
  else if (action !== null && action !== '') errors.push(`action: expected allow or block, got ${JSON.stringify(action.slice(0, 40))}`);
  const alert = params.get('alert');
  if (alert === 'yes' || alert === 'true') filter.alert = true;
  else if (alert === 'no' || alert === 'false') filter.alert = false;
  else if (alert !== null && alert !== '' && alert !== 'any') errors.push(`alert: expected yes or no, got ${JSON.stringify(alert.slice(0, 40))}`);
  for (const name of TEXT_FIELDS) {
    const value = params.get(name)?.trim();
    if (value === undefined || value === '') continue;
    if (value.length > MAX_FILTER_TEXT) errors.push(`${name}: longer than ${MAX_FILTER_TEXT} characters; cut`);
    filter[name] = value.slice(0, MAX_FILTER_TEXT);
  }
  const score = params.get('score');
  if (score !== null && score !== '') {
    const n = Number(score);
    if (Number.isFinite(n) && n >= 0 && n <= 100) filter.minScore = n;
    else errors.push(`score: expected a number 0–100, got ${JSON.stringify(score.slice(0, 40))}`);
  }
  return { filter, errors };
}

/** The query string of a filter (for links and the live stream's URL), without the leading "?". */
export function filterQuery(filter: FlowFilter): string {
  const params = new URLSearchParams();
  if (filter.action !== undefined) params.set('action', filter.action);
  if (filter.alert !== undefined) params.set('alert', filter.alert ? 'yes' : 'no');
  for (const name of TEXT_FIELDS) {
    const value = filter[name];
    if (value !== undefined) params.set(name, value);
  }
  if (filter.minScore !== undefined) params.set('score', String(filter.minScore));
  return params.toString();
}

/** true when the filter has no condition. */
export function isEmptyFilter(filter: FlowFilter): boolean {
  return Object.keys(filter).length === 0;
}

/**
 * A predicate for `filter`, built once per viewer (lower-cased needles are computed here, not per flow).
 */
export function compileFilter(filter: FlowFilter): (flow: ConsoleFlowSummary) => boolean {
  if (isEmptyFilter(filter)) return () => true;
  const needles = new Map<'host' | 'user' | 'process' | 'destination', string>();
  for (const name of ['host', 'user', 'process', 'destination'] as const) {
    const value = filter[name];
    if (value !== undefined) needles.set(name, value.toLowerCase());
  }
  const { action, alert, rule, tag, minScore } = filter;
  return (flow) => {
    if (action !== undefined && flow.action !== action) return false;
    if (alert !== undefined && (flow.severity !== null) !== alert) return false;
    if (minScore !== undefined && (flow.score === null || flow.score < minScore)) return false;
    if (rule !== undefined && flow.rule !== rule && !flow.rules.includes(rule)) return false;
    if (tag !== undefined && !flow.tags.includes(tag)) return false;
    for (const [name, needle] of needles) {
      // host: the endpoint's name or its address (the endpoints page links to a client by address).
      if (name === 'host') {
        if (!(flow.host?.toLowerCase().includes(needle) ?? false) && !flow.sourceIp.includes(needle)) return false;
        continue;
      }
      const value = flow[name];
      if (value === null || !value.toLowerCase().includes(needle)) return false;
    }
    return true;
  };
}

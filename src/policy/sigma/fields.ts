/**
 * Which flow-record field each Sigma field becomes, per log source category. Sigma names follow the Sigma
 * taxonomy (SigmaHQ/sigma-specification, "Taxonomy appendix": proxy = W3C extended log fields; Sysmon
 * event 3 for network_connection and event 22 for dns_query; the generic `dns` fields). The same table is
 * printed in docs/sigma.md.
 *
 * Three kinds of entry: a direct field; a derived one (the converter builds an equivalent condition from
 * other fields, e.g. `c-uri-extension` from the path); and a refusal with its reason. A Sigma field not in
 * the table refuses the rule ("has no flow-record equivalent"): a rule is never imported with a condition
 * dropped or weakened.
 */
import type { FieldName } from '../../flow/fields.js';

export type SigmaCategory = 'proxy' | 'network_connection' | 'dns_query' | 'dns';
export const SIGMA_CATEGORIES: readonly SigmaCategory[] = ['proxy', 'network_connection', 'dns_query', 'dns'];

/** Fields the converter builds from others (convert.ts `derivedCondition`). */
export type DerivedField = 'initiated' | 'destination-is-ipv6' | 'user' | 'uri-extension';

export type FieldMapping =
  | {
      readonly kind: 'field';
      readonly field: FieldName;
      /** A request target: a pattern anchored at a leading `/` also matches after `scheme://authority`. */
      readonly originForm?: true;
      /** Why this mapping is right, or where it differs; shown in docs/sigma.md. */
      readonly note?: string;
    }
  | { readonly kind: 'derived'; readonly derived: DerivedField; readonly note: string }
  | { readonly kind: 'refused'; readonly reason: string };

const to = (field: FieldName, note?: string): FieldMapping => (note === undefined ? { kind: 'field', field } : { kind: 'field', field, note });
const uri = (note: string): FieldMapping => ({ kind: 'field', field: 'url.original', originForm: true, note });
const derived = (which: DerivedField, note: string): FieldMapping => ({ kind: 'derived', derived: which, note });
const refused = (reason: string): FieldMapping => ({ kind: 'refused', reason });

const URI_NOTE =
  'the request target as sent; Sigma proxy rules use it both as a path (`/admin/get.php`) and with the host (`pastebin.com/raw/`). A value anchored at a leading `/` also matches after `scheme://host`, so it fits absolute-form (plain HTTP through the proxy) and origin-form (inside a bumped tunnel) targets alike; a value that names the host matches absolute-form targets only';
const PROCESS_USER_NOTE =
  'Sysmon writes `DOMAIN\\name`; the record keeps `user.domain` and `user.name` apart, so the converter rebuilds each match over the two fields (exact for values without wildcards; a wildcard value is refused)';

const PROXY: Readonly<Record<string, FieldMapping>> = {
  'c-uri': uri(URI_NOTE),
  'cs-uri': uri('W3C name of the same field (cs-uri-stem + "?" + cs-uri-query); as c-uri'),
  'c-uri-query': to('url.query', 'without the `?`'),
  'cs-uri-query': to('url.query', 'without the `?`'),
  'c-uri-stem': to('url.path'),
  'cs-uri-stem': to('url.path'),
  'c-uri-extension': derived('uri-extension', 'derived: `c-uri-extension: exe` becomes `url.path endswith ".exe"` (plain values only)'),
  'c-useragent': to('user_agent.original'),
  'cs-host': to(
    'destination.domain',
    'the host the client asked for (request URL or CONNECT), known when the flow starts and set for tunnels too; a target given as an IP address has no destination.domain (unless DNS memory names it)',
  ),
  'r-dns': to('destination.domain'),
  'cs-method': to('http.request.method', '`CONNECT` for tunnels'),
  'dst_ip': to('destination.ip'),
  'src_ip': to('source.ip', 'the client address the proxy sees'),
  'sc-status': to('http.response.status_code'),
  'cs-bytes': to('http.request.body.bytes'),
  'sc-bytes': to('http.response.body.bytes'),
  'cs-cookie': refused('the proxy does not record the Cookie header'),
  'cs-referrer': refused('the proxy does not record the Referer header'),
  'cs-version': refused('http.version holds `1.1`, not W3C `HTTP/1.1`; values would never match'),
};

const NETWORK_CONNECTION: Readonly<Record<string, FieldMapping>> = {
  Image: to('process.executable', 'full image path, from the endpoint telemetry hint'),
  ParentImage: to('process.parent.executable'),
  CommandLine: to('process.command_line'),
  OriginalFileName: to('process.pe.original_file_name'),
  ProcessId: to('process.pid'),
  ProcessGuid: to('process.entity_id'),
  User: derived('user', PROCESS_USER_NOTE),
  Initiated: derived(
    'initiated',
    "every flow through an egress proxy is initiated by the endpoint: `'true'` always holds and is dropped; `'false'` never holds",
  ),
  DestinationIp: to('destination.ip'),
  DestinationHostname: to('destination.domain'),
  DestinationPort: to('destination.port'),
  DestinationIsIpv6: derived('destination-is-ipv6', "derived: `'true'` → `destination.ip` in `::/0`, `'false'` → in `0.0.0.0/0` (IPv4-mapped addresses count as IPv4)"),
  Protocol: to('network.transport'),
  SourceIp: to('source.ip', 'the client address the proxy sees: the endpoint when no NAT sits between it and the proxy'),
  SourceHostname: to('host.name', 'the endpoint host name from telemetry'),
  SourcePort: refused('the proxy sees the port of the client\'s connection to the proxy, not the endpoint\'s own socket port'),
  SourceIsIpv6: refused('the address family of the connection to the proxy says nothing about the endpoint\'s own socket'),
  DestinationPortName: refused('service names are not recorded; use DestinationPort'),
  ParentCommandLine: refused('the parent\'s command line is not in the process hint'),
};

const DNS_QUERY: Readonly<Record<string, FieldMapping>> = {
  QueryName: to('dns.question.name'),
  Image: to('process.executable'),
  ProcessId: to('process.pid'),
  ProcessGuid: to('process.entity_id'),
  User: derived('user', PROCESS_USER_NOTE),
  QueryResults: to('dns.answers'),
  QueryStatus: to('dns.response_code'),
};

const DNS: Readonly<Record<string, FieldMapping>> = {
  query: to('dns.question.name'),
  record_type: to('dns.question.type'),
  query_etld_plus_one: to('dns.question.registered_domain', 'eTLD+1 is the registrable domain (public suffix list)'),
  answer: to('dns.answers'),
  src_ip: to('source.ip'),
  parent_domain: refused('its meaning (the name minus its first label, or the registrable domain) differs between log sources'),
  query_length: refused('the length of the name is not a flow field'),
  dst_ip: refused('the DNS server the client asked is the proxy itself'),
};

export const FIELD_MAPPINGS: Readonly<Record<SigmaCategory, Readonly<Record<string, FieldMapping>>>> = {
  proxy: PROXY,
  network_connection: NETWORK_CONNECTION,
  dns_query: DNS_QUERY,
  dns: DNS,
};

/** The mapping of one Sigma field in one category, or null when the table has none. */
export function mappingOf(category: SigmaCategory, sigmaField: string): FieldMapping | null {
  const table = FIELD_MAPPINGS[category];
  return Object.prototype.hasOwnProperty.call(table, sigmaField) ? (table[sigmaField] as FieldMapping) : null;
}

export function isSigmaCategory(value: string): value is SigmaCategory {
  return (SIGMA_CATEGORIES as readonly string[]).includes(value);
}

/**
 * Every field of a flow, declared once: its ECS name (as it appears in the flow log and in policy `when`
 * keys), its value type, and the stage at which it becomes known.
 *
 * A field is *known* once the pipeline has set it, *pending* while its stage can still happen for the
 * flow, and *absent* after that (see `Flow.stateOf`). Fields whose stage is `end` describe the outcome
 * and cannot be used in policy rules; fields with `matchable: false` are written by the decision itself.
 */

/** The closed list of stages a flow goes through (docs/architecture.md). */
export const STAGES = ['connect', 'client-hello', 'http-request', 'dns-query', 'hint', 'end'] as const;
export type Stage = (typeof STAGES)[number];

export type FieldType = 'string' | 'number' | 'boolean' | 'ip' | 'string[]' | 'number[]' | 'object[]';

interface FieldSpec {
  readonly type: FieldType;
  readonly stage: Stage;
  /** false for fields the decision writes (rule.id, tags …): policy rules cannot test them. */
  readonly matchable?: false;
  readonly description: string;
}

const f = <T extends FieldType>(type: T, stage: Stage, description: string) => ({ type, stage, description });
const out = <T extends FieldType>(type: T, description: string) =>
  ({ type, stage: 'end', matchable: false, description }) as const;

export const FIELDS = {
  '@timestamp': out('string', 'When the flow started (ISO 8601, UTC)'),
  'event.id': out('string', 'Unique id of this flow'),
  'event.kind': out('string', '`event`, or `alert` when a matched rule has a severity'),
  'event.action': out('string', '`allow` or `block`'),
  'event.outcome': out('string', '`success` or `failure` (upstream error, client abort …)'),
  'event.duration': out('number', 'Flow duration in nanoseconds'),
  'event.severity': out('number', 'Highest severity of the matched rules (1 low … 4 critical)'),

  'network.protocol': f('string', 'client-hello', '`http`, `tls`, `dns` or `unknown`'),
  'network.transport': f('string', 'connect', '`tcp` or `udp`'),

  'source.ip': f('ip', 'connect', 'Client address as seen by the proxy'),
  'source.port': f('number', 'connect', 'Client port as seen by the proxy'),
  'source.bytes': out('number', 'Bytes sent by the client (request line, headers and body, or tunnel bytes)'),
  'destination.domain': f('string', 'connect', 'Destination host name (from the request, CONNECT or DNS memory)'),
  'destination.ip': f('ip', 'connect', 'The resolved address the proxy connects to'),
  'destination.port': f('number', 'connect', 'Destination port'),
  'destination.internal': f('boolean', 'connect', 'destination.ip is in network.internal'),
  'destination.ip_literal': f('boolean', 'connect', 'The client named the destination by IP address (in any spelling), not by name'),
  'destination.resolved_before': f('boolean', 'connect', 'A DNS answer gave this client the destination IP recently'),
  'destination.bytes': out('number', 'Bytes sent by the destination'),

  'url.original': f('string', 'http-request', 'Request target as sent (absolute URI, or host:port for CONNECT)'),
  'url.scheme': f('string', 'http-request', 'URL scheme'),
  'url.domain': f('string', 'http-request', 'URL host'),
  'url.port': f('number', 'http-request', 'URL port (explicit or default)'),
  'url.path': f('string', 'http-request', 'URL path'),
  'url.query': f('string', 'http-request', 'URL query without the `?`'),
  'http.version': f('string', 'http-request', 'HTTP version of the client request'),
  'http.request.method': f('string', 'http-request', 'Request method (CONNECT for tunnels)'),
  'http.request.body.bytes': out('number', 'Request body size'),
  'http.response.status_code': out('number', 'Status code returned to the client'),
  'http.response.body.bytes': out('number', 'Response body size'),
  'user_agent.original': f('string', 'http-request', 'User-Agent header'),

  'tls.client.server_name': f('string', 'client-hello', 'SNI of the ClientHello'),
  'tls.client.ja3': f('string', 'client-hello', 'JA3 fingerprint (MD5 hex)'),
  'tls.client.ja3_full': f('string', 'client-hello', 'JA3 string before hashing'),
  'tls.client.ja4': f('string', 'client-hello', 'JA4 fingerprint'),
  'tls.client.ja4_r': f('string', 'client-hello', 'JA4 raw (unhashed) form'),
  'tls.client.supported_ciphers': f('string[]', 'client-hello', 'Offered cipher suites (hex, wire order)'),
  'tls.client.alpn': f('string[]', 'client-hello', 'Offered ALPN protocols'),
  'tls.client.sni_matches_destination': f('boolean', 'client-hello', 'SNI equals the CONNECT host'),
  'tls.client.ech': f('boolean', 'client-hello', 'Encrypted ClientHello offered'),
  'tls.version_offered': f('string', 'client-hello', 'Highest TLS version offered, e.g. `1.3`'),
  'tls.client.malformed': f('string', 'client-hello', 'Why a tunnel\'s TLS ClientHello could not be parsed (field and offset)'),

  'dns.question.name': f('string', 'dns-query', 'Queried name'),
  'dns.question.type': f('string', 'dns-query', 'Query type, e.g. `A`, `TXT`'),
  'dns.question.registered_domain': f('string', 'dns-query', 'Registrable domain of the name'),
  'dns.question.subdomain': f('string', 'dns-query', 'Part of the name left of the registrable domain'),
  'dns.question.entropy': f('number', 'dns-query', 'Shannon entropy (bits per character) of the name without its public suffix, dots left out'),
  'dns.question.label_count': f('number', 'dns-query', 'Number of labels'),
  'dns.question.longest_label': f('number', 'dns-query', 'Length of the longest label'),
  'dns.response_code': out('string', 'Response code returned, e.g. `NOERROR`, `NXDOMAIN`'),
  'dns.answers': out('object[]', 'Answers returned: name, type, data, ttl'),

  'process.name': f('string', 'hint', 'Process image base name, lower-cased'),
  'process.pid': f('number', 'hint', 'Process id'),
  'process.executable': f('string', 'hint', 'Full image path'),
  'process.entity_id': f('string', 'hint', 'Sysmon ProcessGuid'),
  'process.command_line': f('string', 'hint', 'Command line'),
  'process.pe.original_file_name': f('string', 'hint', 'PE OriginalFileName'),
  'process.hash.md5': f('string', 'hint', 'Image MD5'),
  'process.hash.sha1': f('string', 'hint', 'Image SHA-1'),
  'process.hash.sha256': f('string', 'hint', 'Image SHA-256'),
  'process.hash.imphash': f('string', 'hint', 'Image import hash'),
  'process.parent.name': f('string', 'hint', 'Parent image base name, lower-cased'),
  'process.parent.executable': f('string', 'hint', 'Parent image path'),
  'user.name': f('string', 'hint', 'User (proxy authentication, trusted header or telemetry)'),
  'user.domain': f('string', 'hint', 'User domain'),
  'host.name': f('string', 'hint', 'Endpoint host name'),

  'egress.attribution': f('string', 'hint', '`telemetry`, `header` or `none`'),
  'client.ip': f('ip', 'connect', 'Original client address from X-Forwarded-For of a trusted downstream proxy'),
  'egress.claim.process_name': f('string', 'connect', 'Process named by the endpoint agent\'s X-Egress-Process header'),
  'egress.claim.pid': f('number', 'connect', 'Process id named by the X-Egress-Process header'),
  'egress.claim.verified': f('boolean', 'connect', 'The process claim carried a valid, fresh HMAC signature'),
  'egress.claim.reason': out('string', 'Why a process claim is unverified'),
  'egress.score': f('number', 'connect', 'Anomaly score 0–100 from the facts known so far'),
  'egress.reasons': f('string[]', 'connect', 'What raised the score, in plain words'),
  'egress.rules': out('string[]', 'Ids of every matched rule'),
  'egress.tunnel': out('string', '`splice` or `bump` for CONNECT flows'),
  'egress.explanation': out('string[]', 'Why each matched rule matched, in plain words'),
  'egress.pending_rule': out('string', 'Rule still pending when the flow ended before a decision'),
  'egress.followup_of': out('string', 'On a follow-up record: event.id of the flow record it completes'),
  'egress.late_verdict': out('string', 'On a follow-up record: what the policy would have decided with the late facts'),
  'egress.late_rule': out('string', 'On a follow-up record: the rule that would have decided with the late facts'),
  'rule.id': out('string', 'The rule that decided (absent when no rule matched)'),
  'tags': out('string[]', 'Tags of all matched rules'),
  'error.code': out('string', 'Stable error code (src/errors.ts) when the flow failed'),
  'error.message': out('string', 'What went wrong'),
} as const satisfies Record<string, FieldSpec>;

export type FieldName = keyof typeof FIELDS;

type ValueOf<T extends FieldType> = T extends 'string' | 'ip'
  ? string
  : T extends 'number'
    ? number
    : T extends 'boolean'
      ? boolean
      : T extends 'string[]'
        ? readonly string[]
        : T extends 'number[]'
          ? readonly number[]
          : readonly Readonly<Record<string, string | number>>[];

/** The value type of one field. */
export type FieldValueOf<K extends FieldName> = ValueOf<(typeof FIELDS)[K]['type']>;
/** Any field value. */
export type FieldValue = ValueOf<FieldType>;
/** The flat record of a flow, keyed by ECS field name. */
export type FlowFields = { -readonly [K in FieldName]?: FieldValueOf<K> };

export function isFieldName(name: string): name is FieldName {
  return Object.prototype.hasOwnProperty.call(FIELDS, name);
}

export function isMatchableField(name: FieldName): boolean {
  const spec: FieldSpec = FIELDS[name];
  return spec.matchable !== false && spec.stage !== 'end';
}

export function fieldStage(name: FieldName): Stage {
  return FIELDS[name].stage;
}

export function fieldType(name: FieldName): FieldType {
  return FIELDS[name].type;
}

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
  /**
   * Further stages whose facts the value is computed from (a feature of the process *and* the ClientHello):
   * the field stays pending while any of them can still happen.
   */
  readonly also?: readonly Stage[];
  /**
   * A running total recomputed at every stage (egress.score): it has a value early, but the value is only
   * final once every input stage is over, so a rule on it is pending until then.
   */
  readonly derived?: true;
  /**
   * Known only when the flow ends (e.g. request-body entropy, measured while the body is forwarded): usable
   * in `tag` rules, which are settled at the end; a rule that decides (allow/block/bump/splice) cannot wait
   * for it and is refused by the policy compiler.
   */
  readonly tagOnly?: true;
  readonly description: string;
}

const f = <T extends FieldType>(type: T, stage: Stage, description: string) => ({ type, stage, description });
/** A field computed from the facts of several stages (see `FieldSpec.also`). */
const fa = <T extends FieldType>(type: T, stage: Stage, also: readonly Stage[], description: string) => ({ type, stage, also, description });
/** A feature of the flow's end (see `FieldSpec.tagOnly`). */
const late = <T extends FieldType>(type: T, description: string) => ({ type, stage: 'end', tagOnly: true, description }) as const;
/** Every stage that brings facts: what a derived total depends on. */
const INPUTS: readonly Stage[] = ['client-hello', 'http-request', 'dns-query', 'hint'];
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
  'event.category': out('string[]', '`network`, plus `web` for an HTTP request (not a CONNECT tunnel)'),
  'event.type': out('string[]', '`connection`; `allowed` or `denied` (the decision); `protocol` when a protocol was parsed (HTTP, TLS, DNS); `access` for an HTTP request'),
  'event.start': out('string', 'When the flow started (ISO 8601, UTC); on a follow-up record, the start of the flow it completes'),
  'event.end': out('string', 'When the flow ended (ISO 8601, UTC); on a follow-up record, the end of the flow it completes'),
  'ecs.version': out('string', 'ECS version the records and deploy/elasticsearch/ target'),
  'observer.hostname': out('string', 'Host name of the proxy that wrote the record'),
  'observer.type': out('string', 'Always `proxy`'),
  'observer.vendor': out('string', 'Always `egress-inspector`'),
  'observer.product': out('string', 'Always `egress-inspector`'),
  'observer.version': out('string', 'Version of egress-inspector (package.json)'),
  'network.direction': out('string', '`outbound`, or `internal` when egress.destination.internal is true (ECS: perimeter point of view)'),
  'network.bytes': out('number', 'source.bytes + destination.bytes'),
  'network.community_id': out('string', 'Community ID v1 flow hash of source.ip/port, destination.ip/port and network.transport (seed 0)'),
  'related.ip': out('string[]', 'source.ip, destination.ip and client.ip, without repeats'),
  'related.hosts': out('string[]', 'destination.domain, url.domain, tls.client.server_name, dns.question.name and host.name, without repeats'),
  'related.user': out('string[]', 'user.name'),
  'related.hash': out('string[]', 'Fingerprints and hashes of the record (JA3/JA4 family, process image hashes, server certificate SHA-256)'),

  'network.protocol': f('string', 'client-hello', '`http`, `tls`, `dns` or `unknown`'),
  'network.transport': f('string', 'connect', '`tcp` or `udp`'),

  'source.ip': f('ip', 'connect', 'Client address as seen by the proxy'),
  'source.port': f('number', 'connect', 'Client port as seen by the proxy'),
  'source.bytes': out('number', 'Bytes sent by the client (request line, headers and body, or tunnel bytes)'),
  'destination.domain': f('string', 'connect', 'Destination host name (from the request, CONNECT or DNS memory)'),
  'destination.registered_domain': f('string', 'connect', 'Registrable domain of destination.domain (public suffix list)'),
  'destination.ip': f('ip', 'connect', 'The resolved address the proxy connects to'),
  'destination.port': f('number', 'connect', 'Destination port'),
  'egress.destination.internal': f('boolean', 'connect', 'destination.ip is in network.internal'),
  'egress.destination.ip_literal': f('boolean', 'connect', 'The client named the destination by IP address (in any spelling), not by name'),
  'egress.destination.resolved_before': f('boolean', 'connect', 'A DNS answer gave this client the destination IP recently'),
  'destination.bytes': out('number', 'Bytes sent by the destination'),

  'url.original': f('string', 'http-request', 'Request target as sent (absolute URI, or host:port for CONNECT)'),
  'url.full': out('string', 'Absolute URL of an HTTP request: url.original when absolute, else rebuilt from url.scheme/domain/port/path/query (bumped requests)'),
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
  'egress.tls.ja3_full': f('string', 'client-hello', 'JA3 string before hashing'),
  'tls.client.ja4': f('string', 'client-hello', 'JA4 fingerprint'),
  'egress.tls.ja4_r': f('string', 'client-hello', 'JA4 raw (unhashed) form'),
  'egress.tls.cipher_codes': f('string[]', 'client-hello', 'Offered cipher suites as 4-digit lower-case hex (the JA4_r form, e.g. `c02b`), wire order, GREASE dropped: the form policies match'),
  'tls.client.supported_ciphers': out('string[]', 'Offered cipher suites by IANA name (`TLS_AES_128_GCM_SHA256`; 0x-hex when not in the table), wire order, GREASE dropped'),
  'egress.tls.alpn': f('string[]', 'client-hello', 'Offered ALPN protocols'),
  'egress.tls.sni_matches_destination': f('boolean', 'client-hello', 'SNI equals the CONNECT host'),
  'egress.tls.ech': f('boolean', 'client-hello', 'Encrypted ClientHello offered'),
  'egress.tls.version_offered': f('string', 'client-hello', 'Highest TLS version offered, e.g. `1.3`'),
  'egress.tls.malformed': f('string', 'client-hello', 'Why a tunnel\'s TLS ClientHello could not be parsed (field and offset)'),

  'dns.question.name': f('string', 'dns-query', 'Queried name'),
  'dns.question.type': f('string', 'dns-query', 'Query type, e.g. `A`, `TXT`'),
  'dns.question.registered_domain': f('string', 'dns-query', 'Registrable domain of the name'),
  'dns.question.subdomain': f('string', 'dns-query', 'Part of the name left of the registrable domain'),
  'egress.dns.question_entropy': f('number', 'dns-query', 'Shannon entropy (bits per character) of the name without its public suffix, dots left out'),
  'egress.dns.label_count': f('number', 'dns-query', 'Number of labels'),
  'egress.dns.longest_label': f('number', 'dns-query', 'Length of the longest label'),
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
  'process.pe.imphash': f('string', 'hint', 'Image import hash'),
  'process.parent.name': f('string', 'hint', 'Parent image base name, lower-cased'),
  'process.parent.executable': f('string', 'hint', 'Parent image path'),
  'user.name': f('string', 'hint', 'User (proxy authentication, trusted header or telemetry)'),
  'user.domain': f('string', 'hint', 'User domain'),
  'host.name': f('string', 'hint', 'Endpoint host name'),

  'egress.attribution': f('string', 'hint', '`telemetry`, `header` or `none`'),
  'egress.neutralized': out('string[]', 'Fields whose text carried control or bidirectional-override characters, shown as visible `<U+XXXX>` marks in the record (the marks decode back to the original)'),
  'client.ip': f('ip', 'connect', 'Original client address from X-Forwarded-For of a trusted downstream proxy'),
  'egress.claim.process_name': f('string', 'connect', 'Process named by the endpoint agent\'s X-Egress-Process header'),
  'egress.claim.pid': f('number', 'connect', 'Process id named by the X-Egress-Process header'),
  'egress.claim.verified': f('boolean', 'connect', 'The process claim carried a valid, fresh HMAC signature'),
  'egress.claim.reason': out('string', 'Why a process claim is unverified'),
  'egress.score': { ...fa('number', 'connect', INPUTS, 'Anomaly score 0–100 (docs/scoring.md); final once every stage that can bring facts is over'), derived: true },
  'egress.reasons': { ...fa('string[]', 'connect', INPUTS, 'What raised the score, in plain words, highest weight first; each ends with its signal name in brackets'), derived: true },
  'egress.signals': out('string[]', 'Names of the signals that raised the score (docs/scoring.md), in the order of egress.reasons'),

  // ---- features (docs/scoring.md): facts computed from the facts above, one family per module ----------
  'egress.features.uri_segment_count': f('number', 'http-request', 'Number of path segments'),
  'egress.features.uri_max_segment_length': f('number', 'http-request', 'Length of the longest path segment or query value'),
  'egress.features.uri_entropy': f('number', 'http-request', 'Shannon entropy (bits/char) of the most random-looking path segment or query value of 8+ characters'),
  'egress.features.uri_encoding': f('string', 'http-request', '`base64`, `base64url`, `hex` or `guid`: encoded data seen in a path segment or query value'),
  'egress.features.uri_random': f('boolean', 'http-request', 'A long, high-entropy path segment or query value that is not a known benign shape'),
  'egress.features.uri_benign_shape': f('string', 'http-request', 'Why a random-looking part was judged benign (`webpack-chunk`, `ocsp`, `oauth` …)'),
  'egress.features.uri_executable': f('string', 'http-request', 'Extension of an executable or script file the URL fetches (`exe`, `dll`, `ps1`, `hta` …)'),
  'egress.features.uri_c2_shape': f('string', 'http-request', 'Id of the known C2 URI shape (policies/data/c2-uri-shapes.yaml) the request matches'),
  'egress.features.ua_family': f('string', 'http-request', 'User-Agent family (`browser`, `powershell`, `curl`, `bits` …; `empty` when missing)'),
  'egress.features.ua_missing': f('boolean', 'http-request', 'The request has no User-Agent'),
  'egress.features.ua_c2': f('string', 'http-request', 'The User-Agent is a known C2 framework default (its name)'),
  'egress.features.ua_outdated': f('boolean', 'http-request', 'A long-outdated browser User-Agent (MSIE on Windows 7 …), as C2 profiles use'),
  'egress.features.ua_process_mismatch': fa('boolean', 'http-request', ['hint'], 'The User-Agent family does not fit the process (a browser UA from rundll32.exe)'),
  'egress.features.host_mismatch': f('boolean', 'http-request', 'The Host header names another host than the request target (fronting)'),
  'egress.features.body_entropy': late('number', 'Entropy (bits/byte) of the first 4 KiB of the request body'),
  'egress.features.body_encrypted': late('boolean', 'The request body looks encrypted: 256+ bytes spread evenly over all byte values (chi-square), not a known compressed or media format'),
  'egress.features.process_category': f('string', 'hint', 'Category of the process (policies/data/processes.yaml): `script-host`, `lolbin`, `browser`, `admin-tool` …'),
  'egress.features.process_user_writable': f('boolean', 'hint', 'The image runs from a user-writable folder (AppData, Temp, ProgramData, Users\\Public, Downloads …)'),
  'egress.features.process_double_extension': f('boolean', 'hint', 'The image name has a double extension (invoice.pdf.exe)'),
  'egress.features.process_suspicious_parent': f('string', 'hint', 'Office, mail or browser parent that spawned a script host or LOLBin (its name)'),
  'egress.features.process_masquerade': f('boolean', 'hint', 'A Windows system binary name outside the system folders'),
  'egress.features.process_renamed': f('boolean', 'hint', 'The PE original file name is a script host or LOLBin but the image is named otherwise'),
  'egress.features.uncommon_port': f('boolean', 'connect', 'The destination port is not a web port (80, 443, 8080, 8443)'),
  'egress.features.dest_dga': f('boolean', 'connect', 'The destination name looks machine-generated (DGA)'),
  'egress.features.dest_label_entropy': f('number', 'connect', 'Entropy (bits/char) of the destination name without its public suffix'),
  'egress.features.protocol_mismatch': f('string', 'client-hello', '`not-tls-on-443` or `tls-on-80`: the tunnel does not speak what its port promises'),
  'egress.features.dns_flagged': f('string', 'connect', 'The DNS signal (`dns_dga`, `dns_tunnel`, `dns_long_label`, `dns_nxdomain_burst`) this client\'s queries for the destination name raised'),
  'egress.features.tls_family': f('string', 'client-hello', 'TLS stack family of the JA4 (policies/data/tls-families.yaml): `chromium`, `schannel`, `openssl` …'),
  'egress.features.sni_missing': f('boolean', 'client-hello', 'A TLS ClientHello without SNI'),
  'egress.features.sni_mismatch': f('boolean', 'client-hello', 'The SNI names another host than the CONNECT target (domain fronting)'),
  'egress.features.sni_on_ip': f('boolean', 'client-hello', 'A CONNECT to a bare IP whose ClientHello names a host'),
  'egress.features.tls_process_mismatch': fa('boolean', 'client-hello', ['hint'], 'The TLS stack does not fit the process (a browser-named process with a scripting stack)'),
  'egress.features.first_seen': fa('boolean', 'hint', ['connect', 'http-request'], 'This process had never contacted this registrable domain (or IP) before (baseline)'),
  'egress.features.rare_for_process': fa('boolean', 'hint', ['client-hello'], 'This JA4 is rare for this process (baseline)'),
  'egress.features.prevalence': f('number', 'connect', 'Share of the fleet\'s hosts (0–1) that have contacted this destination (baseline)'),
  'egress.baseline.learning': f('boolean', 'connect', 'The baseline is still in its learning period: rarity features do not score yet'),
  'egress.beacon.score': fa('number', 'hint', ['connect', 'http-request'], 'Beacon score 0–1 of (host, process, destination), RITA\'s method (docs/scoring.md)'),
  'egress.beacon.connections': fa('number', 'hint', ['connect', 'http-request'], 'Connections of (host, process, destination) the beacon score is computed over'),
  'egress.beacon.interval_ms': fa('number', 'hint', ['connect', 'http-request'], 'Median interval between those connections, milliseconds'),
  'egress.beacon.jitter_ms': fa('number', 'hint', ['connect', 'http-request'], 'Median absolute deviation of the intervals, milliseconds'),
  'http.request.ja4h': f('string', 'http-request', 'FoxIO JA4H fingerprint of the plain HTTP request'),
  'destination.geo.country_iso_code': f('string', 'connect', 'Country of destination.ip (geoip.city)'),
  'destination.as.number': f('number', 'connect', 'Autonomous system number of destination.ip (geoip.asn)'),
  'destination.as.organization.name': f('string', 'connect', 'Autonomous system organization of destination.ip (geoip.asn)'),
  'egress.rules': out('string[]', 'Ids of every matched rule'),
  'egress.shadow': out('object[]', 'Shadow rules (mode: shadow) that matched, each as {rule, action}: what it would have done; they never decide'),
  'egress.tunnel': out('string', 'What the proxy did with an allowed CONNECT tunnel: `splice` (relayed as is) or `bump` (TLS terminated, inner requests inspected)'),
  'egress.tunnel_reason': out('string', 'Why an allowed tunnel was spliced although a rule said bump (e.g. `pinned client, spliced`)'),
  'egress.tunnel_id': out('string', 'On the record of a request inside a bumped tunnel: event.id of the tunnel\'s record'),
  'egress.tls.verification': out('string', 'Bumped tunnels: `ok` or `failed`, the verification of the destination\'s certificate'),
  'egress.tls.verification_error': out('string', 'Why the destination\'s certificate or TLS handshake failed'),
  'egress.tls.upstream_protocol': out('string', 'Bumped tunnels: TLS version negotiated with the destination (e.g. `TLSv1.3`)'),
  'egress.tls.upstream_cipher': out('string', 'Bumped tunnels: cipher suite negotiated with the destination (IANA name)'),
  // The server side of TLS (issue 10): from the ServerHello a spliced tunnel relays or a bumped one receives, and
  // from the server's certificate (bumped: always; spliced: TLS <= 1.2 only, where it is sent in clear). Known
  // once the server has answered, after the tunnel's decision: `tag` rules and the final score use them.
  'tls.server.ja3s': late('string', 'JA3S of the ServerHello (MD5 hex, Salesforce)'),
  'tls.server.ja4s': late('string', 'JA4S of the ServerHello (FoxIO)'),
  'tls.version': late('string', 'TLS version the server chose, e.g. `1.3`'),
  'tls.cipher': late('string', 'Cipher suite the server chose (IANA name, or 0x-hex)'),
  'tls.server.ja4x': late('string', 'JA4X of the server certificate (FoxIO): how it was built, not who it names'),
  'tls.server.x509.subject.common_name': late('string', 'Subject CN of the server certificate'),
  'tls.server.x509.issuer.common_name': late('string', 'Issuer CN of the server certificate'),
  'tls.server.x509.subject.distinguished_name': late('string', 'Subject DN of the server certificate'),
  'tls.server.x509.issuer.distinguished_name': late('string', 'Issuer DN of the server certificate'),
  'tls.server.x509.alternative_names': late('string[]', 'Subject alternative names of the server certificate'),
  'tls.server.x509.not_before': late('string', 'Start of the server certificate\'s validity (ISO 8601)'),
  'tls.server.x509.not_after': late('string', 'End of the server certificate\'s validity (ISO 8601)'),
  'tls.server.x509.serial_number': late('string', 'Serial number of the server certificate (hex)'),
  'tls.server.hash.sha256': late('string', 'SHA-256 of the server certificate (DER, hex)'),
  'egress.tls.self_signed': late('boolean', 'The server certificate is self-signed (issuer = subject, signed by its own key)'),
  'egress.tls.validity_days': late('number', 'Validity period of the server certificate, days'),
  'egress.tls.cert_age_days': late('number', 'Days since the server certificate became valid (a fresh one is a C2 tell)'),
  'egress.tls.certificate_error': late('string', 'Why the server certificate could not be read'),
  'egress.tls.fronting': late('string', 'Which names of a tunnel disagree: `connect≠sni`, `sni≠host`, `sni≠certificate` (comma-separated)'),
  'egress.dns.cache_hit': out('boolean', "The answer came from the DNS forwarder's answer cache (only with dns.cache on)"),
  'egress.explanation': out('string[]', 'Why each matched rule matched, in plain words'),
  'egress.pending_rule': out('string', 'Rule still pending when the flow ended before a decision'),
  'egress.followup_of': out('string', 'On a follow-up record: event.id of the flow record it completes'),
  'egress.original_rule': out('string', 'On a follow-up record: rule.id of the flow record it completes (the rule that decided the flow)'),
  'egress.late_verdict': out('string', 'On a follow-up record: what the policy would have decided with the late facts'),
  'egress.late_rule': out('string', 'On a follow-up record: the rule that would have decided with the late facts'),
  'rule.id': out('string', 'The rule that decided (absent when no rule matched)'),
  'tags': out('string[]', 'Tags of all matched rules'),
  'error.code': out('string', 'Stable error code (src/errors.ts) when the flow failed'),
  'error.message': out('string', 'What went wrong'),
} as const satisfies Record<string, FieldSpec>;

export type FieldName = keyof typeof FIELDS;

/**
 * Each field's slot in a flow's value array (its place in the catalogue above): a flow holds its values in one
 * array of FIELD_COUNT slots, allocated once, instead of a Map that grows and rehashes as fields arrive.
 */
export const FIELD_SLOT: ReadonlyMap<FieldName, number> = new Map((Object.keys(FIELDS) as FieldName[]).map((name, i) => [name, i]));
/** Field names by slot. */
export const FIELD_BY_SLOT: readonly FieldName[] = Object.keys(FIELDS) as FieldName[];
export const FIELD_COUNT = FIELD_BY_SLOT.length;

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

/**
 * Names policies may still use for fields that moved under `egress.*` (ECS does not define them, and a
 * non-ECS field inside an ECS namespace breaks SIEM mappings). A `when` key written with the old name means
 * the new field; records only ever carry the new name. `destination.internal` is the spelling SPEC uses.
 */
export const FIELD_ALIASES: Readonly<Record<string, FieldName>> = {
  'destination.internal': 'egress.destination.internal',
  'destination.ip_literal': 'egress.destination.ip_literal',
  'destination.resolved_before': 'egress.destination.resolved_before',
  'tls.client.ja3_full': 'egress.tls.ja3_full',
  'tls.client.ja4_r': 'egress.tls.ja4_r',
  'tls.client.alpn': 'egress.tls.alpn',
  'tls.client.sni_matches_destination': 'egress.tls.sni_matches_destination',
  'tls.client.ech': 'egress.tls.ech',
  'tls.version_offered': 'egress.tls.version_offered',
  'tls.client.malformed': 'egress.tls.malformed',
  'dns.question.entropy': 'egress.dns.question_entropy',
  'dns.question.label_count': 'egress.dns.label_count',
  'dns.question.longest_label': 'egress.dns.longest_label',
  'process.hash.imphash': 'process.pe.imphash',
  // The record shows IANA names (ECS); policies keep matching the hex codes they were written with.
  'tls.client.supported_ciphers': 'egress.tls.cipher_codes',
};

/**
 * Number fields that carry fractions (entropy, shares, scores, days, medians): an index template must map them
 * as floating point, because a dynamic mapping pins a field to `long` when its first value is a whole number.
 * Every other `number` field holds whole numbers (deploy/elasticsearch/ maps them as `long`).
 */
export const FRACTIONAL_FIELDS: ReadonlySet<FieldName> = new Set<FieldName>([
  'egress.dns.question_entropy',
  'egress.features.uri_entropy',
  'egress.features.body_entropy',
  'egress.features.dest_label_entropy',
  'egress.features.prevalence',
  'egress.beacon.score',
  'egress.beacon.interval_ms',
  'egress.beacon.jitter_ms',
  'egress.tls.validity_days',
  'egress.tls.cert_age_days',
]);

/** The field a policy key names: itself, or the field an old name moved to (FIELD_ALIASES). */
export function canonicalFieldName(name: string): string {
  return Object.prototype.hasOwnProperty.call(FIELD_ALIASES, name) ? (FIELD_ALIASES[name] as FieldName) : name;
}

export function isFieldName(name: string): name is FieldName {
  return Object.prototype.hasOwnProperty.call(FIELDS, name);
}

export function isMatchableField(name: FieldName): boolean {
  const spec: FieldSpec = FIELDS[name];
  return spec.matchable !== false && (spec.stage !== 'end' || spec.tagOnly === true);
}

/** Known only at the flow's end: only `tag` rules may use it (FieldSpec.tagOnly). */
export function isTagOnlyField(name: FieldName): boolean {
  const spec: FieldSpec = FIELDS[name];
  return spec.tagOnly === true;
}

/** A running total that is final only once every input stage is over (FieldSpec.derived). */
export function isDerivedField(name: FieldName): boolean {
  const spec: FieldSpec = FIELDS[name];
  return spec.derived === true;
}

/** Every stage the field's value depends on: its own and `also`. */
export function fieldStages(name: FieldName): readonly Stage[] {
  const spec: FieldSpec = FIELDS[name];
  return spec.also === undefined ? [spec.stage] : [spec.stage, ...spec.also];
}

export function fieldStage(name: FieldName): Stage {
  return FIELDS[name].stage;
}

export function fieldType(name: FieldName): FieldType {
  return FIELDS[name].type;
}

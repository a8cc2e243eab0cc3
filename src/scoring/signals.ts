/**
 * Every signal that can raise egress.score, declared once: its stable name (in `egress.signals`, in brackets at
 * the end of each reason, as the `reason` label of egress_reasons_total, and as the key of `scoring.weights`
 * in a policy file) and its default weight — the points it adds at full strength. A scorer reports a strength
 * in (0, 1]; points = weight × strength; the total is capped at 100.
 *
 * The weights are calibrated so that one weak signal stays well under 50, a signal that is close to proof
 * (a known C2 URI or User-Agent, a double-extension payload, a process masquerading as a system binary) reaches
 * 50 on its own, and two or three independent anomalies reach the 80 at which the shipped default policy
 * alerts for any process. docs/scoring.md lists each with its known false positives and how to tune it.
 */
export const SIGNALS = {
  // ---- URI and HTTP (stage http-request) --------------------------------------------------------------------
  uri_c2_shape: { weight: 60, description: 'the request matches a known C2 framework default URI shape' },
  uri_random: { weight: 35, description: 'a long, high-entropy path segment or query value (encrypted or random data)' },
  uri_encoded: { weight: 15, description: 'base64 or hex data in a path segment or query value' },
  executable_download: { weight: 25, description: 'the URL fetches an executable or script file (full weight from a bare IP, 40 % from a name)' },
  ua_missing: { weight: 15, description: 'no User-Agent header' },
  ua_c2: { weight: 60, description: 'a User-Agent that a C2 framework sends by default' },
  ua_outdated: { weight: 20, description: 'a long-outdated browser User-Agent' },
  ua_process_mismatch: { weight: 30, description: 'the User-Agent does not fit the process (a browser UA from a LOLBin)' },
  host_mismatch: { weight: 40, description: 'the Host header names another host than the request target' },
  body_encrypted: { weight: 20, description: 'the request body looks encrypted' },
  // ---- process (stage hint) ---------------------------------------------------------------------------------
  process_script_host: { weight: 25, description: 'a script host (wscript, cscript, mshta) made the flow' },
  process_lolbin: { weight: 30, description: 'a LOLBin (signed Windows binary used to fetch or run payloads) made the flow' },
  process_user_writable: { weight: 20, description: 'an unknown program, script host, LOLBin or admin tool runs from a user-writable folder' },
  process_double_extension: { weight: 50, description: 'the process image has a double extension (invoice.pdf.exe)' },
  process_suspicious_parent: { weight: 40, description: 'an Office, mail or browser process spawned the script host or LOLBin' },
  process_masquerade: { weight: 50, description: 'a system binary name outside the system folders' },
  process_renamed: { weight: 45, description: 'a renamed script host or LOLBin' },
  process_claim_mismatch: { weight: 40, description: 'the endpoint agent and the telemetry name different processes' },
  // ---- destination (stage connect) --------------------------------------------------------------------------
  uncommon_port: { weight: 25, description: 'a destination port that is not a web port' },
  ip_literal: { weight: 20, description: 'the destination was given as a bare IP address' },
  unresolved_ip: { weight: 10, description: 'an IP address that no DNS answer gave this client' },
  dest_dga: { weight: 30, description: 'the destination name looks machine-generated' },
  dns_flagged: { weight: 30, description: 'this client\'s DNS queries for the destination raised a DNS signal' },
  rare_destination: { weight: 15, description: 'few of the fleet\'s hosts have ever contacted the destination' },
  // ---- TLS (stage client-hello) -----------------------------------------------------------------------------
  protocol_mismatch: { weight: 35, description: 'the tunnel does not speak what its port promises (not TLS on 443, TLS on 80)' },
  sni_missing: { weight: 20, description: 'a TLS ClientHello without SNI' },
  sni_mismatch: { weight: 40, description: 'the SNI names another host than the CONNECT target (domain fronting)' },
  sni_on_ip: { weight: 30, description: 'a CONNECT to a bare IP whose ClientHello names a host' },
  tls_process_mismatch: { weight: 30, description: 'the TLS stack does not fit the process' },
  malformed_client_hello: { weight: 30, description: 'a ClientHello that no mainstream TLS stack would send' },
  // ---- TLS server side (the server's certificate, known once it answered: the final score) ---------------------
  server_self_signed: { weight: 30, description: 'the destination presented a self-signed certificate (a C2 team server\'s default; a public site never does)' },
  // ---- baselines and beacons --------------------------------------------------------------------------------
  first_seen: { weight: 15, description: 'the process had never contacted the destination before' },
  rare_for_process: { weight: 10, description: 'the TLS fingerprint is rare for the process' },
  beacon: { weight: 45, description: 'connections at regular intervals with regular sizes (RITA\'s beacon score from 0.6 up; half for known applications)' },
  // ---- DNS (stage dns-query) --------------------------------------------------------------------------------
  dns_dga: { weight: 40, description: 'a DGA-like query name' },
  dns_long_label: { weight: 25, description: 'a long label or name, as DNS tunnels use to carry data' },
  dns_tunnel: { weight: 50, description: 'many unique subdomains of one domain from one client (DNS tunnelling)' },
  dns_txt_burst: { weight: 15, description: 'a burst of TXT/NULL/ANY queries' },
  dns_nxdomain_burst: { weight: 20, description: 'a burst of NXDOMAIN answers' },
} as const satisfies Record<string, { readonly weight: number; readonly description: string }>;

export type SignalName = keyof typeof SIGNALS;
export const SIGNAL_NAMES = Object.keys(SIGNALS) as readonly SignalName[];

export function isSignalName(name: string): name is SignalName {
  return Object.prototype.hasOwnProperty.call(SIGNALS, name);
}

/** Weights by signal: the defaults, with a policy file's `scoring.weights` on top. */
export type Weights = Readonly<Record<SignalName, number>>;

export const DEFAULT_WEIGHTS: Weights = Object.freeze(
  Object.fromEntries(SIGNAL_NAMES.map((name) => [name, SIGNALS[name].weight])) as Record<SignalName, number>,
);

export function withOverrides(overrides: ReadonlyMap<SignalName, number>): Weights {
  if (overrides.size === 0) return DEFAULT_WEIGHTS;
  const weights = { ...DEFAULT_WEIGHTS } as Record<SignalName, number>;
  for (const [name, weight] of overrides) weights[name] = weight;
  return Object.freeze(weights);
}

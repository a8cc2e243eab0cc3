/** Shared pieces of scenario definitions: expected-reason regexes, Windows paths, periodic loops. */
import type { LabHost, PlayContext } from '../types.js';

/**
 * What a correct detection says, by class. Matched against egress.reasons, rule.id, egress.rules and tags of
 * the flagged flows; deliberately loose on wording (the engine's words are its own), strict on the idea.
 */
export const WHY = {
  uri: /\bur[il]\b|path|query/i,
  payloadPath: /writable|user.?(folder|profile|dir)|appdata|\btemp\b|public|download|payload location/i,
  beacon: /beacon|periodic|interval|regular/i,
  upload: /upload|exfil|bytes.?out|outbound|entropy|request body/i,
  sni: /\bsni\b|server.?name/i,
  bareIp: /bare.?ip|ip.?(address|literal)|raw.?ip|no.?name|not a name/i,
  fronting: /front|mismatch|differ/i,
  notTls: /not.?tls|non.?tls|protocol|handshake/i,
  dnsTunnel: /tunnel|subdomain|label|\btxt\b|entropy|encod/i,
  dga: /dga|nxdomain/i,
  longLabel: /label|entropy|random|dga|long/i,
  port: /port/i,
  doubleExt: /double|extension/i,
  lolbin: /lolbin|living.?off|script.?host|an0922|t1218|t1220|signed.?binary/i,
  bits: /\bbits\b/i,
  framework: /cobalt|empire|covenant|sliver|metasploit|meterpreter|framework|malleable|c2.?profile|user.?agent|\bur[il]\b|path/i,
} as const;

export const SYS32 = 'C:\\Windows\\System32';
export const SYSWOW64 = 'C:\\Windows\\SysWOW64';
export const POWERSHELL = `${SYS32}\\WindowsPowerShell\\v1.0\\powershell.exe`;
export const SVCHOST = `${SYS32}\\svchost.exe`;
export const EXPLORER = 'C:\\Windows\\explorer.exe';
export const SYSTEM = 'NT AUTHORITY\\SYSTEM';
export const NETWORK_SERVICE = 'NT AUTHORITY\\NETWORK SERVICE';
export const LOCAL_SERVICE = 'NT AUTHORITY\\LOCAL SERVICE';

/** The host user's profile folder, e.g. C:\Users\alice. */
export function home(host: LabHost): string {
  return `C:\\Users\\${host.user.slice(host.user.indexOf('\\') + 1)}`;
}

/** `n` rounds of `round`, `periodMs` ± `jitter` (fraction) apart, as beacons and heartbeats sleep. */
export async function every(ctx: PlayContext, n: number, periodMs: number, jitter: number, round: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i++) {
    await round(i);
    if (i < n - 1) await ctx.sleep(ctx.rng.jitter(periodMs, jitter));
  }
}

/** `n` rounds at human, irregular gaps between `minMs` and `maxMs`. */
export async function browse(ctx: PlayContext, n: number, minMs: number, maxMs: number, round: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i++) {
    await round(i);
    if (i < n - 1) await ctx.sleep(ctx.rng.int(minMs, maxMs));
  }
}

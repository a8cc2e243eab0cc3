/**
 * The shape of a labelled scenario and of what a scenario can do when it plays. A scenario is one story — one
 * implant, one updater, one user's browsing — told through the live proxy as connections, DNS queries and the
 * Sysmon events an endpoint agent would post for them.
 */
import type { HelloKind } from './hellos.js';
import type { HttpResponseSpec, Lab } from './lab.js';
import type { Rng } from './rng.js';

export type Label = 'c2' | 'benign';

/** A Sysmon-visible process. Paths and command lines are Windows-shaped; `user` is "DOMAIN\\name". */
export interface ProcessSpec {
  readonly image: string;
  readonly commandLine?: string;
  readonly parentImage?: string;
  readonly parentCommandLine?: string;
  /** PE OriginalFileName (defaults to the image's base name, upper-cased for System32 binaries). */
  readonly originalFileName?: string;
  /** Default: the host's interactive user. */
  readonly user?: string;
}

/** One endpoint host of the lab. */
export interface LabHost {
  /** Fully qualified, as Sysmon's Hostname/Computer field carries it. */
  readonly fqdn: string;
  /** Its loopback address: every connection and query of this host comes from it. */
  readonly ip: string;
  /** Sends Sysmon events to /v1/hints (Windows workstations do, the Linux servers do not). */
  readonly managed: boolean;
  /** The interactive user, "DOMAIN\\name". */
  readonly user: string;
}

export interface HttpRequest {
  /** Absolute http:// URL, as a client sends it to a forward proxy (RFC 9112 §3.2.2). */
  readonly url: string;
  readonly method?: string;
  /** In wire order; Host, Content-Length and Connection are added by the player. */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly body?: Buffer | string;
  /** What the origin answers (default 200 with 256 bytes of text/html). */
  readonly response?: HttpResponseSpec;
}

export interface TlsRequest {
  /** The CONNECT authority "host:port"; host is a name or an IP literal. */
  readonly connect: string;
  /** SNI to send; default: the CONNECT host when it is a name, none when it is an IP. null: send none. */
  readonly sni?: string | null;
  readonly hello: HelloKind;
  /** Application-data writes after the server's first flight (bytes each); each waits for the reply. */
  readonly upload?: readonly number[];
  /** Server behaviour for this destination (first declaration wins). */
  readonly server?: { readonly firstReply?: number; readonly perChunkReply?: number };
  /** Keep the tunnel open this long after the last exchange (long-lived sessions), ms. */
  readonly holdMs?: number;
}

export interface RawRequest {
  readonly connect: string;
  /** Bytes the client writes, one write per element, each followed by a short wait for the reply. */
  readonly send: readonly (Buffer | string)[];
  readonly server?: { readonly banner?: string; readonly perChunkReply?: number };
  readonly holdMs?: number;
}

export interface DnsRequest {
  readonly name: string;
  /** Default A. */
  readonly type?: 'A' | 'AAAA' | 'TXT' | 'CNAME' | 'MX' | 'NULL' | 'SRV';
  /**
   * The name does not exist (NXDOMAIN). Otherwise a name the lab does not know yet gets an address, so that
   * ordinary lookups resolve without ceremony.
   */
  readonly nx?: boolean;
}

export interface DnsResult {
  readonly rcode: string;
  readonly answers: number;
}

/** A process on a host, able to make the connections Sysmon would attribute to it. */
export interface Proc {
  readonly host: LabHost;
  http(req: HttpRequest): Promise<number>;
  tls(req: TlsRequest): Promise<number>;
  raw(req: RawRequest): Promise<number>;
  dns(req: DnsRequest): Promise<DnsResult>;
}

export interface PlayContext {
  /** The scenario's hosts (one unless the scenario asked for several). */
  readonly hosts: readonly LabHost[];
  /** hosts[0]. */
  readonly host: LabHost;
  /** This scenario's own seeded random stream. */
  readonly rng: Rng;
  readonly lab: Lab;
  /** A process on `host` (default: hosts[0]); its Sysmon Event ID 1 is posted before its first connection. */
  proc(spec: ProcessSpec, host?: LabHost): Proc;
  sleep(ms: number): Promise<void>;
}

/** Where a scenario runs: its own fresh workstation, N hosts of the shared fleet, or an unmanaged server. */
export type Placement = 'own' | 'server' | { readonly fleet: number };

export interface Scenario {
  /** Unique, kebab-case, starts with "c2-" or "benign-". */
  readonly id: string;
  readonly label: Label;
  /** Detection class, e.g. "uri-random-b64"; the report groups by it. */
  readonly cls: string;
  readonly title: string;
  /** Where the shape comes from: dataset paths, SigmaHQ rule ids, framework docs, vendor docs, RFCs. */
  readonly sources: readonly string[];
  /**
   * C2 only: what a correct detection says — regexes over egress.reasons, rule.id, egress.rules and tags of
   * the flagged flows. "Right reason" = any regex matches any of them on a flagged flow.
   */
  readonly expect?: readonly RegExp[];
  /** Default: 'own' for C2, { fleet: 1 } for benign. */
  readonly placement?: Placement;
  /** Starts at once, beside the bounded pool (periodic scenarios that take seconds). */
  readonly long?: boolean;
  play(ctx: PlayContext): Promise<void>;
}

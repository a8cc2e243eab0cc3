/**
 * ClientHellos for the detection corpus: real captured hellos (our own loopback captures and the FoxIO JA4
 * public captures), re-addressed to the scenario's server name, plus one built from the Go crypto/tls defaults
 * for Go implants (Sliver), for which no capture is in the tree.
 *
 * Re-addressing keeps everything a fingerprint reads (version, ciphers, extension order, groups, ALPN) and
 * changes only the server_name extension (RFC 6066 §3) — or drops it, as a client does when it connects to an
 * IP literal (RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in HostName"). Padding (RFC 7685)
 * and PSK binders are left as captured: nothing in the lab validates them.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildHandshake, buildHelloBody, ext, frameRecords, type HelloSpec } from '../unit/parsers/hello-builder.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** The TLS client stacks the corpus plays. */
export type HelloKind =
  /** Chromium 156 headless (test/fixtures/tls/chromium.pcapng): GREASE, ECH GREASE, ML-KEM key share. */
  | 'chromium'
  /** Chrome/Edge as captured by FoxIO (browsers-x509.pcapng, edge.microsoft.com): t13d1516h2. */
  | 'edge'
  /** Firefox as captured by FoxIO (tls12.pcap, contile.services.mozilla.com): t13d1715h2. */
  | 'firefox'
  /** Slack desktop (Electron) as captured by FoxIO (latest.pcapng, app.slack.com): t13d1516h2, other ext hash. */
  | 'electron'
  /** Windows SChannel, TLS 1.2, no ALPN (FoxIO ssh2.pcapng, self.events.data.microsoft.com — DiagTrack). */
  | 'schannel'
  /** Windows SChannel with ALPN h2/http1.1 (FoxIO ssh2.pcapng, 4.sophosxl.net). */
  | 'schannel-alpn'
  /** curl 7.88 / OpenSSL 3.0, TLS 1.3 (test/fixtures/tls/curl-tls13.pcapng). */
  | 'curl'
  /** Node 20 https.get (test/fixtures/tls/node-https.pcapng). */
  | 'node'
  /** Python 3.11 ssl (test/fixtures/tls/python-ssl.pcapng). */
  | 'python'
  /** openssl s_client -tls1_3 (test/fixtures/tls/openssl-tls13.pcapng). */
  | 'openssl'
  /** Go crypto/tls defaults (built, see goHelloSpec). */
  | 'go';

interface CapturedHello {
  readonly recordHex: string;
}

function readJsonl(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function captured(): Map<Exclude<HelloKind, 'go'>, CapturedHello> {
  const own = readJsonl(`${FIXTURES}tls/clienthellos.jsonl`);
  const foxio = readJsonl(`${FIXTURES}vectors/ja4-foxio/derived/clienthellos.jsonl`);
  const ownRow = (client: string): CapturedHello => {
    const row = own.find((r) => r['client'] === client);
    if (row === undefined) throw new Error(`no captured hello for ${client}`);
    return { recordHex: String(row['record_hex']) };
  };
  const foxRow = (pcap: string, frame: number): CapturedHello => {
    const row = foxio.find((r) => r['pcap'] === pcap && r['frame'] === frame);
    if (row === undefined) throw new Error(`no FoxIO hello ${pcap}#${frame}`);
    return { recordHex: String(row['record_hex']) };
  };
  return new Map<Exclude<HelloKind, 'go'>, CapturedHello>([
    ['chromium', ownRow('chromium')],
    ['curl', ownRow('curl-tls13')],
    ['node', ownRow('node-https')],
    ['python', ownRow('python-ssl')],
    ['openssl', ownRow('openssl-tls13')],
    ['edge', foxRow('browsers-x509.pcapng', 4)],
    ['firefox', foxRow('tls12.pcap', 1)],
    ['electron', foxRow('latest.pcapng', 101)],
    ['schannel', foxRow('ssh2.pcapng', 232)],
    ['schannel-alpn', foxRow('ssh2.pcapng', 266)],
  ]);
}

/**
 * Go crypto/tls client defaults (Go 1.21/1.22 on AES-NI hardware), as sent by Go implants such as Sliver:
 * cipher order from crypto/tls cipher_suites.go (defaultCipherSuitesTLS13 + cipherSuitesPreferenceOrder),
 * extension order from handshake_messages.go clientHelloMsg.marshalMsg (server_name, status_request,
 * supported_groups, ec_point_formats, session_ticket, signature_algorithms, renegotiation_info,
 * extended_master_secret, ALPN, SCT, supported_versions, key_share, psk_key_exchange_modes).
 */
function goHelloSpec(sni: string | null): HelloSpec {
  const extensions = [
    ...(sni === null ? [] : [ext.sni(sni)]),
    { type: 0x0005, data: [1, 0, 0, 0, 0] },
    ext.supportedGroups(0x001d, 0x0017, 0x0018, 0x0019),
    ext.ecPointFormats(0),
    ext.empty(0x0023),
    ext.signatureAlgorithms(0x0804, 0x0403, 0x0807, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0503, 0x0603, 0x0201, 0x0203),
    { type: 0xff01, data: [0] },
    ext.empty(0x0017),
    ext.alpn('http/1.1'),
    ext.empty(0x0012),
    ext.supportedVersions(0x0304, 0x0303),
    ext.keyShare([0x001d, 32]),
    ext.pskModes(1),
  ];
  return {
    sessionId: new Array<number>(32).fill(0x5a),
    ciphers: [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc009, 0xc013, 0xc00a, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035],
    extensions,
  };
}

let cache: Map<Exclude<HelloKind, 'go'>, CapturedHello> | null = null;

/** Handshake bytes (msg_type + length + body) of the hello carried by one or more TLS records. */
function handshakeOf(record: Buffer): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 5 <= record.length) {
    const len = record.readUInt16BE(i + 3);
    parts.push(record.subarray(i + 5, i + 5 + len));
    i += 5 + len;
  }
  return Buffer.concat(parts);
}

/** The ClientHello body with its server_name extension replaced (or dropped when `sni` is null). */
export function readdressHelloBody(body: Buffer, sni: string | null): Buffer {
  let i = 2 + 32; // legacy_version, random
  i += 1 + body.readUInt8(i); // session id
  i += 2 + body.readUInt16BE(i); // cipher suites
  i += 1 + body.readUInt8(i); // compression methods
  const head = body.subarray(0, i);
  const extEnd = i + 2 + body.readUInt16BE(i);
  let j = i + 2;
  const out: Buffer[] = [];
  let sawSni = false;
  const sniExt = (name: string): Buffer => {
    const host = Buffer.from(name, 'latin1');
    const b = Buffer.alloc(4 + 2 + 3 + host.length);
    b.writeUInt16BE(0x0000, 0);
    b.writeUInt16BE(2 + 3 + host.length, 2);
    b.writeUInt16BE(3 + host.length, 4); // server_name_list length
    b.writeUInt8(0, 6); // host_name
    b.writeUInt16BE(host.length, 7);
    host.copy(b, 9);
    return b;
  };
  while (j < extEnd) {
    const type = body.readUInt16BE(j);
    const len = body.readUInt16BE(j + 2);
    const whole = body.subarray(j, j + 4 + len);
    if (type === 0x0000) {
      sawSni = true;
      if (sni !== null) out.push(sniExt(sni));
    } else {
      out.push(whole);
    }
    j += 4 + len;
  }
  // A capture without SNI (none in our set) gets one at the front, where most stacks put it.
  if (!sawSni && sni !== null) out.unshift(sniExt(sni));
  const exts = Buffer.concat(out);
  const extLen = Buffer.alloc(2);
  extLen.writeUInt16BE(exts.length, 0);
  return Buffer.concat([head, extLen, exts]);
}

/** A complete ClientHello record (or records) for `kind`, addressed to `sni` (null: no server_name). */
export function clientHello(kind: HelloKind, sni: string | null): Buffer {
  if (kind === 'go') return Buffer.from(frameRecords(buildHandshake(buildHelloBody(goHelloSpec(sni)))));
  cache ??= captured();
  const row = cache.get(kind);
  if (row === undefined) throw new Error(`unknown hello kind ${kind}`);
  const handshake = handshakeOf(Buffer.from(row.recordHex, 'hex'));
  const body = readdressHelloBody(handshake.subarray(4), sni);
  return Buffer.from(frameRecords(buildHandshake([...body])));
}

/** TLS 1.2/1.3 application_data records (RFC 8446 §5.2) holding `size` opaque bytes from `fill`. */
export function appDataRecords(size: number, fill: (n: number) => Buffer): Buffer {
  const out: Buffer[] = [];
  for (let left = size; left > 0; ) {
    const n = Math.min(left, 16_384);
    const head = Buffer.from([0x17, 0x03, 0x03, (n >> 8) & 0xff, n & 0xff]);
    out.push(head, fill(n));
    left -= n;
  }
  return Buffer.concat(out);
}

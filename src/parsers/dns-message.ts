/**
 * DNS messages (RFC 1035 §4.1), pure and synchronous over complete bytes (one UDP datagram, or one TCP
 * message without its two-byte length prefix).
 *
 * `inspectDnsMessage` walks the whole message once, bounds-checking every read, and gives the hot path what it
 * needs without building objects per record: the header, the questions, the EDNS OPT record and the answer
 * records. `decodeDnsMessage` runs the same walk first and only then hands the bytes to `dns-packet`, whose own
 * decoder trusts the header counts (a 24-byte packet can decode into 65,535 junk answers, DEPENDENCIES.md).
 *
 * Name decoding follows mitmproxy's `net/dns/domain_names.py`: a compression pointer must point strictly before
 * the label that holds it (RFC 1035 §4.1.4 "a prior occurrence"), so following pointers always terminates, and
 * a name is at most 255 octets (RFC 1035 §3.1) however it is spelled on the wire.
 *
 * The encoders build the answers the forwarder gives on its own (FORMERR, SERVFAIL, NXDOMAIN, REFUSED and
 * sinkhole answers): they echo the ID, the opcode, RD and the question bytes as received, and carry an OPT
 * record when the query had one (RFC 6891 §7).
 */
import dnsPacket from 'dns-packet';
import type { DecodedPacket } from 'dns-packet';
import { isIPv4, isIPv6 } from 'node:net';
import { formatIPv6Bytes } from '../net/address-class.js';

export const DNS_HEADER_LENGTH = 12;
/** RFC 1035 §2.3.4: the largest UDP payload without EDNS. */
export const CLASSIC_UDP_SIZE = 512;
/** RFC 1035 §3.1: "the total length of a domain name … is restricted to 255 octets or less". */
const MAX_NAME_OCTETS = 255;
/** The smallest question: root name (1) + type (2) + class (2). */
const MIN_QUESTION_OCTETS = 5;
/** The smallest resource record: root name (1) + type, class (4) + TTL (4) + RDLENGTH (2). */
const MIN_RR_OCTETS = 11;

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, NULL: 10, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, DNAME: 39, OPT: 41, ANY: 255 } as const;
export const CLASS_IN = 1;

/** RFC 1035 §4.1.1, RFC 6895 §2.3. */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = (typeof RCODE)[keyof typeof RCODE];
const RCODE_NAMES: readonly string[] = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE', 'DSOTYPENI'];
const RCODE_BADVERS = 16;

/** Header flag bits (RFC 1035 §4.1.1). */
const FLAG_QR = 0x8000;
const FLAG_AA = 0x0400;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const OPCODE_MASK = 0x7800;
/** RFC 3225 §3: the DNSSEC OK bit in the OPT record's TTL field. */
const EDNS_DO = 0x8000;
/** RFC 7871 §6: the EDNS Client Subnet option. */
const EDNS_OPTION_CLIENT_SUBNET = 8;
/** RFC 2931 SIG(0) and RFC 8945 TSIG: records that sign one message for one client. */
const TYPE_SIG = 24;
const TYPE_TSIG = 250;
/** What the forwarder advertises in its own OPT records (DNS Flag Day 2020 size). */
export const EDNS_UDP_SIZE = 1232;

/** Mnemonics of the types a flow record is likely to show; others print as `TYPE123` (RFC 3597 §5). */
const TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [1, 'A'], [2, 'NS'], [5, 'CNAME'], [6, 'SOA'], [10, 'NULL'], [12, 'PTR'], [13, 'HINFO'], [15, 'MX'], [16, 'TXT'],
  [17, 'RP'], [18, 'AFSDB'], [25, 'KEY'], [28, 'AAAA'], [29, 'LOC'], [33, 'SRV'], [35, 'NAPTR'], [36, 'KX'],
  [37, 'CERT'], [39, 'DNAME'], [41, 'OPT'], [42, 'APL'], [43, 'DS'], [44, 'SSHFP'], [45, 'IPSECKEY'], [46, 'RRSIG'],
  [47, 'NSEC'], [48, 'DNSKEY'], [49, 'DHCID'], [50, 'NSEC3'], [51, 'NSEC3PARAM'], [52, 'TLSA'], [53, 'SMIMEA'],
  [55, 'HIP'], [59, 'CDS'], [60, 'CDNSKEY'], [61, 'OPENPGPKEY'], [62, 'CSYNC'], [63, 'ZONEMD'], [64, 'SVCB'],
  [65, 'HTTPS'], [99, 'SPF'], [108, 'EUI48'], [109, 'EUI64'], [249, 'TKEY'], [250, 'TSIG'], [251, 'IXFR'],
  [252, 'AXFR'], [255, 'ANY'], [256, 'URI'], [257, 'CAA'],
]);
const TYPE_NUMBERS: ReadonlyMap<string, number> = new Map([...TYPE_NAMES].map(([n, s]) => [s, n]));

export function typeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `TYPE${type}`;
}

/** The number of a type mnemonic (`A`, `TXT`, `TYPE65`), or undefined. */
export function typeNumber(name: string): number | undefined {
  const upper = name.toUpperCase();
  const known = TYPE_NUMBERS.get(upper);
  if (known !== undefined) return known;
  const m = /^TYPE(\d{1,5})$/.exec(upper);
  const n = m?.[1] === undefined ? Number.NaN : Number(m[1]);
  return n <= 0xffff ? n : undefined;
}

export function rcodeName(rcode: number): string {
  if (rcode === RCODE_BADVERS) return 'BADVERS';
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

/** A message that is not valid DNS: names the offset and the field, and carries the header when one was read. */
export class DnsParseError extends Error {
  readonly offset: number;
  readonly field: string;
  readonly header: DnsHeader | null;

  constructor(offset: number, field: string, reason: string, header: DnsHeader | null) {
    super(`${field} at offset ${offset}: ${reason}`);
    this.name = 'DnsParseError';
    this.offset = offset;
    this.field = field;
    this.header = header;
  }
}

export interface DnsHeader {
  readonly id: number;
  readonly flags: number;
  readonly isResponse: boolean;
  readonly opcode: number;
  readonly truncated: boolean;
  readonly recursionDesired: boolean;
  /** The 4-bit header RCODE (the OPT record may extend it, RFC 6891 §6.1.3). */
  readonly rcode: number;
  readonly qdcount: number;
  readonly ancount: number;
  readonly nscount: number;
  readonly arcount: number;
}

export interface DnsQuestion {
  /** Lower-case, no trailing dot, `.` for the root; printable ASCII kept, `.`, `\` and other bytes escaped as `\DDD` (RFC 4343 §2.1). */
  readonly name: string;
  readonly type: number;
  readonly qclass: number;
}

/** The EDNS(0) OPT pseudo-record (RFC 6891 §6.1.2). */
export interface DnsOpt {
  /** Requestor's UDP payload size; values below 512 are treated as 512 (RFC 6891 §6.2.5). */
  readonly udpSize: number;
  readonly version: number;
  readonly dnssecOk: boolean;
  /** Upper 8 bits of the extended RCODE. */
  readonly extendedRcode: number;
  /**
   * The OPT carries an EDNS Client Subnet option (RFC 7871 §7.1: the answer may be tailored to that subnet), or
   * an option list that cannot be read to the end.
   */
  readonly clientSubnet: boolean;
}

/** One record of the answer section, as a flow record shows it (a type alias: it is a flow field value). */
export type DnsAnswer = {
  readonly name: string;
  readonly type: string;
  readonly ttl: number;
  /** Presentation form: an address, a name, `10 mx.example`, the TXT strings, or RFC 3597 `\# n hex`. */
  readonly data: string;
};

export interface DnsMessageView {
  readonly header: DnsHeader;
  readonly questions: readonly DnsQuestion[];
  /** Offset just past the question section: bytes [12, questionEnd) are the questions as received. */
  readonly questionEnd: number;
  readonly opt: DnsOpt | null;
  /** The full RCODE: header bits plus the OPT's extended bits. */
  readonly rcode: number;
  /** Answer-section records (empty unless `withAnswers`). */
  readonly answers: readonly DnsAnswer[];
}

export function readDnsHeader(buf: Uint8Array): DnsHeader {
  if (buf.length < DNS_HEADER_LENGTH) {
    throw new DnsParseError(buf.length, 'header', `message is ${buf.length} bytes, a header needs ${DNS_HEADER_LENGTH}`, null);
  }
  const flags = u16(buf, 2);
  return {
    id: u16(buf, 0),
    flags,
    isResponse: (flags & FLAG_QR) !== 0,
    opcode: (flags & OPCODE_MASK) >>> 11,
    truncated: (flags & FLAG_TC) !== 0,
    recursionDesired: (flags & FLAG_RD) !== 0,
    rcode: flags & 0x000f,
    qdcount: u16(buf, 4),
    ancount: u16(buf, 6),
    nscount: u16(buf, 8),
    arcount: u16(buf, 10),
  };
}

function u16(buf: Uint8Array, at: number): number {
  return ((buf[at] as number) << 8) | (buf[at + 1] as number);
}

function u32(buf: Uint8Array, at: number): number {
  return (((buf[at] as number) << 24) | ((buf[at + 1] as number) << 16) | ((buf[at + 2] as number) << 8) | (buf[at + 3] as number)) >>> 0;
}

/** Presentation-form text of one name is built here, then read out as one string (≤ 255 octets, ≤ 4 characters each). */
const NAME_TEXT = Buffer.allocUnsafe(MAX_NAME_OCTETS * 4);
/** Decimal text of every byte value, for dotted-quad addresses. */
const DECIMAL: readonly string[] = Array.from({ length: 256 }, (_, i) => String(i));
const SECTION_NAMES = ['answer', 'authority', 'additional'] as const;
const ANSWER = 0;
const AUTHORITY = 1;
const ADDITIONAL = 2;

/** A bounds-checked walk over one message; every failure names its offset and field. */
class Walker {
  readonly buf: Uint8Array;
  header: DnsHeader | null = null;
  /** Where the name being read ends in the message (the byte after its terminator or first pointer). */
  nameEnd = 0;
  /**
   * Where the walk is (-1: the questions, else a SECTION_NAMES index) and which entry of that section: kept as
   * numbers, so the field name (`answer record 2 rdata`) is only spelled out when something fails.
   */
  section = -1;
  index = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  field(part: string): string {
    const entry = this.section < 0 ? `question ${this.index}` : `${SECTION_NAMES[this.section] ?? 'record'} record ${this.index}`;
    return part === '' ? entry : `${entry} ${part}`;
  }

  /** Fails at the current entry; `part` completes the field name ('name', 'rdata' …; '' for the entry itself). */
  fail(offset: number, part: string, reason: string): never {
    throw new DnsParseError(offset, this.field(part), reason, this.header);
  }

  need(offset: number, n: number, part: string): void {
    if (offset + n > this.buf.length) this.fail(offset, part, `needs ${n} bytes, ${Math.max(0, this.buf.length - offset)} left`);
  }

  /**
   * Reads the name at `start` and returns its text (when `text`; '.' otherwise), setting `nameEnd`. RFC 1035
   * §4.1.4 pointers must point before the label that holds them; mitmproxy's domain_names.py guards the same way.
   */
  readName(start: number, part: string, text: boolean): string {
    const buf = this.buf;
    let at = start;
    let labelsStart = start;
    let octets = 1; // the root label
    let end = -1;
    let chars = 0;
    for (;;) {
      if (at >= buf.length) this.fail(at, part, 'name runs past the end of the message');
      const len = buf[at] as number;
      if (len === 0) {
        if (end === -1) end = at + 1;
        break;
      }
      const kind = len & 0xc0;
      if (kind === 0xc0) {
        this.need(at, 2, part);
        const target = ((len & 0x3f) << 8) | (buf[at + 1] as number);
        if (end === -1) end = at + 2;
        // Only backwards, and before where this run of labels began: a loop can never close.
        if (target >= labelsStart) this.fail(at, part, `compression pointer to ${target} does not point to an earlier name`);
        at = target;
        labelsStart = target;
        continue;
      }
      // 0x40 and 0x80: extended label types (RFC 6891 §5 deprecates them); nobody sends them legitimately.
      if (kind !== 0) this.fail(at, part, `label type 0x${kind.toString(16)} is not supported`);
      this.need(at + 1, len, part);
      octets += len + 1;
      if (octets > MAX_NAME_OCTETS) this.fail(at, part, `name is longer than ${MAX_NAME_OCTETS} octets`);
      if (text) {
        if (chars > 0) NAME_TEXT[chars++] = 0x2e;
        chars = writeLabelText(buf, at + 1, len, chars);
      }
      at += 1 + len;
    }
    this.nameEnd = end;
    // One string per name, read from the scratch bytes (no string per label, no concatenation).
    return chars === 0 ? '.' : NAME_TEXT.toString('latin1', 0, chars);
  }
}

/**
 * One label in presentation form into NAME_TEXT from `chars` on, lower-cased: printable ASCII as it is
 * (Sysmon's QueryName keeps `=`, `+`, `/` of base64 labels the same way, so the two join), `.` and `\` and every
 * other byte as `\DDD` (RFC 4343 §2.1). Returns where the text now ends.
 */
function writeLabelText(buf: Uint8Array, start: number, len: number, chars: number): number {
  let n = chars;
  for (let i = start; i < start + len; i++) {
    const c = buf[i] as number;
    if (c >= 0x41 && c <= 0x5a) NAME_TEXT[n++] = c | 0x20;
    else if (c >= 0x21 && c <= 0x7e && c !== 0x2e && c !== 0x5c) NAME_TEXT[n++] = c;
    else {
      NAME_TEXT[n++] = 0x5c;
      NAME_TEXT[n++] = 0x30 + Math.floor(c / 100);
      NAME_TEXT[n++] = 0x30 + (Math.floor(c / 10) % 10);
      NAME_TEXT[n++] = 0x30 + (c % 10);
    }
  }
  return n;
}

/**
 * Whether an OPT record's options (RFC 6891 §6.1.2: code, length, data, repeated) hold `code`. A list that runs
 * past the RDATA counts as holding it: whoever asks wants to be careful about that option.
 */
function hasOption(buf: Uint8Array, start: number, len: number, code: number): boolean {
  let at = start;
  const end = start + len;
  while (at < end) {
    if (at + 4 > end) return true;
    if (u16(buf, at) === code) return true;
    at += 4 + u16(buf, at + 2);
  }
  return at !== end;
}

/**
 * Validates a whole message and returns its view. Throws DnsParseError naming the offset and field of the
 * first problem. `withAnswers` formats the answer section for flow records (responses only).
 */
export function inspectDnsMessage(buf: Uint8Array, opts: { withAnswers?: boolean } = {}): DnsMessageView {
  const w = new Walker(buf);
  const header = readDnsHeader(buf);
  w.header = header;
  const { qdcount, ancount, nscount, arcount } = header;
  // The counts must fit the bytes before anything is decoded: every question needs 5 bytes, every record 11.
  const minimum = DNS_HEADER_LENGTH + qdcount * MIN_QUESTION_OCTETS + (ancount + nscount + arcount) * MIN_RR_OCTETS;
  if (minimum > buf.length) {
    throw new DnsParseError(4, 'header counts', `QD=${qdcount} AN=${ancount} NS=${nscount} AR=${arcount} need at least ${minimum} bytes, the message has ${buf.length}`, header);
  }
  let at = DNS_HEADER_LENGTH;
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < qdcount; i++) {
    w.index = i;
    const name = w.readName(at, 'name', true);
    at = w.nameEnd;
    w.need(at, 4, 'type/class');
    questions.push({ name, type: u16(buf, at), qclass: u16(buf, at + 2) });
    at += 4;
  }
  const questionEnd = at;
  let opt: DnsOpt | null = null;
  const answers: DnsAnswer[] = [];
  const withAnswers = opts.withAnswers === true;
  const total = ancount + nscount + arcount;
  for (let i = 0; i < total; i++) {
    const section = i < ancount ? ANSWER : i < ancount + nscount ? AUTHORITY : ADDITIONAL;
    w.section = section;
    w.index = section === ANSWER ? i : section === AUTHORITY ? i - ancount : i - ancount - nscount;
    const nameStart = at;
    const wantText = withAnswers && section === ANSWER;
    const name = w.readName(at, 'name', wantText);
    at = w.nameEnd;
    w.need(at, 10, 'fixed fields');
    const type = u16(buf, at);
    const rrClass = u16(buf, at + 2);
    const ttl = u32(buf, at + 4);
    const rdlength = u16(buf, at + 8);
    at += 10;
    w.need(at, rdlength, 'rdata');
    if (type === TYPE.OPT) {
      // RFC 6891 §6.1.1: only in the additional section, owner is the root, at most one per message.
      if (section !== ADDITIONAL) w.fail(nameStart, '', 'OPT record outside the additional section');
      if (buf[nameStart] !== 0) w.fail(nameStart, 'name', 'OPT record owner is not the root');
      if (opt !== null) w.fail(nameStart, '', 'more than one OPT record');
      opt = {
        udpSize: Math.max(CLASSIC_UDP_SIZE, rrClass),
        extendedRcode: ttl >>> 24,
        version: (ttl >>> 16) & 0xff,
        dnssecOk: (ttl & EDNS_DO) !== 0,
        clientSubnet: hasOption(buf, at, rdlength, EDNS_OPTION_CLIENT_SUBNET),
      };
    } else if (wantText) {
      answers.push({ name, type: typeName(type), ttl, data: rdataText(w, type, at, rdlength) });
    }
    at += rdlength;
  }
  // Bytes after the last record are ignored (RFC 1035 does not forbid padding; many stacks send it).
  const rcode = opt === null ? header.rcode : (opt.extendedRcode << 4) | header.rcode;
  return { header, questions, questionEnd, opt, rcode, answers };
}

/** RDATA in presentation form for the types a record reader cares about; others as RFC 3597 §5 `\# len hex`. */
function rdataText(w: Walker, type: number, at: number, len: number): string {
  const buf = w.buf;
  switch (type) {
    case TYPE.A:
      if (len === 4) return `${DECIMAL[buf[at] as number]}.${DECIMAL[buf[at + 1] as number]}.${DECIMAL[buf[at + 2] as number]}.${DECIMAL[buf[at + 3] as number]}`;
      break;
    case TYPE.AAAA:
      if (len === 16) return formatIPv6Bytes(buf, at);
      break;
    case TYPE.CNAME:
    case TYPE.NS:
    case TYPE.PTR:
    case TYPE.DNAME: {
      const name = w.readName(at, 'rdata name', true);
      if (w.nameEnd === at + len) return name;
      break;
    }
    case TYPE.MX:
      if (len >= 3) {
        const name = w.readName(at + 2, 'rdata exchange', true);
        if (w.nameEnd === at + len) return `${u16(buf, at)} ${name}`;
      }
      break;
    case TYPE.TXT: {
      // RFC 1035 §3.3.14: one or more <character-string>s.
      const parts: string[] = [];
      let p = at;
      while (p < at + len) {
        const n = buf[p] as number;
        if (p + 1 + n > at + len) return genericRdata(buf, at, len);
        parts.push(Buffer.from(buf.buffer, buf.byteOffset + p + 1, n).toString('latin1'));
        p += 1 + n;
      }
      return parts.join('');
    }
    default:
      break;
  }
  return genericRdata(buf, at, len);
}

function genericRdata(buf: Uint8Array, at: number, len: number): string {
  const shown = Math.min(len, 64); // a flow record is no place for a 64 KiB blob
  const hex = Buffer.from(buf.buffer, buf.byteOffset + at, shown).toString('hex');
  return `\\# ${len} ${hex}${shown < len ? '…' : ''}`;
}

/** Validates, then decodes with dns-packet (all sections, every rdata type it knows). Throws DnsParseError. */
export function decodeDnsMessage(buf: Uint8Array): DecodedPacket {
  inspectDnsMessage(buf);
  try {
    return dnsPacket.decode(Buffer.from(buf.buffer, buf.byteOffset, buf.length));
  } catch (err) {
    const header = readDnsHeader(buf);
    throw new DnsParseError(DNS_HEADER_LENGTH, 'record data', err instanceof Error ? err.message : String(err), header);
  }
}

/** A query the forwarder will act on: a view whose single question is known. */
export interface DnsQuery extends DnsMessageView {
  readonly question: DnsQuestion;
}

/**
 * A query from a client: QR clear, standard QUERY opcode, exactly one question (RFC 9619: "In the DNS,
 * QDCOUNT is (usually) one"). Throws DnsParseError; `header` is set whenever a FORMERR can be sent back.
 */
export function decodeDnsQuery(buf: Uint8Array): DnsQuery {
  const view = inspectDnsMessage(buf);
  const question = view.questions[0];
  if (view.header.isResponse) throw new DnsParseError(2, 'header flags', 'QR is set: a response, not a query', view.header);
  if (view.header.opcode !== 0) throw new DnsParseError(2, 'header opcode', `opcode ${view.header.opcode} is not QUERY`, view.header);
  if (view.questions.length !== 1 || question === undefined) {
    throw new DnsParseError(4, 'header QDCOUNT', `a query needs exactly one question, has ${view.questions.length}`, view.header);
  }
  // Every field listed (no spread): one object of one shape per query.
  return { header: view.header, questions: view.questions, questionEnd: view.questionEnd, opt: view.opt, rcode: view.rcode, answers: view.answers, question };
}

/** Where a validated message keeps its records: what a cache needs to store it and to age it on the way out. */
export interface DnsRecordLayout {
  readonly header: DnsHeader;
  readonly questions: readonly DnsQuestion[];
  /** Offset just past the question section. */
  readonly questionEnd: number;
  /** The full RCODE (header and OPT bits). */
  readonly rcode: number;
  /** Offsets of the TTL fields of every record but the OPT (whose TTL field holds flags), in message order. */
  readonly ttlOffsets: readonly number[];
  /**
   * The smallest of those TTLs, seconds; values with the top bit set count as 0 (RFC 2181 §8). Infinity when the
   * message has no record but the OPT.
   */
  readonly minTtl: number;
  /** The MINIMUM field of the first SOA record in the authority section (RFC 2308 §4, §5), or null. */
  readonly soaMinimum: number | null;
  /** The OPT record: the offset of its RDLENGTH field, and the offset just past it; null when there is none. */
  readonly opt: { readonly rdlengthAt: number; readonly end: number } | null;
  /** Offset just past the last record (bytes after it are padding). */
  readonly end: number;
  /** A TSIG or SIG(0) record signs the message for the one client that asked (RFC 8945 §5.3, RFC 2931 §3). */
  readonly signed: boolean;
}

/** RFC 2181 §8: a TTL is an unsigned 31-bit number; a value with the top bit set is to be treated as zero. */
const MAX_TTL = 0x7fffffff;

/** The record layout of a message (validating it on the way, like inspectDnsMessage). Throws DnsParseError. */
export function readRecordLayout(buf: Uint8Array): DnsRecordLayout {
  const view = inspectDnsMessage(buf);
  const w = new Walker(buf);
  w.header = view.header;
  const { ancount, nscount, arcount } = view.header;
  const ttlOffsets: number[] = [];
  let minTtl = Infinity;
  let soaMinimum: number | null = null;
  let opt: { rdlengthAt: number; end: number } | null = null;
  let signed = false;
  let at = view.questionEnd;
  const total = ancount + nscount + arcount;
  for (let i = 0; i < total; i++) {
    const section = i < ancount ? ANSWER : i < ancount + nscount ? AUTHORITY : ADDITIONAL;
    w.section = section;
    w.index = section === ANSWER ? i : section === AUTHORITY ? i - ancount : i - ancount - nscount;
    w.readName(at, 'name', false);
    at = w.nameEnd;
    const type = u16(buf, at);
    const rdlength = u16(buf, at + 8);
    const rdata = at + 10;
    if (type === TYPE.OPT) {
      opt = { rdlengthAt: at + 8, end: rdata + rdlength };
    } else {
      const raw = u32(buf, at + 4);
      const ttl = raw > MAX_TTL ? 0 : raw;
      ttlOffsets.push(at + 4);
      if (ttl < minTtl) minTtl = ttl;
      if (type === TYPE_TSIG || type === TYPE_SIG) signed = true;
      // RFC 1035 §3.3.13: MNAME, RNAME, then SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM — the last four bytes.
      if (type === TYPE.SOA && section === AUTHORITY && soaMinimum === null && rdlength >= 22) soaMinimum = Math.min(u32(buf, rdata + rdlength - 4), MAX_TTL);
    }
    at = rdata + rdlength;
  }
  return { header: view.header, questions: view.questions, questionEnd: view.questionEnd, rcode: view.rcode, ttlOffsets, minTtl, soaMinimum, opt, end: at, signed };
}

// ---- encoders ----------------------------------------------------------------------------------------------

/** The OPT record the forwarder adds to its own answers when the query had one (RFC 6891 §7). */
function optRecord(dnssecOk: boolean, extendedRcode = 0): Buffer {
  const rr = Buffer.alloc(11);
  rr[0] = 0; // root owner
  rr.writeUInt16BE(TYPE.OPT, 1);
  rr.writeUInt16BE(EDNS_UDP_SIZE, 3);
  rr.writeUInt32BE(((extendedRcode & 0xff) << 24) | (dnssecOk ? EDNS_DO : 0), 5);
  rr.writeUInt16BE(0, 9); // no options
  return rr;
}

function responseHeader(query: DnsHeader, rcode: number, counts: { qd: number; an: number; ar: number }, extra = 0): Buffer {
  const h = Buffer.alloc(DNS_HEADER_LENGTH);
  h.writeUInt16BE(query.id, 0);
  // QR, the query's opcode and RD echoed (RFC 1035 §4.1.1), RA: we recurse for the client.
  const flags = FLAG_QR | (query.flags & (OPCODE_MASK | FLAG_RD)) | FLAG_RA | extra | (rcode & 0x0f);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(counts.qd, 4);
  h.writeUInt16BE(counts.an, 6);
  h.writeUInt16BE(0, 8);
  h.writeUInt16BE(counts.ar, 10);
  return h;
}

/**
 * An error answer to a query whose question was read: the question echoed, an OPT when the query had one.
 * RFC 6891 §7: "If the query had an OPT record, the response MUST have one".
 */
export function encodeErrorResponse(raw: Uint8Array, query: DnsQuery, rcode: Rcode): Buffer {
  const question = Buffer.from(raw.buffer, raw.byteOffset + DNS_HEADER_LENGTH, query.questionEnd - DNS_HEADER_LENGTH);
  const withOpt = query.opt !== null;
  const parts = [responseHeader(query.header, rcode, { qd: 1, an: 0, ar: withOpt ? 1 : 0 }), question];
  if (withOpt) parts.push(optRecord(query.opt?.dnssecOk === true));
  return Buffer.concat(parts);
}

/**
 * FORMERR (or NOTIMP for an opcode we do not serve) for a message whose header could be read but not the rest: the header only (RFC 1035 §4.1.1), no
 * question or OPT echoed, since neither could be trusted (RFC 6891 §7 allows a FORMERR without OPT).
 */
export function encodeFormErr(header: DnsHeader, rcode: Rcode = RCODE.FORMERR): Buffer {
  return responseHeader(header, rcode, { qd: 0, an: 0, ar: 0 });
}

/** A BADVERS answer for an EDNS version we do not speak (RFC 6891 §6.1.3). */
export function encodeBadVers(raw: Uint8Array, query: DnsQuery): Buffer {
  const question = Buffer.from(raw.buffer, raw.byteOffset + DNS_HEADER_LENGTH, query.questionEnd - DNS_HEADER_LENGTH);
  return Buffer.concat([
    responseHeader(query.header, RCODE_BADVERS & 0x0f, { qd: 1, an: 0, ar: 1 }),
    question,
    optRecord(query.opt?.dnssecOk === true, RCODE_BADVERS >>> 4),
  ]);
}

/** The records a sinkhole address gives, prepared once from the configured address. */
export interface Sinkhole {
  readonly address: string;
  /** RDATA for A queries, or null when the address cannot answer them. */
  readonly a: Buffer | null;
  readonly aaaa: Buffer | null;
}

/**
 * The sinkhole's records: an IPv4 address answers A, an IPv6 address answers AAAA. The unspecified addresses
 * answer both families, so a blocked name never falls through to the other family: 0.0.0.0 also answers AAAA
 * with ::, and :: answers A with 0.0.0.0.
 */
export function prepareSinkhole(address: string): Sinkhole {
  if (isIPv4(address)) {
    const a = Buffer.from(address.split('.').map(Number));
    return { address, a, aaaa: address === '0.0.0.0' ? Buffer.alloc(16) : null };
  }
  if (isIPv6(address)) {
    const aaaa = ipv6Bytes(address);
    return { address, a: aaaa.every((b) => b === 0) ? Buffer.alloc(4) : null, aaaa };
  }
  throw new TypeError(`sinkhole ${JSON.stringify(address)} is not an IP address`);
}

/** The record a sinkhole gives for a question, or null (NODATA) when it has none of that type. */
export function sinkholeRecord(question: DnsQuestion, sinkhole: Sinkhole): { readonly type: 'A' | 'AAAA'; readonly rdata: Buffer; readonly data: string } | null {
  const { type, qclass } = question;
  if (qclass !== CLASS_IN && qclass !== 255) return null;
  if ((type === TYPE.A || type === TYPE.ANY) && sinkhole.a !== null) return { type: 'A', rdata: sinkhole.a, data: [...sinkhole.a].join('.') };
  if ((type === TYPE.AAAA || type === TYPE.ANY) && sinkhole.aaaa !== null) return { type: 'AAAA', rdata: sinkhole.aaaa, data: formatIPv6Bytes(sinkhole.aaaa, 0) };
  return null;
}

/**
 * The sinkhole answer for a blocked name: an A (or AAAA) record with the sinkhole address, owned by the
 * question's name through a pointer to offset 12 (RFC 1035 §4.1.4). A type the sinkhole cannot answer gets
 * NOERROR with no records (NODATA, RFC 2308 §2.2), so the client stops asking instead of trying elsewhere.
 */
export function encodeSinkholeResponse(raw: Uint8Array, query: DnsQuery, sinkhole: Sinkhole, ttl: number): Buffer {
  const record = sinkholeRecord(query.question, sinkhole);
  const question = Buffer.from(raw.buffer, raw.byteOffset + DNS_HEADER_LENGTH, query.questionEnd - DNS_HEADER_LENGTH);
  const withOpt = query.opt !== null;
  const parts = [responseHeader(query.header, RCODE.NOERROR, { qd: 1, an: record === null ? 0 : 1, ar: withOpt ? 1 : 0 }), question];
  if (record !== null) {
    const rr = Buffer.alloc(12 + record.rdata.length);
    rr.writeUInt16BE(0xc000 | DNS_HEADER_LENGTH, 0);
    rr.writeUInt16BE(record.type === 'A' ? TYPE.A : TYPE.AAAA, 2);
    rr.writeUInt16BE(CLASS_IN, 4);
    rr.writeUInt32BE(ttl >>> 0, 6);
    rr.writeUInt16BE(record.rdata.length, 10);
    record.rdata.copy(rr, 12);
    parts.push(rr);
  }
  if (withOpt) parts.push(optRecord(query.opt?.dnssecOk === true));
  return Buffer.concat(parts);
}

/** IPv6 text (validated by the config) to its 16 bytes. */
export function ipv6Bytes(address: string): Buffer {
  const out = Buffer.alloc(16);
  let text = address;
  // An embedded IPv4 tail (::ffff:192.0.2.1) becomes two groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const o = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${(((o[0] ?? 0) << 8) | (o[1] ?? 0)).toString(16)}:${(((o[2] ?? 0) << 8) | (o[3] ?? 0)).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16) & 0xffff, i * 2));
  return out;
}

/** Copies a message with another ID in its first two bytes (RFC 1035 §4.1.1). */
export function withId(msg: Uint8Array, id: number): Buffer {
  const copy = Buffer.allocUnsafe(msg.length);
  copy.set(msg);
  copy.writeUInt16BE(id & 0xffff, 0);
  return copy;
}

/**
 * A truncated version of a response for a UDP client whose payload size it exceeds: header with TC set, the
 * question, and the OPT when the query had one (RFC 2181 §9, RFC 6891 §7), so the client retries over TCP.
 */
export function encodeTruncated(raw: Uint8Array, query: DnsQuery, response: DnsMessageView): Buffer {
  const question = Buffer.from(raw.buffer, raw.byteOffset + DNS_HEADER_LENGTH, query.questionEnd - DNS_HEADER_LENGTH);
  const withOpt = query.opt !== null;
  const header = responseHeader(query.header, response.rcode & 0x0f, { qd: 1, an: 0, ar: withOpt ? 1 : 0 }, FLAG_TC | (response.header.flags & FLAG_AA));
  const parts = [header, question];
  if (withOpt) parts.push(optRecord(query.opt?.dnssecOk === true, response.rcode >>> 4));
  return Buffer.concat(parts);
}

/** Whether two questions ask the same thing (RFC 1035 §7.3: match the answer to the question; names case-insensitively). */
export function isSameQuestion(a: DnsQuestion, b: DnsQuestion): boolean {
  return a.type === b.type && a.qclass === b.qclass && a.name === b.name;
}

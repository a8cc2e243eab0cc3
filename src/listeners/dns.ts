/**
 * The DNS forwarder's listener: UDP and TCP on `dns.listen` (one port for both, RFC 7766 §5 requires TCP).
 *
 * Each query is one flow of kind `dns` through the pipeline: the question's facts are set, the policy decides at
 * stage `dns-query`, and the listener carries the decision out — block → NXDOMAIN (SPEC) or the configured
 * sinkhole answer, allow → forward upstream. The answer's facts (`dns.response_code`, `dns.answers`) go into the
 * record, its A/AAAA records into the name↔IP memory. It never evaluates the policy itself.
 *
 * With `dns.cache` on, an allowed query is looked up in the answer cache (src/actions/dns-cache.ts) before it is
 * forwarded; a hit takes the same reply, record, memory and signal path as a forwarded answer.
 *
 * Socket code only collects bytes until a message is complete (a datagram, or a length-prefixed TCP message)
 * and hands them to the pure parser. A malformed message is answered FORMERR when its header could be read and
 * it was a query, dropped otherwise, and counted either way; it never reaches the pipeline or the record log.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { createServer, isIP, isIPv6, type AddressInfo, type Server as TcpServer, type Socket as TcpSocket } from 'node:net';
import type { Flow } from '../flow/flow.js';
import type { Pipeline } from '../flow/pipeline.js';
import { builtinDecision } from '../policy/decision.js';
import type { DnsForwarder } from '../actions/forward-dns.js';
import type { DnsCache } from '../actions/dns-cache.js';
import { createDnsFrameReader, frameDnsMessage } from '../parsers/dns-framing.js';
import {
  CLASSIC_UDP_SIZE,
  DnsParseError,
  RCODE,
  decodeDnsQuery,
  encodeBadVers,
  encodeErrorResponse,
  encodeFormErr,
  encodeSinkholeResponse,
  encodeTruncated,
  rcodeName,
  sinkholeRecord,
  type DnsAnswer,
  type DnsMessageView,
  type DnsQuery,
  type Rcode,
  type Sinkhole,
} from '../parsers/dns-message.js';
import { questionFacts, setQuestionFacts } from '../enrich/dns-question.js';
import type { DnsMemory } from '../enrich/dns-memory.js';
import type { DnsSignals } from '../scoring/dns-signals.js';
import { label, type DnsTransportLabel, type Metrics } from '../observe/metrics.js';
import type { Logger } from '../observe/logger.js';
import { BUILTIN_RULES } from './proxy.js';

export interface DnsListenerOptions {
  readonly host: string;
  readonly port: number;
  /** true when the address may use the forwarder (proxy.clients). */
  readonly isAllowedClient: (ip: string) => boolean;
  /** null: blocked names get NXDOMAIN (SPEC); else the sinkhole's address. */
  readonly sinkhole: Sinkhole | null;
  /** TTL of sinkhole records, seconds. */
  readonly sinkholeTtl: number;
  /** An idle TCP connection is closed after this (RFC 7766 §6.2.3), milliseconds. */
  readonly tcpIdleMs: number;
  readonly maxTcpConnections: number;
  /** Concurrent flows (all kinds, as for the proxy); a query over it gets REFUSED. */
  readonly maxFlows: number;
}

export interface DnsListenerDeps {
  readonly pipeline: Pipeline;
  readonly forwarder: DnsForwarder;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly memory: DnsMemory | null;
  readonly signals: DnsSignals | null;
  /** The answer cache (dns.cache); null or absent: every allowed query is forwarded. */
  readonly cache?: DnsCache | null;
}

/** Longest query accepted over TCP: a query is a question and an OPT record; 16 KiB leaves room for options. */
const MAX_TCP_QUERY = 16_384;
/** Queries of one TCP connection answered concurrently (RFC 7766 §6.2.1.1 pipelining); reading pauses beyond. */
const MAX_PIPELINED = 32;
/** Answers shown in a flow record. */
const MAX_RECORDED_ANSWERS = 32;

type Send = (reply: Buffer) => void;

/** `egress.dns.cache_hit`: whether the answer came from the cache (only with dns.cache on). */
function setCacheHit(flow: Flow, hit: boolean): void {
  flow.set('egress.dns.cache_hit', hit);
}

/**
 * The listening socket sends every answer to an address it received from (rinfo.address, an IP literal): Node's
 * dgram would run it through dns.lookup, one deferred callback per answer, to learn it is an IP. Literals are
 * passed through at once; a host name (a `dns.listen` host to bind) still goes to dns.lookup.
 */
function lookupLiteral(host: string, options: LookupOneOptions, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const family = isIP(host);
  if (family !== 0) callback(null, host, family);
  else dnsLookup(host, options, callback);
}

/** Node reports IPv4 clients of a dual-stack socket as ::ffff:a.b.c.d; records and ACLs use the IPv4 form. */
function clientAddress(raw: string): string {
  return raw.startsWith('::ffff:') && raw.includes('.') ? raw.slice(7) : raw;
}

export class DnsListener {
  private readonly opts: DnsListenerOptions;
  private readonly deps: DnsListenerDeps;
  private udp: UdpSocket | null = null;
  private tcp: TcpServer | null = null;
  private readonly tcpSockets = new Set<TcpSocket>();
  private inflight = 0;
  private closing = false;
  /** UDP answers waiting for the end of this event-loop turn (queueReply). */
  private outbox: Buffer[] = [];
  private outboxPorts: number[] = [];
  private outboxAddresses: string[] = [];
  private outboxSocket: UdpSocket | null = null;
  private flushQueued = false;

  constructor(opts: DnsListenerOptions, deps: DnsListenerDeps) {
    this.opts = opts;
    this.deps = deps;
  }

  /** Binds UDP, then TCP on the same port (with port 0: the port the OS gave UDP, retried if TCP's is taken). */
  async listen(): Promise<AddressInfo> {
    const family = isIPv6(this.opts.host) ? 'udp6' : 'udp4';
    for (let attempt = 0; ; attempt++) {
      const udp = createSocket({ type: family, lookup: lookupLiteral });
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(this.opts.port, this.opts.host, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      const address = udp.address();
      const tcp = createServer((socket) => this.serveTcp(socket));
      tcp.maxConnections = this.opts.maxTcpConnections;
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen(address.port, this.opts.host, () => {
            tcp.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        udp.close();
        if (this.opts.port !== 0 || attempt >= 10) throw err;
        continue;
      }
      udp.on('message', (msg, rinfo) => this.onDatagram(udp, msg, rinfo));
      udp.on('error', (err) => this.deps.logger.error({ err }, 'DNS UDP socket error'));
      tcp.on('error', (err) => this.deps.logger.error({ err }, 'DNS TCP listener error'));
      this.udp = udp;
      this.tcp = tcp;
      return { address: address.address, family: address.family, port: address.port };
    }
  }

  /** Stop receiving, let queries in flight finish for up to `drainMs`, then close TCP connections. */
  async close(drainMs = 2000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const udp = this.udp;
    const tcp = this.tcp;
    const tcpClosed = tcp === null ? Promise.resolve() : new Promise<void>((resolve) => tcp.close(() => resolve()));
    const deadline = Date.now() + drainMs;
    while (this.inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const socket of this.tcpSockets) socket.destroy();
    if (udp !== null) await new Promise<void>((resolve) => udp.close(() => resolve()));
    await tcpClosed;
  }

  // ---- transports --------------------------------------------------------------------------------------------

  private onDatagram(udp: UdpSocket, msg: Buffer, rinfo: RemoteInfo): void {
    if (this.closing) return;
    const send: Send = (reply) => this.queueReply(udp, reply, rinfo.port, rinfo.address);
    this.handle(msg, clientAddress(rinfo.address), rinfo.port, 'udp', send);
  }

  /**
   * UDP answers go out together, once the datagrams read in this turn of the event loop have been handled
   * (setImmediate runs right after the poll phase): Node's dgram has no sendmmsg, but back-to-back sends find
   * the client still awake, where one send per query interleaved with reads wakes it every time. Measured with
   * dnsperf on a 2-CPU VM: the kernel time per answer halved. The wait is a few microseconds.
   */
  private queueReply(udp: UdpSocket, reply: Buffer, port: number, address: string): void {
    this.outbox.push(reply);
    this.outboxPorts.push(port);
    this.outboxAddresses.push(address);
    this.outboxSocket = udp;
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flushReplies);
    }
  }

  private readonly flushReplies = (): void => {
    this.flushQueued = false;
    const { outbox, outboxPorts, outboxAddresses, outboxSocket: udp } = this;
    this.outbox = [];
    this.outboxPorts = [];
    this.outboxAddresses = [];
    if (this.closing || udp === null) return;
    for (let i = 0; i < outbox.length; i++) {
      try {
        udp.send(outbox[i] as Buffer, outboxPorts[i] as number, outboxAddresses[i] as string);
      } catch (err) {
        // A closed socket or an unreachable client: the record still says what we answered.
        this.deps.logger.debug({ err }, 'DNS answer could not be sent');
      }
    }
  };

  private serveTcp(socket: TcpSocket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.tcpSockets.add(socket);
    socket.setNoDelay(true);
    // RFC 7766 §6.2.3: the server closes idle connections; the timer restarts with every read and write.
    socket.setTimeout(this.opts.tcpIdleMs, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.tcpSockets.delete(socket));
    const ip = clientAddress(socket.remoteAddress ?? '');
    const port = socket.remotePort ?? 0;
    const reader = createDnsFrameReader(MAX_TCP_QUERY);
    let pipelined = 0;
    const send: Send = (reply) => {
      if (!socket.destroyed) socket.write(frameDnsMessage(reply));
    };
    socket.on('data', (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = reader.push(chunk);
      } catch {
        // A bad length prefix: the stream cannot be resynchronised.
        label.dnsMalformed(this.deps.metrics, 'tcp', 'dropped');
        socket.destroy();
        return;
      }
      for (const msg of messages) {
        pipelined++;
        if (pipelined >= MAX_PIPELINED) socket.pause();
        this.handle(msg, ip, port, 'tcp', send, () => {
          pipelined--;
          if (socket.isPaused() && pipelined < MAX_PIPELINED && !socket.destroyed) socket.resume();
        });
      }
    });
  }

  // ---- one query ---------------------------------------------------------------------------------------------

  private handle(raw: Buffer, ip: string, port: number, transport: DnsTransportLabel, send: Send, done?: () => void): void {
    let query: DnsQuery;
    try {
      query = decodeDnsQuery(raw);
    } catch (err) {
      this.replyMalformed(err, transport, send);
      done?.();
      return;
    }
    // RFC 6891 §6.1.3: an EDNS version we do not implement gets BADVERS, with our OPT (version 0).
    if (query.opt !== null && query.opt.version > 0) {
      label.dnsMalformed(this.deps.metrics, transport, 'badvers');
      send(encodeBadVers(raw, query));
      done?.();
      return;
    }
    this.inflight++;
    this.answer(raw, query, ip, port, transport, send).then(
      () => this.answered(done),
      (err: unknown) => {
        this.deps.logger.error({ err }, 'DNS query handler failed');
        this.answered(done);
      },
    );
  }

  private answered(done: (() => void) | undefined): void {
    this.inflight--;
    done?.();
  }

  private replyMalformed(err: unknown, transport: DnsTransportLabel, send: Send): void {
    const header = err instanceof DnsParseError ? err.header : null;
    // Never answer a response (QR set): two forwarders pointed at each other would loop forever.
    if (header === null || header.isResponse) {
      label.dnsMalformed(this.deps.metrics, transport, 'dropped');
      return;
    }
    label.dnsMalformed(this.deps.metrics, transport, 'formerr');
    // RFC 1035 §4.1.1: NOTIMP for a kind of query we do not support (NOTIFY, UPDATE …), FORMERR otherwise.
    const notImplemented = err instanceof DnsParseError && err.field === 'header opcode';
    send(encodeFormErr(header, notImplemented ? RCODE.NOTIMP : RCODE.FORMERR));
  }

  private async answer(raw: Buffer, query: DnsQuery, ip: string, port: number, transport: DnsTransportLabel, send: Send): Promise<void> {
    const { pipeline, metrics } = this.deps;
    const flow = pipeline.open('dns', ip, port);
    try {
      flow.set('network.transport', transport);
      flow.set('network.protocol', 'dns');
      flow.sourceBytes = raw.length;
      const facts = questionFacts(query.question);
      setQuestionFacts(flow, facts);

      if (ip === '' || !this.opts.isAllowedClient(ip)) {
        this.refuse(flow, raw, query, send, BUILTIN_RULES.clientDenied, 'CLIENT_DENIED', `client ${ip} is not in proxy.clients`);
        return;
      }
      if (pipeline.activeCount > this.opts.maxFlows) {
        this.refuse(flow, raw, query, send, BUILTIN_RULES.capacity, 'TOO_MANY_FLOWS', `more than ${this.opts.maxFlows} concurrent flows`);
        return;
      }

      const decision = await pipeline.decide(flow, 'dns-query');
      // Fail closed: only a final allow is forwarded (a pending decision cannot happen for DNS, stages are done).
      if (!(decision.status === 'final' && decision.verdict === 'allow')) {
        this.replyBlocked(flow, raw, query, send);
        label.dns(metrics, 'block');
        return;
      }

      // After the decision, never before it: a cached answer to a blocked name is never served.
      const cache = this.deps.cache ?? null;
      const hit = cache === null ? null : cache.lookup(raw, query);
      if (hit !== null) {
        setCacheHit(flow, true);
        this.replyAnswer(flow, raw, query, ip, transport, send, hit.response, hit.view);
        return;
      }
      const result = await this.deps.forwarder.forward(raw, query.question);
      if (cache !== null) setCacheHit(flow, false);
      if (!result.ok) {
        flow.fail('DNS_UPSTREAM_FAILED', result.message);
        this.reply(flow, encodeErrorResponse(raw, query, RCODE.SERVFAIL), RCODE.SERVFAIL, [], send);
        label.dns(metrics, 'error');
        return;
      }
      this.replyAnswer(flow, raw, query, ip, transport, send, result.response, result.view);
      // Kept after the client has its answer (the cache copies what it keeps, and refuses what it must not keep).
      cache?.store(query, result.response, result.view);
    } finally {
      pipeline.end(flow);
    }
  }

  /** An answer from upstream or from the cache, to the client and into the record, the memory and the signals. */
  private replyAnswer(flow: Flow, raw: Buffer, query: DnsQuery, ip: string, transport: DnsTransportLabel, send: Send, answer: Buffer, view: DnsMessageView): void {
    const rcode = view.rcode;
    const answers = view.answers;
    let response = answer;
    // A UDP client takes at most its advertised payload size (RFC 6891 §6.2.5), else 512 (RFC 1035 §4.2.1):
    // a bigger answer (we may have fetched it over TCP) goes back truncated, and the client retries over TCP.
    if (transport === 'udp' && response.length > (query.opt?.udpSize ?? CLASSIC_UDP_SIZE)) {
      response = encodeTruncated(raw, query, view);
    }
    this.reply(flow, response, rcode, answers, send);
    this.deps.memory?.rememberAnswers(ip, query.question.name, answers);
    this.deps.signals?.observeAnswer(ip, rcodeName(rcode));
    label.dns(this.deps.metrics, 'allow');
  }

  private replyBlocked(flow: Flow, raw: Buffer, query: DnsQuery, send: Send): void {
    const sinkhole = this.opts.sinkhole;
    if (sinkhole === null) {
      this.reply(flow, encodeErrorResponse(raw, query, RCODE.NXDOMAIN), RCODE.NXDOMAIN, [], send);
      return;
    }
    // The sinkhole answers so that the follow-up connection goes to an address we watch (issue 5).
    const record = sinkholeRecord(query.question, sinkhole);
    const answers: DnsAnswer[] = record === null ? [] : [{ name: query.question.name, type: record.type, ttl: this.opts.sinkholeTtl, data: record.data }];
    this.reply(flow, encodeSinkholeResponse(raw, query, sinkhole, this.opts.sinkholeTtl), RCODE.NOERROR, answers, send);
  }

  private refuse(flow: Flow, raw: Buffer, query: DnsQuery, send: Send, ruleId: string, code: 'CLIENT_DENIED' | 'TOO_MANY_FLOWS', message: string): void {
    flow.fail(code, message);
    flow.decision = builtinDecision('block', ruleId, message);
    // RFC 1035 §4.1.1: REFUSED — "the name server refuses to perform the specified operation for policy reasons".
    this.reply(flow, encodeErrorResponse(raw, query, RCODE.REFUSED), RCODE.REFUSED, [], send);
    label.dns(this.deps.metrics, 'block');
  }

  private reply(flow: Flow, response: Buffer, rcode: number | Rcode, answers: readonly DnsAnswer[], send: Send): void {
    flow.set('dns.response_code', rcodeName(rcode));
    if (answers.length > 0) {
      flow.set('dns.answers', answers.length > MAX_RECORDED_ANSWERS ? answers.slice(0, MAX_RECORDED_ANSWERS) : answers);
    }
    flow.destinationBytes = response.length;
    try {
      send(response);
    } catch (err) {
      // A closed socket or an unreachable client: the record still says what we answered.
      this.deps.logger.debug({ err }, 'DNS answer could not be sent');
    }
  }
}

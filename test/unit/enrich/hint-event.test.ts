import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  MAX_COMMAND_LINE,
  MAX_IMAGE,
  canonicalIp,
  imageBaseName,
  normalizeHintEvent,
  type DnsHintEvent,
  type HintEvent,
  type NetworkHintEvent,
  type ProcessHintEvent,
} from '../../../src/enrich/hint-event.js';

function fixture(name: string): Array<Record<string, unknown>> {
  const text = readFileSync(new URL(`../../fixtures/telemetry/${name}`, import.meta.url), 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const otrf = fixture('sysmon-otrf-samples.jsonl');
const winlogbeat = fixture('winlogbeat-sysmon.jsonl');

function ok(raw: unknown, nowMs?: number): HintEvent {
  const r = normalizeHintEvent(raw, nowMs === undefined ? {} : { nowMs });
  if (!r.ok) throw new Error(`rejected: ${r.code} ${r.reason}`);
  return r.event;
}

function rejected(raw: unknown, nowMs?: number): { code: string; reason: string } {
  const r = normalizeHintEvent(raw, nowMs === undefined ? {} : { nowMs });
  if (r.ok) throw new Error(`accepted: ${JSON.stringify(r.event)}`);
  return r;
}

/** The OTRF line n (1-based, as in the telemetry README). */
const event = (n: number): Record<string, unknown> => otrf[n - 1] as Record<string, unknown>;

const NET = {
  EventID: 3,
  UtcTime: '2024-05-01 10:00:00.000',
  Computer: 'PC1.corp.example',
  ProcessGuid: '{11111111-2222-3333-4444-555555555555}',
  ProcessId: 4242,
  Image: 'C:\\Windows\\System32\\rundll32.exe',
  User: 'CORP\\alice',
  Protocol: 'tcp',
  Initiated: 'true',
  SourceIp: '10.1.2.3',
  SourcePort: 50000,
  DestinationIp: '10.9.9.9',
  DestinationPort: 3128,
};

describe('normalizeHintEvent: raw Sysmon (OTRF Security-Datasets)', () => {
  it('accepts all 13 real events and keeps their kinds', () => {
    const kinds = otrf.map((e) => ok(e).kind);
    expect(kinds).toEqual(['process', 'network', 'process', 'network', 'network', 'process', 'network', 'process', 'network', 'dns', 'network', 'process', 'network']);
  });

  it('reads an EID 3 with string values: UtcTime as UTC, ports and pid as numbers, user split at the backslash', () => {
    const e = ok(event(2)) as NetworkHintEvent;
    expect(e).toMatchObject({
      kind: 'network',
      eventId: 3,
      shape: 'sysmon',
      timeMs: Date.UTC(2020, 6, 22, 3, 27, 52, 839),
      host: 'workstation5.mordor.local', // from Hostname, lower-cased
      processGuid: '{b59756a9-b238-5f17-5207-000000000400}',
      pid: 9384,
      image: 'C:\\Windows\\System32\\regsvr32.exe',
      processName: 'regsvr32.exe',
      user: 'pgustavo',
      userDomain: 'MORDOR',
      protocol: 'tcp',
      sourceIp: '172.18.39.5',
      sourcePort: 50247,
      destinationIp: '10.10.10.5',
      destinationPort: 8444,
      destinationHostname: null, // "-" means absent
      initiated: true,
    });
  });

  it('reads an EID 1: parent, command lines, parent guid', () => {
    const e = ok(event(1)) as ProcessHintEvent;
    expect(e.kind).toBe('process');
    expect(e.parentImage).toBe('C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe');
    expect(e.parentName).toBe('powershell.exe');
    expect(e.parentProcessGuid).toBe('{b59756a9-89dc-5f17-1006-000000000400}');
    expect(e.commandLine).toContain('/i:http://10.10.10.5:8444/launcher.sct scrobj.dll');
    expect(e.parentCommandLine).toBe('"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" ');
    expect(e.commandLineTruncated).toBe(false);
    expect(e.hashes).toBeNull();
  });

  it('event 9: "<unknown process>", zero guid and User "-" become null, the pid 10076 stays', () => {
    const e = ok(event(9)) as NetworkHintEvent;
    expect(e).toMatchObject({ image: null, processName: null, processGuid: null, user: null, userDomain: null, pid: 10076 });
    // …and it is the pid of mshta in event 8, whose EID 1 is 0.5 s later (the store joins them by host + pid).
    const mshta = ok(event(8)) as ProcessHintEvent;
    expect(mshta.pid).toBe(e.pid);
    expect(mshta.host).toBe(e.host);
    expect(mshta.timeMs - e.timeMs).toBe(524);
  });

  it('event 10: EID 22 with query name, status and QueryResults parsed to IPs (CNAME skipped, ::ffff: mapped)', () => {
    const e = ok(event(10)) as DnsHintEvent;
    expect(e).toMatchObject({ kind: 'dns', queryName: 'raw.githubusercontent.com', queryStatus: 0, queryResults: ['151.101.248.133'], pid: 10076, image: null });
  });

  it('event 11 has no ProcessId: still useful, pid null', () => {
    const e = ok(event(11)) as NetworkHintEvent;
    expect(e.pid).toBeNull();
    expect(e.processName).toBe('installutil.exe');
    expect(e.processGuid).toBe('{b34bc01c-add5-5f66-2210-000000000400}');
  });

  it('the C2 destinations of events 2, 4, 5, 7, 11 and 13 are RFC 1918 addresses, read as such', () => {
    const dests = [2, 4, 5, 7, 11, 13].map((n) => (ok(event(n)) as NetworkHintEvent).destinationIp);
    expect(dests).toEqual(['10.10.10.5', '10.10.10.5', '10.10.10.5', '10.10.10.5', '10.10.10.5', '10.0.5.13']);
  });

  it('host comes from Computer when present (Sysmon EVTX header), else Hostname', () => {
    expect(ok({ ...NET, Computer: 'PC1.Corp.Example', Hostname: 'other' }).host).toBe('pc1.corp.example');
    const { Computer: _c, ...noComputer } = NET;
    expect(ok({ ...noComputer, Hostname: 'HOSTNAME-ONLY' }).host).toBe('hostname-only');
  });
});

describe('normalizeHintEvent: Winlogbeat', () => {
  it('ECS EID 1 (ingest pipeline): hashes under process.hash, original file name, upper-case entity_id lower-cased', () => {
    const e = ok(winlogbeat[0]) as ProcessHintEvent;
    expect(e).toMatchObject({
      shape: 'winlogbeat',
      kind: 'process',
      processGuid: '{b59756a9-b238-5f17-5207-000000000400}',
      pid: 9384,
      processName: 'regsvr32.exe',
      parentName: 'powershell.exe',
      parentProcessGuid: '{b59756a9-89dc-5f17-1006-000000000400}',
      originalFileName: 'REGSVR32.EXE',
      user: 'pgustavo', // user.name, not winlog.user.name (SYSTEM, Sysmon's own account)
      userDomain: 'MORDOR',
      host: 'workstation5.mordor.local',
    });
    expect(e.hashes).toEqual({
      md5: 'b0c2fa35d14b1f0a1ea1a3a4aa8c5b4d',
      sha1: null,
      sha256: '890c1734ed1ef6b2422a9b21d6205cf91e014add8a7f41aa5a294fcf60631a7b',
      imphash: '41bbc4d7eb4b3be9a9e2c83ee4b9d2f1',
    });
  });

  it('ECS EID 3 normalizes exactly like the raw OTRF event it re-tells (direction egress → initiated)', () => {
    const { shape: _a, ...fromBeat } = ok(winlogbeat[1]);
    const { shape: _b, ...fromRaw } = ok(event(2));
    expect(fromBeat).toEqual(fromRaw);
  });

  it('collector shape: winlog.event_data with Sysmon names; the endpoint is winlog.computer_name, not the WEC host', () => {
    const e = ok(winlogbeat[2]) as NetworkHintEvent;
    expect(e).toMatchObject({ host: 'workstation5.mordor.local', pid: 9076, sourcePort: 50251, timeMs: Date.UTC(2020, 6, 22, 3, 27, 54, 286) });
    expect(e.pid).not.toBe(3016); // winlog.process.pid is Sysmon's own pid
  });

  it('ECS EID 22: dns.question.name, dns.resolved_ip, sysmon.dns.status', () => {
    const e = ok(winlogbeat[3]) as DnsHintEvent;
    expect(e).toMatchObject({ kind: 'dns', queryName: 'raw.githubusercontent.com', queryResults: ['151.101.248.133'], queryStatus: 0, image: null, pid: 10076, host: 'workstation5' });
  });

  it('dotted keys work like nested objects', () => {
    const e = ok(winlogbeat[4]) as NetworkHintEvent;
    expect(e).toMatchObject({ processName: 'winx64_payload.exe', sourceIp: '192.168.1.43', sourcePort: 51745, destinationPort: 4433, user: 'nora.quemona', userDomain: 'PANDALAB', initiated: true });
    const mixed = ok({ '@timestamp': '2024-05-01T10:00:00Z', 'winlog.event_data': { ...NET, EventID: undefined }, winlog: { event_id: 3 } });
    expect(mixed.kind).toBe('network');
  });

  it('refuses other event ids and other providers with a reason', () => {
    expect(rejected(winlogbeat[5])).toMatchObject({ code: 'HINT_UNSUPPORTED', reason: 'Sysmon Event ID 16 is not used for attribution (only 1, 3 and 22 are)' });
    const other = rejected(winlogbeat[6]);
    expect(other.code).toBe('HINT_UNSUPPORTED');
    expect(other.reason).toContain('not a Sysmon event');
  });

  it('event.code is the fallback for winlog.event_id', () => {
    const e = ok({ '@timestamp': '2024-05-01T10:00:00.000Z', event: { code: '3' }, winlog: { event_data: { SourceIp: '10.0.0.1', SourcePort: '1' } } });
    expect(e.kind).toBe('network');
  });
});

describe('normalizeHintEvent: values', () => {
  it('event ids other than 1, 3, 22 are refused', () => {
    for (const id of [2, 5, 8, 10, 23, '7']) expect(rejected({ ...NET, EventID: id }).code).toBe('HINT_UNSUPPORTED');
  });

  it('IPv4-mapped source addresses become IPv4; IPv6 gets one canonical form', () => {
    expect((ok({ ...NET, SourceIp: '::ffff:10.1.2.3' }) as NetworkHintEvent).sourceIp).toBe('10.1.2.3');
    expect((ok({ ...NET, SourceIp: 'A00:20F:0:0:18A2:6E00:E0:FFFF' }) as NetworkHintEvent).sourceIp).toBe('a00:20f::18a2:6e00:e0:ffff');
    expect(canonicalIp('::ffff:a01:203')).toBe('10.1.2.3');
    expect(canonicalIp('10.01.2.3')).toBeNull();
  });

  it('ports, pids and ids: numbers or decimal strings within range, else a reason naming the field', () => {
    expect((ok({ ...NET, SourcePort: '65535', ProcessId: '0' }) as NetworkHintEvent).sourcePort).toBe(65535);
    expect(rejected({ ...NET, SourcePort: 65536 }).reason).toMatch(/^SourcePort: out of range/);
    expect(rejected({ ...NET, SourcePort: -1 }).reason).toMatch(/^SourcePort: out of range/);
    expect(rejected({ ...NET, SourcePort: 1.5 }).reason).toMatch(/^SourcePort/);
    expect(rejected({ ...NET, SourcePort: '0x10' }).reason).toMatch(/^SourcePort: not a decimal integer/);
    expect(rejected({ ...NET, ProcessId: 1e300 }).reason).toMatch(/^ProcessId: out of range/);
    expect(rejected({ ...NET, ProcessId: '99999999999999999999' }).reason).toMatch(/^ProcessId/);
    expect(rejected({ ...NET, ProcessId: { n: 1 } }).reason).toBe('ProcessId: expected a number, got an object');
    expect(rejected({ ...NET, EventID: 3e30 }).code).toBe('HINT_INVALID');
  });

  it('a network event needs its source address and port', () => {
    expect(rejected({ ...NET, SourceIp: '-' }).reason).toMatch(/^SourceIp: missing/);
    expect(rejected({ ...NET, SourcePort: undefined }).reason).toMatch(/^SourcePort: missing/);
    expect(rejected({ ...NET, SourceIp: '10.1.2.300' }).reason).toMatch(/^SourceIp: not an IP address/);
    expect(rejected({ ...NET, DestinationIp: 'example.com' }).reason).toMatch(/^DestinationIp: not an IP address/);
  });

  it('timestamps: parsed, with zones and long fractions; absurd or unparseable ones refused', () => {
    expect(ok({ ...NET, UtcTime: '2024-05-01T10:00:00.1234567Z' }).timeMs).toBe(Date.UTC(2024, 4, 1, 10, 0, 0, 123));
    expect(ok({ ...NET, UtcTime: '2024-05-01T12:00:00+02:00' }).timeMs).toBe(Date.UTC(2024, 4, 1, 10));
    expect(rejected({ ...NET, UtcTime: 'yesterday' }).reason).toMatch(/^UtcTime: not a timestamp/);
    expect(rejected({ ...NET, UtcTime: '2024-13-01 00:00:00' }).reason).toMatch(/^UtcTime: not a valid date/);
    expect(rejected({ ...NET, UtcTime: '1970-01-01 00:00:00' }).reason).toMatch(/^UtcTime: time out of range/);
    expect(rejected({ ...NET, UtcTime: undefined }).reason).toBe('UtcTime: missing');
    const now = Date.UTC(2024, 4, 1, 10);
    expect(ok({ ...NET }, now).timeMs).toBe(now);
    expect(rejected({ ...NET, UtcTime: '2024-05-03 10:00:00' }, now).reason).toMatch(/48 h ahead/);
  });

  it('processName is the lower-cased basename with Windows or POSIX separators', () => {
    expect(imageBaseName('C:\\Windows\\System32\\RunDll32.EXE')).toBe('rundll32.exe');
    expect(imageBaseName('/usr/bin/curl')).toBe('curl');
    expect(imageBaseName('System')).toBe('system');
  });

  it('over-long image paths keep their tail (the basename); over-long command lines are cut and flagged', () => {
    const longImage = `C:\\${'a'.repeat(5000)}\\mshta.exe`;
    const e = ok({ ...NET, Image: longImage });
    expect(e.image?.length).toBe(MAX_IMAGE);
    expect(e.processName).toBe('mshta.exe');
    const p = ok({ ...NET, EventID: 1, CommandLine: 'x'.repeat(MAX_COMMAND_LINE + 10) }) as ProcessHintEvent;
    expect(p.commandLine?.length).toBe(MAX_COMMAND_LINE);
    expect(p.commandLineTruncated).toBe(true);
  });

  it('Hashes are split into md5/sha1/sha256/imphash, lower-cased; unknown or malformed parts skipped', () => {
    const p = ok({
      ...NET,
      EventID: 1,
      Hashes: `MD5=${'A'.repeat(32)},SHA256=${'b'.repeat(64)},IMPHASH=${'C'.repeat(32)},SHA384=${'d'.repeat(96)},SHA1=zz`,
    }) as ProcessHintEvent;
    expect(p.hashes).toEqual({ md5: 'a'.repeat(32), sha1: null, sha256: 'b'.repeat(64), imphash: 'c'.repeat(32) });
  });

  it('DNS query names are lower-cased without the trailing dot', () => {
    const d = ok({ ...NET, EventID: 22, QueryName: 'Evil.Example.COM.', QueryResults: '::ffff:1.2.3.4;2001:db8::1;type: 5 x.example;' }) as DnsHintEvent;
    expect(d.queryName).toBe('evil.example.com');
    expect(d.queryResults).toEqual(['1.2.3.4', '2001:db8::1']);
    expect(rejected({ ...NET, EventID: 22 }).reason).toMatch(/^QueryName: missing/);
  });

  it('wrong types, control characters and over-long strings give reasons', () => {
    expect(rejected({ ...NET, Computer: 42 }).reason).toBe('Computer: expected a string, got number 42');
    expect(rejected({ ...NET, Protocol: 't\u0000cp' }).reason).toBe('Protocol: contains control characters');
    expect(rejected({ ...NET, EventID: 22, QueryName: 'a\u0001.example' }).reason).toBe('QueryName: contains control characters');
    expect(rejected({ ...NET, Computer: 7, Image: 'x' }).reason).toBe('Computer: expected a string, got number 7');
    expect(rejected({ ...NET, ProcessGuid: '\u202e{x}' }).reason).toBe('ProcessGuid: not a GUID: "<U+202E>{x}"'); // the reason is neutralised too
    expect(rejected({ ...NET, User: 'u'.repeat(300) }).reason).toMatch(/^User: longer than/);
    expect(rejected({ ...NET, ProcessGuid: 'not-a-guid' }).reason).toMatch(/^ProcessGuid: not a GUID/);
    expect(rejected({ ...NET, Initiated: 'maybe' }).reason).toMatch(/^Initiated: expected true or false/);
  });

  it('non-objects, deep nesting and huge events are refused with reasons', () => {
    for (const v of [null, 3, 'x', [], [NET], true]) expect(rejected(v).reason).toMatch(/^expected a JSON object/);
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = { a: deep };
    expect(rejected({ ...NET, extra: deep }).reason).toMatch(/nested deeper than/);
    expect(rejected({ ...NET, extra: new Array(5000).fill(1) }).reason).toMatch(/more than \d+ values/);
  });

  it('__proto__ and constructor keys are inert: no prototype is touched, no value is read through them', () => {
    const raw = JSON.parse(`{"EventID":3,"UtcTime":"2024-05-01 10:00:00","SourceIp":"10.0.0.1","SourcePort":1,"__proto__":{"Image":"C:\\\\evil.exe","polluted":true},"constructor":{"prototype":{"polluted":true}}}`) as unknown;
    const e = ok(raw);
    expect(e.image).toBeNull();
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    // Dotted-path reads never climb into inherited members either.
    expect(rejected({ EventID: 3, UtcTime: '2024-05-01 10:00:00', SourcePort: 1 }).reason).toMatch(/^SourceIp: missing/);
  });

  it('never throws, even on objects whose getters throw', () => {
    const hostile = Object.defineProperty({ EventID: 3 }, 'UtcTime', {
      enumerable: true,
      get() {
        throw new Error('boom');
      },
    });
    const r = normalizeHintEvent(hostile);
    expect(r.ok).toBe(false);
  });

  it('text fields are neutralised at ingestion: bidi overrides, zero-width and control characters become <U+XXXX> marks', () => {
    const p = ok({
      ...NET,
      EventID: 1,
      Computer: 'WS\u200b5',
      Image: 'C:\\Users\\a\\INVOICE\u202Eexe.pdf',
      ParentImage: 'C:\\x\\rund\u200bll32.exe',
      CommandLine: 'a\tb\r\nc \u2066<U+202E>\u2069',
      ParentCommandLine: '\u0085x',
      OriginalFileName: '\ufeffa.exe',
      User: 'CORP\u200f\\al\u0000ice',
    }) as ProcessHintEvent;
    expect(p.host).toBe('ws<U+200B>5');
    expect(p.image).toBe('C:\\Users\\a\\INVOICE<U+202E>exe.pdf');
    expect(p.processName).toBe('invoice<U+202E>exe.pdf'); // lower-cased before marking: the mark stays uppercase
    expect(p.parentName).toBe('rund<U+200B>ll32.exe');
    expect(p.commandLine).toBe('a\tb<U+000D><U+000A>c <U+2066><U+003C>U+202E><U+2069>'); // TAB kept, literal "<U+" escaped
    expect(p.parentCommandLine).toBe('<U+0085>x');
    expect(p.originalFileName).toBe('<U+FEFF>a.exe');
    expect([p.userDomain, p.user]).toEqual(['CORP<U+200F>', 'al<U+0000>ice']);
    const w = ok({ '@timestamp': '2024-05-01T10:00:00Z', winlog: { event_id: 3, computer_name: 'H\u202e' }, process: { executable: 'C:\\a\u0007.exe', pid: 1 }, source: { ip: '10.0.0.1', port: 5 }, user: { name: 'b\u2068ob', domain: 'D\u0000' } });
    expect([w.host, w.image, w.processName, w.user, w.userDomain]).toEqual(['h<U+202E>', 'C:\\a<U+0007>.exe', 'a<U+0007>.exe', 'b<U+2068>ob', 'D<U+0000>']);
  });

  it('clean events are unchanged by neutralisation (what policy rules matched before still matches)', () => {
    const p = ok({ ...NET, EventID: 1, Image: 'C:\\Windows\\System32\\RunDll32.exe', CommandLine: 'rundll32.exe a,b', User: 'CORP\\alice' }) as ProcessHintEvent;
    expect([p.processName, p.image, p.commandLine, p.user, p.userDomain]).toEqual(['rundll32.exe', 'C:\\Windows\\System32\\RunDll32.exe', 'rundll32.exe a,b', 'alice', 'CORP']);
  });
});

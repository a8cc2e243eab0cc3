/** Normalized hint events for store and attribution tests: a rundll32 process and its connection. */
import type { NetworkHintEvent, ProcessHintEvent } from '../../src/enrich/hint-event.js';

export const GUID = '{11111111-2222-3333-4444-555555555555}';

/** A Sysmon Event ID 3 from 10.1.2.3:50000 to the proxy, at `timeMs`; override any field. */
export function networkEvent(timeMs: number, over: Partial<NetworkHintEvent> = {}): NetworkHintEvent {
  return {
    kind: 'network',
    eventId: 3,
    shape: 'sysmon',
    timeMs,
    host: 'pc1',
    processGuid: GUID,
    pid: 4242,
    image: 'C:\\Windows\\System32\\rundll32.exe',
    processName: 'rundll32.exe',
    user: 'alice',
    userDomain: 'CORP',
    protocol: 'tcp',
    sourceIp: '10.1.2.3',
    sourcePort: 50000,
    destinationIp: '10.9.9.9',
    destinationPort: 3128,
    destinationHostname: null,
    initiated: true,
    ...over,
  };
}

/** The Sysmon Event ID 1 that created that process, at `timeMs`; override any field. */
export function processEvent(timeMs: number, over: Partial<ProcessHintEvent> = {}): ProcessHintEvent {
  return {
    kind: 'process',
    eventId: 1,
    shape: 'sysmon',
    timeMs,
    host: 'pc1',
    processGuid: GUID,
    pid: 4242,
    image: 'C:\\Windows\\System32\\rundll32.exe',
    processName: 'rundll32.exe',
    user: 'alice',
    userDomain: 'CORP',
    parentImage: 'C:\\Windows\\System32\\cmd.exe',
    parentName: 'cmd.exe',
    parentProcessGuid: null,
    commandLine: 'rundll32.exe evil.dll,Start',
    commandLineTruncated: false,
    parentCommandLine: 'cmd.exe',
    originalFileName: 'RUNDLL32.EXE',
    hashes: { md5: 'a'.repeat(32), sha1: null, sha256: 'b'.repeat(64), imphash: null },
    ...over,
  };
}

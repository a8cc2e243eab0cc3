/**
 * Writes small MaxMind DB (`.mmdb`) files for tests. No npm package writes them and MaxMind's own test
 * databases are not on npm, so tests build their own from the public format spec, MaxMind DB File Format
 * Specification 2.0 (github.com/maxmind/MaxMind-DB, MaxMind-DB-spec.md; section names quoted below).
 *
 * Layout: binary search tree | 16 zero bytes | data section | "\xab\xcd\xefMaxMind.com" | metadata map.
 * No pointers and no data deduplication: one data record per network, which is fine for a few networks.
 * JS values map to MMDB types: string → utf8_string, boolean → boolean, integer 0..2^32-1 → uint32,
 * negative int32 → int32, other numbers → double, bigint → uint64 (uint128 above 2^64-1), Uint8Array →
 * bytes, array → array, plain object → map. `mmdbValue('uint16', 5)` forces a type.
 */
import ipaddr from 'ipaddr.js';

type ForcedType = 'uint16' | 'uint32' | 'int32' | 'uint64' | 'uint128' | 'double' | 'float';

/** A value with an explicit MMDB type (e.g. uint16 for `record_size`, as the spec's metadata requires). */
export class MmdbTyped {
  constructor(
    readonly type: ForcedType,
    readonly value: number | bigint,
  ) {}
}

export function mmdbValue(type: ForcedType, value: number | bigint): MmdbTyped {
  return new MmdbTyped(type, value);
}

export interface MmdbNetwork {
  readonly cidr: string;
  readonly data: Record<string, unknown>;
}

export interface WriteMmdbOptions {
  readonly databaseType: string;
  readonly ipVersion: 4 | 6;
  readonly recordSize?: 24 | 28 | 32;
  readonly networks: ReadonlyArray<MmdbNetwork>;
  /** Seconds since the epoch; default now. */
  readonly buildEpoch?: number;
}

// Spec "Output Data Section": type numbers. 1–7 fit the control byte; 8+ are "extended" (next byte = type − 7).
const TYPE = { utf8: 2, double: 3, bytes: 4, uint16: 5, uint32: 6, map: 7, int32: 8, uint64: 9, uint128: 10, array: 11, boolean: 14, float: 15 } as const;
// Spec "Database Metadata": the last occurrence of this marker starts the metadata.
const METADATA_MARKER = Buffer.from('abcdef4d61784d696e642e636f6d', 'hex');

/** Spec "Data Field Format" + "Payload Size": control byte, extended type byte, size bytes, then the payload. */
function field(type: number, size: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head: number[] = [];
  const sizeBytes: number[] = [];
  let sizeBits = size;
  if (size >= 65_821) [sizeBits, sizeBytes[0], sizeBytes[1], sizeBytes[2]] = [31, (size - 65_821) >> 16, ((size - 65_821) >> 8) & 0xff, (size - 65_821) & 0xff];
  else if (size >= 285) [sizeBits, sizeBytes[0], sizeBytes[1]] = [30, (size - 285) >> 8, (size - 285) & 0xff];
  else if (size >= 29) [sizeBits, sizeBytes[0]] = [29, size - 29];
  head.push(((type <= 7 ? type : 0) << 5) | sizeBits);
  if (type > 7) head.push(type - 7);
  return Buffer.concat([Buffer.from([...head, ...sizeBytes]), payload]);
}

/** Spec "integer formats": big-endian, as few bytes as needed; length 0 means 0. */
function unsigned(type: number, value: bigint): Buffer {
  const bytes: number[] = [];
  for (let v = value; v > 0n; v >>= 8n) bytes.unshift(Number(v & 0xffn));
  return field(type, bytes.length, Buffer.from(bytes));
}

function encodeTyped(v: MmdbTyped): Buffer {
  if (v.type === 'double' || v.type === 'float') {
    const b = Buffer.alloc(v.type === 'double' ? 8 : 4);
    if (v.type === 'double') b.writeDoubleBE(Number(v.value));
    else b.writeFloatBE(Number(v.value));
    return field(TYPE[v.type], b.length, b);
  }
  if (v.type === 'int32' && Number(v.value) < 0) {
    const b = Buffer.alloc(4); // a full-length field carries the sign (two's complement)
    b.writeInt32BE(Number(v.value));
    return field(TYPE.int32, 4, b);
  }
  return unsigned(TYPE[v.type], BigInt(v.value));
}

export function encodeValue(value: unknown): Buffer {
  if (value instanceof MmdbTyped) return encodeTyped(value);
  if (typeof value === 'string') return field(TYPE.utf8, Buffer.byteLength(value), Buffer.from(value, 'utf8'));
  if (typeof value === 'boolean') return field(TYPE.boolean, value ? 1 : 0); // spec "boolean - 14": no payload
  if (typeof value === 'bigint') return encodeTyped(new MmdbTyped(value < 1n << 64n ? 'uint64' : 'uint128', value));
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff) return encodeTyped(new MmdbTyped('uint32', value));
    if (Number.isInteger(value) && value < 0 && value >= -0x8000_0000) return encodeTyped(new MmdbTyped('int32', value));
    return encodeTyped(new MmdbTyped('double', value));
  }
  if (value instanceof Uint8Array) return field(TYPE.bytes, value.length, Buffer.from(value));
  if (Array.isArray(value)) return Buffer.concat([field(TYPE.array, value.length), ...value.map(encodeValue)]);
  if (typeof value === 'object' && value !== null) {
    // Spec "Maps": the size is the number of pairs; each key (always a utf8_string) is followed by its value.
    const entries = Object.entries(value as Record<string, unknown>);
    return Buffer.concat([field(TYPE.map, entries.length), ...entries.flatMap(([k, v]) => [encodeValue(k), encodeValue(v)])]);
  }
  throw new Error(`mmdb-writer: cannot encode ${typeof value}`);
}

/** A tree record: another node, a data offset, or nothing (undefined). */
type Slot = TreeNode | { readonly data: number } | undefined;
interface TreeNode {
  slots: [Slot, Slot];
}

/** Network bits, with IPv4 placed in ::/96 of an IPv6 tree (spec "IPv4 addresses in an IPv6 tree"). */
function networkBits(cidr: string, ipVersion: 4 | 6): { bytes: number[]; prefix: number } {
  const [addr, prefix] = ipaddr.parseCIDR(cidr);
  if (addr.kind() === 'ipv6' && ipVersion === 4) throw new Error(`mmdb-writer: ${cidr} is IPv6 in an IPv4 database`);
  if (addr.kind() === 'ipv4' && ipVersion === 6) return { bytes: [...new Array<number>(12).fill(0), ...addr.toByteArray()], prefix: prefix + 96 };
  return { bytes: addr.toByteArray(), prefix };
}

export function writeMmdb(opts: WriteMmdbOptions): Buffer {
  const recordSize = opts.recordSize ?? 24;
  const root: TreeNode = { slots: [undefined, undefined] };
  const dataParts: Buffer[] = [];
  let dataLength = 0;
  // Shorter prefixes first, so a more specific network inside a larger one wins whatever the input order.
  const networks = opts.networks.map((n) => ({ ...networkBits(n.cidr, opts.ipVersion), data: n.data }));
  networks.sort((a, b) => a.prefix - b.prefix);
  for (const net of networks) {
    if (net.prefix === 0) throw new Error('mmdb-writer: a /0 network has no tree record; split it into two /1');
    const encoded = encodeValue(net.data);
    const leaf = { data: dataLength };
    dataParts.push(encoded);
    dataLength += encoded.length;
    let node = root;
    for (let depth = 0; depth < net.prefix - 1; depth++) {
      const bit = ((net.bytes[depth >> 3] ?? 0) >> (7 - (depth & 7))) & 1;
      const next = node.slots[bit];
      // A larger network already ends here: split it into a node whose both halves keep its data.
      const child: TreeNode = next !== undefined && 'slots' in next ? next : { slots: [next, next] };
      node.slots[bit] = child;
      node = child;
    }
    const last = net.prefix - 1;
    node.slots[((net.bytes[last >> 3] ?? 0) >> (7 - (last & 7))) & 1] = leaf;
  }
  // Spec "Binary Search Tree Section": the root is node 0; number the nodes breadth-first.
  const order: TreeNode[] = [root];
  const numbers = new Map<TreeNode, number>([[root, 0]]);
  for (let i = 0; i < order.length; i++) {
    for (const slot of order[i]!.slots) {
      if (slot !== undefined && 'slots' in slot && !numbers.has(slot)) {
        numbers.set(slot, order.length);
        order.push(slot);
      }
    }
  }
  const nodeCount = order.length;
  // Spec "Search Lookup Algorithm": node_count = no data; data record = node_count + 16 + offset in data section.
  const recordValue = (slot: Slot): number => (slot === undefined ? nodeCount : 'slots' in slot ? numbers.get(slot)! : nodeCount + 16 + slot.data);
  if (nodeCount + 16 + dataLength >= 2 ** recordSize) throw new Error(`mmdb-writer: data too large for ${recordSize}-bit records`);
  const nodeBytes = recordSize / 4;
  const tree = Buffer.alloc(nodeCount * nodeBytes);
  order.forEach((node, i) => {
    const [left, right] = node.slots.map(recordValue) as [number, number];
    const at = i * nodeBytes;
    // Spec "Node Layout": big-endian records; with 28 bits the middle byte holds the top nibble of each record.
    if (recordSize === 24) {
      tree.writeUIntBE(left, at, 3);
      tree.writeUIntBE(right, at + 3, 3);
    } else if (recordSize === 32) {
      tree.writeUInt32BE(left, at);
      tree.writeUInt32BE(right, at + 4);
    } else {
      tree.writeUIntBE(left & 0xff_ffff, at, 3);
      tree[at + 3] = ((left >>> 24) << 4) | (right >>> 24);
      tree.writeUIntBE(right & 0xff_ffff, at + 4, 3);
    }
  });
  const metadata = encodeValue({
    binary_format_major_version: mmdbValue('uint16', 2),
    binary_format_minor_version: mmdbValue('uint16', 0),
    build_epoch: mmdbValue('uint64', opts.buildEpoch ?? Math.floor(Date.now() / 1000)),
    database_type: opts.databaseType,
    description: { en: `${opts.databaseType} test database` },
    ip_version: mmdbValue('uint16', opts.ipVersion),
    languages: ['en'],
    node_count: mmdbValue('uint32', nodeCount),
    record_size: mmdbValue('uint16', recordSize),
  });
  // Spec "Data Section Separator": 16 zero bytes between the tree and the data section.
  return Buffer.concat([tree, Buffer.alloc(16), ...dataParts, METADATA_MARKER, metadata]);
}

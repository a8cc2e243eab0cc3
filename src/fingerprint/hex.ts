/**
 * 4-digit lower-case hex of a 16-bit value (cipher suites, extension types, signature algorithms in JA4, JA4S and
 * the record's cipher codes), from a 256-entry table. A table of all 65,536 strings was 2 MB of heap in every
 * process that loaded it — twice, in ja4.ts and ja4s.ts (issue 9, idle memory) — for a difference of one short
 * concatenation per value.
 */
const HEX2: readonly string[] = Array.from({ length: 256 }, (_, v) => v.toString(16).padStart(2, '0'));

export function hex4(value: number): string {
  return (HEX2[(value >> 8) & 0xff] as string) + (HEX2[value & 0xff] as string);
}

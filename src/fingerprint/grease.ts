/**
 * GREASE values (RFC 8701). Clients put random reserved values into cipher suites, extensions, groups,
 * versions and signature algorithms so that servers keep tolerating unknown values. They change from one
 * connection to the next, so every fingerprint drops them: JA3 ("GREASE values dropped", Salesforce) and
 * JA4 ("The program needs to ignore GREASE values anywhere it sees them", FoxIO JA4.md "Details").
 */

/**
 * RFC 8701 §2: the 16-bit GREASE values are 0x0A0A, 0x1A1A, …, 0xFAFA — both bytes equal, low nibble 0xA.
 * The same set is reserved in cipher suites, extensions, named groups, signature algorithms and versions.
 */
export function isGrease16(value: number): boolean {
  return (value & 0x0f0f) === 0x0a0a && value >> 8 === (value & 0xff);
}

/** RFC 8701 §2: the 8-bit GREASE values used for PskKeyExchangeMode are 0x0B, 0x2A, 0x49, …, 0xE4 (0x0B + 0x1F·n). */
export function isGrease8(value: number): boolean {
  return value >= 0x0b && value <= 0xe4 && (value - 0x0b) % 0x1f === 0;
}

/** The list without GREASE values, in the same order. Returns the input itself when it has none (no copy). */
export function withoutGrease16(values: readonly number[]): readonly number[] {
  for (let i = 0; i < values.length; i++) {
    if (isGrease16(values[i] as number)) return values.filter((v) => !isGrease16(v));
  }
  return values;
}

/**
 * Entropy measures for the feature extractors: Shannon entropy of text (URI parts) and of bytes (request
 * bodies), and a test for "these bytes look encrypted". Called on every request, so they count into one
 * reused 256-entry table and reset only the slots they touched: no allocation for Latin-1 text or bytes.
 *
 * Shannon entropy H = −Σ p·log2(p) over the symbol frequencies of the sample (Shannon, 1948, §6). It is the
 * plug-in estimate: for short samples it is biased low (n distinct symbols can give at most log2(n) bits),
 * which is why callers judge short strings against their length and why `looksEncrypted` uses a
 * size-aware chi-square test rather than an entropy threshold.
 */

/** Shared counting table. Safe to reuse: every function below resets the slots it touched before returning. */
const COUNTS = new Uint32Array(256);
/** The distinct symbols seen by the current call, so resetting costs O(distinct) rather than O(256). */
const TOUCHED = new Uint8Array(256);
/** Plug-in entropy of a string that fits in Latin-1 costs no allocation; beyond that a Map takes over. */
const LATIN1_MAX = 0xff;

/** Σ c·log2(c) over the counts, for H = log2(n) − Σ c·log2(c) / n (one log per distinct symbol). */
function entropyFromTable(distinct: number, n: number): number {
  let sum = 0;
  for (let i = 0; i < distinct; i++) {
    const symbol = TOUCHED[i] as number;
    const c = COUNTS[symbol] as number;
    sum += c * Math.log2(c);
    COUNTS[symbol] = 0;
  }
  const h = Math.log2(n) - sum / n;
  // Floating-point noise can leave −1e-16 for a one-symbol sample.
  return h > 0 ? h : 0;
}

function entropyWithMap(text: string, start: number, end: number): number {
  const counts = new Map<number, number>();
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  const n = end - start;
  let sum = 0;
  for (const c of counts.values()) sum += c * Math.log2(c);
  const h = Math.log2(n) - sum / n;
  return h > 0 ? h : 0;
}

/**
 * Shannon entropy, bits per character (UTF-16 code unit), of `text[start, end)`; 0 for an empty range.
 * The range form lets the URI analyser measure a path segment without slicing it out.
 */
export function rangeEntropy(text: string, start: number, end: number): number {
  const n = end - start;
  if (n <= 0) return 0;
  let distinct = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c > LATIN1_MAX) {
      // Undo what was counted so far, then count the whole range in a Map (rare: non-Latin-1 URI text).
      for (let j = 0; j < distinct; j++) COUNTS[TOUCHED[j] as number] = 0;
      return entropyWithMap(text, start, end);
    }
    if (COUNTS[c] === 0) TOUCHED[distinct++] = c;
    COUNTS[c] = (COUNTS[c] as number) + 1;
  }
  return entropyFromTable(distinct, n);
}

/** Shannon entropy of `text`, bits per character; 0 for ''. */
export function shannonEntropy(text: string): number {
  return rangeEntropy(text, 0, text.length);
}

/** Shannon entropy, bits per byte (0–8), of the first `length` bytes (default: all of them); 0 when empty. */
export function byteEntropy(bytes: Uint8Array, length?: number): number {
  const n = Math.min(length ?? bytes.length, bytes.length);
  if (n <= 0) return 0;
  let distinct = 0;
  for (let i = 0; i < n; i++) {
    const b = bytes[i] as number;
    if (COUNTS[b] === 0) TOUCHED[distinct++] = b;
    COUNTS[b] = (COUNTS[b] as number) + 1;
  }
  return entropyFromTable(distinct, n);
}

/** Fewer bytes than this say too little about their distribution to call them encrypted. */
export const ENCRYPTED_MIN_BYTES = 256;

/**
 * Acceptance band of Pearson's χ² statistic against the uniform distribution over 256 byte values
 * (255 degrees of freedom: mean 255, standard deviation √510 ≈ 22.6). ±4.5 σ keeps random bytes inside it
 * all but about once in 10⁵ samples (the upper tail of χ² is a little heavier than the normal's). Below the
 * band the bytes are *too* even to be random (a counter, a 0..255 table); above it they carry structure
 * (text, base64 at ~3·n, machine code). At 256 bytes the band is 153–357; base64 text scores about 768.
 */
const CHI2_DOF = 255;
const CHI2_SIGMA = Math.sqrt(2 * CHI2_DOF);
const CHI2_LOW = CHI2_DOF - 4.5 * CHI2_SIGMA;
const CHI2_HIGH = CHI2_DOF + 4.5 * CHI2_SIGMA;

/**
 * Formats whose content is compressed by design, recognised by their leading magic bytes. Their bodies are as
 * uniform as ciphertext, but an upload of a zip or a PNG is not a sign of an encrypted C2 channel.
 * (Offsets and bytes from each format's specification: RFC 1952 §2.3.1 gzip, RFC 8878 §3.1.1 zstd, PKWARE
 * APPNOTE §4.3.7 zip, PNG §5.2, JFIF/JPEG SOI, GIF89a, RIFF (WebP/WAV/AVI), ISO BMFF `ftyp` at offset 4,
 * xz, 7z, bzip2, PDF, CAB `MSCF`, Ogg, FLAC, Matroska/WebM EBML.)
 */
const CONTAINER_MAGIC: readonly (readonly [offset: number, bytes: readonly number[]])[] = [
  [0, [0x1f, 0x8b]], // gzip
  [0, [0x28, 0xb5, 0x2f, 0xfd]], // zstd
  [0, [0x50, 0x4b, 0x03, 0x04]], // zip, docx, jar, apk
  [0, [0x89, 0x50, 0x4e, 0x47]], // PNG
  [0, [0xff, 0xd8, 0xff]], // JPEG
  [0, [0x47, 0x49, 0x46, 0x38]], // GIF8
  [0, [0x52, 0x49, 0x46, 0x46]], // RIFF: WebP, WAV, AVI
  [4, [0x66, 0x74, 0x79, 0x70]], // ISO BMFF 'ftyp': MP4, HEIC, AVIF
  [0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]], // xz
  [0, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]], // 7z
  [0, [0x42, 0x5a, 0x68]], // bzip2
  [0, [0x25, 0x50, 0x44, 0x46]], // %PDF (streams inside are deflated)
  [0, [0x4d, 0x53, 0x43, 0x46]], // MSCF: Windows cabinet
  [0, [0x4f, 0x67, 0x67, 0x53]], // Ogg
  [0, [0x66, 0x4c, 0x61, 0x43]], // fLaC
  [0, [0x1a, 0x45, 0xdf, 0xa3]], // EBML: Matroska, WebM
];

/** The first bytes are the magic of a compressed or media container format. */
export function hasContainerMagic(bytes: Uint8Array, length: number): boolean {
  for (const [offset, magic] of CONTAINER_MAGIC) {
    if (offset + magic.length > length) continue;
    let same = true;
    for (let i = 0; i < magic.length; i++) {
      if (bytes[offset + i] !== magic[i]) {
        same = false;
        break;
      }
    }
    if (same) return true;
  }
  return false;
}

/** Pearson's χ² of the first `n` bytes against the uniform distribution over 256 values. */
export function byteChiSquare(bytes: Uint8Array, n: number): number {
  let distinct = 0;
  for (let i = 0; i < n; i++) {
    const b = bytes[i] as number;
    if (COUNTS[b] === 0) TOUCHED[distinct++] = b;
    COUNTS[b] = (COUNTS[b] as number) + 1;
  }
  // χ² = Σ (O − E)² / E = Σ O² / E − n, with E = n/256 and the untouched values contributing O = 0.
  let sumSquares = 0;
  for (let i = 0; i < distinct; i++) {
    const symbol = TOUCHED[i] as number;
    const c = COUNTS[symbol] as number;
    sumSquares += c * c;
    COUNTS[symbol] = 0;
  }
  return (sumSquares * 256) / n - n;
}

/**
 * Whether the first `length` bytes of a request body look like ciphertext: at least 256 bytes, not a known
 * compressed/media container, and a byte histogram that passes a χ² test for uniformity.
 *
 * Why χ² and not "entropy ≥ 7.2": the plug-in entropy of 256 truly random bytes averages about 7.28 bits/byte
 * (the estimator is biased low by ≈ 255 / (2·n·ln 2)), so a fixed 7.2 cut misses a good share of short
 * ciphertext and means something different at 256 bytes than at 4 KiB. χ² has a known distribution at every
 * size (255 degrees of freedom), so one acceptance band serves all sizes. Text, base64 (64 symbols, ~6 bits)
 * and machine code all fall far above the band.
 *
 * Limits: compressed data *without* a container header (raw deflate, brotli) is as uniform as ciphertext
 * and comes out true; so does any well-mixed random padding.
 */
export function looksEncrypted(bytes: Uint8Array, length: number): boolean {
  const n = Math.min(length, bytes.length);
  if (n < ENCRYPTED_MIN_BYTES) return false;
  if (hasContainerMagic(bytes, n)) return false;
  const chi2 = byteChiSquare(bytes, n);
  return chi2 >= CHI2_LOW && chi2 <= CHI2_HIGH;
}

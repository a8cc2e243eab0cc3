/**
 * Loading the interception CA (issue 10, item 1): `tls.ca_dir` holds ca.pem and ca-key.pem, made by
 * `egress-inspector ca init` (src/cli/ca-init.ts) or brought by the operator. Everything that would make every
 * intercepted connection fail later — a missing or swapped file, a key of another certificate, a certificate
 * that is not a CA, an expired CA — is refused here, at start-up, with a message that names the file and says
 * what to do. A private key readable by group or others is refused too (OpenSSH refuses such keys for the
 * same reason): whoever reads it can impersonate every site to every endpoint that trusts the CA.
 *
 * Besides what node:crypto's X509Certificate gives, the leaf minter (src/net/leaf-certs.ts) needs the CA's
 * subject Name as DER, to copy verbatim into each leaf's issuer (RFC 5280 §4.1.2.4: chaining compares the
 * issuer with the CA's subject), and its key identifier for the leaves' authorityKeyIdentifier (§4.2.1.1).
 * Node exposes neither, so a small DER reader walks the certificate — only after OpenSSL has parsed it, so
 * its input is a well-formed certificate; it is bounds-checked all the same.
 *
 * Async fs only: this runs at start-up and on reload, never on the hot path.
 */
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EgressError } from '../errors.js';

export interface LoadedCa {
  readonly cert: X509Certificate;
  /** The CA certificate as PEM (sent after each leaf, so clients get the chain). */
  readonly certPem: string;
  readonly certDer: Buffer;
  /** The CA's private key (RSA, or ECDSA P-256 / P-384 / P-521). */
  readonly key: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER of the CA certificate's subject Name, to be each leaf's issuer byte for byte. */
  readonly subjectDer: Buffer;
  /** The CA's subjectKeyIdentifier, or SHA-1 of its subjectPublicKey bits when it has none (RFC 5280 §4.2.1.2 method 1). */
  readonly keyId: Buffer;
}

/** The key types a leaf can be signed with (src/net/leaf-certs.ts picks the signature algorithm from them). */
const SUPPORTED_CURVES: ReadonlySet<string> = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/;
const PEM_ANY_KEY = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;
const PEM_ENCRYPTED = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/;

// DER tags used below (X.690 §8; X.509 only uses low tag numbers, one octet each).
const TAG_BOOLEAN = 0x01;
const TAG_BIT_STRING = 0x03;
const TAG_OCTET_STRING = 0x04;
const TAG_OID = 0x06;
const TAG_UTC_TIME = 0x17;
const TAG_GENERALIZED_TIME = 0x18;
const TAG_SEQUENCE = 0x30;
const TAG_VERSION = 0xa0; // [0] EXPLICIT Version
const TAG_EXTENSIONS = 0xa3; // [3] EXPLICIT Extensions
// OID contents octets of id-ce-subjectKeyIdentifier (2.5.29.14) and id-ce-keyUsage (2.5.29.15).
const OID_SKI = Buffer.from([0x55, 0x1d, 0x0e]);
const OID_KEY_USAGE = Buffer.from([0x55, 0x1d, 0x0f]);

const UTC_TIME = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const GENERALIZED_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/** One DER element: its tag, where it starts, where its contents start, and one past its end. */
interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly body: number;
  readonly end: number;
}

class DerError extends Error {}

/** Reads the element at `at`, which must end by `limit` (X.690 §8.1: tag, definite length, contents). */
function readTlv(der: Uint8Array, at: number, limit: number, field: string): Tlv {
  const tag = der[at];
  const first = der[at + 1];
  if (tag === undefined || first === undefined || at + 2 > limit) throw new DerError(`${field}: truncated at offset ${at}`);
  let length = first;
  let body = at + 2;
  if (first & 0x80) {
    const octets = first & 0x7f;
    // X.690 §8.1.3.5; an indefinite length (0x80) is not DER (§10.1), and 4 octets cover any certificate.
    if (octets === 0 || octets > 4 || body + octets > limit) throw new DerError(`${field}: bad length at offset ${at + 1}`);
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (der[body + i] ?? 0);
    body += octets;
  }
  const end = body + length;
  if (end > limit) throw new DerError(`${field}: length ${length} runs past its container at offset ${at}`);
  return { tag, start: at, body, end };
}

function expectTag(tlv: Tlv, tag: number, field: string): Tlv {
  if (tlv.tag !== tag) throw new DerError(`${field}: expected tag 0x${tag.toString(16)}, found 0x${tlv.tag.toString(16)} at offset ${tlv.start}`);
  return tlv;
}

/** RFC 5280 §4.1.2.5.1 (UTCTime YYMMDDHHMMSSZ, YY ≥ 50 → 19YY) and §4.1.2.5.2 (GeneralizedTime YYYYMMDDHHMMSSZ). */
function readTime(der: Uint8Array, tlv: Tlv, field: string): Date {
  const text = Buffer.from(der.subarray(tlv.body, tlv.end)).toString('latin1');
  const m = tlv.tag === TAG_UTC_TIME ? UTC_TIME.exec(text) : tlv.tag === TAG_GENERALIZED_TIME ? GENERALIZED_TIME.exec(text) : null;
  if (m === null) throw new DerError(`${field}: not a UTCTime or GeneralizedTime in Z form: ${JSON.stringify(text)}`);
  const n = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const year = tlv.tag === TAG_UTC_TIME ? (n[0] >= 50 ? 1900 : 2000) + n[0] : n[0];
  return new Date(Date.UTC(year, n[1] - 1, n[2], n[3], n[4], n[5]));
}

interface CertificateFields {
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectDer: Buffer;
  readonly spkiDer: Buffer;
  /** Contents of the subjectKeyIdentifier's KeyIdentifier, if present. */
  readonly ski: Buffer | null;
  /** keyUsage keyCertSign (RFC 5280 §4.2.1.3 bit 5); null when the certificate has no keyUsage extension. */
  readonly keyCertSign: boolean | null;
}

/** Walks Certificate → TBSCertificate (RFC 5280 §4.1) for the fields Node does not expose. */
function readCertificateFields(der: Buffer): CertificateFields {
  const cert = expectTag(readTlv(der, 0, der.length, 'Certificate'), TAG_SEQUENCE, 'Certificate');
  const tbs = expectTag(readTlv(der, cert.body, cert.end, 'TBSCertificate'), TAG_SEQUENCE, 'TBSCertificate');
  let at = tbs.body;
  const next = (field: string): Tlv => {
    const tlv = readTlv(der, at, tbs.end, field);
    at = tlv.end;
    return tlv;
  };
  if (next('version or serialNumber').tag === TAG_VERSION) next('serialNumber');
  next('signature');
  next('issuer');
  const validity = expectTag(next('validity'), TAG_SEQUENCE, 'validity');
  const subject = expectTag(next('subject'), TAG_SEQUENCE, 'subject');
  const spki = expectTag(next('subjectPublicKeyInfo'), TAG_SEQUENCE, 'subjectPublicKeyInfo');
  const notBeforeTlv = readTlv(der, validity.body, validity.end, 'notBefore');
  const notAfterTlv = readTlv(der, notBeforeTlv.end, validity.end, 'notAfter');
  let ski: Buffer | null = null;
  let keyCertSign: boolean | null = null;
  while (at < tbs.end) {
    const item = next('TBSCertificate trailer');
    if (item.tag !== TAG_EXTENSIONS) continue; // issuerUniqueID / subjectUniqueID
    const list = expectTag(readTlv(der, item.body, item.end, 'extensions'), TAG_SEQUENCE, 'extensions');
    for (let e = list.body; e < list.end; ) {
      const ext = expectTag(readTlv(der, e, list.end, 'extension'), TAG_SEQUENCE, 'extension');
      e = ext.end;
      const id = expectTag(readTlv(der, ext.body, ext.end, 'extnID'), TAG_OID, 'extnID');
      let value = readTlv(der, id.end, ext.end, 'extnValue');
      if (value.tag === TAG_BOOLEAN) value = readTlv(der, value.end, ext.end, 'extnValue');
      expectTag(value, TAG_OCTET_STRING, 'extnValue');
      const oid = der.subarray(id.body, id.end);
      if (oid.equals(OID_SKI)) {
        // §4.2.1.2: SubjectKeyIdentifier ::= KeyIdentifier ::= OCTET STRING
        const inner = expectTag(readTlv(der, value.body, value.end, 'subjectKeyIdentifier'), TAG_OCTET_STRING, 'subjectKeyIdentifier');
        ski = Buffer.from(der.subarray(inner.body, inner.end));
      } else if (oid.equals(OID_KEY_USAGE)) {
        // §4.2.1.3: KeyUsage ::= BIT STRING; the first contents octet counts unused bits, keyCertSign is bit 5.
        const bits = expectTag(readTlv(der, value.body, value.end, 'keyUsage'), TAG_BIT_STRING, 'keyUsage');
        keyCertSign = ((der[bits.body + 1] ?? 0) & 0x04) !== 0;
      }
    }
  }
  return {
    notBefore: readTime(der, notBeforeTlv, 'notBefore'),
    notAfter: readTime(der, notAfterTlv, 'notAfter'),
    subjectDer: Buffer.from(der.subarray(subject.start, subject.end)),
    spkiDer: Buffer.from(der.subarray(spki.start, spki.end)),
    ski,
    keyCertSign,
  };
}

/**
 * The key identifier of a public key: SHA-1 of the subjectPublicKey BIT STRING's bits, without tag, length
 * and unused-bits octet (RFC 5280 §4.2.1.2, method 1 — what OpenSSL and forge put in subjectKeyIdentifier).
 */
export function keyIdentifier(spkiDer: Buffer): Buffer {
  const spki = expectTag(readTlv(spkiDer, 0, spkiDer.length, 'SubjectPublicKeyInfo'), TAG_SEQUENCE, 'SubjectPublicKeyInfo');
  const algorithm = readTlv(spkiDer, spki.body, spki.end, 'algorithm');
  const key = expectTag(readTlv(spkiDer, algorithm.end, spki.end, 'subjectPublicKey'), TAG_BIT_STRING, 'subjectPublicKey');
  return createHash('sha1').update(spkiDer.subarray(key.body + 1, key.end)).digest();
}

function caError(message: string, cause?: unknown): EgressError {
  return new EgressError('CA_INVALID', message, cause === undefined ? undefined : { cause });
}

function initHint(dir: string): string {
  return `create it with \`egress-inspector ca init --dir ${dir}\` (with --force if the other file is there)`;
}

/** Reads a file as text, turning "missing" and "unreadable" into messages that name it. */
async function readText(path: string, dir: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw readFailure(path, dir, err);
  }
}

function readFailure(path: string, dir: string, err: unknown): EgressError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return caError(`TLS interception CA: ${path} does not exist: ${initHint(dir)}`, err);
  if (code === 'EACCES') return caError(`TLS interception CA: ${path} cannot be read by this process (permission denied)`, err);
  return caError(`TLS interception CA: ${path} cannot be read (${code ?? String(err)})`, err);
}

/**
 * Loads and checks the interception CA in `dir` (ca.pem + ca-key.pem). Rejects with EgressError CA_INVALID
 * (a file missing, unreadable, exposed or unusable) whose message names the file and the fix.
 */
export async function loadCa(dir: string): Promise<LoadedCa> {
  const certPath = join(dir, 'ca.pem');
  const keyPath = join(dir, 'ca-key.pem');
  const certText = await readText(certPath, dir);
  const keyMode = await stat(keyPath).then(
    (s) => s.mode,
    (err: unknown) => {
      throw readFailure(keyPath, dir, err);
    },
  );
  // POSIX permission bits: Windows reports no group/other bits that mean anything, so the check is skipped there.
  if (process.platform !== 'win32' && (keyMode & 0o077) !== 0) {
    throw caError(`TLS interception CA: ${keyPath} is readable or writable by group or others (mode ${(keyMode & 0o777).toString(8).padStart(4, '0')}); ` +
        `anyone who reads it can impersonate any site to every endpoint that trusts the CA: run \`chmod 600 ${keyPath}\``,
    );
  }
  const keyText = await readText(keyPath, dir);

  const block = PEM_CERTIFICATE.exec(certText);
  if (block === null) {
    const swapped = PEM_ANY_KEY.test(certText) ? ' (it holds a private key: are ca.pem and ca-key.pem swapped?)' : '';
    throw caError(`TLS interception CA: ${certPath} is not a PEM certificate: no -----BEGIN CERTIFICATE----- block${swapped}`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(block[0]);
  } catch (err) {
    throw caError(`TLS interception CA: ${certPath} holds a PEM block that is not a valid X.509 certificate (${(err as Error).message})`, err);
  }

  if (!PEM_ANY_KEY.test(keyText)) {
    const swapped = PEM_CERTIFICATE.test(keyText) ? ' (it holds a certificate: are ca.pem and ca-key.pem swapped?)' : '';
    throw caError(`TLS interception CA: ${keyPath} is not a PEM private key: no -----BEGIN PRIVATE KEY----- block${swapped}`);
  }
  if (PEM_ENCRYPTED.test(keyText)) {
    throw caError(`TLS interception CA: ${keyPath} is encrypted with a passphrase; store it unencrypted with mode 0600 (e.g. \`openssl pkey -in KEY -out ${keyPath}\`)`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyText);
  } catch (err) {
    throw caError(`TLS interception CA: ${keyPath} is not a valid private key (${(err as Error).message})`, err);
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (!(key.asymmetricKeyType === 'rsa' || (key.asymmetricKeyType === 'ec' && curve !== undefined && SUPPORTED_CURVES.has(curve)))) {
    const kind = key.asymmetricKeyType === 'ec' ? `ec ${curve ?? '(unknown curve)'}` : String(key.asymmetricKeyType);
    throw caError(`TLS interception CA: ${keyPath} holds a key of type ${kind}; the CA key must be RSA or ECDSA P-256, P-384 or P-521`);
  }
  if (!cert.checkPrivateKey(key)) {
    throw caError(`TLS interception CA: ${keyPath} is not the private key of ${certPath} (their public keys differ): ${initHint(dir)} or restore the matching pair`);
  }
  let fields: CertificateFields;
  try {
    fields = readCertificateFields(cert.raw);
  } catch (err) {
    throw caError(`TLS interception CA: ${certPath} could not be read as DER (${(err as Error).message})`, err);
  }
  // §4.2.1.3: when keyUsage is present, keyCertSign must be set for the key to sign certificates.
  if (fields.keyCertSign === false) {
    throw caError(`TLS interception CA: ${certPath} has a keyUsage without keyCertSign, so clients would reject every leaf it signs`);
  }
  // RFC 5280 §4.2.1.9: only a certificate with basicConstraints cA TRUE may sign certificates.
  if (!cert.ca) {
    throw caError(`TLS interception CA: ${certPath} is not a CA certificate (basicConstraints CA:TRUE is missing), so clients would reject every leaf it signs`);
  }

  const now = Date.now();
  if (now < fields.notBefore.getTime()) {
    throw caError(`TLS interception CA: ${certPath} is not valid before ${fields.notBefore.toISOString()} (is this host's clock right?)`);
  }
  if (now >= fields.notAfter.getTime()) {
    throw caError(
      `TLS interception CA: ${certPath} expired on ${fields.notAfter.toISOString()}: create a new one with \`egress-inspector ca init --dir ${dir} --force\` and distribute it to the endpoints`,
    );
  }
  return {
    cert,
    certPem: cert.toString(),
    certDer: cert.raw,
    key,
    notBefore: fields.notBefore,
    notAfter: fields.notAfter,
    subjectDer: fields.subjectDer,
    keyId: fields.ski ?? keyIdentifier(fields.spkiDer),
  };
}

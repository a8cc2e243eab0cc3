import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import forge from 'node-forge';

export interface CaMaterial {
  /** PEM of the self-signed CA certificate. */
  readonly certPem: string;
  /** PEM (PKCS#8) of its private key: a secret, stored with mode 0600. */
  readonly keyPem: string;
  /** SHA-256 of the certificate's DER, colon-separated hex (what browsers and `openssl x509 -fingerprint` show). */
  readonly fingerprint: string;
}

const CA_YEARS = 5;

/**
 * The interception CA: an RSA-2048 key made by node:crypto (forge's pure-JS keygen takes seconds) and a
 * self-signed certificate built with node-forge, limited to signing leaf certificates: basicConstraints
 * CA:TRUE with pathLen 0 (RFC 5280 §4.2.1.9), keyUsage keyCertSign + cRLSign, critical (§4.2.1.3).
 */
export function createCa(commonName = `egress-inspector interception CA (${hostname()})`, now = new Date()): CaMaterial {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  // RFC 5280 §4.1.2.2: a positive serial of up to 20 octets; the leading 0x01 keeps it positive and non-zero.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = new Date(now.getTime() - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now.getTime());
  cert.validity.notAfter.setFullYear(now.getFullYear() + CA_YEARS);
  const subject = [
    { name: 'commonName', value: commonName },
    { name: 'organizationName', value: 'egress-inspector' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  // One signature, once: forge's pure-JS RSA signing (~100 ms) is fine here; leaf certificates will be signed natively.
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  const fingerprint = createHash('sha256').update(der).digest('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:');
  return { certPem, keyPem, fingerprint };
}

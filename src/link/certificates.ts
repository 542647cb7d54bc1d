/**
 * The cluster's certificates: one CA per cluster, and one certificate per
 * member (node or witness) signed by it. A member is who its certificate's
 * SAN says; the cluster's name is in the subject's O, so a link can refuse a
 * member of another cluster. Keys are ECDSA P-256, written as PKCS#8 PEM.
 *
 * These functions do no I/O: they return PEM text, and `skyha init` writes it.
 */
import { webcrypto } from 'node:crypto';
// Before @peculiar/x509: its dependency tsyringe needs the Reflect metadata API.
// @peculiar/x509's dependency tsyringe needs the Reflect metadata API loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

// @peculiar/x509 types its provider with the DOM's Crypto, which Node's webcrypto implements.
x509.cryptoProvider.set(webcrypto as ReturnType<typeof x509.cryptoProvider.get>);

/** The name rule of the config schema (`definitions.name`): it goes into certificates and DNS. */
export const MEMBER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const CA_VALIDITY_YEARS = 10;
export const MEMBER_VALIDITY_YEARS = 2;
/** notBefore lies this far in the past, so that a member whose clock is a little behind accepts a fresh certificate. */
const BACKDATE_MS = 5 * 60_000;

export interface PemPair {
  /** The certificate, PEM. */
  certPem: string;
  /** Its private key, PKCS#8 PEM ("BEGIN PRIVATE KEY"). */
  keyPem: string;
}

const EC_KEY: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

function checkName(what: string, name: string): void {
  if (!MEMBER_NAME.test(name)) throw new RangeError(`${what} ${JSON.stringify(name)} is not a valid name (lowercase letters, digits and inner dashes, at most 63 characters)`);
}

/** 128 random bits as a positive DER INTEGER in minimal form: first byte in 0x40..0x7f. */
function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return Buffer.from(bytes).toString('hex');
}

function validity(years: number, now: Date): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  const notAfter = new Date(now.getTime());
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + years);
  return { notBefore, notAfter };
}

async function newKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** A new cluster CA: self-signed, CN "skyha CA <cluster>", may sign certificates only, valid 10 years. */
export async function createCa(cluster: string, now: Date = new Date()): Promise<PemPair> {
  checkName('cluster name', cluster);
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [`skyha CA ${cluster}`] }, { O: [cluster] }],
    ...validity(CA_VALIDITY_YEARS, now),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await privateKeyPem(keys.privateKey) + '\n' };
}

/**
 * A member's certificate, signed by the cluster CA: CN and SAN DNS = the
 * member's name, O = the cluster's name, for both ends of a mutual-TLS link
 * (serverAuth + clientAuth), valid 2 years, with a random serial.
 */
export async function issueMemberCert(ca: PemPair, name: string, cluster: string, now: Date = new Date()): Promise<PemPair> {
  checkName('member name', name);
  checkName('cluster name', cluster);
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(ca.keyPem), EC_KEY, false, ['sign']);
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: [{ CN: [name] }, { O: [cluster] }],
    issuer: caCert.subjectName,
    ...validity(MEMBER_VALIDITY_YEARS, now),
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: name }], false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await privateKeyPem(keys.privateKey) + '\n' };
}

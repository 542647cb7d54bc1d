/**
 * Checks the TLS material a config names: the cluster CA always, and one
 * member's certificate and key when validating for that member. A member is
 * who its certificate says, so the SAN must name it and the CA must sign it.
 */
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { ClusterConfig, MemberConfig } from './model.js';
import type { ConfigProblem } from './problem.js';
import type { KeyPath } from './source.js';

function problem(path: KeyPath, message: string, locateAt?: KeyPath): ConfigProblem {
  return { severity: 'error', kind: 'tls', path, message, ...(locateAt ? { locateAt } : {}) };
}

function read(file: string): { text?: string; why?: string } {
  try {
    return { text: readFileSync(file, 'utf8') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { why: code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory' : `unreadable (${code ?? (e as Error).message})` };
  }
}

/** The names a certificate's SAN gives (DNS entries). */
export function sanNames(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
}

function samePublicKey(key: KeyObject, cert: X509Certificate): boolean {
  try {
    return createPublicKey(key).export({ type: 'spki', format: 'der' }).equals(cert.publicKey.export({ type: 'spki', format: 'der' }));
  } catch {
    return false;
  }
}

export function checkTls(config: ClusterConfig, member: MemberConfig | undefined, has: (p: KeyPath) => boolean): ConfigProblem[] {
  const caPath: KeyPath = ['tls', 'ca'];
  const caAt = has(caPath) ? undefined : has(['tls']) ? ['tls'] : [];
  const ca = read(config.tls.ca);
  if (!ca.text) return [problem(caPath, `expected the cluster CA certificate (PEM) at ${config.tls.ca}, found ${ca.why}; \`skyha init\` writes one`, caAt)];
  let caCert: X509Certificate;
  try {
    caCert = new X509Certificate(ca.text);
  } catch {
    return [problem(caPath, `expected a PEM certificate in ${config.tls.ca}, found something else`, caAt)];
  }
  if (!caCert.ca) return [problem(caPath, `expected a CA certificate in ${config.tls.ca}, found a certificate that is not a CA`, caAt)];
  if (!member) return [];

  const base: KeyPath = [member.role === 'node' ? 'nodes' : 'witnesses', member.name];
  const where = (field: 'cert' | 'key'): { path: KeyPath; locateAt?: KeyPath } => {
    if (has([...base, 'tls', field])) return { path: [...base, 'tls', field] };
    if (has(['tls', field])) return { path: ['tls', field] };
    return { path: [...base, 'tls', field], locateAt: base };
  };
  const out: ConfigProblem[] = [];
  const certAt = where('cert');
  const keyAt = where('key');
  const certFile = read(member.tls.cert);
  let cert: X509Certificate | undefined;
  if (!certFile.text) out.push(problem(certAt.path, `expected ${member.name}'s certificate at ${member.tls.cert}, found ${certFile.why}`, certAt.locateAt));
  else {
    try {
      cert = new X509Certificate(certFile.text);
    } catch {
      out.push(problem(certAt.path, `expected a PEM certificate in ${member.tls.cert}, found something else`, certAt.locateAt));
    }
  }
  if (cert) {
    if (!cert.checkIssued(caCert) || !cert.verify(caCert.publicKey)) {
      out.push(problem(certAt.path, `expected a certificate signed by the cluster CA ${config.tls.ca}, found one issued by ${cert.issuer.replace(/\n/g, ', ')}`, certAt.locateAt));
    } else if (!sanNames(cert).includes(member.name)) {
      out.push(problem(certAt.path, `expected a certificate whose SAN names ${member.name}, found ${sanNames(cert).join(', ') || 'no DNS name'}`, certAt.locateAt));
    }
    const now = Date.now();
    if (Date.parse(cert.validTo) < now) out.push(problem(certAt.path, `expected a certificate valid today, found one that expired on ${cert.validTo}`, certAt.locateAt));
    else if (Date.parse(cert.validFrom) > now) out.push(problem(certAt.path, `expected a certificate valid today, found one valid only from ${cert.validFrom}`, certAt.locateAt));
  }
  const keyFile = read(member.tls.key);
  if (!keyFile.text) out.push(problem(keyAt.path, `expected ${member.name}'s private key at ${member.tls.key}, found ${keyFile.why}`, keyAt.locateAt));
  else {
    // Parse first: the mode of a file that is no key at all is beside the point.
    let key: KeyObject | undefined;
    try {
      key = createPrivateKey(keyFile.text);
    } catch {
      out.push(problem(keyAt.path, `expected a PEM private key in ${member.tls.key}, found something else`, keyAt.locateAt));
    }
    if (key) {
      const mode = statSync(member.tls.key).mode & 0o777;
      if (mode & 0o077) out.push(problem(keyAt.path, `expected ${member.tls.key} readable by its owner only (mode 0600), found mode 0${mode.toString(8)}`, keyAt.locateAt));
      if (cert && !samePublicKey(key, cert)) {
        out.push(problem(keyAt.path, `expected the private key of ${member.tls.cert}, found a key that does not match it`, keyAt.locateAt));
      }
    }
  }
  return out;
}

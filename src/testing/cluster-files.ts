/**
 * A whole cluster's files for tests and benchmarks: the config file, the CA
 * and every member's certificate, in one directory, as `skyha init` would
 * write them for real machines. Members get their own data directories.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createCa, issueMemberCert } from '../link/certificates.js';

export interface MemberSpec {
  name: string;
  address: string;
  linkPort?: number;
  apiPort?: number;
  labels?: Record<string, string>;
}

export interface ClusterSpec {
  name: string;
  profile?: 'lan' | 'wan' | 'local' | 'test';
  timings?: Record<string, string>;
  nodes: MemberSpec[];
  witnesses?: MemberSpec[];
  /** The `modules:` mapping, as it goes into the YAML (snake_case keys). */
  modules?: Record<string, unknown>;
  log?: { level?: string; format?: string };
  /** The `api:` mapping, as it goes into the YAML. */
  api?: Record<string, unknown>;
}

export interface ClusterFiles {
  dir: string;
  config: string;
  /** The PEMs of the CA, for tests that forge members. */
  ca: { certPem: string; keyPem: string };
}

export async function writeClusterFiles(dir: string, spec: ClusterSpec): Promise<ClusterFiles> {
  mkdirSync(join(dir, 'certs'), { recursive: true });
  const ca = await createCa(spec.name);
  writeFileSync(join(dir, 'certs', 'ca.crt'), ca.certPem);
  writeFileSync(join(dir, 'certs', 'ca.key'), ca.keyPem, { mode: 0o600 });
  const members = [...spec.nodes, ...(spec.witnesses ?? [])];
  for (const m of members) {
    const pair = await issueMemberCert(ca, m.name, spec.name);
    writeFileSync(join(dir, 'certs', `${m.name}.crt`), pair.certPem);
    writeFileSync(join(dir, 'certs', `${m.name}.key`), pair.keyPem, { mode: 0o600 });
  }
  const entry = (m: MemberSpec) => ({
    address: m.address,
    ...(m.linkPort ? { link_port: m.linkPort } : {}),
    ...(m.apiPort ? { api_port: m.apiPort } : {}),
    ...(m.labels ? { labels: m.labels } : {}),
    data_dir: `data/${m.name}`,
  });
  const doc: Record<string, unknown> = {
    cluster: { name: spec.name, profile: spec.profile ?? 'lan', ...(spec.timings ? { timings: spec.timings } : {}) },
    tls: { ca: 'certs/ca.crt' },
    nodes: Object.fromEntries(spec.nodes.map((m) => [m.name, entry(m)])),
    ...(spec.witnesses?.length ? { witnesses: Object.fromEntries(spec.witnesses.map((m) => [m.name, entry(m)])) } : {}),
    log: { level: spec.log?.level ?? 'info', format: spec.log?.format ?? 'json' },
    ...(spec.api ? { api: spec.api } : {}),
    ...(spec.modules ? { modules: spec.modules } : {}),
  };
  const config = join(dir, 'skyha.yaml');
  writeFileSync(config, stringify(doc));
  return { dir, config, ca };
}

/**
 * From the file's data (already checked against the schema) to ClusterConfig.
 * Static defaults are those the schema documents; timing defaults come from
 * the profile. A unit test checks that the two agree.
 */
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { parseDuration } from '../core/duration.js';
import type { CheckerConfig, ClusterConfig, GateConfig, MemberConfig, MemberRole, ModuleConfig } from './model.js';
import { PROFILES, TIMING_KEYS, type ProfileName, type Timings } from './profiles.js';

type Raw = Record<string, any>;

/** Milliseconds of a duration the schema already accepted. */
function ms(text: string): number {
  const v = parseDuration(text);
  if (v === undefined) throw new Error(`internal: unchecked duration ${text}`);
  return v;
}
const msOr = (text: unknown, fallback: number): number => (typeof text === 'string' ? ms(text) : fallback);

export function resolveConfig(raw: Raw, file: string): ClusterConfig {
  const dir = resolvePath(file, '..');
  const abs = (p: string): string => (isAbsolute(p) ? p : resolvePath(dir, p));

  const cluster: Raw = raw.cluster;
  const profile: ProfileName = cluster.profile ?? 'lan';
  const timings: Timings = { ...PROFILES[profile] };
  for (const [field, key] of Object.entries(TIMING_KEYS) as [keyof Timings, string][]) {
    const override = cluster.timings?.[key];
    if (override !== undefined) timings[field] = ms(override);
  }
  const dataDir = abs(cluster.data_dir ?? '/var/lib/skyha');
  const tls: Raw = raw.tls ?? {};
  const certTemplate: string = tls.cert ?? 'certs/{member}.crt';
  const keyTemplate: string = tls.key ?? 'certs/{member}.key';

  const member = (name: string, m: Raw, role: MemberRole): MemberConfig => ({
    name,
    role,
    address: m.address,
    bind: m.bind ?? m.address,
    linkPort: m.link_port ?? 7400,
    apiPort: m.api_port ?? 7401,
    labels: { ...(m.labels ?? {}) },
    dataDir: m.data_dir ? abs(m.data_dir) : resolvePath(dataDir, name),
    tls: {
      cert: abs(m.tls?.cert ?? certTemplate.replaceAll('{member}', name)),
      key: abs(m.tls?.key ?? keyTemplate.replaceAll('{member}', name)),
    },
  });
  const nodes = Object.entries<Raw>(raw.nodes ?? {}).map(([n, m]) => member(n, m, 'node'));
  const witnesses = Object.entries<Raw>(raw.witnesses ?? {}).map(([n, m]) => member(n, m, 'witness'));
  const allNodeNames = nodes.map((n) => n.name);

  const modules = Object.entries<Raw>(raw.modules ?? {}).map(([name, m]) => resolveModule(name, m, timings, allNodeNames, abs, dir));

  const config: ClusterConfig = {
    file: resolvePath(file),
    dir,
    name: cluster.name,
    profile,
    timings,
    tls: { ca: abs(tls.ca ?? 'certs/ca.crt') },
    nodes,
    witnesses,
    gate: { engine: raw.gate?.engine ?? 'builtin', haproxyBinary: abs(raw.gate?.haproxy_binary ?? '/usr/sbin/haproxy') },
    log: { level: raw.log?.level ?? 'info', format: raw.log?.format ?? 'auto' },
    api: {
      tls: raw.api?.tls ?? true,
      users: Object.entries<Raw>(raw.api?.users ?? {}).map(([name, u]) => ({ name, role: u.role, ...(u.token_sha256 ? { tokenSha256: u.token_sha256 as string } : {}) })),
      publicMetrics: raw.api?.public_metrics ?? false,
    },
    modules,
  };
  if (cluster.two_node_policy) config.twoNodePolicy = cluster.two_node_policy;
  return config;
}

function resolveModule(name: string, m: Raw, timings: Timings, allNodes: string[], abs: (p: string) => string, dir: string): ModuleConfig {
  const base = {
    name,
    nodes: (m.nodes as string[] | undefined) ?? allNodes,
    start: m.start as string,
    startTimeout: msOr(m.start_timeout, 30_000),
    stopTimeout: msOr(m.stop_timeout, 30_000),
    workingDir: m.working_dir ? abs(m.working_dir) : dir,
    environment: { ...(m.environment ?? {}) },
    checkers: ((m.checkers ?? []) as Raw[]).map((c, i) => resolveChecker(c, i, timings, abs)),
    restart: { maxRestarts: m.restart?.max_restarts ?? 3, window: msOr(m.restart?.window, 300_000) },
    ...(m.stop ? { stop: m.stop as string } : {}),
  };
  if (m.kind === 'farm') {
    const g: Raw | undefined = m.gate;
    let gate: GateConfig | undefined;
    if (g) {
      gate = {
        port: g.port,
        mode: g.mode ?? 'http',
        balance: g.balance ?? 'round_robin',
        weights: { ...(g.weights ?? {}) },
        connectTimeout: msOr(g.connect_timeout, 1000),
        responseTimeout: msOr(g.response_timeout, 30_000),
        maxConnections: g.max_connections ?? 10_000,
        workers: g.workers ?? 1,
      };
      if (g.idempotent_header) gate.idempotentHeader = g.idempotent_header;
      if (g.slow_p99) gate.slowP99 = ms(g.slow_p99);
      if (g.tls) gate.tls = { cert: abs(g.tls.cert), key: abs(g.tls.key) };
    }
    return { ...base, kind: 'farm', port: m.port, ...(gate ? { gate } : {}) };
  }
  return {
    ...base,
    kind: 'mirror',
    directories: m.directories,
    failback: m.failback ?? (m.preferred_node ? 'automatic' : 'manual'),
    readOnlyOnSecondaries: m.read_only_on_secondaries ?? true,
    ...(m.preferred_node ? { preferredNode: m.preferred_node } : {}),
  };
}

function resolveChecker(c: Raw, index: number, timings: Timings, abs: (p: string) => string): CheckerConfig {
  const interval = msOr(c.interval, timings.checkInterval);
  const base = {
    name: c.name ?? `${c.kind}-${index}`,
    interval,
    timeout: msOr(c.timeout, timings.checkTimeout),
    rise: c.rise ?? 2,
    fall: c.fall ?? 3,
    warmup: msOr(c.warmup, interval),
  };
  switch (c.kind) {
    case 'process':
      return { ...base, kind: 'process', ...(c.pid_file ? { pidFile: abs(c.pid_file) } : {}) };
    case 'tcp':
      return { ...base, kind: 'tcp', ...(c.host ? { host: c.host } : {}), port: c.port };
    case 'http':
      return { ...base, kind: 'http', url: c.url, method: c.method ?? 'GET', expectStatus: c.expect_status ?? 200, ...(c.expect_body !== undefined ? { expectBody: c.expect_body } : {}) };
    default:
      return { ...base, kind: 'command', command: c.command };
  }
}

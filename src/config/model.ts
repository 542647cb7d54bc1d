/**
 * The cluster config after validation and resolution: defaults filled in
 * (static ones from the schema, timings from the profile), durations in
 * milliseconds, paths absolute. Everything past the loader reads only this.
 */
import type { ProfileName, Timings } from './profiles.js';

export type MemberRole = 'node' | 'witness';
export type TwoNodePolicy = 'stop_when_alone' | 'preferred_node_wins';

export interface MemberConfig {
  name: string;
  role: MemberRole;
  /** Where the other members reach it. */
  address: string;
  /** Where it listens. */
  bind: string;
  linkPort: number;
  apiPort: number;
  labels: Readonly<Record<string, string>>;
  dataDir: string;
  tls: { cert: string; key: string };
}

interface CheckerBase {
  name: string;
  interval: number;
  timeout: number;
  rise: number;
  fall: number;
  /** The first check runs after a random delay of up to this. */
  warmup: number;
}
export type CheckerConfig =
  | (CheckerBase & { kind: 'process'; pidFile?: string })
  /** `host` absent: this node's address (SKYHA_NODE_ADDRESS), where the gate reaches the application. */
  | (CheckerBase & { kind: 'tcp'; host?: string; port: number })
  | (CheckerBase & { kind: 'http'; url: string; method: 'GET' | 'HEAD'; expectStatus: number; expectBody?: string })
  | (CheckerBase & { kind: 'command'; command: string });
export type CheckerKind = CheckerConfig['kind'];

export interface RestartPolicy {
  maxRestarts: number;
  window: number;
}

export interface GateConfig {
  port: number;
  mode: 'http' | 'tcp';
  balance: 'round_robin' | 'least_connections' | 'client_address' | 'cookie';
  weights: Readonly<Record<string, number>>;
  idempotentHeader?: string;
  slowP99?: number;
  connectTimeout: number;
  responseTimeout: number;
  maxConnections: number;
  /** Built-in engine: gate worker processes sharing the port. */
  workers: number;
  tls?: { cert: string; key: string };
}

interface ModuleBase {
  name: string;
  /** The nodes that run this module, in config order. */
  nodes: readonly string[];
  start: string;
  stop?: string;
  startTimeout: number;
  stopTimeout: number;
  workingDir: string;
  environment: Readonly<Record<string, string>>;
  checkers: readonly CheckerConfig[];
  restart: RestartPolicy;
}
export interface FarmModuleConfig extends ModuleBase {
  kind: 'farm';
  port: number;
  gate?: GateConfig;
}
export interface MirrorModuleConfig extends ModuleBase {
  kind: 'mirror';
  directories: readonly string[];
  preferredNode?: string;
  failback: 'automatic' | 'manual';
  /** Bind-mount the directories read-only on secondaries (the agent writes through a private view). */
  readOnlyOnSecondaries: boolean;
}
export type ModuleConfig = FarmModuleConfig | MirrorModuleConfig;

/** What a caller of the REST API may do: read, operate (switchover, drain, restart, barrier), everything. */
export type ApiRole = 'monitor' | 'control' | 'admin';

export interface ApiUser {
  name: string;
  role: ApiRole;
  /** SHA-256 of the bearer token, hex; absent: certificate only. */
  tokenSha256?: string;
}

export interface ApiConfig {
  tls: boolean;
  users: readonly ApiUser[];
  publicMetrics: boolean;
}

export interface ClusterConfig {
  /** Absolute path of the config file, and its directory (base of relative paths). */
  file: string;
  dir: string;
  name: string;
  profile: ProfileName;
  timings: Timings;
  twoNodePolicy?: TwoNodePolicy;
  tls: { ca: string };
  nodes: readonly MemberConfig[];
  witnesses: readonly MemberConfig[];
  gate: { engine: 'builtin' | 'haproxy'; haproxyBinary: string };
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'; format: 'auto' | 'json' | 'pretty' };
  api: ApiConfig;
  modules: readonly ModuleConfig[];
}

/** Nodes and witnesses together: the voters of the majority lease. */
export function voters(config: ClusterConfig): readonly MemberConfig[] {
  return [...config.nodes, ...config.witnesses];
}

export function findMember(config: ClusterConfig, name: string): MemberConfig | undefined {
  return voters(config).find((m) => m.name === name);
}

/**
 * Which engine serves a farm module's gate: the built-in one (gate worker
 * processes) or HAProxy, per `gate.engine` in the config. Both take the same
 * backends and report the same shape (src/gate/backend.ts).
 */
import type { ClusterConfig, FarmModuleConfig, MemberConfig } from '../config/model.js';
import type { GateEngine } from '../gate/backend.js';
import { GateProcess } from '../gate/gate-process.js';
import { HaproxyGate } from '../gate/haproxy/haproxy-gate.js';
import type { Logger } from '../observe/log.js';

export interface GateEngineSpec {
  config: ClusterConfig;
  self: MemberConfig;
  module: FarmModuleConfig;
  runDir: string;
  logger: Logger;
  onObserved: (node: string, from: string, to: string, why: string) => void;
}

export function createGateEngine(spec: GateEngineSpec): GateEngine {
  const gate = spec.module.gate!;
  const common = {
    module: spec.module.name,
    bind: spec.self.bind,
    port: gate.port,
    mode: gate.mode,
    balance: gate.balance,
    connectTimeout: gate.connectTimeout,
    responseTimeout: gate.responseTimeout,
    maxConnections: gate.maxConnections,
    ...(gate.idempotentHeader ? { idempotentHeader: gate.idempotentHeader } : {}),
    ...(gate.slowP99 !== undefined ? { slowP99: gate.slowP99 } : {}),
    ...(gate.tls ? { tls: gate.tls } : {}),
  };
  if (spec.config.gate.engine === 'haproxy') {
    return new HaproxyGate({ ...common, haproxyBinary: spec.config.gate.haproxyBinary, runDir: spec.runDir, logger: spec.logger, onObserved: spec.onObserved });
  }
  return new GateProcess({ ...common, workers: gate.workers }, spec.logger, spec.onObserved);
}

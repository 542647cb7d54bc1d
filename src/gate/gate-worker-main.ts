/**
 * A gate worker: one process running the built-in gate for one farm module,
 * forked by the agent as a node:cluster worker (gate-process.ts), so that
 * several workers accept on the same socket (one per core when
 * `gate.workers` says so).
 *
 * Why a process of its own: a gate at full load keeps an event loop busy;
 * inside the agent it would delay heartbeats and lease renewals — the very
 * things that must never wait.
 *
 * Protocol on the IPC channel (worker → parent first): `hello`; then
 * (parent → worker) `start`,
 * `update`, `close`; (worker → parent): `ready`, `report` every 250 ms and
 * when a backend's observed state changes, `observed`, `error`. The worker
 * exits when the channel closes: it never outlives its agent.
 */
import type { BackendState, GateReport } from './backend.js';
import { BuiltinGate, type BuiltinGateOptions } from './builtin-gate.js';
import type { Observed } from './observed-health.js';

export type WorkerRequest =
  | { op: 'start'; options: Omit<BuiltinGateOptions, 'logger' | 'onObserved'>; backends: readonly BackendState[] }
  | { op: 'update'; backends: readonly BackendState[] }
  | { op: 'close' };

export type WorkerReport =
  /** Listening for requests on the IPC channel: messages sent before this would be lost. */
  | { ev: 'hello' }
  | { ev: 'ready'; port: number }
  | { ev: 'report'; report: GateReport }
  | { ev: 'observed'; node: string; from: Observed; to: Observed; why: string }
  | { ev: 'error'; message: string };

const REPORT_EVERY = 250;

function send(msg: WorkerReport): void {
  if (process.connected) process.send!(msg);
}

let gate: BuiltinGate | undefined;
let timer: NodeJS.Timeout | undefined;

async function onMessage(msg: WorkerRequest): Promise<void> {
  switch (msg.op) {
    case 'start': {
      gate = new BuiltinGate({ ...msg.options, onObserved: (node, from, to, why) => send({ ev: 'observed', node, from, to, why }) });
      gate.update(msg.backends);
      await gate.start();
      send({ ev: 'ready', port: gate.port });
      timer = setInterval(() => send({ ev: 'report', report: gate!.report() }), REPORT_EVERY);
      timer.unref();
      return;
    }
    case 'update':
      gate?.update(msg.backends);
      send({ ev: 'report', report: gate!.report() });
      return;
    case 'close':
      await shutdown();
      return;
  }
}

async function shutdown(): Promise<void> {
  if (timer) clearInterval(timer);
  await gate?.close();
  process.exit(0);
}

process.on('message', (msg: WorkerRequest) => {
  onMessage(msg).catch((err: Error) => {
    send({ ev: 'error', message: err.message });
    process.exit(1);
  });
});
process.on('disconnect', () => void shutdown());
send({ ev: 'hello' });

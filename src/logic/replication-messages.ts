/** Messages between a mirror module's primary and its secondaries. Every one carries the epoch (fencing). */

/** A change's payload, opaque to the logic: an encoded change record (binary) in the agent, a label in the simulator. */
export type ReplicationData = string | Uint8Array;

export type ReplicationMessage =
  /** One captured change, in order. `data` is opaque here (the driver's byte ranges). */
  | { type: 'repl-change'; module: string; epoch: number; seq: number; data: ReplicationData }
  /** Everything at once, when the secondary's history cannot be continued (the driver fills `data`). */
  | { type: 'repl-snapshot'; module: string; epoch: number; seq: number; data: ReplicationData }
  /** Durable up to `seq` (contiguous). */
  | { type: 'repl-ack'; module: string; epoch: number; seq: number }
  /** A secondary (re)joining: what it holds, so the primary can resume or resync it. */
  | { type: 'repl-hello'; module: string; epoch: number; dataEpoch: number; applied: number };

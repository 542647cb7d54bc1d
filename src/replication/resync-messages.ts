/**
 * A resync's messages, outside the numbered change stream (the replication
 * machine's `repl-snapshot` position ends a resync). Binary parts travel
 * raw after the JSON (link frame version 2); big parts come in chunks of at
 * most RESYNC_CHUNK_BYTES with `last` on the final one.
 *
 *   primary → secondary  repl-resync-begin     the common point, and the paths whose hashes it wants
 *   secondary → primary  repl-resync-manifest  what it has there, and what it changed itself
 *   primary → secondary  repl-resync           change records, then repl-snapshot (the machine's)
 */
export const RESYNC_CHUNK_BYTES = 1024 * 1024;

export interface ReplResyncBeginMessage {
  type: 'repl-resync-begin';
  module: string;
  epoch: number;
  id: string;
  /** The latest position both data went through, or null: compare everything. */
  common: [number, number] | null;
  /** Manifest entries of kind `query`. */
  data: Buffer;
  last: boolean;
}

export interface ReplResyncManifestMessage {
  type: 'repl-resync-manifest';
  module: string;
  epoch: number;
  id: string;
  /** The secondary could not tell its own changes: this is its whole tree, every path its own. */
  full: boolean;
  data: Buffer;
  last: boolean;
}

/** One change record of a resync. */
export interface ReplResyncMessage {
  type: 'repl-resync';
  module: string;
  epoch: number;
  /** The resync's (its begin's): records of one that was stopped are dropped. */
  id: string;
  data: Buffer;
}

export type ResyncMessage = ReplResyncBeginMessage | ReplResyncManifestMessage | ReplResyncMessage;

/** Cuts encoded entries into chunks of at most RESYNC_CHUNK_BYTES (one chunk, maybe empty, at least). */
export function* chunks(entries: Iterable<Buffer>): Generator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  for (const e of entries) {
    if (size + e.length > RESYNC_CHUNK_BYTES && parts.length > 0) {
      yield Buffer.concat(parts);
      parts = [];
      size = 0;
    }
    parts.push(e);
    size += e.length;
  }
  yield Buffer.concat(parts);
}

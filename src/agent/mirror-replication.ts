/**
 * File replication of one mirror module on this node: the effects behind
 * the replication machines (src/logic/replication-*.ts) of the member
 * machine.
 *
 * - Capture runs on every node, all the time, so that a promotion starts
 *   the application without waiting for watches; what a secondary's own
 *   applier wrote is dropped from the dirty set when the node becomes
 *   primary of a new epoch (flush, then clear).
 * - Primary: dirty paths are read (path-reader.ts) and each record is fed
 *   to the machine as a `change`; the machine numbers, ships and tracks
 *   them. A barrier first flushes capture and ships everything dirty, then
 *   asks the machine. A secondary that needs a snapshot gets the whole tree
 *   as `repl-resync` records, then the machine's `repl-snapshot` position.
 * - Secondary: records are applied one at a time (applier.ts); the machine's
 *   acknowledgement and the persisted position wait for the apply (the
 *   agent chains them). After a resync, what the primary did not send is
 *   deleted.
 */
import { cpSync, mkdirSync, readdirSync, renameSync, rmSync, type Dirent } from 'node:fs';
import { dirname, join } from 'node:path';
import type { MirrorModuleConfig } from '../config/model.js';
import type { Logger } from '../observe/log.js';
import { Applier } from '../replication/applier.js';
import { ChangeCapture } from '../replication/change-capture.js';
import { readPath } from '../replication/path-reader.js';
import { decodeRecord, encodeRecord, STAGING_DIR, type ChangeRecord } from '../replication/record.js';

/** Block data per record: well under the links' frame limit. */
const MAX_RECORD_BYTES = 1024 * 1024;

export interface MirrorReplicationDeps {
  readonly module: MirrorModuleConfig;
  /** The module's replicated directories on this node, absolute. */
  readonly roots: readonly string[];
  /** This module's private directory in the agent's data directory. */
  readonly stateDir: string;
  readonly log: Logger;
  /** A captured change, for the member machine. */
  change(data: Buffer): void;
  /** Out-of-band messages (resync records) to a secondary; false if dropped. */
  send(to: string, message: { type: 'repl-resync'; module: string; epoch: number; data: Buffer }): boolean;
  /** Resolves when the link to `to` can take more (false: no link). */
  writable(to: string): Promise<boolean>;
  /** Resolves when the links to every other node of the module can take more (changes are not dropped for a full buffer). */
  writableAll(): Promise<void>;
  emit(reason: string, text: string, level?: 'warn' | 'error'): void;
}

export class MirrorReplication {
  readonly capture: ChangeCapture;
  private readonly applier: Applier;
  /** Epoch under which this node is primary, or undefined. */
  private primaryEpoch: number | undefined;
  /** What the secondaries have of each file: block hashes, keyed `root\0path`. */
  private readonly hashes = new Map<string, Buffer>();
  private pumping: Promise<void> | undefined;
  /** Paths a resync in progress wrote on this secondary. */
  private resyncSeen: Set<string> | undefined;
  /** An apply failed: nothing more is acknowledged until the agent restarts (a resync then). */
  broken: string | undefined;
  shippedRecords = 0;
  appliedRecords = 0;

  constructor(private readonly d: MirrorReplicationDeps) {
    this.applier = new Applier({ roots: d.roots, journalPath: join(d.stateDir, 'journal') });
    this.capture = new ChangeCapture({
      roots: d.roots,
      sentinelDir: join(d.stateDir, 'sentinel'),
      onDirty: () => this.kick(),
      onOverflow: (root) => d.emit('REPLICATION_WATCH_OVERFLOW', `the kernel dropped change events under ${d.roots[root]}: every path there is compared again`, 'warn'),
      onError: (message) => d.log.error(`change watcher of ${d.module.name}: ${message}`),
      onExit: (why) => d.emit('REPLICATION_WATCH_EXITED', `${why}; changes of ${d.module.name} are no longer captured`, 'error'),
    });
  }

  /** Replays an interrupted patch, empties the staging areas, and starts capture. */
  async start(): Promise<void> {
    const replayed = await this.applier.recover();
    if (replayed) this.d.emit('REPLICATION_JOURNAL_REPLAYED', `replayed an interrupted change of ${this.d.module.name} from the intent journal`);
    for (const r of this.d.roots) rmSync(join(r, STAGING_DIR), { recursive: true, force: true });
    await this.capture.start();
  }

  close(): Promise<void> {
    return this.capture.close();
  }

  // ---- primary ----

  /** This node is primary under `epoch` (the application is about to start). */
  async becomePrimary(epoch: number): Promise<void> {
    if (this.primaryEpoch === epoch) return;
    // What the applier wrote as a secondary is not a change to ship.
    await this.capture.flush().catch(() => undefined);
    this.capture.take();
    this.hashes.clear();
    this.primaryEpoch = epoch;
  }

  stopPrimary(): void {
    this.primaryEpoch = undefined;
  }

  get isPrimary(): boolean {
    return this.primaryEpoch !== undefined;
  }

  /** Every change made before the call has been handed to the machine. */
  async shipAll(): Promise<void> {
    await this.capture.flush();
    while (this.capture.pending > 0 || this.pumping) {
      this.kick();
      await this.pumping;
    }
  }

  private kick(): void {
    if (this.primaryEpoch === undefined || this.pumping) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      if (this.primaryEpoch !== undefined && this.capture.pending > 0) this.kick();
    });
  }

  private async pump(): Promise<void> {
    while (this.primaryEpoch !== undefined) {
      const [next] = this.capture.take(1);
      if (!next) return;
      const key = `${next.root}\0${next.path}`;
      try {
        const gen = readPath({ roots: this.d.roots, maxRecordBytes: MAX_RECORD_BYTES }, next.root, next.path, this.hashes.get(key));
        for (;;) {
          const step = await gen.next();
          if (step.done) {
            if (step.value.hashes) this.hashes.set(key, step.value.hashes);
            else this.hashes.delete(key);
            if (step.value.changedWhileReading) this.capture.mark(next.root, next.path);
            break;
          }
          this.shippedRecords++;
          this.d.change(encodeRecord(step.value));
          await this.d.writableAll();
        }
      } catch (err) {
        // Unreadable now (permissions, a race with a delete): read it again later.
        this.d.log.warn(`cannot read ${next.path || '.'} under ${this.d.roots[next.root]} of ${this.d.module.name}: ${(err as Error).message}`);
        this.capture.mark(next.root, next.path);
        return;
      }
    }
  }

  /**
   * Sends the whole tree to a secondary that cannot resume; resolves true
   * when every record was written to the link (its `repl-snapshot` position
   * may follow), false if the link went away (the secondary says hello
   * again when it comes back, and gets a new resync).
   */
  async sendTree(to: string, epoch: number): Promise<boolean> {
    let sent = 0;
    for (let root = 0; root < this.d.roots.length; root++) {
      for (const path of walk(this.d.roots[root]!)) {
        const gen = readPath({ roots: this.d.roots, maxRecordBytes: MAX_RECORD_BYTES }, root, path, undefined);
        for (;;) {
          const step = await gen.next();
          if (step.done) break;
          if (!(await this.d.writable(to)) || !this.d.send(to, { type: 'repl-resync', module: this.d.module.name, epoch, data: encodeRecord(step.value) })) {
            await gen.return({ changedWhileReading: false });
            this.d.emit('REPLICATION_RESYNC_ABORTED', `resync of ${this.d.module.name} to ${to} stopped after ${sent} records: the link is gone`, 'warn');
            return false;
          }
          sent++;
        }
      }
    }
    this.d.emit('REPLICATION_RESYNC_SENT', `sent every path of ${this.d.module.name} to ${to} (${sent} records)`);
    return true;
  }

  // ---- secondary ----

  /** Applies one record durably (the acknowledgement waits for it). */
  async apply(data: Uint8Array): Promise<ChangeRecord> {
    const record = await this.applier.apply(data);
    this.appliedRecords++;
    return record;
  }

  /** A record of a resync in progress. */
  async applyResync(data: Uint8Array): Promise<void> {
    const record = decodeRecord(data, this.d.roots.length);
    this.resyncSeen ??= new Set();
    this.resyncSeen.add(`${record.root}\0${record.path}`);
    await this.applier.apply(data);
    this.appliedRecords++;
  }

  /**
   * The resync is complete: what the primary did not send does not exist
   * there. It is not deleted but moved aside, into
   * `<data_dir>/modules/<module>/conflicts/<time>/<directory index>/`, and
   * reported: it may be a write this node made as a primary that nobody
   * else saw. (Telling those from deletions made while this node was away
   * needs the dirty sets' history; until then every such path is kept.)
   */
  async finishResync(): Promise<void> {
    const seen = this.resyncSeen ?? new Set<string>();
    this.resyncSeen = undefined;
    const folder = join(this.d.stateDir, 'conflicts', new Date().toISOString().replace(/[:.]/g, '-'));
    const moved: string[] = [];
    for (let root = 0; root < this.d.roots.length; root++) {
      const gone = new Set<string>();
      for (const path of walk(this.d.roots[root]!)) {
        if (path === '' || seen.has(`${root}\0${path}`)) continue;
        // Under a directory already moved: it went with it.
        if (path.split('/').some((_, i, parts) => i > 0 && gone.has(parts.slice(0, i).join('/')))) continue;
        gone.add(path);
        const to = join(folder, String(root), path);
        mkdirSync(dirname(to), { recursive: true });
        try {
          renameSync(join(this.d.roots[root]!, path), to);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
          cpSync(join(this.d.roots[root]!, path), to, { recursive: true, verbatimSymlinks: true });
          rmSync(join(this.d.roots[root]!, path), { recursive: true, force: true });
        }
        moved.push(`${root}/${path}`);
      }
    }
    if (moved.length > 0) {
      this.d.emit('REPLICATION_RESYNC_CONFLICT', `the resync of ${this.d.module.name} found ${moved.length} path(s) here that the primary does not have (${moved.slice(0, 5).join(', ')}${moved.length > 5 ? ', …' : ''}): moved to ${folder}, not deleted`, 'warn');
    }
  }
}

/** Every path under a root ('' first, then parents before children), the staging area left out. */
function walk(root: string): string[] {
  const out: string[] = [''];
  const visit = (dir: string, rel: string): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (rel === '' && e.name === STAGING_DIR) continue;
      const path = rel ? `${rel}/${e.name}` : e.name;
      out.push(path);
      if (e.isDirectory()) visit(join(dir, e.name), path);
    }
  };
  visit(root, '');
  return out;
}

/**
 * File replication of one mirror module on this node: the effects behind
 * the replication machines (src/logic/replication-*.ts) of the member
 * machine.
 *
 * - The watcher runs on every node, all the time, so that a promotion
 *   starts the application without waiting for watches. Its changes feed
 *   the dirty set from the moment a node becomes primary (what its applier
 *   wrote before is not the application's) until its application has
 *   stopped after it stopped being primary: changes made meanwhile (the
 *   application still stopping, paths captured but not yet shipped) are
 *   this node's own that nobody else has, and become suspects in the
 *   history, compared and kept aside at the next resync.
 * - Every change is written to the module's history (history.ts) with its
 *   position before it can be acknowledged: as primary before the record
 *   reaches the machine, as secondary before it is applied. The history is
 *   the persistent dirty set that resyncs read.
 * - Primary: dirty paths are read (path-reader.ts) and each record is fed
 *   to the machine as a `change`; the machine numbers, ships and tracks
 *   them. A barrier first flushes capture and ships everything dirty, then
 *   asks the machine. A secondary that cannot resume gets a resync
 *   (resync-source.ts), then the machine's `repl-snapshot` position.
 * - Secondary: records are applied one at a time (applier.ts); the machine's
 *   acknowledgement and the persisted position wait for the apply (the
 *   agent chains them). A resync's records go through resync-target.ts,
 *   which sets aside what would overwrite this node's own changes.
 * - Watermarks: while primary, about once a second, once everything
 *   captured is in the history and synced, the history notes the time.
 *   After an unclean stop of a node whose data continues its own primary
 *   epoch, paths whose ctime is past the last watermark are suspects: the
 *   watcher's events for them died with the agent.
 */
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { MirrorModuleConfig } from '../config/model.js';
import type { Logger } from '../observe/log.js';
import { Applier } from '../replication/applier.js';
import { ChangeCapture } from '../replication/change-capture.js';
import { History, pathKey, type Position } from '../replication/history.js';
import { readPath } from '../replication/path-reader.js';
import { decodeRecord, encodeRecord, STAGING_DIR } from '../replication/record.js';
import type { ReplResyncBeginMessage, ReplResyncManifestMessage, ResyncMessage } from '../replication/resync-messages.js';
import { ResyncSource, type ResyncOutcome, type ResyncProgress } from '../replication/resync-source.js';
import { ResyncTarget } from '../replication/resync-target.js';
import { ReadOnlyView, type ViewState } from '../replication/read-only-view.js';
import { walkTreeSliced } from '../replication/tree.js';
import { TimeSlice } from '../core/time-slice.js';

function deferred(): { done: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  return { done, resolve };
}

/** Block data per record: well under the links' frame limit. */
const MAX_RECORD_BYTES = 1024 * 1024;
/** How often a primary notes a watermark while changes come, and at least how often when idle. */
const MARK_EVERY_MS = 1000;
const MARK_IDLE_MS = 30_000;
/** ctime comes from the kernel's coarse clock, and wall clocks get nudged: a watermark is kept this far back. */
const MARK_MARGIN_MS = 1000;

export interface MirrorReplicationDeps {
  readonly module: MirrorModuleConfig;
  /** The module's replicated directories on this node, absolute. */
  readonly roots: readonly string[];
  /** This module's private directory in the agent's data directory. */
  readonly stateDir: string;
  readonly log: Logger;
  /** A captured change, for the member machine. */
  change(data: Buffer): void;
  /** The primary machine's last seq (undefined: not primary). */
  seq(): number | undefined;
  /** The connection to a node that messages go on now (TlsLinks.connection). */
  connection(to: string): number | undefined;
  /** Out-of-band messages (a resync) to a node; false if dropped. */
  send(to: string, message: ResyncMessage): boolean;
  /** Resolves when the link to `to` can take more (false: no link). */
  writable(to: string): Promise<boolean>;
  /** Resolves when the links to every other node of the module can take more (changes are not dropped for a full buffer). */
  writableAll(): Promise<void>;
  /**
   * Resolves when the changes sent and not yet acknowledged by the secondaries in sync are few enough (flow control:
   * a secondary slower than the primary is not flooded until it falls out of the log window).
   */
  inFlightRoom(): Promise<void>;
  emit(reason: string, text: string, level?: 'warn' | 'error'): void;
}

export interface ReplicationReport {
  /** Where this node's data is in the module's history. */
  position: { epoch: number; seq: number };
  watchedDirectories: number;
  overflows: number;
  /** Paths captured and not yet shipped (primary). */
  pending: number;
  shippedRecords: number;
  appliedRecords: number;
  /** Paths this node changed that no record covers (after an unclean stop, or after it stopped being primary), compared at the next resync. */
  suspects: number;
  /** Whether the replicated directories are read-only here now (secondaries), or why not. */
  readOnly: ViewState;
  resyncsSent: { count: number; records: number; bytes: number; running: Array<ResyncProgress & { agoMs: number }>; last?: ResyncOutcome & { to: string; agoMs: number } };
  resyncsReceived: { count: number; records: number; bytes: number; conflicts: number; last?: { agoMs: number; records: number; bytes: number; conflicts: number; full: boolean; folder?: string } };
  broken?: string;
}

export class MirrorReplication {
  readonly capture: ChangeCapture;
  readonly history: History;
  private applier: Applier;
  private readonly view: ReadOnlyView;
  private appRunning = false;
  private readonly source: ResyncSource;
  private readonly target: ResyncTarget;
  /** Epoch under which this node is primary, or undefined. */
  private primaryEpoch: number | undefined;
  /** What the secondaries have of each file: block hashes, keyed `root\0path`. */
  private readonly hashes = new Map<string, Buffer>();
  /** And of each small file, its metadata as sent (path-reader.ts `smallMeta`): a repeated event sends nothing. */
  private readonly smallMetas = new Map<string, string>();
  private pumping: Promise<void> | undefined;
  /** Paths are read one at a time: the change stream and resyncs agree on what was sent (resync-source.ts). */
  private reading: Promise<unknown> = Promise.resolve();
  private markTimer: NodeJS.Timeout | undefined;
  private marking = false;
  private lastMarkAt = 0;
  private appendedSinceMark = false;
  suspects = 0;
  /** Seq of the first part of a staged file whose last part has not come yet. */
  private stagedFrom: number | undefined;
  /** An apply failed: nothing more is acknowledged until the agent restarts (a resync then). */
  broken: string | undefined;
  shippedRecords = 0;
  appliedRecords = 0;

  constructor(private readonly d: MirrorReplicationDeps) {
    this.view = new ReadOnlyView(d.roots, join(d.stateDir, 'rw'), d.module.readOnlyOnSecondaries);
    // The applier and a resync's set-asides write through the writable views (made in start()).
    this.applier = new Applier({ roots: d.roots, journalPath: join(d.stateDir, 'journal') });
    this.history = new History({ path: join(d.stateDir, 'history') });
    this.capture = new ChangeCapture({
      roots: d.roots,
      sentinelDir: join(d.stateDir, 'sentinel'),
      // Every node starts as a secondary: its applier's writes are not changes to ship.
      capturing: false,
      onDirty: () => this.kick(),
      onOverflow: (root) => d.emit('REPLICATION_WATCH_OVERFLOW', `the kernel dropped change events under ${d.roots[root]}: every path there is compared again`, 'warn'),
      onError: (message) => d.log.error(`change watcher of ${d.module.name}: ${message}`),
      onExit: (why) => d.emit('REPLICATION_WATCH_EXITED', `${why}; changes of ${d.module.name} are no longer captured`, 'error'),
    });
    this.source = new ResyncSource({
      module: d.module.name,
      roots: d.roots,
      history: this.history,
      maxRecordBytes: MAX_RECORD_BYTES,
      log: d.log,
      send: d.send,
      writable: d.writable,
      connection: d.connection,
      exclusive: (fn) => this.exclusive(fn),
      streamHashes: this.hashes,
      recapture: (root, path) => this.capture.mark(root, path),
      emit: d.emit,
    });
    this.target = new ResyncTarget({
      module: d.module.name,
      roots: d.roots,
      writeRoots: () => this.view.writeRoots,
      history: this.history,
      stateDir: d.stateDir,
      send: (message) => (this.resyncFrom ? d.send(this.resyncFrom, message) : false),
      writable: () => (this.resyncFrom ? d.writable(this.resyncFrom) : Promise.resolve(false)),
      emit: d.emit,
    });
  }

  /** The primary whose resync this node answers. */
  private resyncFrom: string | undefined;

  /**
   * Replays an interrupted patch, empties the staging areas, finds what
   * changed unrecorded before an unclean stop, and starts capture.
   */
  async start(): Promise<void> {
    this.view.prepare();
    this.applier = new Applier({ roots: this.view.writeRoots, journalPath: join(this.d.stateDir, 'journal') });
    const replayed = await this.applier.recover();
    if (replayed) this.d.emit('REPLICATION_JOURNAL_REPLAYED', `replayed an interrupted change of ${this.d.module.name} from the intent journal`);
    // A staging file carries a big file's parts across a restart (the next part continues it); one a day old is left over.
    for (const r of this.view.writeRoots) pruneStaging(join(r, STAGING_DIR), 24 * 3600 * 1000);
    await this.findSuspects();
    await this.capture.start();
    // Every node starts as a secondary (and the agent feeds its machine only after this start).
    if (this.primaryEpoch === undefined && !this.appRunning) this.view.protect();
    if (!this.view.state.readOnly) this.d.log.warn(`the directories of ${this.d.module.name} stay writable on secondaries: ${this.view.state.reason}`);
    this.markTimer = setInterval(() => void this.markNow(), MARK_EVERY_MS);
    this.markTimer.unref();
  }

  /**
   * Data that continues this node's own primary epoch may hold writes the
   * agent never recorded (captured but not yet read when it died, or made
   * after it stopped). Their ctime is past the last watermark.
   */
  private async findSuspects(): Promise<void> {
    if (!this.history.continuesOwnEpoch) return;
    const since = this.history.lastMark ?? -Infinity;
    const found: string[] = [];
    // Sliced, between directories and between paths: a tree of 100,000 paths takes about a second here, and the
    // links are up meanwhile.
    const slice = new TimeSlice();
    for (let root = 0; root < this.d.roots.length; root++) {
      for await (const path of walkTreeSliced(this.d.roots[root]!, slice)) {
        await slice.pause();
        try {
          if (lstatSync(path === '' ? this.d.roots[root]! : join(this.d.roots[root]!, path)).ctimeMs > since) found.push(pathKey(root, path));
        } catch {
          // gone since the listing
        }
      }
    }
    this.history.suspect(found);
    this.suspects = found.length;
    if (found.length > 0) {
      this.d.emit('REPLICATION_SUSPECTS', `${found.length} path(s) of ${this.d.module.name} changed after the last watermark of this node's history (an unclean stop, or changes made while the agent was not running): they are compared with the primary's at the next resync, and kept aside where they differ`, 'warn');
    }
  }

  async close(): Promise<void> {
    clearInterval(this.markTimer);
    this.source.abortAll();
    this.applier.closeStaging({ forGood: true });
    this.view.close();
    if (this.primaryEpoch !== undefined) await this.markNow(2000);
    await this.capture.close();
    await this.history.sync().catch(() => undefined);
    this.history.close();
  }

  /** Notes a watermark once everything captured before now is in the history and durable. */
  private async markNow(flushTimeoutMs = 1000): Promise<void> {
    if (this.primaryEpoch === undefined || this.marking) return;
    const now = Date.now();
    if (!this.appendedSinceMark && now - this.lastMarkAt < MARK_IDLE_MS) return;
    this.marking = true;
    try {
      const shipped = await Promise.race([this.shipAll().then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), flushTimeoutMs).unref())]);
      if (!shipped) return;
      await this.history.sync();
      this.appendedSinceMark = false;
      this.history.mark(now - MARK_MARGIN_MS);
      this.lastMarkAt = now;
    } catch (err) {
      this.d.log.warn(`cannot note a watermark in the history of ${this.d.module.name}: ${(err as Error).message}`);
    } finally {
      this.marking = false;
    }
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.reading.then(fn, fn);
    this.reading = run.catch(() => undefined);
    return run;
  }

  // ---- primary ----

  /**
   * This node is primary under `epoch` (the application is about to
   * start); its data is at `from`. Synchronous: every change made after it
   * returns is captured, the application's first writes too.
   */
  becomePrimary(epoch: number, from: Position): void {
    if (this.primaryEpoch === epoch) return;
    // Writable for the application before it starts.
    this.view.release();
    // A resync this node was receiving will not finish: what it set aside is reported, and is this node's to keep.
    this.target.abandon();
    // Nor will a big file being applied: its staging file is not held open for a whole term as primary.
    this.applier.closeStaging();
    // Changes of an earlier epoch here that were never shipped belong to that epoch's segment.
    this.keepOwnChanges();
    this.ownWritesEnded();
    this.history.start(epoch, from);
    this.stagedFrom = undefined;
    this.capture.capture(true);
    this.hashes.clear();
    this.smallMetas.clear();
    this.primaryEpoch = epoch;
    this.lastMarkAt = 0;
  }

  stopPrimary(): void {
    this.primaryEpoch = undefined;
    this.source.abortAll();
    this.keepOwnChanges();
    if (!this.ownWrites) this.ownWrites = deferred();
    if (!this.appRunning) this.stopCapture();
  }

  /** The module's application started or stopped on this node (read-only again once a secondary's is gone). */
  appState(running: boolean): void {
    this.appRunning = running;
    if (!running && this.primaryEpoch === undefined) this.stopCapture();
  }

  /** Nothing of this node's own writes can come any more (not primary, its application stopped). */
  private stopCapture(): void {
    // What the watcher still reports of before this point is fed, and kept by keepOwnChanges (onDirty).
    const own = this.ownWrites;
    void this.capture.capture(false).then(() => {
      this.keepOwnChanges();
      // Not a later period's (a promotion and another end of it meanwhile).
      if (this.ownWrites === own) this.ownWritesEnded();
    });
    this.view.protect();
  }

  /**
   * From the end of this node's primary epoch until its application has
   * stopped and the watcher has said all it saw before: its own writes may
   * still come, and a resync must not begin under them (its comparison is
   * fixed at the begin, and its end replaces the history that holds them).
   */
  private ownWrites: { done: Promise<void>; resolve: () => void } | undefined;

  private ownWritesEnded(): void {
    this.ownWrites?.resolve();
    this.ownWrites = undefined;
  }

  /**
   * Paths changed here that no record covers (captured while the node was
   * no longer primary, or not yet shipped when it stopped being): nobody
   * else has these changes, so the history records them as suspects — the
   * next resync compares them and keeps this node's version aside where it
   * differs, instead of overwriting it or keeping it unseen.
   */
  private keepOwnChanges(): void {
    const own = this.capture.take();
    if (own.length === 0) return;
    // One write comes in several events: a path already noted is not counted again.
    const added = this.history.suspect(own.map((d) => pathKey(d.root, d.path)));
    this.suspects += added;
    if (added === 0) return;
    this.d.log.info(`${added} path(s) of ${this.d.module.name} changed here after this node stopped being its primary (or before they were shipped): they are compared with the primary's at the next resync, and kept aside where they differ`);
  }

  get isPrimary(): boolean {
    return this.primaryEpoch !== undefined;
  }

  /**
   * Every change made before the call has been handed to the machine (and
   * written to the history). Throws if this node stops being primary
   * meanwhile: what is still dirty is not its to ship.
   */
  async shipAll(): Promise<void> {
    await this.capture.flush();
    for (;;) {
      if (this.primaryEpoch === undefined) throw new Error(`${this.d.module.name} is no longer primary here`);
      if (this.capture.pending === 0 && !this.pumping) return;
      this.kick();
      // The pump may be waiting before it tries an unreadable path again: wait for it, never spin.
      await (this.pumping ?? this.retryAfter ?? new Promise((r) => setTimeout(r, 10)));
    }
  }

  private kick(): void {
    if (this.primaryEpoch === undefined) return this.keepOwnChanges();
    if (this.pumping || this.retryAfter) return;
    this.pumping = this.pump().then((stuck) => {
      this.pumping = undefined;
      if (stuck) {
        // A path could not be read (permissions, a race with a delete): try again a little later, not at once.
        this.retryAfter = new Promise<void>((resolve) => setTimeout(resolve, 100).unref()).then(() => {
          this.retryAfter = undefined;
          this.kick();
        });
      } else if (this.primaryEpoch !== undefined && this.capture.pending > 0) this.kick();
    });
  }

  private retryAfter: Promise<void> | undefined;

  /** Ships dirty paths while primary; resolves true if it stopped on a path it could not read. */
  private async pump(): Promise<boolean> {
    // Small files are read in synchronous calls, and records go out without a turn of the event loop.
    const slice = new TimeSlice();
    while (this.primaryEpoch !== undefined) {
      await slice.pause();
      const [next] = this.capture.take(1);
      if (!next) return false;
      await this.d.inFlightRoom();
      const ok = await this.exclusive(() => this.ship(next.root, next.path));
      if (!ok) return this.primaryEpoch !== undefined;
    }
    return false;
  }

  /** Reads one dirty path and feeds its records to the machine; false if it must wait (unreadable now). */
  private async ship(root: number, path: string): Promise<boolean> {
    const key = pathKey(root, path);
    const epoch = this.primaryEpoch;
    try {
      const gen = readPath({ roots: this.d.roots, maxRecordBytes: MAX_RECORD_BYTES }, root, path, this.hashes.get(key), this.smallMetas.get(key));
      for (;;) {
        const step = await gen.next();
        if (step.done) {
          if (step.value.hashes) this.hashes.set(key, step.value.hashes);
          else this.hashes.delete(key);
          if (step.value.meta !== undefined) this.smallMetas.set(key, step.value.meta);
          else this.smallMetas.delete(key);
          if (step.value.changedWhileReading) this.capture.mark(root, path);
          return true;
        }
        const seq = this.d.seq();
        if (seq === undefined || epoch === undefined || this.primaryEpoch !== epoch) {
          await gen.return({ changedWhileReading: false });
          // Not shipped under the epoch it changed in: one of this node's own changes (see keepOwnChanges).
          this.capture.mark(root, path);
          if (this.primaryEpoch === undefined) this.keepOwnChanges();
          return false;
        }
        const record = step.value;
        // In the history before the machine can ship it: a change is dirty for every secondary before anyone acknowledges it.
        this.history.change({ epoch, seq: seq + 1 }, root, path, record.kind === 'file' && !record.staged ? record.blocks.map((b) => b.index) : undefined);
        this.appendedSinceMark = true;
        this.shippedRecords++;
        this.d.change(encodeRecord(record));
        if (this.primaryEpoch !== epoch) {
          // Refused (the machine no longer takes changes): its history entry is one more seq than the machine's, and a
          // later segment's start notes such paths as suspects; this one is kept as this node's own now.
          this.capture.mark(root, path);
          this.keepOwnChanges();
          await gen.return({ changedWhileReading: false });
          return false;
        }
        await this.d.writableAll();
        await this.d.inFlightRoom();
      }
    } catch (err) {
      // Unreadable now (permissions, a race with a delete): read it again later.
      this.d.log.warn(`cannot read ${path || '.'} under ${this.d.roots[root]} of ${this.d.module.name}: ${(err as Error).message}`);
      this.capture.mark(root, path);
      return false;
    }
  }

  /**
   * Resyncs a secondary whose data is at `theirs` (see resync-source.ts);
   * resolves true when every record is on the link (the machine's
   * `repl-snapshot` position may follow), false if it stopped (the
   * secondary says hello again and gets a new one), undefined if one to the
   * same node is already under way.
   */
  async resync(to: string, epoch: number, theirs: Position): Promise<boolean | undefined> {
    if (this.source.isRunning(to)) return undefined;
    const outcome = await this.source.run(to, epoch, theirs);
    return outcome.complete && this.primaryEpoch === epoch;
  }

  /** The connection to `peer` was replaced: a resync to it stops (the machine starts it over). */
  linkReplaced(peer: string): void {
    this.source.abort(peer);
  }

  onResyncManifest(from: string, msg: ReplResyncManifestMessage): void {
    if (msg.epoch !== this.primaryEpoch) return;
    this.source.onManifest(from, msg);
  }

  // ---- secondary ----

  /**
   * Applies consecutive records durably, in order (see Applier.applyBatch):
   * changes of the stream with their positions (history entries after the
   * apply, made durable by `history.sync()` before the acknowledgement), and
   * records of a resync (`at` undefined; set aside first where they would
   * overwrite this node's own changes).
   */
  async applyBatch(items: ReadonlyArray<{ data: Uint8Array; at?: Position }>): Promise<void> {
    const decoded = items.map(({ data }) => ({ bytes: data, record: decodeRecord(data, this.d.roots.length) }));
    // The history entries go first and their fdatasync runs beside the data's fsyncs (the acknowledgement needs
    // both): an entry for a change that a crash then loses only has that path compared again at a resync.
    for (let i = 0; i < items.length; i++) {
      const { at } = items[i]!;
      const record = decoded[i]!.record;
      if (at) this.history.change(at, record.root, record.path, record.kind === 'file' && !record.staged ? record.blocks.map((b) => b.index) : undefined);
    }
    // A failure here is the acknowledgement's to report: it syncs again (nothing counts as durable yet).
    const synced = this.history.sync().catch(() => undefined);
    try {
      await this.applier.applyBatch(decoded, async (i) => {
        if (items[i]!.at === undefined) await this.target.beforeApply(decoded[i]!.record, items[i]!.data.length);
      });
    } finally {
      await synced;
    }
    for (let i = 0; i < items.length; i++) {
      const { at } = items[i]!;
      const record = decoded[i]!.record;
      this.appliedRecords++;
      if (at && record.kind === 'file' && record.staged) this.stagedFrom = record.last ? undefined : record.first ? at.seq : this.stagedFrom;
    }
  }

  /**
   * The position this node may claim after a crash: before the first part
   * of a big file still being staged (its parts are made durable by the
   * last one's fsync), so that a restart gets the whole file again.
   */
  durableApplied(applied: number): number {
    return this.stagedFrom === undefined ? applied : Math.min(applied, this.stagedFrom - 1);
  }

  /**
   * A begin arrived (it is handled once the records before it are applied):
   * from now on only its records are applied, so that a straggler of a
   * stopped resync cannot land after this one's comparison.
   */
  resyncAnnounced(id: string): void {
    this.announcedResync = id;
  }

  takesResyncRecord(id: string): boolean {
    return id === this.announcedResync;
  }

  private announcedResync: string | undefined;

  /** The primary starts a resync of this node (once this node's own writes have ended, see ownWrites). */
  async resyncBegin(from: string, msg: ReplResyncBeginMessage): Promise<void> {
    if (this.ownWrites) {
      this.d.log.info(`the resync of ${this.d.module.name} from ${from} waits until this node's application has stopped`);
      await this.ownWrites.done;
      // Promoted again meanwhile, or a later begin came: this one is nobody's any more.
      if (this.isPrimary || msg.id !== this.announcedResync) return;
    }
    this.resyncFrom = from;
    return this.target.begin(msg);
  }

  /** The resync is complete: the data is the primary's at `at`. */
  async finishResync(at: Position): Promise<void> {
    this.target.finish(at);
    this.stagedFrom = undefined;
    this.suspects = 0;
    await this.history.sync();
  }

  report(): ReplicationReport {
    const now = Date.now();
    const sent = this.source.last;
    const received = this.target.last;
    return {
      position: this.history.position,
      watchedDirectories: this.capture.watchedDirectories,
      overflows: this.capture.overflows,
      pending: this.capture.pending,
      shippedRecords: this.shippedRecords,
      appliedRecords: this.appliedRecords,
      suspects: this.suspects,
      readOnly: this.view.state,
      resyncsSent: { count: this.source.totals.resyncs, records: this.source.totals.records, bytes: this.source.totals.bytes, running: this.source.progress().map((p) => ({ ...p, agoMs: now - p.startedAt })), ...(sent ? { last: { ...sent, agoMs: now - sent.at } } : {}) },
      resyncsReceived: { count: this.target.totals.resyncs, records: this.target.totals.records, bytes: this.target.totals.bytes, conflicts: this.target.totals.conflicts, ...(received ? { last: { ...received, agoMs: now - received.at } } : {}) },
      ...(this.broken ? { broken: this.broken } : {}),
    };
  }
}

function pruneStaging(dir: string, olderThanMs: number): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const limit = Date.now() - olderThanMs;
  for (const n of names) {
    try {
      if (lstatSync(join(dir, n)).mtimeMs < limit) rmSync(join(dir, n), { force: true, recursive: true });
    } catch {
      // gone meanwhile
    }
  }
}

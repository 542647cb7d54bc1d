/**
 * The primary's side of a resync: brings a secondary that cannot resume
 * from the in-memory log up to the primary's data, sending only what
 * differs.
 *
 * 1. The common point: the latest position both data went through (the
 *    history's lineage). From it, the history says which paths (and which
 *    blocks) changed here since — the persistent dirty set — without
 *    reading either tree. No common point, or a history that cannot say
 *    (trimmed, a gap): every path is compared.
 * 2. `repl-resync-begin` tells the secondary the point and asks for the
 *    hashes of the paths the history knows only as "changed whole"; its
 *    manifest answers, and adds the paths it changed itself after the point
 *    (its conflict candidates) — or its whole tree if it cannot say.
 * 3. For each path: only the blocks the history names, or only those whose
 *    hashes differ from the secondary's, or the whole path; identical files
 *    get a metadata record. Then the caller sends the machine's position.
 *
 * A path read here may be newer than what the change stream last shipped
 * (the records after the resync's position are patches against that). If
 * what was read differs from the block hashes the stream assumes, those
 * hashes are dropped and the path is captured again, so the next record of
 * it is whole: a secondary never keeps a block the stream believes it has
 * overwritten.
 */
import { TimeSlice } from '../core/time-slice.js';
import type { Logger } from '../observe/log.js';
import type { History, Position, Touched } from './history.js';
import { pathKey, splitKey } from './history.js';
import { decodeManifest, describePath, encodeManifestEntry, type ManifestEntry } from './manifest.js';
import { hashBlock, readBlocks, readPath, HASH_BYTES, type ReadOutcome } from './path-reader.js';
import { encodeRecord, type ChangeRecord } from './record.js';
import { chunks, type ReplResyncManifestMessage, type ResyncMessage } from './resync-messages.js';
import { walkTreeSliced } from './tree.js';

/** A secondary that sends nothing of its manifest for this long has gone: the resync stops. */
const MANIFEST_IDLE_MS = 60_000;

export interface ResyncSourceDeps {
  readonly module: string;
  readonly roots: readonly string[];
  readonly history: History;
  readonly maxRecordBytes: number;
  readonly log: Logger;
  send(to: string, message: ResyncMessage): boolean;
  writable(to: string): Promise<boolean>;
  /** The connection to `to` messages go on now (see TlsLinks.connection); a resync ends if it changes. */
  connection(to: string): number | undefined;
  /** Runs `fn` while no other path is being read for the change stream. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** The block hashes the change stream assumes the secondaries have, by path key. */
  readonly streamHashes: Map<string, Buffer>;
  /** Capture the path again (its next record goes whole). */
  recapture(root: number, path: string): void;
  emit(reason: string, text: string, level?: 'warn' | 'error'): void;
}

export interface ResyncOutcome {
  complete: boolean;
  mode: 'history' | 'full';
  paths: number;
  records: number;
  /** Bytes of records sent (the file data and headers that crossed the link). */
  bytes: number;
}

/** A resync under way, as status shows it. */
export interface ResyncProgress {
  to: string;
  mode: 'history' | 'full';
  /** Paths to look at (known once the secondary's manifest is in), and looked at so far. */
  paths: number;
  done: number;
  bytes: number;
  startedAt: number;
}

/** A long resync says how far it got this often (an event). */
const PROGRESS_EVERY_MS = 2000;

interface Running {
  id: string;
  progress: ResyncProgress;
  entries: ManifestEntry[];
  full: boolean;
  resolve: (done: boolean) => void;
  timer: NodeJS.Timeout;
  /** Stopped from outside: nothing more of it goes on the link. */
  aborted: boolean;
  /** The connection its begin went on: its records carry no numbers, so they must all go on that one. */
  connection?: number | undefined;
}

export class ResyncSource {
  private readonly running = new Map<string, Running>();
  private seq = 0;
  /** Totals since start, for status and tests. */
  readonly totals = { resyncs: 0, bytes: 0, records: 0 };
  last: (ResyncOutcome & { to: string; at: number }) | undefined;

  constructor(private readonly d: ResyncSourceDeps) {}

  runningTo(): string[] {
    return [...this.running.keys()];
  }

  progress(): ResyncProgress[] {
    return [...this.running.values()].map((r) => ({ ...r.progress }));
  }

  isRunning(to: string): boolean {
    return this.running.has(to);
  }

  /** Ends every resync in progress (this node is no longer primary). */
  abortAll(): void {
    for (const to of [...this.running.keys()]) this.abort(to);
  }

  /**
   * Ends the resync to `to`, if one runs: its connection was replaced, and
   * records on the old one may be lost unnoticed (they carry no numbers).
   * A new one may start at once.
   */
  abort(to: string): void {
    const r = this.running.get(to);
    if (!r) return;
    r.aborted = true;
    clearTimeout(r.timer);
    r.resolve(false);
    this.running.delete(to);
  }

  /** A chunk of a secondary's manifest. */
  onManifest(from: string, msg: ReplResyncManifestMessage): void {
    const r = this.running.get(from);
    if (!r || r.id !== msg.id) return;
    try {
      r.entries.push(...decodeManifest(msg.data, this.d.roots.length));
    } catch (err) {
      this.d.log.warn(`dropped the resync of ${this.d.module} to ${from}: ${(err as Error).message}`);
      r.resolve(false);
      return;
    }
    r.full ||= msg.full;
    r.timer.refresh();
    if (msg.last) r.resolve(true);
  }

  /** Resyncs `to`, whose data is at `theirs`, under `epoch`. Resolves when every record is on the link (or it failed). */
  async run(to: string, epoch: number, theirs: Position): Promise<ResyncOutcome> {
    const common = this.d.history.commonPoint(theirs);
    const mine = common ? this.d.history.changesSince(common) : undefined;
    const id = `${epoch}.${++this.seq}`;
    const outcome: ResyncOutcome = { complete: false, mode: mine ? 'history' : 'full', paths: 0, records: 0, bytes: 0 };
    let resolve!: (done: boolean) => void;
    const manifestDone = new Promise<boolean>((r) => (resolve = r));
    const timer = setTimeout(() => resolve(false), MANIFEST_IDLE_MS);
    const running: Running = { id, progress: { to, mode: mine ? 'history' : 'full', paths: 0, done: 0, bytes: 0, startedAt: Date.now() }, entries: [], full: false, resolve, timer, aborted: false };
    this.running.set(to, running);
    try {
      // Tens of thousands of paths are seconds of synchronous work: the event loop gets its turns throughout.
      const slice = new TimeSlice();
      // Ask for the hashes of what the history knows only as changed whole: maybe only a few blocks differ.
      const want: Buffer[] = [];
      for (const [k, t] of mine ?? []) {
        if (t === 'all') want.push(encodeManifestEntry({ ...splitKey(k), own: false, kind: 'query' }));
        await slice.pause();
      }
      const parts = [...chunks(want)];
      if (!(await this.d.writable(to))) return outcome;
      running.connection = this.d.connection(to);
      for (let i = 0; i < parts.length; i++) {
        if (!(await this.d.writable(to)) || this.stopped(running) || !this.d.send(to, { type: 'repl-resync-begin', module: this.d.module, epoch, id, common: mine && common ? [common.epoch, common.seq] : null, data: parts[i]!, last: i === parts.length - 1 })) return outcome;
      }
      if (!(await manifestDone)) return outcome;
      const theirEntries = new Map<string, ManifestEntry>();
      for (const e of running.entries) {
        theirEntries.set(pathKey(e.root, e.path), e);
        await slice.pause();
      }
      const full = !mine || running.full;
      outcome.mode = full ? 'full' : 'history';
      // What to look at: what changed here since the common point and what the secondary changed (all of both trees if unknown).
      const candidates = new Set<string>(theirEntries.keys());
      if (full) {
        for (let root = 0; root < this.d.roots.length; root++) {
          for await (const path of walkTreeSliced(this.d.roots[root]!, slice)) candidates.add(pathKey(root, path));
        }
      } else for (const k of mine!.keys()) candidates.add(k);
      running.progress = { ...running.progress, mode: outcome.mode, paths: candidates.size };
      let told = Date.now();
      for (const key of [...candidates].sort()) {
        // Paths that need no read of their contents (directories, identical files) go in microtasks only.
        await slice.pause();
        const { root, path } = splitKey(key);
        const sent = await this.sendPath(running, epoch, root, path, theirEntries.get(key), full ? undefined : mine!.get(key), outcome);
        if (!sent) {
          this.d.emit('REPLICATION_RESYNC_ABORTED', `resync of ${this.d.module} to ${to} stopped after ${outcome.records} records: ${this.d.connection(to) === undefined ? 'the link is gone' : 'its connection was replaced (it starts over)'}`, 'warn');
          return outcome;
        }
        outcome.paths++;
        running.progress.done = outcome.paths;
        running.progress.bytes = outcome.bytes;
        if (Date.now() - told >= PROGRESS_EVERY_MS) {
          told = Date.now();
          this.d.emit('REPLICATION_RESYNC_PROGRESS', `resync of ${this.d.module} to ${to}: ${Math.floor((100 * outcome.paths) / candidates.size)} % (${outcome.paths}/${candidates.size} paths, ${outcome.bytes} bytes sent)`);
        }
      }
      // Stopped, or its connection replaced, while the last path was being closed: not complete after all.
      if (this.stopped(running)) return outcome;
      outcome.complete = true;
      this.totals.resyncs++;
      this.last = { ...outcome, to, at: Date.now() };
      this.d.emit(
        'REPLICATION_RESYNC_SENT',
        `resynced ${this.d.module} to ${to} ${full ? 'comparing every path' : `from the history since ${common!.epoch}:${common!.seq}`}: ${outcome.paths} path(s) looked at, ${outcome.records} record(s), ${outcome.bytes} bytes`,
      );
      return outcome;
    } finally {
      clearTimeout(timer);
      if (this.running.get(to) === running) this.running.delete(to);
    }
  }

  /** Stopped from outside, or its connection is not the one its begin went on (the links' onUp may come later). */
  private stopped(r: Running): boolean {
    return r.aborted || r.connection === undefined || this.d.connection(r.progress.to) !== r.connection;
  }

  /** Sends one path; false if the link went away or the resync was stopped. */
  private async sendPath(running: Running, epoch: number, root: number, path: string, theirs: ManifestEntry | undefined, touched: Touched | undefined, outcome: ResyncOutcome): Promise<boolean> {
    const key = pathKey(root, path);
    const to = running.progress.to;
    const o = { roots: this.d.roots, maxRecordBytes: this.d.maxRecordBytes };
    return this.d.exclusive(async () => {
      if (this.stopped(running)) return false;
      let gen: AsyncGenerator<ChangeRecord, ReadOutcome>;
      let identical: Buffer | undefined;
      if (theirs?.kind === 'file' && theirs.hashes) {
        const here = await describePath(this.d.roots, root, path, false);
        if (here.kind === 'file' && here.size === theirs.size && here.hashes!.equals(theirs.hashes)) {
          identical = here.hashes;
          gen = readBlocks(o, root, path, new Set()); // the same bytes: metadata only
        } else gen = readPath(o, root, path, theirs.hashes);
      } else if (touched !== undefined && touched !== 'all' && theirs === undefined) {
        gen = readBlocks(o, root, path, touched);
      } else if (theirs?.kind === 'absent' && touched === undefined) {
        return true; // the secondary's own change was a deletion, and the path is gone here too
      } else gen = readPath(o, root, path, undefined);
      let sentBlocks: Map<number, Buffer> | undefined;
      for (;;) {
        const step = await gen.next();
        if (step.done) {
          this.checkStream(key, root, path, identical ? { ...step.value, hashes: identical } : step.value, sentBlocks);
          return true;
        }
        const record = step.value;
        if (record.kind === 'file' && !record.staged) {
          sentBlocks ??= new Map();
          for (const b of record.blocks) sentBlocks.set(b.index, Buffer.from(b.data));
        }
        const data = encodeRecord(record);
        if (!(await this.d.writable(to)) || this.stopped(running) || !this.d.send(to, { type: 'repl-resync', module: this.d.module, epoch, id: running.id, data })) {
          await gen.return({ changedWhileReading: false });
          return false;
        }
        outcome.records++;
        outcome.bytes += data.length;
        this.totals.records++;
        this.totals.bytes += data.length;
      }
    });
  }

  /** What was read must agree with what the change stream assumes, or the stream must send the path whole next time. */
  private checkStream(key: string, root: number, path: string, read: ReadOutcome, patched: Map<number, Buffer> | undefined): void {
    const assumed = this.d.streamHashes.get(key);
    if (!assumed) return; // the stream sends this path whole next time anyway
    let agrees: boolean;
    if (read.hashes) agrees = read.hashes.equals(assumed);
    else if (patched) {
      agrees = true;
      for (const [index, data] of patched) {
        const h = assumed.subarray(index * HASH_BYTES, (index + 1) * HASH_BYTES);
        if (h.length !== HASH_BYTES || !hashBlock(data).equals(h)) agrees = false;
      }
    } else agrees = false;
    if (!agrees || read.changedWhileReading) {
      this.d.streamHashes.delete(key);
      this.d.recapture(root, path);
    }
  }
}

/**
 * A secondary's side of replication: applies change records to the
 * replicated directories, durably, one at a time and in order, so that a
 * crash never leaves a torn file where an application could see it.
 *
 * - A staged file (new, or mostly rewritten) is written to
 *   `<dir>/.skyha-staging/`, fsynced, and renamed over its path; the
 *   directory is fsynced. Parts of a big file accumulate in the staging file
 *   (each fsynced, so a restart can go on with the next part).
 * - A patch in place (a few blocks of an existing file) is first written to
 *   the module's intent journal and fsynced, then applied and fsynced, then
 *   the journal is removed. `recover()` replays a journal left by a crash
 *   before anything else happens; writing the same blocks twice is harmless.
 *   The removal is made durable before the next record touches the data: a
 *   journal that came back after a crash would write its old blocks over
 *   what came later.
 * - Symlinks are made in staging and renamed into place; directories and
 *   deletions act directly (both are atomic in the filesystem).
 *
 * Nothing outside the replicated directories is ever touched: paths are
 * checked by the codec, and every parent on the way is made a real
 * directory (a symlink or a file in the way is removed first), so a
 * symlink on the secondary cannot lead a write elsewhere.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fchmodSync, ftruncateSync, fchownSync, fsync, fsyncSync, futimesSync, lstatSync, mkdirSync, openSync, renameSync, writeSync, writev, open as fsOpen, type Stats } from 'node:fs';
import { lchown, lstat, lutimes, mkdir, open, readFile, rename, rm, symlink, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SkyhaError } from '../core/errors.js';
import { TimeSlice } from '../core/time-slice.js';
import { BLOCK_SIZE, decodeRecord, describeRecord, STAGING_DIR, type ChangeRecord, type DirRecord, type FileRecord, type SymlinkRecord } from './record.js';

/** Whole files up to this size are applied in synchronous calls (see stagedSmall). */
const SMALL_SYNC_BYTES = 64 * 1024;
/**
 * A small file that replaces a bigger one than this goes the asynchronous way: the rename frees the old file's
 * blocks inside the system call, which would hold the event loop (heartbeats, the voter) for as long.
 */
const SYNC_REPLACE_BYTES = 16 * 1024 * 1024;

/** A run of patches shares one journal write and one round of fsyncs: at most this many records, or bytes. */
const RUN_RECORDS = 256;
const RUN_BYTES = 16 * 1024 * 1024;
/** Directory fsyncs in flight at once at the end of a run of directory records (the thread pool runs four). */
const PARALLEL_FSYNCS = 16;
/** A journal of several patches starts with this (a journal without it is one record: older agents wrote those). */
const RUN_MAGIC = Buffer.from('SKYHA-PATCHES-1\n', 'latin1');

/** One record for `applyBatch`: its encoded bytes, decoded. */
export interface BatchItem {
  readonly bytes: Uint8Array;
  readonly record: ChangeRecord;
}

/** A parent on the way is not a real directory, or what is in the way is big: the asynchronous path deals with it. */
class NeedsAsync extends Error {}

function lstatSyncOrNull(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function writeAllSync(fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done);
}

export interface ApplierOptions {
  /** The module's replicated directories, absolute, in config order (a record's `root` indexes them). */
  readonly roots: readonly string[];
  /** The intent journal of patches in place (a file in the agent's data directory). */
  readonly journalPath: string;
  /** Makes the journal's directory durable (fsync; a test can hold it to see what waits for it). */
  readonly syncJournalDir?: (dir: string) => Promise<void>;
}

const isRoot = process.getuid?.() === 0;

export class Applier {
  /** The fsync of the journal's directory after its removal, while it runs (see settleJournal). */
  private journalRemoval: Promise<Error | undefined> | undefined;

  constructor(private readonly o: ApplierOptions) {}

  /** Replays a patch a crash interrupted. Call once before the first apply. */
  async recover(): Promise<ChangeRecord | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.o.journalPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const records = bytes.subarray(0, RUN_MAGIC.length).equals(RUN_MAGIC) ? decodeRun(bytes, this.o.roots.length) : [decodeRecord(bytes, this.o.roots.length)];
    for (const record of records) {
      if (record.kind !== 'file' || record.staged) throw new SkyhaError('SKYHA_ERR_REPLICATION_APPLY', `the intent journal ${this.o.journalPath} holds ${describeRecord(record)}, not a patch in place`);
      await this.patch(record);
    }
    await this.removeJournal();
    await this.settleJournal();
    return records.at(-1);
  }

  /**
   * Applies records in order, durable when it resolves, like `apply` one
   * after the other — but consecutive patches in place of existing
   * files go as a run: one journal write for the run, the blocks written in
   * synchronous calls, every file fsynced at once (the thread pool does them
   * side by side). A resync after a partition is hundreds of such patches;
   * one at a time, each cost four fsyncs and a dozen thread-pool round trips.
   * The same file may be patched several times in a run. `before(i)` runs
   * just before item i is applied.
   */
  async applyBatch(items: readonly BatchItem[], before?: (i: number) => Promise<void>): Promise<void> {
    let run: Uint8Array[] = [];
    let records: FileRecord[] = [];
    let size = 0;
    // Directories made or changed by a run of directory records, fsynced together at its end.
    let dirty = new Set<string>();
    const flushPatches = async (): Promise<void> => {
      if (records.length === 0) return;
      const [r, b] = [records, run];
      [records, run, size] = [[], [], 0];
      await this.patchRun(r, b);
    };
    const flush = async (): Promise<void> => {
      if (dirty.size > 0) {
        const dirs = [...dirty];
        dirty = new Set();
        // Side by side, a few at a time: each holds a descriptor while its fsync runs.
        for (let at = 0; at < dirs.length; at += PARALLEL_FSYNCS) await Promise.all(dirs.slice(at, at + PARALLEL_FSYNCS).map(fsyncDir));
      }
      await flushPatches();
    };
    // A batch of small records is mostly synchronous calls: the event loop gets its turns (heartbeats, acks).
    const slice = new TimeSlice();
    for (let i = 0; i < items.length; i++) {
      await slice.pause();
      const { bytes, record: r } = items[i]!;
      // Nothing touches the data while a removed journal could still come back.
      await this.settleJournal();
      // Only patches in a run: replayed in order after a crash they end where the run ended, and nothing else has
      // touched those files since (anything else is applied after the run is durable and its journal gone).
      if (r.kind === 'dir') await flushPatches();
      else if (r.kind !== 'file' || r.staged) await flush();
      // A patch after directory records: those are made durable first, before(i) may move one of them aside.
      else if (dirty.size > 0) await flush();
      await before?.(i);
      // Directories (a new tree, a resync) in synchronous calls, and their fsyncs side by side: one at a time, each
      // cost two fsyncs and a dozen thread-pool round trips (a resync of 40,000 directories took over a minute).
      if (r.kind === 'dir' && this.dirSync(r, dirty)) continue;
      if (r.kind === 'dir') await flush();
      if (r.kind === 'file' && !r.staged && this.patchable(r)) {
        records.push(r);
        run.push(bytes);
        size += bytes.length;
        if (records.length >= RUN_RECORDS || size >= RUN_BYTES) await flush();
      } else {
        await flush();
        await this.apply(bytes, r);
      }
    }
    await flush();
  }

  /**
   * A directory whose parents are real directories, made or updated in
   * synchronous calls; what must be fsynced (its parent if it was made, and
   * itself) is added to `dirty`. False if anything is in the way (the
   * asynchronous path repairs it).
   */
  private dirSync(r: DirRecord, dirty: Set<string>): boolean {
    try {
      const abs = this.abs(r.root, r.path);
      let at = this.o.roots[r.root]!;
      for (const part of r.path === '' ? [] : r.path.split('/').slice(0, -1)) {
        at = join(at, part);
        if (!lstatSyncOrNull(at)?.isDirectory()) return false;
      }
      const st = lstatSyncOrNull(abs);
      if (st && !st.isDirectory()) return false;
      if (!st) {
        mkdirSync(abs, { mode: r.mode & 0o7777 });
        dirty.add(dirname(abs));
      }
      const fd = openSync(abs, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      try {
        fchmodSync(fd, r.mode & 0o7777);
        if (isRoot) fchownSync(fd, r.uid, r.gid);
        futimesSync(fd, r.mtimeMs / 1000, r.mtimeMs / 1000);
      } finally {
        closeSync(fd);
      }
      dirty.add(abs);
      return true;
    } catch (err) {
      throw new SkyhaError('SKYHA_ERR_REPLICATION_APPLY', `cannot apply ${describeRecord(r)} under ${this.o.roots[r.root]}: ${(err as Error).message}`);
    }
  }

  /** Whether a patch can go in a run: every parent a real directory and the target an existing regular file. */
  private patchable(r: FileRecord): boolean {
    let at = this.o.roots[r.root]!;
    for (const part of r.path.split('/').slice(0, -1)) {
      at = join(at, part);
      if (!lstatSyncOrNull(at)?.isDirectory()) return false;
    }
    return lstatSyncOrNull(this.abs(r.root, r.path))?.isFile() === true;
  }

  /** Patches in place of existing files: journal once, write all, fsync every file together, then drop the journal. */
  private async patchRun(records: readonly FileRecord[], bytes: readonly Uint8Array[]): Promise<void> {
    if (records.length === 1) {
      await this.journal(bytes[0]!);
    } else {
      const parts: Uint8Array[] = [RUN_MAGIC];
      for (const b of bytes) {
        const len = Buffer.allocUnsafe(4);
        len.writeUInt32BE(b.length, 0);
        parts.push(len, b);
      }
      await this.journal(Buffer.concat(parts));
    }
    const fds = new Map<string, number>();
    try {
      for (const r of records) {
        const abs = this.abs(r.root, r.path);
        let fd = fds.get(abs);
        if (fd === undefined) {
          fd = openSync(abs, 'r+');
          fds.set(abs, fd);
        }
        for (const b of r.blocks) writeAllSync(fd, b.data, b.index * BLOCK_SIZE);
        if (r.last) {
          ftruncateSync(fd, r.size);
          fchmodSync(fd, r.mode & 0o7777);
          if (isRoot) fchownSync(fd, r.uid, r.gid);
          futimesSync(fd, r.mtimeMs / 1000, r.mtimeMs / 1000);
        }
      }
      await Promise.all([...fds.values()].map((fd) => new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())))));
    } finally {
      for (const fd of fds.values()) closeSync(fd);
    }
    await this.removeJournal();
  }

  /** Decodes, checks and applies one record (`record`: already decoded from `bytes`); durable when it resolves. */
  async apply(bytes: Uint8Array, record: ChangeRecord = decodeRecord(bytes, this.o.roots.length)): Promise<ChangeRecord> {
    await this.settleJournal();
    // Anything but the next part of the file being staged closes its staging file (a later part opens it again).
    if (this.open && !(record.kind === 'file' && record.staged && !record.first && this.open.staging === this.stagingPathSync(record.root, record.path))) this.release(this.open);
    try {
      switch (record.kind) {
        case 'delete':
          await this.remove(record.root, record.path);
          break;
        case 'dir':
          await this.dir(record);
          break;
        case 'symlink':
          await this.symlink(record);
          break;
        case 'file':
          if (record.staged && record.first && record.last && record.size <= SMALL_SYNC_BYTES && this.trySmall(record)) break;
          if (record.staged) await this.staged(record);
          else {
            await this.journal(bytes);
            await this.patch(record);
            await this.removeJournal();
          }
          break;
      }
    } catch (err) {
      if (err instanceof SkyhaError) throw err;
      throw new SkyhaError('SKYHA_ERR_REPLICATION_APPLY', `cannot apply ${describeRecord(record)} under ${this.o.roots[record.root]}: ${(err as Error).message}`);
    }
    return record;
  }

  private abs(root: number, path: string): string {
    return path === '' ? this.o.roots[root]! : join(this.o.roots[root]!, path);
  }

  /** Makes every parent of `path` a real directory (what the primary has, since it has something under it). */
  private async parents(root: number, path: string): Promise<void> {
    const parts = path.split('/').slice(0, -1);
    let at = this.o.roots[root]!;
    for (const part of parts) {
      at = join(at, part);
      const st = await lstatOrNull(at);
      if (st?.isDirectory()) continue;
      if (st) await rm(at, { recursive: true, force: true });
      await mkdir(at, { mode: 0o755 });
      await fsyncDir(dirname(at));
    }
  }

  private async remove(root: number, path: string): Promise<void> {
    const abs = this.abs(root, path);
    if (!(await lstatOrNull(abs))) return;
    await rm(abs, { recursive: true, force: true });
    await fsyncDir(dirname(abs));
  }

  private async dir(r: DirRecord): Promise<void> {
    const abs = this.abs(r.root, r.path);
    if (r.path !== '') await this.parents(r.root, r.path);
    const st = await lstatOrNull(abs);
    if (st && !st.isDirectory()) await rm(abs, { force: true });
    if (!st?.isDirectory()) {
      await mkdir(abs, { mode: r.mode & 0o7777 });
      await fsyncDir(dirname(abs));
    }
    const h = await open(abs, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await h.chmod(r.mode & 0o7777);
      if (isRoot) await h.chown(r.uid, r.gid);
      await h.utimes(r.mtimeMs / 1000, r.mtimeMs / 1000);
      await h.sync();
    } finally {
      await h.close();
    }
  }

  private async symlink(r: SymlinkRecord): Promise<void> {
    const abs = this.abs(r.root, r.path);
    await this.parents(r.root, r.path);
    const staging = this.stagingPathSync(r.root, r.path);
    await rm(staging, { force: true });
    await symlink(r.target, staging);
    if (isRoot) await lchown(staging, r.uid, r.gid);
    await lutimes(staging, r.mtimeMs / 1000, r.mtimeMs / 1000);
    await this.replace(staging, abs);
  }

  /**
   * A big file (or one of its parts) through its staging file: each part
   * written as it comes, the last one fsynced and renamed over the path, the
   * directory fsynced. The staging file stays open from the first part to
   * the last, and its metadata calls are synchronous (microseconds): on a
   * busy machine every thread-pool round trip waits for the event loop's
   * next turn, and a 4 MiB file used to take fourteen of them. The open that
   * truncates, the writes, the fsyncs and the rename (which may free a big
   * file's blocks) stay in the thread pool.
   */
  private async staged(r: FileRecord): Promise<void> {
    const staging = this.stagingPathSync(r.root, r.path);
    // Only the next part of the file being staged goes on through its open descriptor; a first part starts over.
    let entry = !r.first && this.open?.staging === staging ? this.open : undefined;
    if (!entry) {
      if (this.open) this.release(this.open);
      let fd: number;
      try {
        fd = await openFd(staging, r.first ? 'w' : 'r+', 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !r.first) throw new SkyhaError('SKYHA_ERR_REPLICATION_APPLY', `${describeRecord(r)}: a later part arrived without the first one`);
        throw err;
      }
      entry = { staging, fd, busy: false, closeWhenIdle: false, closed: false };
      if (this.keepOpen) this.open = entry;
    }
    entry.busy = true;
    try {
      await writeBlocks((buffers, position) => writevFd(entry.fd, buffers, position), r);
      // The last part's fsync makes every part durable (it flushes the file, whoever wrote it). Until then the
      // node's durable position stays before the first part (see stagedFrom), so a restart gets the file again.
      if (r.last) {
        finishSync(entry.fd, r);
        await fsyncFd(entry.fd);
      }
    } catch (err) {
      entry.busy = false;
      this.release(entry);
      throw err;
    }
    entry.busy = false;
    // A close asked for since this part began (maybe before it opened the file) is done now.
    const closeAsked = this.closeAsked;
    this.closeAsked = false;
    if (r.last || closeAsked || entry.closeWhenIdle || this.open !== entry) this.release(entry);
    if (!r.last) return;
    const abs = this.abs(r.root, r.path);
    if (this.parentsReal(r.root, r.path) && !lstatSyncOrNull(abs)?.isDirectory()) {
      await rename(staging, abs);
      await fsyncDirFd(dirname(abs));
      return;
    }
    await this.parents(r.root, r.path);
    await this.replace(staging, abs);
  }

  /** Every parent of `path` is a real directory (else the asynchronous `parents` repairs the way). */
  private parentsReal(root: number, path: string): boolean {
    let at = this.o.roots[root]!;
    for (const part of path.split('/').slice(0, -1)) {
      at = join(at, part);
      if (!lstatSyncOrNull(at)?.isDirectory()) return false;
    }
    return true;
  }

  /** The staging file of the big file being applied, open between its parts. */
  private open: StagingFile | undefined;
  /** Staging files stay open between parts (until closeStaging: the node stopped applying). */
  private keepOpen = true;
  /** closeStaging was called: the part being applied, if any, closes its file when done. */
  private closeAsked = false;

  /** Closes a staging file now, or once the write under way on it is done (its descriptor could be reused meanwhile). */
  private release(entry: StagingFile): void {
    if (this.open === entry) this.open = undefined;
    if (entry.busy) {
      entry.closeWhenIdle = true;
      return;
    }
    if (entry.closed) return;
    entry.closed = true;
    closeSync(entry.fd);
  }

  /**
   * The node stops applying (it is promoted, or stops): the staging file kept open between the parts of a big
   * file is closed, and, with `forGood`, none is kept open after this.
   */
  closeStaging(options: { forGood?: boolean } = {}): void {
    if (options.forGood) this.keepOpen = false;
    this.closeAsked = true;
    if (this.open) this.release(this.open);
  }

  /**
   * A small whole file, in synchronous calls: the same steps as `staged`
   * (write, fsync, rename, fsync the directory) without a thread-pool round
   * trip for each — most of a small change's latency. Blocks the event loop
   * for two fsyncs at most.
   */
  private stagedSmall(r: FileRecord): void {
    const abs = this.abs(r.root, r.path);
    const parts = r.path.split('/').slice(0, -1);
    let parentsReal = true;
    let at = this.o.roots[r.root]!;
    for (const part of parts) {
      at = join(at, part);
      if (!lstatSyncOrNull(at)?.isDirectory()) {
        parentsReal = false;
        break;
      }
    }
    if (!parentsReal) throw new NeedsAsync();
    // A directory in the way is removed entry by entry, and a big file's blocks are freed by the rename: not on the
    // event loop.
    const existing = lstatSyncOrNull(abs);
    if (existing && (existing.isDirectory() || existing.size > SYNC_REPLACE_BYTES)) throw new NeedsAsync();
    const staging = this.stagingPathSync(r.root, r.path);
    const fd = openSync(staging, 'w', 0o600);
    try {
      for (const b of r.blocks) writeAllSync(fd, b.data, b.index * BLOCK_SIZE);
      ftruncateSync(fd, r.size);
      if (isRoot) fchownSync(fd, r.uid, r.gid);
      fchmodSync(fd, r.mode & 0o7777);
      futimesSync(fd, r.mtimeMs / 1000, r.mtimeMs / 1000);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      renameSync(staging, abs);
    } catch (err) {
      // A directory made there meanwhile (by another process, where the tree could not be made read-only).
      if ((err as NodeJS.ErrnoException).code === 'EISDIR' || (err as NodeJS.ErrnoException).code === 'ENOTEMPTY') throw new NeedsAsync();
      throw err;
    }
    const dir = openSync(dirname(abs), constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }

  private trySmall(r: FileRecord): boolean {
    try {
      this.stagedSmall(r);
      return true;
    } catch (err) {
      if (err instanceof NeedsAsync) return false;
      throw err;
    }
  }

  /** Where `path` is staged; the staging directory is made if it is missing (one mkdir system call when it is there). */
  private stagingPathSync(root: number, path: string): string {
    const dir = join(this.o.roots[root]!, STAGING_DIR);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return join(dir, createHash('sha256').update(path).digest('hex').slice(0, 32));
  }

  private async patch(r: FileRecord): Promise<void> {
    const abs = this.abs(r.root, r.path);
    await this.parents(r.root, r.path);
    const st = await lstatOrNull(abs);
    if (st && !st.isFile()) await rm(abs, { recursive: true, force: true });
    const h = await open(abs, st?.isFile() ? 'r+' : 'w', r.mode & 0o7777);
    try {
      await writeBlocks(async (buffers, position) => (await h.writev(buffers, position)).bytesWritten, r);
      if (r.last) await finish(h, r);
      await h.sync();
    } finally {
      await h.close();
    }
    if (!st?.isFile()) await fsyncDir(dirname(abs));
  }

  /** Renames `from` over `to` (a directory in the way is removed first) and makes the rename durable. */
  private async replace(from: string, to: string): Promise<void> {
    const st = await lstatOrNull(to);
    if (st?.isDirectory()) await rm(to, { recursive: true, force: true });
    await rename(from, to);
    await fsyncDir(dirname(to));
  }

  private async journal(bytes: Uint8Array): Promise<void> {
    const tmp = `${this.o.journalPath}.tmp`;
    const h = await open(tmp, 'w', 0o600);
    try {
      await h.writeFile(bytes);
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, this.o.journalPath);
    await (this.o.syncJournalDir ?? fsyncDir)(dirname(this.o.journalPath));
  }

  /**
   * Removes the journal once its patches are durable. The directory's fsync
   * runs while the acknowledgement goes out; the next record waits for it
   * (settleJournal).
   */
  private async removeJournal(): Promise<void> {
    await unlink(this.o.journalPath);
    this.journalRemoval = (this.o.syncJournalDir ?? fsyncDir)(dirname(this.o.journalPath)).then(
      () => undefined,
      (err: Error) => err,
    );
  }

  /** Resolves once a removed journal cannot come back (see removeJournal). */
  private async settleJournal(): Promise<void> {
    const removal = this.journalRemoval;
    if (!removal) return;
    const err = await removal;
    this.journalRemoval = undefined;
    if (err) throw new SkyhaError('SKYHA_ERR_REPLICATION_APPLY', `cannot make the removal of the intent journal ${this.o.journalPath} durable: ${err.message}`);
  }

  /** A staging file per path (the same path's parts meet there), in its replicated directory's staging area. */
}

/**
 * Writes the record's blocks, each contiguous run in one call (writev: the blocks are views into the record), through
 * `writev` (a file handle's or a descriptor's); returns when every byte is written.
 */
async function writeBlocks(writev: (buffers: Uint8Array[], position: number) => Promise<number>, r: FileRecord): Promise<void> {
  for (let i = 0; i < r.blocks.length; ) {
    let j = i + 1;
    while (j < r.blocks.length && r.blocks[j]!.index === r.blocks[j - 1]!.index + 1 && r.blocks[j - 1]!.data.length === BLOCK_SIZE) j++;
    let buffers = r.blocks.slice(i, j).map((b) => b.data);
    let position = r.blocks[i]!.index * BLOCK_SIZE;
    while (buffers.length > 0) {
      // At most IOV_MAX (1024) buffers per call; a short write goes on where it stopped.
      let bytesWritten = await writev(buffers.slice(0, 1024), position);
      position += bytesWritten;
      while (buffers.length > 0 && bytesWritten >= buffers[0]!.length) bytesWritten -= buffers.shift()!.length;
      if (bytesWritten > 0) buffers[0] = buffers[0]!.subarray(bytesWritten);
    }
    i = j;
  }
}

/** The records of a journal that holds a run of patches. */
function decodeRun(bytes: Buffer, roots: number): ChangeRecord[] {
  const out: ChangeRecord[] = [];
  for (let at = RUN_MAGIC.length; at < bytes.length; ) {
    if (at + 4 > bytes.length) throw new SkyhaError('SKYHA_ERR_REPLICATION_APPLY', 'the intent journal ends inside a length');
    const len = bytes.readUInt32BE(at);
    at += 4;
    if (at + len > bytes.length) throw new SkyhaError('SKYHA_ERR_REPLICATION_APPLY', 'the intent journal ends inside a record');
    out.push(decodeRecord(bytes.subarray(at, at + len), roots));
    at += len;
  }
  return out;
}

/** A staging file open between the parts of a big file. */
interface StagingFile {
  readonly staging: string;
  readonly fd: number;
  /** A write or fsync on it is under way. */
  busy: boolean;
  closeWhenIdle: boolean;
  closed: boolean;
}

function openFd(path: string, flags: string, mode: number): Promise<number> {
  return new Promise((resolve, reject) => fsOpen(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))));
}

function writevFd(fd: number, buffers: Uint8Array[], position: number): Promise<number> {
  return new Promise((resolve, reject) => writev(fd, buffers, position, (err, n) => (err ? reject(err) : resolve(n))));
}

function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
}

/** Makes a directory's entries durable; only the fsync leaves the event loop. */
async function fsyncDirFd(path: string): Promise<void> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

function finishSync(fd: number, r: FileRecord): void {
  ftruncateSync(fd, r.size);
  fchmodSync(fd, r.mode & 0o7777);
  if (isRoot) fchownSync(fd, r.uid, r.gid);
  futimesSync(fd, r.mtimeMs / 1000, r.mtimeMs / 1000);
}

async function finish(h: FileHandle, r: FileRecord): Promise<void> {
  await h.truncate(r.size);
  await h.chmod(r.mode & 0o7777);
  if (isRoot) await h.chown(r.uid, r.gid);
  await h.utimes(r.mtimeMs / 1000, r.mtimeMs / 1000);
}

async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
}

async function fsyncDir(path: string): Promise<void> {
  const h = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

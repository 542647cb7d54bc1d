/**
 * Change capture on a mirror module's primary: the watcher (`watch.py`,
 * recursive inotify) runs as a child process and reports paths that
 * changed; this turns them into dirty paths of the module's replicated
 * directories, in the order they were first seen, each once until taken.
 *
 * `flush()` is the barrier's half of capture: a write returning means its
 * inotify event is queued (fsnotify runs inside the system call), and one
 * inotify queue is read in order, so once the event of a sentinel written
 * after the call comes back, every change made before the call is in the
 * dirty set.
 *
 * When the kernel drops events (queue overflow), every path of the
 * directory is marked dirty (`onOverflow` says so): the reader compares
 * block hashes, so only what really changed travels — never silence.
 *
 * `capture(on)` starts or stops feeding the dirty set at an exact point of
 * the event stream, by the same sentinel: every change made after the call
 * is fed (or not), whatever the watcher still had to report from before.
 * A secondary's watcher keeps its watches (a promotion does not wait for
 * them) while the changes its applier makes are not fed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, unlink, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SkyhaError } from '../core/errors.js';
import { STAGING_DIR } from './record.js';
import { walkTreeSliced } from './tree.js';

export const WATCH_SCRIPT = fileURLToPath(new URL('../../../src/replication/watch.py', import.meta.url));

export interface DirtyPath {
  readonly root: number;
  /** Relative to the root, '/'-separated; '' is the root itself. */
  readonly path: string;
}

export interface ChangeCaptureOptions {
  /** The replicated directories, absolute. */
  readonly roots: readonly string[];
  /** A private directory for barrier sentinels (created if missing). */
  readonly sentinelDir: string;
  /** Called when paths were added to the dirty set (not once per path). */
  readonly onDirty: () => void;
  /** The kernel dropped events: `root` was marked dirty whole. */
  readonly onOverflow?: (root: number) => void;
  readonly onError?: (message: string) => void;
  /** The watcher exited while it should run. */
  readonly onExit?: (why: string) => void;
  readonly python?: string;
  /** Whether changes feed the dirty set from the start (default true); see `capture`. */
  readonly capturing?: boolean;
}

export class ChangeCapture {
  /** Dirty paths, keyed `root\0path`, in the order first seen. */
  private readonly dirty = new Map<string, DirtyPath>();
  private child: ChildProcess | undefined;
  private tail: Buffer = Buffer.alloc(0);
  private sentinelSeq = 0;
  private readonly sentinelWaits = new Map<string, () => void>();
  private closing = false;
  /** Whether the events being read now feed the dirty set. */
  private capturing: boolean;
  /** What the last `capture` call asked for (it takes effect at its sentinel). */
  private wanted: boolean;
  watchedDirectories = 0;
  overflows = 0;

  constructor(private readonly o: ChangeCaptureOptions) {
    this.capturing = this.wanted = o.capturing ?? true;
  }

  /** Starts watching; resolves once every directory is watched. */
  start(): Promise<void> {
    // Sentinels are removed once seen; what a killed agent left behind goes now.
    rmSync(this.o.sentinelDir, { recursive: true, force: true });
    mkdirSync(this.o.sentinelDir, { recursive: true, mode: 0o700 });
    const quiet = this.wanted ? [] : ['--quiet'];
    const child = spawn(this.o.python ?? 'python3', [WATCH_SCRIPT, '--sentinel', this.o.sentinelDir, ...quiet, ...this.o.roots], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
    return new Promise((resolve, reject) => {
      let ready = false;
      child.once('error', (err) => reject(new SkyhaError('SKYHA_ERR_REPLICATION_WATCH', `cannot start the change watcher (${this.o.python ?? 'python3'} ${WATCH_SCRIPT}): ${err.message}`)));
      child.once('exit', (code, signal) => {
        this.capturing = this.wanted;
        for (const done of this.cutsPending) done();
        this.cutsPending.clear();
        const why = `the change watcher exited (${signal ?? `code ${code}`})${stderr ? `: ${stderr.trim()}` : ''}`;
        if (!ready) reject(new SkyhaError('SKYHA_ERR_REPLICATION_WATCH', why));
        else if (!this.closing) this.o.onExit?.(why);
      });
      child.stdout!.on('data', (chunk: Buffer) => {
        this.tail = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
        let at = 0;
        let added = false;
        for (let nul = this.tail.indexOf(0, at); nul >= 0; nul = this.tail.indexOf(0, at)) {
          const rec = this.tail.subarray(at, nul);
          at = nul + 1;
          const kind = String.fromCharCode(rec[0]!);
          const payload = rec.length > 2 ? rec.subarray(2).toString('utf8') : '';
          switch (kind) {
            case 'C':
              if (this.capturing) added = this.markAbsolute(payload) || added;
              break;
            case 'O':
              this.overflows++;
              added = this.overflowed() || added;
              break;
            case 'S':
              this.sentinelWaits.get(payload)?.();
              break;
            case 'W':
              this.watchedDirectories = Number(payload);
              break;
            case 'E':
              this.o.onError?.(payload);
              break;
            case 'R':
              ready = true;
              resolve();
              break;
          }
        }
        this.tail = at === this.tail.length ? Buffer.alloc(0) : this.tail.subarray(at);
        if (added) this.o.onDirty();
      });
    });
  }

  /** Resolves when every change made before the call is in the dirty set (a directory being marked whole after an overflow too). */
  async flush(timeoutMs = 5000): Promise<void> {
    await this.sentinelSeen(timeoutMs);
    await this.treeMarks;
  }

  private sentinelSeen(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const name = this.sentinel(() => {
        clearTimeout(timer);
        resolve();
      });
      const timer = setTimeout(() => {
        this.sentinelWaits.delete(name);
        this.removeSentinel(name);
        reject(new SkyhaError('SKYHA_ERR_REPLICATION_WATCH', `the change watcher did not report its sentinel within ${timeoutMs} ms`));
      }, timeoutMs);
    });
  }

  /**
   * Every change made after this call feeds the dirty set (`on`) or is
   * dropped; what the watcher reports of changes made before it is treated
   * as before. Takes effect synchronously: a caller that starts the
   * application next cannot lose its first writes. The promise resolves
   * once everything of before has been read (fed or dropped).
   */
  capture(on: boolean): Promise<void> {
    if (this.wanted === on) return this.lastCut;
    this.wanted = on;
    const child = this.child;
    // No watcher running: nothing of before is still to come.
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      this.capturing = on;
      return (this.lastCut = Promise.resolve());
    }
    try {
      // Set inside the loop that reads the records, at the sentinel's place in the stream (not on a later turn);
      // the watcher itself stops or starts reporting changes at the same place (its name says which).
      let done!: () => void;
      const cut = new Promise<void>((resolve) => (done = resolve));
      this.sentinel(() => {
        this.capturing = on;
        this.cutsPending.delete(done);
        done();
      }, on ? '.on' : '.off');
      this.cutsPending.add(done);
      return (this.lastCut = cut);
    } catch (err) {
      // No sentinel, no exact cut. On at once (what the applier wrote may be shipped again: harmless); off never
      // (this node's own last writes are then kept as suspects, not lost).
      if (on) {
        this.capturing = true;
        child.stdin?.write('L');
      } else this.wanted = true;
      this.o.onError?.(`cannot write a sentinel in ${this.o.sentinelDir} (${(err as Error).message}): capture ${on ? 'starts now' : 'stays on'}`);
      return (this.lastCut = Promise.resolve());
    }
  }

  /** The last `capture` call's cut: resolved once it took effect. */
  private lastCut: Promise<void> = Promise.resolve();
  /** Cuts whose sentinel is still to be read: a watcher that exits leaves nothing of before to come. */
  private readonly cutsPending = new Set<() => void>();

  /** Writes a sentinel; `seen` runs when the watcher reports it, before the records after it are read. */
  private sentinel(seen: () => void, suffix = ''): string {
    const name = `${process.pid}-${++this.sentinelSeq}${suffix}`;
    // Written first: if that throws, nothing waits for it (its record can only be read on a later turn).
    writeFileSync(join(this.o.sentinelDir, name), '');
    this.sentinelWaits.set(name, () => {
      this.sentinelWaits.delete(name);
      this.removeSentinel(name);
      seen();
    });
    return name;
  }

  /** Off the caller's path (a barrier waits for nothing more); each barrier left a file behind before. */
  private removeSentinel(name: string): void {
    unlink(join(this.o.sentinelDir, name), () => undefined);
  }

  /** The watcher's process, while it runs. */
  get watcherPid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }

  /** Takes up to `max` dirty paths, oldest first. */
  take(max = Infinity): DirtyPath[] {
    const out: DirtyPath[] = [];
    for (const [key, d] of this.dirty) {
      if (out.length >= max) break;
      out.push(d);
      this.dirty.delete(key);
    }
    return out;
  }

  /** Puts a path back (it changed while it was read). */
  mark(root: number, path: string): void {
    this.dirty.set(`${root}\0${path}`, { root, path });
  }

  get pending(): number {
    return this.dirty.size;
  }

  /**
   * The kernel dropped events; the watcher has watched every directory
   * again since. A sentinel's event may be among those dropped: every
   * sentinel still awaited is taken as seen now (the walks below start
   * after it was written, so they cover every change made before it), its
   * cut applied; and if capture was on at any point of the gap, every root
   * is marked whole.
   */
  private overflowed(): boolean {
    const wasCapturing = this.capturing;
    for (const seen of [...this.sentinelWaits.values()]) seen();
    if (!wasCapturing && !this.capturing) return false;
    for (let root = 0; root < this.o.roots.length; root++) this.markTree(root);
    return true;
  }

  /**
   * Marks every path under a root dirty after an overflow, directories
   * before their contents. In time slices: a tree of a million files takes
   * seconds to list, longer than a primary may leave its lease unrenewed.
   * Barriers wait for it (`flush`).
   */
  private markTree(root: number): void {
    const absRoot = this.o.roots[root]!;
    this.o.onOverflow?.(root);
    // One walk waiting per root is enough: it starts after every overflow reported so far.
    if (this.treeMarkQueued.has(root)) return;
    this.treeMarkQueued.add(root);
    this.treeMarks = this.treeMarks.then(async () => {
      this.treeMarkQueued.delete(root);
      let since = 0;
      for await (const path of walkTreeSliced(absRoot)) {
        this.mark(root, path);
        // The shipper starts on what is marked while the rest is listed.
        if (++since === 1000) {
          since = 0;
          this.o.onDirty();
        }
      }
      this.o.onDirty();
    }).catch((err: Error) => this.o.onError?.(`cannot mark ${absRoot} dirty after an overflow: ${err.message}`));
  }

  /** Whole-directory marks under way, in order. */
  private treeMarks: Promise<void> = Promise.resolve();
  private readonly treeMarkQueued = new Set<number>();

  private markAbsolute(abs: string): boolean {
    for (let root = 0; root < this.o.roots.length; root++) {
      const r = this.o.roots[root]!;
      if (abs !== r && !abs.startsWith(r + sep)) continue;
      const path = relative(r, abs).split(sep).join('/');
      if (path === STAGING_DIR || path.startsWith(`${STAGING_DIR}/`)) return false;
      this.mark(root, path);
      return true;
    }
    return false;
  }

  /** Stops the watcher (closing its stdin ends it; SIGKILL if it lingers). */
  async close(): Promise<void> {
    this.closing = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin!.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * A secondary's side of a resync (see resync-source.ts for the primary's).
 *
 * It answers the primary's `repl-resync-begin` with a manifest: the paths
 * it changed itself after the common point (from its own history: writes
 * it made as primary that the new primary never saw, and suspects found
 * after an unclean stop), plus the paths the primary asked about — or, if
 * its history cannot say, its whole tree, every path counted as its own.
 *
 * While the records are applied, a record that would change or remove one
 * of its own paths first moves the local version aside, into
 * `<data_dir>/modules/<module>/conflicts/<time>/<directory index>/<path>`
 * (a file is copied, anything else moved), and the end of the resync
 * reports them: a write nobody else saw is never overwritten or deleted
 * without a trace. Records that change nothing of its own apply as usual.
 */
import { cpSync, lstatSync, mkdirSync, readlinkSync, renameSync, rmSync, type Stats } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { History, Position } from './history.js';
import { pathKey, splitKey } from './history.js';
import { decodeManifest, describePath, encodeManifestEntry, type ManifestEntry } from './manifest.js';
import type { ChangeRecord } from './record.js';
import { chunks, type ReplResyncBeginMessage, type ReplResyncManifestMessage } from './resync-messages.js';
import { walkTreeSliced } from './tree.js';
import { TimeSlice } from '../core/time-slice.js';

export interface ResyncTargetDeps {
  readonly module: string;
  readonly roots: readonly string[];
  readonly history: History;
  /** Where this node writes its directories (writable views on a read-only secondary). */
  writeRoots(): readonly string[];
  /** This module's private directory (conflicts go under it). */
  readonly stateDir: string;
  send(message: ReplResyncManifestMessage): boolean;
  writable(): Promise<boolean>;
  emit(reason: string, text: string, level?: 'warn' | 'error'): void;
}

interface Incoming {
  id: string;
  epoch: number;
  common: Position | undefined;
  queries: ManifestEntry[];
  /** Paths this node changed itself ('all': every path). */
  own?: Set<string> | 'all';
  /** Parents of own paths: removing or replacing one would take an own path with it. */
  ownParents?: Set<string>;
  /** Paths already set aside in this resync. */
  aside: Set<string>;
  folder: string;
  records: number;
  bytes: number;
}

export class ResyncTarget {
  private incoming: Incoming | undefined;
  /** Totals since start, for status and tests. */
  readonly totals = { resyncs: 0, records: 0, bytes: 0, conflicts: 0 };
  last: { at: number; records: number; bytes: number; conflicts: number; full: boolean; folder?: string } | undefined;

  constructor(private readonly d: ResyncTargetDeps) {}

  /** A chunk of the primary's begin; the last one starts the manifest. */
  async begin(msg: ReplResyncBeginMessage): Promise<void> {
    if (!this.incoming || this.incoming.id !== msg.id) {
      // A resync that replaces a stopped one of the same primary (its connection was replaced) keeps what that one
      // set aside: the end of this one reports it, and a path already kept is not kept again over the primary's
      // version. One of another epoch is reported now and forgotten: what this node wrote since is its own again.
      const stopped = this.incoming?.aside.size && this.incoming.epoch === msg.epoch ? this.incoming : undefined;
      if (!stopped) this.abandon();
      this.incoming = {
        id: msg.id,
        epoch: msg.epoch,
        common: msg.common ? { epoch: msg.common[0], seq: msg.common[1] } : undefined,
        queries: [],
        aside: stopped?.aside ?? new Set(),
        folder: stopped?.folder ?? join(this.d.stateDir, 'conflicts', new Date().toISOString().replace(/[:.]/g, '-')),
        records: 0,
        bytes: 0,
      };
    }
    const r = this.incoming;
    r.queries.push(...decodeManifest(msg.data, this.d.roots.length));
    if (!msg.last) return;
    const mine = r.common ? this.d.history.changesSince(r.common) : undefined;
    const entries: ManifestEntry[] = [];
    const slice = new TimeSlice();
    if (mine) {
      r.own = new Set(mine.keys());
      for (const k of mine.keys()) {
        const { root, path } = splitKey(k);
        entries.push(await describePath(this.d.roots, root, path, true));
        await slice.pause();
      }
      for (const q of r.queries) {
        if (!mine.has(pathKey(q.root, q.path))) entries.push(await describePath(this.d.roots, q.root, q.path, false));
        await slice.pause();
      }
    } else {
      r.own = 'all';
      for (let root = 0; root < this.d.roots.length; root++) {
        for await (const path of walkTreeSliced(this.d.roots[root]!, slice)) {
          entries.push(await describePath(this.d.roots, root, path, true));
          await slice.pause();
        }
      }
    }
    r.ownParents = new Set();
    if (r.own !== 'all') {
      for (const k of r.own) {
        const { root, path } = splitKey(k);
        const parts = path.split('/');
        for (let i = 0; i < parts.length; i++) r.ownParents.add(pathKey(root, parts.slice(0, i).join('/')));
      }
    }
    const parts = [...chunks(entries.map(encodeManifestEntry))];
    for (let i = 0; i < parts.length; i++) {
      if (!(await this.d.writable())) return;
      if (!this.d.send({ type: 'repl-resync-manifest', module: this.d.module, epoch: r.epoch, id: r.id, full: mine === undefined, data: parts[i]!, last: i === parts.length - 1 })) return;
    }
  }

  /** Before a record of the resync is applied: sets aside what it would overwrite of this node's own changes. */
  async beforeApply(record: ChangeRecord, bytes: number): Promise<void> {
    const r = this.incoming;
    if (!r) return;
    r.records++;
    r.bytes += bytes;
    const key = pathKey(record.root, record.path);
    if (!r.own || r.aside.has(key)) return;
    const own = r.own === 'all' || r.own.has(key);
    const ownBelow = r.own === 'all' || r.ownParents!.has(key);
    if (!own && !ownBelow) return;
    const root = this.d.writeRoots()[record.root]!;
    const abs = record.path === '' ? root : join(root, record.path);
    let st: Stats;
    try {
      st = lstatSync(abs);
    } catch {
      return; // nothing here to lose
    }
    if (!conflicts(record, abs, st, own, ownBelow)) return;
    if (record.path === '') return; // a replicated directory itself is never moved (its contents are records of their own)
    const to = join(r.folder, String(record.root), record.path);
    mkdirSync(dirname(to), { recursive: true });
    if (st.isFile() && record.kind === 'file') {
      // The record patches or replaces the file in place: keep a copy.
      await copyFile(abs, to);
    } else moveAside(abs, to);
    r.aside.add(key);
  }

  /** The resync ended at `at` (the machine's position): the data now continues the primary's. */
  finish(at: Position): void {
    const r = this.incoming;
    this.incoming = undefined;
    this.d.history.reset(at);
    this.totals.resyncs++;
    if (!r) return;
    this.totals.records += r.records;
    this.totals.bytes += r.bytes;
    this.last = { at: Date.now(), records: r.records, bytes: r.bytes, conflicts: r.aside.size, full: r.own === 'all', ...(r.aside.size ? { folder: r.folder } : {}) };
    this.report(r);
  }

  /** A resync that will not finish (another primary's begins, or this node is promoted): what it set aside is reported. */
  abandon(): void {
    const r = this.incoming;
    this.incoming = undefined;
    if (r) this.report(r);
  }

  private report(r: Incoming): void {
    this.totals.conflicts += r.aside.size;
    if (r.aside.size > 0) {
      const list = [...r.aside].map((k) => {
        const { root, path } = splitKey(k);
        return `${root}/${path}`;
      });
      this.d.emit(
        'REPLICATION_RESYNC_CONFLICT',
        `the resync of ${this.d.module} replaced ${r.aside.size} path(s) this node had changed itself and the primary had not seen (${list.slice(0, 5).join(', ')}${list.length > 5 ? ', …' : ''}): this node's versions are in ${r.folder}, not deleted`,
        'warn',
      );
    }
  }
}

/** Would applying `record` lose what is at the path now (or under it)? */
function conflicts(record: ChangeRecord, abs: string, st: Stats, own: boolean, ownBelow: boolean): boolean {
  switch (record.kind) {
    case 'delete':
      return true;
    case 'dir':
      return !st.isDirectory() && own;
    case 'symlink':
      if (st.isDirectory()) return ownBelow || own;
      return own && !(st.isSymbolicLink() && readlinkSync(abs) === record.target);
    case 'file':
      if (st.isDirectory()) return ownBelow || own;
      if (!own) return false;
      if (!st.isFile()) return true;
      // Only metadata (the same bytes, found by hashes): nothing is lost.
      return record.staged || record.blocks.length > 0 || record.size !== st.size;
  }
}

function moveAside(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    cpSync(from, to, { recursive: true, verbatimSymlinks: true });
    rmSync(from, { recursive: true, force: true });
  }
}

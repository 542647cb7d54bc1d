/**
 * A mirror module's data history on one node: the persistent dirty set.
 *
 * Every change this node's data goes through is appended here with its
 * position (epoch, seq) and what it touched (a path, and the 4 KiB blocks
 * when only some changed) — as primary before the change can be shipped,
 * as secondary before it is applied. So when a node comes back, the
 * primary can tell from the history alone which paths and blocks it lacks,
 * without scanning either tree; and a node that served as primary can tell
 * which of its own changes nobody else saw (conflict candidates).
 *
 * The data's lineage is a chain of segments. A segment is one epoch of the
 * data: `start` when this node became primary (continuing the data's
 * position `from`), `reset` when a resync replaced the data with a
 * primary's at a position (nothing earlier is known). A node that never
 * changed role stays in one segment.
 *
 * A query is answered only when the entries it needs are all here
 * (contiguous seqs, not trimmed); otherwise the caller falls back to
 * comparing block hashes of both trees.
 *
 * The file is one JSON line per entry; each append is written at once (it
 * survives the agent's kill -9), `sync()` makes it survive a power loss
 * too. A torn last line (power loss mid-write) is ignored. When the file
 * passes `maxBytes` it is rewritten with the newest half of its changes.
 *
 * Watermarks (`mark`) say "every change made to the directories before
 * this time is recorded"; after an unclean stop, what changed since the
 * last one is found by ctime (`suspects`), because the events the watcher
 * had not yet reported died with the agent.
 */
import { closeSync, fdatasync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export interface Position {
  readonly epoch: number;
  readonly seq: number;
}

/** What a change touched: some blocks of a file, or the whole path (its content, kind or metadata). */
export type Touched = ReadonlySet<number> | 'all';

interface Segment {
  readonly epoch: number;
  /** The data's position this segment continues (start), or undefined (reset, or an unknown past). */
  readonly from?: Position;
  /** Entries are known from base+1 on. */
  base: number;
  /** Highest seq recorded. */
  last: number;
  /** A seq was missing (a torn tail, a record applied after a lost one): nothing past `gapAt` can be answered. */
  gapAt?: number;
  readonly kind: 'start' | 'reset' | 'initial';
  /** Changes in seq order. */
  readonly changes: { seq: number; key: string; blocks?: number[] }[];
  /** Paths changed after `last` that no seq covers (found after an unclean stop). */
  readonly suspects: Set<string>;
}

type Line =
  | { t: 'seg'; k: 'start' | 'reset' | 'initial'; e: number; from?: [number, number]; base: number }
  | { t: 'c'; e: number; s: number; k: string; b?: number[] }
  | { t: 'x'; k: string }
  | { t: 'mark'; at: number }
  | { t: 'stop'; at: number };

export interface HistoryOptions {
  readonly path: string;
  /** Rewrite the file past this size (default 64 MiB). */
  readonly maxBytes?: number;
}

/** `root\0path`: how histories, capture and resync name a path. */
export function pathKey(root: number, path: string): string {
  return `${root}\0${path}`;
}

export function splitKey(key: string): { root: number; path: string } {
  const at = key.indexOf('\0');
  return { root: Number(key.slice(0, at)), path: key.slice(at + 1) };
}

export class History {
  private segments: Segment[] = [];
  private fd: number;
  private bytes = 0;
  private syncing: Promise<void> | undefined;
  private syncAgain = false;
  /** Entries appended, and how many of them an fdatasync has covered: a sync with nothing new returns at once. */
  private appended = 0;
  private durable = 0;
  /** The latest watermark (ms since the epoch), or undefined. */
  lastMark: number | undefined;
  /** The file ended with a clean stop. */
  readonly cleanStop: boolean;

  constructor(private readonly o: HistoryOptions) {
    let text = '';
    try {
      text = readFileSync(o.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    let clean = text === '';
    const lines = text.split('\n');
    // The last element is '' after a complete line, or a torn line: either way not an entry.
    for (const raw of lines.slice(0, -1)) {
      let line: Line;
      try {
        line = JSON.parse(raw) as Line;
      } catch {
        continue;
      }
      clean = line.t === 'stop';
      this.take(line);
    }
    this.cleanStop = clean;
    this.fd = openSync(o.path, 'a', 0o600);
    // A torn line is cut off by what follows: start on a fresh line.
    if (text !== '' && !text.endsWith('\n')) writeSync(this.fd, '\n');
    this.bytes = Buffer.byteLength(text);
  }

  /** The segment the data is in now (an implicit initial one for a new node). */
  private get current(): Segment {
    if (this.segments.length === 0) this.segments.push(newSegment('initial', 0, 0));
    return this.segments[this.segments.length - 1]!;
  }

  private take(line: Line): void {
    switch (line.t) {
      case 'seg':
        this.segments.push(newSegment(line.k, line.e, line.base, line.from ? { epoch: line.from[0], seq: line.from[1] } : undefined));
        return;
      case 'c': {
        let seg = this.current;
        if (seg.epoch !== line.e) {
          // A secondary's first change of a history it joined without a resync (a new node at position 0).
          seg = newSegment('initial', line.e, line.s - 1);
          seg.gapAt = line.s === 1 ? undefined : line.s;
          this.segments.push(seg);
        }
        if (line.s > seg.last + 1 && seg.gapAt === undefined) seg.gapAt = seg.last + 1;
        seg.changes.push({ seq: line.s, key: line.k, ...(line.b ? { blocks: line.b } : {}) });
        seg.last = Math.max(seg.last, line.s);
        return;
      }
      case 'x':
        this.current.suspects.add(line.k);
        return;
      case 'mark':
        this.lastMark = line.at;
        return;
      case 'stop':
        this.lastMark = line.at;
        return;
    }
  }

  private append(line: Line): void {
    this.take(line);
    const text = `${JSON.stringify(line)}\n`;
    writeSync(this.fd, text);
    this.appended++;
    this.bytes += text.length;
    if (this.bytes > (this.o.maxBytes ?? 64 * 1024 * 1024)) this.compact();
  }

  /** This node becomes primary of `epoch`, its data being at `from`. */
  start(epoch: number, from: Position): void {
    if (this.current.epoch === epoch && this.current.kind === 'start') return;
    // Recorded but maybe not applied (a crash between the two): the new primary's data may or may not have them.
    this.suspect(this.current.changes.filter((c) => c.seq > from.seq).map((c) => c.key));
    this.append({ t: 'seg', k: 'start', e: epoch, from: [from.epoch, from.seq], base: 0 });
  }

  /** A resync made the data equal to a primary's at `at`; nothing before is known. */
  reset(at: Position): void {
    this.append({ t: 'seg', k: 'reset', e: at.epoch, base: at.seq });
  }

  /** A change at `at` of one path (`blocks`: the only blocks it touched). Written at once; `sync()` to make it durable. */
  change(at: Position, root: number, path: string, blocks?: readonly number[]): void {
    this.append({ t: 'c', e: at.epoch, s: at.seq, k: pathKey(root, path), ...(blocks ? { b: [...blocks] } : {}) });
  }

  /** Paths that changed after the last recorded seq and that no seq covers (see the header); returns how many were new. */
  suspect(keys: Iterable<string>): number {
    let added = 0;
    for (const k of keys) {
      if (this.current.suspects.has(k)) continue;
      this.append({ t: 'x', k });
      added++;
    }
    return added;
  }

  /** Every change made before `at` is recorded (call after `sync()` covered them). */
  mark(at: number): void {
    this.append({ t: 'mark', at });
  }

  /** A clean stop: nothing changed after the last entries. */
  stop(at: number): void {
    this.append({ t: 'stop', at });
    fsyncSync(this.fd);
  }

  /** Makes every entry appended so far durable (concurrent calls share an fdatasync; with nothing new, none). */
  async sync(): Promise<void> {
    if (!this.syncing && this.durable === this.appended) return;
    if (this.syncing) {
      this.syncAgain = true;
      // Whatever was appended before this call is covered by the next round.
      while (this.syncing) await this.syncing;
      return;
    }
    this.syncing = (async () => {
      do {
        this.syncAgain = false;
        const upTo = this.appended;
        await new Promise<void>((resolve, reject) => fdatasync(this.fd, (err) => (err ? reject(err) : resolve())));
        this.durable = Math.max(this.durable, upTo);
      } while (this.syncAgain);
    })().finally(() => {
      this.syncing = undefined;
    });
    await this.syncing;
  }

  close(): void {
    closeSync(this.fd);
  }

  /** The data continues an epoch in which this node was primary (its own writes may be unseen by others). */
  get continuesOwnEpoch(): boolean {
    return this.current.kind === 'start';
  }

  /** Where the data is: the current segment's epoch and last seq. */
  get position(): Position {
    return { epoch: this.current.epoch, seq: this.current.last };
  }

  /**
   * The latest point both this data and data at `other` went through:
   * `other` itself if this data's lineage passed it, else the point where
   * this data left `other`'s epoch. Undefined when the lineage here does not
   * reach `other.epoch`.
   */
  commonPoint(other: Position): Position | undefined {
    // Epoch 0 is data from before any primary: nothing says two nodes' copies of it are alike.
    if (other.epoch === 0) return undefined;
    for (const seg of this.lineage()) {
      if (seg.epoch === other.epoch) return { epoch: other.epoch, seq: Math.min(other.seq, seg.last) };
    }
    return undefined;
  }

  /** The segments the data went through, newest first, as far back as they are linked. */
  private *lineage(): Generator<Segment> {
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const seg = this.segments[i]!;
      yield seg;
      if (!seg.from) return;
      // The parent is the nearest earlier segment of the `from` epoch (the loop's i-- lands on it).
      while (i > 0 && this.segments[i - 1]!.epoch !== seg.from.epoch) i--;
    }
  }

  /**
   * Every path this data changed after `point` (along its lineage), with the
   * blocks touched; undefined if the history here cannot say (trimmed, a
   * gap, or `point` not in the lineage). Suspects count as whole changes.
   */
  changesSince(point: Position): Map<string, Touched> | undefined {
    if (point.epoch === 0) return undefined;
    const chain: { seg: Segment; after: number }[] = [];
    for (const seg of this.lineage()) {
      if (seg.epoch === point.epoch) {
        chain.push({ seg, after: point.seq });
        break;
      }
      chain.push({ seg, after: seg.base });
    }
    if (chain[chain.length - 1]?.seg.epoch !== point.epoch) return undefined;
    const out = new Map<string, Touched>();
    for (const { seg, after } of chain) {
      if (after < seg.base) return undefined;
      if (seg.gapAt !== undefined && seg.gapAt > after) return undefined;
      for (const c of seg.changes) {
        if (c.seq <= after) continue;
        const had = out.get(c.key);
        if (had === 'all') continue;
        if (!c.blocks) out.set(c.key, 'all');
        else out.set(c.key, new Set([...(had ?? []), ...c.blocks]));
      }
      // Suspects come after the segment's last seq, so after any point in it.
      for (const k of seg.suspects) out.set(k, 'all');
    }
    return out;
  }

  /** Rewrites the file with the newest half of the changes (and every segment header still needed). */
  private compact(): void {
    const total = this.segments.reduce((n, s) => n + s.changes.length, 0);
    let drop = Math.floor(total / 2);
    const kept: Segment[] = [];
    for (const seg of this.segments) {
      if (drop >= seg.changes.length && seg !== this.current) {
        drop -= seg.changes.length;
        continue;
      }
      const changes = seg.changes.slice(drop);
      const base = drop > 0 ? changes[0]!.seq - 1 : seg.base;
      drop = 0;
      kept.push({ ...seg, base: Math.max(base, seg.base), changes, suspects: new Set(seg.suspects) });
    }
    const lines: string[] = [];
    for (const seg of kept) {
      lines.push(JSON.stringify({ t: 'seg', k: seg.kind, e: seg.epoch, ...(seg.from ? { from: [seg.from.epoch, seg.from.seq] } : {}), base: seg.base }));
      for (const c of seg.changes) lines.push(JSON.stringify({ t: 'c', e: seg.epoch, s: c.seq, k: c.key, ...(c.blocks ? { b: c.blocks } : {}) }));
      for (const k of seg.suspects) lines.push(JSON.stringify({ t: 'x', k }));
    }
    if (this.lastMark !== undefined) lines.push(JSON.stringify({ t: 'mark', at: this.lastMark }));
    const text = `${lines.join('\n')}\n`;
    const tmp = `${this.o.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.o.path);
    const dir = openSync(dirname(this.o.path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    closeSync(this.fd);
    this.fd = openSync(this.o.path, 'a', 0o600);
    this.bytes = Buffer.byteLength(text);
    // Trimmed segments: a gap inside what was dropped no longer matters; one in what is kept still does.
    this.segments = kept;
  }
}

function newSegment(kind: Segment['kind'], epoch: number, base: number, from?: Position): Segment {
  return { kind, epoch, base, last: base, ...(from ? { from } : {}), changes: [], suspects: new Set() };
}

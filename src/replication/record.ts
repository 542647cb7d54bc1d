/**
 * A change record: what one path of a replicated directory *is now* on the
 * primary (state, not a diff of events), in a compact binary form for the
 * links. Applying a record twice, or an older one followed by a newer one,
 * ends in the newer state: retransmission and resume need nothing more.
 *
 * A file's content travels as blocks (`BLOCK_SIZE` bytes, the last one
 * shorter): all of them for a staged file (new, or mostly rewritten), only
 * the changed ones for a patch in place. A file too big for one record is
 * cut into parts; `first` and `last` mark the ends (metadata and size apply
 * with the last part).
 *
 *   u8  version (1)        u8  kind             u8 root          u8 flags
 *   u32 mode               u32 uid              u32 gid
 *   f64 mtimeMs            f64 size
 *   u16 path bytes, path (UTF-8, relative, '/'-separated)
 *   symlink: u16 target bytes, target
 *   file:    u32 blocks, then per block: u32 index, u32 length, bytes
 */
import { SkyhaError } from '../core/errors.js';

export const RECORD_VERSION = 1;
export const BLOCK_SIZE = 4096;
/** Where a secondary stages whole files before renaming them into place; never replicated. */
export const STAGING_DIR = '.skyha-staging';

export type RecordKind = 'file' | 'dir' | 'symlink' | 'delete';

export interface Block {
  readonly index: number;
  readonly data: Uint8Array;
}

interface Common {
  /** Index of the replicated directory in the module's `directories`. */
  readonly root: number;
  /** Relative to that directory, '/'-separated, normalised; '' is the directory itself. */
  readonly path: string;
}

export interface FileRecord extends Common {
  readonly kind: 'file';
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeMs: number;
  readonly size: number;
  /** Written to a staging file and renamed into place (true), or patched in place (false). */
  readonly staged: boolean;
  readonly first: boolean;
  readonly last: boolean;
  readonly blocks: readonly Block[];
}

export interface DirRecord extends Common {
  readonly kind: 'dir';
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeMs: number;
}

export interface SymlinkRecord extends Common {
  readonly kind: 'symlink';
  readonly target: string;
  readonly uid: number;
  readonly gid: number;
  readonly mtimeMs: number;
}

export interface DeleteRecord extends Common {
  readonly kind: 'delete';
}

export type ChangeRecord = FileRecord | DirRecord | SymlinkRecord | DeleteRecord;

const KINDS: readonly RecordKind[] = ['file', 'dir', 'symlink', 'delete'];
const FLAG_STAGED = 1;
const FLAG_FIRST = 2;
const FLAG_LAST = 4;
const FIXED = 4 + 12 + 16;

function bad(detail: string): SkyhaError {
  return new SkyhaError('SKYHA_ERR_REPLICATION_RECORD', `malformed change record: ${detail}`);
}

/**
 * Whether `path` may name something inside a replicated directory: relative,
 * '/'-separated, no empty, '.' or '..' component, no NUL, and not in the
 * staging directory. A record that breaks this is refused, never applied: a
 * secondary must not write outside its directories whatever it receives.
 */
export function checkRecordPath(path: string): string | undefined {
  if (path === '') return undefined;
  if (path.includes('\0')) return 'contains NUL';
  if (path.startsWith('/')) return 'is absolute';
  const parts = path.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) return 'has an empty, "." or ".." component';
  if (parts[0] === STAGING_DIR) return `is inside ${STAGING_DIR}`;
  return undefined;
}

export function encodeRecord(r: ChangeRecord): Buffer {
  const pathBytes = Buffer.from(r.path, 'utf8');
  if (pathBytes.length > 0xffff) throw bad(`path of ${pathBytes.length} bytes`);
  const targetBytes = r.kind === 'symlink' ? Buffer.from(r.target, 'utf8') : undefined;
  if (targetBytes && targetBytes.length > 0xffff) throw bad(`symlink target of ${targetBytes.length} bytes`);
  const blocks = r.kind === 'file' ? r.blocks : [];
  let size = FIXED + 2 + pathBytes.length + (targetBytes ? 2 + targetBytes.length : 0) + (r.kind === 'file' ? 4 : 0);
  for (const b of blocks) size += 8 + b.data.length;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  out[o++] = RECORD_VERSION;
  out[o++] = KINDS.indexOf(r.kind);
  out[o++] = r.root;
  out[o++] = r.kind === 'file' ? (r.staged ? FLAG_STAGED : 0) | (r.first ? FLAG_FIRST : 0) | (r.last ? FLAG_LAST : 0) : 0;
  const meta = r.kind === 'delete' ? { mode: 0, uid: 0, gid: 0, mtimeMs: 0 } : { mode: r.kind === 'symlink' ? 0 : r.mode, uid: r.uid, gid: r.gid, mtimeMs: r.mtimeMs };
  o = out.writeUInt32BE(meta.mode >>> 0, o);
  o = out.writeUInt32BE(meta.uid >>> 0, o);
  o = out.writeUInt32BE(meta.gid >>> 0, o);
  o = out.writeDoubleBE(meta.mtimeMs, o);
  o = out.writeDoubleBE(r.kind === 'file' ? r.size : 0, o);
  o = out.writeUInt16BE(pathBytes.length, o);
  o += pathBytes.copy(out, o);
  if (targetBytes) {
    o = out.writeUInt16BE(targetBytes.length, o);
    o += targetBytes.copy(out, o);
  }
  if (r.kind === 'file') {
    o = out.writeUInt32BE(blocks.length, o);
    for (const b of blocks) {
      o = out.writeUInt32BE(b.index, o);
      o = out.writeUInt32BE(b.data.length, o);
      out.set(b.data, o);
      o += b.data.length;
    }
  }
  return out;
}

/** Decodes and checks a record (`roots`: how many replicated directories the module has). Block data are views into `buf`. */
export function decodeRecord(buf: Uint8Array, roots: number): ChangeRecord {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = 0;
  const need = (n: number, what: string): void => {
    if (o + n > b.length) throw bad(`truncated in ${what} (${b.length} bytes)`);
  };
  need(FIXED + 2, 'header');
  const version = b[o++]!;
  if (version !== RECORD_VERSION) throw bad(`version ${version}, expected ${RECORD_VERSION}`);
  const kind = KINDS[b[o++]!];
  if (!kind) throw bad(`unknown kind ${b[o - 1]}`);
  const root = b[o++]!;
  if (root >= roots) throw bad(`directory index ${root}, the module has ${roots}`);
  const flags = b[o++]!;
  const mode = b.readUInt32BE(o);
  const uid = b.readUInt32BE(o + 4);
  const gid = b.readUInt32BE(o + 8);
  const mtimeMs = b.readDoubleBE(o + 12);
  const size = b.readDoubleBE(o + 20);
  o += 28;
  const pathLength = b.readUInt16BE(o);
  o += 2;
  need(pathLength, 'path');
  const path = b.toString('utf8', o, o + pathLength);
  o += pathLength;
  const problem = checkRecordPath(path);
  if (problem) throw bad(`path ${JSON.stringify(path)} ${problem}`);
  switch (kind) {
    case 'delete':
      if (path === '') throw bad('deletes a replicated directory itself');
      return end({ kind, root, path });
    case 'dir':
      return end({ kind, root, path, mode, uid, gid, mtimeMs });
    case 'symlink': {
      need(2, 'symlink target');
      const n = b.readUInt16BE(o);
      o += 2;
      need(n, 'symlink target');
      const target = b.toString('utf8', o, o + n);
      o += n;
      if (path === '') throw bad('replaces a replicated directory with a symlink');
      return end({ kind, root, path, target, uid, gid, mtimeMs });
    }
    case 'file': {
      if (path === '') throw bad('replaces a replicated directory with a file');
      if (!Number.isSafeInteger(size) || size < 0) throw bad(`size ${size}`);
      need(4, 'block count');
      const count = b.readUInt32BE(o);
      o += 4;
      const blocks: Block[] = [];
      for (let i = 0; i < count; i++) {
        need(8, 'block header');
        const index = b.readUInt32BE(o);
        const length = b.readUInt32BE(o + 4);
        o += 8;
        if (length > BLOCK_SIZE || length === 0) throw bad(`block ${index} of ${length} bytes`);
        if (index * BLOCK_SIZE + length > size) throw bad(`block ${index} ends past the file's size ${size}`);
        need(length, 'block data');
        blocks.push({ index, data: b.subarray(o, o + length) });
        o += length;
      }
      return end({ kind, root, path, mode, uid, gid, mtimeMs, size, staged: (flags & FLAG_STAGED) !== 0, first: (flags & FLAG_FIRST) !== 0, last: (flags & FLAG_LAST) !== 0, blocks });
    }
  }
  function end<T extends ChangeRecord>(r: T): T {
    if (o !== b.length) throw bad(`${b.length - o} bytes after the end`);
    return r;
  }
}

/** One line for logs and events. */
export function describeRecord(r: ChangeRecord): string {
  const where = `${r.root}:${r.path || '.'}`;
  if (r.kind === 'file') return `file ${where} (${r.size} bytes, ${r.blocks.length} block(s)${r.staged ? ', staged' : ''}${r.first ? ', first' : ''}${r.last ? ', last' : ''})`;
  return `${r.kind} ${where}`;
}

/**
 * A manifest: what a node has at some paths of a mirror module's
 * directories — kind, size and the 4 KiB blocks' hashes of files, the
 * target of symlinks. A returning secondary sends one at the start of a
 * resync so that the primary sends only blocks that differ, and says which
 * of the paths it changed itself (`own`: its conflict candidates). The
 * primary asks for the paths it wants with entries of kind `query`.
 *
 *   per entry: u8 root, u8 flags (1: own), u8 kind, u16 path bytes, path
 *     file:    f64 size, u32 hashes, hashes (HASH_BYTES each)
 *     symlink: u16 target bytes, target
 */
import { lstat, open, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { SkyhaError } from '../core/errors.js';
import { hashBlock, HASH_BYTES } from './path-reader.js';
import { BLOCK_SIZE, checkRecordPath } from './record.js';

export type ManifestKind = 'file' | 'dir' | 'symlink' | 'absent' | 'query';
const KINDS: readonly ManifestKind[] = ['file', 'dir', 'symlink', 'absent', 'query'];

export interface ManifestEntry {
  readonly root: number;
  readonly path: string;
  /** The sender changed this path after the common point (resync: its own, possibly unreplicated, change). */
  readonly own: boolean;
  readonly kind: ManifestKind;
  readonly size?: number;
  /** Block hashes of a file. */
  readonly hashes?: Buffer;
  readonly target?: string;
}

function bad(detail: string): SkyhaError {
  return new SkyhaError('SKYHA_ERR_REPLICATION_RECORD', `malformed manifest: ${detail}`);
}

export function encodeManifestEntry(e: ManifestEntry): Buffer {
  const path = Buffer.from(e.path, 'utf8');
  const target = e.kind === 'symlink' ? Buffer.from(e.target ?? '', 'utf8') : undefined;
  if (path.length > 0xffff || (target && target.length > 0xffff)) throw bad(`a path or target of ${Math.max(path.length, target?.length ?? 0)} bytes`);
  const hashes = e.kind === 'file' ? (e.hashes ?? Buffer.alloc(0)) : undefined;
  const out = Buffer.allocUnsafe(5 + path.length + (hashes ? 12 + hashes.length : 0) + (target ? 2 + target.length : 0));
  let o = 0;
  out[o++] = e.root;
  out[o++] = e.own ? 1 : 0;
  out[o++] = KINDS.indexOf(e.kind);
  o = out.writeUInt16BE(path.length, o);
  o += path.copy(out, o);
  if (hashes) {
    o = out.writeDoubleBE(e.size ?? 0, o);
    o = out.writeUInt32BE(hashes.length / HASH_BYTES, o);
    o += hashes.copy(out, o);
  }
  if (target) {
    o = out.writeUInt16BE(target.length, o);
    target.copy(out, o);
  }
  return out;
}

/** Decodes and checks a manifest (`roots`: how many replicated directories the module has). */
export function decodeManifest(buf: Uint8Array, roots: number): ManifestEntry[] {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: ManifestEntry[] = [];
  let o = 0;
  const need = (n: number, what: string): void => {
    if (o + n > b.length) throw bad(`truncated in ${what}`);
  };
  while (o < b.length) {
    need(5, 'an entry header');
    const root = b[o++]!;
    const own = b[o++] === 1;
    const kind = KINDS[b[o++]!];
    if (!kind) throw bad(`unknown kind ${b[o - 1]}`);
    if (root >= roots) throw bad(`directory index ${root}, the module has ${roots}`);
    const n = b.readUInt16BE(o);
    o += 2;
    need(n, 'a path');
    const path = b.toString('utf8', o, o + n);
    o += n;
    const problem = checkRecordPath(path);
    if (problem) throw bad(`path ${JSON.stringify(path)} ${problem}`);
    if (kind === 'file') {
      need(12, 'a file header');
      const size = b.readDoubleBE(o);
      const count = b.readUInt32BE(o + 8);
      o += 12;
      if (!Number.isSafeInteger(size) || size < 0 || count !== Math.ceil(size / BLOCK_SIZE)) throw bad(`file ${path}: size ${size} with ${count} hashes`);
      need(count * HASH_BYTES, 'hashes');
      out.push({ root, path, own, kind, size, hashes: b.subarray(o, o + count * HASH_BYTES) });
      o += count * HASH_BYTES;
    } else if (kind === 'symlink') {
      need(2, 'a target');
      const t = b.readUInt16BE(o);
      o += 2;
      need(t, 'a target');
      out.push({ root, path, own, kind, target: b.toString('utf8', o, o + t) });
      o += t;
    } else out.push({ root, path, own, kind });
  }
  return out;
}

/** What this node has at a path: lstat, then the block hashes of a file (read in 1 MiB chunks). */
export async function describePath(roots: readonly string[], root: number, path: string, own: boolean): Promise<ManifestEntry> {
  const abs = path === '' ? roots[root]! : join(roots[root]!, path);
  const st = await lstat(abs).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null;
    throw err;
  });
  if (!st || !(st.isFile() || st.isDirectory() || st.isSymbolicLink())) return { root, path, own, kind: 'absent' };
  if (st.isDirectory()) return { root, path, own, kind: 'dir' };
  if (st.isSymbolicLink()) return { root, path, own, kind: 'symlink', target: await readlink(abs) };
  const h = await open(abs, 'r');
  try {
    const size = (await h.stat()).size;
    const count = Math.ceil(size / BLOCK_SIZE);
    const hashes = Buffer.allocUnsafe(count * HASH_BYTES);
    const chunk = Buffer.allocUnsafe(256 * BLOCK_SIZE);
    let index = 0;
    for (let offset = 0; offset < size && index < count; ) {
      const { bytesRead } = await h.read(chunk, 0, Math.min(chunk.length, size - offset), offset);
      if (bytesRead === 0) break;
      for (let at = 0; at < bytesRead && index < count; at += BLOCK_SIZE, index++) hashBlock(chunk.subarray(at, Math.min(at + BLOCK_SIZE, bytesRead))).copy(hashes, index * HASH_BYTES);
      offset += bytesRead;
    }
    // Shrunk while read: the hashes read are what it has (the primary compares, the size says the rest).
    return { root, path, own, kind: 'file', size: Math.min(size, index * BLOCK_SIZE), hashes: hashes.subarray(0, index * HASH_BYTES) };
  } finally {
    await h.close();
  }
}

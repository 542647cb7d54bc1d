/**
 * The replication data plane without the watcher: a path read on the
 * "primary" directory becomes records, which travel encoded and are applied
 * on the "secondary" directory; after every shipped change both trees must
 * be the same (content, kind, mode, symlink target, mtime). Also: the codec
 * refuses what could write outside a replicated directory, only changed
 * blocks travel, and a patch interrupted by a crash is replayed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, truncateSync, renameSync, chmodSync, openSync, writeSync, closeSync, existsSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { isSkyhaError } from '../../../src/core/errors.js';
import { holdsFor, waitFor } from '../../../src/testing/wait.js';
import { Applier } from '../../../src/replication/applier.js';
import { readPath, HASH_BYTES } from '../../../src/replication/path-reader.js';
import { BLOCK_SIZE, decodeRecord, encodeRecord, STAGING_DIR, type ChangeRecord } from '../../../src/replication/record.js';

interface Pair {
  primary: string;
  secondary: string;
  applier: Applier;
  /** What the secondary has, per path (the primary's bookkeeping). */
  hashes: Map<string, Buffer>;
  /** Bytes of block data shipped. */
  shipped: number;
  cleanup(): void;
}

function pair(): Pair {
  const base = mkdtempSync(join(tmpdir(), 'skyha-dp-'));
  const primary = join(base, 'p');
  const secondary = join(base, 's');
  mkdirSync(primary);
  mkdirSync(secondary);
  return {
    primary,
    secondary,
    applier: new Applier({ roots: [secondary], journalPath: join(base, 'journal') }),
    hashes: new Map(),
    shipped: 0,
    cleanup: () => rmSync(base, { recursive: true, force: true }),
  };
}

/** Reads `path` on the primary: the records that bring the secondary to it (encoded), without applying them. */
async function read(p: Pair, path: string, maxRecordBytes = 64 * 1024, smallFile?: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const gen = readPath({ roots: [p.primary], maxRecordBytes, ...(smallFile !== undefined ? { smallFile } : {}) }, 0, path, p.hashes.get(path));
  for (;;) {
    const next = await gen.next();
    if (next.done) {
      if (next.value.hashes) p.hashes.set(path, next.value.hashes);
      else p.hashes.delete(path);
      return out;
    }
    out.push(encodeRecord(next.value));
  }
}

/** Reads `path` on the primary and applies what it yields on the secondary, through the codec. */
async function ship(p: Pair, path: string, maxRecordBytes = 64 * 1024, smallFile?: number): Promise<ChangeRecord[]> {
  const records: ChangeRecord[] = [];
  for (const bytes of await read(p, path, maxRecordBytes, smallFile)) {
    const r = decodeRecord(bytes, 1);
    if (r.kind === 'file') p.shipped += r.blocks.reduce((n, b) => n + b.data.length, 0);
    records.push(r);
    await p.applier.apply(bytes);
  }
  return records;
}

/** Every entry under `dir` with what must match (staging excluded). */
function snapshot(dir: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(dir, rel)).sort()) {
    if (rel === '' && name === STAGING_DIR) continue;
    const path = rel ? `${rel}/${name}` : name;
    const abs = join(dir, path);
    const st = lstatSync(abs);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out[path] = `symlink -> ${readlinkSync(abs)}`;
    else if (st.isDirectory()) {
      out[path] = `dir ${mode}`;
      Object.assign(out, snapshot(dir, path));
    } else out[path] = `file ${mode} ${Math.round(st.mtimeMs)} ${readFileSync(abs).toString('base64')}`;
  }
  return out;
}

test('codec: every kind round-trips; what could escape a replicated directory is refused', () => {
  const records: ChangeRecord[] = [
    { kind: 'file', root: 1, path: 'a/b.txt', mode: 0o640, uid: 1, gid: 2, mtimeMs: 1234.5, size: 5000, staged: true, first: true, last: true, blocks: [{ index: 0, data: Buffer.alloc(BLOCK_SIZE, 1) }, { index: 1, data: Buffer.alloc(904, 2) }] },
    { kind: 'dir', root: 0, path: '', mode: 0o755, uid: 0, gid: 0, mtimeMs: 1 },
    { kind: 'symlink', root: 0, path: 'l', target: '../anywhere', uid: 3, gid: 4, mtimeMs: 2 },
    { kind: 'delete', root: 0, path: 'gone/deep' },
  ];
  for (const r of records) assert.deepEqual(decodeRecord(encodeRecord(r), 2), r);
  const refused = (r: ChangeRecord, roots = 2): void => assert.throws(() => decodeRecord(encodeRecord(r), roots), (e: unknown) => isSkyhaError(e) && e.code === 'SKYHA_ERR_REPLICATION_RECORD');
  for (const path of ['../x', 'a/../../x', '/etc/passwd', 'a//b', './a', `${STAGING_DIR}/x`, 'a\0b']) refused({ kind: 'delete', root: 0, path });
  refused({ kind: 'delete', root: 0, path: '' });
  refused({ kind: 'dir', root: 2, path: 'x', mode: 0o755, uid: 0, gid: 0, mtimeMs: 0 });
  refused({ kind: 'file', root: 0, path: 'f', mode: 0o644, uid: 0, gid: 0, mtimeMs: 0, size: 10, staged: true, first: true, last: true, blocks: [{ index: 0, data: Buffer.alloc(11) }] });
  const truncated = encodeRecord(records[0]!).subarray(0, 100);
  assert.throws(() => decodeRecord(truncated, 2), /truncated/);
});

test('each kind of change arrives: create, write, truncate, chmod, rename across directories, symlink, empty dir, delete, type change', async () => {
  const p = pair();
  try {
    const P = (x: string) => join(p.primary, x);
    const sync = async (...paths: string[]) => {
      for (const x of paths) await ship(p, x);
      assert.deepEqual(snapshot(p.secondary), snapshot(p.primary));
    };
    mkdirSync(P('a/b'), { recursive: true });
    writeFileSync(P('a/b/f.txt'), 'hello');
    await sync('a', 'a/b', 'a/b/f.txt');
    writeFileSync(P('a/b/f.txt'), 'hello, world', { flag: 'a' });
    await sync('a/b/f.txt');
    truncateSync(P('a/b/f.txt'), 3);
    await sync('a/b/f.txt');
    chmodSync(P('a/b/f.txt'), 0o600);
    await sync('a/b/f.txt');
    mkdirSync(P('c'));
    renameSync(P('a/b/f.txt'), P('c/g.txt'));
    await sync('a/b/f.txt', 'c', 'c/g.txt');
    symlinkSync('../c/g.txt', P('a/link'));
    mkdirSync(P('empty'));
    await sync('a/link', 'empty');
    rmSync(P('a'), { recursive: true });
    await sync('a');
    // The same name becomes a directory, then a file again.
    mkdirSync(P('c/g.txt.d'));
    rmSync(P('c/g.txt'));
    mkdirSync(P('c/g.txt'));
    writeFileSync(P('c/g.txt/inner'), 'x');
    await sync('c/g.txt', 'c/g.txt/inner', 'c/g.txt.d');
    rmSync(P('c/g.txt'), { recursive: true });
    writeFileSync(P('c/g.txt'), 'file again');
    await sync('c/g.txt');
  } finally {
    p.cleanup();
  }
});

test('a small file replacing a big file or a directory tree (applied off the event loop) lands whole', async () => {
  const p = pair();
  try {
    // 32 MiB, sparse on both sides: what is in the way is big.
    const big = join(p.primary, 'big');
    writeFileSync(big, '');
    truncateSync(big, 32 * 1024 * 1024);
    writeFileSync(join(p.secondary, 'big'), '');
    truncateSync(join(p.secondary, 'big'), 32 * 1024 * 1024);
    mkdirSync(join(p.secondary, 'tree/a/b'), { recursive: true });
    for (let i = 0; i < 200; i++) writeFileSync(join(p.secondary, 'tree/a/b', `f${i}`), 'x');
    rmSync(big);
    writeFileSync(big, 'small now');
    writeFileSync(join(p.primary, 'tree'), 'a file where a tree was');
    for (const path of ['big', 'tree']) await ship(p, path);
    assert.equal(readFileSync(join(p.secondary, 'big'), 'utf8'), 'small now');
    assert.equal(readFileSync(join(p.secondary, 'tree'), 'utf8'), 'a file where a tree was');
    assert.deepEqual(snapshot(p.secondary), snapshot(p.primary));
  } finally {
    p.cleanup();
  }
});

test('a change of a few blocks of a big file sends those blocks only, in place; a rewrite goes whole', async () => {
  const p = pair();
  try {
    const file = join(p.primary, 'db');
    const size = 5 * 1024 * 1024;
    writeFileSync(file, Buffer.alloc(size, 7));
    await ship(p, 'db', 1024 * 1024);
    assert.equal(p.shipped, size, 'a new file goes whole');
    p.shipped = 0;
    const fd = openSync(file, 'r+');
    for (const block of [3, 700, 1279]) writeSync(fd, Buffer.alloc(100, block % 256), 0, 100, block * BLOCK_SIZE + 50);
    closeSync(fd);
    const records = await ship(p, 'db', 1024 * 1024);
    assert.equal(p.shipped, 3 * BLOCK_SIZE, 'three changed blocks, nothing else');
    assert.ok(records.every((r) => r.kind === 'file' && !r.staged), 'patched in place');
    assert.deepEqual(readFileSync(join(p.secondary, 'db')), readFileSync(file));
    assert.equal(p.hashes.get('db')!.length, (size / BLOCK_SIZE) * HASH_BYTES);
    p.shipped = 0;
    writeFileSync(file, Buffer.alloc(size, 9));
    const rewrite = await ship(p, 'db', 1024 * 1024);
    assert.ok(rewrite.every((r) => r.kind === 'file' && r.staged), 'a rewrite is staged');
    assert.equal(rewrite.length, 5, 'in parts of 1 MiB');
    assert.deepEqual(readFileSync(join(p.secondary, 'db')), readFileSync(file));
  } finally {
    p.cleanup();
  }
});

test('a big file\'s parts go through one open staging file; parts of two files interleaved, a closed or removed staging area, a close during a write, a file sent anew: every file whole, no descriptor left open', async () => {
  const p = pair();
  const fds = (): number => readdirSync('/proc/self/fd').length;
  try {
    writeFileSync(join(p.primary, 'a'), Buffer.alloc(3 * 64 * 1024 + 10, 1));
    writeFileSync(join(p.primary, 'b'), Buffer.alloc(2 * 64 * 1024 + 20, 2));
    const a = await read(p, 'a');
    const b = await read(p, 'b');
    assert.equal(a.length, 4);
    assert.equal(b.length, 3);
    const before = fds();
    await p.applier.apply(a[0]!);
    await p.applier.apply(a[1]!);
    assert.equal(fds(), before + 1, 'the staging file of a stays open between its parts');
    // Another file's first part closes a's staging file; a's next part opens it again and goes on.
    await p.applier.apply(b[0]!);
    await p.applier.apply(a[2]!);
    await p.applier.apply(b[1]!);
    // The owner closes it (the node stops applying); the next part opens it again.
    p.applier.closeStaging();
    assert.equal(fds(), before);
    await p.applier.apply(a[3]!);
    await p.applier.apply(b[2]!);
    assert.equal(fds(), before, 'nothing open once both files are in place');
    assert.deepEqual(snapshot(p.secondary), snapshot(p.primary));
    // A staging area removed by hand between two files is made again.
    rmSync(join(p.secondary, STAGING_DIR), { recursive: true });
    writeFileSync(join(p.primary, 'c'), Buffer.alloc(2 * 64 * 1024 + 5, 3));
    await ship(p, 'c');
    assert.deepEqual(snapshot(p.secondary), snapshot(p.primary));
    assert.equal(fds(), before);
    // So is one removed before a symlink or a small file, which go through the same staging directory.
    rmSync(join(p.secondary, STAGING_DIR), { recursive: true });
    symlinkSync('c', join(p.primary, 'link'));
    await ship(p, 'link');
    rmSync(join(p.secondary, STAGING_DIR), { recursive: true });
    writeFileSync(join(p.primary, 'small'), 'a small file');
    await ship(p, 'small');
    assert.deepEqual(snapshot(p.secondary), snapshot(p.primary));
    // A close asked for while a part is being written waits for the write (its descriptor could be reused).
    writeFileSync(join(p.primary, 'e'), Buffer.alloc(2 * 64 * 1024 + 5, 5));
    const e = await read(p, 'e');
    const writing = p.applier.apply(e[0]!);
    p.applier.closeStaging();
    await writing;
    assert.equal(fds(), before, 'closed once its write was done');
    await p.applier.apply(e[1]!);
    await p.applier.apply(e[2]!);
    assert.deepEqual(readFileSync(join(p.secondary, 'e')), readFileSync(join(p.primary, 'e')));
    // A first part again (the file sent anew) starts the staging file over, even while the old one is open.
    writeFileSync(join(p.primary, 'f'), Buffer.alloc(3 * 64 * 1024, 6));
    const f1 = await read(p, 'f');
    writeFileSync(join(p.primary, 'f'), Buffer.alloc(2 * 64 * 1024 + 1, 7));
    p.hashes.delete('f');
    const f2 = await read(p, 'f');
    await p.applier.apply(f1[0]!);
    await p.applier.apply(f1[1]!);
    for (const bytes of f2) await p.applier.apply(bytes);
    assert.deepEqual(readFileSync(join(p.secondary, 'f')), readFileSync(join(p.primary, 'f')));
    assert.equal(fds(), before);
    // A later part whose staging file is gone is refused, not applied as if it were the whole file.
    writeFileSync(join(p.primary, 'd'), Buffer.alloc(2 * 64 * 1024 + 5, 4));
    const d = await read(p, 'd');
    await assert.rejects(p.applier.apply(d[1]!), /a later part arrived without the first one/);
  } finally {
    p.cleanup();
  }
});

test('a file replaced while it is being shipped is reported, and shipping it again leaves the new file whole', async () => {
  const p = pair();
  try {
    writeFileSync(join(p.primary, 'big.db'), Buffer.alloc(512 * 1024, 1));
    await ship(p, 'big.db');
    // Changed, then read part by part; after the first part it is replaced by another file (rename over it).
    const fd = openSync(join(p.primary, 'big.db'), 'r+');
    writeSync(fd, Buffer.alloc(4096, 2), 0, 4096, 0);
    closeSync(fd);
    const gen = readPath({ roots: [p.primary], maxRecordBytes: 64 * 1024, smallFile: 0 }, 0, 'big.db', p.hashes.get('big.db'));
    const first = await gen.next();
    assert.equal(first.done, false);
    await p.applier.apply(encodeRecord(first.value as ChangeRecord));
    writeFileSync(join(p.primary, 'next.db'), Buffer.alloc(300 * 1024, 3));
    renameSync(join(p.primary, 'next.db'), join(p.primary, 'big.db'));
    let outcome;
    for (;;) {
      const step = await gen.next();
      if (step.done) {
        outcome = step.value;
        break;
      }
      await p.applier.apply(encodeRecord(step.value));
    }
    // The open descriptor kept reading the replaced file; the stat after says the path moved on.
    assert.equal(outcome.changedWhileReading, true, 'the reader noticed');
    p.hashes.delete('big.db');
    await ship(p, 'big.db');
    assert.deepEqual(readFileSync(join(p.secondary, 'big.db')), readFileSync(join(p.primary, 'big.db')));
  } finally {
    p.cleanup();
  }
});

test('a batch of directories (a new tree, a resync) applies as the same records one by one: modes, existing ones, a file or symlink in the way', async () => {
  const p = pair();
  try {
    for (const d of ['a', 'a/b', 'a/b/c', 'x', 'x/y', 'z']) mkdirSync(join(p.primary, d));
    chmodSync(join(p.primary, 'a/b'), 0o700);
    chmodSync(join(p.primary, 'z'), 0o750);
    // On the secondary: z exists with another mode, x is a file and x/y would go under it, a is a symlink elsewhere.
    mkdirSync(join(p.secondary, 'z'), { mode: 0o777 });
    writeFileSync(join(p.secondary, 'x'), 'in the way');
    const elsewhere = mkdtempSync(join(tmpdir(), 'skyha-dp-elsewhere-'));
    symlinkSync(elsewhere, join(p.secondary, 'a'));
    const batch: Buffer[] = [];
    for (const d of ['a', 'a/b', 'a/b/c', 'x', 'x/y', 'z']) batch.push(...(await read(p, d)));
    await p.applier.applyBatch(batch.map((bytes) => ({ bytes, record: decodeRecord(bytes, 1) })));
    assert.deepEqual(snapshot(p.secondary), snapshot(p.primary));
    assert.deepEqual(readdirSync(elsewhere), [], 'nothing made through the symlink');
    rmSync(elsewhere, { recursive: true, force: true });
  } finally {
    p.cleanup();
  }
});

test('a patch interrupted by a crash is replayed from the intent journal', async () => {
  const p = pair();
  try {
    writeFileSync(join(p.primary, 'f'), Buffer.alloc(256 * 1024, 1));
    await ship(p, 'f');
    const fd = openSync(join(p.primary, 'f'), 'r+');
    writeSync(fd, Buffer.alloc(10, 2), 0, 10, 4096 * 5);
    closeSync(fd);
    const gen = readPath({ roots: [p.primary], maxRecordBytes: 1 << 20 }, 0, 'f', p.hashes.get('f'));
    const patch = (await gen.next()).value as ChangeRecord;
    await gen.return({ changedWhileReading: false });
    assert.equal(patch.kind === 'file' && patch.staged, false);
    // The crash: the journal was written, the file not yet.
    writeFileSync(join(p.secondary, '..', 'journal'), encodeRecord(patch));
    const fresh = new Applier({ roots: [p.secondary], journalPath: join(p.secondary, '..', 'journal') });
    const replayed = await fresh.recover();
    assert.equal(replayed?.kind, 'file');
    assert.equal(existsSync(join(p.secondary, '..', 'journal')), false);
    assert.deepEqual(readFileSync(join(p.secondary, 'f')), readFileSync(join(p.primary, 'f')));
    assert.equal(await fresh.recover(), undefined, 'nothing left to replay');
  } finally {
    p.cleanup();
  }
});

test('a burst applied as one batch ends where the same records applied one by one end: patches of a file several times, then other kinds', async () => {
  const p = pair();
  try {
    const patchBlock = (file: string, index: number, byte: number): void => {
      const fd = openSync(join(p.primary, file), 'r+');
      writeSync(fd, Buffer.alloc(BLOCK_SIZE, byte), 0, BLOCK_SIZE, index * BLOCK_SIZE);
      closeSync(fd);
    };
    writeFileSync(join(p.primary, 'f'), Buffer.alloc(256 * 1024, 1));
    writeFileSync(join(p.primary, 'g'), Buffer.alloc(128 * 1024, 2));
    writeFileSync(join(p.primary, 'small'), 'small');
    for (const path of ['f', 'g', 'small']) await ship(p, path);
    const burst: Buffer[] = [];
    patchBlock('f', 3, 7);
    burst.push(...(await read(p, 'f')));
    patchBlock('g', 0, 8);
    burst.push(...(await read(p, 'g')));
    patchBlock('f', 3, 9); // the same block of the same file again, in the same run
    patchBlock('f', 40, 9);
    burst.push(...(await read(p, 'f')));
    mkdirSync(join(p.primary, 'd'));
    writeFileSync(join(p.primary, 'd', 'h'), Buffer.alloc(70 * 1024, 3));
    burst.push(...(await read(p, 'd')), ...(await read(p, 'd/h')));
    rmSync(join(p.primary, 'small'));
    burst.push(...(await read(p, 'small')));
    patchBlock('f', 10, 5);
    truncateSync(join(p.primary, 'g'), 100 * 1024);
    burst.push(...(await read(p, 'f')), ...(await read(p, 'g')));
    const decoded = burst.map((b) => decodeRecord(b, 1));
    const kinds = new Set(decoded.map((r) => (r.kind === 'file' ? (r.staged ? 'staged' : 'patch') : r.kind)));
    assert.deepEqual([...kinds].sort(), ['delete', 'dir', 'patch', 'staged']);
    assert.ok(decoded.filter((r) => r.kind === 'file' && !r.staged && r.path === 'f').length >= 3, 'f patched several times');
    const seen: number[] = [];
    await p.applier.applyBatch(burst.map((bytes) => ({ bytes, record: decodeRecord(bytes, 1) })), async (i) => void seen.push(i));
    assert.deepEqual(seen, burst.map((_, i) => i), 'before() once per record, in order');
    assert.deepEqual(snapshot(p.secondary), snapshot(p.primary));
    assert.equal(existsSync(join(p.secondary, '..', 'journal')), false, 'no journal left once the batch is durable');
  } finally {
    p.cleanup();
  }
});

test('a run of patches interrupted by a crash is replayed whole, in order, from the intent journal', async () => {
  const p = pair();
  try {
    writeFileSync(join(p.primary, 'f'), Buffer.alloc(256 * 1024, 1));
    writeFileSync(join(p.primary, 'g'), Buffer.alloc(256 * 1024, 2));
    await ship(p, 'f');
    await ship(p, 'g');
    const run: Buffer[] = [];
    for (const [file, index, byte] of [['f', 1, 5], ['g', 2, 6], ['f', 1, 7]] as const) {
      const fd = openSync(join(p.primary, file), 'r+');
      writeSync(fd, Buffer.alloc(100, byte), 0, 100, index * BLOCK_SIZE);
      closeSync(fd);
      run.push(...(await read(p, file)));
    }
    // The crash: the run's journal was written (a header line, then each record after its length), no file yet.
    const parts: Buffer[] = [Buffer.from('SKYHA-PATCHES-1\n', 'latin1')];
    for (const r of run) parts.push(Buffer.from([0, 0, r.length >> 8, r.length & 0xff]), r);
    writeFileSync(join(p.secondary, '..', 'journal'), Buffer.concat(parts));
    const fresh = new Applier({ roots: [p.secondary], journalPath: join(p.secondary, '..', 'journal') });
    assert.equal((await fresh.recover())?.path, 'f', 'the last record replayed');
    assert.equal(existsSync(join(p.secondary, '..', 'journal')), false);
    assert.deepEqual(readFileSync(join(p.secondary, 'f')), readFileSync(join(p.primary, 'f')), 'the later patch of f wins, as it did on the primary');
    assert.deepEqual(readFileSync(join(p.secondary, 'g')), readFileSync(join(p.primary, 'g')));
  } finally {
    p.cleanup();
  }
});

test('a removed intent journal is durably gone before the next record touches the data, without holding back the batch', async () => {
  const p = pair();
  try {
    writeFileSync(join(p.primary, 'f'), Buffer.alloc(256 * 1024, 1));
    writeFileSync(join(p.primary, 'g'), 'g');
    await ship(p, 'f');
    await ship(p, 'g');
    const journal = join(p.secondary, '..', 'journal');
    // Each fsync of the journal's directory waits for the test; the journal's presence at that moment is noted.
    const syncs: Array<{ journalThere: boolean; release: () => void }> = [];
    const applier = new Applier({
      roots: [p.secondary],
      journalPath: journal,
      syncJournalDir: () => new Promise<void>((release) => syncs.push({ journalThere: existsSync(journal), release })),
    });
    const fd = openSync(join(p.primary, 'f'), 'r+');
    writeSync(fd, Buffer.alloc(100, 9), 0, 100, 2 * BLOCK_SIZE);
    closeSync(fd);
    const patch = await read(p, 'f');
    assert.equal(decodeRecord(patch[0]!, 1).kind === 'file' && !(decodeRecord(patch[0]!, 1) as { staged: boolean }).staged, true, 'a patch in place');
    const batch = applier.applyBatch(patch.map((bytes) => ({ bytes, record: decodeRecord(bytes, 1) })));
    await waitFor('the journal written and its directory synced', () => syncs.length === 1, { deadline: 5000, every: 2 });
    assert.equal(syncs[0]!.journalThere, true, 'the journal, written');
    syncs[0]!.release();
    await batch; // durable without waiting for the removal's fsync
    assert.equal(existsSync(journal), false);
    assert.equal(syncs.length, 2, "the removal's fsync is under way");
    assert.equal(syncs[1]!.journalThere, false);
    rmSync(join(p.primary, 'g'));
    const removal = await read(p, 'g');
    let applied = false;
    const next = applier.applyBatch(removal.map((bytes) => ({ bytes, record: decodeRecord(bytes, 1) }))).then(() => (applied = true));
    await holdsFor('the next record waiting while the journal could come back', () => existsSync(join(p.secondary, 'g')) && !applied, { duration: 200, every: 10 });
    syncs[1]!.release();
    await next;
    assert.equal(existsSync(join(p.secondary, 'g')), false);
    assert.deepEqual(readFileSync(join(p.secondary, 'f')), readFileSync(join(p.primary, 'f')));
  } finally {
    p.cleanup();
  }
});

test('directories made by a batch are durable before a later record of it can move one of them aside', async () => {
  const p = pair();
  try {
    writeFileSync(join(p.primary, 'g'), Buffer.alloc(256 * 1024, 1));
    await ship(p, 'g');
    mkdirSync(join(p.primary, 'd'));
    const fd = openSync(join(p.primary, 'g'), 'r+');
    writeSync(fd, Buffer.alloc(100, 9), 0, 100, BLOCK_SIZE);
    closeSync(fd);
    const records = [...(await read(p, 'd')), ...(await read(p, 'g'))];
    const kinds = records.map((b) => { const r = decodeRecord(b, 1); return r.kind === 'file' ? (r.staged ? 'staged' : 'patch') : r.kind; });
    assert.deepEqual([kinds[0], new Set(kinds.slice(1))], ['dir', new Set(['patch'])], 'a directory, then patches in place');
    // A resync's set-aside, just before the patch: the secondary's own directory goes to the conflict folder.
    const aside = join(p.secondary, '..', 'aside');
    await p.applier.applyBatch(records.map((bytes) => ({ bytes, record: decodeRecord(bytes, 1) })), async (i) => {
      if (i === 1) renameSync(join(p.secondary, 'd'), aside);
    });
    assert.equal(lstatSync(aside).isDirectory(), true);
    assert.deepEqual(readFileSync(join(p.secondary, 'g')), readFileSync(join(p.primary, 'g')));
  } finally {
    p.cleanup();
  }
});

test('a symlink on the secondary cannot lead a write outside the replicated directory', async () => {
  const p = pair();
  const outside = mkdtempSync(join(tmpdir(), 'skyha-dp-outside-'));
  try {
    symlinkSync(outside, join(p.secondary, 'd'));
    mkdirSync(join(p.primary, 'd'));
    writeFileSync(join(p.primary, 'd', 'f'), 'data');
    await ship(p, 'd/f');
    assert.deepEqual(readdirSync(outside), [], 'nothing written through the symlink');
    assert.equal(lstatSync(join(p.secondary, 'd')).isDirectory(), true);
    assert.equal(readFileSync(join(p.secondary, 'd', 'f'), 'utf8'), 'data');
  } finally {
    p.cleanup();
    rmSync(outside, { recursive: true, force: true });
  }
});

function realpathOrNull(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

test('property: any sequence of changes, each shipped for the paths it touched, leaves the same tree', async () => {
  const names = ['a', 'b', 'c'];
  const path = fc.array(fc.constantFrom(...names), { minLength: 1, maxLength: 3 }).map((xs) => xs.join('/'));
  const op = fc.oneof(
    fc.record({ op: fc.constant('write' as const), path, offset: fc.nat(3 * BLOCK_SIZE), length: fc.nat(2 * BLOCK_SIZE), byte: fc.nat(255) }),
    fc.record({ op: fc.constant('truncate' as const), path, size: fc.nat(4 * BLOCK_SIZE) }),
    fc.record({ op: fc.constant('mkdir' as const), path }),
    fc.record({ op: fc.constant('symlink' as const), path, target: fc.constantFrom('a', '../b', '/nowhere') }),
    fc.record({ op: fc.constant('rm' as const), path }),
    fc.record({ op: fc.constant('rename' as const), path, to: path }),
    fc.record({ op: fc.constant('chmod' as const), path, mode: fc.constantFrom(0o600, 0o644, 0o755) }),
  );
  await fc.assert(
    // Small files normally go whole; with smallFile 0 and small parts, patches in place and parts are exercised too.
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), fc.constantFrom(undefined, 0), fc.constantFrom(BLOCK_SIZE, 64 * 1024), async (ops, smallFile, maxRecordBytes) => {
      const p = pair();
      try {
        for (const o of ops) {
          const abs = join(p.primary, o.path);
          const touched = o.op === 'rename' ? [o.path, o.to] : [o.path];
          // The watcher reports real paths: an operation through a symlinked parent touches the path under the
          // parent's target. The parents are resolved before the operation, which may move a symlink it went through
          // (rename b to b/a, b a symlink to a, makes a/a).
          const base = realpathSync(p.primary);
          const parents = touched.map((t) => realpathOrNull(dirname(join(p.primary, t))));
          try {
            switch (o.op) {
              case 'write': {
                const fd = openSync(abs, existsSync(abs) ? 'r+' : 'w');
                writeSync(fd, Buffer.alloc(o.length, o.byte), 0, o.length, o.offset);
                closeSync(fd);
                break;
              }
              case 'truncate':
                truncateSync(abs, o.size);
                break;
              case 'mkdir':
                mkdirSync(abs);
                break;
              case 'symlink':
                symlinkSync(o.target, abs);
                break;
              case 'rm':
                rmSync(abs, { recursive: true });
                break;
              case 'rename':
                renameSync(abs, join(p.primary, o.to));
                break;
              case 'chmod':
                if (!lstatSync(abs).isSymbolicLink()) chmodSync(abs, o.mode);
                break;
            }
          } catch {
            continue; // an operation the tree does not allow (parent missing, not a directory...): nothing changed
          }
          const resolved: string[] = [];
          touched.forEach((t, i) => {
            const parent = parents[i];
            if (parent && (parent === base || parent.startsWith(`${base}/`))) resolved.push(relative(base, join(parent, basename(t))));
          });
          // A write through a symlink changes its target.
          if (o.op === 'write' || o.op === 'truncate') {
            const real = realpathOrNull(abs);
            if (real && real.startsWith(`${base}/`)) resolved.push(relative(base, real));
          }
          touched.splice(0, touched.length, ...new Set(resolved));
          // What a watcher reports: the touched paths, and for a directory moved in, everything under it.
          for (const t of touched) {
            await ship(p, t, maxRecordBytes, smallFile);
            if (existsSync(join(p.primary, t)) && lstatSync(join(p.primary, t)).isDirectory()) for (const inner of Object.keys(snapshot(join(p.primary, t)))) await ship(p, `${t}/${inner}`, maxRecordBytes, smallFile);
          }
          assert.deepEqual(snapshot(p.secondary), snapshot(p.primary), JSON.stringify(o));
        }
      } finally {
        p.cleanup();
      }
    }),
    { numRuns: 150 },
  );
});

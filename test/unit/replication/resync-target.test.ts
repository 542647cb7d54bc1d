/**
 * The secondary's side of a resync on a real tree: what it changed itself
 * is kept aside before a record replaces it, and a resync that replaces a
 * stopped one (its connection was replaced) reports what that one kept.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { History } from '../../../src/replication/history.js';
import type { ReplResyncManifestMessage } from '../../../src/replication/resync-messages.js';
import { ResyncTarget } from '../../../src/replication/resync-target.js';

test('a resync that replaces a stopped one reports what that one kept aside, and does not keep it again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skyha-resync-tgt-'));
  const root = join(dir, 'data');
  mkdirSync(root);
  writeFileSync(join(root, 'mine.txt'), 'written here, never replicated');
  const history = new History({ path: join(dir, 'history') });
  const manifests: ReplResyncManifestMessage[] = [];
  const events: string[] = [];
  const target = new ResyncTarget({
    module: 'db',
    roots: [root],
    writeRoots: () => [root],
    history,
    stateDir: dir,
    send: (m) => (manifests.push(m), true),
    writable: async () => true,
    emit: (reason, text) => events.push(`${reason}: ${text}`),
  });
  const theirs = { kind: 'file' as const, root: 0, path: 'mine.txt', mode: 0o644, uid: 0, gid: 0, mtimeMs: 0, size: 7, staged: true, first: true, last: true, blocks: [{ index: 0, data: Buffer.from('primary') }] };
  try {
    // No common point: the whole tree is its own.
    await target.begin({ type: 'repl-resync-begin', module: 'db', epoch: 4, id: '4.1', common: null, data: Buffer.alloc(0), last: true });
    assert.equal(manifests.at(-1)?.full, true);
    await target.beforeApply(theirs, 100);
    writeFileSync(join(root, 'mine.txt'), 'primary'); // the record applied
    // Its connection was replaced: the primary starts over.
    await target.begin({ type: 'repl-resync-begin', module: 'db', epoch: 4, id: '4.2', common: null, data: Buffer.alloc(0), last: true });
    await target.beforeApply(theirs, 100);
    target.finish({ epoch: 4, seq: 9 });
    assert.equal(target.last?.conflicts, 1);
    const folder = target.last?.folder;
    assert.ok(folder);
    assert.deepEqual(readdirSync(join(folder, '0')), ['mine.txt']);
    assert.equal(readFileSync(join(folder, '0', 'mine.txt'), 'utf8'), 'written here, never replicated', 'the first copy, not the primary version over it');
    assert.match(events.join('\n'), /REPLICATION_RESYNC_CONFLICT: .*mine\.txt/);

    // Stopped again, and then another primary (a later epoch) resyncs this node: the stopped one's set-aside is
    // reported at once, and what this node wrote since is set aside again, not taken as already kept.
    events.splice(0);
    await target.begin({ type: 'repl-resync-begin', module: 'db', epoch: 5, id: '5.1', common: null, data: Buffer.alloc(0), last: true });
    await target.beforeApply(theirs, 100);
    await target.begin({ type: 'repl-resync-begin', module: 'db', epoch: 6, id: '6.1', common: null, data: Buffer.alloc(0), last: true });
    assert.equal(events.filter((e) => e.startsWith('REPLICATION_RESYNC_CONFLICT')).length, 1, 'the stopped one reported when the next epoch began');
    writeFileSync(join(root, 'mine.txt'), 'written again');
    await target.beforeApply(theirs, 100);
    target.finish({ epoch: 6, seq: 3 });
    assert.equal(target.last?.conflicts, 1);
    assert.notEqual(target.last?.folder, folder);
    assert.equal(readFileSync(join(target.last!.folder!, '0', 'mine.txt'), 'utf8'), 'written again');
  } finally {
    history.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

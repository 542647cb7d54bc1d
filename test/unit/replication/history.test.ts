/**
 * The data history (the persistent dirty set): lineage across promotions
 * and resyncs, what changed since a point, and what it must refuse to
 * answer (a gap, a trimmed past, epoch 0) so that a resync compares hashes
 * instead of trusting an incomplete history. It survives reopening, a torn
 * last line and compaction.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { History, pathKey, type Touched } from '../../../src/replication/history.js';

function scratch(): { path: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'skyha-history-'));
  return { path: join(dir, 'history'), done: () => rmSync(dir, { recursive: true, force: true }) };
}

function plain(m: Map<string, Touched> | undefined): Record<string, string> | undefined {
  if (!m) return undefined;
  const out: Record<string, string> = {};
  for (const [k, t] of m) out[k.replace('\0', ':')] = t === 'all' ? 'all' : [...t].sort((a, b) => a - b).join(',');
  return out;
}

test('a primary and a secondary: changes since a point, blocks merged, whole changes win', () => {
  const s = scratch();
  try {
    const h = new History({ path: s.path });
    h.start(3, { epoch: 0, seq: 0 });
    h.change({ epoch: 3, seq: 1 }, 0, 'a', [1, 2]);
    h.change({ epoch: 3, seq: 2 }, 0, 'b', undefined);
    h.change({ epoch: 3, seq: 3 }, 0, 'a', [2, 7]);
    h.change({ epoch: 3, seq: 4 }, 1, 'c', [0]);
    h.change({ epoch: 3, seq: 5 }, 1, 'c', undefined);
    assert.deepEqual(h.position, { epoch: 3, seq: 5 });
    assert.deepEqual(h.commonPoint({ epoch: 3, seq: 2 }), { epoch: 3, seq: 2 });
    assert.deepEqual(h.commonPoint({ epoch: 3, seq: 99 }), { epoch: 3, seq: 5 }, 'the other is ahead: the point is where this data is');
    assert.deepEqual(plain(h.changesSince({ epoch: 3, seq: 2 })), { '0:a': '2,7', '1:c': 'all' });
    assert.deepEqual(plain(h.changesSince({ epoch: 3, seq: 0 })), { '0:a': '1,2,7', '0:b': 'all', '1:c': 'all' });
    assert.equal(h.commonPoint({ epoch: 0, seq: 0 }), undefined, 'epoch 0 is data from before any primary: nothing is common');
    assert.equal(h.changesSince({ epoch: 0, seq: 0 }), undefined);
    assert.equal(h.commonPoint({ epoch: 2, seq: 10 }), undefined, 'an epoch this lineage never went through');
    h.close();
  } finally {
    s.done();
  }
});

test('lineage: a secondary resynced at a point, then promoted; a returning old primary finds the common point', () => {
  const s = scratch();
  try {
    const h = new History({ path: s.path });
    // As secondary of epoch 2 after a resync at 2:10, it applied 11..13, then was promoted to epoch 5 from 2:13.
    h.reset({ epoch: 2, seq: 10 });
    h.change({ epoch: 2, seq: 11 }, 0, 'x', [4]);
    h.change({ epoch: 2, seq: 12 }, 0, 'y', undefined);
    h.change({ epoch: 2, seq: 13 }, 0, 'x', [5]);
    h.start(5, { epoch: 2, seq: 13 });
    h.change({ epoch: 5, seq: 1 }, 0, 'z', undefined);
    h.change({ epoch: 5, seq: 2 }, 0, 'x', [9]);
    // The old primary of epoch 2 got as far as 2:20; this data left epoch 2 at 13.
    assert.deepEqual(h.commonPoint({ epoch: 2, seq: 20 }), { epoch: 2, seq: 13 });
    assert.deepEqual(plain(h.changesSince({ epoch: 2, seq: 13 })), { '0:z': 'all', '0:x': '9' });
    // A secondary of epoch 2 that stopped at 2:11.
    assert.deepEqual(h.commonPoint({ epoch: 2, seq: 11 }), { epoch: 2, seq: 11 });
    assert.deepEqual(plain(h.changesSince({ epoch: 2, seq: 11 })), { '0:x': '5,9', '0:y': 'all', '0:z': 'all' });
    // Before the resync nothing is known.
    assert.equal(h.changesSince({ epoch: 2, seq: 9 }), undefined);
    h.close();
    // Reopened: the same answers.
    const again = new History({ path: s.path });
    assert.deepEqual(plain(again.changesSince({ epoch: 2, seq: 11 })), { '0:x': '5,9', '0:y': 'all', '0:z': 'all' });
    assert.equal(again.continuesOwnEpoch, true);
    again.close();
  } finally {
    s.done();
  }
});

test('a gap (a change recorded after a missing one) makes everything before it unanswerable', () => {
  const s = scratch();
  try {
    const h = new History({ path: s.path });
    h.reset({ epoch: 4, seq: 0 });
    h.change({ epoch: 4, seq: 1 }, 0, 'a', undefined);
    h.change({ epoch: 4, seq: 3 }, 0, 'b', undefined);
    h.change({ epoch: 4, seq: 4 }, 0, 'c', undefined);
    assert.equal(h.changesSince({ epoch: 4, seq: 0 }), undefined, 'seq 2 is missing');
    assert.equal(h.changesSince({ epoch: 4, seq: 1 }), undefined);
    assert.deepEqual(plain(h.changesSince({ epoch: 4, seq: 3 })), { '0:c': 'all' }, 'after the gap the history is whole again');
    h.close();
  } finally {
    s.done();
  }
});

test('a torn last line (power loss mid-append) is ignored, and later appends start on a fresh line', () => {
  const s = scratch();
  try {
    const h = new History({ path: s.path });
    h.start(1, { epoch: 0, seq: 0 });
    h.change({ epoch: 1, seq: 1 }, 0, 'a', [0]);
    h.close();
    appendFileSync(s.path, '{"t":"c","e":1,"s":2,"k":"0\\u0000');
    const again = new History({ path: s.path });
    assert.deepEqual(again.position, { epoch: 1, seq: 1 });
    again.change({ epoch: 1, seq: 2 }, 0, 'b', undefined);
    again.close();
    const third = new History({ path: s.path });
    assert.deepEqual(plain(third.changesSince({ epoch: 1, seq: 0 })), { '0:a': '0', '0:b': 'all' });
    third.close();
  } finally {
    s.done();
  }
});

test('suspects (found after an unclean stop) count as whole changes after any point of their segment, and follow a promotion', () => {
  const s = scratch();
  try {
    const h = new History({ path: s.path });
    h.start(1, { epoch: 0, seq: 0 });
    h.change({ epoch: 1, seq: 1 }, 0, 'a', [3]);
    h.suspect([pathKey(0, 'late'), pathKey(0, 'a')]);
    assert.deepEqual(plain(h.changesSince({ epoch: 1, seq: 1 })), { '0:late': 'all', '0:a': 'all' });
    h.start(2, { epoch: 1, seq: 1 });
    h.change({ epoch: 2, seq: 1 }, 0, 'n', undefined);
    assert.deepEqual(plain(h.changesSince({ epoch: 1, seq: 1 })), { '0:n': 'all', '0:late': 'all', '0:a': 'all' });
    h.close();
  } finally {
    s.done();
  }
});

test('a promotion from a position behind the recorded changes counts those changes as suspects', () => {
  const s = scratch();
  try {
    const h = new History({ path: s.path });
    h.reset({ epoch: 1, seq: 0 });
    h.change({ epoch: 1, seq: 1 }, 0, 'a', undefined);
    h.change({ epoch: 1, seq: 2 }, 0, 'b', [1]); // recorded, maybe not applied when the node crashed
    h.start(2, { epoch: 1, seq: 1 });
    assert.deepEqual(plain(h.changesSince({ epoch: 1, seq: 2 })), { '0:b': 'all' }, 'even a node that has 1:2 compares b');
    h.close();
  } finally {
    s.done();
  }
});

test('compaction keeps the newest half, answers what it still knows and refuses what it dropped', () => {
  const s = scratch();
  try {
    const h = new History({ path: s.path, maxBytes: 20_000 });
    h.start(1, { epoch: 0, seq: 0 });
    for (let seq = 1; seq <= 1000; seq++) h.change({ epoch: 1, seq }, 0, `f${seq % 50}`, [seq % 7]);
    assert.ok(statSync(s.path).size <= 20_000, 'rewritten when it passed the bound');
    assert.deepEqual(h.position, { epoch: 1, seq: 1000 });
    assert.equal(h.changesSince({ epoch: 1, seq: 10 }), undefined, 'the oldest changes were dropped');
    assert.deepEqual(Object.keys(plain(h.changesSince({ epoch: 1, seq: 990 }))!).length, 10);
    h.close();
    const again = new History({ path: s.path });
    assert.deepEqual(again.position, { epoch: 1, seq: 1000 });
    assert.equal(again.changesSince({ epoch: 1, seq: 10 }), undefined);
    assert.equal(Object.keys(plain(again.changesSince({ epoch: 1, seq: 990 }))!).length, 10);
    again.close();
  } finally {
    s.done();
  }
});

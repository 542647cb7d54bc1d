import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TimeSlice } from '../../../src/core/time-slice.js';
import { STAGING_DIR } from '../../../src/replication/record.js';
import { walkTreeSliced } from '../../../src/replication/tree.js';

test('the sliced walk finds every path, parents first, without the staging area, and lets timers run meanwhile', async () => {
  const root = mkdtempSync(join(tmpdir(), 'skyha-tree-'));
  try {
    for (let i = 0; i < 30; i++) {
      mkdirSync(join(root, `d${i}`, 'inner'), { recursive: true });
      writeFileSync(join(root, `d${i}`, 'inner', 'f'), 'x');
    }
    symlinkSync('d0', join(root, 'link'));
    mkdirSync(join(root, STAGING_DIR));
    writeFileSync(join(root, STAGING_DIR, 'partial'), 'x');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const seen: string[] = [];
    // A slice of 0 ms: a turn of the event loop after every directory.
    for await (const path of walkTreeSliced(root, new TimeSlice(0))) seen.push(path);
    clearInterval(timer);
    const expected = ['', 'link', ...Array.from({ length: 30 }, (_, i) => [`d${i}`, `d${i}/inner`, `d${i}/inner/f`]).flat()];
    assert.deepEqual([...seen].sort(), expected.sort());
    assert.equal(seen[0], '');
    assert.equal(seen.some((p) => p.startsWith(STAGING_DIR)), false);
    for (const [i, p] of seen.entries()) if (p.includes('/')) assert.ok(seen.indexOf(p.slice(0, p.lastIndexOf('/'))) < i, `${p} after its parent`);
    assert.ok(ticks > 0, 'timers ran during the walk');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

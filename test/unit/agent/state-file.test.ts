/** The member's durable state: a missing file is a new disk, an unreadable one is refused, never silently reset. */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { StateFile } from '../../../src/agent/state-file.js';

const dir = mkdtempSync(join(tmpdir(), 'skyha-state-'));
const who = { member: 'n1', cluster: 'c' };

describe('agent state file', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('missing: loads nothing; what is set survives a reopen, with no temporary file left', async () => {
    const d = join(dir, 'a');
    const first = StateFile.open(d, who);
    assert.equal(first.loaded, undefined);
    await first.file.setVoter({ modules: { db: { maxEpoch: 4 } } });
    first.file.setModule('db', { epoch: 4, dataEpoch: 3, applied: 7 });
    const again = StateFile.open(d, who);
    assert.deepEqual(again.loaded, { voter: { modules: { db: { maxEpoch: 4 } } }, modules: { db: { epoch: 4, dataEpoch: 3, applied: 7 } } });
    assert.deepEqual(readdirSync(d), ['state.json']);
  });

  it('a position written in the background never lands over a later write; an unchanged voter disk is not written again', async () => {
    const d = join(dir, 'bg');
    const { file } = StateFile.open(d, who);
    await file.setVoter({ modules: { db: { maxEpoch: 2 } } });
    const background = file.setModuleInBackground('db', { epoch: 2, dataEpoch: 2, applied: 10 });
    // A vote made durable while the background write is under way: it must not be lost to the older snapshot.
    await file.setVoter({ modules: { db: { maxEpoch: 3 } } });
    await background;
    assert.deepEqual(StateFile.open(d, who).loaded, { voter: { modules: { db: { maxEpoch: 3 } } }, modules: { db: { epoch: 2, dataEpoch: 2, applied: 10 } } });
    assert.deepEqual(readdirSync(d), ['state.json'], 'no temporary file left');
    const writes = file.writes;
    await file.setVoter({ modules: { db: { maxEpoch: 3 } } });
    assert.equal(file.writes, writes);
    await file.setModuleInBackground('db', { epoch: 2, dataEpoch: 2, applied: 11 });
    assert.deepEqual(StateFile.open(d, who).loaded?.modules, { db: { epoch: 2, dataEpoch: 2, applied: 11 } });
  });

  it('a vote resolves only once a write holding it is durable, also when a later write superseded it', async () => {
    const d = join(dir, 'votes');
    const { file } = StateFile.open(d, who);
    const first = file.setVoter({ modules: { db: { maxEpoch: 4 } } });
    const second = file.setVoter({ modules: { db: { maxEpoch: 5 } } });
    await first;
    // The first write was superseded (not renamed into place): it resolved with the second, which holds it.
    assert.deepEqual(StateFile.open(d, who).loaded?.voter, { modules: { db: { maxEpoch: 5 } } });
    await second;
    // A write on the event loop in between also holds every vote before it.
    const third = file.setVoter({ modules: { db: { maxEpoch: 6 } } });
    file.setModule('db', { epoch: 6, dataEpoch: 5, applied: 1 });
    await third;
    assert.deepEqual(StateFile.open(d, who).loaded, { voter: { modules: { db: { maxEpoch: 6 } } }, modules: { db: { epoch: 6, dataEpoch: 5, applied: 1 } } });
    assert.deepEqual(readdirSync(d), ['state.json'], 'no temporary file left');
  });

  it('durableVoter is what is on disk for certain: a vote still being written is not in it', async () => {
    const { file } = StateFile.open(join(dir, 'durable'), who);
    await file.setVoter({ modules: { db: { maxEpoch: 1 } } });
    assert.deepEqual(file.durableVoter, { modules: { db: { maxEpoch: 1 } } });
    const writing = file.setVoter({ modules: { db: { maxEpoch: 2 } } });
    assert.deepEqual(file.durableVoter, { modules: { db: { maxEpoch: 1 } } }, 'not yet');
    await writing;
    assert.deepEqual(file.durableVoter, { modules: { db: { maxEpoch: 2 } } });
  });

  it('an unchanged module position is not written again', () => {
    const { file } = StateFile.open(join(dir, 'b'), who);
    file.setModule('db', { epoch: 1, dataEpoch: 1, applied: 1 });
    file.setModule('db', { epoch: 1, dataEpoch: 1, applied: 1 });
    assert.equal(file.writes, 1);
  });

  it('refuses a damaged file, one of another format, and one of another member, leaving it untouched', () => {
    for (const [name, text, why] of [
      ['bad-json', '{"format":1,', /not valid JSON/],
      ['bad-format', '{"format":9,"member":"n1","cluster":"c","disk":{"modules":{}}}', /unknown format/],
      ['other-member', '{"format":1,"member":"n2","cluster":"c","disk":{"modules":{}}}', /belongs to member n2/],
    ] as const) {
      const d = join(dir, name);
      StateFile.open(d, who); // creates the directory
      writeFileSync(join(d, 'state.json'), text);
      assert.throws(() => StateFile.open(d, who), (e: Error & { code?: string }) => e.code === 'SKYHA_ERR_STATE' && why.test(e.message));
    }
  });
});

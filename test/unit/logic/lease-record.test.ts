/** Who may take over from a lease record without losing an acknowledged change (src/logic/lease/messages.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mayTakeOver, newHolderRecord, withInSync, type LeaseRecord } from '../../../src/logic/lease/messages.js';

const rec = (r: Partial<LeaseRecord> & Pick<LeaseRecord, 'holder' | 'epoch'>): LeaseRecord => ({ inSync: [], version: 1, ...r });

describe('lease record: who holds every acknowledged change', () => {
  const cases: Array<[string, LeaseRecord, string, number, boolean]> = [
    ['the holder, whose data continues the epoch', rec({ holder: 'a', epoch: 3, baseEpoch: 2, inSync: ['b'] }), 'a', 3, true],
    ['an in-sync secondary', rec({ holder: 'a', epoch: 3, baseEpoch: 2, inSync: ['b'] }), 'b', 3, true],
    ['an in-sync secondary that has not heard from the holder yet (base data)', rec({ holder: 'a', epoch: 3, baseEpoch: 2, inSync: ['b'] }), 'b', 2, true],
    ['an in-sync secondary that lost its disk', rec({ holder: 'a', epoch: 3, baseEpoch: 2, inSync: ['b'] }), 'b', 0, false],
    ['the holder after losing its disk', rec({ holder: 'a', epoch: 3, baseEpoch: 2, inSync: ['b'] }), 'a', 0, false],
    ['a lagging node with this epoch\'s data, once the record had an in-sync secondary', rec({ holder: 'a', epoch: 3, baseEpoch: 2, inSync: ['b'] }), 'c', 3, false],
    ['a node with this epoch\'s data when nobody was ever in sync', rec({ holder: 'a', epoch: 3, baseEpoch: 2 }), 'c', 3, true],
    ['the same, when the record was forced', rec({ holder: 'a', epoch: 3, baseEpoch: 2, forced: true }), 'c', 3, false],
    ['the last in-sync member once the set emptied', withInSync(rec({ holder: 'a', epoch: 3, baseEpoch: 2, inSync: ['b'] }), []), 'b', 3, true],
    ['a member removed earlier, before the set emptied', withInSync(withInSync(rec({ holder: 'a', epoch: 3, baseEpoch: 2, inSync: ['b', 'c'] }), ['b']), []), 'c', 3, false],
    ['anyone, in a history that began empty and never had an in-sync secondary', rec({ holder: 'a', epoch: 1, baseEpoch: 0 }), 'b', 0, true],
    ['nobody with empty data, once that history had an in-sync secondary', withInSync(rec({ holder: 'a', epoch: 1, baseEpoch: 0, inSync: ['b'] }), []), 'c', 0, false],
  ];
  for (const [what, record, node, dataEpoch, expected] of cases) {
    it(`${expected ? 'may' : 'may not'} take over: ${what}`, () => assert.equal(mayTakeOver(record, node, dataEpoch), expected));
  }

  it('a holder that never had an in-sync secondary keeps the record it replaced, and its eligible members', () => {
    const before = rec({ holder: 'a', epoch: 4, baseEpoch: 3, inSync: ['b'] });
    const after = newHolderRecord('b', 5, 4, [], before);
    assert.equal(after.previous?.epoch, 4);
    assert.equal(mayTakeOver(after, 'a', 4), true, 'a (old holder, data of epoch 4) still holds everything acknowledged');
    const synced = withInSync(after, ['a']);
    assert.equal(synced.previous, undefined, 'once an in-sync secondary exists, acknowledgements may follow');
    assert.equal(mayTakeOver(withInSync(synced, []), 'c', 4), false);
  });

  it('keeps at most four superseded records', () => {
    let r: LeaseRecord | undefined;
    for (let e = 1; e <= 10; e++) r = newHolderRecord(`n${e}`, e, e - 1, [], r);
    let depth = 0;
    for (let p = r!.previous; p; p = p.previous) depth++;
    assert.equal(depth, 4);
  });
});

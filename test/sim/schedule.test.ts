import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FaultEvent } from '../../src/sim/faults.js';
import { HARSH, formatSchedule, generateSchedule, type Schedule } from '../../src/sim/schedule.js';
import { clusterInfo, parseShape } from '../../src/sim/shape.js';

/** The most members crashed or frozen at once (a wiped member counts until `recoveryGap` after its restart). */
function maxDown(s: Schedule): number {
  const until = new Map<string, number>();
  let worst = 0;
  for (const f of s.events) {
    for (const [m, t] of until) if (t <= f.at) until.delete(m);
    if (f.type === 'crash' || f.type === 'freeze') until.set(f.member, Infinity);
    if (f.type === 'restart') until.set(f.member, f.disk === 'wiped' ? f.at + s.options.recoveryGap : f.at);
    if (f.type === 'thaw') until.delete(f.member);
    if (f.type === 'heal-all') until.clear();
    worst = Math.max(worst, until.size);
  }
  return worst;
}

describe('fault schedules', () => {
  const cluster = clusterInfo(parseShape('5v'));

  it('are a pure function of the seed', () => {
    assert.equal(formatSchedule(generateSchedule(5, cluster)), formatSchedule(generateSchedule(5, cluster)));
    assert.notEqual(formatSchedule(generateSchedule(5, cluster)), formatSchedule(generateSchedule(6, cluster)));
  });

  it('have a faulty period of many kinds of faults, then heal everything and stay quiet', () => {
    const kinds = new Set<string>();
    for (let seed = 0; seed < 100; seed++) {
      const s = generateSchedule(seed, cluster);
      assert.equal(s.healAt, 10_000);
      assert.equal(s.endAt, 14_000);
      const last = s.events[s.events.length - 1] as FaultEvent;
      assert.deepEqual(last, { at: 10_000, type: 'heal-all' });
      for (let i = 1; i < s.events.length; i++) assert.ok((s.events[i] as FaultEvent).at >= (s.events[i - 1] as FaultEvent).at, 'sorted');
      for (const f of s.events) {
        kinds.add(f.type === 'crash' ? `crash:${f.kind}` : f.type === 'freeze' ? `freeze:${f.scope}` : f.type === 'restart' ? `restart:${f.disk}` : f.type);
        if (f.type === 'restart' && f.disk === 'wiped') assert.ok(cluster.nodes.includes(f.member), 'only nodes are wiped (witnesses hold no data)');
      }
    }
    for (const k of ['clock', 'crash:node', 'crash:agent', 'restart:kept', 'restart:wiped', 'freeze:node', 'freeze:agent', 'thaw', 'partition', 'isolate', 'cut', 'heal', 'link', 'links-reset', 'heal-all']) {
      assert.ok(kinds.has(k), `no ${k} in 100 schedules`);
    }
  });

  it('lose at most one member at a time by default, more when harsh', () => {
    let harshWorst = 0;
    for (let seed = 0; seed < 300; seed++) {
      assert.ok(maxDown(generateSchedule(seed, cluster)) <= 1, `seed ${seed}`);
      harshWorst = Math.max(harshWorst, maxDown(generateSchedule(seed, cluster, HARSH)));
    }
    assert.ok(harshWorst >= 3, `harsh schedules reach ${harshWorst} members down at once`);
  });

  it('never wipe the disk of a lone node unless harsh', () => {
    const lone = clusterInfo(parseShape('1n'));
    for (let seed = 0; seed < 100; seed++) {
      assert.ok(!generateSchedule(seed, lone).events.some((f) => f.type === 'restart' && f.disk === 'wiped'));
    }
  });

  it('draw duplication and reordering only for datagram links', () => {
    for (let seed = 0; seed < 100; seed++) {
      for (const f of generateSchedule(seed, cluster, { linkModel: 'fifo' }).events) {
        if (f.type === 'link') assert.ok(f.params.duplicate === undefined && f.params.reorder === undefined);
      }
    }
  });

  it('read as one fault a line', () => {
    const text = formatSchedule(generateSchedule(1, clusterInfo(parseShape('2n+w'))));
    assert.match(text, /^ {6}0\.000 {2}clock n1 drift=-?\d+\.\dppm offset=\d+\.\d{3}ms$/m);
    assert.match(text, /^ {2}10000\.000 {2}heal everything \(quiet period starts\)$/m);
    assert.match(text, /^ {2}14000\.000 {2}end of run\n$/m);
  });

  it('parse cluster shapes', () => {
    assert.deepEqual(parseShape('2n+w'), { name: '2n+w', nodes: ['n1', 'n2'], witnesses: ['w1'] });
    assert.deepEqual(parseShape('5v'), { name: '5v', nodes: ['n1', 'n2', 'n3'], witnesses: ['w1', 'w2'] });
    assert.deepEqual(parseShape('3n'), { name: '3n', nodes: ['n1', 'n2', 'n3'], witnesses: [] });
    assert.deepEqual(parseShape('4n+2w').witnesses, ['w1', 'w2']);
    assert.throws(() => parseShape('three'), /unknown shape "three"/);
  });
});

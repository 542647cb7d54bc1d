/**
 * Each checker against hand-made histories: one that breaks the guarantee
 * (the checker must say so, readably) and one that keeps it. A checker that
 * cannot fail proves nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkAll, dataLossOutOfScope, leaseExclusive, liveness, noLostAckedWrite, noTwoPrimaries, primaryIntervals, quorumBeforePrimary } from '../../src/sim/checkers.js';
import type { Entry, HistoryEntry } from '../../src/sim/history.js';

const e = (at: number, member: string, entry: Entry): HistoryEntry => ({ ...entry, at, member }) as HistoryEntry;
const start = (at: number, member: string, epoch?: number): HistoryEntry => e(at, member, { type: 'app-start', module: 'db', role: 'primary', ...(epoch === undefined ? {} : { epoch }) });
const stop = (at: number, member: string, reason?: string): HistoryEntry => e(at, member, { type: 'app-stop', module: 'db', ...(reason ? { reason } : {}) });
const quorum = (at: number, member: string, granted: string[]): HistoryEntry => e(at, member, { type: 'quorum', module: 'db', granted });
const end = (at: number): HistoryEntry => e(at, '*', { type: 'end' });
const healed = (at: number): HistoryEntry => e(at, '*', { type: 'healed' });

describe('checker: noTwoPrimaries', () => {
  it('passes a clean handover', () => {
    const h = [start(10, 'n1', 1), stop(100, 'n1', 'lease expired'), start(100, 'n2', 2), end(200)];
    assert.deepEqual(noTwoPrimaries(h).violations, []);
  });

  it('catches an overlap and says who, when and for how long', () => {
    const h = [start(10, 'n1', 1), start(90, 'n2', 2), stop(100, 'n1', 'lease expired'), end(200)];
    const v = noTwoPrimaries(h).violations;
    assert.equal(v.length, 1);
    assert.equal(v[0]?.at, 90);
    assert.match(v[0]?.text ?? '', /module db: two primaries for 10\.000 ms, from 90\.000 to 100\.000: n1 epoch 1 \[10\.000 → 100\.000, app-stop: lease expired\] and n2 epoch 2 \[90\.000 → 200\.000, end of run\]/);
  });

  it('closes an interval when the whole node crashes, not when only the agent does', () => {
    const nodeLost = [start(10, 'n1'), e(50, 'n1', { type: 'crash', kind: 'node' }), start(60, 'n2'), end(200)];
    assert.deepEqual(noTwoPrimaries(nodeLost).violations, []);
    const agentLost = [start(10, 'n1'), e(50, 'n1', { type: 'crash', kind: 'agent' }), start(60, 'n2'), end(200)];
    assert.equal(noTwoPrimaries(agentLost).violations.length, 1, 'the application kept running without its agent');
  });

  it('does not count a paused node as running, but does count an agent-only pause', () => {
    const pausedNode = [start(10, 'n1'), e(50, 'n1', { type: 'freeze', scope: 'node' }), start(60, 'n2'), stop(70, 'n2'), e(80, 'n1', { type: 'thaw' }), stop(80, 'n1'), end(200)];
    assert.deepEqual(noTwoPrimaries(pausedNode).violations, []);
    const resumed = [start(10, 'n1'), e(50, 'n1', { type: 'freeze', scope: 'node' }), start(60, 'n2'), e(80, 'n1', { type: 'thaw' }), stop(90, 'n1'), end(200)];
    const v = noTwoPrimaries(resumed).violations;
    assert.equal(v.length, 1);
    assert.match(v[0]?.text ?? '', /from 80\.000 to 90\.000/);
    const pausedAgent = [start(10, 'n1'), e(50, 'n1', { type: 'freeze', scope: 'agent' }), start(60, 'n2'), end(200)];
    assert.equal(noTwoPrimaries(pausedAgent).violations.length, 1);
  });

  it('ignores role labels, and treats a restart in another role as the end of primacy', () => {
    const h = [start(10, 'n1'), e(20, 'n1', { type: 'role', module: 'db', role: 'secondary' }), start(30, 'n2'), end(100)];
    assert.equal(noTwoPrimaries(h).violations.length, 1);
    const demoted = [start(10, 'n1'), e(25, 'n1', { type: 'app-start', module: 'db', role: 'secondary' }), start(30, 'n2'), end(100)];
    assert.deepEqual(noTwoPrimaries(demoted).violations, []);
  });

  it('keeps modules apart and a member never conflicts with itself', () => {
    const other = e(20, 'n2', { type: 'app-start', module: 'web', role: 'primary' });
    assert.deepEqual(noTwoPrimaries([start(10, 'n1'), other, start(15, 'n1'), end(100)]).violations, []);
    assert.deepEqual(primaryIntervals([start(10, 'n1'), start(15, 'n1'), end(100)]).map((i) => [i.member, i.from, i.to, i.open]), [['n1', 10, 100, true]]);
  });
});

describe('checker: noLostAckedWrite', () => {
  const params = { nodes: ['n1', 'n2', 'n3'], modules: ['db'] };
  const acked = (at: number, by: string, writeId: string): HistoryEntry => e(at, by, { type: 'write-acked', module: 'db', writeId });
  const final = (at: number, member: string, writes: string[]): HistoryEntry => e(at, member, { type: 'final-data', module: 'db', writes });

  it('passes when the final primary holds every acknowledged write', () => {
    const h = [start(10, 'n1'), acked(20, 'n1', 'w1'), acked(30, 'n1', 'w2'), stop(40, 'n1'), start(50, 'n2'), final(100, 'n2', ['w1', 'w2', 'w3']), end(100)];
    assert.deepEqual(noLostAckedWrite(h, params), { checker: 'noLostAckedWrite', violations: [] });
  });

  it('catches a write acknowledged and then missing on the final primary', () => {
    const h = [start(10, 'n1'), acked(20, 'n1', 'w1'), acked(30, 'n1', 'w2'), stop(40, 'n1'), start(50, 'n2'), final(100, 'n2', ['w1']), end(100)];
    const v = noLostAckedWrite(h, params).violations;
    assert.equal(v.length, 1);
    assert.equal(v[0]?.text, 'module db: write w2, acknowledged by n1 at 30.000, is missing from n2, primary at the end (since 50.000)');
  });

  it('requires final data from the final primary', () => {
    const h = [start(10, 'n1'), acked(20, 'n1', 'w1'), end(100)];
    assert.match(noLostAckedWrite(h, params).violations[0]?.text ?? '', /n1 is primary at the end but reported no final-data/);
  });

  it('is out of scope when two nodes lost their data at once, or the only node did', () => {
    const wipe = (at: number, member: string): HistoryEntry[] => [e(at, member, { type: 'crash', kind: 'node' }), e(at + 10, member, { type: 'boot', incarnation: 2, disk: 'wiped' })];
    const h = [start(1, 'n3'), acked(2, 'n3', 'w1'), ...wipe(10, 'n1'), ...wipe(30, 'n2'), stop(50, 'n3'), start(60, 'n1'), final(100, 'n1', []), end(100)];
    const r = noLostAckedWrite(h, params);
    assert.deepEqual(r.violations, []);
    assert.match(r.skipped ?? '', /two nodes' data lost at once \(n1 10\.000–100\.000, n2 30\.000–100\.000\)/);
    // Once n1 reports it resynced, the losses no longer overlap: in scope again, and the loss is caught.
    const resynced = [...h.slice(0, 4), e(25, 'n1', { type: 'in-sync', module: 'db' }), ...h.slice(4)];
    const v = noLostAckedWrite(resynced, params).violations;
    assert.equal(v.length, 1);
    assert.match(v[0]?.text ?? '', /write w1/);
    assert.match(dataLossOutOfScope(wipe(10, 'n1'), ['n1'], 'db') ?? '', /the only node's data was lost/);
    // A witness losing its disk is no data loss.
    assert.equal(dataLossOutOfScope([...wipe(10, 'w1'), ...wipe(10, 'n1')], ['n1', 'n2'], 'db'), undefined);
  });
});

describe('checker: quorumBeforePrimary', () => {
  const params = { voters: ['n1', 'n2', 'w1'], lease: 400 };

  it('passes a start justified by a fresh majority', () => {
    const h = [quorum(100, 'n1', ['n1', 'w1']), start(100, 'n1'), quorum(300, 'n1', ['n1', 'n2', 'w1']), stop(600, 'n1'), start(650, 'n1')];
    assert.deepEqual(quorumBeforePrimary(h, params).violations, []);
  });

  it('catches a start without a majority, with a stale one, or with one from before a restart', () => {
    const minority = quorumBeforePrimary([quorum(100, 'n1', ['n1', 'x9']), start(100, 'n1', 3)], params).violations;
    assert.equal(minority[0]?.text, 'module db: n1 started as primary at 100.000 (epoch 3) but its latest quorum (100.000) was granted by [n1, x9]: 1 of 3 voters, a majority is 2');
    const stale = quorumBeforePrimary([quorum(100, 'n1', ['n1', 'n2']), start(600, 'n1')], params).violations;
    assert.match(stale[0]?.text ?? '', /is 500\.000 ms old, more than the 400 ms lease/);
    const beforeRestart = [quorum(100, 'n1', ['n1', 'n2']), e(110, 'n1', { type: 'crash', kind: 'agent' }), e(120, 'n1', { type: 'boot', incarnation: 2, disk: 'kept' }), start(130, 'n1')];
    assert.match(quorumBeforePrimary(beforeRestart, params).violations[0]?.text ?? '', /no quorum observed since its last boot/);
    const someoneElses = quorumBeforePrimary([quorum(100, 'n2', ['n1', 'n2']), start(100, 'n1')], params).violations;
    assert.equal(someoneElses.length, 1);
  });
});

describe('checker: liveness', () => {
  const params = { modules: ['db'], livenessBudget: 1000 };

  it('passes when a primary runs within the budget after healing and keeps running', () => {
    const h = [start(10, 'n1'), stop(500, 'n1'), healed(1000), start(1500, 'n2'), end(5000)];
    assert.deepEqual(liveness(h, params), { checker: 'liveness', violations: [] });
  });

  it('catches no primary within the budget', () => {
    const late = liveness([healed(1000), start(2500, 'n2'), end(5000)], params).violations;
    assert.equal(late[0]?.text, 'module db: no primary within 1000 ms after every fault was healed at 1000.000 (the first started at 2500.000, 1500.000 ms after healing)');
    const never = liveness([start(10, 'n1'), stop(900, 'n1'), healed(1000), end(5000)], params).violations;
    assert.match(never[0]?.text ?? '', /\(none until the end of the run\)/);
  });

  it('catches a gap after the budget, and allows one before it', () => {
    const gap = liveness([healed(1000), start(1100, 'n1'), stop(3000, 'n1'), start(3200, 'n2'), end(5000)], params).violations;
    assert.match(gap[0]?.text ?? '', /no primary from 3000\.000 to 3200\.000 \(200\.000 ms, longer than a planned move's 0 ms\)/);
    // A planned move (switchover, failback) may leave a short gap, as long as the model declares it.
    assert.deepEqual(liveness([healed(1000), start(1100, 'n1'), stop(3000, 'n1'), start(3200, 'n2'), end(5000)], { ...params, plannedGap: 200 }).violations, []);
    assert.equal(liveness([healed(1000), start(1100, 'n1'), stop(3000, 'n1'), start(3201, 'n2'), end(5000)], { ...params, plannedGap: 200 }).violations.length, 1);
    assert.deepEqual(liveness([healed(1000), start(1100, 'n1'), stop(3000, 'n1'), start(3200, 'n2'), end(5000)], { ...params, stable: false }).violations, []);
    assert.deepEqual(liveness([start(10, 'n1'), healed(1000), stop(1200, 'n1'), start(1800, 'n2'), end(5000)], params).violations, []);
    assert.match(liveness([healed(1000), start(1100, 'n1'), stop(4000, 'n1'), end(5000)], params).violations[0]?.text ?? '', /to the end of the run at 5000\.000/);
  });

  it('is out of scope when, after a wiped disk, a majority of voters cannot know the record', () => {
    const wiped = { type: 'boot', incarnation: 2, disk: 'wiped', at: 500, member: 'n1' } as HistoryEntry;
    const knows = (member: string, at: number, k: boolean) => ({ type: 'voter-knows', module: 'db', knows: k, at, member }) as HistoryEntry;
    const h = [knows('n1', 0, true), knows('n2', 0, true), knows('n3', 0, true), wiped, knows('n1', 500, false), knows('n2', 600, false), healed(1000), end(5000)];
    const withVoters = { ...params, voters: ['n1', 'n2', 'n3'] };
    assert.match(liveness(h, withVoters).skipped ?? '', /only 1 of 3 voters know the record of db/);
    assert.deepEqual(liveness(h, withVoters).violations, []);
    // Without a wiped disk, knowledge can only be late: liveness stays in scope.
    const noWipe = h.filter((e) => e !== wiped);
    assert.equal(liveness(noWipe, withVoters).violations.length, 1);
  });

  it('says when it cannot judge', () => {
    assert.match(liveness([start(10, 'n1'), end(100)], params).skipped ?? '', /no healing point/);
    assert.match(liveness([healed(1000), end(1500)], params).skipped ?? '', /before the 1000 ms budget ran out/);
  });
});

describe('checker: leaseExclusive', () => {
  const held = (at: number, member: string, until: number): HistoryEntry => e(at, member, { type: 'lease-held', module: 'db', until });

  it('passes leases that follow each other and renewals by the same holder', () => {
    const h = [held(0, 'n1', 400), held(100, 'n1', 500), held(500, 'n2', 900)];
    assert.deepEqual(leaseExclusive(h).violations, []);
  });

  it('catches two members believing they hold the lease at once; a crash ends a belief', () => {
    const v = leaseExclusive([held(0, 'n1', 400), held(100, 'n1', 500), held(450, 'n2', 900)]).violations;
    assert.equal(v[0]?.text, 'module db: n1 believed it held the lease from 0.000 to 500.000 while n2 believed it held it from 450.000 to 900.000 (overlap 50.000 ms)');
    assert.deepEqual(leaseExclusive([held(0, 'n1', 400), e(200, 'n1', { type: 'crash', kind: 'agent' }), held(300, 'n2', 900)]).violations, []);
    assert.deepEqual(leaseExclusive([held(0, 'n1', 400), e(250, 'n1', { type: 'lease-released', module: 'db' }), held(300, 'n2', 900)]).violations, []);
    assert.equal(leaseExclusive([held(0, 'n1', 400), e(250, 'n1', { type: 'lease-released', module: 'web' }), held(300, 'n2', 900)]).violations.length, 1);
  });
});

describe('checkAll', () => {
  it('runs the named checkers and limits the listed violations', () => {
    const h: HistoryEntry[] = [];
    for (let i = 0; i < 20; i++) h.push(start(i * 10, 'n1'), start(i * 10 + 1, 'n2'), stop(i * 10 + 5, 'n1'), stop(i * 10 + 5, 'n2'));
    h.push(end(1000));
    const [r] = checkAll(h, { voters: ['n1', 'n2', 'n3'], nodes: ['n1', 'n2', 'n3'], modules: ['db'], lease: 400, livenessBudget: 100, maxReported: 3 }, ['noTwoPrimaries']);
    assert.equal(r?.violations.length, 4);
    assert.equal(r?.violations[3]?.text, '… and 17 more like these');
  });
});

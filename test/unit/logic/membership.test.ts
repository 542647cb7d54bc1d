import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PROFILES } from '../../../src/config/profiles.js';
import {
  MEMBERSHIP_REASONS as R,
  aliveMembers,
  confirmersOf,
  initMembership,
  statusOf,
  stepMembership,
  suspicionTimeout,
  type MemberStatus,
  type MembershipAction,
  type MembershipConfig,
  type MembershipEvent,
  type MembershipState,
  type ViewEntry,
} from '../../../src/logic/membership.js';

// lan: heartbeat 100ms, suspect after 300ms, dead after 600ms.
const { heartbeatInterval, suspectAfter, deadAfter } = PROFILES.lan;
const CONFIG: MembershipConfig = { self: 'aws-1', peers: ['aws-2', 'azure-1', 'witness-1'], heartbeatInterval, suspectAfter, deadAfter };

type Timed = [now: number, event: MembershipEvent];

const tick: MembershipEvent = { type: 'tick' };
function hb(from: string, incarnation: number, view: ViewEntry[] = []): MembershipEvent {
  return { type: 'heartbeat', from, incarnation, view };
}
function entry(member: string, status: MemberStatus, incarnation = 0): ViewEntry {
  return { member, status, incarnation };
}

/** [member, from, to, code] of every member-changed action. */
function changes(actions: readonly MembershipAction[]): [string, MemberStatus, MemberStatus, string][] {
  return actions.flatMap((a) => (a.type === 'member-changed' ? [[a.member, a.from, a.to, a.reason.code] as [string, MemberStatus, MemberStatus, string]] : []));
}

/** Feeds the events in order and returns the state and every action with the time it was emitted. */
function feed(state: MembershipState, events: readonly Timed[]): { state: MembershipState; log: [number, MembershipAction][] } {
  const log: [number, MembershipAction][] = [];
  for (const [now, event] of events) {
    const r = stepMembership(state, event, now);
    state = r.state;
    for (const a of r.actions) log.push([now, a]);
  }
  return { state, log };
}

/**
 * A driver in miniature: a tick at `start` (the time of the state's last step),
 * then the scripted events and a tick whenever the last `wake` action's time
 * comes, until `until`. At equal times the scripted event goes first.
 */
function drive(state: MembershipState, script: readonly Timed[], until: number, start = 0): { state: MembershipState; log: [number, MembershipAction][] } {
  const log: [number, MembershipAction][] = [];
  const queue = [...script];
  let wake = start;
  for (;;) {
    const scripted = queue[0]?.[0] ?? Infinity;
    if (Math.min(scripted, wake) > until) break;
    const [now, event] = scripted <= wake ? queue.shift()! : [wake, tick];
    const r = stepMembership(state, event, now);
    state = r.state;
    for (const a of r.actions) {
      log.push([now, a]);
      if (a.type === 'wake') wake = a.at;
    }
  }
  return { state, log };
}

/** Every `heartbeatInterval` from `from` to `to` (inclusive), a heartbeat from each of `members` with the view `view(t)`. */
function beats(members: readonly string[], from: number, to: number, view: (t: number) => ViewEntry[] = () => []): Timed[] {
  const out: Timed[] = [];
  for (let t = from; t <= to; t += heartbeatInterval) for (const m of members) out.push([t, hb(m, 0, view(t))]);
  return out;
}

function deadAt(log: readonly [number, MembershipAction][], member: string): number | undefined {
  return log.find(([, a]) => a.type === 'member-changed' && a.member === member && a.to === 'dead')?.[0];
}

/** All three peers alive at incarnation 0, heard at t = 0. */
function allAlive(): MembershipState {
  const s = initMembership(CONFIG, 0);
  return feed(s, [[0, tick], [0, hb('aws-2', 0)], [0, hb('azure-1', 0)], [0, hb('witness-1', 0)]]).state;
}

describe('membership: heartbeats and timers', () => {
  it('starts with every peer unknown, broadcasts a heartbeat on the first tick and asks to be woken for the next one', () => {
    const s0 = initMembership(CONFIG, 1000);
    assert.deepEqual(['aws-2', 'azure-1', 'witness-1'].map((m) => statusOf(s0, m)), ['unknown', 'unknown', 'unknown']);
    const { actions } = stepMembership(s0, tick, 1000);
    assert.deepEqual(actions, [
      {
        type: 'broadcast-heartbeat',
        heartbeat: { from: 'aws-1', incarnation: 0, view: [entry('aws-2', 'unknown'), entry('azure-1', 'unknown'), entry('witness-1', 'unknown')] },
      },
      { type: 'wake', at: 1100 },
    ]);
  });

  it('keeps the heartbeat cadence and ends every step with exactly one wake', () => {
    const { log } = drive(initMembership(CONFIG, 0), beats(['aws-2', 'azure-1', 'witness-1'], 0, 1000), 1000);
    const sent = log.filter(([, a]) => a.type === 'broadcast-heartbeat').map(([t]) => t);
    assert.deepEqual(sent, [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
    assert.deepEqual(changes(log.map(([, a]) => a)), [
      ['aws-2', 'unknown', 'alive', R.MEMBER_ALIVE],
      ['azure-1', 'unknown', 'alive', R.MEMBER_ALIVE],
      ['witness-1', 'unknown', 'alive', R.MEMBER_ALIVE],
    ]);
  });

  it('marks a silent peer suspect at exactly suspectAfter and dead at deadAfter when nobody confirms', () => {
    const s = allAlive();
    const { log } = drive(s, beats(['aws-2', 'witness-1'], 100, 700, () => [entry('azure-1', 'alive')]), 700);
    const azure = log.filter(([, a]) => a.type === 'member-changed' && a.member === 'azure-1');
    assert.deepEqual(
      azure.map(([t, a]) => [t, a.type === 'member-changed' && a.to, a.type === 'member-changed' && a.reason.code]),
      [
        [300, 'suspect', R.MEMBER_SUSPECT],
        [600, 'dead', R.MEMBER_DEAD],
      ],
    );
    const dead = azure[1]![1];
    assert.equal(dead.type === 'member-changed' && dead.reason.text, 'marked azure-1 dead: no heartbeat for 600ms and no other member confirmed (timeout 600ms)');
    const suspect = azure[0]![1];
    assert.equal(suspect.type === 'member-changed' && suspect.reason.text, 'marked azure-1 suspect: no heartbeat for 300ms');
  });

  it('a wake at a deadline whose sum rounds up acts on it (found by the simulator: it asked for the same wake for ever)', () => {
    // 1000.004 + 300 is 1300.004 in floating point, but 1300.004 - 1000.004 is 299.9999999999999.
    const heard = 1000.004;
    const s = feed(allAlive(), [[heard, hb('azure-1', 0)], [heard, hb('aws-2', 0)], [heard, hb('witness-1', 0)]]).state;
    const wake = (actions: readonly MembershipAction[]) => actions.find((x) => x.type === 'wake');
    const due = heard + suspectAfter;
    const at = stepMembership(s, tick, due);
    assert.deepEqual(changes(at.actions).map(([m, , to]) => [m, to]), [['aws-2', 'suspect'], ['azure-1', 'suspect'], ['witness-1', 'suspect']]);
    const next = wake(at.actions);
    assert.ok(next?.type === 'wake' && next.at > due, 'the next wake is later, not the same instant again');
  });

  it('does nothing one millisecond early', () => {
    const s = allAlive();
    assert.deepEqual(changes(stepMembership(s, tick, suspectAfter - 1).actions), []);
  });

  it('marks a peer never heard from dead after deadAfter since start, without passing through suspect', () => {
    const s = feed(initMembership(CONFIG, 0), [[0, tick], [0, hb('aws-2', 0)], [0, hb('witness-1', 0)]]).state;
    const { log } = drive(s, beats(['aws-2', 'witness-1'], 100, 700), 700);
    const azure = log.filter(([, a]) => a.type === 'member-changed' && a.member === 'azure-1');
    assert.equal(azure.length, 1);
    const [t, a] = azure[0]!;
    assert.equal(t, 600);
    assert.equal(a.type === 'member-changed' && `${a.from}->${a.to} ${a.reason.text}`, 'unknown->dead marked azure-1 dead: no heartbeat since we started 600ms ago');
  });

  it('reports several changes of one step in member order', () => {
    const s = allAlive();
    const { actions } = stepMembership(s, tick, 300);
    assert.deepEqual(changes(actions), [
      ['aws-2', 'alive', 'suspect', R.MEMBER_SUSPECT],
      ['azure-1', 'alive', 'suspect', R.MEMBER_SUSPECT],
      ['witness-1', 'alive', 'suspect', R.MEMBER_SUSPECT],
    ]);
    assert.deepEqual(actions.map((a) => a.type), ['member-changed', 'member-changed', 'member-changed', 'broadcast-heartbeat', 'wake']);
  });

  it('a link going down makes an alive peer suspect at once, but death still waits for the silence', () => {
    const s = allAlive();
    const down = stepMembership(s, { type: 'link-down', peer: 'azure-1' }, 50);
    assert.deepEqual(changes(down.actions), [['azure-1', 'alive', 'suspect', R.MEMBER_SUSPECT]]);
    assert.match((down.actions[0] as { reason: { text: string } }).reason.text, /its link went down, last heartbeat 50ms ago/);
    const { log } = drive(down.state, beats(['aws-2', 'witness-1'], 100, 700), 700, 50);
    assert.equal(deadAt(log, 'azure-1'), deadAfter);
  });
});

describe('membership: suspicion shortened by confirmations (Lifeguard)', () => {
  it('computes the timeout as max(min, max − (max − min)·log(k+1)/log(K+1))', () => {
    const table: [k: number, K: number, expected: number][] = [
      [0, 2, 600],
      [1, 2, Math.floor(600 - 300 * (Math.log(2) / Math.log(3)))], // 410
      [2, 2, 300],
      [5, 2, 300], // more confirmations than possible confirmers: clamped
      [1, 4, Math.floor(600 - 300 * (Math.log(2) / Math.log(5)))], // 470
      [0, 0, 600], // two members: nobody can confirm
      [1, 1, 300],
    ];
    for (const [k, K, expected] of table) assert.equal(suspicionTimeout({ suspectAfter, deadAfter }, k, K), expected, `k=${k} K=${K}`);
    assert.equal(suspicionTimeout({ suspectAfter, deadAfter }, 1, 2), 410);
  });

  // aws-2 and witness-1 keep talking; from t = 300 the ones listed also say azure-1 is suspect.
  const cases: [confirmers: string[], deadAt: number][] = [
    [[], 600],
    [['aws-2'], 410],
    [['aws-2', 'witness-1'], 300],
  ];
  for (const [confirmers, expected] of cases) {
    it(`marks azure-1 dead after ${expected}ms of silence with ${confirmers.length} of 2 confirmations`, () => {
      const s = allAlive();
      const script: Timed[] = [];
      for (let t = 100; t <= 700; t += heartbeatInterval) {
        for (const m of ['aws-2', 'witness-1']) script.push([t, hb(m, 0, [entry('azure-1', t >= 300 && confirmers.includes(m) ? 'suspect' : 'alive')])]);
      }
      const { log } = drive(s, script, 700);
      assert.equal(deadAt(log, 'azure-1'), expected);
      const dead = log.find(([, a]) => a.type === 'member-changed' && a.to === 'dead')![1];
      if (confirmers.length > 0) {
        assert.equal(
          dead.type === 'member-changed' && dead.reason.text,
          `marked azure-1 dead: no heartbeat for ${expected}ms and confirmed by ${confirmers.join(', ')} (${confirmers.length} of 2; timeout ${expected}ms)`,
        );
      }
    });
  }

  it('counts a dead member as a confirmation too, but not a confirmer that is itself dead', () => {
    let s = allAlive();
    s = feed(s, [[250, hb('aws-2', 0, [entry('azure-1', 'dead')])]]).state;
    assert.deepEqual(confirmersOf(s, 'azure-1'), ['aws-2']);
    // witness-1 says the same and then goes silent: its word stops counting once it is dead to us.
    s = feed(s, [[250, hb('witness-1', 0, [entry('azure-1', 'suspect')])]]).state;
    assert.deepEqual(confirmersOf(s, 'azure-1'), ['aws-2', 'witness-1']);
    s = { ...s, peers: { ...s.peers, 'witness-1': { ...s.peers['witness-1']!, status: 'dead' } } };
    assert.deepEqual(confirmersOf(s, 'azure-1'), ['aws-2']);
  });

  it('withdraws a confirmation when the confirmer later sees the suspect alive, or leaves it out of its view', () => {
    let s = allAlive();
    s = feed(s, [[100, hb('aws-2', 0, [entry('azure-1', 'suspect')])]]).state;
    assert.deepEqual(confirmersOf(s, 'azure-1'), ['aws-2']);
    s = feed(s, [[200, hb('aws-2', 0, [entry('azure-1', 'alive')])]]).state;
    assert.deepEqual(confirmersOf(s, 'azure-1'), []);
    s = feed(s, [[250, hb('aws-2', 0, [entry('azure-1', 'suspect')])], [260, hb('aws-2', 0, [])]]).state;
    assert.deepEqual(confirmersOf(s, 'azure-1'), []);
  });

  it('waits the full deadAfter in a two-member cluster (nobody can confirm)', () => {
    const s0 = initMembership({ ...CONFIG, peers: ['azure-1'] }, 0);
    const s = feed(s0, [[0, tick], [0, hb('azure-1', 0)]]).state;
    const { log } = drive(s, [], 700);
    assert.equal(deadAt(log, 'azure-1'), 600);
  });
});

describe('membership: incarnations', () => {
  it('refutes a rumour about itself by raising its incarnation and heartbeating at once', () => {
    const s = allAlive();
    const r = stepMembership(s, hb('aws-2', 0, [entry('aws-1', 'suspect', 0), entry('azure-1', 'alive')]), 40);
    assert.deepEqual(r.actions, [
      {
        type: 'incarnation-changed',
        from: 0,
        to: 1,
        reason: { code: R.SELF_REFUTED, text: 'refuted the rumour that aws-1 is suspect: aws-2 holds it suspect at incarnation 0, raised ours to 1' },
      },
      {
        type: 'broadcast-heartbeat',
        heartbeat: { from: 'aws-1', incarnation: 1, view: [entry('aws-2', 'alive'), entry('azure-1', 'alive'), entry('witness-1', 'alive')] },
      },
      { type: 'wake', at: 140 },
    ]);
    // The same rumour about the old incarnation, still in flight, changes nothing.
    const again = stepMembership(r.state, hb('witness-1', 0, [entry('aws-1', 'dead', 0)]), 45);
    assert.equal(again.state.incarnation, 1);
    assert.deepEqual(again.actions.map((a) => a.type), ['wake']);
  });

  it('refutes "dead" at a higher incarnation than its own (after a restart) by going above it', () => {
    const r = stepMembership(allAlive(), hb('aws-2', 0, [entry('aws-1', 'dead', 4)]), 10);
    assert.equal(r.state.incarnation, 5);
    assert.equal(r.actions[0]?.type === 'incarnation-changed' && r.actions[0].reason.code, R.SELF_REFUTED);
  });

  it('catches up when a peer knows it alive at a higher incarnation (it would ignore our heartbeats)', () => {
    const r = stepMembership(allAlive(), hb('aws-2', 0, [entry('aws-1', 'alive', 7)]), 10);
    assert.equal(r.state.incarnation, 8);
    assert.equal(r.actions[0]?.type === 'incarnation-changed' && r.actions[0].reason.code, R.SELF_CAUGHT_UP);
    assert.equal(r.actions[1]?.type === 'broadcast-heartbeat' && r.actions[1].heartbeat.incarnation, 8);
  });

  it('a falsely suspected peer that refutes with a higher incarnation is alive again and old rumours stop counting', () => {
    let s = allAlive();
    // azure-1 is slow; aws-2 suspects it too.
    s = feed(s, [[200, hb('aws-2', 0, [entry('azure-1', 'suspect', 0)])], [300, tick]]).state;
    assert.equal(statusOf(s, 'azure-1'), 'suspect');
    assert.deepEqual(confirmersOf(s, 'azure-1'), ['aws-2']);
    // azure-1 read aws-2's rumour and refuted it with incarnation 1.
    const r = stepMembership(s, hb('azure-1', 1, [entry('aws-1', 'alive')]), 350);
    assert.deepEqual(changes(r.actions), [['azure-1', 'suspect', 'alive', R.MEMBER_REFUTED]]);
    const refuted = r.actions.find((a) => a.type === 'member-changed');
    assert.equal(
      refuted?.type === 'member-changed' && refuted.reason.text,
      'marked azure-1 alive: it refuted the suspicion with incarnation 1 (was 0) after 350ms of silence',
    );
    assert.deepEqual(r.state.peers['azure-1']!.suspectedBy, {}, 'the rumour was about incarnation 0');
    // aws-2 repeats its rumour about incarnation 0: it no longer counts.
    const s2 = feed(r.state, [[360, hb('aws-2', 0, [entry('azure-1', 'suspect', 0)])]]).state;
    assert.deepEqual(confirmersOf(s2, 'azure-1'), []);
  });

  it('a suspect heard again at the same incarnation is alive again', () => {
    const s = feed(allAlive(), [[300, tick]]).state;
    const r = stepMembership(s, hb('azure-1', 0), 420);
    assert.deepEqual(changes(r.actions), [['azure-1', 'suspect', 'alive', R.MEMBER_ALIVE]]);
  });

  it('ignores a heartbeat from the past (a lower incarnation), its view included', () => {
    let s = allAlive();
    s = feed(s, [[50, hb('azure-1', 2)]]).state;
    const stale = stepMembership(s, hb('azure-1', 1, [entry('aws-2', 'dead', 0), entry('aws-1', 'suspect', 0)]), 200);
    assert.deepEqual(stale.state.peers, s.peers, 'no peer record changed');
    assert.equal(stale.state.incarnation, 0, 'no refutation');
    assert.deepEqual(stale.actions.map((a) => a.type), ['broadcast-heartbeat', 'wake']);
    // Silence still counts from t = 50, the last heartbeat at incarnation 2.
    const { log } = drive(stale.state, beats(['aws-2', 'witness-1'], 200, 700), 700, 200);
    assert.equal(log.find(([, a]) => a.type === 'member-changed' && a.member === 'azure-1')?.[0], 350);
    assert.equal(deadAt(log, 'azure-1'), 650);
  });

  it('a dead peer that speaks again returns, but not with a heartbeat from the past', () => {
    let s = feed(allAlive(), [[50, hb('azure-1', 2)]]).state;
    s = drive(s, beats(['aws-2', 'witness-1'], 100, 900), 900, 50).state;
    assert.equal(statusOf(s, 'azure-1'), 'dead');
    const stale = stepMembership(s, hb('azure-1', 1), 1000);
    assert.equal(statusOf(stale.state, 'azure-1'), 'dead');
    assert.deepEqual(changes(stale.actions), []);
    const r = stepMembership(stale.state, hb('azure-1', 2), 2050);
    assert.deepEqual(changes(r.actions).filter(([m]) => m === 'azure-1'), [['azure-1', 'dead', 'alive', R.MEMBER_RETURNED]]);
    const back = r.actions.find((a) => a.type === 'member-changed' && a.member === 'azure-1');
    assert.equal(back?.type === 'member-changed' && back.reason.text, 'marked azure-1 alive: it returned after 2s of silence (incarnation 2)');
  });

  it('ignores heartbeats from strangers and from itself', () => {
    const s = allAlive();
    for (const from of ['stranger', 'aws-1']) {
      const r = stepMembership(s, hb(from, 9, [entry('aws-1', 'dead', 9)]), 10);
      assert.deepEqual(r.state, s, from);
    }
  });
});

describe('membership: queries', () => {
  it('aliveMembers lists self and the alive peers in order; statusOf answers for self, peers and strangers', () => {
    const s = feed(allAlive(), [[300, hb('aws-2', 0)], [300, hb('witness-1', 0)], [300, tick]]).state;
    assert.deepEqual(aliveMembers(s), ['aws-1', 'aws-2', 'witness-1']);
    assert.equal(statusOf(s, 'aws-1'), 'alive');
    assert.equal(statusOf(s, 'azure-1'), 'suspect');
    assert.equal(statusOf(s, 'nobody'), undefined);
  });
});

describe('membership: property', () => {
  const peers = CONFIG.peers;
  const anyName = fc.constantFrom('aws-1', 'aws-2', 'azure-1', 'witness-1', 'stranger');
  // Biased towards incarnation 0 and rumours of suspicion, so confirmations often shorten timeouts.
  const status = fc.oneof({ weight: 3, arbitrary: fc.constantFrom<MemberStatus>('suspect', 'dead') }, { weight: 1, arbitrary: fc.constantFrom<MemberStatus>('unknown', 'alive') });
  const incarnation = fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(3) });
  const event: fc.Arbitrary<MembershipEvent> = fc.oneof(
    fc.constant<MembershipEvent>({ type: 'tick' }),
    fc.record({
      type: fc.constant('heartbeat' as const),
      from: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...peers) }, { weight: 1, arbitrary: anyName }),
      incarnation,
      view: fc.array(fc.record({ member: anyName, status, incarnation }), { maxLength: 5 }),
    }),
    // A link going down makes a peer suspect early: the one way a suspicion can start before suspectAfter.
    fc.record({ type: fc.constant('link-down' as const), peer: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...peers) }, { weight: 1, arbitrary: anyName }) }),
  );
  const schedule = fc.array(fc.tuple(fc.nat(200), event), { maxLength: 120 });

  it('never throws, stays JSON data, and never marks a member dead before suspectAfter of silence', () => {
    fc.assert(
      fc.property(schedule, (steps) => {
        let state = initMembership(CONFIG, 0);
        let now = 0;
        // The oracle: when each peer was last heard at an incarnation not below the highest heard.
        const heard: Record<string, { at: number; inc: number }> = Object.fromEntries(peers.map((p) => [p, { at: 0, inc: 0 }]));
        for (const [dt, ev] of steps) {
          now += dt;
          const before = state;
          if (ev.type === 'heartbeat' && ev.from in heard && heard[ev.from]!.inc <= ev.incarnation) heard[ev.from] = { at: now, inc: ev.incarnation };
          const r = stepMembership(state, ev, now);
          state = r.state;
          assert.deepEqual(JSON.parse(JSON.stringify(state)), state);
          const last = r.actions.at(-1);
          assert.ok(last?.type === 'wake' && last.at > now, 'ends with a wake in the future');
          assert.equal(r.actions.filter((a) => a.type === 'wake').length, 1);
          assert.ok(state.incarnation >= before.incarnation);
          const seen: Record<string, MemberStatus> = Object.fromEntries(peers.map((p) => [p, before.peers[p]!.status]));
          for (const a of r.actions) {
            if (a.type !== 'member-changed' && a.type !== 'incarnation-changed') continue;
            assert.ok(Object.values(R).includes(a.reason.code as never), a.reason.code);
            if (a.type !== 'member-changed') continue;
            assert.equal(a.from, seen[a.member], 'changes chain from the previous status');
            seen[a.member] = a.to;
            if (a.to === 'dead') {
              const silence = now - heard[a.member]!.at;
              assert.ok(silence >= suspectAfter, `${a.member} dead after ${silence}ms of silence`);
              if (silence < deadAfter) assert.match(a.reason.text, /confirmed by/);
            }
          }
          for (const p of peers) {
            assert.equal(state.peers[p]!.status, seen[p]);
            assert.ok(state.peers[p]!.incarnation >= before.peers[p]!.incarnation);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});

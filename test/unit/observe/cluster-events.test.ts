/**
 * The cluster's event timeline on every member: relayed live, deduplicated,
 * and completed after gaps (a link that was down, events from before the
 * link came up, a peer that lost its event file), with two relays wired to
 * each other through an in-test channel that can go down.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventRelay, type EventRelayMessage } from '../../../src/agent/event-relay.js';
import { ClusterEvents } from '../../../src/observe/cluster-events.js';
import { EventRing } from '../../../src/observe/events.js';
import { createLogger } from '../../../src/observe/log.js';

const log = createLogger({ level: 'silent', format: 'json' });

function pair() {
  let linkUp = true;
  const inbox: Array<() => void> = [];
  const ringA = new EventRing('a', log);
  const ringB = new EventRing('b', log);
  const allA = new ClusterEvents();
  const allB = new ClusterEvents();
  const relays: Record<string, EventRelay> = {};
  const send = (to: 'a' | 'b', from: 'a' | 'b') => (_peer: string, m: EventRelayMessage) => {
    if (!linkUp) return false;
    // Delivered later, in order, as a link would.
    inbox.push(() => relays[to]!.onMessage(from, JSON.parse(JSON.stringify(m)) as EventRelayMessage));
    return true;
  };
  relays.a = new EventRelay(ringA, allA, ['b'], send('b', 'a'));
  relays.b = new EventRelay(ringB, allB, ['a'], send('a', 'b'));
  const deliver = () => {
    for (let i = 0; i < 10 && inbox.length; i++) while (inbox.length) inbox.shift()!();
  };
  return { ringA, allB, relayA: relays.a, deliver, setLink: (up: boolean) => (linkUp = up) };
}

const reasons = (all: ClusterEvents, member: string) => all.since(0).filter((e) => e.member === member).map((e) => e.reason);

test('live events reach the peer once each, with local ids in order of arrival', () => {
  const p = pair();
  p.ringA.emit({ reason: 'ONE', text: '1' });
  p.ringA.emit({ reason: 'TWO', text: '2' });
  p.deliver();
  assert.deepEqual(reasons(p.allB, 'a'), ['ONE', 'TWO']);
  assert.deepEqual(p.allB.since(0).map((e) => e.id), [1, 2]);
  p.relayA.onMessage('b', { type: 'events-since', seq: 0 });
  p.deliver();
  assert.deepEqual(reasons(p.allB, 'a'), ['ONE', 'TWO'], 'a catch-up of known events adds nothing');
});

test('events emitted while the link was down are filled in at the next live event', () => {
  const p = pair();
  p.ringA.emit({ reason: 'BEFORE', text: '' });
  p.deliver();
  p.setLink(false);
  p.ringA.emit({ reason: 'MISSED_1', text: '' });
  p.ringA.emit({ reason: 'MISSED_2', text: '' });
  p.setLink(true);
  p.ringA.emit({ reason: 'AFTER', text: '' });
  p.deliver();
  assert.deepEqual(reasons(p.allB, 'a'), ['BEFORE', 'MISSED_1', 'MISSED_2', 'AFTER']);
});

test('an event from before the first contact is not lost when later ones arrive first', () => {
  const p = pair();
  p.setLink(false);
  p.ringA.emit({ reason: 'STARTED', text: '' });
  p.setLink(true);
  p.ringA.emit({ reason: 'LATER', text: '' });
  p.deliver();
  assert.deepEqual(reasons(p.allB, 'a'), ['STARTED', 'LATER']);
});

test('a peer that lost its event file (numbering from 1 again, later clock) starts a new series', () => {
  const all = new ClusterEvents();
  all.add({ seq: 5, at: '2026-01-01T00:00:05.000Z', member: 'a', reason: 'OLD', text: '' });
  assert.equal(all.add({ seq: 3, at: '2026-01-01T00:00:06.000Z', member: 'a', reason: 'DUP', text: '' }), undefined, 'an older seq is a duplicate');
  assert.ok(all.add({ seq: 1, at: '2026-01-01T00:01:00.000Z', member: 'a', reason: 'NEW_LIFE', text: '' }));
  assert.deepEqual(reasons(all, 'a'), ['OLD', 'NEW_LIFE']);
});

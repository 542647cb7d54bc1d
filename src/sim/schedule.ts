/**
 * Fault schedules, generated from a seed. A schedule is a faulty period of
 * `duration` ms made of fault *episodes* (a crash and its restart, a freeze
 * and its thaw, a partition and its heal, a degraded link and its repair),
 * starting at Poisson times; then a `heal-all` that ends every fault, and a
 * quiet period of `quiet` ms in which liveness is checked.
 *
 * The default ("gentle") bound: at most `maxDown` (1) members crashed or
 * frozen at once, and a member restarted on a wiped disk still counts as down
 * for `recoveryGap` ms (time to resync), so at most one node's data is lost at
 * a time: the scope of the no-lost-acknowledged-write guarantee. Network
 * faults (one partition-like and one link-quality episode at a time) come on
 * top, at any time. `harsh` lifts the member bound.
 *
 * Application failures (a node's application given up, then repaired by an
 * operator) are drawn apart, one at a time on nodes, from their own random
 * stream: the other faults of a seed stay what they were before they existed.
 */
import { formatUs, msToUs } from './clock.js';
import { describeFault, type FaultEvent } from './faults.js';
import type { LinkModel, LinkParams } from './network.js';
import type { ClusterInfo } from './process.js';
import { Random } from './random.js';

export interface FaultWeights {
  crash: number;
  freeze: number;
  partition: number;
  link: number;
}

export interface FaultOptions {
  /** Length of the faulty period, ms. */
  duration: number;
  /** Length of the quiet period after every fault is healed, ms. */
  quiet: number;
  /** Mean time between the starts of two fault episodes, ms. */
  meanGap: number;
  /** Shortest and longest episode, ms; lengths are log-uniform in between (as many blips as long outages). */
  minFault: number;
  maxFault: number;
  /** Members that may be crashed or frozen at the same time. */
  maxDown: number;
  /** After a restart on a wiped disk the member still counts as down this long, ms (time to resync). */
  recoveryGap: number;
  /** Largest clock rate error drawn for a member (1e-4 = 100 ppm). */
  maxDrift: number;
  weights: FaultWeights;
  /** Probability that a node crash loses the disk (the machine is replaced). */
  wipe: number;
  /** Probability that a node's crash kills only the agent (applications and keeper survive). */
  agentCrash: number;
  /** Probability that a freeze pauses the whole node (else only the agent). */
  nodeFreeze: number;
  /** Probability that a restart comes with a new clock rate. */
  redrift: number;
  /** Duplication and reordering faults are only drawn for datagram links. */
  linkModel: LinkModel;
  /** Mean time between two application failures (on any node), ms; Infinity for none. */
  appFailGap: number;
}

export const GENTLE: Readonly<FaultOptions> = {
  duration: 10_000,
  quiet: 4_000,
  meanGap: 250,
  minFault: 20,
  maxFault: 3_000,
  maxDown: 1,
  recoveryGap: 1_000,
  maxDrift: 1e-4,
  weights: { crash: 3, freeze: 2, partition: 3, link: 2 },
  wipe: 0.25,
  agentCrash: 0.35,
  nodeFreeze: 0.5,
  redrift: 0.2,
  linkModel: 'datagram',
  appFailGap: 2_500,
};

/** Any number of members down at once, faster faults, no recovery gap: safety must still hold; the data guarantee's scope no longer does. */
export const HARSH: Readonly<Partial<FaultOptions>> = {
  maxDown: Infinity,
  recoveryGap: 0,
  meanGap: 150,
  wipe: 0.35,
};

export interface Schedule {
  seed: number;
  members: readonly string[];
  /** Sorted by time; clock settings at 0 first, `heal-all` at `healAt`. */
  events: readonly FaultEvent[];
  /** When every fault is healed (the quiet period starts), global ms. */
  healAt: number;
  /** When the run ends, global ms. */
  endAt: number;
  options: Readonly<FaultOptions>;
}

/** The gentle defaults with `partial` on top (spread `HARSH` into it for harsh schedules). */
export function faultOptions(partial: Partial<FaultOptions> = {}): FaultOptions {
  return { ...GENTLE, ...partial, weights: { ...GENTLE.weights, ...partial.weights } };
}

/** A member's clock rate error: a third realistic (≤ 100 ppm), a third anywhere within the bound, a third exactly at ± the bound. */
export function drawDrift(rng: Random, maxDrift: number): number {
  const r = rng.float();
  if (r < 1 / 3) {
    const b = Math.min(1e-4, maxDrift);
    return rng.between(-b, b);
  }
  if (r < 2 / 3) return rng.between(-maxDrift, maxDrift);
  return rng.chance(0.5) ? maxDrift : -maxDrift;
}

/** Rounds ms to whole microseconds. */
function us(ms: number): number {
  return msToUs(ms) / 1000;
}

export function generateSchedule(seed: number, cluster: ClusterInfo, partial: Partial<FaultOptions> = {}): Schedule {
  const o = faultOptions(partial);
  const rng = new Random(seed).fork('faults');
  const members = cluster.members.map((m) => m.name);
  const isNode = new Set(cluster.nodes);
  const events: FaultEvent[] = [];

  for (const member of members) {
    events.push({ at: 0, type: 'clock', member, drift: drawDrift(rng, o.maxDrift), offset: us(rng.between(0, 1e9)) });
  }

  const freeAt = new Map<string, number>(members.map((m) => [m, 0]));
  let netFreeAt = 0;
  let linkFreeAt = 0;
  let t = 0;
  for (;;) {
    t = us(t + rng.exp(o.meanGap));
    if (t >= o.duration) break;
    const free = members.filter((m) => (freeAt.get(m) as number) <= t);
    const down = members.length - free.length;
    const canMember = free.length > 0 && down < o.maxDown;
    const choices: Array<[keyof FaultWeights, number]> = [
      ['crash', canMember ? o.weights.crash : 0],
      ['freeze', canMember ? o.weights.freeze : 0],
      ['partition', netFreeAt <= t && members.length > 1 ? o.weights.partition : 0],
      ['link', linkFreeAt <= t && members.length > 1 ? o.weights.link : 0],
    ];
    const kind = weighted(rng, choices);
    if (kind === undefined) continue;
    const end = us(t + rng.logBetween(o.minFault, o.maxFault));
    const ends = end < o.duration;
    switch (kind) {
      case 'crash': {
        const member = rng.pick(free);
        const crashKind = isNode.has(member) && rng.chance(o.agentCrash) ? 'agent' : 'node';
        // A lone node's disk is all the data there is: gentle schedules never wipe it.
        const canWipe = crashKind === 'node' && isNode.has(member) && (cluster.nodes.length > 1 || o.maxDown > 1);
        const disk = canWipe && rng.chance(o.wipe) ? 'wiped' : 'kept';
        events.push({ at: t, type: 'crash', member, kind: crashKind });
        if (ends) {
          const restart: FaultEvent = { at: end, type: 'restart', member, disk };
          if (rng.chance(o.redrift)) restart.drift = drawDrift(rng, o.maxDrift);
          events.push(restart);
        }
        freeAt.set(member, ends ? end + (disk === 'wiped' ? o.recoveryGap : 0) : Infinity);
        break;
      }
      case 'freeze': {
        const member = rng.pick(free);
        events.push({ at: t, type: 'freeze', member, scope: rng.chance(o.nodeFreeze) ? 'node' : 'agent' });
        if (ends) events.push({ at: end, type: 'thaw', member });
        freeAt.set(member, ends ? end : Infinity);
        break;
      }
      case 'partition': {
        const r = rng.float();
        if (r < 0.45) {
          const shuffled = rng.shuffle([...members]);
          const k = rng.intBetween(1, members.length - 1);
          const a = shuffled.slice(0, k).sort(byName(members));
          const b = shuffled.slice(k).sort(byName(members));
          events.push({ at: t, type: 'partition', groups: [a, b] });
        } else if (r < 0.75) {
          events.push({ at: t, type: 'isolate', member: rng.pick(members) });
        } else {
          const from = rng.pick(members);
          const to = rng.pick(members.filter((m) => m !== from));
          events.push({ at: t, type: 'cut', from, to });
        }
        if (ends) events.push({ at: end, type: 'heal' });
        netFreeAt = ends ? end : Infinity;
        break;
      }
      case 'link': {
        const all = rng.chance(0.4);
        const from = all ? '*' : rng.pick(members);
        const to = all ? '*' : rng.pick(members.filter((m) => m !== from));
        events.push({ at: t, type: 'link', from, to, params: drawLinkParams(rng, o.linkModel) });
        if (ends) events.push({ at: end, type: 'links-reset' });
        linkFreeAt = ends ? end : Infinity;
        break;
      }
    }
  }
  events.push(...appFailures(new Random(seed).fork('app-faults'), cluster.nodes, o));
  events.push({ at: o.duration, type: 'heal-all' });
  events.sort((x, y) => x.at - y.at); // stable: ties keep the order they were drawn in
  return { seed, members, events, healAt: o.duration, endAt: o.duration + o.quiet, options: o };
}

/** Application failures, one at a time, each repaired after an episode's length (or by the heal). */
function appFailures(rng: Random, nodes: readonly string[], o: FaultOptions): FaultEvent[] {
  const out: FaultEvent[] = [];
  if (nodes.length === 0 || !Number.isFinite(o.appFailGap)) return out;
  let t = 0;
  for (;;) {
    t = us(t + rng.exp(o.appFailGap));
    if (t >= o.duration) break;
    const member = rng.pick(nodes);
    const end = us(t + rng.logBetween(o.minFault, o.maxFault));
    out.push({ at: t, type: 'app-fail', member });
    if (end >= o.duration) break;
    out.push({ at: end, type: 'app-repair', member });
    t = end;
  }
  return out;
}

function drawLinkParams(rng: Random, model: LinkModel): Partial<LinkParams> {
  const r = rng.float();
  const datagram = model === 'datagram';
  if (r < 0.4) return { loss: round3(rng.between(0.05, 0.6)) };
  if (r < 0.7 || !datagram) {
    const delay = round3(rng.logBetween(5, 300));
    return { delay, jitter: round3(delay * rng.between(0, 1)) };
  }
  if (r < 0.85) return { duplicate: round3(rng.between(0.05, 0.4)) };
  return { reorder: round3(rng.between(0.05, 0.5)) };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function weighted<K>(rng: Random, choices: ReadonlyArray<readonly [K, number]>): K | undefined {
  const total = choices.reduce((s, [, w]) => s + w, 0);
  if (total <= 0) return undefined;
  let x = rng.float() * total;
  for (const [k, w] of choices) {
    if (x < w) return k;
    x -= w;
  }
  return undefined;
}

function byName(order: readonly string[]): (a: string, b: string) => number {
  return (a, b) => order.indexOf(a) - order.indexOf(b);
}

/** The schedule as text, one fault a line: `    1234.567  crash n1 (…)`. */
export function formatSchedule(s: Schedule): string {
  const lines = s.events.map((f) => `${formatUs(msToUs(f.at)).padStart(11)}  ${describeFault(f)}`);
  lines.push(`${formatUs(msToUs(s.endAt)).padStart(11)}  end of run`);
  return `${lines.join('\n')}\n`;
}

/**
 * Delay and loss on one host's link, in both directions.
 *
 * The usual tool is `tc qdisc … netem`, and it is tried first. The kernel the
 * bed was built on has no sch_netem ("Specified qdisc kind is unknown"), no tc
 * classifiers or actions and no nft/iptables, so there the bed falls back to a
 * user-space relay (impair-relay.py): the host's root-side veth leaves the
 * bridge, a second veth pair joins it instead, and the relay copies frames
 * between the two with AF_PACKET sockets, dropping and delaying them as asked.
 *
 *   host ns: eth0 ═ rootIf ──relay── relaySide ═ bridgeSide ── bridge
 *
 * Either way each direction gets the whole impairment, so a round trip over
 * the link takes at least twice `delayMs`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommandError, ip, tc, tolerant } from './ip.js';

export interface Impairment {
  /** Added to every frame, each direction. */
  delayMs?: number;
  /** Uniform ± around delayMs; with jitter frames may overtake each other (as with netem). */
  jitterMs?: number;
  /** Share of frames dropped, each direction, 0–100. */
  lossPct?: number;
}

export type ImpairMethod = 'netem' | 'relay';

/** What the relay needs from a started process (a BedProcess). */
export interface RelayProcess {
  readonly pid: number;
  readonly exited: Promise<unknown>;
  kill(signal: NodeJS.Signals): void;
  waitOutput(pattern: RegExp, options?: { deadline?: number }): Promise<unknown>;
}

/** The interfaces around one host's relay. */
export interface RelayWiring {
  bridge: string;
  /** The host's root-side veth. */
  rootIf: string;
  /** New pair: this end joins the bridge … */
  bridgeSide: string;
  /** … and the relay holds this one. */
  relaySide: string;
}

export function checkImpairment(i: Impairment): void {
  const { delayMs = 0, jitterMs = 0, lossPct = 0 } = i;
  for (const [k, v] of Object.entries({ delayMs, jitterMs, lossPct })) {
    if (!Number.isFinite(v) || v < 0) throw new RangeError(`impairment ${k} must be a number >= 0, got ${v}`);
  }
  if (lossPct > 100) throw new RangeError(`impairment lossPct must be at most 100, got ${lossPct}`);
}

export function describeImpairment(i: Impairment): string {
  return `delay ${i.delayMs ?? 0} ms ± ${i.jitterMs ?? 0} ms, loss ${i.lossPct ?? 0} %`;
}

let netemKnownMissing = false;

/**
 * Puts netem on both ends of the host's link (rootIf egress reaches the host,
 * eth0 egress leaves it). Resolves false, changing nothing, when the kernel
 * has no netem.
 */
export async function applyNetem(rootIf: string, ns: string, i: Impairment): Promise<boolean> {
  if (netemKnownMissing) return false;
  const args = ['root', 'netem'];
  if (i.delayMs) args.push('delay', `${i.delayMs}ms`, ...(i.jitterMs ? [`${i.jitterMs}ms`] : []));
  if (i.lossPct) args.push('loss', `${i.lossPct}%`);
  try {
    await tc('qdisc', 'replace', 'dev', rootIf, ...args);
  } catch (err) {
    if (err instanceof CommandError && /unknown|not supported|No such file/i.test(err.stderr)) {
      netemKnownMissing = true;
      return false;
    }
    throw err;
  }
  try {
    await tc('-n', ns, 'qdisc', 'replace', 'dev', 'eth0', ...args);
  } catch (err) {
    await tolerant(() => tc('qdisc', 'del', 'dev', rootIf, 'root'));
    throw err;
  }
  return true;
}

export async function removeNetem(rootIf: string, ns: string): Promise<string[]> {
  const problems = [await tolerant(() => tc('qdisc', 'del', 'dev', rootIf, 'root')), await tolerant(() => tc('-n', ns, 'qdisc', 'del', 'dev', 'eth0', 'root'))];
  return problems.filter((p): p is string => p !== undefined && !/Cannot delete qdisc with handle of zero|Invalid handle/i.test(p));
}

/**
 * Puts a relay between the host and the bridge. The new pair is wired and
 * the relay is ready before the host's veth leaves the bridge; the bridge
 * side comes up last, so frames never take both paths (a loop).
 */
export async function insertRelay(w: RelayWiring, i: Impairment, start: (command: string, args: string[]) => RelayProcess): Promise<RelayProcess> {
  await ip('link', 'add', w.bridgeSide, 'type', 'veth', 'peer', 'name', w.relaySide);
  let relay: RelayProcess | undefined;
  try {
    await ip('link', 'set', w.bridgeSide, 'master', w.bridge);
    await ip('link', 'set', w.relaySide, 'up');
    relay = start(python(), ['-I', '-S', '-u', relayScript(), '--a', w.rootIf, '--b', w.relaySide, '--delay-ms', String(i.delayMs ?? 0), '--jitter-ms', String(i.jitterMs ?? 0), '--loss-pct', String(i.lossPct ?? 0)]);
    try {
      await relay.waitOutput(/^ready$/m, { deadline: 5000 });
    } catch (err) {
      throw new Error(`impair relay on ${w.rootIf} did not start: ${(err as Error).message}`);
    }
    await ip('link', 'set', w.rootIf, 'nomaster');
    await ip('link', 'set', w.bridgeSide, 'up');
    return relay;
  } catch (err) {
    await removeRelay(w, relay);
    throw err;
  }
}

/** Stops the relay and puts the host's veth back on the bridge. */
export async function removeRelay(w: RelayWiring, relay: RelayProcess | undefined): Promise<string[]> {
  if (relay) {
    relay.kill('SIGTERM');
    const timer = setTimeout(() => relay.kill('SIGKILL'), 2000);
    await relay.exited;
    clearTimeout(timer);
  }
  const problems = [await tolerant(() => ip('link', 'del', w.bridgeSide)), await tolerant(() => ip('link', 'set', w.rootIf, 'master', w.bridge))];
  return problems.filter((p): p is string => p !== undefined);
}

/** The system Python (a pyenv shim on PATH would add a shell and a second of start-up). */
function python(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

let scriptPath: string | undefined;

/**
 * impair-relay.py sits next to impair.ts in the sources; tsc does not copy it,
 * so from the compiled file look beside it, then where its source map says
 * the source is, then up the tree, then under the working directory.
 */
export function relayScript(): string {
  if (scriptPath) return scriptPath;
  const here = fileURLToPath(import.meta.url);
  const candidates = [join(dirname(here), 'impair-relay.py')];
  try {
    const map = JSON.parse(readFileSync(`${here}.map`, 'utf8')) as { sourceRoot?: string; sources?: string[] };
    const source = map.sources?.[0];
    if (source) candidates.push(join(dirname(resolve(dirname(here), map.sourceRoot ?? '', source)), 'impair-relay.py'));
  } catch {
    // No source map: the other places remain.
  }
  for (let dir = dirname(here); dir !== dirname(dir); dir = dirname(dir)) candidates.push(join(dir, 'src', 'testing', 'bed', 'impair-relay.py'));
  candidates.push(join(process.cwd(), 'src', 'testing', 'bed', 'impair-relay.py'));
  scriptPath = candidates.find((c) => existsSync(c));
  if (!scriptPath) throw new Error(`impair-relay.py not found; looked at ${candidates.join(', ')}`);
  return scriptPath;
}

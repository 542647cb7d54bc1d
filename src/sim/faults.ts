/**
 * The faults the world can suffer, as timed events. A schedule (schedule.ts)
 * is a list of these; the world applies each at its time (world.ts).
 * Times are global ms.
 */
import type { CrashKind, FreezeScope } from './history.js';
import type { LinkParams } from './network.js';

export type FaultEvent =
  /** Sets a member's clock: rate error `drift` and local reading `offset` ms at global 0. Used at time 0 (the clock a member boots with). */
  | { at: number; type: 'clock'; member: string; drift: number; offset: number }
  | { at: number; type: 'crash'; member: string; kind: CrashKind }
  /** Restarts a crashed member; `wiped` boots it on an empty disk (a replaced machine); `drift` changes its clock rate from now on. */
  | { at: number; type: 'restart'; member: string; disk: 'kept' | 'wiped'; drift?: number }
  | { at: number; type: 'freeze'; member: string; scope: FreezeScope }
  | { at: number; type: 'thaw'; member: string }
  /** Cuts every link between the two groups, both ways. */
  | { at: number; type: 'partition'; groups: readonly [readonly string[], readonly string[]] }
  | { at: number; type: 'isolate'; member: string }
  /** Cuts the one directed link `from` → `to` (an asymmetric failure). */
  | { at: number; type: 'cut'; from: string; to: string }
  /** Restores every cut link. */
  | { at: number; type: 'heal' }
  /** Changes the quality of `from` → `to` (`*` = every member). */
  | { at: number; type: 'link'; from: string; to: string; params: Partial<LinkParams> }
  /** Puts every link's quality back to the defaults. */
  | { at: number; type: 'links-reset' }
  /** The application on a node fails for good (its restart budget is spent): the agent gives it up there. */
  | { at: number; type: 'app-fail'; member: string }
  /** An operator repairs that application and resets it: the node is back in service. */
  | { at: number; type: 'app-repair'; member: string }
  /** Ends every fault: thaws, restarts (disk kept), heals the network and the links. The quiet period starts. */
  | { at: number; type: 'heal-all' };

export type FaultType = FaultEvent['type'];

/** One readable line, without the time: `crash n1 (node)`. */
export function describeFault(f: FaultEvent): string {
  switch (f.type) {
    case 'clock':
      return `clock ${f.member} drift=${formatPpm(f.drift)} offset=${f.offset.toFixed(3)}ms`;
    case 'crash':
      return `crash ${f.member} (${f.kind === 'node' ? 'whole node: apps die too' : 'agent only: apps keep running'})`;
    case 'restart':
      return `restart ${f.member} disk=${f.disk}${f.drift === undefined ? '' : ` drift=${formatPpm(f.drift)}`}`;
    case 'freeze':
      return `freeze ${f.member} (${f.scope === 'node' ? 'whole node paused' : 'agent paused, apps keep running'})`;
    case 'thaw':
      return `thaw ${f.member}`;
    case 'partition':
      return `partition [${f.groups[0].join(' ')}] | [${f.groups[1].join(' ')}]`;
    case 'isolate':
      return `isolate ${f.member}`;
    case 'cut':
      return `cut ${f.from}→${f.to} (one way)`;
    case 'heal':
      return 'heal network';
    case 'link':
      return `link ${f.from}→${f.to} ${Object.entries(f.params).map(([k, v]) => `${k}=${v}`).join(' ')}`;
    case 'links-reset':
      return 'links back to defaults';
    case 'app-fail':
      return `app-fail ${f.member} (the application is given up there)`;
    case 'app-repair':
      return `app-repair ${f.member} (an operator resets it)`;
    case 'heal-all':
      return 'heal everything (quiet period starts)';
  }
}

export function formatPpm(drift: number): string {
  return `${(drift * 1e6).toFixed(1)}ppm`;
}

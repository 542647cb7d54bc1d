/**
 * What a previous agent left running. An agent killed with -9 leaves its
 * keepers alive, holding applications and lease deadlines that are no longer
 * the new agent's to keep: the new agent kills them before it starts anything.
 *
 * Everything is found through the keepers' state files and killed by recorded
 * PID only, never by name, and only after checking that the PID still is
 * what the file says: the keeper by its command line (/proc/PID/cmdline runs
 * keeper-main for this very state file); if the keeper is gone too (killed
 * with -9 along with the agent), the processes left in its application's
 * group by the token that the keeper put in their environment. A PID reused
 * by an unrelated process is left alone.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Logger } from '../observe/log.js';
import { KEEPER_TOKEN_ENV, type KeeperState } from './keeper.js';
import { groupAlive, groupMembers, processAlive, signalGroup } from './script.js';

/** The suffix of keeper state files in the agent's run directory. */
export const KEEPER_STATE_SUFFIX = '.keeper.json';

export function keeperStateFile(runDir: string, module: string): string {
  return join(runDir, `${module}${KEEPER_STATE_SUFFIX}`);
}

export interface Leftover extends KeeperState {
  file: string;
  /** What was found alive and killed. */
  killedKeeper: boolean;
  killedGroup: boolean;
  /** Every process was seen gone before the deadline (else the state file is kept for the next try). */
  gone: boolean;
}

export interface LeftoverOptions {
  logger?: Logger;
  /** How long to wait for the killed processes to disappear; default 5 s. */
  deadline?: number;
}

/**
 * Kills the keepers, and their applications' process groups, recorded in the
 * `*.keeper.json` files of `stateDir`; returns what it killed. Stale files
 * (nothing of theirs left) are removed.
 */
export async function killLeftovers(stateDir: string, options: LeftoverOptions = {}): Promise<Leftover[]> {
  const log = options.logger?.child({ component: 'leftovers' });
  let names: string[];
  try {
    names = readdirSync(stateDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const killed: Leftover[] = [];
  for (const name of names) {
    const file = join(stateDir, name);
    // A temporary file of a keeper killed while writing: never renamed, so never meant.
    if (name.includes(`${KEEPER_STATE_SUFFIX}.tmp-`)) {
      rmSync(file, { force: true });
      continue;
    }
    if (!name.endsWith(KEEPER_STATE_SUFFIX)) continue;
    const state = readState(file);
    if (!state) {
      log?.warn({ file }, `removed an unreadable keeper state file ${file}`);
      rmSync(file, { force: true });
      continue;
    }
    const killedKeeper = isKeeper(state.keeperPid, file);
    if (killedKeeper) {
      try {
        process.kill(state.keeperPid, 'SIGKILL');
      } catch {
        // ended meanwhile
      }
    }
    // With its keeper verified the group is the application's; without, only if a member carries the token.
    const killedGroup = groupAlive(state.pgid) && (killedKeeper || carriesToken(state.pgid, state.token));
    if (killedGroup) signalGroup(state.pgid, 'SIGKILL');
    if (!killedKeeper && !killedGroup) {
      log?.info({ file, keeperPid: state.keeperPid }, `removed a stale keeper state file ${file} (nothing of ${state.module} is left)`);
      rmSync(file, { force: true });
      continue;
    }
    killed.push({ ...state, file, killedKeeper, killedGroup, gone: false });
  }

  const end = performance.now() + (options.deadline ?? 5000);
  for (const k of killed) {
    for (;;) {
      const groupLeft = k.killedGroup && groupAlive(k.pgid);
      k.gone = !(k.killedKeeper && processAlive(k.keeperPid)) && !groupLeft;
      if (k.gone || performance.now() >= end) break;
      // A fork racing with the first SIGKILL may have made a new member: send again.
      if (groupLeft) signalGroup(k.pgid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 20));
    }
    const what = `${k.module} left running by a previous agent (keeper ${k.keeperPid}${k.killedKeeper ? '' : ', already gone'}, process group ${k.pgid})`;
    if (k.gone) {
      rmSync(k.file, { force: true });
      log?.warn({ module: k.module, keeperPid: k.keeperPid, pgid: k.pgid, reason: 'LEFTOVER_KILLED' }, `killed ${what}`);
    } else {
      log?.error({ module: k.module, keeperPid: k.keeperPid, pgid: k.pgid }, `processes of ${what} are still there after SIGKILL`);
    }
  }
  return killed;
}

function readState(file: string): KeeperState | undefined {
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as Partial<KeeperState>;
    const pidOk = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n > 1 && n !== process.pid;
    // The application leads its own group (pgid = its pid): anything else is not a keeper's record.
    if (!pidOk(s.keeperPid) || !pidOk(s.appPid) || !pidOk(s.pgid) || s.pgid !== s.appPid) return undefined;
    return {
      keeperPid: s.keeperPid,
      appPid: s.appPid,
      pgid: s.pgid,
      startedAt: String(s.startedAt ?? ''),
      module: String(s.module ?? basename(file, KEEPER_STATE_SUFFIX)),
      token: typeof s.token === 'string' ? s.token : '',
    };
  } catch {
    return undefined;
  }
}

/** The PID is alive and runs keeper-main for this very state file. */
function isKeeper(pid: number, file: string): boolean {
  if (!processAlive(pid)) return false;
  let args: string[];
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false;
  }
  const at = args.indexOf('--state');
  const stateArg = at >= 0 ? args[at + 1] : undefined;
  return args.some((a) => a.includes('keeper-main')) && stateArg !== undefined && basename(stateArg) === basename(file);
}

/** Some live process of the group has the keeper's token in its environment. */
function carriesToken(pgid: number, token: string): boolean {
  if (token.length < 16) return false;
  const needle = `${KEEPER_TOKEN_ENV}=${token}`;
  return groupMembers(pgid).some((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(needle);
    } catch {
      return false;
    }
  });
}

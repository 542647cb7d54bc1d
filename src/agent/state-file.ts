/**
 * The member's durable state (`<data_dir>/state.json`): the voter's promises
 * and records, and per mirror module the highest epoch known and the position
 * of the local data. Written whole, to a temporary file that is fsynced and
 * renamed over the old one, then the directory is fsynced: a crash leaves the
 * old or the new state, never a torn one, and a promise is on disk before the
 * reply that makes it leaves (the driver runs actions in order).
 *
 * A missing file means a new or lost disk: the voter starts amnesiac and
 * catches up from the others (docs/design/lease.md). An unreadable file is
 * not silently treated as missing: that would turn a damaged disk into
 * amnesia without anyone deciding it.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SkyhaError } from '../core/errors.js';
import type { MemberDisk } from '../logic/member.js';
import type { VoterDisk } from '../logic/lease/voter.js';
import type { AdminState } from '../logic/farm-pool.js';

const FORMAT = 1;

interface FileShape {
  format: number;
  member: string;
  cluster: string;
  disk: MemberDisk;
  /** Farm modules: the admin state an operator set on this node (absent: ready). Survives restarts: a drained node stays drained. */
  admin?: Record<string, AdminState>;
}

export class StateFile {
  readonly path: string;
  private disk: MemberDisk;
  private adminStates: Record<string, AdminState>;
  writes = 0;

  private constructor(path: string, disk: MemberDisk, private readonly identity: { member: string; cluster: string }, admin: Record<string, AdminState> = {}) {
    this.path = path;
    this.disk = disk;
    this.adminStates = admin;
  }

  /** Opens the state of `member` in `dataDir`; `loaded` is undefined when there was none. */
  static open(dataDir: string, identity: { member: string; cluster: string }): { file: StateFile; loaded: MemberDisk | undefined } {
    const path = join(dataDir, 'state.json');
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { file: new StateFile(path, { modules: {} }, identity), loaded: undefined };
      throw new SkyhaError('SKYHA_ERR_STATE', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
    let parsed: FileShape;
    try {
      parsed = JSON.parse(text) as FileShape;
    } catch (err) {
      throw new SkyhaError('SKYHA_ERR_STATE', `${path} is not valid JSON (${(err as Error).message}); move it aside to start this member as one that lost its disk`, { cause: err });
    }
    if (parsed.format !== FORMAT || typeof parsed.disk !== 'object' || parsed.disk === null || typeof parsed.disk.modules !== 'object') {
      throw new SkyhaError('SKYHA_ERR_STATE', `${path} has an unknown format (expected format ${FORMAT}); move it aside to start this member as one that lost its disk`);
    }
    if (parsed.member !== identity.member || parsed.cluster !== identity.cluster) {
      throw new SkyhaError('SKYHA_ERR_STATE', `${path} belongs to member ${parsed.member} of cluster ${parsed.cluster}, not ${identity.member} of ${identity.cluster}: two members must not share a data directory`);
    }
    const admin: Record<string, AdminState> = {};
    for (const [module, state] of Object.entries(parsed.admin ?? {})) if (state === 'drain' || state === 'maint') admin[module] = state;
    return { file: new StateFile(path, parsed.disk, identity, admin), loaded: parsed.disk };
  }

  get current(): MemberDisk {
    return this.disk;
  }

  setVoter(voter: VoterDisk): void {
    this.disk = { ...this.disk, voter };
    this.write();
  }

  /** A module's position as last written. */
  module(module: string): { epoch: number; dataEpoch: number; applied: number } | undefined {
    return this.disk.modules[module];
  }

  setModule(module: string, position: { epoch: number; dataEpoch: number; applied: number }): void {
    const old = this.disk.modules[module];
    if (old && old.epoch === position.epoch && old.dataEpoch === position.dataEpoch && old.applied === position.applied) return;
    this.disk = { ...this.disk, modules: { ...this.disk.modules, [module]: position } };
    this.write();
  }

  /** The admin state of a farm module on this node. */
  admin(module: string): AdminState {
    return this.adminStates[module] ?? 'ready';
  }

  setAdmin(module: string, state: AdminState): void {
    if (this.admin(module) === state) return;
    const next = { ...this.adminStates };
    if (state === 'ready') delete next[module];
    else next[module] = state;
    this.adminStates = next;
    this.write();
  }

  private write(): void {
    const body: FileShape = { format: FORMAT, ...this.identity, disk: this.disk, ...(Object.keys(this.adminStates).length > 0 ? { admin: this.adminStates } : {}) };
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(body));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    const dir = openSync(dirname(this.path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    this.writes++;
  }
}

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
import { open, rm } from 'node:fs/promises';
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
  /** Modules an operator stopped (`skyha stop`): they stay stopped on this node, across restarts, until started. */
  stopped?: Record<string, OperatorStop>;
}

export interface OperatorStop {
  by: string;
  /** Wall-clock time, ISO 8601. */
  at: string;
}

export class StateFile {
  readonly path: string;
  private disk: MemberDisk;
  /** What the file on disk holds for certain (the newest write known complete), and that write's generation. */
  private durableDisk: MemberDisk;
  private durableGeneration = 0;
  private adminStates: Record<string, AdminState>;
  private stops: Record<string, OperatorStop>;
  writes = 0;

  private constructor(path: string, disk: MemberDisk, private readonly identity: { member: string; cluster: string }, admin: Record<string, AdminState> = {}, stopped: Record<string, OperatorStop> = {}) {
    this.path = path;
    this.disk = disk;
    this.durableDisk = disk;
    this.adminStates = admin;
    this.stops = stopped;
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
    const stopped: Record<string, OperatorStop> = {};
    for (const [module, s] of Object.entries(parsed.stopped ?? {})) if (s && typeof s.by === 'string' && typeof s.at === 'string') stopped[module] = { by: s.by, at: s.at };
    return { file: new StateFile(path, parsed.disk, identity, admin, stopped), loaded: parsed.disk };
  }

  get current(): MemberDisk {
    return this.disk;
  }

  /** The voter's state as durably written (a write still under way is not in it). */
  get durableVoter(): VoterDisk | undefined {
    return this.durableDisk.voter;
  }

  private written(generation: number, disk: MemberDisk): void {
    if (generation < this.durableGeneration) return;
    this.durableGeneration = generation;
    this.durableDisk = disk;
  }

  /**
   * The voter's state, durable when the promise resolves (its replies wait for that), written off the event
   * loop. A renewal changes only the promise's expiry, which is not on disk (a restarted voter waits out its
   * quarantine): the same disk is not written again. Written on the event loop, a grant or a record behind a busy
   * disk's fsync (1.5 s while the application wrote a gigabyte) stopped everything else the agent does —
   * heartbeats, its own lease renewals — long enough for its primary to lose the lease.
   */
  setVoter(voter: VoterDisk): Promise<void> {
    const json = JSON.stringify(voter);
    if (json === (this.voterJson ??= JSON.stringify(this.disk.voter))) return this.voterWrite;
    this.disk = { ...this.disk, voter };
    this.voterJson = json;
    const write = this.writeInBackground();
    this.voterWrite = write;
    // A failed write leaves the state to be written again by the next call (its replies were not sent).
    write.catch(() => {
      if (this.voterWrite === write) this.voterJson = undefined;
    });
    return write;
  }

  /** The voter state last asked for, and the write that carries it. */
  private voterJson: string | undefined;
  private voterWrite: Promise<void> = Promise.resolve();

  /** A module's position as last written. */
  module(module: string): { epoch: number; dataEpoch: number; applied: number; fencing?: number } | undefined {
    return this.disk.modules[module];
  }

  setModule(module: string, position: { epoch: number; dataEpoch: number; applied: number; fencing?: number }): void {
    const old = this.disk.modules[module];
    if (old && old.epoch === position.epoch && old.dataEpoch === position.dataEpoch && old.applied === position.applied && old.fencing === position.fencing) return;
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

  /** Whether (and by whom) an operator stopped a module on this node. */
  stoppedBy(module: string): OperatorStop | undefined {
    return this.stops[module];
  }

  setStopped(module: string, stop: OperatorStop | undefined): void {
    if (Boolean(this.stops[module]) === Boolean(stop)) return;
    const next = { ...this.stops };
    if (stop) next[module] = stop;
    else delete next[module];
    this.stops = next;
    this.write();
  }

  /**
   * A module's advanced position, written off the event loop: what waits for
   * it is nothing (see the agent's persistModule), and an fsync behind a busy
   * disk can take hundreds of milliseconds — too long for lease renewals to
   * wait. A later write (either kind) supersedes it: each write carries the
   * whole state, and one that lost the race is not renamed into place.
   */
  async setModuleInBackground(module: string, position: { epoch: number; dataEpoch: number; applied: number; fencing?: number }): Promise<void> {
    const old = this.disk.modules[module];
    if (old && old.epoch === position.epoch && old.dataEpoch === position.dataEpoch && old.applied === position.applied && old.fencing === position.fencing) return;
    this.disk = { ...this.disk, modules: { ...this.disk.modules, [module]: position } };
    return this.writeInBackground();
  }

  /**
   * Writes the whole state off the event loop; resolves once a write that holds it is durable. A later write
   * supersedes an earlier one: the earlier is not renamed into place and resolves with the later (a write on the
   * event loop, done by the time this one looks, already holds it).
   */
  private writeInBackground(): Promise<void> {
    const generation = ++this.generation;
    const done = this.writeGeneration(generation);
    this.background = { generation, done };
    const clear = (): void => {
      if (this.background?.generation === generation) this.background = undefined;
    };
    done.then(clear, clear);
    return done;
  }

  /** The latest write in the background, while it runs. */
  private background: { generation: number; done: Promise<void> } | undefined;

  private async writeGeneration(generation: number): Promise<void> {
    const text = this.text();
    const snapshot = this.disk;
    const tmp = `${this.path}.${generation}.tmp`;
    const h = await open(tmp, 'w', 0o600);
    try {
      await h.writeFile(text);
      await h.sync();
    } finally {
      await h.close();
    }
    // Checked and renamed in one step of the event loop: no other write can slip in between.
    if (generation !== this.generation) {
      await rm(tmp, { force: true });
      // Superseded: by a write on the event loop (done, durable), or by a later one in the background (wait for it).
      const later = this.background;
      if (later && later.generation > generation) await later.done;
      return;
    }
    renameSync(tmp, this.path);
    const dir = await open(dirname(this.path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    this.written(generation, snapshot);
    this.writes++;
  }

  private generation = 0;

  private text(): string {
    const body: FileShape = { format: FORMAT, ...this.identity, disk: this.disk, ...(Object.keys(this.adminStates).length > 0 ? { admin: this.adminStates } : {}), ...(Object.keys(this.stops).length > 0 ? { stopped: this.stops } : {}) };
    return JSON.stringify(body);
  }

  private write(): void {
    const generation = ++this.generation;
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, this.text());
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
    this.written(generation, this.disk);
    this.writes++;
  }
}

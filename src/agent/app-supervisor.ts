/**
 * One module's application on this node: started and held by a keeper
 * process (src/supervise/keeper.ts), probed by its checkers, and reported to
 * the module's controller as started, failed or stopped. It decides nothing
 * about roles or restarts: the controller (farm or mirror) does, through the
 * restart policy and the member machine.
 *
 * Failures, each reported once per run of the application:
 * - the start command's process exits non-zero or by a signal;
 * - the whole process group is gone while nobody asked it to stop;
 * - a checker goes `failed` (fall failures in a row);
 * - the checkers are not all healthy `start_timeout` after the start.
 */
import { join } from 'node:path';
import type { Clock, CancelTimer } from '../core/clock.js';
import type { ClusterConfig, ModuleConfig } from '../config/model.js';
import { initChecker, moduleHealth, stepChecker, type CheckerState, type CheckerStatus } from '../logic/checker.js';
import type { Logger } from '../observe/log.js';
import { CheckerRunner } from '../supervise/checker-runner.js';
import { Keeper, toMonotonic } from '../supervise/keeper.js';
import { probe } from '../supervise/probes.js';

export type AppStatus = 'stopped' | 'starting' | 'running' | 'stopping';

export interface AppRun {
  /** What the scripts learn through SKYHA_ROLE: `primary` (mirror) or `active` (farm). */
  role: 'primary' | 'active';
  epoch: number;
  /** Mirror: the lease's end on the driver's clock; the keeper stops the application there unless extended. */
  validUntil?: number;
}

export interface AppEvents {
  started(): void;
  /** The application is gone (every process of its group); `expected` when a stop was asked. */
  stopped(expected: boolean): void;
  /** The keeper killed it: its lease deadline passed unrenewed. */
  fenced?(): void;
  failed(detail: string): void;
  /** A checker changed; for events and status. */
  checkerChanged(checker: string, from: CheckerStatus, to: CheckerStatus, detail: string): void;
}

export class AppSupervisor {
  status: AppStatus = 'stopped';
  private keeper: Keeper | undefined;
  private runners: CheckerRunner[] = [];
  checkers: Record<string, CheckerState> = {};
  private failedThisRun = false;
  /** The application passed all its checkers at least once in this run: from then on a failing checker is a failure. */
  private healthyThisRun = false;
  private fenced = false;
  private spare: Keeper | undefined;
  private keepers = 0;
  private closed = false;
  private startTimer: CancelTimer | undefined;
  private stopWaiters: Array<() => void> = [];
  private run: AppRun | undefined;
  /** The deadline last given to the keeper, on the driver's clock. */
  validUntil: number | undefined;
  startedAt: number | undefined;
  private seq = 0;

  constructor(
    readonly module: ModuleConfig,
    private readonly cluster: ClusterConfig,
    private readonly node: string,
    private readonly runDir: string,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly events: AppEvents,
  ) {
    for (const c of module.checkers) this.checkers[c.name] = initChecker({ checker: c.name, module: module.name, node, rise: c.rise, fall: c.fall }, clock.now());
  }

  /** Healthy on this node: running and every checker healthy (a module without checkers: running). */
  get health(): CheckerStatus {
    if (this.status !== 'running') return this.status === 'stopped' ? 'failed' : 'unknown';
    return moduleHealth(Object.values(this.checkers).map((c) => c.status));
  }

  get pid(): number | undefined {
    return this.keeper?.appPid;
  }

  environment(run: AppRun | undefined): Record<string, string> {
    return {
      ...Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined)),
      ...this.module.environment,
      SKYHA_CLUSTER: this.cluster.name,
      SKYHA_MODULE: this.module.name,
      SKYHA_MODULE_KIND: this.module.kind,
      SKYHA_NODE: this.node,
      SKYHA_NODE_ADDRESS: this.cluster.nodes.find((n) => n.name === this.node)?.address ?? '',
      SKYHA_ROLE: run?.role ?? 'stopped',
      SKYHA_EPOCH: String(run?.epoch ?? 0),
      ...this.mirrorEnvironment(),
    };
  }

  /** A mirror application learns its directories here and where to ask for a barrier (the agent's control socket). */
  private mirrorEnvironment(): Record<string, string> {
    if (this.module.kind !== 'mirror') return {};
    const self = this.cluster.nodes.find((n) => n.name === this.node);
    return {
      SKYHA_DIRECTORIES: this.module.directories.map((d) => d.replaceAll('{node}', this.node)).join(':'),
      ...(self ? { SKYHA_CONTROL_SOCKET: join(self.dataDir, 'run', 'control.sock') } : {}),
    };
  }

  start(run: AppRun): void {
    if (this.status !== 'stopped') throw new Error(`internal: start of ${this.module.name} while ${this.status}`);
    this.status = 'starting';
    this.run = run;
    this.failedThisRun = false;
    this.healthyThisRun = false;
    this.fenced = false;
    this.startedAt = this.clock.now();
    const seq = ++this.seq;
    const keeper = this.spare ?? this.spawnKeeper();
    this.spare = undefined;
    this.keeper = keeper;
    keeper.on('started', () => {
      if (this.keeper !== keeper) return;
      if (this.status === 'starting') this.status = 'running';
      this.log.info({ module: this.module.name, pid: keeper.appPid, epoch: run.epoch, role: run.role }, `started ${this.module.name}`);
      this.startCheckers(seq);
      this.prepareSpare();
      this.events.started();
    });
    keeper.on('exited', (e: { code: number | null; signal: string | null }) => {
      if (this.keeper !== keeper || this.status === 'stopping' || this.fenced) return;
      if (e.code !== 0) this.fail(e.signal ? `the application's process was killed by ${e.signal}` : `the application's process exited with code ${e.code}`);
    });
    keeper.on('fenced', (e: { lateMs: number }) => {
      if (this.keeper !== keeper) return;
      // Not the application's fault: the lease ran out (agent frozen or cut off). No restart is counted.
      this.fenced = true;
      this.log.warn({ module: this.module.name, lateMs: e.lateMs, reason: 'KEEPER_FENCED' }, `the keeper stopped ${this.module.name}: its lease deadline passed unrenewed`);
    });
    keeper.on('gone', () => {
      if (this.keeper !== keeper) return;
      this.finish();
    });
    keeper.on('error', (e: { message: string }) => {
      if (this.keeper !== keeper) return;
      this.log.error({ module: this.module.name }, `keeper of ${this.module.name}: ${e.message}`);
    });
    keeper.start({
      command: this.module.start,
      cwd: this.module.workingDir,
      env: this.environment(run),
      until: run.validUntil === undefined ? null : toMonotonic(this.clock.now(), run.validUntil),
      log: join(this.runDir, `${this.module.name}.log`),
    });
    if (run.validUntil !== undefined) this.validUntil = run.validUntil;
    this.startTimer = this.clock.setTimer(this.module.startTimeout, () => {
      this.startTimer = undefined;
      if (this.keeper !== keeper || this.status === 'stopping' || this.status === 'stopped') return;
      if (this.health !== 'healthy') this.fail(`not healthy ${this.module.startTimeout} ms after the start (start_timeout)`);
    });
  }

  /** Moves the keeper's deadline (mirror: the lease was renewed). */
  extend(validUntil: number): void {
    if (!this.keeper || this.status === 'stopped') return;
    this.validUntil = validUntil;
    this.keeper.extend(toMonotonic(this.clock.now(), validUntil));
  }

  /** Stops the application (stop script, then TERM, then KILL); resolves when every process is gone. */
  stop(why: string): Promise<void> {
    if (this.status === 'stopped') return Promise.resolve();
    const done = new Promise<void>((resolve) => this.stopWaiters.push(resolve));
    if (this.status !== 'stopping') {
      this.status = 'stopping';
      this.stopCheckers();
      this.log.info({ module: this.module.name }, `stopping ${this.module.name}: ${why}`);
      void this.keeper?.stop({ command: this.module.stop ?? null, timeout: this.module.stopTimeout, env: this.environment(this.run) });
    }
    return done;
  }

  /** Kills the application at once (the lease is gone and it is still running: no time for a stop script). */
  fence(why: string): Promise<void> {
    if (this.status === 'stopped') return Promise.resolve();
    const done = new Promise<void>((resolve) => this.stopWaiters.push(resolve));
    this.status = 'stopping';
    this.stopCheckers();
    this.log.warn({ module: this.module.name, reason: 'FENCED' }, `killing ${this.module.name} at once: ${why}`);
    void this.keeper?.stop({ command: null, timeout: 0, env: {} });
    return done;
  }

  /** For an agent that exits at once: the keeper goes on holding the deadline (mirror) or stops the application (farm). */
  detach(): void {
    this.stopCheckers();
    this.keeper?.detach();
    // An idle keeper exits when its pipe closes.
    this.spare?.detach();
    this.spare = undefined;
    this.closed = true;
  }

  /**
   * A keeper started ahead, idle until it is given a start: a new Node.js
   * process takes a few hundred milliseconds to come up on a busy machine,
   * time a failover should not spend. Mirror modules keep one ready.
   */
  prepareSpare(): void {
    if (this.closed || this.spare || this.module.kind !== 'mirror') return;
    this.spare = this.spawnKeeper();
  }

  private spawnKeeper(): Keeper {
    // One state file per keeper: a keeper that is still cleaning up never removes its successor's file.
    return Keeper.spawn({ module: this.module.name, stateFile: join(this.runDir, `${this.module.name}-${++this.keepers}.keeper.json`), logger: this.log });
  }

  private fail(detail: string): void {
    if (this.failedThisRun) return;
    this.failedThisRun = true;
    this.log.warn({ module: this.module.name, reason: 'APP_FAILED' }, `${this.module.name} failed on ${this.node}: ${detail}`);
    this.events.failed(detail);
  }

  private finish(): void {
    const expected = this.status === 'stopping' || this.fenced;
    this.status = 'stopped';
    this.stopCheckers();
    this.keeper = undefined;
    this.validUntil = undefined;
    if (!expected) this.fail('the application stopped by itself (no process of it is left)');
    for (const c of Object.keys(this.checkers)) this.checkers[c] = stepChecker(this.checkers[c]!, { type: 'reset', detail: 'the application stopped' }, this.clock.now()).state;
    const waiters = this.stopWaiters;
    this.stopWaiters = [];
    for (const w of waiters) w();
    this.events.stopped(expected);
  }

  private startCheckers(seq: number): void {
    for (const c of this.module.checkers) {
      // Built once per run: probes come every interval, the environment does not change within a run.
      const env = this.environment(this.run);
      const runner = new CheckerRunner(c, () => probe(c, { ...(this.keeper?.appPid ? { appPid: this.keeper.appPid } : {}), ...(this.keeper?.pgid ? { pgid: this.keeper.pgid } : {}), cwd: this.module.workingDir, env }), (result) => {
        if (seq !== this.seq || (this.status !== 'running' && this.status !== 'starting')) return;
        const step = stepChecker(this.checkers[c.name]!, { type: 'result', ...result }, this.clock.now());
        this.checkers[c.name] = step.state;
        for (const a of step.actions) {
          this.log.info({ module: this.module.name, checker: c.name, reason: a.reason.code }, a.reason.text);
          this.events.checkerChanged(c.name, a.from, a.to, a.detail);
          // Still starting (never healthy in this run, within start_timeout): not a failure yet; the start timer judges.
          const starting = !this.healthyThisRun && this.clock.now() - (this.startedAt ?? 0) < this.module.startTimeout;
          if (a.to === 'failed' && !starting) this.fail(`checker ${c.name}: ${a.detail}`);
          if (this.health === 'healthy') this.healthyThisRun = true;
        }
      });
      this.runners.push(runner);
      runner.start();
    }
  }

  private stopCheckers(): void {
    this.startTimer?.();
    this.startTimer = undefined;
    for (const r of this.runners) r.stop();
    this.runners = [];
  }
}

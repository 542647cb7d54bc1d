/**
 * The agent's side of a keeper: the small process (keeper-main.ts) that runs
 * one application and holds its lease deadline, so that the application stops
 * in time even when the agent is killed with -9 or frozen (guarantee 1).
 *
 * The keeper is spawned detached (its own session: it survives the agent and
 * terminal signals) and driven with JSON lines on its stdin; it reports on
 * its stdout. Deadlines are absolute milliseconds on CLOCK_MONOTONIC, which
 * every process of the machine shares (whatever its network namespace), so a
 * deadline means the same instant to the agent and to the keeper.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../observe/log.js';
import { signalGroup, waitGroupGone } from './script.js';

/** Milliseconds on CLOCK_MONOTONIC: the keeper's clock. */
export function monotonicNow(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * A deadline `at` on another monotonic clock (e.g. performance.now(), whose
 * reading now is `clockNow`) expressed on the keeper's clock.
 */
export function toMonotonic(clockNow: number, at: number): number {
  return monotonicNow() + (at - clockNow);
}

// ---- the protocol: one JSON object per line ----

export interface KeeperStartSpec {
  command: string;
  cwd: string;
  env: Record<string, string>;
  /** Absolute deadline on CLOCK_MONOTONIC (ms); null: none (farm modules). */
  until: number | null;
  /** The application's stdout and stderr are appended here; null or absent: the keeper's stderr. */
  log?: string | null;
}
export interface KeeperStopSpec {
  /** Run first, in its own process group, killed after `timeout`. */
  command: string | null;
  /** For the stop command, then between SIGTERM and SIGKILL; 0: SIGKILL at once. */
  timeout: number;
  env: Record<string, string>;
}

export type KeeperRequest =
  | ({ op: 'start' } & KeeperStartSpec)
  | { op: 'extend'; until: number }
  | ({ op: 'stop' } & KeeperStopSpec);

export type StopHow = 'script' | 'term' | 'kill';
export type KeeperReport =
  | { ev: 'started'; pid: number; pgid: number }
  | { ev: 'exited'; code: number | null; signal: string | null }
  | { ev: 'gone' }
  | { ev: 'fenced'; lateMs: number }
  | { ev: 'stopped'; how: StopHow }
  | { ev: 'error'; message: string };

/** What the keeper writes to `--state FILE` while its application runs (read by leftovers.ts). */
export interface KeeperState {
  keeperPid: number;
  appPid: number;
  pgid: number;
  /** Wall clock, ISO 8601. */
  startedAt: string;
  module: string;
  /**
   * Also in the application's environment (SKYHA_KEEPER_TOKEN): proves that a
   * process is this application's, should its keeper be gone.
   */
  token: string;
}

/** The environment variable that carries `KeeperState.token` into the application. */
export const KEEPER_TOKEN_ENV = 'SKYHA_KEEPER_TOKEN';

export interface KeeperEvents {
  started: (e: { pid: number; pgid: number }) => void;
  /** The start command's main process ended (its group may live on). */
  exited: (e: { code: number | null; signal: string | null }) => void;
  /** No process of the application's group is left; the keeper has exited or is exiting. */
  gone: () => void;
  /** The deadline passed unrenewed: the group was killed. */
  fenced: (e: { lateMs: number }) => void;
  stopped: (e: { how: StopHow }) => void;
  error: (e: { message: string }) => void;
}

export interface KeeperSpawnOptions {
  module: string;
  /** Written by the keeper while the application runs; a restarted agent finds leftovers by it. */
  stateFile: string;
  logger?: Logger;
}

const KEEPER_MAIN = fileURLToPath(new URL('./keeper-main.js', import.meta.url));

export interface Keeper {
  on<E extends keyof KeeperEvents>(event: E, listener: KeeperEvents[E]): this;
  once<E extends keyof KeeperEvents>(event: E, listener: KeeperEvents[E]): this;
  off<E extends keyof KeeperEvents>(event: E, listener: KeeperEvents[E]): this;
}

export class Keeper extends EventEmitter {
  appPid: number | undefined;
  pgid: number | undefined;
  private exited = false;
  private goneSeen = false;
  private detached = false;
  private readonly gone: Promise<void>;
  private markGone!: () => void;
  private readonly log: Logger | undefined;

  private constructor(
    private readonly child: ChildProcessByStdio<Writable, Readable, null>,
    private readonly options: KeeperSpawnOptions,
  ) {
    super();
    this.log = options.logger?.child({ component: 'keeper', module: options.module });
    this.gone = new Promise((resolve) => (this.markGone = resolve));
    child.stdin.on('error', () => {}); // EPIPE when the keeper died: its exit is handled below
    createInterface({ input: child.stdout }).on('line', (line) => this.onLine(line));
    child.on('error', (err) => this.onKeeperEnd(`cannot run the keeper: ${err.message}`));
    child.on('close', (code, signal) => this.onKeeperEnd(`the keeper exited (${signal ? `signal ${signal}` : `code ${code}`}) before its application was gone`));
  }

  static spawn(options: KeeperSpawnOptions): Keeper {
    const child = spawn(process.execPath, [KEEPER_MAIN, '--state', options.stateFile, '--module', options.module], {
      detached: true,
      cwd: '/',
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    return new Keeper(child, options);
  }

  /** The keeper's pid (undefined if it could not be spawned). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The keeper process is still running. */
  get alive(): boolean {
    return !this.exited && this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(spec: KeeperStartSpec): void {
    this.send({ op: 'start', command: spec.command, cwd: spec.cwd, env: spec.env, until: spec.until, log: spec.log ?? null });
  }

  /** Moves the deadline later (an earlier or equal one is ignored by the keeper). */
  extend(untilMonotonicMs: number): void {
    this.send({ op: 'extend', until: untilMonotonicMs });
  }

  /** Stop command, SIGTERM, SIGKILL; resolves when no process of the application is left. */
  stop(spec: KeeperStopSpec): Promise<void> {
    this.send({ op: 'stop', command: spec.command, timeout: spec.timeout, env: spec.env });
    return this.gone;
  }

  /** Resolves when no process of the application is left. */
  whenGone(): Promise<void> {
    return this.gone;
  }

  /** Emergency: SIGKILL the keeper and the application's group now; `gone` follows. */
  kill(): void {
    if (this.child.pid !== undefined && this.alive) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (this.pgid !== undefined) signalGroup(this.pgid, 'SIGKILL');
  }

  /**
   * For an agent that exits now: closes the pipe (the keeper then holds the
   * deadline alone, or stops a farm application at once) and lets this
   * process exit without waiting for the keeper.
   */
  detach(): void {
    this.detached = true;
    this.child.stdin.end();
    this.child.stdout.destroy();
    this.child.unref();
  }

  private send(request: KeeperRequest): void {
    if (!this.alive || this.detached) {
      this.log?.debug({ op: request.op }, 'keeper not running: request dropped');
      return;
    }
    this.child.stdin.write(`${JSON.stringify(request)}\n`);
  }

  private onLine(line: string): void {
    if (this.detached || line.trim() === '') return;
    let report: KeeperReport;
    try {
      report = JSON.parse(line) as KeeperReport;
    } catch {
      this.log?.warn({ line }, 'unreadable line from the keeper');
      return;
    }
    this.log?.debug({ report }, 'keeper report');
    switch (report.ev) {
      case 'started':
        this.appPid = report.pid;
        this.pgid = report.pgid;
        this.emit('started', { pid: report.pid, pgid: report.pgid });
        break;
      case 'exited':
        this.emit('exited', { code: report.code, signal: report.signal });
        break;
      case 'fenced':
        this.emit('fenced', { lateMs: report.lateMs });
        break;
      case 'stopped':
        this.emit('stopped', { how: report.how });
        break;
      case 'error':
        this.reportError(report.message);
        break;
      case 'gone':
        this.reportGone();
        break;
      default:
        this.log?.warn({ line }, 'unknown report from the keeper');
    }
  }

  /**
   * The keeper ended. If it did so without reporting `gone` (crashed, killed),
   * its application may still run: kill the group ourselves, so that nothing
   * is orphaned, then report `gone`.
   */
  private onKeeperEnd(why: string): void {
    if (this.exited) return;
    this.exited = true;
    if (this.goneSeen || this.detached) return;
    void (async () => {
      if (this.pgid !== undefined && signalGroup(this.pgid, 'SIGKILL')) await waitGroupGone(this.pgid, 10_000);
      rmSync(this.options.stateFile, { force: true });
      this.reportError(why);
      this.reportGone();
    })();
  }

  private reportError(message: string): void {
    this.log?.warn({ reason: 'KEEPER_ERROR' }, message);
    // An 'error' event without a listener would throw: the log line above is then enough.
    if (this.listenerCount('error') > 0) this.emit('error', { message });
  }

  private reportGone(): void {
    if (this.goneSeen) return;
    this.goneSeen = true;
    this.markGone();
    this.emit('gone');
  }
}

/**
 * The keeper process: runs one application and holds its lease deadline.
 * Started by the agent (keeper.ts) as `node keeper-main.js --state FILE
 * --module NAME`, in a session of its own, driven by JSON lines on stdin.
 *
 * Its one promise: it never exits while its application still runs, and the
 * application never outlives the deadline. Hence:
 * - the application runs in a process group of its own, and every kill goes
 *   to the whole group; its top process also gets a parent-death SIGKILL
 *   (setpriv), in case the keeper itself is killed with -9;
 * - when the agent goes away (stdin ends), a deadline is kept (the lease may
 *   still be valid) and the application killed at it; without a deadline
 *   (farm) the application is stopped at once;
 * - the deadline timer is checked against CLOCK_MONOTONIC when it fires,
 *   since timers may fire a little early;
 * - the application's environment carries a token (SKYHA_KEEPER_TOKEN, also
 *   in the state file), so that a restarted agent can still recognise what is
 *   left of it should the keeper itself have been killed (leftovers.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, closeSync, constants, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { KEEPER_TOKEN_ENV, monotonicNow, type KeeperReport, type KeeperRequest, type KeeperState, type StopHow } from './keeper.js';
import { groupAlive, runScript, signalGroup } from './script.js';

/** SIGTERM → SIGKILL when the keeper stops the application on its own (agent gone, keeper signalled). */
const DEFAULT_STOP_TIMEOUT = 5000;
const GONE_POLL_MS = 50;
/** After a stop command that succeeded, how long the application may take to leave before SIGTERM. */
const AFTER_SCRIPT_MS = 250;
/** Longest single timer; longer deadlines are reached in steps (Node clamps delays above 2^31−1 ms). */
const MAX_TIMER_MS = 3_600_000;
/** The last stretch before a deadline, waited for by turns of the event loop (timers are too coarse). */
const SPIN_MS = 5;

type Phase = 'idle' | 'running' | 'stopping' | 'fencing' | 'ending';

class KeeperProcess {
  private phase: Phase = 'idle';
  private app: ChildProcess | undefined;
  private pgid: number | undefined;
  private cwd = '/';
  private env: Record<string, string> = {};
  private logFd: number | undefined;
  private until: number | null = null;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private deadlineImmediate: NodeJS.Immediate | undefined;
  private goneTimer: NodeJS.Timeout | undefined;
  private groupGone = false;
  private readonly goneWaiters: Array<() => void> = [];
  /** Aborts a running stop script (a fence or an urgent stop kills it). */
  private stopScript: AbortController | undefined;
  private urgent = false;
  private outputBroken = false;
  private finished = false;

  constructor(
    private readonly stateFile: string | undefined,
    private readonly module: string,
  ) {}

  run(): void {
    process.stdout.on('error', () => (this.outputBroken = true)); // the agent is gone: nobody to tell
    process.stderr.on('error', () => {});
    process.on('SIGHUP', () => {}); // no terminal of ours, but never die of one
    process.on('SIGTERM', () => this.onSignal('SIGTERM'));
    process.on('SIGINT', () => this.onSignal('SIGINT'));
    process.on('uncaughtException', (err) => this.crash(err));
    process.on('unhandledRejection', (err) => this.crash(err));
    const lines = createInterface({ input: process.stdin });
    lines.on('line', (line) => this.onLine(line));
    lines.on('close', () => this.onAgentGone());
  }

  private onLine(line: string): void {
    if (line.trim() === '') return;
    let request: KeeperRequest;
    try {
      request = JSON.parse(line) as KeeperRequest;
    } catch {
      this.report({ ev: 'error', message: `unreadable request: ${line.slice(0, 200)}` });
      return;
    }
    switch (request?.op) {
      case 'start':
        this.start(request);
        break;
      case 'extend':
        this.extend(request.until);
        break;
      case 'stop':
        void this.stop(request.command, request.timeout, request.env);
        break;
      default:
        this.report({ ev: 'error', message: `unknown request: ${line.slice(0, 200)}` });
    }
  }

  private start(spec: Extract<KeeperRequest, { op: 'start' }>): void {
    if (this.phase !== 'idle') {
      this.report({ ev: 'error', message: `start refused: the application was already started (${this.phase})` });
      return;
    }
    if (typeof spec.command !== 'string' || typeof spec.cwd !== 'string' || (spec.until !== null && typeof spec.until !== 'number')) {
      this.report({ ev: 'error', message: 'start refused: command, cwd and until are required' });
      return;
    }
    this.cwd = spec.cwd;
    const token = randomUUID();
    this.env = { ...(spec.env ?? {}), [KEEPER_TOKEN_ENV]: token };
    if (spec.log) {
      try {
        this.logFd = openSync(spec.log, 'a', 0o640);
      } catch (err) {
        this.report({ ev: 'error', message: `cannot open the log ${spec.log}: ${(err as Error).message}; the output goes to the keeper's stderr` });
      }
    }
    // A deadline already past: the lease is over, the application must not run at all.
    if (spec.until !== null && monotonicNow() >= spec.until) {
      this.phase = 'ending';
      this.note(`not started: the deadline passed ${Math.round(monotonicNow() - spec.until)} ms before the start request`);
      this.report({ ev: 'fenced', lateMs: Math.round(monotonicNow() - spec.until) });
      this.finish(0);
      return;
    }

    const out = this.logFd ?? 2;
    const shell = ['/bin/sh', '-c', spec.command];
    const setpriv = findSetpriv(this.env.PATH);
    const [file, ...args] = setpriv ? [setpriv, '--pdeathsig', 'SIGKILL', '--', ...shell] : shell;
    let app: ChildProcess;
    try {
      app = spawn(file!, args, { cwd: spec.cwd, env: this.env, detached: true, stdio: ['ignore', out, out] });
    } catch (err) {
      this.fail(`cannot start the application: ${(err as Error).message}`);
      return;
    }
    app.on('error', (err) => {
      if (app.pid === undefined) this.fail(`cannot start the application in ${spec.cwd}: ${err.message}`);
    });
    if (app.pid === undefined) return; // the 'error' event follows
    this.app = app;
    this.pgid = app.pid; // detached: the shell leads a new session and process group
    this.phase = 'running';
    this.until = spec.until;
    this.armDeadline();
    this.writeState({ keeperPid: process.pid, appPid: app.pid, pgid: app.pid, startedAt: new Date().toISOString(), module: this.module, token });
    this.note(`started (pid ${app.pid})${spec.until === null ? '' : `, deadline in ${Math.round(spec.until - monotonicNow())} ms`}`);
    this.report({ ev: 'started', pid: app.pid, pgid: app.pid });
    app.on('exit', (code, signal) => {
      this.report({ ev: 'exited', code, signal });
      // Look at the group now rather than at the next poll: after a kill, `gone` is what a failover waits for.
      if (this.goneTimer) clearTimeout(this.goneTimer);
      this.goneTimer = undefined;
      this.watchGroup();
    });
  }

  private extend(until: number): void {
    if (typeof until !== 'number' || !Number.isFinite(until)) {
      this.report({ ev: 'error', message: 'extend refused: until must be a number' });
      return;
    }
    // Only an application with a deadline has one to move (also while it stops: the lease is still ours); a later one only.
    if ((this.phase !== 'running' && this.phase !== 'stopping') || this.until === null || until <= this.until) return;
    this.until = until;
    this.armDeadline();
  }

  private armDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    if (this.deadlineImmediate) clearImmediate(this.deadlineImmediate);
    this.deadlineTimer = undefined;
    this.deadlineImmediate = undefined;
    if (this.until === null) return;
    const left = this.until - monotonicNow();
    if (left <= 0) {
      this.fence();
      return;
    }
    // Timers have millisecond steps and may fire a little early: re-check against the clock when one fires,
    // and cover the last few milliseconds by turns of the event loop rather than another timer.
    if (left <= SPIN_MS) {
      this.deadlineImmediate = setImmediate(() => this.armDeadline());
      return;
    }
    this.deadlineTimer = setTimeout(() => this.armDeadline(), Math.min(Math.floor(left - SPIN_MS), MAX_TIMER_MS));
  }

  /** The deadline passed unrenewed: the lease is ending, no grace. */
  private fence(): void {
    if (this.phase === 'fencing' || this.phase === 'ending' || this.pgid === undefined) return;
    const lateMs = Math.round(Math.max(0, monotonicNow() - (this.until ?? monotonicNow())));
    signalGroup(this.pgid, 'SIGKILL');
    this.stopScript?.abort();
    this.phase = 'fencing';
    this.note(`fenced: the deadline passed unrenewed (${lateMs} ms late); the process group was killed`);
    this.report({ ev: 'fenced', lateMs });
    void this.whenGone().then(() => this.finish(0));
  }

  private async stop(command: string | null, timeout: number, env: Record<string, string> | undefined): Promise<void> {
    if (this.phase === 'idle') {
      // Nothing was started: nothing to stop.
      this.phase = 'ending';
      this.finish(0);
      return;
    }
    if (this.phase === 'stopping') {
      // A second stop only matters if it is more urgent (a fence from the agent: no time left).
      if (!(timeout > 0)) this.killNow();
      return;
    }
    if (this.phase !== 'running') return;
    const pgid = this.pgid!;
    // The deadline timer stays armed: a slow stop script must not keep a primary past its lease.
    this.phase = 'stopping';
    const wait = Number.isFinite(timeout) && timeout > 0 ? timeout : 0;
    let how: StopHow = 'term';

    if (command && wait > 0 && !this.groupGone) {
      this.note(`stopping: running the stop command`);
      this.stopScript = new AbortController();
      const result = await runScript(command, {
        cwd: this.cwd,
        env: { ...this.env, ...(env ?? {}) },
        timeout: wait,
        signal: this.stopScript.signal,
        onOutput: (chunk) => this.writeLog(chunk),
      });
      this.stopScript = undefined;
      if (!result.ok) this.note(`the stop command ${result.timedOut ? `timed out after ${wait} ms and was killed` : `failed (code ${result.code}, signal ${result.signal})`}`);
      how = 'script';
      // A brief look: an application that the script stopped may need a moment to leave.
      if (!this.groupGone && result.ok) await this.whenGone(Math.min(wait, AFTER_SCRIPT_MS));
    }
    if ((this.phase as Phase) !== 'stopping') return; // fenced meanwhile: the fence finishes
    if (!this.groupGone && !this.urgent && wait > 0) {
      how = 'term';
      signalGroup(pgid, 'SIGTERM');
      this.watchGroup();
      await this.whenGone(wait);
    }
    if ((this.phase as Phase) !== 'stopping') return;
    if (!this.groupGone || this.urgent) {
      if (!this.groupGone) {
        how = 'kill';
        signalGroup(pgid, 'SIGKILL');
      }
      this.watchGroup();
      await this.whenGone();
    }
    if ((this.phase as Phase) !== 'stopping') return;
    if (this.urgent) how = 'kill';
    this.note(`stopped (${how})`);
    this.report({ ev: 'stopped', how });
    this.finish(0);
  }

  /** An urgent stop: SIGKILL the application and any stop script now. */
  private killNow(): void {
    this.urgent = true;
    this.stopScript?.abort();
    if (this.pgid !== undefined) signalGroup(this.pgid, 'SIGKILL');
    this.watchGroup();
  }

  private onAgentGone(): void {
    if (this.phase === 'idle') {
      this.phase = 'ending';
      this.finish(0);
    } else if (this.phase === 'running') {
      if (this.until === null) {
        this.note('the agent is gone: stopping the application (no deadline to hold)');
        void this.stop(null, DEFAULT_STOP_TIMEOUT, undefined);
      } else {
        this.note(`the agent is gone: holding the deadline (${Math.round(this.until - monotonicNow())} ms left)`);
      }
    }
  }

  private onSignal(signal: NodeJS.Signals): void {
    if (this.phase === 'idle') {
      this.phase = 'ending';
      this.finish(0);
    } else if (this.phase === 'running') {
      this.note(`${signal} received: stopping the application`);
      void this.stop(null, DEFAULT_STOP_TIMEOUT, undefined);
    } else if (this.phase === 'stopping') {
      this.killNow();
    }
  }

  /** Polls the group once its main process is gone (or a kill was sent) until no process is left. */
  private watchGroup(): void {
    if (this.groupGone || this.goneTimer || this.pgid === undefined) return;
    const pgid = this.pgid;
    const poll = (): void => {
      this.goneTimer = undefined;
      // Until the top process is reaped (its exit reported), it counts as alive even as a zombie.
      if (this.mainRunning() || groupAlive(pgid)) {
        this.goneTimer = setTimeout(poll, GONE_POLL_MS);
        return;
      }
      this.groupGone = true;
      for (const w of this.goneWaiters.splice(0)) w();
      // Gone by itself while running: nobody else will finish.
      if (this.phase === 'running') {
        this.phase = 'ending';
        this.finish(0);
      }
    };
    poll();
  }

  private mainRunning(): boolean {
    return this.app !== undefined && this.app.exitCode === null && this.app.signalCode === null;
  }

  /** Resolves when the group is gone, or after `ms` (if given). */
  private whenGone(ms?: number): Promise<void> {
    if (this.groupGone) return Promise.resolve();
    this.watchGroup();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      this.goneWaiters.push(done);
      if (ms !== undefined) timer = setTimeout(done, ms);
    });
  }

  /** The application is gone (or never ran): report it, clean up, exit. */
  private finish(code: number): void {
    if (this.finished) return;
    this.finished = true;
    this.phase = 'ending';
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    if (this.deadlineImmediate) clearImmediate(this.deadlineImmediate);
    if (this.goneTimer) clearTimeout(this.goneTimer);
    if (this.stateFile) rmSync(this.stateFile, { force: true });
    this.report({ ev: 'gone' }, () => process.exit(code));
    if (this.logFd !== undefined) closeSync(this.logFd);
    this.logFd = undefined;
    // If the agent does not read (frozen), do not wait for the pipe.
    setTimeout(() => process.exit(code), 1000).unref();
  }

  private fail(message: string): void {
    this.report({ ev: 'error', message });
    this.finish(1);
  }

  private crash(err: unknown): void {
    // Never leave the application running: kill it before anything else can fail.
    if (this.pgid !== undefined) signalGroup(this.pgid, 'SIGKILL');
    this.stopScript?.abort();
    if (this.stateFile && this.pgid !== undefined && !groupAlive(this.pgid)) rmSync(this.stateFile, { force: true });
    const message = `keeper failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`;
    try {
      writeSync(2, `${message}\n`);
    } catch {
      // stderr gone
    }
    this.report({ ev: 'error', message }, () => process.exit(1));
    setTimeout(() => process.exit(1), 200).unref();
  }

  private writeState(state: KeeperState): void {
    if (!this.stateFile) return;
    const tmp = `${this.stateFile}.tmp-${process.pid}`;
    try {
      writeFileSync(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
      renameSync(tmp, this.stateFile);
    } catch (err) {
      this.report({ ev: 'error', message: `cannot write the state file ${this.stateFile}: ${(err as Error).message}` });
    }
  }

  private report(report: KeeperReport, then?: () => void): void {
    if (this.outputBroken) {
      then?.();
      return;
    }
    process.stdout.write(`${JSON.stringify(report)}\n`, () => then?.());
  }

  /** A line for people in the application's log, so that a fence is visible where the application's output is. */
  private note(text: string): void {
    if (this.logFd === undefined) return;
    this.writeLog(Buffer.from(`[skyha keeper ${new Date().toISOString()}] ${this.module}: ${text}\n`));
  }

  private writeLog(chunk: Buffer): void {
    try {
      writeSync(this.logFd ?? 2, chunk);
    } catch {
      // a full or vanished log must not stop the keeper
    }
  }
}

function findSetpriv(path: string | undefined): string | undefined {
  const dirs = [...(path ?? '').split(delimiter).filter(Boolean), '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    const candidate = join(d, 'setpriv');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function parseArgs(argv: readonly string[]): { state?: string; module: string } {
  let state: string | undefined;
  let module = 'application';
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--state') state = argv[++i];
    else if (argv[i] === '--module') module = argv[++i] ?? module;
  }
  return state === undefined ? { module } : { state, module };
}

const args = parseArgs(process.argv.slice(2));
new KeeperProcess(args.state, args.module).run();

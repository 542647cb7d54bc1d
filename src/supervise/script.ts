/**
 * Scripts (stop commands, command checkers) and the process-group primitives
 * that the keeper and the leftover cleanup share with them.
 *
 * A script runs as `/bin/sh -c COMMAND` in a process group of its own, so
 * that a timeout can kill everything it started, not only the shell: a script
 * whose background child hangs must leave nothing behind. For the same
 * reason, whatever is left in the group when the shell ends is killed too.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Logger } from '../observe/log.js';

export interface ScriptOptions {
  cwd: string;
  env: Record<string, string>;
  /** Milliseconds from the start; then the whole process group gets SIGKILL. */
  timeout: number;
  logger?: Logger;
  /** Aborting kills the script's group at once (a fence cannot wait for a stop script). */
  signal?: AbortSignal;
  /** Every chunk of stdout and stderr as it comes (the keeper copies it to the application's log). */
  onOutput?: (chunk: Buffer) => void;
  /** How much of the end of the output to keep; default 4 KiB. */
  tailBytes?: number;
}

export interface ScriptResult {
  /** Exit code 0 within the timeout. */
  ok: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  durationMs: number;
  /** The last `tailBytes` of stdout and stderr together, for details and logs. */
  outputTail: string;
}

/** After the shell ends, how long its output may take to drain before we stop waiting for it. */
const DRAIN_MS = 200;

export function runScript(command: string, options: ScriptOptions): Promise<ScriptResult> {
  const started = performance.now();
  const tailBytes = options.tailBytes ?? 4096;
  let tail = Buffer.alloc(0);
  const keep = (chunk: Buffer): void => {
    options.onOutput?.(chunk);
    tail = Buffer.concat([tail, chunk]);
    if (tail.length > tailBytes) tail = tail.subarray(tail.length - tailBytes);
  };

  return new Promise((resolve) => {
    let timedOut = false;
    let settled = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let drainTimer: NodeJS.Timeout | undefined;

    const child = spawn('/bin/sh', ['-c', command], { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const pgid = child.pid;
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);

    const timer = setTimeout(() => {
      timedOut = true;
      if (pgid !== undefined) signalGroup(pgid, 'SIGKILL');
    }, Math.max(0, options.timeout));
    const onAbort = (): void => {
      if (pgid !== undefined) signalGroup(pgid, 'SIGKILL');
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();

    const settle = (result: Omit<ScriptResult, 'durationMs' | 'outputTail' | 'ok'>, extra = ''): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (drainTimer) clearTimeout(drainTimer);
      options.signal?.removeEventListener('abort', onAbort);
      child.stdout.destroy();
      child.stderr.destroy();
      const outputTail = (tail.toString('utf8') + extra).replace(/^\uFFFD+/, '');
      const full: ScriptResult = { ok: result.code === 0 && !result.timedOut, ...result, durationMs: Math.round(performance.now() - started), outputTail };
      options.logger?.debug({ command, code: full.code, signal: full.signal, timedOut: full.timedOut, durationMs: full.durationMs }, `script ended: ${command}`);
      resolve(full);
    };
    const finish = (): void => settle({ code: exit?.code ?? null, signal: exit?.signal ?? null, timedOut });

    child.on('error', (err) => settle({ code: null, signal: null, timedOut }, `${tail.length ? '\n' : ''}cannot run the script in ${options.cwd}: ${err.message}`));
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      // Whatever the shell left behind in its group goes with it.
      if (pgid !== undefined) signalGroup(pgid, 'SIGKILL');
      // A grandchild that left the group may still hold the pipes: do not wait for it forever.
      drainTimer = setTimeout(finish, DRAIN_MS);
    });
    child.on('close', finish);
  });
}

/** Sends `signal` to every process of the group; false when there is none. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) throw new Error(`internal: refusing to signal process group ${pgid}`);
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPERM') return true;
    return false;
  }
}

/**
 * Whether a process exists and is not a zombie. A zombie has finished; it
 * only waits for a parent (or an init that may reap slowly) to collect it.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = readStat(pid);
  return stat === undefined ? true : stat.state !== 'Z';
}

/** One live member per group, so that polling a long-lived group costs one read, not a scan of /proc. */
const knownMember = new Map<number, number>();

/**
 * Whether any process of the group is alive (zombies do not count: an init
 * that reaps orphans late must not delay `gone`).
 */
export function groupAlive(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) {
    knownMember.delete(pgid);
    return false;
  }
  const cached = knownMember.get(pgid);
  if (cached !== undefined && isLiveMember(cached, pgid)) return true;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true; // no /proc: trust kill(2)
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (isLiveMember(pid, pgid)) {
      knownMember.set(pgid, pid);
      return true;
    }
  }
  knownMember.delete(pgid);
  return false;
}

/** The live (non-zombie) processes of a group, from /proc. */
export function groupMembers(pgid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  return entries.filter((e) => /^\d+$/.test(e) && isLiveMember(Number(e), pgid)).map(Number);
}

/** Resolves true once no process of the group is left, false if `deadlineMs` passes first. */
export async function waitGroupGone(pgid: number, deadlineMs: number, everyMs = 50): Promise<boolean> {
  const end = performance.now() + deadlineMs;
  for (;;) {
    if (!groupAlive(pgid)) return true;
    if (performance.now() >= end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function isLiveMember(pid: number, pgid: number): boolean {
  const stat = readStat(pid);
  return stat !== undefined && stat.pgrp === pgid && stat.state !== 'Z';
}

/** The state and process group from /proc/PID/stat; the command name may hold spaces and parentheses. */
function readStat(pid: number): { state: string; pgrp: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const pgrp = Number(fields[2]);
  if (state === undefined || !Number.isInteger(pgrp)) return undefined;
  return { state, pgrp };
}

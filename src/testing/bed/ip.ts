/**
 * Running `ip` and `tc` for the test bed. A failed command throws an error
 * that carries the whole command line and its stderr, because "exit 2" alone
 * says nothing when a namespace test breaks on somebody else's machine.
 * The synchronous variants exist for `process.on('exit')` and the stale sweep,
 * where nothing asynchronous can run.
 */
import { execFile, execFileSync } from 'node:child_process';

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${[command, ...args].join(' ')} failed (${exitCode === null ? 'no exit code' : `exit ${exitCode}`}): ${stderr.trim() || '(no stderr)'}`);
    this.name = 'CommandError';
  }
}

/** Runs `command args…` (feeding it `input`) and resolves with its stdout; rejects with a CommandError. */
export function run(command: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const code = typeof err.code === 'number' ? err.code : null;
      const fed = input === undefined ? '' : ` (input: ${JSON.stringify(input)})`;
      reject(new CommandError(command, args, code, (stderr || err.message) + fed));
    });
    child.stdin?.on('error', () => undefined); // EPIPE when the command exits without reading: its exit status tells
    child.stdin?.end(input);
  });
}

/** The same, blocking. */
export function runSync(command: string, args: readonly string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { status?: number | null; stderr?: string; message: string };
    throw new CommandError(command, args, e.status ?? null, e.stderr || e.message);
  }
}

export const ip = (...args: string[]): Promise<string> => run('ip', args);
export const tc = (...args: string[]): Promise<string> => run('tc', args);
/** Several ip commands (one per element, without the leading "ip") in one process, optionally inside namespace `ns`. */
export const ipBatch = (commands: readonly string[], ns?: string): Promise<string> => run('ip', [...(ns ? ['-n', ns] : []), '-batch', '-'], commands.join('\n') + '\n');
export const ipSync = (...args: string[]): string => runSync('ip', args);

/** True when the error says the object is already gone, which cleanup treats as done. */
export function isNotFound(err: unknown): boolean {
  return err instanceof CommandError && /Cannot find device|No such file or directory|does not exist|No such process|Invalid "netns" value|Cannot open network namespace/i.test(err.stderr);
}

/** Runs a cleanup step; "already gone" is success, anything else is returned as a message. */
export async function tolerant(step: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await step();
    return undefined;
  } catch (err) {
    return isNotFound(err) ? undefined : (err as Error).message;
  }
}

/** The PIDs of the processes in network namespace `ns` (none when it does not exist). */
export function netnsPidsSync(ns: string): number[] {
  try {
    return parsePids(ipSync('netns', 'pids', ns));
  } catch {
    return [];
  }
}

export async function netnsPids(ns: string): Promise<number[]> {
  try {
    return parsePids(await ip('netns', 'pids', ns));
  } catch {
    return [];
  }
}

function parsePids(out: string): number[] {
  return out.split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number);
}

/** A ClusterRunner launcher that starts each member inside its host's network namespace in the test bed. */
import type { TestBed } from './bed/bed.js';
import type { Launcher, RunningProcess } from './cluster-runner.js';

export class BedLauncher implements Launcher {
  constructor(private readonly bed: TestBed) {}

  spawn(member: string, argv: string[], options: { env?: Record<string, string>; logFile: string }): RunningProcess {
    const p = this.bed.spawn(member, argv[0]!, argv.slice(1), { ...(options.env ? { env: options.env } : {}), stdoutFile: options.logFile, stderrFile: options.logFile });
    return { pid: p.pid, exited: p.exited, kill: (s) => p.kill(s) };
  }
}

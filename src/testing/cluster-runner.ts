/**
 * Runs a cluster's members as real `skyha agent` / `skyha witness`
 * processes, on loopback addresses (LocalLauncher) or inside the test bed's
 * network namespaces (a launcher built on TestBed), and asks them what they
 * think through their HTTP endpoints. Shared by integration tests and
 * `npm run bench:failover`.
 */
import { spawn } from 'node:child_process';
import { mountPoints, unmountAll } from '../replication/read-only-view.js';
import { closeSync, openSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MemberStatusReport } from '../agent/status.js';
import { ApiClient, localCredentials } from '../api/client.js';
import { requireConfig } from '../config/load.js';
import type { ClusterFiles, ClusterSpec, MemberSpec } from './cluster-files.js';
import { waitFor } from './wait.js';

export const SKYHA_BIN = fileURLToPath(new URL('../../../bin/skyha.js', import.meta.url));

export interface RunningProcess {
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

export interface Launcher {
  /** Starts `argv` for `member` (on its host), output appended to `logFile`. */
  spawn(member: string, argv: string[], options: { env?: Record<string, string>; logFile: string }): RunningProcess;
}

/** Every member on this machine's loopback addresses. */
export class LocalLauncher implements Launcher {
  spawn(_member: string, argv: string[], options: { env?: Record<string, string>; logFile: string }): RunningProcess {
    const fd = openSync(options.logFile, 'a');
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], env: { ...process.env, ...options.env } });
    closeSync(fd);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    return { pid: child.pid!, exited, kill: (s) => void child.kill(s) };
  }
}

interface Member extends MemberSpec {
  role: 'node' | 'witness';
}

export class ClusterRunner {
  readonly members: Member[];
  readonly running = new Map<string, RunningProcess>();

  constructor(
    readonly files: ClusterFiles,
    spec: ClusterSpec,
    private readonly launcher: Launcher,
  ) {
    this.members = [...spec.nodes.map((m) => ({ ...m, role: 'node' as const })), ...(spec.witnesses ?? []).map((m) => ({ ...m, role: 'witness' as const }))];
  }

  member(name: string): Member {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  logFile(name: string): string {
    return join(this.files.dir, `${name}.log`);
  }

  start(name: string): RunningProcess {
    if (this.running.has(name)) throw new Error(`${name} already runs`);
    const m = this.member(name);
    // SKYHA_TEST_NODE_ARGS: extra Node options for the members (e.g. --cpu-prof when profiling a benchmark).
    const nodeArgs = (process.env.SKYHA_TEST_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const argv = [process.execPath, ...nodeArgs, SKYHA_BIN, m.role === 'node' ? 'agent' : 'witness', '--config', this.files.config, m.role === 'node' ? '--node' : '--name', name];
    const p = this.launcher.spawn(name, argv, { logFile: this.logFile(name) });
    this.running.set(name, p);
    void p.exited.then(() => {
      if (this.running.get(name) === p) this.running.delete(name);
    });
    return p;
  }

  startAll(): void {
    for (const m of this.members) this.start(m.name);
  }

  /** kill -9 of the member's agent (its applications are not touched). */
  kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<unknown> {
    const p = this.running.get(name);
    if (!p) return Promise.resolve();
    p.kill(signal);
    return p.exited;
  }

  /** SIGTERM to every member, then SIGKILL to whatever did not exit within `deadline`. Returns the exit of each. */
  async stopAll(deadline = 15_000): Promise<Record<string, { code: number | null; signal: NodeJS.Signals | null }>> {
    const out: Record<string, { code: number | null; signal: NodeJS.Signals | null }> = {};
    const all = [...this.running.entries()];
    for (const [, p] of all) p.kill('SIGCONT');
    for (const [, p] of all) p.kill('SIGTERM');
    await Promise.all(
      all.map(async ([name, p]) => {
        const timer = setTimeout(() => p.kill('SIGKILL'), deadline);
        out[name] = await p.exited;
        clearTimeout(timer);
      }),
    );
    // An agent killed with -9 leaves its read-only mounts of a secondary's directories (the next one would take
    // them down): take down what is under the cluster's directory, so that it can be removed.
    const dir = realpathSync(this.files.dir);
    unmountAll(mountPoints().filter((m) => m === dir || m.startsWith(`${dir}/`)));
    this.apiClient?.client.close();
    this.apiClient = undefined;
    return out;
  }

  url(name: string, path: string): string {
    const m = this.member(name);
    return `http://${m.address}:${m.apiPort ?? 7401}${path}`;
  }

  /**
   * A client of the members' APIs with the credentials of an operator on one
   * of the nodes (a member's certificate), as the CLI would have.
   */
  get api(): { client: ApiClient; config: import('../config/model.js').ClusterConfig } {
    if (!this.apiClient) {
      const { config } = requireConfig(this.files.config, { checkTls: false });
      this.apiClient = { client: new ApiClient(config, localCredentials(config)), config };
    }
    return this.apiClient;
  }
  private apiClient: { client: ApiClient; config: import('../config/model.js').ClusterConfig } | undefined;

  /** A request to a member's API as an operator; rejects when it does not answer. */
  request<T = unknown>(name: string, method: string, path: string, body?: unknown, timeout = 2000): Promise<{ status: number; body: T }> {
    const { client, config } = this.api;
    const m = [...config.nodes, ...config.witnesses].find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return client.request<T>(m, method, path, body, timeout);
  }

  async status(name: string, timeout = 500): Promise<MemberStatusReport | undefined> {
    try {
      const answer = await this.request<MemberStatusReport>(name, 'GET', '/v1/status', undefined, timeout);
      return answer.status === 200 ? answer.body : undefined;
    } catch {
      return undefined;
    }
  }

  async health(name: string, module: string, timeout = 500): Promise<number | undefined> {
    try {
      const res = await fetch(this.url(name, `/health/${module}`), { signal: AbortSignal.timeout(timeout) });
      await res.arrayBuffer();
      return res.status;
    } catch {
      return undefined;
    }
  }

  /** The nodes whose /health/MODULE answers 200 now (asked in parallel). */
  async healthyNodes(module: string, nodes?: string[]): Promise<string[]> {
    const names = nodes ?? this.members.filter((m) => m.role === 'node').map((m) => m.name);
    const codes = await Promise.all(names.map((n) => this.health(n, module)));
    return names.filter((_, i) => codes[i] === 200);
  }

  /** Waits until exactly one node serves the mirror module as primary (optionally not `not`); returns it. */
  async waitPrimary(module: string, options: { not?: string; deadline?: number; every?: number } = {}): Promise<string> {
    return waitFor(
      `a primary of ${module}${options.not ? ` other than ${options.not}` : ''}`,
      async () => {
        const up = await this.healthyNodes(module);
        return up.length === 1 && up[0] !== options.not ? up[0] : undefined;
      },
      { deadline: options.deadline ?? 15_000, every: options.every ?? 25 },
    );
  }

  /** Waits until every running member sees every other running member alive, over links connected both ways. */
  async waitSettled(deadline = 15_000): Promise<void> {
    await waitFor(
      'every member alive and linked to every other',
      async () => {
        const names = [...this.running.keys()];
        const reports = await Promise.all(names.map((n) => this.status(n)));
        return reports.every((r) => r && r.members.filter((m) => names.includes(m.name)).every((m) => m.liveness === 'alive' && m.link.outbound === 'connected' && m.link.inbound));
      },
      { deadline },
    );
  }

  /** The application's PID on `node` as the agent reports it. */
  async appPid(node: string, module: string): Promise<number | undefined> {
    return (await this.status(node))?.modules.find((m) => m.name === module)?.app.pid;
  }
}

/**
 * `gate.engine: haproxy`: the gate of one farm module served by HAProxy (for
 * operators who want its speed), driven by skyha. skyha renders haproxy.cfg
 * once per HAProxy process (render-config.ts), runs HAProxy as its child in
 * the foreground, and applies every change of a backend's health, admin
 * state, weight or address through the runtime API (runtime-api.ts): a
 * reload would drop HAProxy's counters and, in its old process, keep serving
 * by the old states for as long as old connections last.
 *
 * Level-triggered, not edge-triggered: every change is applied by reading
 * what HAProxy has now (`show servers state`) and sending what differs from
 * what it should have, as one batch per server. A refused or lost command,
 * or an HAProxy restarted behind our back, is therefore mended by the next
 * poll (every 500 ms), which compares again. All runtime API calls go
 * through one queue, one at a time, in the order they were decided.
 *
 * What HAProxy cannot do the way the built-in gate does, and what happens
 * instead (each one seen in test/e2e/gate-haproxy.test.ts where testable):
 * - A backend put down or in maintenance has its open sessions shut down
 *   (`shutdown sessions server`) a connect timeout (+200 ms) after it left
 *   the pool, where the built-in gate acts at once. HAProxy then sends an
 *   idempotent request that was waiting there to another server (a retry,
 *   as for a connection closed before the answer) and answers others 502.
 *   Not at once (`on-marked-down shutdown-sessions`): that also killed
 *   requests that were only connecting to the lost node, in the middle of
 *   HAProxy's own retry, and their clients saw the connection closed.
 * - Retries need the request's body in one buffer: a body over ~15 KiB
 *   (tune.bufsize 16 KiB less headers and rewrite space) is never sent
 *   again after it reached a backend (the built-in gate keeps up to 64 KiB).
 *   When every attempt failed the client gets 503 (connections refused) or
 *   502 (closed before answering), where the built-in gate answers 502.
 * - `timeout server` is HAProxy's only server-side timeout: it bounds the
 *   wait for the response head as `response_timeout` does, but also ends a
 *   response body that stalls that long, which the built-in gate lets run.
 *   Tunnels (TCP mode, upgrades) idle both ways for an hour are closed.
 * - At `max_connections` HAProxy stops accepting (clients wait in the
 *   kernel's backlog) rather than refusing.
 * - Servers are fixed per HAProxy process: a node first named by update()
 *   after start is logged as an error and gets no traffic until HAProxy
 *   starts again (runtime `add server` is out of scope). A node no longer
 *   named is put in maintenance. A changed address is applied with `set
 *   server addr` (a host name resolved by skyha) and the server's sessions
 *   are shut down.
 * - Latency ejection (`slow_p99`): HAProxy keeps no percentile, only an
 *   average (`rtime`, over its last 1024 requests, which does not move
 *   while a server gets no requests). So, in HTTP mode with `slow_p99`
 *   set, HAProxy logs one line per request to its stdout with `%Tr` (time
 *   from the server connection to the response headers), and skyha keeps
 *   the p99 over the last 10 s from those, as the built-in gate does
 *   (HAProxy writes logs to a pipe without blocking: lines the pipe cannot
 *   take are dropped and counted by HAProxy, never waited for). A backend
 *   above the bound is drained (state `drain`), readmitted after 2 s as a
 *   probe, and fine again after 3 answers in a row under the bound; one
 *   answer above it drains it again. Unlike the built-in gate's single
 *   trial requests, a probe gets its full share of traffic until its first
 *   slow answer is logged. Without `slow_p99` there are no samples, and
 *   the report has no `p99`.
 * - `failing` (connection failures in a row) is judged from `show stat`
 *   every 500 ms, not per request: `econ` + `eresp` + `wretr` + `wredis`
 *   growing with no answer (HAProxy counts an attempt retried elsewhere as
 *   a retry of that server, not an error). It is ejected and probed the
 *   same way, and fine again after one answer. Neither judgement ever
 *   drains the last backend that takes requests.
 * - `report()` is the last poll's `show stat`, up to 500 ms old; `failed`
 *   counts the 5xx answers HAProxy made itself (frontend 5xx less the
 *   servers' 5xx).

 * If HAProxy exits unexpectedly, the gate logs it and starts it again with
 * the current states rendered into the config, backing off up to 5 s between
 * tries, for as long as the gate is open: the gate must stay up. A HAProxy
 * left running by a killed agent (its pid file names it) is killed at start.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, isIP } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SkyhaError } from '../../core/errors.js';
import type { Logger } from '../../observe/log.js';
import { keepsOpen, takesNew, type BackendReport, type BackendState, type GateEngine, type GateReport } from '../backend.js';
import { haproxyWeight, MAX_SOCKET_PATH, renderHaproxyConfig, SAMPLE_PREFIX, type HaproxyGateOptions } from './render-config.js';
import { RuntimeApi, type ServerStateRow, type StatRow } from './runtime-api.js';

export type { HaproxyGateOptions } from './render-config.js';

export type Observed = 'ok' | 'failing' | 'slow';

export interface HaproxyGateConfig extends HaproxyGateOptions {
  haproxyBinary: string;
  /** Where the config, socket, pid file and TLS bundle live; created if missing. */
  runDir: string;
  logger: Logger;
  /** The gate's own judgement of a backend changed (as the built-in gate's `onObserved`). */
  onObserved?: (node: string, from: Observed, to: Observed, why: string) => void;
}

export const POLL_EVERY = 500;
const START_DEADLINE = 10_000;
const STOP_DEADLINE = 5_000;
const RESTART_BACKOFF = [100, 250, 500, 1000, 2000, 5000];
/** An HAProxy that ran this long before it exited starts the back-off from the beginning. */
const STABLE_AFTER = 10_000;
/** Lines of HAProxy's stderr kept for the error of a start that failed. */
const STDERR_KEPT = 40;
/** Latency and failure judgement, as the built-in gate's (builtin-gate.ts createSlot). */
const ERROR_LIMIT = 3;
const SAMPLE_WINDOW = 10_000;
const MAX_SAMPLES = 256;
const MIN_SAMPLES = 20;
const RECOVER_AFTER = 3;
/** Sessions of a server out of the pool are shut this long after its connect timeout. */
const SHUT_SESSIONS_MARGIN = 200;
/** How long a judged backend stays drained before it is readmitted as a probe. */
const EJECTED_FOR = 2_000;

/** What one server should be in HAProxy. `addr` is the resolved IP, when known. */
export interface ServerTarget {
  readonly health: 'up' | 'down';
  readonly admin: 'ready' | 'drain' | 'maint';
  readonly weight: number;
  readonly addr: string | undefined;
  readonly port: number;
}

/**
 * The runtime commands that take one server from what HAProxy has (`a`) to
 * `t`, in an order that never lets the server take traffic it should not:
 * weight lowered first and raised last, restrictions (down, drain,
 * maintenance) before relaxations. A server without checks is UP the moment
 * it leaves maintenance, whatever was said of its health before, so one that
 * is to be down leaves maintenance through `drain` at weight 0 and is set
 * down before it may take anything. Open sessions are shut down at once
 * when the server moves; when it stops keeping them (down, maintenance) the
 * caller shuts them later (see leavesPool).
 */
export function planServer(proxy: string, a: ServerStateRow, t: ServerTarget): string[] {
  const s = `${proxy}/${a.server}`;
  const cmds: string[] = [];
  const w = haproxyWeight(t);
  let { weight, health, admin } = a;
  const wasOpen = admin !== 'maint' && health === 'up';
  const moved = t.addr !== undefined && (a.addr !== t.addr || a.port !== t.port);
  if (w < weight) {
    cmds.push(`set server ${s} weight ${w}`);
    weight = w;
  }
  if (moved) cmds.push(`set server ${s} addr ${t.addr} port ${t.port}`);
  if (t.admin === 'maint') {
    if (admin !== 'maint') cmds.push(`set server ${s} state maint`);
  } else {
    if (admin === 'maint') {
      if (t.health === 'down') {
        if (weight > 0) {
          cmds.push(`set server ${s} weight 0`);
          weight = 0;
        }
        cmds.push(`set server ${s} state drain`, `set server ${s} health down`);
        admin = 'drain';
        health = 'down';
      } else {
        cmds.push(`set server ${s} state ${t.admin}`);
        admin = t.admin;
        health = 'up';
      }
    }
    if (t.health === 'down' && health === 'up') cmds.push(`set server ${s} health down`);
    if (t.admin === 'drain' && admin === 'ready') cmds.push(`set server ${s} state drain`);
    if (t.health === 'up' && health === 'down') cmds.push(`set server ${s} health up`);
    if (t.admin === 'ready' && admin === 'drain') cmds.push(`set server ${s} state ready`);
  }
  if (w !== weight) cmds.push(`set server ${s} weight ${w}`);
  if (wasOpen && moved) cmds.push(`shutdown sessions server ${s}`);
  return cmds;
}

/** Whether the server goes from keeping its sessions open to not (down, maintenance): they are to be shut a connect timeout later. */
export function leavesPool(a: ServerStateRow, t: ServerTarget): boolean {
  return a.admin !== 'maint' && a.health === 'up' && !keepsOpen(t);
}

/** Whether HAProxy already has what `t` asks for (unknown address: not compared). */
export function serverMatches(a: ServerStateRow, t: ServerTarget): boolean {
  if (a.weight !== haproxyWeight(t)) return false;
  if (t.addr !== undefined && (a.addr !== t.addr || a.port !== t.port)) return false;
  if (t.admin === 'maint') return a.admin === 'maint';
  return a.admin === t.admin && a.health === t.health;
}

/** The gate's own judgement of one backend: failures in a row (from counters) and recent p99 (from log samples). */
class Judgement {
  state: Observed = 'ok';
  /** A judged backend readmitted to see whether it is fine again. */
  probing = false;
  ejectedAt = 0;
  private failures = 0;
  private goodProbes = 0;
  private readonly latency = new Float64Array(MAX_SAMPLES);
  private readonly at = new Float64Array(MAX_SAMPLES);
  private next = 0;
  private count = 0;
  private sinceCompute = 0;
  private lastCompute = -Infinity;
  /** Counters at the last poll (reset when HAProxy starts again). */
  lastErrors: number | undefined;
  lastAnswers = 0;

  constructor(
    private readonly slowP99: number | undefined,
    private readonly changed: (from: Observed, to: Observed, why: string) => void,
  ) {}

  /** Drained by the gate's own judgement (unless it would leave no backend). */
  get ejected(): boolean {
    return this.state !== 'ok' && !this.probing;
  }

  /** Time passes: an ejected backend becomes a probe. True when that happened. */
  tick(now: number): boolean {
    if (this.state === 'ok' || this.probing || now - this.ejectedAt < EJECTED_FOR) return false;
    this.probing = true;
    this.goodProbes = 0;
    return true;
  }

  /** Counters grew by `errors` connection/response errors and `answers` answers since the last poll. */
  counts(errors: number, answers: number, now: number): void {
    if (answers > 0) {
      this.failures = 0;
      if (this.state === 'failing') this.set('ok', `answered again (${answers} answer(s))`, now);
      return;
    }
    if (errors <= 0) return;
    this.failures += errors;
    if (this.state === 'failing' && this.probing) {
      this.probing = false;
      this.ejectedAt = now;
    } else if (this.state === 'ok' && this.failures >= ERROR_LIMIT) {
      this.set('failing', `${this.failures} connection or response errors in a row`, now);
    }
  }

  /** One answer's time to response headers, ms. */
  sample(latency: number, now: number): void {
    const bound = this.slowP99;
    if (bound === undefined) return;
    if (this.state === 'slow') {
      // Stragglers sent before the ejection do not count; probes do, one by one.
      if (!this.probing) return;
      if (latency > bound) {
        this.probing = false;
        this.ejectedAt = now;
        this.goodProbes = 0;
      } else if (++this.goodProbes >= RECOVER_AFTER) {
        this.clear();
        this.set('ok', `${this.goodProbes} answers in a row within slow_p99 ${bound} ms`, now);
      }
      return;
    }
    this.latency[this.next] = latency;
    this.at[this.next] = now;
    this.next = (this.next + 1) % MAX_SAMPLES;
    if (this.count < MAX_SAMPLES) this.count++;
    if (this.state !== 'ok') return;
    if (++this.sinceCompute < 16 && now - this.lastCompute < 100) return;
    const { p99, n } = this.compute(now);
    if (p99 !== undefined && p99 > bound) {
      this.clear();
      this.set('slow', `p99 ${Math.round(p99)} ms over ${n} requests > slow_p99 ${bound} ms`, now);
    }
  }

  p99(now: number): number | undefined {
    return this.compute(now).p99;
  }

  private compute(now: number): { p99: number | undefined; n: number } {
    this.sinceCompute = 0;
    this.lastCompute = now;
    const fresh: number[] = [];
    for (let i = 0; i < this.count; i++) if (now - this.at[i]! <= SAMPLE_WINDOW) fresh.push(this.latency[i]!);
    if (fresh.length < MIN_SAMPLES) return { p99: undefined, n: fresh.length };
    fresh.sort((x, y) => x - y);
    return { p99: fresh[Math.ceil(0.99 * fresh.length) - 1]!, n: fresh.length };
  }

  private clear(): void {
    this.count = 0;
    this.next = 0;
  }

  private set(to: Observed, why: string, now: number): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.probing = false;
    this.failures = 0;
    this.ejectedAt = now;
    this.changed(from, to, why);
  }
}

interface Counters {
  requests: number;
  failed: number;
  retries: number;
  nodes: Map<string, { requests: number; errors: number; retries: number }>;
}

export class HaproxyGate implements GateEngine {
  readonly cfgPath: string;
  readonly socketPath: string;
  private readonly pidPath: string;
  private readonly tlsPemPath: string;
  private readonly api: RuntimeApi;
  private readonly log: Logger;
  private readonly samples: boolean;
  private desired = new Map<string, BackendState>();
  /** The servers of the running HAProxy's config. */
  private rendered: string[] = [];
  private readonly judgements = new Map<string, Judgement>();
  private readonly resolved = new Map<string, string>();
  private readonly unknownLogged = new Set<string>();
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private running = false;
  private started = false;
  private closing = false;
  private closed: Promise<void> | undefined;
  private launching: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly shutTimers = new Map<string, NodeJS.Timeout>();
  private failures = 0;
  private boundPort: number;
  private queue: Promise<unknown> = Promise.resolve();
  private syncQueued = false;
  private pollQueued = false;
  private lastSyncError = '';
  private lastPollError = '';
  private stats: StatRow[] = [];
  /** Wall clock of the last `show stat`. */
  private statsAt = 0;
  /** Counters of earlier HAProxy processes, so that totals survive a restart. */
  private readonly base: Counters = { requests: 0, failed: 0, retries: 0, nodes: new Map() };
  private readonly stderrTail: string[] = [];

  constructor(readonly options: HaproxyGateConfig) {
    this.log = options.logger.child({ engine: 'haproxy' });
    this.cfgPath = join(options.runDir, `haproxy-${options.module}.cfg`);
    this.pidPath = join(options.runDir, `haproxy-${options.module}.pid`);
    this.tlsPemPath = join(options.runDir, `haproxy-${options.module}.pem`);
    this.socketPath = options.socketPath ?? join(options.runDir, `haproxy-${options.module}.sock`);
    this.api = new RuntimeApi(this.socketPath);
    this.samples = options.mode === 'http' && options.slowP99 !== undefined;
    this.boundPort = options.port;
    if (options.backends) this.update(options.backends);
  }

  get port(): number {
    return this.boundPort;
  }

  /** The running HAProxy's pid (tests). */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  /**
   * Writes the config, has HAProxy check it, starts HAProxy and waits until
   * its runtime socket answers, then applies the backends' states. Throws
   * SkyhaError (SKYHA_ERR_HAPROXY, or SKYHA_ERR_LISTEN when the port is
   * taken) and leaves nothing running.
   */
  async start(): Promise<void> {
    if (this.started) throw new SkyhaError('SKYHA_ERR_INTERNAL', `the HAProxy gate of ${this.options.module} was started twice`);
    this.started = true;
    if (this.socketPath.length > MAX_SOCKET_PATH) {
      throw new SkyhaError('SKYHA_ERR_HAPROXY', `the runtime socket path ${this.socketPath} is longer than ${MAX_SOCKET_PATH} bytes (a Unix socket limit); use a shorter run directory`);
    }
    mkdirSync(this.options.runDir, { recursive: true, mode: 0o700 });
    this.killLeftover();
    // Port 0 (tests): a free port now; if another process takes it first, another one.
    for (let attempt = 1; ; attempt++) {
      if (this.options.port === 0) this.boundPort = await freePort(this.options.bind);
      try {
        this.launching = this.launch();
        await this.launching;
        break;
      } catch (err) {
        if (!(this.options.port === 0 && attempt < 5 && err instanceof SkyhaError && err.code === 'SKYHA_ERR_LISTEN')) throw err;
      } finally {
        this.launching = undefined;
      }
    }
    if (this.closing) return;
    this.pollTimer = setInterval(() => this.requestPoll(), POLL_EVERY);
    this.pollTimer.unref();
  }

  update(backends: readonly BackendState[]): void {
    if (this.closing) return;
    this.desired = new Map(backends.map((b) => [b.node, b]));
    for (const b of backends) {
      if (!this.judgements.has(b.node)) this.judgements.set(b.node, this.newJudgement(b.node));
    }
    if (!this.running) return; // the next start renders these states
    for (const b of backends) {
      if (this.rendered.includes(b.node) || this.unknownLogged.has(b.node)) continue;
      this.unknownLogged.add(b.node);
      this.log.error({ backend: b.node }, `gate of ${this.options.module}: ${b.node} is not a server of the running HAProxy (servers cannot be added while it runs); it gets no traffic until HAProxy starts again`);
    }
    this.requestSync();
  }

  /** Resolves once every runtime API call decided so far (by update() and the poll) is done. */
  async applied(): Promise<void> {
    await this.queue;
  }

  report(): GateReport {
    const o = this.options;
    const row = (name: string): StatRow | undefined => this.stats.find((r) => r.name === name);
    const fe = row('FRONTEND');
    const live = this.liveCounters();
    const now = performance.now();
    const nodes = [...new Set([...this.rendered, ...this.desired.keys()])];
    const backends: BackendReport[] = nodes.map((node) => {
      const d = this.desired.get(node);
      const s = row(node);
      const j = this.judgements.get(node);
      const base = this.base.nodes.get(node);
      const p99 = j?.p99(now);
      return {
        node,
        health: d?.health ?? 'down',
        admin: d?.admin ?? 'maint',
        observed: j?.state ?? 'ok',
        activeRequests: s?.scur ?? 0,
        requests: (base?.requests ?? 0) + (live.nodes.get(node)?.requests ?? 0),
        errors: (base?.errors ?? 0) + (live.nodes.get(node)?.errors ?? 0),
        retries: (base?.retries ?? 0) + (live.nodes.get(node)?.retries ?? 0),
        // HAProxy counts seconds since the last session given to a server.
        ...(s && s.lastsess >= 0 ? { lastRequestAt: this.statsAt - s.lastsess * 1000 } : {}),
        ...(p99 !== undefined ? { p99 } : {}),
      };
    });
    return {
      module: o.module,
      engine: 'haproxy',
      port: this.boundPort,
      requests: this.base.requests + live.requests,
      failed: this.base.failed + live.failed,
      retries: this.base.retries + live.retries,
      activeConnections: fe?.scur ?? 0,
      backends,
    };
  }

  /** Stops HAProxy (SIGTERM, then SIGKILL after 5 s): it stops listening and closes every connection. */
  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.closing = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    for (const timer of this.shutTimers.values()) clearTimeout(timer);
    this.shutTimers.clear();
    await this.launching?.catch(() => undefined);
    await this.stopChild();
    await this.queue.catch(() => undefined);
    this.running = false;
    rmSync(this.socketPath, { force: true });
    rmSync(this.pidPath, { force: true });
    rmSync(this.tlsPemPath, { force: true });
  }

  // ---- HAProxy's process ----

  private async launch(): Promise<void> {
    const o = this.options;
    let tlsPem: string | undefined;
    if (o.tls) {
      let pem: string;
      try {
        pem = `${readFileSync(o.tls.cert, 'utf8').trimEnd()}\n${readFileSync(o.tls.key, 'utf8').trimEnd()}\n`;
      } catch (err) {
        throw new SkyhaError('SKYHA_ERR_CONFIG_TLS', `gate of ${o.module}: cannot read the TLS certificate or key: ${(err as Error).message}`, { cause: err });
      }
      // HAProxy 2.6 reads the key from the certificate's file (or <crt>.key): one file, readable by us only.
      writeAtomically(this.tlsPemPath, pem, 0o600);
      tlsPem = this.tlsPemPath;
    }
    const targets = this.targets();
    const backends = [...this.desired.values()].map((b) => ({ ...b, admin: targets.get(b.node)!.admin }));
    const cfg = renderHaproxyConfig({
      module: o.module,
      bind: o.bind,
      port: this.boundPort,
      mode: o.mode,
      balance: o.balance,
      backends,
      connectTimeout: o.connectTimeout,
      responseTimeout: o.responseTimeout,
      maxConnections: Math.min(o.maxConnections, connectionsTheFdLimitAllows()),
      ...(o.idempotentHeader !== undefined ? { idempotentHeader: o.idempotentHeader } : {}),
      ...(o.cookieName !== undefined ? { cookieName: o.cookieName } : {}),
      socketPath: this.socketPath,
      ...(tlsPem ? { tlsPem } : {}),
      samples: this.samples,
    });
    writeAtomically(this.cfgPath, cfg, 0o600);
    await this.validate();

    this.stderrTail.length = 0;
    const child = spawn(o.haproxyBinary, ['-f', this.cfgPath, '-db'], { stdio: ['ignore', this.samples ? 'pipe' : 'ignore', 'pipe'] });
    this.child = child;
    const startedAt = performance.now();
    let exitedEarly: string | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        exitedEarly = `could not run ${o.haproxyBinary}: ${err.message}`;
        resolve();
      });
      child.once('exit', (code, signal) => {
        exitedEarly ??= `HAProxy exited (${signal ?? `code ${code}`})`;
        resolve();
        this.onExit(child, code, signal, startedAt);
      });
    });
    createInterface({ input: child.stderr! }).on('line', (line) => this.onStderr(line));
    if (child.stdout) createInterface({ input: child.stdout }).on('line', (line) => this.onSample(line));
    if (child.pid !== undefined) writeFileSync(this.pidPath, `${child.pid}\n`);

    const deadline = performance.now() + START_DEADLINE;
    let state: ServerStateRow[] | undefined;
    let lastError = '';
    while (state === undefined) {
      if (exitedEarly !== undefined) break;
      try {
        state = await this.api.showServersState(o.module);
      } catch (err) {
        lastError = (err as Error).message;
        if (performance.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    if (state === undefined) {
      if (this.child === child) this.child = undefined;
      child.kill('SIGKILL');
      await this.exited;
      rmSync(this.pidPath, { force: true });
      const said = this.stderrTail.filter((l) => /ALERT|cannot|error/i.test(l));
      const why = exitedEarly ?? `its runtime socket did not answer within ${START_DEADLINE} ms (${lastError})`;
      const bind = said.some((l) => /cannot bind socket/.test(l));
      throw new SkyhaError(bind ? 'SKYHA_ERR_LISTEN' : 'SKYHA_ERR_HAPROXY', `gate of ${o.module}: HAProxy did not start: ${why}${said.length > 0 ? `: ${said.join(' | ')}` : ''}`, { details: [...this.stderrTail] });
    }
    this.rendered = backends.map((b) => b.node);
    this.unknownLogged.clear();
    for (const j of this.judgements.values()) j.lastErrors = undefined;
    this.running = true;
    if (this.closing) return;
    this.log.info({ pid: child.pid, port: this.boundPort, config: this.cfgPath }, `gate of ${o.module}: HAProxy ${child.pid} serves ${o.bind}:${this.boundPort} (${o.mode}, ${o.balance})`);
    this.requestSync();
    await this.queue.catch(() => undefined);
  }

  private validate(): Promise<void> {
    return new Promise((resolve, reject) => {
      execFile(this.options.haproxyBinary, ['-c', '-f', this.cfgPath], { timeout: START_DEADLINE }, (err, _stdout, stderr) => {
        if (!err) return resolve();
        const lines = String(stderr)
          .split('\n')
          .filter((l) => l.trim() !== '' && !/^\[NOTICE\]/.test(l));
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === 'ENOENT' ? `${this.options.haproxyBinary} not found` : lines.filter((l) => /ALERT/.test(l)).join(' | ') || err.message;
        reject(new SkyhaError('SKYHA_ERR_HAPROXY', `gate of ${this.options.module}: HAProxy refused the config ${this.cfgPath}: ${why}`, { details: lines, cause: err }));
      });
    });
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, startedAt: number): void {
    if (child !== this.child) return;
    this.child = undefined;
    const wasRunning = this.running;
    this.running = false;
    rmSync(this.pidPath, { force: true });
    if (this.closing || !wasRunning) return;
    this.foldCounters();
    if (performance.now() - startedAt > STABLE_AFTER) this.failures = 0;
    this.log.error({ pid: child.pid, code, signal }, `gate of ${this.options.module}: HAProxy ${child.pid} exited unexpectedly (${signal ?? `code ${code}`}); starting it again`);
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.closing || this.restartTimer) return;
    const delay = RESTART_BACKOFF[Math.min(this.failures, RESTART_BACKOFF.length - 1)]!;
    this.failures++;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closing) return;
      this.launching = this.launch();
      this.launching
        .then(() => this.log.info(`gate of ${this.options.module}: HAProxy started again`))
        .catch((err: Error) => {
          this.log.error({ err: err.message }, `gate of ${this.options.module}: HAProxy did not start again: ${err.message}`);
          this.scheduleRestart();
        })
        .finally(() => {
          this.launching = undefined;
        });
    }, delay);
  }

  private async stopChild(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    const stopped = await Promise.race([this.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), STOP_DEADLINE).unref())]);
    if (!stopped) {
      this.log.warn({ pid: child.pid }, `gate of ${this.options.module}: HAProxy ${child.pid} did not stop within ${STOP_DEADLINE} ms; killing it`);
      child.kill('SIGKILL');
      await this.exited;
    }
  }

  /** A HAProxy of this module left by an agent that was killed: it holds the port, and nobody drives it. */
  private killLeftover(): void {
    if (!existsSync(this.pidPath)) return;
    const pid = Number(readFileSync(this.pidPath, 'utf8').trim());
    rmSync(this.pidPath, { force: true });
    if (!Number.isInteger(pid) || pid <= 1) return;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return; // gone, or not Linux
    }
    if (!cmdline.includes(this.cfgPath)) return;
    this.log.warn({ pid }, `gate of ${this.options.module}: killing HAProxy ${pid} left running by an earlier agent`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  private onStderr(line: string): void {
    if (line.trim() === '') return;
    this.stderrTail.push(line);
    if (this.stderrTail.length > STDERR_KEPT) this.stderrTail.shift();
    const m = /^\[(ALERT|WARNING|NOTICE)\]\s*\((\d+)\)\s*:\s*(.*)$/.exec(line);
    const text = m ? m[3]! : line;
    const kind = m?.[1];
    const msg = `gate of ${this.options.module}: HAProxy: ${text}`;
    // HAProxy reports our own runtime commands as warnings; they are not.
    const ours = /changed from CLI|forced maintenance|forced drain|enters drain state|enters maintenance|for maintenance|leaving forced|remains in forced|by 'stats socket command'/.test(text);
    if (kind === 'NOTICE' || ours) this.log.debug({ haproxy: kind ?? 'stderr' }, msg);
    else if (kind === 'ALERT' && !/has no server available/.test(text)) this.log.error({ haproxy: kind }, msg);
    else this.log.warn({ haproxy: kind ?? 'stderr' }, msg);
  }

  private onSample(line: string): void {
    if (!line.startsWith(SAMPLE_PREFIX)) return;
    const [node, tr] = line.slice(SAMPLE_PREFIX.length).split(' ');
    const latency = Number(tr);
    if (node === undefined || !Number.isFinite(latency) || latency < 0) return;
    const j = this.judgements.get(node);
    if (j) j.sample(latency, performance.now());
  }

  // ---- states ----

  private newJudgement(node: string): Judgement {
    return new Judgement(this.options.slowP99, (from, to, why) => {
      this.options.onObserved?.(node, from, to, why);
      this.log[to === 'ok' ? 'info' : 'warn']({ backend: node, from, to }, `gate of ${this.options.module}: ${node} ${to === 'ok' ? 'recovered' : `is ${to}`}: ${why}`);
      this.requestSync();
    });
  }

  /**
   * What each server should be: the cluster's word, and the gate's own
   * judgement on top (a failing or slow backend is drained) unless that
   * would leave no backend taking requests. Servers no longer named go into
   * maintenance.
   */
  private targets(): Map<string, ServerTarget> {
    const offered = [...this.desired.values()].filter((b) => takesNew(b));
    const judgedOut = offered.filter((b) => this.judgements.get(b.node)?.ejected);
    const eject = judgedOut.length < offered.length;
    const out = new Map<string, ServerTarget>();
    for (const b of this.desired.values()) {
      const admin = eject && b.admin === 'ready' && this.judgements.get(b.node)?.ejected ? 'drain' : b.admin;
      const addr = isIP(b.host) ? b.host : this.resolved.get(b.host);
      out.set(b.node, { health: b.health, admin, weight: b.weight, addr, port: b.port });
    }
    for (const node of this.rendered) {
      if (!out.has(node)) out.set(node, { health: 'down', admin: 'maint', weight: 0, addr: undefined, port: 0 });
    }
    return out;
  }

  /** Runs `fn` after every runtime API call queued before it. */
  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private requestSync(): void {
    if (this.syncQueued || !this.running) return;
    this.syncQueued = true;
    void this.serial(async () => {
      this.syncQueued = false;
      if (!this.running) return;
      await this.sync();
    });
  }

  /** Reads what HAProxy has and sends, server by server, what differs. */
  private async sync(): Promise<void> {
    const o = this.options;
    for (const b of this.desired.values()) {
      if (isIP(b.host)) continue;
      try {
        this.resolved.set(b.host, (await lookup(b.host)).address);
      } catch (err) {
        this.syncError(`cannot resolve ${b.host} (${b.node}): ${(err as Error).message}`);
      }
    }
    let actual: ServerStateRow[];
    try {
      actual = await this.api.showServersState(o.module);
    } catch (err) {
      return this.syncError((err as Error).message);
    }
    const targets = this.targets();
    let failed = false;
    for (const a of actual) {
      const t = targets.get(a.server);
      if (!t) continue;
      if (leavesPool(a, t)) this.shutSessionsLater(a.server);
      const cmds = planServer(o.module, a, t);
      if (cmds.length === 0) continue;
      try {
        await this.api.command(...cmds);
        this.log.debug({ backend: a.server, commands: cmds }, `gate of ${o.module}: ${a.server} → health ${t.health}, ${t.admin}, weight ${t.weight}`);
      } catch (err) {
        failed = true;
        this.syncError((err as Error).message);
      }
    }
    if (!failed) this.lastSyncError = '';
  }

  /**
   * Shuts the sessions of a server that left the pool once a connect timeout
   * (and a little) has passed, if it is still out by then: requests that were
   * only connecting to it have moved on (refused or timed out, then retried
   * elsewhere); what is left waits on a node that will not answer.
   */
  private shutSessionsLater(server: string): void {
    if (this.shutTimers.has(server)) return;
    const timer = setTimeout(() => {
      this.shutTimers.delete(server);
      void this.serial(async () => {
        const t = this.targets().get(server);
        if (!this.running || (t && keepsOpen(t))) return;
        await this.api.command(`shutdown sessions server ${this.options.module}/${server}`).catch((err: Error) => this.syncError(err.message));
      });
    }, this.options.connectTimeout + SHUT_SESSIONS_MARGIN);
    this.shutTimers.set(server, timer);
  }

  private syncError(message: string): void {
    // The next poll tries again; the same error is logged once until it changes.
    if (message === this.lastSyncError || !this.running) return;
    this.lastSyncError = message;
    this.log.error(`gate of ${this.options.module}: applying backend states to HAProxy: ${message}`);
  }

  private requestPoll(): void {
    if (this.pollQueued || !this.running) return;
    this.pollQueued = true;
    void this.serial(async () => {
      this.pollQueued = false;
      if (!this.running) return;
      await this.poll();
    });
  }

  /** Counters for report() and the judgement; and a mismatch with what should be → sync. */
  private async poll(): Promise<void> {
    const o = this.options;
    let stats: StatRow[];
    let state: ServerStateRow[];
    try {
      stats = await this.api.showStat(o.module);
      state = await this.api.showServersState(o.module);
    } catch (err) {
      const message = (err as Error).message;
      if (this.running && message !== this.lastPollError) this.log.warn(`gate of ${o.module}: reading HAProxy's state: ${message}`);
      this.lastPollError = message;
      return;
    }
    this.lastPollError = '';
    this.stats = stats;
    this.statsAt = Date.now();
    const now = performance.now();
    let judgementMoved = false;
    for (const r of stats) {
      const j = this.judgements.get(r.name);
      if (!j || r.name === 'FRONTEND' || r.name === 'BACKEND') continue;
      // A failed attempt that was retried elsewhere counts as a retry of this server, not as an error.
      const errors = r.econ + r.eresp + r.wretr + r.wredis;
      const answers = o.mode === 'http' ? r.responses : r.stot - r.econ;
      if (j.lastErrors !== undefined) j.counts(errors - j.lastErrors, answers - j.lastAnswers, now);
      j.lastErrors = errors;
      j.lastAnswers = answers;
      if (j.tick(now)) judgementMoved = true;
    }
    const targets = this.targets();
    const differs = state.some((a) => {
      const t = targets.get(a.server);
      return t !== undefined && !serverMatches(a, t);
    });
    if (differs || judgementMoved) this.requestSync();
  }

  // ---- counters ----

  /** The running HAProxy's counters, in the report's terms. */
  private liveCounters(): Counters {
    const fe = this.stats.find((r) => r.name === 'FRONTEND');
    const be = this.stats.find((r) => r.name === 'BACKEND');
    const nodes = new Map<string, { requests: number; errors: number; retries: number }>();
    let serverFivexx = 0;
    for (const r of this.stats) {
      if (r.name === 'FRONTEND' || r.name === 'BACKEND') continue;
      // As the built-in gate counts: an attempt that failed is an error of its server, and a retry if it was sent again.
      nodes.set(r.name, { requests: r.stot, errors: r.econ + r.eresp + r.wretr + r.wredis, retries: r.wretr + r.wredis });
      serverFivexx += r.hrsp5xx;
    }
    const http = this.options.mode === 'http';
    return {
      requests: (http ? fe?.reqTot : fe?.stot) ?? 0,
      // HTTP: the 5xx answers HAProxy made itself (no server, every attempt failed, timeout). TCP: connections that found no server to connect to.
      failed: http ? Math.max(0, (fe?.hrsp5xx ?? 0) - serverFivexx) : Math.max(0, (be?.econ ?? 0) - (be?.wretr ?? 0) - (be?.wredis ?? 0)),
      retries: (be?.wretr ?? 0) + (be?.wredis ?? 0),
      nodes,
    };
  }

  private foldCounters(): void {
    const live = this.liveCounters();
    this.base.requests += live.requests;
    this.base.failed += live.failed;
    this.base.retries += live.retries;
    for (const [node, c] of live.nodes) {
      const b = this.base.nodes.get(node) ?? { requests: 0, errors: 0, retries: 0 };
      b.requests += c.requests;
      b.errors += c.errors;
      b.retries += c.retries;
      this.base.nodes.set(node, b);
    }
    this.stats = [];
  }
}

function writeAtomically(path: string, text: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, path);
}

async function freePort(host: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * HAProxy needs two file descriptors per proxied connection and refuses to
 * start when `maxconn` needs more than its inherited limit allows (it cannot
 * raise a hard limit). The gate's `max_connections` is capped to what the
 * agent's own limit (which HAProxy inherits) leaves room for.
 */
export function connectionsTheFdLimitAllows(limitsFile = '/proc/self/limits'): number {
  let text: string;
  try {
    text = readFileSync(limitsFile, 'utf8');
  } catch {
    return Number.MAX_SAFE_INTEGER;
  }
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(text);
  if (!m || m[2] === 'unlimited') return Number.MAX_SAFE_INTEGER;
  // Room for the runtime API, logs and listeners (the +32 of the global section, and some).
  return Math.max(1, Math.floor((Number(m[2]) - 200) / 2) - 32);
}

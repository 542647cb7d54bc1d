/**
 * A running member: `skyha agent` on a node, `skyha witness` on a witness.
 * It owns the real clock, the mutual-TLS links, the durable state, the HTTP
 * endpoint and, on a node, one supervisor per module; the decisions are the
 * member machine's (src/logic/member.ts), driven by MemberDriver exactly as
 * the simulator drives it.
 *
 * Shutdown (SIGTERM): a primary stops its application and releases its lease
 * (the module is given up on this node, so a secondary takes over at once
 * instead of waiting for the lease to run out); farm applications stop; then
 * the process exits. A second SIGTERM, or the deadline, exits at once: each
 * keeper then goes on holding its lease deadline by itself.
 */
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock, type Clock } from '../core/clock.js';
import { SkyhaError } from '../core/errors.js';
import type { ClusterConfig, FarmModuleConfig, MemberConfig as MemberEntry, MirrorModuleConfig } from '../config/model.js';
import { findMember, voters } from '../config/model.js';
import { TlsLinks } from '../link/tls-links.js';
import type { FarmMessage } from '../logic/farm-messages.js';
import type { MemberAction, MemberConfig, MemberMessage } from '../logic/member.js';
import { reason, type Reason } from '../logic/step.js';
import { ApiServer } from '../api/server.js';
import { ClusterEvents } from '../observe/cluster-events.js';
import { EventLog } from '../observe/event-log.js';
import { EventRing } from '../observe/events.js';
import { MemberMetrics } from '../observe/metrics.js';
import type { Logger } from '../observe/log.js';
import { killLeftovers } from '../supervise/leftovers.js';
import { AppSupervisor } from './app-supervisor.js';
import { ControlSocket, type ControlReply, type ControlRequest, type MirrorCommand } from './control-socket.js';
import { FarmModule } from './farm-module.js';
import { GateController } from './gate-controller.js';
import { createGateEngine } from './gate-engine.js';
import { EventRelay, type EventRelayMessage } from './event-relay.js';
import { MemberApi } from './member-api.js';
import { MemberDriver } from './member-driver.js';
import { PeerCalls, type PeerCallsMessage } from './peer-calls.js';
import { MirrorModule } from './mirror-module.js';
import { MirrorReplication } from './mirror-replication.js';
import type { Position } from '../replication/history.js';
import type { ReplResyncBeginMessage, ReplResyncMessage, ResyncMessage } from '../replication/resync-messages.js';
import { StateFile } from './state-file.js';
import { planVoterReply } from './voter-replies.js';
import { buildStatus, type MemberStatusReport } from './status.js';

/** An operator's command for a mirror module, passed to the node it concerns. */
export interface MirrorOperatorMessage {
  type: 'mirror-operator';
  module: string;
  command: MirrorCommand;
  to?: string;
  by: string;
}

/** What travels on the links: the member machine's messages, the farm modules' reports, resyncs (outside the change stream), operators' commands, calls between members' APIs, events. */
export type LinkMessage = MemberMessage | FarmMessage | ResyncMessage | MirrorOperatorMessage | PeerCallsMessage | EventRelayMessage;

/** Bytes that may wait in a link before replication waits for it to drain (under the links' drop limit). */
const REPLICATION_PENDING_BYTES = 4 * 1024 * 1024;
/**
 * Change data sent to an in-sync secondary and not yet acknowledged, at most: well inside the primary's log window
 * (64 MiB), so a secondary that applies slower than the primary reads is slowed down to, not flooded out of sync.
 */
const REPLICATION_IN_FLIGHT_BYTES = 16 * 1024 * 1024;
/** Records a secondary applies in one batch, about (their acknowledgements follow the batch). */
const APPLY_BATCH_BYTES = 2 * 1024 * 1024;

export interface AgentOptions {
  config: ClusterConfig;
  name: string;
  logger: Logger;
  clock?: Clock;
}

export class Agent {
  readonly config: ClusterConfig;
  readonly self: MemberEntry;
  readonly clock: Clock;
  readonly log: Logger;
  readonly events: EventRing;
  /** Every member's events, as this member has them (the API's and console's timeline). */
  readonly clusterEvents = new ClusterEvents();
  readonly metrics: MemberMetrics;
  private calls!: PeerCalls;
  private relay!: EventRelay;
  readonly farms = new Map<string, FarmModule>();
  readonly mirrors = new Map<string, MirrorModule>();
  readonly replications = new Map<string, MirrorReplication>();
  private readonly ackWaiters = new Set<() => void>();
  private readonly pendingPositions = new Map<string, { epoch: number; dataEpoch: number; applied: number; fencing?: number }>();
  private positionTimer: NodeJS.Timeout | undefined;
  /** Per mirror module, what must happen after the last apply (its position, its acknowledgement), in order. */
  private readonly replChains = new Map<string, Promise<void>>();
  private readonly barriers = new Map<string, (r: { ok: boolean; text: string }) => void>();
  /** The voter's latest state write: its replies are sent once it is durable. */
  private voterDurable: Promise<void> = Promise.resolve();
  /** The heartbeat last broadcast, sent again on each link that comes up. */
  private lastHeartbeat: Extract<MemberMessage, { type: 'heartbeat' }> | undefined;
  private barrierSeq = 0;
  readonly startedAt: number;
  private state!: StateFile;
  private driver!: MemberDriver;
  private links!: TlsLinks<LinkMessage>;
  private gateController: GateController | undefined;
  private control: ControlSocket | undefined;
  private api!: ApiServer;
  private stopping: Promise<void> | undefined;

  constructor(options: AgentOptions) {
    this.config = options.config;
    const self = findMember(options.config, options.name);
    if (!self) throw new SkyhaError('SKYHA_ERR_CONFIG_UNKNOWN_MEMBER', `no member named ${options.name} in ${options.config.file}`);
    this.self = self;
    this.clock = options.clock ?? systemClock;
    this.log = options.logger;
    let disk: EventLog | undefined;
    try {
      mkdirSync(self.dataDir, { recursive: true, mode: 0o700 });
      disk = new EventLog(self.dataDir);
    } catch {
      // The state file's own checks report an unusable data directory; events then live in memory only.
    }
    this.events = new EventRing(self.name, this.log, 500, disk);
    this.metrics = new MemberMetrics(() => this.status());
    this.events.subscribe((e) => this.metrics.onEvent(e));
    this.startedAt = this.clock.now();
  }

  get isNode(): boolean {
    return this.self.role === 'node';
  }

  get member(): MemberDriver {
    return this.driver;
  }

  get linkSet(): TlsLinks<LinkMessage> {
    return this.links;
  }

  /** The gates of the farm modules this node runs (undefined on a witness). */
  get gates(): GateController | undefined {
    return this.gateController;
  }

  get apiPort(): number {
    return this.api.port;
  }

  get linkPort(): number {
    return this.links.port;
  }

  async start(): Promise<void> {
    const { config, self } = this;
    const runDir = join(self.dataDir, 'run');
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    // An agent killed with -9 may have left keepers that still hold applications: their leases are not ours now.
    const leftovers = await killLeftovers(runDir);
    for (const l of leftovers) this.events.emit({ module: l.module, reason: 'LEFTOVER_KILLED', text: `killed ${l.module} left running by a previous agent (keeper ${l.keeperPid}, process group ${l.pgid})`, level: 'warn' });

    const opened = StateFile.open(self.dataDir, { member: self.name, cluster: config.name });
    this.state = opened.file;
    if (!opened.loaded) this.events.emit({ reason: 'STATE_NEW', text: `no state in ${opened.file.path}: starting as a member without a disk (the voter catches up from the others before it grants a lease)`, level: 'warn' });

    const mirrorConfigs = config.modules.filter((m): m is MirrorModuleConfig => m.kind === 'mirror');
    const memberConfig: MemberConfig = {
      self: self.name,
      nodes: config.nodes.map((n) => n.name),
      witnesses: config.witnesses.map((w) => w.name),
      timings: config.timings,
      // The links are ordered and reliable: a change is lost only with a broken connection or one the link dropped,
      // and the links say so (the 'link' input). The retransmission timer is a backstop: a secondary busy with a
      // burst of fsyncs loses nothing, and retransmitting to it (after a heartbeat, later after lease/2) sent
      // megabytes twice during catch-ups.
      replication: { lagTimeout: config.timings.lease / 2, retransmitInterval: config.timings.lease * 2, maxLog: 10_000, maxLogBytes: 64 * 1024 * 1024, maxResendBytes: REPLICATION_PENDING_BYTES },
      modules: mirrorConfigs.map((m) => ({ name: m.name, nodes: m.nodes, ...(m.preferredNode ? { preferredNode: m.preferredNode } : {}), failback: m.failback })),
    };
    this.driver = new MemberDriver(memberConfig, opened.loaded, this.clock, (a) => this.act(a));

    if (this.isNode) {
      for (const m of config.modules) {
        if (!m.nodes.includes(self.name)) continue;
        if (m.kind === 'farm') this.addFarm(m, runDir);
        else this.addMirror(m, runDir);
      }
    }

    const peers: Record<string, { host: string; port: number }> = {};
    for (const v of voters(config)) if (v.name !== self.name) peers[v.name] = { host: v.address, port: v.linkPort };
    let tls: { ca: Buffer; cert: Buffer; key: Buffer };
    try {
      tls = { ca: readFileSync(config.tls.ca), cert: readFileSync(self.tls.cert), key: readFileSync(self.tls.key) };
    } catch (err) {
      throw new SkyhaError('SKYHA_ERR_CONFIG_TLS', `cannot read the TLS material of ${self.name}: ${(err as Error).message}`, { cause: err });
    }
    this.links = new TlsLinks<LinkMessage>({
      self: self.name,
      cluster: config.name,
      tls,
      listen: { host: self.bind, port: self.linkPort },
      peers,
      logger: this.log.child({ component: 'link' }),
      // A silent connection is replaced once the member would be dead anyway: sooner, a busy moment (a slow
      // event loop, a lossy link) would cost reconnects — TLS handshakes — just when time is short.
      keepaliveInterval: config.timings.heartbeatInterval,
      idleTimeout: config.timings.deadAfter,
      // Short enough that a dial started during a partition does not outlast it by much.
      handshakeTimeout: Math.max(500, 2 * config.timings.suspectAfter),
      // A healed partition is noticed by the next dial: while a peer is unreachable, one goes out every few heartbeats.
      connectTimeout: Math.max(100, 2 * config.timings.heartbeatInterval),
      backoff: { min: Math.min(50, config.timings.heartbeatInterval), max: Math.max(100, config.timings.heartbeatInterval) },
    });
    this.links.onReceive((from, message) => {
      // Nothing reaches the machine before the agent has started: a lease won while the replicated directories
      // were still being prepared started the application as primary, and the read-only view that start-up then
      // put over them made it fail until it was given up. Peers say it all again (heartbeats, lease rounds, calls).
      if (!this.receiving) return;
      if (message.type === 'farm-report' || message.type === 'farm-admin') this.gateController?.onMessage(from, message);
      else if (message.type === 'repl-resync' || message.type === 'repl-resync-begin') this.onResync(from, message);
      else if (message.type === 'mirror-operator') this.onMirrorOperator(from, message);
      else if (message.type === 'peer-call' || message.type === 'peer-reply') this.calls.onMessage(from, message);
      else if (message.type === 'events' || message.type === 'events-since') this.relay.onMessage(from, message);
      else if (message.type === 'repl-resync-manifest') this.replications.get(message.module)?.onResyncManifest(from, message);
      else {
        this.driver.input({ type: 'receive', from, message });
        if (message.type === 'repl-ack' && this.ackWaiters.size > 0) {
          const waiters = [...this.ackWaiters];
          this.ackWaiters.clear();
          for (const w of waiters) w();
        }
      }
    });
    // A link that comes up carries our latest heartbeat at once: after a partition heals, the peer learns we are
    // alive (and replication resumes) a heartbeat interval sooner.
    this.links.onUp((peer) => {
      if (!this.receiving) return;
      if (this.lastHeartbeat) this.links.send(peer, this.lastHeartbeat);
      // Changes in flight on the old connection may be lost: a primary sends them again now, not after its backstop.
      // A resync to the peer stops first (its records may be lost too, unnumbered); the machine starts it over.
      for (const r of this.replications.values()) r.linkReplaced(peer);
      this.driver.input({ type: 'link', peer, what: 'reconnected' });
    });
    if (this.isNode) {
      const runDirOfGates = join(runDir, 'gate');
      this.gateController = new GateController({
        config,
        self,
        log: this.log.child({ component: 'gate' }),
        now: () => this.clock.now(),
        send: (to, message) => this.links.send(to, message),
        emit: (module, r, data) => this.events.emit({ module, reason: r.code, text: r.text, ...(data ? { data } : {}), ...('level' in r && r.level ? { level: r.level } : {}) }),
        farm: (module) => this.farms.get(module),
        adminOf: (module) => this.state.admin(module),
        persistAdmin: (module, admin) => this.state.setAdmin(module, admin),
        engine: (module, onObserved) => createGateEngine({ config, self, module, runDir: runDirOfGates, logger: this.log.child({ component: 'gate', module: module.name }), onObserved }),
      });
    }
    const peerNames = voters(config).map((v) => v.name).filter((n) => n !== self.name);
    this.calls = new PeerCalls(
      (to, message) => this.links.send(to, message),
      async (_from, call) => (call.op === 'status' ? this.status() : this.onControl(call.request)),
    );
    this.relay = new EventRelay(this.events, this.clusterEvents, peerNames, (to, message) => this.links.send(to, message));
    const backend = new MemberApi({
      config,
      self: self.name,
      health: (module) => this.health(module),
      status: () => this.status(),
      events: this.clusterEvents,
      metrics: this.metrics,
      calls: this.calls,
      control: async (req) => this.onControl(req),
      primaryOf: (module) => this.primaryOf(module),
    });
    this.api = new ApiServer({ host: self.bind, port: self.apiPort, ...(config.api.tls ? { tls } : {}), backend, logger: this.log.child({ component: 'api' }) });
    try {
      await this.links.start();
      await this.api.start();
    } catch (err) {
      await this.links.close().catch(() => undefined);
      await this.api.close().catch(() => undefined);
      const e = err as NodeJS.ErrnoException;
      throw new SkyhaError('SKYHA_ERR_LISTEN', `${self.name} cannot listen on ${self.bind} (link port ${self.linkPort}, API port ${self.apiPort}): ${e.code ?? e.message}`, { cause: err });
    }
    try {
      this.control = new ControlSocket(join(runDir, 'control.sock'), (req) => this.onControl(req));
      await this.control.start();
      await this.gateController?.start();
    } catch (err) {
      await Promise.all([this.gateController?.close(), this.control?.close(), this.links.close(), this.api.close()].map((p) => p?.catch(() => undefined)));
      const ports = config.modules.flatMap((m) => (m.kind === 'farm' && m.gate && m.nodes.includes(self.name) ? [`${m.name} on ${m.gate.port}`] : [])).join(', ');
      throw new SkyhaError('SKYHA_ERR_LISTEN', `${self.name} cannot start its control socket or gates${ports ? ` (${ports})` : ''}: ${(err as Error).message}`, { cause: err });
    }
    try {
      for (const r of this.replications.values()) await r.start();
    } catch (err) {
      await Promise.all([this.gateController?.close(), this.control?.close(), this.links.close(), this.api.close(), ...[...this.replications.values()].map((r) => r.close())].map((p) => p?.catch(() => undefined)));
      throw err;
    }
    // Modules an operator stopped stay stopped: out of service before the first tick can try for a lease.
    for (const name of this.mirrors.keys()) {
      const stop = this.state.stoppedBy(name);
      if (stop) this.driver.input({ type: 'given-up', module: name, reason: reason('OPERATOR_STOPPED', `${name} stays stopped on ${self.name}: ${stop.by} stopped it at ${stop.at}`) });
    }
    for (const [name, farm] of this.farms) if (this.state.stoppedBy(name)) farm.held = true;
    this.receiving = true;
    this.driver.start();
    this.relay.start();
    for (const f of this.farms.values()) f.start();
    for (const m of this.mirrors.values()) m.app.prepareSpare();
    this.events.emit({ reason: 'MEMBER_STARTED', text: `${self.role} ${self.name} of cluster ${config.name} started (links on ${self.bind}:${this.links.port}, API on ${config.api.tls ? 'https' : 'http'}://${self.bind}:${this.api.port}, profile ${config.profile})` });
  }

  private addFarm(m: FarmModuleConfig, runDir: string): void {
    let farm: FarmModule;
    // Every change of the application's state may change this node's place in the gates' pools.
    const changed = (): void => this.gateController?.localChanged(m.name);
    const app = this.supervisor(m, runDir, {
      started: () => (farm.onStarted(), changed()),
      stopped: changed,
      failed: (detail) => (farm.onFailed(detail), changed()),
      healthy: () => (farm.onHealthy(), changed()),
      checker: changed,
    });
    farm = new FarmModule(m, app, this.self.name, this.clock, (module, r, data) => this.emitReason(module, r, data));
    this.farms.set(m.name, farm);
  }

  private addMirror(m: MirrorModuleConfig, runDir: string): void {
    let mirror: MirrorModule;
    const app = this.supervisor(m, runDir, {
      started: () => mirror.onStarted(),
      stopped: () => mirror.onStopped(),
      failed: (detail) => mirror.onFailed(detail),
      healthy: () => mirror.onHealthy(),
      checker: () => undefined,
    });
    mirror = new MirrorModule(m, app, this.self.name, this.clock, (input) => this.driver.input(input), (module, r, data) => this.emitReason(module, r, data), {
      settle: () => this.shipLastWrites(m.name),
      running: (maybe) => this.replications.get(m.name)?.appState(maybe),
    });
    this.mirrors.set(m.name, mirror);
    // `{node}` in a directory lets nodes that share one machine (a demo, tests) keep their data apart.
    const roots = m.directories.map((d) => d.replaceAll('{node}', this.self.name));
    for (const r of roots) mkdirSync(r, { recursive: true });
    const stateDir = join(this.self.dataDir, 'modules', m.name);
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const others = m.nodes.filter((n) => n !== this.self.name);
    this.replications.set(
      m.name,
      new MirrorReplication({
        module: m,
        roots,
        stateDir,
        log: this.log.child({ component: 'replication', module: m.name }),
        change: (data) => this.driver.input({ type: 'change', module: m.name, data }),
        seq: () => this.driver.current.modules[m.name]?.primary?.seq,
        send: (to, message) => this.links.send(to, message),
        writable: (to) => this.links.whenWritable(to, REPLICATION_PENDING_BYTES),
        connection: (to) => this.links.connection(to),
        writableAll: async () => {
          await Promise.all(others.map((n) => this.links.whenWritable(n, REPLICATION_PENDING_BYTES)));
        },
        inFlightRoom: () => this.inFlightRoom(m.name),
        emit: (code, text, level) => this.events.emit({ module: m.name, reason: code, text, ...(level ? { level } : {}) }),
      }),
    );
  }

  private supervisor(m: FarmModuleConfig | MirrorModuleConfig, runDir: string, on: { started(): void; stopped(): void; failed(detail: string): void; healthy(): void; checker(): void }): AppSupervisor {
    let app: AppSupervisor;
    app = new AppSupervisor(m, this.config, this.self.name, runDir, this.clock, this.log.child({ component: 'app', module: m.name }), {
      started: on.started,
      stopped: on.stopped,
      failed: on.failed,
      checkerChanged: (checker, from, to, detail) => {
        this.events.emit({ module: m.name, reason: to === 'healthy' ? 'CHECKER_UP' : to === 'failed' ? 'CHECKER_DOWN' : 'CHECKER_RESET', text: `checker ${checker} of ${m.name}: ${from} → ${to} (${detail})`, data: { checker, from, to }, level: to === 'failed' ? 'warn' : 'info' });
        if (app.health === 'healthy') on.healthy();
        on.checker();
      },
    });
    return app;
  }

  private emitReason(module: string | undefined, r: Reason, data?: Record<string, string | number>): void {
    this.events.emit({ ...(module ? { module } : {}), reason: r.code, text: r.text, ...(data ? { data } : {}) });
  }

  /** Carries out one action of the member machine. */
  private act(a: MemberAction): void {
    switch (a.type) {
      case 'send':
        // A secondary's acknowledgement says the change is durable: it waits for the apply before it.
        if (a.message.type === 'repl-ack') {
          const { to, message } = a;
          const repl = this.replications.get(message.module);
          // After the apply and its history entry are durable; the next apply does not wait for the sync
          // (concurrent syncs share one fdatasync, and acknowledgements are cumulative).
          this.afterApply(message.module, () => {
            void (repl ? repl.history.sync() : Promise.resolve()).then(
              () => this.links.send(to, message),
              (err: Error) => this.log.error(`cannot make the history of ${message.module} durable: ${err.message}; not acknowledging`),
            );
          });
        } else if (a.message.type === 'lease-reply' || a.message.type === 'voter-sync-reply') {
          this.answerAsVoter(a.to, a.message);
        } else {
          if (a.message.type === 'heartbeat') this.lastHeartbeat = a.message;
          const sent = this.links.send(a.to, a.message);
          // Reported on the next turn: the driver is in the middle of a step, and the machine sends again only later.
          if (!sent && a.message.type === 'repl-change') {
            const { to, message } = a;
            queueMicrotask(() => this.driver.input({ type: 'link', peer: to, what: 'dropped', module: message.module }));
          }
        }
        return;
      case 'persist-voter':
        // The voter's replies wait for it (see 'send'); nothing else does.
        this.voterDurable = this.state.setVoter(a.disk);
        return;
      case 'persist-module':
        this.afterApply(a.module, () => {
          const repl = this.replications.get(a.module);
          this.persistModule(a.module, { epoch: a.epoch, dataEpoch: a.dataEpoch, applied: repl ? repl.durableApplied(a.applied) : a.applied, fencing: a.fencing });
        });
        return;
      case 'start-app':
        this.emitReason(a.module, a.reason, { epoch: a.epoch });
        {
          // The new primary's data continues where its data is now.
          const sec = this.driver.current.modules[a.module]?.secondary;
          // Before the application starts: its first writes are captured.
          this.replications.get(a.module)?.becomePrimary(a.epoch, { epoch: sec?.dataEpoch ?? 0, seq: sec?.applied ?? 0 });
        }
        this.mirrors.get(a.module)?.startApp(a.epoch, a.validUntil);
        return;
      case 'extend-app':
        this.mirrors.get(a.module)?.extendApp(a.validUntil);
        return;
      case 'stop-app':
        this.emitReason(a.module, a.reason);
        this.mirrors.get(a.module)?.stopApp(a.reason);
        return;
      case 'lease-ended':
        this.emitReason(a.module, a.reason, { epoch: a.epoch });
        this.replications.get(a.module)?.stopPrimary();
        this.mirrors.get(a.module)?.leaseEnded(a.reason);
        return;
      case 'send-snapshot': {
        // Only what differs, as out-of-band records (resync-source.ts); then the position, on the same ordered link.
        const repl = this.replications.get(a.module);
        if (!repl) return;
        const { to, module, epoch, seq } = a;
        void repl.resync(to, epoch, { epoch: a.dataEpoch, seq: a.applied }).then(
          (complete) => {
            // Only a snapshot on the link stops the hellos that crossed it from starting another resync.
            if (complete) {
              if (this.links.send(to, { type: 'repl-snapshot', module, epoch, seq, data: '' })) this.driver.input({ type: 'snapshot-sent', module, to });
            } else if (complete === undefined) this.log.debug({ module, to }, `a resync of ${module} to ${to} is already under way`);
          },
          (err: Error) => this.log.error(`resync of ${module} to ${to} failed: ${err.message}`),
        );
        return;
      }
      case 'apply': {
        const repl = this.replications.get(a.module);
        const { data, dataEpoch, seq } = a;
        if (repl) this.queueApply(a.module, { data: typeof data === 'string' ? Buffer.from(data) : data, at: { epoch: dataEpoch, seq } });
        return;
      }
      case 'apply-snapshot': {
        const repl = this.replications.get(a.module);
        const at = { epoch: a.dataEpoch, seq: a.seq };
        if (repl) this.afterApply(a.module, () => repl.finishResync(at), true);
        return;
      }
      case 'change-refused':
        // This node is no longer primary: what is still dirty nobody else has; it is kept as this node's own (suspects).
        this.replications.get(a.module)?.stopPrimary();
        return;
      case 'barrier-done':
        this.barriers.get(a.id)?.({ ok: a.ok, text: a.reason.text });
        return;
      case 'quorum':
        this.log.debug({ module: a.module, epoch: a.epoch, grantedBy: a.grantedBy }, `lease of ${a.module} granted by ${a.grantedBy.join(', ')}`);
        return;
      case 'event':
        this.emitReason(a.module, a.reason, a.data);
        return;
      case 'member-status':
        this.gateController?.memberChanged(a.member, a.status);
        return;
      case 'wake':
        return;
    }
  }

  /**
   * What `GET /health/MODULE` answers on this node.
   *
   * 200 when the module is up and healthy here:
   * - farm module: its application runs on this node, every checker is
   *   healthy (a module without checkers: its process runs), and the restart
   *   policy has not given it up here;
   * - mirror module: this node is its primary (role `primary`, the lease held
   *   and not past its end), its application runs, and every checker is
   *   healthy.
   * Otherwise 503 (404 for a module this node does not run).
   */
  health(module: string): { code: 200 | 503 | 404; healthy: boolean; why: string } {
    const stopped = this.state?.stoppedBy(module);
    if (stopped && (this.farms.has(module) || this.mirrors.has(module))) return { code: 503, healthy: false, why: `${module} was stopped on ${this.self.name} by ${stopped.by} at ${stopped.at}` };
    const farm = this.farms.get(module);
    if (farm) {
      if (farm.givenUp) return { code: 503, healthy: false, why: `${module} is given up on ${this.self.name} (restart policy)` };
      if (farm.app.status !== 'running') return { code: 503, healthy: false, why: `${module} is ${farm.app.status} on ${this.self.name}` };
      if (farm.app.health !== 'healthy') return { code: 503, healthy: false, why: `the checkers of ${module} say ${farm.app.health}` };
      return { code: 200, healthy: true, why: `${module} runs and is healthy on ${this.self.name}` };
    }
    const mirror = this.mirrors.get(module);
    if (mirror) {
      const slot = this.driver.current.modules[module];
      const role = slot?.mirror.role ?? 'secondary';
      if (role !== 'primary') return { code: 503, healthy: false, why: `${this.self.name} is ${role} of ${module}, not its primary` };
      const until = mirror.app.validUntil;
      if (until === undefined || until <= this.clock.now()) return { code: 503, healthy: false, why: `the lease of ${module} is not held` };
      if (mirror.app.status !== 'running') return { code: 503, healthy: false, why: `${module} is ${mirror.app.status} on ${this.self.name}` };
      if (mirror.app.health !== 'healthy') return { code: 503, healthy: false, why: `the checkers of ${module} say ${mirror.app.health}` };
      return { code: 200, healthy: true, why: `${this.self.name} is the primary of ${module} at epoch ${slot?.mirror.epoch ?? 0}, and it is healthy` };
    }
    return { code: 404, healthy: false, why: `${this.self.name} runs no module named ${module}` };
  }

  status(): MemberStatusReport {
    return buildStatus(this);
  }

  /** A command from the local control socket. */
  private onControl(req: ControlRequest): ControlReply | Promise<ControlReply> {
    switch (req.op) {
      case 'barrier': {
        const started = this.clock.now();
        return this.barrier(req.module, req.timeoutMs).then((reply) => {
          this.metrics.observeBarrier(req.module, reply.ok, (this.clock.now() - started) / 1000);
          return reply;
        });
      }
      case 'restart':
        return this.restart(req.module, req.node, req.by);
      case 'module':
        return this.stopOrStart(req.module, req.command, req.node ?? this.self.name, req.by);
      case 'whoami':
        return { ok: true, member: this.self.name };
      case 'mirror':
        return this.mirrorCommand(req.module, req.command, req.node, req.by);
      case 'admin': {
        if (!this.gateController) return { ok: false, error: `${this.self.name} is a witness: it runs no farm module` };
        this.gateController.setAdmin(req.module, req.node, req.state, req.by);
        const where = req.node === this.self.name ? 'set' : `sent to ${req.node}, which owns it`;
        return { ok: true, member: this.self.name, detail: `${req.module} on ${req.node}: ${req.state} (${where})` };
      }
    }
  }

  /**
   * An operator stops a module on a node, or starts it again. Stopped, it
   * stays stopped across agent restarts (the state file keeps it): a farm
   * module's application stops and the node leaves the gates; a mirror
   * module goes out of service here (a primary stops its application and
   * releases the lease), so that, stopped on every node, no node takes the
   * role. The API asks every node of the module, secondaries first.
   */
  private async stopOrStart(module: string, command: 'stop' | 'start', node: string, by: string): Promise<ControlReply> {
    const spec = this.config.modules.find((m) => m.name === module);
    if (!spec) return { ok: false, error: `no module named ${module} in ${this.config.name}` };
    if (!spec.nodes.includes(node)) return { ok: false, error: `${node} does not run ${module} (${spec.nodes.join(', ')})` };
    if (node !== this.self.name) {
      try {
        return await this.calls.call(node, { op: 'control', request: { op: 'module', module, command, node, by } }, 5000);
      } catch (err) {
        return { ok: false, error: `${this.self.name} could not pass the ${command} to ${node}: ${(err as Error).message}` };
      }
    }
    const was = this.state.stoppedBy(module);
    if (command === 'stop') {
      if (was) return { ok: true, member: this.self.name, detail: `${module} on ${node}: stopped already (by ${was.by} at ${was.at})` };
      const stop = { by, at: new Date().toISOString() };
      this.state.setStopped(module, stop);
      const why = reason('OPERATOR_STOPPED', `${by} stopped ${module} on ${node}: it stays stopped until started again`);
      this.events.emit({ module, reason: why.code, text: why.text, data: { node, by } });
      const farm = this.farms.get(module);
      if (farm) void farm.hold(why.text).then(() => this.gateController?.localChanged(module));
      else if (this.mirrors.has(module)) this.driver.input({ type: 'given-up', module, reason: why });
      this.gateController?.localChanged(module);
      return { ok: true, member: this.self.name, detail: `${module} on ${node}: stopping` };
    }
    if (!was) return { ok: true, member: this.self.name, detail: `${module} on ${node}: not stopped by an operator` };
    this.state.setStopped(module, undefined);
    this.events.emit({ module, reason: 'OPERATOR_STARTED', text: `${by} started ${module} on ${node} again (stopped by ${was.by} at ${was.at})`, data: { node, by } });
    this.farms.get(module)?.release(by);
    this.mirrors.get(module)?.reset(by);
    this.gateController?.localChanged(module);
    return { ok: true, member: this.self.name, detail: `${module} on ${node}: started` };
  }

  /** Who stopped a module on this node, if an operator did. */
  stoppedBy(module: string): { by: string; at: string } | undefined {
    return this.state.stoppedBy(module);
  }

  /**
   * An operator restarts a module on a node: a farm's application stops and
   * starts again (it leaves the gate meanwhile, as on a failed checker); a
   * mirror primary's application is stopped and the role machine, still
   * primary under its lease, starts it again; a module given up (or a mirror
   * node out of service) is reset, which starts it. Elsewhere it goes to the
   * node it names.
   */
  private async restart(module: string, node: string, by: string): Promise<ControlReply> {
    const spec = this.config.modules.find((m) => m.name === module);
    if (!spec) return { ok: false, error: `no module named ${module} in ${this.config.name}` };
    if (!spec.nodes.includes(node)) return { ok: false, error: `${node} does not run ${module} (${spec.nodes.join(', ')})` };
    if (node !== this.self.name) {
      try {
        return await this.calls.call(node, { op: 'control', request: { op: 'restart', module, node, by } }, 5000);
      } catch (err) {
        return { ok: false, error: `${this.self.name} could not pass the restart to ${node}: ${(err as Error).message}` };
      }
    }
    const farm = this.farms.get(module);
    const mirror = this.mirrors.get(module);
    const role = this.driver.current.modules[module]?.mirror.role;
    const what = farm ? (farm.givenUp ? 'reset (it was given up) and started' : 'restarted') : mirror?.givenUp || role === 'out-of-service' ? 'reset (it was out of service here)' : role === 'primary' ? 'restarted under the same lease' : undefined;
    const stopped = this.state.stoppedBy(module);
    if (stopped) return { ok: false, error: `${module} was stopped on ${node} by ${stopped.by} at ${stopped.at}: start it (skyha start) rather than restart it` };
    if (!what) return { ok: false, error: `${module} does not run on ${node} now (${role ?? 'no role'}): only its primary runs the application` };
    this.events.emit({ module, reason: 'OPERATOR_RESTART', text: `${by} asked for a restart of ${module} on ${node}: ${what}`, data: { node, by } });
    if (farm) {
      if (farm.givenUp) farm.reset(by);
      else void farm.app.stop(`restart asked by ${by}`).then(() => {
        if (!farm.givenUp && farm.app.status === 'stopped') farm.start();
      });
    } else if (mirror) {
      if (mirror.givenUp || role === 'out-of-service') mirror.reset(by);
      else void mirror.app.stop(`restart asked by ${by}`);
    }
    return { ok: true, member: this.self.name, detail: `${module} on ${node}: ${what}` };
  }

  /**
   * An operator's command for a mirror module, from the control socket:
   * carried out here if this node is the one it concerns (the primary for a
   * switchover, the named node otherwise), else passed to that node.
   */
  private mirrorCommand(module: string, command: MirrorCommand, node: string | undefined, by: string): ControlReply {
    const spec = this.config.modules.find((m) => m.name === module);
    if (!spec || spec.kind !== 'mirror') return { ok: false, error: `${module} is not a mirror module of ${this.config.name}` };
    if (node !== undefined && !spec.nodes.includes(node)) return { ok: false, error: `${node} does not run ${module} (${spec.nodes.join(', ')})` };
    let target = node;
    if (command === 'switchover') {
      target = this.primaryOf(module);
      if (!target) return { ok: false, error: `${this.self.name} knows no primary of ${module} to switch over from` };
      if (node === target) return { ok: false, error: `${node} is already the primary of ${module}` };
    }
    const message: MirrorOperatorMessage = { type: 'mirror-operator', module, command, ...(node ? { to: node } : {}), by };
    if (target === this.self.name) this.onMirrorOperator(this.self.name, message);
    else if (!this.links.send(target!, message)) return { ok: false, error: `no link from ${this.self.name} to ${target} to pass the ${command} on` };
    return { ok: true, member: this.self.name, detail: `${command} of ${module} ${target === this.self.name ? 'started on' : 'passed to'} ${target}` };
  }

  private onMirrorOperator(from: string, msg: MirrorOperatorMessage): void {
    if (!this.mirrors.has(msg.module)) return;
    const what = msg.command === 'switchover' ? `a switchover of ${msg.module}${msg.to ? ` to ${msg.to}` : ''}` : msg.command === 'force-failover' ? `a forced failover of ${msg.module} to ${this.self.name}: data acknowledged by barriers may be lost` : `a reset of ${msg.module} on ${this.self.name}`;
    this.events.emit({ module: msg.module, reason: `OPERATOR_${msg.command.toUpperCase().replace('-', '_')}`, text: `${msg.by} asked for ${what}${from === this.self.name ? '' : ` (via ${from})`}`, level: msg.command === 'force-failover' ? 'warn' : 'info' });
    this.driver.input({ type: 'operator', module: msg.module, command: msg.command, ...(msg.command === 'switchover' && msg.to ? { to: msg.to } : {}) });
  }

  /** Clean shutdown; `force` (second signal) exits without waiting, keepers hold the leases' deadlines. */
  stop(options: { force?: boolean; deadline?: number } = {}): Promise<void> {
    if (options.force) {
      for (const m of [...this.farms.values(), ...this.mirrors.values()]) m.app.detach();
      this.driver?.stop();
      this.relay?.stop();
      this.calls?.close();
      return Promise.all([this.gateController?.close(), this.control?.close(), this.links?.close(), this.api?.close(), ...[...this.replications.values()].map((r) => r.close())]).then(() => undefined);
    }
    this.stopping ??= this.shutdown(options.deadline ?? this.defaultDeadline());
    return this.stopping;
  }

  private defaultDeadline(): number {
    const longest = Math.max(0, ...this.config.modules.map((m) => m.stopTimeout));
    return 2 * longest + 2 * this.config.timings.lease;
  }

  private async shutdown(deadline: number): Promise<void> {
    this.events.emit({ reason: 'MEMBER_STOPPING', text: `${this.self.name} is stopping: primaries stop their applications and release their leases` });
    const why = reason('AGENT_STOPPING', `the agent on ${this.self.name} is stopping`);
    const waits: Promise<unknown>[] = [];
    for (const [name, f] of this.farms) waits.push(f.shutdown(why.text).then(() => this.gateController?.localChanged(name)));
    for (const [name, m] of this.mirrors) {
      this.driver.input({ type: 'given-up', module: name, reason: why });
      waits.push(this.until(() => m.app.status === 'stopped' && !this.holdsLease(name)));
    }
    const timedOut = await Promise.race([Promise.all(waits).then(() => false), new Promise<boolean>((resolve) => this.clock.setTimer(deadline, () => resolve(true)))]);
    if (timedOut) this.events.emit({ reason: 'MEMBER_STOP_DEADLINE', text: `${this.self.name} did not stop cleanly within ${deadline} ms; exiting, keepers hold the lease deadlines`, level: 'warn' });
    for (const m of [...this.farms.values(), ...this.mirrors.values()]) m.app.detach();
    this.driver.stop();
    await Promise.all([...this.replChains.values()].map((c) => c.catch(() => undefined)));
    this.flushPositions();
    this.relay.stop();
    this.calls.close();
    await Promise.all([this.gateController?.close(), this.control?.close(), this.links.close(), this.api.close(), ...[...this.replications.values()].map((r) => r.close())]);
    this.events.emit({ reason: 'MEMBER_STOPPED', text: `${this.self.name} stopped` });
  }

  /**
   * A module's position in the state file. A new epoch or data epoch is
   * written at once (votes and promotions rest on it); a mere advance of
   * `applied` at most once a second: the data and the history hold the
   * truth, and a position found older after a crash only makes the primary
   * send again changes that apply the same way twice.
   */
  private persistModule(module: string, position: { epoch: number; dataEpoch: number; applied: number; fencing?: number }): void {
    const old = this.state.module(module);
    this.pendingPositions.set(module, position);
    if (!old || old.epoch !== position.epoch || old.dataEpoch !== position.dataEpoch || old.fencing !== position.fencing || position.applied < old.applied) {
      this.flushPositions();
      return;
    }
    if (!this.positionTimer) {
      this.positionTimer = setTimeout(() => this.flushPositions(true), 1000);
      this.positionTimer.unref();
    }
  }

  private flushPositions(inBackground = false): void {
    clearTimeout(this.positionTimer);
    this.positionTimer = undefined;
    for (const [module, position] of this.pendingPositions) {
      if (!inBackground) this.state.setModule(module, position);
      else void this.state.setModuleInBackground(module, position).catch((err: Error) => this.log.error(`cannot write the position of ${module}: ${err.message}`));
    }
    this.pendingPositions.clear();
  }

  /**
   * Runs `fn` once everything chained before it for `module` is done (applies
   * first): a position is persisted, and an acknowledgement sent, only once
   * the data is durable. After a failed apply nothing more is acknowledged;
   * the position is cleared so that the node is resynced when it restarts.
   */
  private afterApply(module: string, fn: () => void | Promise<void>, touchesData = false): void {
    // Applies queued from now on must not overtake this step.
    if (touchesData) this.openBatches.delete(module);
    const repl = this.replications.get(module);
    const next = (this.replChains.get(module) ?? Promise.resolve()).then(async () => {
      if (repl?.broken) return;
      try {
        await fn();
      } catch (err) {
        if (!repl) throw err;
        repl.broken = (err as Error).message;
        this.pendingPositions.delete(module);
        this.state.setModule(module, { epoch: this.driver.current.modules[module]?.secondary.epoch ?? 0, dataEpoch: 0, applied: 0 });
        this.events.emit({ module, reason: 'REPLICATION_APPLY_FAILED', text: `${this.self.name} cannot apply changes of ${module} (${repl.broken}): it acknowledges nothing more and is out of sync until its agent restarts and resyncs`, level: 'error' });
      }
    });
    this.replChains.set(module, next);
  }

  /**
   * Records to apply join the module's open batch: one chain step applies
   * every record that arrived before it ran (Applier.applyBatch: patches of
   * a burst share their fsyncs). Acknowledgements and positions chained
   * after a record run after its batch, so none comes before its data is
   * durable. A batch holds about APPLY_BATCH_BYTES, so that acknowledgements
   * keep coming during a long catch-up (the primary's retransmission counts
   * from the last one).
   */
  private queueApply(module: string, item: { data: Uint8Array; at?: Position }): void {
    const open = this.openBatches.get(module);
    if (open && open.bytes < APPLY_BATCH_BYTES) {
      open.push(item);
      open.bytes += item.data.length;
      return;
    }
    const batch = Object.assign([item], { bytes: item.data.length });
    this.openBatches.set(module, batch);
    this.afterApply(module, () => {
      if (this.openBatches.get(module) === batch) this.openBatches.delete(module);
      return this.replications.get(module)?.applyBatch(batch);
    });
  }

  /** Per mirror module, the records waiting for the chain step that applies them (see queueApply). */
  /** Set once everything the machine's actions need is started (replication above all): links deliver from then on. */
  private receiving = false;

  private readonly openBatches = new Map<string, Array<{ data: Uint8Array; at?: Position }> & { bytes: number }>();

  /** A resync's begin or record, from the current primary of a module this node is secondary of, at its epoch; anything else is dropped. */
  private onResync(from: string, msg: ReplResyncMessage | ReplResyncBeginMessage): void {
    const repl = this.replications.get(msg.module);
    const slot = this.driver.current.modules[msg.module];
    if (!repl || !slot || slot.primary || slot.secondary.primary !== from || slot.secondary.epoch !== msg.epoch || !Buffer.isBuffer(msg.data)) {
      this.log.debug({ module: msg.module, from, epoch: msg.epoch }, `dropped a ${msg.type} of ${msg.module} from ${from}: not from this node's primary at its epoch`);
      return;
    }
    if (msg.type === 'repl-resync-begin') {
      repl.resyncAnnounced(msg.id);
      this.afterApply(msg.module, () => repl.resyncBegin(from, msg), true);
    } else if (repl.takesResyncRecord(msg.id)) this.queueApply(msg.module, { data: msg.data });
    else this.log.debug({ module: msg.module, from, id: msg.id }, `dropped a record of ${msg.module}'s resync ${msg.id} from ${from}: a later one began`);
  }

  /** Waits while a secondary that keeps up has more than REPLICATION_IN_FLIGHT_BYTES unacknowledged (woken by acks). */
  private async inFlightRoom(module: string): Promise<void> {
    for (;;) {
      const p = this.driver.current.modules[module]?.primary;
      if (!p) return;
      let worst = 0;
      const now = this.clock.now();
      for (const t of Object.values(p.secondaries)) {
        // Every secondary that keeps up, in sync or catching up; not one that stopped acknowledging (lag drops it).
        if (!t.connected || t.snapshotting || t.acked < 0 || now - t.lastSentAt > 2000) continue;
        let bytes = 0;
        for (let i = p.log.length - 1; i >= 0 && p.log[i]!.seq > t.acked; i--) bytes += p.log[i]!.data.length;
        worst = Math.max(worst, bytes);
      }
      if (worst < REPLICATION_IN_FLIGHT_BYTES) return;
      // An ack wakes it; the timer is the bound in case none comes (the secondary is then dropped from the in-sync set).
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.ackWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, 100);
        this.ackWaiters.add(done);
      });
    }
  }

  /** Sends a voter's reply once what it says is durable, in the order answered (see voter-replies.ts). */
  private answerAsVoter(to: string, message: Extract<MemberMessage, { type: 'lease-reply' | 'voter-sync-reply' }>): void {
    const plan = message.type === 'lease-reply' ? planVoterReply(message, this.state.durableVoter) : { afterWrite: true };
    if (plan.now) this.links.send(to, plan.now);
    if (!plan.afterWrite) return;
    this.voterDurable.then(
      () => this.links.send(to, message),
      (err: Error) => this.log.error(`cannot store this voter's state: ${err.message}; not answering ${to}`),
    );
  }

  /**
   * The application stopped: as primary, everything it wrote is shipped before the role machine hears it (a
   * switchover's final barrier follows at once). Bounded by a lease: a watcher that does not answer must not hold
   * the role machine. What is left aborts a switchover (the role machine hears why); else it is this node's own
   * (suspects, see MirrorReplication).
   */
  private async shipLastWrites(module: string): Promise<string | undefined> {
    const repl = this.replications.get(module);
    if (!repl?.isPrimary) return undefined;
    let cancel: (() => void) | undefined;
    const outcome = await Promise.race([
      repl.shipAll().then(() => undefined, (err: Error) => err.message),
      new Promise<string>((resolve) => (cancel = this.clock.setTimer(this.config.timings.lease, () => resolve(`not done within ${this.config.timings.lease} ms`)))),
    ]);
    cancel?.();
    if (outcome !== undefined) this.log.warn(`the last writes of ${module} were not all shipped after its stop (${outcome}): a switchover is aborted; else what is left is kept as this node's own`);
    return outcome;
  }

  /** `skyha barrier MODULE`: every change made before the call is durable on every in-sync secondary, or a clear failure. */
  private async barrier(module: string, timeoutMs: number): Promise<ControlReply> {
    const repl = this.replications.get(module);
    if (!repl) return { ok: false, error: `${this.self.name} runs no mirror module named ${module}` };
    if (!repl.isPrimary) return { ok: false, error: `${this.self.name} is not the primary of ${module}: a barrier is called on the primary` };
    const deadline = this.clock.now() + timeoutMs;
    const shipped = await Promise.race([repl.shipAll().then(() => true), new Promise<false>((resolve) => this.clock.setTimer(timeoutMs, () => resolve(false)))]);
    if (!shipped) return { ok: false, error: `barrier of ${module} timed out after ${timeoutMs} ms: changes were still being read on ${this.self.name}` };
    const id = `${this.self.name}-${++this.barrierSeq}`;
    // The history (the secondaries' dirty set) is made durable meanwhile: what a barrier acknowledges survives a power loss here too.
    const historySynced = repl.history.sync().then(
      () => undefined,
      (err: Error) => err.message,
    );
    const result = await new Promise<{ ok: boolean; text: string }>((resolve) => {
      this.barriers.set(id, resolve);
      this.driver.input({ type: 'barrier', module, id, deadline });
    });
    this.barriers.delete(id);
    const historyError = await historySynced;
    if (result.ok && historyError) return { ok: false, error: `barrier of ${module}: the history of ${this.self.name} could not be made durable: ${historyError}` };
    return result.ok ? { ok: true, member: this.self.name, detail: result.text } : { ok: false, error: result.text };
  }

  /** Who this member believes is the primary of a mirror module: its own role machine's word, else (a witness) the lease holder its voter records. */
  primaryOf(module: string): string | undefined {
    const state = this.driver.current;
    const slot = state.modules[module];
    if (slot?.mirror.role === 'primary') return this.self.name;
    return slot?.mirror.primary?.node ?? state.voter.modules[module]?.record?.holder;
  }

  holdsLease(module: string): boolean {
    const m = this.driver.current.client?.modules[module];
    return m !== undefined && m.phase !== 'idle';
  }

  private until(condition: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (condition()) resolve();
        else this.clock.setTimer(20, check);
      };
      check();
    });
  }
}

/**
 * A test bed of hosts made from Linux network namespaces, for tests and
 * benchmarks that run skyha agents as real processes and break real links.
 *
 * Each host is a namespace whose one interface, eth0, is joined through a
 * veth pair to a bridge in the root namespace. The bridge holds the first
 * address of a private /24, so the test process itself reaches every host
 * directly (to ask an agent's HTTP API, say); the hosts hold the next ones.
 * Every name the bed creates starts with a per-run prefix ("sk" + 4 hex
 * digits); destroy() removes exactly those names and the processes the bed
 * started, and a registry file (registry.ts) lets the next bed sweep what a
 * test that died could not.
 *
 * Faults come with their inverse: kill, freeze/thaw (by PID), linkDown/
 * linkUp, partition/heal, impair/clearImpair (impair.ts).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { waitFor } from '../wait.js';
import { applyNetem, checkImpairment, describeImpairment, insertRelay, removeNetem, removeRelay, type Impairment, type ImpairMethod, type RelayWiring } from './impair.js';
import { ip, ipBatch, ipSync, netnsPids, tolerant } from './ip.js';
import { claimPrefix, claimSubnet, listLinks, listNamespaces, processIdentity, releaseRecord, removeBedResourcesSync, saveRecord, sweepStaleBeds, type BedRecord } from './registry.js';

export { sweepStaleBeds } from './registry.js';
export type { Impairment, ImpairMethod } from './impair.js';

export interface BedOptions {
  hosts: string[];
  /** Shown in the registry file, to tell which test a leftover bed came from. */
  label?: string;
}

export interface BedHost {
  readonly name: string;
  /** The network namespace. */
  readonly ns: string;
  /** The host's address on eth0 (and in the bed's /24). */
  readonly address: string;
  /** The root-namespace end of the host's veth pair: its "cable". */
  readonly rootIf: string;
}

export interface SpawnOptions {
  /** Added to the test process's environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** Append stdout to this file instead of keeping its tail in memory. */
  stdoutFile?: string;
  stderrFile?: string;
  /** 'pipe' to write to the process (BedProcess.stdin); default 'ignore'. */
  stdin?: 'ignore' | 'pipe';
  /** How much of each output stream to keep in memory; default 64 KiB. */
  tailChars?: number;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The name of the root namespace in partitions: the test process, reached at the bridge address. */
export const ROOT = 'root';

/**
 * Partitions are silent, as real ones are: each side gets a permanent
 * neighbour entry for the other with this MAC, which no interface has, so
 * frames leave and nobody takes them. connect() hangs and established
 * connections stall (the entry is looked up for every packet) until heal.
 * A blackhole route would be simpler, but there connect() and send() fail
 * at once with EINVAL, which no real network does.
 */
const NOBODY_MAC = '02:00:5e:5b:ed:00';

/** One process the bed started, in a host's namespace or in the root namespace. */
export class BedProcess {
  readonly pid: number;
  readonly exited: Promise<ExitStatus>;
  /** Present with `stdin: 'pipe'`. */
  readonly stdin: Writable | null;
  /** Set by TestBed.freeze, cleared by thaw. */
  frozen = false;
  private status: ExitStatus | undefined;
  private readonly tails = { stdout: '', stderr: '' };

  constructor(
    readonly host: string,
    readonly command: string,
    readonly args: readonly string[],
    private readonly child: ChildProcess,
    private readonly tailChars: number,
  ) {
    if (child.pid === undefined) throw new Error(`could not start ${command} on ${host}`);
    this.pid = child.pid;
    this.stdin = child.stdin;
    child.on('error', () => undefined); // a failed kill() of a process that just exited; 'exit' tells the rest
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.status = { code, signal };
        resolve(this.status);
      }),
    );
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = child[name];
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        const t = this.tails[name] + chunk;
        this.tails[name] = t.length > this.tailChars ? t.slice(-this.tailChars) : t;
      });
    }
  }

  get running(): boolean {
    return this.status === undefined;
  }

  get exitStatus(): ExitStatus | undefined {
    return this.status;
  }

  /** Sends `signal` to this PID (a no-op once it has exited, so a recycled PID is never hit). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) this.child.kill(signal);
  }

  /** The last `tailChars` of stdout ('' when it goes to a file). */
  stdout(): string {
    return this.tails.stdout;
  }

  stderr(): string {
    return this.tails.stderr;
  }

  /** Resolves once the kept output matches `pattern`; rejects if the stream closes first or at the deadline. */
  waitOutput(pattern: RegExp, options: { deadline?: number; stream?: 'stdout' | 'stderr' } = {}): Promise<RegExpMatchArray> {
    const { deadline = 10_000, stream = 'stdout' } = options;
    const source = this.child[stream];
    const now = pattern.exec(this.tails[stream]);
    if (now) return Promise.resolve(now);
    if (!source) return Promise.reject(new Error(`${stream} of ${this} goes to a file: there is nothing to wait on`));
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => {
        done();
        reject(new Error(`${this} ${why} before printing ${pattern}; ${stream} so far: ${JSON.stringify(this.tails[stream].slice(-500))}, stderr: ${JSON.stringify(this.tails.stderr.slice(-500))}`));
      };
      const onData = (): void => {
        const m = pattern.exec(this.tails[stream]);
        if (m) {
          done();
          resolve(m);
        }
      };
      const onClose = (): void => {
        onData();
        fail(`closed ${stream}${this.status ? ` (exit ${JSON.stringify(this.status)})` : ''}`);
      };
      const timer = setTimeout(() => fail(`did not match within ${deadline} ms`), deadline);
      const done = (): void => {
        clearTimeout(timer);
        source.off('data', onData);
        source.off('close', onClose);
      };
      source.on('data', onData);
      source.on('close', onClose);
      if (source.closed) onClose();
    });
  }

  toString(): string {
    return `${this.command} on ${this.host} (pid ${this.pid})`;
  }
}

interface Host extends BedHost {
  readonly index: number;
}

interface ActiveImpairment {
  method: ImpairMethod;
  impairment: Impairment;
  relay?: BedProcess;
}

interface Endpoint {
  name: string;
  /** null: the root namespace. */
  ns: string | null;
  dev: string;
  address: string;
}

export class TestBed {
  readonly prefix: string;
  readonly label: string | null;
  readonly bridge: string;
  /** "10.X.Y.0/24" */
  readonly subnet: string;
  /** The root namespace's address in the bed (10.X.Y.1), on the bridge. */
  readonly bridgeAddress: string;
  readonly hosts: readonly BedHost[];
  private readonly byName = new Map<string, Host>();
  private readonly procs: BedProcess[] = [];
  /** Cut pairs, as "a|b" with a < b. */
  private readonly cuts = new Set<string>();
  private readonly impaired = new Map<string, ActiveImpairment>();
  private readonly onExit = (): void => this.cleanupSync();
  private destroying: Promise<void> | undefined;

  /**
   * Creates the hosts, after sweeping the leftovers of dead beds. Host names
   * are letters, digits, '-', '_' and '.'; 'root' is reserved.
   */
  static async create(options: BedOptions): Promise<TestBed> {
    const names = checkHostNames(options.hosts);
    sweepStaleBeds();
    const record = claimNewPrefix(names, options.label ?? null);
    let bed: TestBed | undefined;
    try {
      const base = await reserveSubnet(record);
      bed = new TestBed(record, base, names);
      await bed.build();
      return bed;
    } catch (err) {
      if (bed) await bed.destroy().catch(() => undefined);
      else releaseRecord(record);
      throw err;
    }
  }

  private constructor(
    private readonly record: BedRecord,
    base: string,
    names: readonly string[],
  ) {
    this.prefix = record.prefix;
    this.label = record.label;
    this.bridge = `${this.prefix}-br`;
    this.subnet = `${base}.0/24`;
    this.bridgeAddress = `${base}.1`;
    this.hosts = names.map((name, index) => {
      const h: Host = { name, ns: `${this.prefix}-${name}`, address: `${base}.${index + 2}`, rootIf: `${this.prefix}-h${index}`, index };
      this.byName.set(name, h);
      return h;
    });
    process.on('exit', this.onExit);
  }

  private async build(): Promise<void> {
    // Batches: one `ip` process for the root namespace, one per host (an exec costs ~10 ms here).
    await ipBatch([
      `link add ${this.bridge} type bridge`,
      `addr add ${this.bridgeAddress}/24 dev ${this.bridge}`,
      `link set ${this.bridge} up`,
      ...this.hosts.flatMap((h) => [`netns add ${h.ns}`, `link add ${h.rootIf} type veth peer name eth0 netns ${h.ns}`, `link set ${h.rootIf} master ${this.bridge} up`]),
    ]);
    // allSettled: a failure must not leave other hosts' commands running behind destroy().
    const results = await Promise.allSettled(this.hosts.map((h) => ipBatch([`addr add ${h.address}/24 dev eth0`, 'link set eth0 up', 'link set lo up'], h.ns)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  host(name: string): BedHost {
    return this.hostOf(name);
  }

  /** Every process the bed started, running or not. */
  processes(): readonly BedProcess[] {
    return this.procs;
  }

  /**
   * Runs `command args…` inside the host's namespace through `ip netns exec`,
   * which execs: the PID is the command's own.
   */
  spawn(host: string, command: string, args: readonly string[] = [], options: SpawnOptions = {}): BedProcess {
    const h = this.hostOf(host);
    return this.start(h.name, 'ip', ['netns', 'exec', h.ns, command, ...args], options, command, args);
  }

  /** Runs a process in the root namespace that destroy() (and a later sweep) will still kill. */
  spawnRoot(command: string, args: readonly string[] = [], options: SpawnOptions = {}): BedProcess {
    const p = this.start(ROOT, command, [...args], options, command, args);
    this.record.rootProcesses.push(processIdentity(p.pid));
    saveRecord(this.record);
    return p;
  }

  /**
   * Sends `signal` (SIGKILL by default) to the process, by PID. A frozen
   * process acts on a catchable signal (SIGTERM) only once thawed.
   */
  kill(proc: BedProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
    this.own(proc).kill(signal);
  }

  /** SIGSTOP; resolves once the kernel reports the process stopped. */
  async freeze(proc: BedProcess): Promise<void> {
    this.own(proc).kill('SIGSTOP');
    proc.frozen = true;
    await waitFor(`${proc} to stop`, () => !proc.running || processState(proc.pid) === 'T', { deadline: 5000, every: 5 });
  }

  /** SIGCONT; resolves once the process runs again. */
  async thaw(proc: BedProcess): Promise<void> {
    this.own(proc).kill('SIGCONT');
    proc.frozen = false;
    await waitFor(`${proc} to continue`, () => !proc.running || processState(proc.pid) !== 'T', { deadline: 5000, every: 5 });
  }

  /** Pulls the host's cable: its root-side veth goes down, eth0 loses carrier. */
  async linkDown(host: string): Promise<void> {
    await ip('link', 'set', this.live().hostOf(host).rootIf, 'down');
  }

  async linkUp(host: string): Promise<void> {
    await ip('link', 'set', this.live().hostOf(host).rootIf, 'up');
  }

  /**
   * Cuts traffic between `host` and each of `others` (host names or 'root'),
   * both ways; every other pair keeps working. Silent, see NOBODY_MAC.
   */
  async partition(host: string, others: readonly string[]): Promise<void> {
    const a = this.live().endpoint(host);
    for (const other of others) {
      const b = this.endpoint(other);
      if (a.name === b.name) throw new Error(`cannot partition ${host} from itself`);
      const key = pairKey(a.name, b.name);
      if (this.cuts.has(key)) continue;
      this.cuts.add(key);
      await ip(...nsArgs(a), 'neigh', 'replace', b.address, 'lladdr', NOBODY_MAC, 'dev', a.dev, 'nud', 'permanent');
      await ip(...nsArgs(b), 'neigh', 'replace', a.address, 'lladdr', NOBODY_MAC, 'dev', b.dev, 'nud', 'permanent');
    }
  }

  /** Undoes the cuts that involve `host`, or all of them. */
  async heal(host?: string): Promise<void> {
    if (host !== undefined) this.endpoint(host);
    const problems: string[] = [];
    for (const key of [...this.cuts]) {
      const [x, y] = key.split('|') as [string, string];
      if (host !== undefined && x !== host && y !== host) continue;
      this.cuts.delete(key);
      const a = this.endpoint(x);
      const b = this.endpoint(y);
      problems.push(...compact([await tolerant(() => ip(...nsArgs(a), 'neigh', 'del', b.address, 'dev', a.dev)), await tolerant(() => ip(...nsArgs(b), 'neigh', 'del', a.address, 'dev', b.dev))]));
    }
    if (problems.length) throw new Error(`heal: ${problems.join('; ')}`);
  }

  /**
   * Delay and loss on the host's link, both directions: netem when the kernel
   * has it, else the user-space relay (see impair.ts). Replaces an earlier
   * impairment of the host. Resolves with the method used.
   */
  async impair(host: string, impairment: Impairment, options: { method?: 'auto' | ImpairMethod } = {}): Promise<ImpairMethod> {
    const h = this.live().hostOf(host);
    checkImpairment(impairment);
    const method = options.method ?? 'auto';
    await this.clearImpair(host);
    if (method !== 'relay' && (await applyNetem(h.rootIf, h.ns, impairment))) {
      this.impaired.set(host, { method: 'netem', impairment });
      return 'netem';
    }
    if (method === 'netem') throw new Error(`cannot impair ${host} (${describeImpairment(impairment)}) with netem: this kernel has no sch_netem`);
    const relay = await insertRelay(this.wiring(h), impairment, (command, args) => this.spawnRoot(command, args, { stdin: 'pipe' }));
    this.impaired.set(host, { method: 'relay', impairment, relay: relay as BedProcess });
    return 'relay';
  }

  async clearImpair(host: string): Promise<void> {
    const h = this.hostOf(host);
    const active = this.impaired.get(host);
    if (!active) return;
    this.impaired.delete(host);
    const problems = active.method === 'netem' ? await removeNetem(h.rootIf, h.ns) : await removeRelay(this.wiring(h), active.relay);
    if (problems.length) throw new Error(`clearImpair ${host}: ${problems.join('; ')}`);
  }

  /** How the host's link is impaired now, if it is. */
  impairMethod(host: string): ImpairMethod | undefined {
    return this.impaired.get(host)?.method;
  }

  /**
   * Kills every process the bed started (SIGCONT, then SIGKILL, by PID) and
   * waits for them, kills what else still runs in the bed's namespaces
   * (applications started by agents), then deletes the interfaces and
   * namespaces it created; routes, neighbour entries and qdiscs go with
   * their devices. Idempotent; throws, after doing all it can, naming what
   * it could not remove.
   */
  destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    const problems: string[] = [];
    const live = this.procs.filter((p) => p.running);
    for (const p of live) {
      p.kill('SIGCONT');
      p.kill('SIGKILL');
    }
    const deadline = (p: BedProcess): Promise<unknown> => Promise.race([p.exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    await Promise.all(live.map(deadline));
    problems.push(...live.filter((p) => p.running).map((p) => `${p} did not exit after SIGKILL`));
    try {
      await waitFor('the bed namespaces to be empty', async () => {
        const pids = (await Promise.all(this.hosts.map((h) => netnsPids(h.ns)))).flat();
        for (const pid of pids) signalPid(pid);
        return pids.length === 0;
      }, { deadline: 5000, every: 10 });
    } catch (err) {
      problems.push((err as Error).message);
    }
    this.impaired.clear();
    this.cuts.clear();
    const present = new Set(listLinks());
    const links = this.record.links.filter((l) => present.has(l));
    // Relay bridge sides (-rN) first, then the hosts' veths (their peers go too), then the bridge.
    links.sort((a, b) => linkOrder(a) - linkOrder(b));
    for (const link of links) problems.push(...compact([await tolerant(() => ip('link', 'del', link))]));
    const namespaces = new Set(listNamespaces());
    for (const ns of this.record.namespaces.filter((n) => namespaces.has(n))) problems.push(...compact([await tolerant(() => ip('netns', 'del', ns))]));
    releaseRecord(this.record);
    process.off('exit', this.onExit);
    if (problems.length) throw new Error(`destroying bed ${this.prefix} left: ${problems.join('; ')}`);
  }

  /** The test process is exiting without destroy(): best effort, synchronously. */
  private cleanupSync(): void {
    // destroy() removes this hook when it is done: here it started at most.
    for (const p of this.procs) if (p.running) signalPid(p.pid);
    removeBedResourcesSync(this.record);
    releaseRecord(this.record);
  }

  private start(host: string, file: string, argv: string[], options: SpawnOptions, command: string, args: readonly string[]): BedProcess {
    this.live();
    const fds: number[] = [];
    const out = (path: string | undefined): 'pipe' | number => {
      if (path === undefined) return 'pipe';
      fds.push(openSync(path, 'a'));
      return fds[fds.length - 1]!;
    };
    try {
      const stdio: StdioOptions = [options.stdin ?? 'ignore', out(options.stdoutFile), out(options.stderrFile)];
      const child = spawn(file, argv, { stdio, cwd: options.cwd, env: { ...process.env, ...options.env } });
      const p = new BedProcess(host, command, args, child, options.tailChars ?? 64 * 1024);
      this.procs.push(p);
      return p;
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }

  private hostOf(name: string): Host {
    const h = this.byName.get(name);
    if (!h) throw new Error(`bed ${this.prefix} has no host ${JSON.stringify(name)}; its hosts: ${[...this.byName.keys()].join(', ')}`);
    return h;
  }

  private endpoint(name: string): Endpoint {
    if (name === ROOT) return { name, ns: null, dev: this.bridge, address: this.bridgeAddress };
    const h = this.hostOf(name);
    return { name, ns: h.ns, dev: 'eth0', address: h.address };
  }

  private wiring(h: Host): RelayWiring {
    return { bridge: this.bridge, rootIf: h.rootIf, bridgeSide: `${this.prefix}-r${h.index}`, relaySide: `${this.prefix}-q${h.index}` };
  }

  private own(proc: BedProcess): BedProcess {
    if (!this.procs.includes(proc)) throw new Error(`${proc} was not started by bed ${this.prefix}`);
    return proc;
  }

  private live(): this {
    if (this.destroying) throw new Error(`bed ${this.prefix} is destroyed`);
    return this;
  }
}

let unavailable: string | false | undefined;

/**
 * Why the bed cannot run here (a reason to print when skipping), or false.
 * Needs Linux, root, and a working `ip netns` and bridge.
 */
export function bedUnavailable(): string | false {
  if (unavailable !== undefined) return unavailable;
  unavailable = probe();
  return unavailable;
}

function probe(): string | false {
  if (process.platform !== 'linux') return `network namespaces need Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  // 'p' is not a hex digit: these names never collide with a bed's prefix.
  const name = `skp${process.pid % 1_000_000}`;
  try {
    ipSync('netns', 'add', name);
    ipSync('netns', 'del', name);
    ipSync('link', 'add', name, 'type', 'bridge');
    ipSync('link', 'del', name);
  } catch (err) {
    return `ip netns or bridges are unusable: ${(err as Error).message}`;
  }
  return false;
}

function checkHostNames(hosts: readonly string[]): string[] {
  if (hosts.length === 0 || hosts.length > 250) throw new RangeError(`a bed needs 1 to 250 hosts, got ${hosts.length}`);
  const seen = new Set<string>();
  for (const h of hosts) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$/.test(h)) throw new RangeError(`bad host name ${JSON.stringify(h)}: use letters, digits, '-', '_' and '.'`);
    if (h === ROOT) throw new RangeError(`host name '${ROOT}' is reserved for the root namespace`);
    if (seen.has(h)) throw new RangeError(`host ${JSON.stringify(h)} is named twice`);
    seen.add(h);
  }
  return [...hosts];
}

/** Picks an unused prefix and records the bed's names under it before any of them exists. */
function claimNewPrefix(hosts: readonly string[], label: string | null): BedRecord {
  const taken = new Set([...listLinks(), ...listNamespaces()].map((n) => n.split('-')[0]));
  for (let attempt = 0; attempt < 100; attempt++) {
    const prefix = `sk${randomBytes(2).toString('hex')}`;
    if (taken.has(prefix)) continue;
    const record: BedRecord = {
      prefix,
      label,
      owner: processIdentity(process.pid),
      subnet: null,
      namespaces: hosts.map((h) => `${prefix}-${h}`),
      links: [`${prefix}-br`, ...hosts.flatMap((_, i) => [`${prefix}-h${i}`, `${prefix}-r${i}`, `${prefix}-q${i}`])],
      rootProcesses: [],
      createdAt: new Date().toISOString(),
    };
    if (claimPrefix(record)) return record;
  }
  throw new Error('no free bed prefix found in 100 tries');
}

/** A random /24 in 10.200.0.0/13 that no address or route of the root namespace touches; returns "10.X.Y". */
async function reserveSubnet(record: BedRecord): Promise<string> {
  const used = cidrs((await ip('-4', '-o', 'addr', 'show')) + (await ip('-4', 'route', 'show', 'table', 'all')));
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = `10.${200 + randomInt(8)}.${randomInt(256)}`;
    const subnet = `${base}.0/24`;
    const mine = cidrs(subnet)[0]!;
    if (used.some((u) => overlaps(u, mine))) continue;
    if (!claimSubnet(record.prefix, subnet)) continue;
    record.subnet = subnet;
    saveRecord(record);
    return base;
  }
  throw new Error('no free /24 found in 10.200.0.0/13');
}

interface Cidr {
  net: number;
  len: number;
}

/** Every IPv4 address or prefix in `text` (a bare address counts as a /32). */
function cidrs(text: string): Cidr[] {
  const out: Cidr[] = [];
  for (const m of text.matchAll(/\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?/g)) {
    const net = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
    out.push({ net, len: m[5] === undefined ? 32 : Number(m[5]) });
  }
  return out;
}

function overlaps(a: Cidr, b: Cidr): boolean {
  const len = Math.min(a.len, b.len);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return (a.net & mask) >>> 0 === (b.net & mask) >>> 0;
}

const pairKey = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);
const nsArgs = (e: Endpoint): string[] => (e.ns ? ['-n', e.ns] : []);
const compact = (xs: (string | undefined)[]): string[] => xs.filter((x): x is string => x !== undefined);
const linkOrder = (name: string): number => (/-r\d+$/.test(name) ? 0 : /-q\d+$/.test(name) ? 1 : /-h\d+$/.test(name) ? 2 : 3);

/** The state letter of /proc/PID/stat ('T' when stopped), or undefined when the process is gone. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

function signalPid(pid: number): void {
  for (const s of ['SIGCONT', 'SIGKILL'] as const) {
    try {
      process.kill(pid, s);
    } catch {
      // Already gone.
    }
  }
}

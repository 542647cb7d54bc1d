/**
 * `skyha demo`: the seed's picture on one machine, without root. Two nodes
 * named for two clouds (`aws-1` on 127.0.0.1, `azure-1` on 127.0.0.2) and a
 * witness (127.0.0.3), each `skyha agent`/`skyha witness` as its own process
 * on loopback; a farm module `web` (an HTTP service behind the gate on every
 * node) and a mirror module `kv` (a key-value store that writes files and
 * calls the barrier). The demo writes a real cluster directory (config,
 * certificates, data, logs) that the user can read and reuse, prints the
 * cluster's events as they happen, kills and restarts nodes when asked
 * (`skyha demo --kill aws-1`, through a socket in that directory), and stops
 * everything on Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer as createNetServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { hashToken, newToken } from '../api/auth.js';
import { ApiClient } from '../api/client.js';
import { requireConfig } from '../config/load.js';
import type { ClusterConfig, MemberConfig } from '../config/model.js';
import { SkyhaError } from '../core/errors.js';
import { createCa, issueMemberCert } from '../link/certificates.js';
import type { ClusterEvent } from '../observe/cluster-events.js';
import { killLeftovers } from '../supervise/leftovers.js';

const SKYHA_BIN = fileURLToPath(new URL('../../../bin/skyha.js', import.meta.url));
const APPS = fileURLToPath(new URL('./apps/', import.meta.url));
/** Marks a directory as the demo's, so that a new demo may replace it. */
const MARKER = 'skyha-demo.json';

/** The members, on `NET.1`, `NET.2` and `NET.3` (NET is 127.0.0 unless --net says otherwise). */
export const DEMO_MEMBERS = [
  { name: 'aws-1', role: 'node', host: 1, labels: { cloud: 'aws', region: 'eu-west-1' } },
  { name: 'azure-1', role: 'node', host: 2, labels: { cloud: 'azure', region: 'westeurope' } },
  { name: 'witness', role: 'witness', host: 3, labels: { cloud: 'onprem', region: 'office' } },
] as const;
export const DEMO_PORTS = { link: 7400, api: 7401, gate: 8080, web: 8081, kv: 8090 };

export type DemoOp = { op: 'kill' | 'start'; member: string } | { op: 'stop' };

export interface DemoOptions {
  dir: string;
  /** The first three numbers of the members' loopback addresses (default 127.0.0). */
  net?: string;
  /** Where lines for the user go. */
  say: (line: string) => void;
}

export class Demo {
  readonly dir: string;
  readonly token: string;
  private config!: ClusterConfig;
  private readonly processes = new Map<string, ChildProcess>();
  private readonly expectedExit = new Set<string>();
  private control: Server | undefined;
  private client!: ApiClient;
  private stopping: Promise<void> | undefined;
  private readonly eventsAbort = new AbortController();

  constructor(private readonly options: DemoOptions) {
    this.dir = resolve(options.dir);
    this.token = newToken();
    this.net = options.net ?? '127.0.0';
    if (!/^127\.\d{1,3}\.\d{1,3}$/.test(this.net) || this.net.split('.').some((x) => Number(x) > 255)) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `--net: expected the first three numbers of a loopback address such as 127.0.0, found ${JSON.stringify(this.net)}`);
  }

  readonly net: string;

  address(m: (typeof DEMO_MEMBERS)[number]): string {
    return `${this.net}.${m.host}`;
  }

  get socketPath(): string {
    return join(this.dir, 'demo.sock');
  }

  /** Writes the cluster's directory: config, CA and certificates, the login token; replaces an earlier demo's. */
  async prepare(): Promise<void> {
    if (existsSync(this.dir)) {
      const entries = readdirSync(this.dir);
      if (entries.length > 0 && !entries.includes(MARKER)) throw new SkyhaError('SKYHA_ERR_DEMO', `${this.dir} exists and is not a demo's directory; choose another with --dir`);
      if (existsSync(this.socketPath) && (await demoAnswers(this.socketPath))) throw new SkyhaError('SKYHA_ERR_DEMO', `a demo already runs in ${this.dir}; stop it (Ctrl-C, or \`skyha demo --stop\`) or choose another --dir`);
      await this.killStale();
      rmSync(this.dir, { recursive: true, force: true });
    }
    mkdirSync(join(this.dir, 'certs'), { recursive: true, mode: 0o700 });
    mkdirSync(join(this.dir, 'logs'), { recursive: true });
    this.writeMarker();
    const ca = await createCa('demo');
    writeFileSync(join(this.dir, 'certs', 'ca.crt'), ca.certPem);
    writeFileSync(join(this.dir, 'certs', 'ca.key'), ca.keyPem, { mode: 0o600 });
    for (const m of DEMO_MEMBERS) {
      const pair = await issueMemberCert(ca, m.name, 'demo');
      writeFileSync(join(this.dir, 'certs', `${m.name}.crt`), pair.certPem);
      writeFileSync(join(this.dir, 'certs', `${m.name}.key`), pair.keyPem, { mode: 0o600 });
    }
    writeFileSync(join(this.dir, 'token'), this.token + '\n', { mode: 0o600 });
    const file = join(this.dir, 'skyha.yaml');
    writeFileSync(file, demoConfig(this.dir, hashToken(this.token), (m) => this.address(m)));
    this.config = requireConfig(file).config;
    this.client = new ApiClient(this.config, { token: this.token });
    await checkPortsFree(this.config);
  }

  async start(): Promise<void> {
    for (const m of DEMO_MEMBERS) this.startMember(m.name);
    await this.listen();
    await this.waitUp();
  }

  startMember(name: string): string {
    const m = this.member(name);
    if (this.processes.has(name)) return `${name} runs already`;
    const log = openSync(join(this.dir, 'logs', `${name}.log`), 'a');
    // A process group of its own: Ctrl-C in the terminal reaches the demo, which stops the members in order
    // (a second signal straight to an agent would make it exit without handing its roles over).
    const child = spawn(process.execPath, [SKYHA_BIN, m.role === 'node' ? 'agent' : 'witness', '--config', this.config.file, m.role === 'node' ? '--node' : '--name', name], { stdio: ['ignore', log, log], detached: true });
    closeSync(log);
    this.processes.set(name, child);
    this.writeMarker();
    child.on('exit', (code, signal) => {
      if (this.processes.get(name) === child) this.processes.delete(name);
      if (this.expectedExit.delete(name) || this.stopping) return;
      this.options.say(`! ${name} exited (${signal ?? `code ${code}`}); see ${join(this.dir, 'logs', `${name}.log`)}; \`skyha demo --start ${name}\` starts it again`);
    });
    return `${name} started (pid ${child.pid})`;
  }

  /** Kills a member as a machine that loses power: its agent and every application it runs, at once. */
  async kill(name: string): Promise<string> {
    const m = this.member(name);
    const child = this.processes.get(name);
    if (!child) return `${name} is not running`;
    this.expectedExit.add(name);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    // The agent's keepers and applications, found by the PIDs they recorded (never by name).
    const left = await killLeftovers(join(m.dataDir, 'run'));
    return `${name} killed: agent and ${left.length} application${left.length === 1 ? '' : 's'} (kill -9)`;
  }

  /** Stops every member cleanly (SIGTERM: a primary stops and hands over), then kills what did not stop. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.eventsAbort.abort();
      this.control?.close();
      const all = [...this.processes.entries()];
      await Promise.all(
        all.map(async ([name, child]) => {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
          await exited;
          clearTimeout(timer);
          await killLeftovers(join(this.member(name).dataDir, 'run'));
        }),
      );
      this.client?.close();
      rmSync(this.socketPath, { force: true });
    })();
    return this.stopping;
  }

  /** The marker file: this demo's PID and its members' (what a later demo kills if this one was killed with -9). */
  private writeMarker(): void {
    const members = Object.fromEntries([...this.processes.entries()].map(([n, c]) => [n, c.pid]));
    writeFileSync(join(this.dir, MARKER), JSON.stringify({ pid: process.pid, started: new Date().toISOString(), members }) + '\n');
  }

  /**
   * Members left by an earlier demo in this directory whose own process died without stopping them
   * (kill -9): killed by their recorded PIDs, each checked to run this directory's config first.
   */
  private async killStale(): Promise<void> {
    let marker: { members?: Record<string, number> } = {};
    try {
      marker = JSON.parse(readFileSync(join(this.dir, MARKER), 'utf8'));
    } catch {
      return;
    }
    const config = join(this.dir, 'skyha.yaml');
    for (const [name, pid] of Object.entries(marker.members ?? {})) {
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (!cmdline.includes(config) || !cmdline.includes(name)) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
      this.options.say(`killed ${name} (pid ${pid}), left running by an earlier demo in ${this.dir}`);
    }
    for (const m of DEMO_MEMBERS) await killLeftovers(join(this.dir, 'data', m.name, 'run')).catch(() => undefined);
  }

  /** Answers `skyha demo --kill|--start|--stop` from other terminals. */
  private async listen(): Promise<void> {
    const server = createNetServer((socket) => {
      const lines = createInterface({ input: socket });
      lines.on('error', () => undefined);
      socket.on('error', () => undefined);
      lines.once('line', (line) => {
        void (async () => {
          let reply: { ok: boolean; text: string };
          try {
            const op = JSON.parse(line) as DemoOp;
            if (op.op === 'stop') {
              reply = { ok: true, text: 'stopping the demo' };
              socket.end(JSON.stringify(reply) + '\n');
              process.kill(process.pid, 'SIGTERM');
              return;
            }
            this.member(op.member);
            const text = op.op === 'kill' ? await this.kill(op.member) : this.startMember(op.member);
            this.options.say(`> ${text}`);
            reply = { ok: true, text };
          } catch (err) {
            reply = { ok: false, text: (err as Error).message };
          }
          socket.end(JSON.stringify(reply) + '\n');
        })();
      });
    });
    rmSync(this.socketPath, { force: true });
    await new Promise<void>((res, rej) => {
      server.once('error', rej);
      server.listen(this.socketPath, () => res());
    });
    this.control = server;
  }

  private async waitUp(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (const m of [...this.config.nodes, ...this.config.witnesses]) {
      for (;;) {
        const ok = await this.client.request(m, 'GET', '/v1/status', undefined, 1000).then(
          (a) => a.status === 200,
          () => false,
        );
        if (ok) break;
        if (!this.processes.has(m.name)) throw new SkyhaError('SKYHA_ERR_DEMO', `${m.name} exited at start; see ${join(this.dir, 'logs', `${m.name}.log`)}`);
        if (Date.now() > deadline) throw new SkyhaError('SKYHA_ERR_DEMO', `${m.name} did not answer on ${m.address}:${m.apiPort} within 30 s; see ${join(this.dir, 'logs', `${m.name}.log`)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Prints the cluster's events (from its start) as they happen, from whichever member is up, until stop(). */
  async followEvents(): Promise<void> {
    const members = [...this.config.nodes, ...this.config.witnesses];
    const seen = new Set<string>();
    let last = '0';
    let via = '';
    for (let i = 0; !this.eventsAbort.signal.aborted; i = (i + 1) % members.length) {
      const m = members[i]!;
      if (!this.processes.has(m.name)) continue;
      if (m.name !== via) last = '0';
      via = m.name;
      await this.client
        .stream(m, `/v1/events?after=${last}`, (data, id) => {
          if (id) last = id;
          const e = JSON.parse(data) as ClusterEvent;
          const key = `${e.member}/${e.seq}`;
          if (seen.has(key)) return;
          seen.add(key);
          this.options.say(`${e.at.slice(11, 19)}  ${e.member.padEnd(8)} ${(e.module ?? '').padEnd(4)} ${e.reason.padEnd(22)} ${e.text}`);
        }, { signal: this.eventsAbort.signal })
        .catch(() => undefined);
      if (!this.eventsAbort.signal.aborted) await new Promise((r) => setTimeout(r, 500));
    }
  }

  member(name: string): MemberConfig {
    const m = [...this.config.nodes, ...this.config.witnesses].find((x) => x.name === name);
    if (!m) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `no member named ${JSON.stringify(name)} in the demo (${DEMO_MEMBERS.map((x) => x.name).join(', ')})`);
    return m;
  }

  /** What the user needs to know, once the cluster is up. */
  welcome(): string[] {
    const nodes = DEMO_MEMBERS.filter((m) => m.role === 'node');
    return [
      `skyha demo: cluster "demo" on this machine, files in ${this.dir}`,
      '',
      ...DEMO_MEMBERS.map((m) => `  ${m.name.padEnd(8)} ${m.role.padEnd(8)} ${this.address(m).padEnd(10)} cloud=${m.labels.cloud}`),
      '',
      `  console      http://${this.address(nodes[0]!)}:${DEMO_PORTS.api}/   (any member's works; log in with the token below)`,
      `  token        ${this.token}   (user demo, role admin; also in ${join(this.dir, 'token')})`,
      `  web (farm)   http://${this.address(nodes[0]!)}:${DEMO_PORTS.gate}/  or  http://${this.address(nodes[1]!)}:${DEMO_PORTS.gate}/   (the gate on each node)`,
      `  kv (mirror)  curl -X PUT --data hello http://PRIMARY:${DEMO_PORTS.kv}/kv/greeting   (PRIMARY: ${nodes.map((n) => this.address(n)).join(' or ')})`,
      `  the CLI      SKYHA_TOKEN=$(cat ${join(this.dir, 'token')}) npx skyha status --config ${join(this.dir, 'skyha.yaml')}`,
      `  break it     npx skyha demo --kill aws-1      bring it back: npx skyha demo --start aws-1`,
      '',
      'Ctrl-C stops everything. Events:',
    ];
  }
}

function demoConfig(dir: string, tokenHash: string, address: (m: (typeof DEMO_MEMBERS)[number]) => string): string {
  const doc = {
    cluster: { name: 'demo', profile: 'local', data_dir: join(dir, 'data') },
    tls: { ca: 'certs/ca.crt', cert: 'certs/{member}.crt', key: 'certs/{member}.key' },
    nodes: Object.fromEntries(DEMO_MEMBERS.filter((m) => m.role === 'node').map((m) => [m.name, { address: address(m), labels: m.labels }])),
    witnesses: Object.fromEntries(DEMO_MEMBERS.filter((m) => m.role === 'witness').map((m) => [m.name, { address: address(m), labels: m.labels }])),
    api: { tls: false, users: { demo: { role: 'admin', token_sha256: tokenHash } } },
    log: { level: 'info', format: 'json' },
    modules: {
      web: {
        kind: 'farm',
        start: `exec "${process.execPath}" "${join(APPS, 'web-app.js')}"`,
        port: DEMO_PORTS.web,
        environment: { WEB_PORT: String(DEMO_PORTS.web) },
        gate: { port: DEMO_PORTS.gate },
        checkers: [{ kind: 'tcp', name: 'tcp', port: DEMO_PORTS.web }],
        stop_timeout: '5s',
      },
      kv: {
        kind: 'mirror',
        start: `exec "${process.execPath}" "${join(APPS, 'kv-app.js')}"`,
        environment: { KV_PORT: String(DEMO_PORTS.kv) },
        directories: [join(dir, 'kv-data', '{node}')],
        preferred_node: 'aws-1',
        // On one machine without root there is no read-only bind mount to make; on real nodes leave the default.
        read_only_on_secondaries: false,
        checkers: [{ kind: 'tcp', name: 'tcp', port: DEMO_PORTS.kv }],
        stop_timeout: '5s',
      },
    },
  };
  return `# The cluster of \`skyha demo\`: two nodes named for two clouds and a witness, all on this machine.\n# Written by skyha demo; every key is described in the README's configuration reference.\n${stringify(doc)}`;
}

/** Fails early, naming the port, when something else listens where a member would. */
async function checkPortsFree(config: ClusterConfig): Promise<void> {
  const wanted = [...config.nodes, ...config.witnesses].flatMap((m) => [
    { what: `${m.name} link`, host: m.bind, port: m.linkPort },
    { what: `${m.name} API`, host: m.bind, port: m.apiPort },
    ...(m.role === 'node' ? [{ what: `${m.name} gate`, host: m.bind, port: DEMO_PORTS.gate }, { what: `${m.name} web`, host: m.bind, port: DEMO_PORTS.web }, { what: `${m.name} kv`, host: m.bind, port: DEMO_PORTS.kv }] : []),
  ]);
  for (const w of wanted) {
    const error = await new Promise<NodeJS.ErrnoException | undefined>((res) => {
      const s = createNetServer();
      s.once('error', (e: NodeJS.ErrnoException) => res(e));
      s.listen(w.port, w.host, () => s.close(() => res(undefined)));
    });
    if (error) throw new SkyhaError('SKYHA_ERR_DEMO', `the demo needs ${w.host}:${w.port} (${w.what}), which is not free: ${error.code}. Stop what uses it (another demo?) and try again`);
  }
}

/** Whether a demo answers on this socket. */
export function demoAnswers(path: string): Promise<boolean> {
  return demoRequest(path, { op: 'start', member: '-' }).then(
    () => true,
    () => false,
  );
}

/** Sends one request to a running demo. */
export function demoRequest(path: string, op: DemoOp, timeout = 30_000): Promise<{ ok: boolean; text: string }> {
  return new Promise((res, rej) => {
    const socket = connect(path);
    const timer = setTimeout(() => {
      socket.destroy();
      rej(new Error('the demo did not answer'));
    }, timeout);
    socket.once('error', (err) => {
      clearTimeout(timer);
      rej(err);
    });
    socket.once('connect', () => socket.write(JSON.stringify(op) + '\n'));
    const lines = createInterface({ input: socket });
    lines.on('error', () => undefined);
    lines.once('line', (line) => {
      clearTimeout(timer);
      socket.end();
      try {
        res(JSON.parse(line) as { ok: boolean; text: string });
      } catch {
        rej(new Error('a malformed answer from the demo'));
      }
    });
  });
}

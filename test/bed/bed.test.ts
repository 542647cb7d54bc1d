/**
 * The namespace test bed itself (src/testing/bed/): hosts that reach each
 * other, faults that cut exactly what they say and undo cleanly, cleanup that
 * leaves nothing behind, and the observer that the guarantee tests rely on.
 * Needs root; skips with the reason otherwise. Every wait is "until the
 * condition or a deadline"; the only fixed waits check that something does
 * NOT arrive, and are short.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bedUnavailable, sweepStaleBeds, TestBed, type BedProcess } from '../../src/testing/bed/bed.js';
import { ipSync } from '../../src/testing/bed/ip.js';
import { assertNoOverlap, parseObserver, primaryIntervals, readObserver, type ObserverRecord } from '../../src/testing/bed/observer.js';
import { REGISTRY_DIR, type BedRecord } from '../../src/testing/bed/registry.js';
import { holdsFor, waitFor } from '../../src/testing/wait.js';

const skip = bedUnavailable();
if (skip) process.stdout.write(`# skipping the namespace bed tests: ${skip}\n`);

const TCP = 7000;
const UDP = 7001;
/** TCP echo on 7000 and UDP echo on 7001; prints "listening" once both are bound. */
const ECHO = `
const net = require('net'), dgram = require('dgram');
let n = 0; const up = () => { if (++n === 2) console.log('listening'); };
net.createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(${TCP}, '0.0.0.0', up);
const u = dgram.createSocket('udp4'); u.on('message', (m, r) => u.send(m, r.port, r.address)); u.bind(${UDP}, '0.0.0.0', up);`;
/** argv: address port timeoutMs → prints "ok" after an echo, or "fail <why>". */
const PROBE = `
const [address, port, timeout] = process.argv.slice(1);
const end = (w) => { console.log(w); process.exit(0); };
setTimeout(() => end('fail timeout'), Number(timeout));
const s = require('net').connect(Number(port), address, () => s.write('ping'));
s.on('data', (d) => String(d).includes('ping') && end('ok'));
s.on('error', (e) => end('fail ' + e.code));`;

const SAMPLE_APP = [fileURLToPath(new URL('../../../test/fixtures/apps/sample-app.mjs', import.meta.url)), join(process.cwd(), 'test/fixtures/apps/sample-app.mjs')].find((p) => existsSync(p))!;

/** Whether `from` (a host) gets a TCP echo from address:port within `timeoutMs`. */
async function probe(bed: TestBed, from: string, address: string, port = TCP, timeoutMs = 800): Promise<boolean> {
  const p = bed.spawn(from, process.execPath, ['-e', PROBE, address, String(port), String(timeoutMs)]);
  const [line] = await p.waitOutput(/^(ok|fail.*)$/m, { deadline: timeoutMs + 10_000 });
  return line === 'ok';
}

/** A TCP connection from the test process to an echo server, read as one growing string. */
class Line {
  private received = '';
  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (this.received += d));
    socket.on('error', () => undefined);
  }

  static open(address: string, port = TCP, timeoutMs = 2000): Promise<Line> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, address);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`no TCP connection to ${address}:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(new Line(s));
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Sends `text` and resolves with the round trip in ms once it came back; rejects after `deadline`. */
  async echo(text: string, deadline = 5000): Promise<number> {
    const t0 = performance.now();
    this.socket.write(text);
    await waitFor(`echo of ${text}`, () => this.received.includes(text), { deadline, every: 1 });
    return performance.now() - t0;
  }

  send(text: string): void {
    this.socket.write(text);
  }

  has(text: string): boolean {
    return this.received.includes(text);
  }

  close(): void {
    this.socket.destroy();
  }
}

async function connectable(address: string, timeoutMs = 500): Promise<boolean> {
  try {
    (await Line.open(address, TCP, timeoutMs)).close();
    return true;
  } catch {
    return false;
  }
}


/**
 * Sends `n` numbered datagrams to the host's UDP echo and returns the share
 * that came back. The echo server answers in order and the link keeps order
 * (no jitter), so once a marker sent after them returns, every survivor has.
 */
async function udpEchoShare(address: string, n: number): Promise<number> {
  const sock = dgram.createSocket('udp4');
  const got = new Set<string>();
  const markers = new Set<string>();
  sock.on('message', (m) => (String(m).startsWith('marker') ? markers.add(String(m)) : got.add(String(m))));
  await new Promise<void>((r) => sock.bind(0, r));
  // A marker sent after a burst comes back after the burst's survivors (in-order echo, no jitter); it is sent
  // again until it does, since the link may drop it too.
  const through = (name: string): Promise<boolean> =>
    waitFor(`${name} to come back`, () => {
      if (!markers.has(name)) sock.send(name, UDP, address);
      return markers.has(name);
    }, { deadline: 10_000, every: 30 });
  try {
    for (let i = 0; i < n; i++) {
      sock.send(String(i), UDP, address);
      // Bursts larger than the relay's socket buffers would be dropped on top of the loss under test: each
      // burst of 25 waits until the previous one has passed.
      if (i % 25 === 24) await through(`marker-${i}`);
    }
    await through('marker-end');
    return got.size / n;
  } finally {
    sock.close();
  }
}

const gone = (pid: number): boolean => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    return true;
  }
};
const procState = (pid: number): string => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0]!;
const names = (): string => ipSync('netns', 'list') + ipSync('-o', 'link', 'show');

describe('namespace test bed', { skip }, () => {
  let bed: TestBed;
  const echo = new Map<string, BedProcess>();
  let rootServer: net.Server;

  before(async () => {
    bed = await TestBed.create({ hosts: ['a', 'b', 'c'], label: 'bed-test' });
    for (const h of ['a', 'b', 'c']) echo.set(h, bed.spawn(h, process.execPath, ['-e', ECHO]));
    rootServer = net.createServer((s) => s.pipe(s).on('error', () => undefined));
    await new Promise<void>((r) => rootServer.listen(0, bed.bridgeAddress, r));
    await Promise.all([...echo.values()].map((p) => p.waitOutput(/listening/)));
  });
  after(async () => {
    rootServer?.close();
    await bed?.destroy();
  });

  it('gives each host a namespace, eth0 with the next address of the /24, and names under one prefix', () => {
    assert.match(bed.prefix, /^sk[0-9a-f]{4}$/);
    assert.match(bed.subnet, /^10\.20[0-7]\.\d{1,3}\.0\/24$/);
    const base = bed.subnet.replace(/\.0\/24$/, '');
    assert.equal(bed.bridgeAddress, `${base}.1`);
    assert.deepEqual(bed.hosts.map((h) => [h.name, h.ns, h.address, h.rootIf]), [
      ['a', `${bed.prefix}-a`, `${base}.2`, `${bed.prefix}-h0`],
      ['b', `${bed.prefix}-b`, `${base}.3`, `${bed.prefix}-h1`],
      ['c', `${bed.prefix}-c`, `${base}.4`, `${bed.prefix}-h2`],
    ]);
    assert.match(ipSync('-n', bed.host('b').ns, '-4', '-o', 'addr', 'show', 'dev', 'eth0'), new RegExp(`inet ${bed.host('b').address.replace(/\./g, '\\.')}/24`));
    assert.match(ipSync('-n', bed.host('b').ns, '-o', 'link', 'show', 'lo'), /UP/);
    const record = JSON.parse(readFileSync(join(REGISTRY_DIR, `${bed.prefix}.json`), 'utf8')) as BedRecord;
    assert.equal(record.owner.pid, process.pid);
    assert.equal(record.label, 'bed-test');
    assert.throws(() => bed.host('nope'), /has no host "nope"; its hosts: a, b, c/);
  });

  it('hosts reach each other and the root namespace over TCP', async () => {
    for (const h of bed.hosts) assert.ok(await connectable(h.address), `root → ${h.name}`);
    const port = String((rootServer.address() as net.AddressInfo).port);
    const results = await Promise.all([probe(bed, 'a', bed.host('b').address), probe(bed, 'b', bed.host('c').address), probe(bed, 'c', bed.host('a').address), probe(bed, 'a', bed.bridgeAddress, Number(port))]);
    assert.deepEqual(results, [true, true, true, true], 'a→b, b→c, c→a, a→root');
  });

  it('ip netns exec execs: the PID is the command, inside the host namespace', async () => {
    const p = bed.spawn('a', process.execPath, ['-e', `console.log(process.pid, require('fs').readlinkSync('/proc/self/ns/net')); setInterval(() => {}, 1000)`]);
    const [, pid, ns] = await p.waitOutput(/^(\d+) (net:\[\d+\])$/m);
    assert.equal(Number(pid), p.pid);
    assert.equal(ns, `net:[${statSync(`/run/netns/${bed.host('a').ns}`).ino}]`);
    assert.notEqual(ns, readlinkSync('/proc/self/ns/net'));
    bed.kill(p);
    assert.deepEqual(await p.exited, { code: null, signal: 'SIGKILL' });
  });

  it('partition cuts exactly the chosen pairs, both ways, established connections too; heal restores them', async () => {
    const line = await Line.open(bed.host('a').address);
    await line.echo('before ');
    await bed.partition('a', ['b', 'root']);
    try {
      line.send('during ');
      const [ab, ba, ac, ca, bc, rootC, rootA] = await Promise.all([
        probe(bed, 'a', bed.host('b').address),
        probe(bed, 'b', bed.host('a').address),
        probe(bed, 'a', bed.host('c').address),
        probe(bed, 'c', bed.host('a').address),
        probe(bed, 'b', bed.host('c').address),
        connectable(bed.host('c').address),
        connectable(bed.host('a').address),
      ]);
      assert.deepEqual({ ab, ba, rootA }, { ab: false, ba: false, rootA: false }, 'the cut pairs');
      assert.deepEqual({ ac, ca, bc, rootC }, { ac: true, ca: true, bc: true, rootC: true }, 'the others');
      assert.equal(line.has('during '), false, 'the established connection stalls');
    } finally {
      await bed.heal('a');
    }
    await waitFor('the stalled bytes to arrive after heal', () => line.has('during '), { deadline: 10_000 });
    assert.ok(await probe(bed, 'b', bed.host('a').address), 'b → a after heal');
    line.close();
  });

  it('linkDown cuts the host off, linkUp brings it back', async () => {
    await bed.linkDown('b');
    try {
      assert.match(ipSync('-o', 'link', 'show', bed.host('b').rootIf), /state DOWN/);
      const [rootB, cB, cA] = await Promise.all([connectable(bed.host('b').address), probe(bed, 'c', bed.host('b').address), probe(bed, 'c', bed.host('a').address)]);
      assert.deepEqual({ rootB, cB, cA }, { rootB: false, cB: false, cA: true });
    } finally {
      await bed.linkUp('b');
    }
    await waitFor('b reachable again', () => connectable(bed.host('b').address), { deadline: 10_000 });
  });

  it('freeze stops the process (SIGSTOP), thaw lets it go on', async () => {
    const server = echo.get('c')!;
    const line = await Line.open(bed.host('c').address);
    await line.echo('one ');
    await bed.freeze(server);
    try {
      assert.equal(procState(server.pid), 'T');
      line.send('two ');
      await holdsFor('a frozen server does not answer', () => !line.has('two '), { duration: 300, every: 10 });
    } finally {
      await bed.thaw(server);
    }
    await waitFor('the answer after thaw', () => line.has('two '));
    assert.notEqual(procState(server.pid), 'T');
    line.close();
  });

  it('impair delays every frame of the link, both ways; clearImpair undoes it', async () => {
    const delayMs = 40;
    const method = await bed.impair('c', { delayMs });
    try {
      assert.equal(bed.impairMethod('c'), method);
      const line = await Line.open(bed.host('c').address);
      const rtts: number[] = [];
      for (let i = 0; i < 5; i++) rtts.push(await line.echo(`slow${i} `));
      line.close();
      for (const rtt of rtts) assert.ok(rtt >= 2 * delayMs - 1, `round trips take two delays: ${rtts.map((r) => r.toFixed(1)).join(', ')} ms`);
      assert.ok(await probe(bed, 'a', bed.host('c').address, TCP, 3000), 'hosts still reach the impaired one');
    } finally {
      await bed.clearImpair('c');
    }
    assert.equal(bed.impairMethod('c'), undefined);
    const line = await Line.open(bed.host('c').address);
    const rtt = await line.echo('fast ');
    line.close();
    assert.ok(rtt < delayMs, `after clearImpair: ${rtt.toFixed(1)} ms`);
  });

  it('impair loses about the requested share of datagrams, each way', async () => {
    assert.ok((await udpEchoShare(bed.host('b').address, 100)) >= 0.98, 'no loss without impairment');
    await bed.impair('b', { lossPct: 30 });
    let share: number;
    try {
      share = await udpEchoShare(bed.host('b').address, 400);
    } finally {
      await bed.clearImpair('b');
    }
    // Both ways: 0.7 × 0.7 ≈ 0.49 come back; 400 datagrams give a standard deviation of 0.025.
    const relay = bed.processes().filter((p) => p.command.includes('python')).at(-1);
    assert.ok(share > 0.35 && share < 0.63, `share echoed with 30 % loss each way: ${share} (relay: ${relay?.stdout().trim()})`);
    await waitFor('b reachable after clearImpair', () => connectable(bed.host('b').address));
  });

  it('sample app: answers who it is, writes start, beats and stop; crashes and hangs on demand', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skyha-bed-test-'));
    const observer = join(dir, 'observer.jsonl');
    try {
      const env = (node: string, extra: Record<string, string> = {}) => ({ SKYHA_NODE: node, SKYHA_MODULE: 'db', SKYHA_EPOCH: '3', SKYHA_ROLE: 'primary', APP_PORT: '8080', SKYHA_TEST_OBSERVER: observer, ...extra });
      const beats = (pid: number): ObserverRecord[] => readObserver(observer).filter((r) => r.pid === pid && r.event === 'beat');

      // A clean run: HTTP from the root namespace, then SIGTERM.
      const a = bed.spawn('a', process.execPath, [SAMPLE_APP], { env: env('a') });
      const body = await waitFor('the sample app to answer', async () => (await fetch(`http://${bed.host('a').address}:8080/`)).json(), { deadline: 10_000 });
      assert.deepEqual(body, { node: 'a', module: 'db', epoch: 3, role: 'primary' });
      await waitFor('a few beats', () => beats(a.pid).length >= 3);
      a.kill('SIGTERM');
      assert.deepEqual(await a.exited, { code: 0, signal: null });
      const mine = readObserver(observer).filter((r) => r.pid === a.pid);
      assert.equal(mine[0]?.event, 'start');
      assert.equal(mine.at(-1)?.event, 'stop');
      assert.deepEqual(new Set(mine.map((r) => `${r.node}/${r.module}/${r.epoch}`)), new Set(['a/db/3']));

      // A crash: exit 1 after APP_FAIL_AFTER_MS, no stop.
      const b = bed.spawn('b', process.execPath, [SAMPLE_APP], { env: env('b', { APP_FAIL_AFTER_MS: '100' }) });
      assert.deepEqual(await b.exited, { code: 1, signal: null });

      // A hung application: SIGTERM is ignored, beats go on until kill -9.
      const c = bed.spawn('c', process.execPath, [SAMPLE_APP], { env: env('c', { APP_IGNORE_SIGTERM: '1' }) });
      await waitFor('c beats', () => beats(c.pid).length >= 1);
      c.kill('SIGTERM');
      await c.waitOutput(/SIGTERM ignored/, { stream: 'stderr' });
      const t = process.hrtime.bigint();
      await waitFor('beats after SIGTERM', () => beats(c.pid).some((r) => r.t > t));
      bed.kill(c, 'SIGKILL');
      assert.equal((await c.exited).signal, 'SIGKILL');

      const intervals = primaryIntervals(readObserver(observer), { slackMs: 10 });
      assert.deepEqual(intervals.map((i) => [i.node, i.pid, i.end]), [['a', a.pid, 'stop'], ['b', b.pid, 'last-beat'], ['c', c.pid, 'last-beat']]);
      assertNoOverlap(intervals); // one after the other

      // Two at once, for real: caught.
      const d = bed.spawn('a', process.execPath, [SAMPLE_APP], { env: env('a') });
      const e = bed.spawn('b', process.execPath, [SAMPLE_APP], { env: env('b') });
      await waitFor('both beating', () => beats(d.pid).length > 0 && beats(e.pid).length > 0);
      bed.kill(d);
      bed.kill(e);
      await Promise.all([d.exited, e.exited]);
      assert.throws(() => assertNoOverlap(primaryIntervals(readObserver(observer), { slackMs: 10 })), new RegExp(`two primaries of db at once[\\s\\S]*pid (${d.pid}|${e.pid})[\\s\\S]*pid (${d.pid}|${e.pid})`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('namespace test bed: cleanup', { skip }, () => {
  it('destroy removes every process, interface and namespace, even mid-fault, and can be called twice', async () => {
    const bed = await TestBed.create({ hosts: ['x', 'y'], label: 'bed-test-destroy' });
    const sleeper = bed.spawn('x', process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    // An untracked grandchild in y, as an agent's application would be.
    const parent = bed.spawn('y', '/bin/sh', ['-c', 'sleep 600 & echo $!; wait']);
    const grandchild = Number((await parent.waitOutput(/^(\d+)$/m))[1]);
    const rooted = bed.spawnRoot('/bin/sleep', ['600']);
    await bed.freeze(sleeper);
    await bed.impair('x', { delayMs: 5 });
    await bed.partition('y', ['x', 'root']);
    await bed.linkDown('y');
    const relay = bed.processes().find((p) => p.command.includes('python'));
    assert.ok(relay, 'the impair relay is one of the processes');

    await Promise.all([bed.destroy(), bed.destroy()]);
    await bed.destroy();

    assert.doesNotMatch(names(), new RegExp(bed.prefix));
    for (const p of [sleeper, parent, rooted, relay]) assert.equal(p.running, false, `${p} exited`);
    assert.ok(gone(grandchild), 'the untracked process in the namespace is gone');
    assert.equal(existsSync(join(REGISTRY_DIR, `${bed.prefix}.json`)), false);
    assert.throws(() => bed.spawn('x', '/bin/true'), /destroyed/);
  });

  it('sweepStaleBeds removes what a bed with a dead owner left, and leaves live beds alone', async () => {
    const live = await TestBed.create({ hosts: ['l'], label: 'bed-test-live' });
    const prefix = `sk${Math.floor(Math.random() * 0x10000).toString(16).padStart(4, '0')}`;
    const ns = `${prefix}-z`;
    let sleeper: ReturnType<typeof spawn> | undefined;
    try {
      ipSync('netns', 'add', ns);
      ipSync('link', 'add', `${prefix}-h0`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      sleeper = spawn('ip', ['netns', 'exec', ns, '/bin/sleep', '600'], { stdio: 'ignore' });
      const sleeperExit = new Promise((r) => sleeper!.once('exit', r));
      await waitFor('the sleeper inside the namespace', () => ipSync('netns', 'pids', ns).trim() !== '');
      // A dead owner: a finished process (its start time can never match again, even if the PID comes back).
      const dead = spawnSync('/bin/true').pid;
      const record: BedRecord = { prefix, label: 'stale', owner: { pid: dead, startTime: '0' }, subnet: null, namespaces: [ns], links: [`${prefix}-br`, `${prefix}-h0`], rootProcesses: [], createdAt: new Date().toISOString() };
      writeFileSync(join(REGISTRY_DIR, `${prefix}.json`), JSON.stringify(record));

      const swept = sweepStaleBeds();
      assert.ok(swept.includes(prefix), `swept: ${swept.join(', ')}`);
      assert.ok(!swept.includes(live.prefix));
      assert.doesNotMatch(names(), new RegExp(prefix));
      await sleeperExit;
      assert.equal(existsSync(join(REGISTRY_DIR, `${prefix}.json`)), false);
      assert.ok(existsSync(join(REGISTRY_DIR, `${live.prefix}.json`)), 'the live bed keeps its record');
      assert.ok(await connectableFromRoot(live), 'and its hosts');
    } finally {
      sleeper?.kill('SIGKILL');
      try {
        ipSync('netns', 'del', ns);
      } catch {
        // Swept, as it should be.
      }
      rmSync(join(REGISTRY_DIR, `${prefix}.json`), { force: true });
      await live.destroy();
    }
  });
});

/** The live bed's host answers ARP and TCP (RST on a closed port counts: the link works). */
async function connectableFromRoot(bed: TestBed): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(TCP, bed.host('l').address);
    const timer = setTimeout(() => (s.destroy(), resolve(false)), 2000);
    s.on('connect', () => (clearTimeout(timer), s.destroy(), resolve(true)));
    s.on('error', (err: NodeJS.ErrnoException) => (clearTimeout(timer), resolve(err.code === 'ECONNREFUSED')));
  });
}

describe('observer: primary intervals', () => {
  const ms = (x: number): string => String(BigInt(Math.round(x * 1e6)));
  const line = (node: string, pid: number, event: string, t: number, module = 'db'): string => JSON.stringify({ node, module, epoch: 1, pid, event, t: ms(t) });
  const parse = (lines: string[]): ObserverRecord[] => parseObserver(lines.join('\n') + '\n');

  it('one interval per run: start to stop, or last beat plus the slack', () => {
    const records = parse([line('n1', 10, 'start', 0), line('n1', 10, 'beat', 5), line('n1', 10, 'stop', 8), line('n2', 20, 'start', 8), line('n2', 20, 'beat', 13), line('n2', 20, 'beat', 18)]);
    assert.deepEqual(
      primaryIntervals(records, { slackMs: 10 }).map((i) => [i.node, i.pid, Number(i.from) / 1e6, Number(i.to) / 1e6, i.end]),
      [['n1', 10, 0, 8, 'stop'], ['n2', 20, 8, 28, 'last-beat']],
    );
  });

  it('touching is not overlapping', () => {
    assert.doesNotThrow(() => assertNoOverlap(primaryIntervals(parse([line('n1', 10, 'start', 0), line('n1', 10, 'stop', 100), line('n2', 20, 'start', 100), line('n2', 20, 'beat', 105)]))));
    // Killed: silent after its last beat at 50; with 10 ms slack the next may start at 60, not before.
    const killed = [line('n1', 10, 'start', 0), line('n1', 10, 'beat', 50)];
    assert.doesNotThrow(() => assertNoOverlap(primaryIntervals(parse([...killed, line('n2', 20, 'start', 60)]), { slackMs: 10 })));
    assert.throws(() => assertNoOverlap(primaryIntervals(parse([...killed, line('n2', 20, 'start', 59)]), { slackMs: 10 })), /for 1\.000 ms/);
  });

  it('an overlapping pair is caught, and the error names both runs', () => {
    const records = parse([line('n1', 10, 'start', 0), line('n1', 10, 'beat', 5), line('n2', 20, 'start', 3), line('n2', 20, 'beat', 8), line('n1', 10, 'stop', 10), line('n2', 20, 'stop', 20)]);
    assert.throws(() => assertNoOverlap(primaryIntervals(records)), (err: Error) => {
      assert.equal(err.message, 'two primaries of db at once, for 7.000 ms:\n  n1 pid 10 epoch 1: 0.000 ms → 10.000 ms (stop)\n  n2 pid 20 epoch 1: 3.000 ms → 20.000 ms (stop)');
      return true;
    });
  });

  it('runs of different modules may overlap; two runs on one node may not', () => {
    assert.doesNotThrow(() => assertNoOverlap(primaryIntervals(parse([line('n1', 10, 'start', 0), line('n2', 20, 'start', 1, 'web'), line('n1', 10, 'stop', 5), line('n2', 20, 'stop', 6, 'web')]))));
    assert.throws(() => assertNoOverlap(primaryIntervals(parse([line('n1', 10, 'start', 0), line('n1', 11, 'start', 1), line('n1', 10, 'stop', 5), line('n1', 11, 'stop', 6)]))), /n1 pid 10[\s\S]*n1 pid 11/);
  });

  it('tolerates a torn last line, not a bad line in the middle', () => {
    const good = line('n1', 10, 'start', 0);
    assert.equal(parseObserver(`${good}\n${good.slice(0, 20)}`).length, 1);
    assert.throws(() => parseObserver(`${good}\n${good.slice(0, 20)}\n${good}\n`, 'obs.jsonl'), /obs\.jsonl:2: not an observer record/);
  });
});

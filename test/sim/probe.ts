/**
 * A probe model for the kernel tests: its processes do nothing on their own;
 * the test drives them (`world.at(t, () => probe('n1').ctx.send(…))`) and
 * reads what they saw.
 */
import type { BootInfo, Fuse, ProcessContext, SimModel, SimProcess } from '../../src/sim/process.js';
import { parseShape } from '../../src/sim/shape.js';
import { World, type WorldOptions } from '../../src/sim/world.js';

export interface ProbeMsg {
  seq: number;
  from: string;
}

export class ProbeProcess implements SimProcess<ProbeMsg> {
  ctx!: ProcessContext<ProbeMsg>;
  boot!: BootInfo;
  readonly received: Array<{ from: string; msg: ProbeMsg; local: number }> = [];
  readonly fired: Array<{ tag: string; local: number }> = [];
  readonly keeper: Fuse[] = [];
  /** Optional reactions the test installs. */
  onStart?: (p: ProbeProcess) => void;
  onFire?: (p: ProbeProcess, tag: string) => void;
  onReceive?: (p: ProbeProcess, from: string, msg: ProbeMsg) => void;

  start(ctx: ProcessContext<ProbeMsg>, boot: BootInfo): void {
    this.ctx = ctx;
    this.boot = boot;
    this.onStart?.(this);
  }
  onMessage(ctx: ProcessContext<ProbeMsg>, from: string, msg: ProbeMsg): void {
    this.received.push({ from, msg, local: ctx.now() });
    this.onReceive?.(this, from, msg);
  }
  onTimer(ctx: ProcessContext<ProbeMsg>, tag: string): void {
    this.fired.push({ tag, local: ctx.now() });
    this.onFire?.(this, tag);
  }
  onKeeper(_ctx: ProcessContext<ProbeMsg>, fuse: Fuse): void {
    this.keeper.push(fuse);
  }
}

export interface Probe {
  world: World<ProbeMsg>;
  /** The current process of a member (a new one after each restart). */
  probe(member: string): ProbeProcess;
  /** Every process ever created for a member, oldest first. */
  incarnations(member: string): ProbeProcess[];
}

export function probeWorld(options: Partial<Omit<WorldOptions<ProbeMsg>, 'model'>> & { setup?: (p: ProbeProcess, member: string) => void } = {}): Probe {
  const all = new Map<string, ProbeProcess[]>();
  const model: SimModel<ProbeMsg> = {
    name: 'probe',
    modules: [],
    lease: 1000,
    livenessBudget: 1000,
    create: (member) => {
      const p = new ProbeProcess();
      options.setup?.(p, member.name);
      const list = all.get(member.name) ?? [];
      list.push(p);
      all.set(member.name, list);
      return p;
    },
    describe: (m) => `#${m.seq} from ${m.from}`,
  };
  const world = new World<ProbeMsg>({ seed: 1, shape: parseShape('3n'), traceLimit: Infinity, ...options, model });
  return {
    world,
    probe: (member) => {
      const list = all.get(member);
      const p = list?.[list.length - 1];
      if (!p) throw new Error(`no process for ${member}`);
      return p;
    },
    incarnations: (member) => all.get(member) ?? [],
  };
}

/**
 * The history of a run: what the members said they did (observations), and
 * what the world did to them (markers), each stamped with the global time in
 * ms and the member. The checkers are pure functions over it; nothing else is
 * shared between a model and the checkers.
 */

/** The facts a member model reports through `ctx.observe` (or a keeper reports for it). */
export type Observation =
  /** The module's application was started on this member in `role` (the checkers care about `primary`). */
  | { type: 'app-start'; module: string; role: string; epoch?: number }
  /** The module's application stopped on this member (whatever its role). */
  | { type: 'app-stop'; module: string; reason?: string }
  /** A client was told that `writeId` is durable (a barrier returned). */
  | { type: 'write-acked'; module: string; writeId: string }
  /** This member made `writeId` durable in its copy of the module's data. */
  | { type: 'write-applied'; module: string; writeId: string }
  /**
   * This member believes it holds the module's lease until `until`. Emitted
   * in the member's LOCAL ms; the history holds it in global ms (as the holder
   * believes it), with the local value kept in `untilLocal`.
   */
  | { type: 'lease-held'; module: string; until: number; untilLocal?: number }
  /** This member gave its lease up before `until` (a switchover, a failback, a step-down): its belief ends here. */
  | { type: 'lease-released'; module: string }
  /** This member heard a grant from each of `granted` (a majority, if the model is right). */
  | { type: 'quorum'; module?: string; granted: readonly string[] }
  /** A role label changed. For people reading a trace; no checker trusts it. */
  | { type: 'role'; module: string; role: string; reason?: string }
  /**
   * After a restart on a wiped disk: this member's copy of the module's data
   * is complete again (resynced). Ends the member's data loss for the
   * checkers; a model that never emits it is assumed to resync within the
   * schedule's recovery gap.
   */
  | { type: 'in-sync'; module: string }
  /** Whether this member's voter knows the module's newest committed record (it may not after a lost disk). */
  | { type: 'voter-knows'; module: string; knows: boolean }
  /** At the end of a run: every write this member holds for the module. */
  | { type: 'final-data'; module: string; writes: readonly string[] }
  /** Free text, for the trace. */
  | { type: 'note'; text: string };

export type CrashKind =
  /** The whole machine is lost: agent, keeper and applications die at once. */
  | 'node'
  /** Only the agent process dies; the applications and the keeper keep running. */
  | 'agent';

export type FreezeScope =
  /** The agent process is paused (SIGSTOP); applications and the keeper keep running. */
  | 'agent'
  /** The whole machine is paused (a VM pause): nothing on it runs until it thaws. */
  | 'node';

export type DiskState = 'new' | 'kept' | 'wiped';

/** What the world did; recorded by the kernel, never by a model. */
export type Marker =
  | { type: 'boot'; incarnation: number; disk: DiskState }
  | { type: 'crash'; kind: CrashKind }
  | { type: 'freeze'; scope: FreezeScope }
  | { type: 'thaw' }
  /** Every fault was healed here (member `*`): the quiet period starts. */
  | { type: 'healed' }
  /** The run ended here (member `*`). */
  | { type: 'end' };

export type Entry = Observation | Marker;
export type HistoryEntry = Entry & { at: number; member: string };

export const ALL_MEMBERS = '*';

export class History {
  readonly entries: HistoryEntry[] = [];

  record(at: number, member: string, e: Entry): HistoryEntry {
    const entry = { ...e, at, member } as HistoryEntry;
    this.entries.push(entry);
    return entry;
  }
}

/** One line for an entry's content: `app-start module=db role=primary epoch=3`. */
export function describeEntry(e: Entry): string {
  let s: string = e.type;
  for (const [k, v] of Object.entries(e)) {
    if (k === 'type' || k === 'at' || k === 'member' || v === undefined) continue;
    s += ` ${k}=${formatValue(v)}`;
  }
  return s;
}

function formatValue(v: unknown): string {
  if (Array.isArray(v)) return v.length > 12 ? `[${v.slice(0, 12).join(',')},…+${v.length - 12}]` : `[${v.join(',')}]`;
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(3);
  if (typeof v === 'string') return /\s/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

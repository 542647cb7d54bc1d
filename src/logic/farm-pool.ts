/**
 * Farm pool: which nodes of a farm module the gate sends requests to.
 *
 * Per node it combines four inputs, HAProxy style (health and admin state are
 * separate axes):
 * - liveness, from membership: `alive` and `suspect` count as alive (a
 *   suspicion is not proof, and the gate retries idempotent requests on
 *   another node); `unknown` and `dead` do not;
 * - health, from the module's checkers on that node (`moduleHealth`);
 * - whether the restart policy gave the module up on that node;
 * - the admin state an operator set: `ready`, `drain` or `maint`.
 *
 * A node is `in` (accepts new requests, keeps existing connections) iff it is
 * alive, healthy, not given up and `ready`. With `drain` and otherwise fit it
 * is `draining`: it keeps its existing connections and takes no new requests.
 * Anything else is `out`: neither (a dead, failed or given-up node cannot serve
 * what it has, and `maint` means the operator is working on it).
 *
 * `poolSeat` is the pure rule; `stepFarmPool` keeps the inputs and reports
 * every change of a node's position as `pool-changed`, in node name order.
 */
import type { CheckerStatus } from './checker.js';
import type { MemberStatus } from './membership.js';
import { reason, type Reason, type Step } from './step.js';

export const POOL_REASONS = {
  /** Alive, healthy, not given up and ready: the node takes requests. */
  POOL_JOIN: 'POOL_JOIN',
  /** Its checkers say failed (or its health became unknown). */
  POOL_LEAVE_CHECKER: 'POOL_LEAVE_CHECKER',
  /** Membership says dead (or it was never heard from). */
  POOL_LEAVE_DEAD: 'POOL_LEAVE_DEAD',
  /** The restart policy gave the module up on the node. */
  POOL_LEAVE_GIVEN_UP: 'POOL_LEAVE_GIVEN_UP',
  /** Admin state `drain`: keeps existing connections, no new requests. */
  POOL_DRAIN: 'POOL_DRAIN',
  /** Admin state `maint`: out of the pool. */
  POOL_MAINT: 'POOL_MAINT',
  /** Admin state back to `ready`: in the pool again. */
  POOL_READY: 'POOL_READY',
} as const;
export type PoolReasonCode = (typeof POOL_REASONS)[keyof typeof POOL_REASONS];

export type AdminState = 'ready' | 'drain' | 'maint';
export type PoolPosition = 'in' | 'draining' | 'out';

export interface PoolInputs {
  readonly member: MemberStatus;
  readonly health: CheckerStatus;
  readonly givenUp: boolean;
  readonly admin: AdminState;
}

/** Why a node is not `in`, in the order the reasons are reported. */
export type PoolBlocker = 'not-alive' | 'given-up' | 'checker' | 'maint' | 'drain';

export interface PoolSeat {
  readonly position: PoolPosition;
  readonly acceptsNew: boolean;
  readonly keepsExisting: boolean;
  /** Empty when `in`. */
  readonly blockers: readonly PoolBlocker[];
}

/** The pure rule for one node. */
export function poolSeat(inputs: PoolInputs): PoolSeat {
  const blockers: PoolBlocker[] = [];
  if (!isAlive(inputs.member)) blockers.push('not-alive');
  if (inputs.givenUp) blockers.push('given-up');
  if (inputs.health !== 'healthy') blockers.push('checker');
  if (inputs.admin === 'maint') blockers.push('maint');
  if (inputs.admin === 'drain') blockers.push('drain');
  if (blockers.length === 0) return { position: 'in', acceptsNew: true, keepsExisting: true, blockers };
  if (blockers.length === 1 && blockers[0] === 'drain') return { position: 'draining', acceptsNew: false, keepsExisting: true, blockers };
  return { position: 'out', acceptsNew: false, keepsExisting: false, blockers };
}

export interface PoolNode {
  readonly inputs: PoolInputs;
  readonly position: PoolPosition;
  /** When `position` last changed. */
  readonly since: number;
  /** The detail of the last `health` event, if it had one, for the sentence. */
  readonly healthDetail?: string;
}

export interface FarmPoolState {
  readonly module: string;
  /** Keyed by node name, in name order. */
  readonly nodes: Readonly<Record<string, PoolNode>>;
}

export type FarmPoolEvent =
  | { readonly type: 'member'; readonly node: string; readonly status: MemberStatus }
  | { readonly type: 'health'; readonly node: string; readonly health: CheckerStatus; readonly detail?: string }
  | { readonly type: 'given-up'; readonly node: string; readonly givenUp: boolean }
  | { readonly type: 'admin'; readonly node: string; readonly admin: AdminState }
  /** Several inputs at once (e.g. a fresh cluster view); changes are reported in node name order. */
  | { readonly type: 'inputs'; readonly nodes: Readonly<Record<string, Partial<PoolInputs>>> };

export interface PoolChanged {
  readonly type: 'pool-changed';
  readonly module: string;
  readonly node: string;
  readonly from: PoolPosition;
  readonly to: PoolPosition;
  readonly acceptsNew: boolean;
  readonly keepsExisting: boolean;
  readonly reason: Reason;
}
export type FarmPoolAction = PoolChanged;

/** Every node starts `out`: not heard from, health unknown, not given up, `ready`. */
export function initFarmPool(config: { readonly module: string; readonly nodes: readonly string[] }, now: number): FarmPoolState {
  const nodes: Record<string, PoolNode> = {};
  for (const node of [...new Set(config.nodes)].sort()) {
    nodes[node] = { inputs: { member: 'unknown', health: 'unknown', givenUp: false, admin: 'ready' }, position: 'out', since: now };
  }
  return { module: config.module, nodes };
}

export function stepFarmPool(state: FarmPoolState, event: FarmPoolEvent, now: number): Step<FarmPoolState, FarmPoolAction> {
  const patches: Record<string, Partial<PoolInputs>> = {};
  // A health event replaces the detail (or clears it); other events keep it.
  let detail: { node: string; text: string | undefined } | undefined;
  switch (event.type) {
    case 'member':
      patches[event.node] = { member: event.status };
      break;
    case 'health':
      patches[event.node] = { health: event.health };
      detail = { node: event.node, text: event.detail };
      break;
    case 'given-up':
      patches[event.node] = { givenUp: event.givenUp };
      break;
    case 'admin':
      patches[event.node] = { admin: event.admin };
      break;
    case 'inputs':
      Object.assign(patches, event.nodes);
      break;
  }

  const nodes: Record<string, PoolNode> = { ...state.nodes };
  const actions: FarmPoolAction[] = [];
  for (const name of Object.keys(patches).sort()) {
    const before = state.nodes[name];
    // The pool's nodes come from the module's config; anything else is ignored.
    if (!before) continue;
    const inputs: PoolInputs = { ...before.inputs, ...definedOnly(patches[name] ?? {}) };
    const seat = poolSeat(inputs);
    const healthDetail = detail?.node === name ? detail.text : before.healthDetail;
    const changed = seat.position !== before.position;
    nodes[name] = { inputs, position: seat.position, since: changed ? now : before.since, ...(healthDetail !== undefined ? { healthDetail } : {}) };
    if (!changed) continue;
    actions.push({
      type: 'pool-changed',
      module: state.module,
      node: name,
      from: before.position,
      to: seat.position,
      acceptsNew: seat.acceptsNew,
      keepsExisting: seat.keepsExisting,
      reason: why(state.module, name, before.inputs, inputs, seat, healthDetail),
    });
  }
  return { state: { module: state.module, nodes }, actions };
}

/** The nodes that accept new requests, sorted. */
export function inRotation(state: FarmPoolState): string[] {
  return Object.keys(state.nodes).filter((n) => state.nodes[n]?.position === 'in').sort();
}

/** The nodes that keep their existing connections (`in` and `draining`), sorted. */
export function keepingExisting(state: FarmPoolState): string[] {
  return Object.keys(state.nodes).filter((n) => state.nodes[n]?.position !== 'out').sort();
}

function isAlive(status: MemberStatus): boolean {
  return status === 'alive' || status === 'suspect';
}

/** The reason of a position change: the input that changed, by priority dead > given up > checker > maint. */
function why(module: string, node: string, before: PoolInputs, after: PoolInputs, seat: PoolSeat, healthDetail: string | undefined): Reason {
  const who = `${module} on ${node}`;
  if (seat.position === 'in') {
    return before.admin !== 'ready'
      ? reason(POOL_REASONS.POOL_READY, `${who} back in the pool: admin state ready`)
      : reason(POOL_REASONS.POOL_JOIN, `${who} joined the pool: alive, healthy and ready`);
  }
  if (seat.position === 'draining') {
    return reason(POOL_REASONS.POOL_DRAIN, `${who} draining: keeps its existing connections, takes no new requests`);
  }
  const wasFit = poolSeat(before).blockers;
  const fresh = seat.blockers.filter((b) => !wasFit.includes(b));
  const cause = fresh[0] ?? seat.blockers[0];
  switch (cause) {
    case 'not-alive':
      return reason(POOL_REASONS.POOL_LEAVE_DEAD, `${who} left the pool: ${node} ${after.member === 'dead' ? 'is dead' : 'has not been heard from'}`);
    case 'given-up':
      return reason(POOL_REASONS.POOL_LEAVE_GIVEN_UP, `${who} left the pool: the restart policy gave it up`);
    case 'checker': {
      const what = after.health === 'failed' ? 'its checkers report it failed' : 'its health is unknown';
      return reason(POOL_REASONS.POOL_LEAVE_CHECKER, `${who} left the pool: ${what}${healthDetail !== undefined ? ` (${healthDetail})` : ''}`);
    }
    default:
      // 'maint' is the only blocker left that can move a node out.
      return reason(POOL_REASONS.POOL_MAINT, `${who} in maintenance: out of the pool, existing connections closed`);
  }
}

function definedOnly(patch: Partial<PoolInputs>): Partial<PoolInputs> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) out[k] = v;
  return out as Partial<PoolInputs>;
}

/**
 * Which backend gets the next request. Runs once per request in the gate's
 * hot path, over a handful of backends: no allocation and no sorting per
 * pick, O(backends) at most.
 *
 * - round_robin: smooth weighted round robin (nginx's): every pick adds each
 *   weight to its node's credit, takes the node with the most credit and
 *   charges it the total. Weights 5:1:1 give a a b a c a a — spread out, not
 *   five a's in a row.
 * - least_connections: fewest requests in flight per unit of weight; ties go
 *   round the nodes so that equal nodes share evenly.
 * - client_address: weighted rendezvous hashing of the client's address, so
 *   a client stays on its node, a node that leaves moves only its own
 *   clients, and one that returns takes back only its share.
 * - cookie: the node the affinity cookie names while it is eligible, else
 *   round robin (the gate then sets the cookie).
 */

export type BalanceKind = 'round_robin' | 'least_connections' | 'client_address' | 'cookie';

export interface BalancerBackend {
  readonly node: string;
  /** 1..256; 0 is never picked. */
  readonly weight: number;
}

interface Entry {
  node: string;
  weight: number;
  credit: number;
  /** FNV-1a state after the node's name: hashing a key continues from here. */
  seed: number;
}

export class Balancer {
  private entries: Entry[] = [];
  private rotation = 0;

  constructor(readonly kind: BalanceKind) {}

  setBackends(backends: readonly BalancerBackend[]): void {
    // Credits carry over for nodes that stay, so an update does not restart the cycle.
    const old = new Map(this.entries.map((e) => [e.node, e.credit]));
    this.entries = backends.filter((b) => b.weight > 0).map((b) => ({ node: b.node, weight: b.weight, credit: old.get(b.node) ?? 0, seed: fnv(b.node, FNV_OFFSET) }));
  }

  get size(): number {
    return this.entries.length;
  }

  pick(clientKey: string, affinity: string | undefined, excluded: ReadonlySet<string> | undefined, active: (node: string) => number): string | undefined {
    switch (this.kind) {
      case 'round_robin':
        return this.smooth(excluded);
      case 'least_connections':
        return this.least(excluded, active);
      case 'client_address':
        return this.rendezvous(clientKey, excluded);
      case 'cookie':
        if (affinity !== undefined && !excluded?.has(affinity)) {
          for (const e of this.entries) if (e.node === affinity) return affinity;
        }
        return this.smooth(excluded);
    }
  }

  private smooth(excluded: ReadonlySet<string> | undefined): string | undefined {
    let best: Entry | undefined;
    let total = 0;
    for (const e of this.entries) {
      if (excluded?.has(e.node)) continue;
      e.credit += e.weight;
      total += e.weight;
      if (best === undefined || e.credit > best.credit) best = e;
    }
    if (best === undefined) return undefined;
    best.credit -= total;
    return best.node;
  }

  private least(excluded: ReadonlySet<string> | undefined, active: (node: string) => number): string | undefined {
    const n = this.entries.length;
    if (n === 0) return undefined;
    const start = this.rotation++ % n;
    let best: Entry | undefined;
    let bestLoad = Infinity;
    for (let i = 0; i < n; i++) {
      const e = this.entries[(start + i) % n]!;
      if (excluded?.has(e.node)) continue;
      const load = active(e.node) / e.weight;
      if (load < bestLoad) {
        best = e;
        bestLoad = load;
      }
    }
    return best?.node;
  }

  private rendezvous(key: string, excluded: ReadonlySet<string> | undefined): string | undefined {
    let best: Entry | undefined;
    let bestScore = -Infinity;
    for (const e of this.entries) {
      if (excluded?.has(e.node)) continue;
      // A uniform draw in (0, 1) from the hash of node and key; -weight / ln(u) makes the winner's odds proportional to weight.
      const u = (mix(fnv(key, e.seed)) + 0.5) / 4294967296;
      const score = -e.weight / Math.log(u);
      if (score > bestScore) {
        best = e;
        bestScore = score;
      }
    }
    return best?.node;
  }
}

const FNV_OFFSET = 0x811c9dc5;

function fnv(s: string, h: number): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's finalizer: FNV alone leaves the high bits of similar keys (addresses differing in the last octet) too alike. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

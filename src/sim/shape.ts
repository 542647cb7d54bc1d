/**
 * Cluster shapes: which members a simulated cluster has. Nodes are named
 * n1, n2, …; witnesses w1, w2, …
 */
import type { ClusterInfo, MemberInfo } from './process.js';

export interface ClusterShape {
  readonly name: string;
  readonly nodes: readonly string[];
  readonly witnesses: readonly string[];
}

/** The named shapes: `2n+w` (the reference picture: two clouds and a witness), `3n`, `5v` (3 nodes + 2 witnesses), `2n` (no witness). */
export const SHAPE_NAMES = ['2n+w', '3n', '5v', '2n', '3n+w', '4n+w', '5n'] as const;

/**
 * Parses a shape name: `Xn` (X nodes), `Xn+w` or `Xn+Yw` (with Y
 * witnesses), or `Xv` (X voters: ⌊X/2⌋+1 nodes and the rest witnesses, so
 * `5v` is 3 nodes + 2 witnesses).
 */
export function parseShape(name: string): ClusterShape {
  const v = /^(\d+)v$/.exec(name);
  if (v) {
    const voters = Number(v[1]);
    if (voters < 1 || voters > 15) throw new RangeError(`shape "${name}": between 1 and 15 voters`);
    const nodes = Math.floor(voters / 2) + 1;
    return makeShape(name, nodes, voters - nodes);
  }
  const m = /^(\d+)n(?:\+(\d*)w)?$/.exec(name);
  if (!m) throw new RangeError(`unknown shape "${name}": expected e.g. ${SHAPE_NAMES.join(', ')}`);
  const nodes = Number(m[1]);
  const witnesses = m[2] === undefined ? 0 : m[2] === '' ? 1 : Number(m[2]);
  if (nodes < 1 || nodes > 15 || witnesses > 15) throw new RangeError(`shape "${name}": between 1 and 15 nodes and at most 15 witnesses`);
  return makeShape(name, nodes, witnesses);
}

export function makeShape(name: string, nodes: number, witnesses: number): ClusterShape {
  return {
    name,
    nodes: Array.from({ length: nodes }, (_, i) => `n${i + 1}`),
    witnesses: Array.from({ length: witnesses }, (_, i) => `w${i + 1}`),
  };
}

export function clusterInfo(shape: ClusterShape): ClusterInfo {
  const members: MemberInfo[] = [
    ...shape.nodes.map((name) => ({ name, kind: 'node' as const })),
    ...shape.witnesses.map((name) => ({ name, kind: 'witness' as const })),
  ];
  const voters = members.map((m) => m.name);
  return { members, nodes: [...shape.nodes], witnesses: [...shape.witnesses], voters };
}

/** The smallest number of voters that is a majority of `voters`. */
export function majority(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

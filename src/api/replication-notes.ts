/**
 * What needs an operator's eye in a node's replication, in words, most
 * urgent first: an apply that failed (the node no longer follows its
 * primary), then what this node holds that nobody else has, then what its
 * primary has still to ship. `skyha status` and the console say the same.
 */
export interface ReplicationFacts {
  broken?: string;
  suspects?: number;
  pending?: number;
}

export function replicationNotes(r: ReplicationFacts, role: string | undefined): string[] {
  const notes: string[] = [];
  if (r.broken) notes.push(`APPLY FAILED (${r.broken}): restart this agent to resync`);
  if (r.suspects) notes.push(`${r.suspects} own change${r.suspects === 1 ? '' : 's'} to compare at the next resync`);
  if (role === 'primary' && r.pending) notes.push(`${r.pending} path${r.pending === 1 ? '' : 's'} to ship`);
  return notes;
}

/**
 * `skyha status` as text: the replication table puts first what needs the
 * operator (an apply that failed, changes only this node has), then what
 * is under way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClusterStatus } from '../../../src/api/cluster-view.js';
import type { ReplicationReport } from '../../../src/agent/mirror-replication.js';
import { renderStatus } from '../../../src/cli/commands/status.js';
import { replicationNotes } from '../../../src/api/replication-notes.js';

function replication(over: Partial<ReplicationReport>): ReplicationReport {
  return {
    position: { epoch: 3, seq: 120 }, watchedDirectories: 12, overflows: 0, pending: 0, shippedRecords: 0, appliedRecords: 0, suspects: 0,
    readOnly: { readOnly: true }, resyncsSent: { count: 0, records: 0, bytes: 0, running: [] }, resyncsReceived: { count: 0, records: 0, bytes: 0, conflicts: 0 },
    ...over,
  };
}

function cluster(nodes: Array<{ node: string; role: string; replication: ReplicationReport }>): ClusterStatus {
  return {
    cluster: 'shop', profile: 'lan', reports: {},
    members: nodes.map((n) => ({ name: n.node, role: 'node' as const, labels: {}, answered: true, seenAliveBy: [], seenDeadBy: [] })),
    modules: [{ name: 'db', kind: 'mirror', epoch: 3, nodes: nodes.map((n) => ({ answered: true, ...n })) }],
  };
}

/** The replication table's row of `node` (its third column is where the data is). */
const row = (text: string, node: string): string => text.split('\n').find((l) => new RegExp(`^db\\s+${node}\\s+3:120`).test(l))!;

test('the replication table shows a failed apply, own changes, paths to ship and resyncs, each on its node', () => {
  const text = renderStatus(cluster([
    { node: 'aws-1', role: 'primary', replication: replication({ pending: 7, readOnly: { readOnly: false }, resyncsSent: { count: 1, records: 5, bytes: 0, running: [{ to: 'azure-1', paths: 10, done: 5, bytes: 2 * 1024 * 1024 } as ReplicationReport['resyncsSent']['running'][number]] } }) },
    { node: 'azure-1', role: 'secondary', replication: replication({ broken: 'ENOSPC: no space left on device', suspects: 2 }) },
    { node: 'gcp-1', role: 'secondary', replication: replication({}) },
  ]));
  assert.match(text, /REPLICATION/);
  assert.match(row(text, 'aws-1'), /7 paths to ship; resync to azure-1 \[#{10}\.{10}\] 50% 5\/10 paths, 2\.0 MiB$/);
  assert.match(row(text, 'azure-1'), /APPLY FAILED \(ENOSPC: no space left on device\): restart this agent to resync; 2 own changes to compare at the next resync$/);
  assert.match(row(text, 'gcp-1'), /read-only\s+12\s+-$/);
});

test('the notes the console shows too: one of a kind, and paths to ship only on the primary', () => {
  assert.deepEqual(replicationNotes({ suspects: 1, pending: 1 }, 'primary'), ['1 own change to compare at the next resync', '1 path to ship']);
  assert.deepEqual(replicationNotes({ pending: 4 }, 'secondary'), [], 'a secondary ships nothing: its count is not the operator\'s concern');
  assert.deepEqual(replicationNotes({}, 'primary'), []);
});

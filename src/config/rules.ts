/**
 * Cross-field rules: what a schema cannot say. Each rule has a stable id that
 * appears in its errors ("[rule renew-within-lease]") and in the README.
 */
import { formatDuration as d } from '../core/duration.js';
import type { ClusterConfig, MemberConfig, ModuleConfig } from './model.js';
import { voters } from './model.js';
import type { ConfigProblem } from './problem.js';
import { didYouMean } from './problem.js';
import { TIMING_KEYS, type Timings } from './profiles.js';
import type { KeyPath } from './source.js';

export interface Rule {
  id: string;
  /** One sentence for the README's list of rules. */
  says: string;
  check(config: ClusterConfig, has: (path: KeyPath) => boolean): ConfigProblem[];
}

const memberPath = (m: MemberConfig): KeyPath => [m.role === 'node' ? 'nodes' : 'witnesses', m.name];
const modulePath = (m: ModuleConfig): KeyPath => ['modules', m.name];

function err(rule: string, path: KeyPath, message: string, extra: Partial<ConfigProblem> = {}): ConfigProblem {
  return { severity: 'error', kind: 'rule', rule, path, message, ...extra };
}

/** Path of a timing: the override when the file has one, else cluster.timings.X located at cluster.profile. */
function timingPath(field: keyof Timings, has: (p: KeyPath) => boolean): { path: KeyPath; locateAt?: KeyPath } {
  const path = ['cluster', 'timings', TIMING_KEYS[field]];
  if (has(path)) return { path };
  return { path, locateAt: has(['cluster', 'profile']) ? ['cluster', 'profile'] : ['cluster'] };
}
function timingValue(config: ClusterConfig, field: keyof Timings, has: (p: KeyPath) => boolean): string {
  const from = has(['cluster', 'timings', TIMING_KEYS[field]]) ? '' : ` (profile ${config.profile})`;
  return `${TIMING_KEYS[field]} ${d(config.timings[field])}${from}`;
}

export const RULES: readonly Rule[] = [
  {
    id: 'unique-member-names',
    says: 'A name belongs to one member: a witness cannot share a node\'s name.',
    check(config) {
      const nodeNames = new Set(config.nodes.map((n) => n.name));
      return config.witnesses
        .filter((w) => nodeNames.has(w.name))
        .map((w) => err('unique-member-names', memberPath(w), `expected a name no node uses, found ${JSON.stringify(w.name)}, which is also a node`, { target: 'key' }));
    },
  },
  {
    id: 'unique-endpoints',
    says: 'No two listeners share an address and port: links, APIs and gate ports of members on the same address are all different.',
    check(config) {
      const out: ConfigProblem[] = [];
      const taken = new Map<string, string>();
      const claim = (addr: string, port: number, what: string, path: KeyPath) => {
        const k = `${addr}:${port}`;
        const prior = taken.get(k);
        if (prior) out.push(err('unique-endpoints', path, `expected a port free on ${addr}, found ${port}, already used by ${prior}`));
        else taken.set(k, what);
      };
      for (const m of voters(config)) {
        claim(m.address, m.linkPort, `the link of ${m.name}`, [...memberPath(m), 'link_port']);
        claim(m.address, m.apiPort, `the API of ${m.name}`, [...memberPath(m), 'api_port']);
      }
      for (const mod of config.modules) {
        if (mod.kind !== 'farm' || !mod.gate) continue;
        for (const n of config.nodes.filter((x) => mod.nodes.includes(x.name))) {
          claim(n.address, mod.gate.port, `the gate of module ${mod.name} on ${n.name}`, [...modulePath(mod), 'gate', 'port']);
        }
        if (mod.gate.port === mod.port) {
          out.push(err('unique-endpoints', [...modulePath(mod), 'gate', 'port'], `expected a gate port other than the application's port ${mod.port}, found ${mod.gate.port}`));
        }
      }
      return out;
    },
  },
  {
    id: 'unique-data-dirs',
    says: 'Members on the same address keep their state in different data directories.',
    check(config) {
      const out: ConfigProblem[] = [];
      const taken = new Map<string, string>();
      for (const m of voters(config)) {
        const prior = taken.get(m.dataDir);
        if (prior) out.push(err('unique-data-dirs', [...memberPath(m), 'data_dir'], `expected a data directory of its own, found ${m.dataDir}, also used by ${prior}`, { locateAt: memberPath(m) }));
        else taken.set(m.dataDir, m.name);
      }
      return out;
    },
  },
  {
    id: 'tls-per-member',
    says: 'With more than one member, `tls.cert` and `tls.key` contain `{member}`, so each member has its own identity.',
    check(config) {
      const members = voters(config);
      const out: ConfigProblem[] = [];
      for (const field of ['cert', 'key'] as const) {
        const seen = new Map<string, string>();
        for (const m of members) {
          const prior = seen.get(m.tls[field]);
          if (prior) {
            out.push(err('tls-per-member', ['tls', field], `expected a path with {member} so that each member has its own ${field}, found ${m.tls[field]} shared by ${prior} and ${m.name}`));
            break;
          }
          seen.set(m.tls[field], m.name);
        }
      }
      return out;
    },
  },
  {
    id: 'module-nodes-exist',
    says: 'Every node a module names (in `nodes`, `preferred_node`, `gate.weights`) is a node of the cluster, not a witness.',
    check(config, has) {
      const out: ConfigProblem[] = [];
      const nodeNames = config.nodes.map((n) => n.name);
      const witnessNames = new Set(config.witnesses.map((w) => w.name));
      const why = (name: string) => (witnessNames.has(name) ? `${JSON.stringify(name)}, which is a witness (witnesses run no application)` : `${JSON.stringify(name)}, which is not defined${didYouMean(name, nodeNames)}`);
      for (const mod of config.modules) {
        if (has([...modulePath(mod), 'nodes'])) {
          mod.nodes.forEach((n, i) => {
            if (!nodeNames.includes(n)) out.push(err('module-nodes-exist', [...modulePath(mod), 'nodes', i], `expected one of the nodes ${nodeNames.join(', ')}, found ${why(n)}`));
          });
        }
        if (mod.kind === 'mirror' && mod.preferredNode && !mod.nodes.includes(mod.preferredNode)) {
          const where = nodeNames.includes(mod.preferredNode) ? `${JSON.stringify(mod.preferredNode)}, which does not run this module` : why(mod.preferredNode);
          out.push(err('preferred-node-exists', [...modulePath(mod), 'preferred_node'], `expected one of the module's nodes ${mod.nodes.join(', ')}, found ${where}`));
        }
        if (mod.kind === 'farm' && mod.gate) {
          for (const n of Object.keys(mod.gate.weights)) {
            if (!mod.nodes.includes(n)) out.push(err('module-nodes-exist', [...modulePath(mod), 'gate', 'weights', n], `expected one of the module's nodes ${mod.nodes.join(', ')}, found ${why(n)}`, { target: 'key' }));
          }
        }
      }
      return out;
    },
  },
  {
    id: 'preferred-node-exists',
    says: 'A mirror module\'s `preferred_node` is one of the nodes that run it.',
    check: () => [], // checked together with module-nodes-exist, which reports under this id
  },
  {
    id: 'mirror-needs-two-nodes',
    says: 'A mirror module runs on at least two nodes (someone must hold the replica).',
    check(config) {
      return config.modules
        .filter((m) => m.kind === 'mirror' && m.nodes.length < 2)
        .map((m) => err('mirror-needs-two-nodes', [...modulePath(m), 'nodes'], `expected at least two nodes for a mirror module, found ${m.nodes.length} (${m.nodes.join(', ')})`, { locateAt: modulePath(m) }));
    },
  },
  {
    id: 'failback-needs-preferred-node',
    says: '`failback` is only meaningful with a `preferred_node` to return to.',
    check(config, has) {
      return config.modules
        .filter((m) => m.kind === 'mirror' && !m.preferredNode && has([...modulePath(m), 'failback']))
        .map((m) => err('failback-needs-preferred-node', [...modulePath(m), 'failback'], 'expected a preferred_node to fail back to, found none; add preferred_node or remove failback'));
    },
  },
  {
    id: 'directories-disjoint',
    says: 'Replicated directories of mirror modules do not overlap (none inside another, within a module or across modules).',
    check(config) {
      const out: ConfigProblem[] = [];
      const seen: { dir: string; module: string }[] = [];
      const norm = (p: string) => (p.endsWith('/') ? p : p + '/');
      for (const mod of config.modules) {
        if (mod.kind !== 'mirror') continue;
        mod.directories.forEach((dir, i) => {
          const clash = seen.find((s) => norm(dir).startsWith(norm(s.dir)) || norm(s.dir).startsWith(norm(dir)));
          if (clash) out.push(err('directories-disjoint', [...modulePath(mod), 'directories', i], `expected a directory apart from the others, found ${dir}, which overlaps ${clash.dir} of module ${clash.module}`));
          else seen.push({ dir, module: mod.name });
        });
      }
      return out;
    },
  },
  {
    id: 'two-node-policy',
    says: 'Two nodes without a witness must choose `cluster.two_node_policy`; other shapes must not set it. `preferred_node_wins` needs a `preferred_node` on every mirror module.',
    check(config, has) {
      const twoBare = config.nodes.length === 2 && config.witnesses.length === 0;
      if (twoBare && !config.twoNodePolicy) {
        return [err('two-node-policy', ['cluster', 'two_node_policy'], 'expected a choice for two nodes without a witness: stop_when_alone or preferred_node_wins (or add a witness), found nothing', { locateAt: ['cluster'], target: 'key' })];
      }
      if (!twoBare && config.twoNodePolicy) {
        return [err('two-node-policy', ['cluster', 'two_node_policy'], `expected no two_node_policy for ${config.nodes.length} node(s) and ${config.witnesses.length} witness(es) (a majority decides), found ${config.twoNodePolicy}`)];
      }
      if (config.twoNodePolicy === 'preferred_node_wins') {
        return config.modules
          .filter((m) => m.kind === 'mirror' && !m.preferredNode)
          .map((m) => err('two-node-policy', [...modulePath(m), 'preferred_node'], 'expected a preferred_node, which two_node_policy preferred_node_wins needs to break ties, found nothing', { locateAt: modulePath(m), target: 'key' }));
      }
      void has;
      return [];
    },
  },
  {
    id: 'even-voters',
    says: 'Warning: an even number of voters (4 or more) gains nothing over one fewer; a witness breaks the tie.',
    check(config) {
      const n = voters(config).length;
      if (n >= 4 && n % 2 === 0) {
        return [{ severity: 'warning', kind: 'rule', rule: 'even-voters', path: ['witnesses'], locateAt: config.witnesses.length ? ['witnesses'] : ['nodes'], message: `expected an odd number of voters, found ${n}: a split in two halves leaves no majority; add or remove a witness` }];
      }
      return [];
    },
  },
  {
    id: 'heartbeat-order',
    says: '`heartbeat_interval` < `suspect_after` < `dead_after`.',
    check(config, has) {
      const t = config.timings;
      const out: ConfigProblem[] = [];
      if (!(t.heartbeatInterval < t.suspectAfter)) {
        out.push(err('heartbeat-order', timingPath('suspectAfter', has).path, `expected suspect_after greater than ${timingValue(config, 'heartbeatInterval', has)}, found ${timingValue(config, 'suspectAfter', has)}`, { locateAt: timingPath('suspectAfter', has).locateAt }));
      }
      if (!(t.suspectAfter < t.deadAfter)) {
        out.push(err('heartbeat-order', timingPath('deadAfter', has).path, `expected dead_after greater than ${timingValue(config, 'suspectAfter', has)}, found ${timingValue(config, 'deadAfter', has)}`, { locateAt: timingPath('deadAfter', has).locateAt }));
      }
      return out;
    },
  },
  {
    id: 'renew-within-lease',
    says: '`renew_interval` + `drift_margin` < `lease`: a primary renews before its lease can run out on any clock.',
    check(config, has) {
      const t = config.timings;
      if (t.renewInterval + t.driftMargin < t.lease) return [];
      const at = timingPath(has(['cluster', 'timings', 'renew_interval']) ? 'renewInterval' : 'lease', has);
      return [err('renew-within-lease', at.path, `expected renew_interval + drift_margin < lease, found ${timingValue(config, 'renewInterval', has)} + ${timingValue(config, 'driftMargin', has)} >= ${timingValue(config, 'lease', has)}`, { locateAt: at.locateAt })];
    },
  },
  {
    id: 'lease-within-failover-budget',
    says: '`lease` + `drift_margin` < `failover_budget`: a new primary can start within the promised time.',
    check(config, has) {
      const t = config.timings;
      if (t.lease + t.driftMargin < t.failoverBudget) return [];
      const at = timingPath(has(['cluster', 'timings', 'lease']) ? 'lease' : 'failoverBudget', has);
      return [err('lease-within-failover-budget', at.path, `expected lease + drift_margin < failover_budget, found ${timingValue(config, 'lease', has)} + ${timingValue(config, 'driftMargin', has)} >= ${timingValue(config, 'failoverBudget', has)}`, { locateAt: at.locateAt })];
    },
  },
  {
    id: 'checker-timeout-within-interval',
    says: 'A checker\'s `timeout` is at most its `interval`, so checks never pile up.',
    check(config) {
      const out: ConfigProblem[] = [];
      for (const mod of config.modules) {
        mod.checkers.forEach((c, i) => {
          if (c.timeout > c.interval) out.push(err('checker-timeout-within-interval', [...modulePath(mod), 'checkers', i, 'timeout'], `expected at most the interval ${d(c.interval)}, found ${d(c.timeout)}`, { locateAt: [...modulePath(mod), 'checkers', i] }));
        });
      }
      return out;
    },
  },
  {
    id: 'checker-within-gate-budget',
    says: 'For farm modules, a checker\'s `interval` x `fall` fits in `gate_budget`, so a failed node leaves the gate in the promised time.',
    check(config, has) {
      const out: ConfigProblem[] = [];
      for (const mod of config.modules) {
        if (mod.kind !== 'farm') continue;
        mod.checkers.forEach((c, i) => {
          if (c.interval * c.fall > config.timings.gateBudget) {
            out.push(err('checker-within-gate-budget', [...modulePath(mod), 'checkers', i, 'interval'], `expected interval x fall within ${timingValue(config, 'gateBudget', has)}, found ${d(c.interval)} x ${c.fall} = ${d(c.interval * c.fall)}; lower interval or fall, or raise cluster.timings.gate_budget`, { locateAt: [...modulePath(mod), 'checkers', i] }));
          }
        });
      }
      return out;
    },
  },
];

export function checkRules(config: ClusterConfig, has: (path: KeyPath) => boolean): ConfigProblem[] {
  return RULES.flatMap((r) => r.check(config, has));
}

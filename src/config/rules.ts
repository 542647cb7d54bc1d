/**
 * Cross-field rules: what a schema cannot say. Each rule has a stable id that
 * appears in its errors ("[rule renew-within-lease]") and in the README.
 */
import { posix } from 'node:path';
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

/**
 * Where a timing rule points: the first of the timings involved that the file
 * overrides under cluster.timings (that is what the operator changed), else
 * the first one, located at cluster.profile (or the cluster key).
 */
function timingPath(fields: readonly (keyof Timings)[], has: (p: KeyPath) => boolean): { path: KeyPath; locateAt?: KeyPath; target?: 'key' } {
  const key = (f: keyof Timings): KeyPath => ['cluster', 'timings', TIMING_KEYS[f]];
  const set = fields.find((f) => has(key(f)));
  if (set) return { path: key(set) };
  const path = key(fields[0]!);
  if (has(['cluster', 'profile'])) return { path, locateAt: ['cluster', 'profile'] };
  return { path, locateAt: ['cluster'], target: 'key' };
}
function timingValue(config: ClusterConfig, field: keyof Timings, has: (p: KeyPath) => boolean): string {
  const from = has(['cluster', 'timings', TIMING_KEYS[field]]) ? '' : ` (profile ${config.profile})`;
  return `${TIMING_KEYS[field]} ${d(config.timings[field])}${from}`;
}
function timingRule(rule: string, has: (p: KeyPath) => boolean, fields: readonly (keyof Timings)[], expected: string, found: string): ConfigProblem {
  const at = timingPath(fields, has);
  return err(rule, at.path, `expected ${expected}, found ${found}`, { ...(at.locateAt ? { locateAt: at.locateAt } : {}), ...(at.target ? { target: at.target } : {}) });
}

/** Witnesses that reuse a node's name are reported once, by unique-member-names; the other rules skip them. */
function distinctVoters(config: ClusterConfig): readonly MemberConfig[] {
  const nodeNames = new Set(config.nodes.map((n) => n.name));
  return [...config.nodes, ...config.witnesses.filter((w) => !nodeNames.has(w.name))];
}

/** Members on loopback addresses share one machine. */
function hostOf(address: string): string {
  return /^(127\.|::1$|localhost$)/i.test(address) ? 'this machine (loopback)' : address;
}

/** Where a checker's interval or timeout comes from, when not from the checker itself. */
function checkerSource(config: ClusterConfig, has: (p: KeyPath) => boolean, checkerPath: KeyPath, key: 'interval' | 'timeout'): string {
  if (has([...checkerPath, key])) return '';
  const timing = key === 'interval' ? 'check_interval' : 'check_timeout';
  return has(['cluster', 'timings', timing]) ? ` (cluster.timings.${timing})` : ` (profile ${config.profile} ${timing})`;
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
    says: 'No two listeners share an address and port: links, APIs, farm applications and gates of members on the same address are all different (so the nodes of a farm module have different addresses).',
    check(config, has) {
      const out: ConfigProblem[] = [];
      const taken = new Map<string, string>();
      /** Takes address:port for `what`; returns who had it already. */
      const claim = (addr: string, port: number, what: string): string | undefined => {
        const k = `${addr}:${port}`;
        const prior = taken.get(k);
        if (!prior) taken.set(k, what);
        return prior;
      };
      for (const m of distinctVoters(config)) {
        for (const [field, port, what] of [['link_port', m.linkPort, `the link of ${m.name}`], ['api_port', m.apiPort, `the API of ${m.name}`]] as const) {
          const prior = claim(m.address, port, what);
          const path = [...memberPath(m), field];
          if (prior) out.push(err('unique-endpoints', path, `expected a port free on ${m.address}, found ${port}, already used by ${prior}`, has(path) ? {} : { locateAt: memberPath(m), target: 'key' }));
        }
      }
      // A farm module listens on every node it runs on: the application on `port`, the gate on `gate.port`.
      // One error per key, naming every node where the port is taken.
      for (const mod of config.modules) {
        if (mod.kind !== 'farm') continue;
        // Two nodes of the module at one address would both listen on the same ports there.
        const byAddress = new Map<string, MemberConfig[]>();
        for (const n of config.nodes.filter((x) => mod.nodes.includes(x.name))) byAddress.set(n.address, [...(byAddress.get(n.address) ?? []), n]);
        const shared = [...byAddress].filter(([, ns]) => ns.length > 1);
        if (shared.length > 0) {
          const path = [...modulePath(mod), 'nodes'];
          const ports = `the application on port ${mod.port}${mod.gate ? ` and the gate on port ${mod.gate.port}` : ''}`;
          out.push(err('unique-endpoints', path, `expected the module's nodes at different addresses (each one runs ${ports}), found ${shared.map(([a, ns]) => `${ns.map((n) => n.name).join(', ')} at ${a}`).join('; ')}`, has(path) ? {} : { locateAt: modulePath(mod), target: 'key' }));
        }
        const nodes = [...byAddress.values()].map((ns) => ns[0]!);
        const listen = (port: number, what: string, path: KeyPath) => {
          const priors = nodes.map((n) => claim(n.address, port, `${what} on ${n.name}`)).filter((p): p is string => p !== undefined);
          if (priors.length > 0) out.push(err('unique-endpoints', path, `expected a port free on the module's nodes, found ${port}, already used by ${priors.join(' and ')}`));
        };
        listen(mod.port, `the application of module ${mod.name}`, [...modulePath(mod), 'port']);
        if (!mod.gate) continue;
        if (mod.gate.port === mod.port) {
          out.push(err('unique-endpoints', [...modulePath(mod), 'gate', 'port'], `expected a gate port other than the application's port ${mod.port}, found ${mod.gate.port}`));
        } else {
          listen(mod.gate.port, `the gate of module ${mod.name}`, [...modulePath(mod), 'gate', 'port']);
        }
      }
      return out;
    },
  },
  {
    id: 'unique-data-dirs',
    says: 'Members on the same address keep their state in different data directories.',
    check(config, has) {
      const out: ConfigProblem[] = [];
      const taken = new Map<string, string>();
      for (const m of distinctVoters(config)) {
        const host = hostOf(m.address);
        const k = `${host}\0${posix.resolve(m.dataDir)}`; // "/var/lib/skyha/" is "/var/lib/skyha"
        const prior = taken.get(k);
        const path = [...memberPath(m), 'data_dir'];
        if (prior) out.push(err('unique-data-dirs', path, `expected a data directory of its own, found ${m.dataDir}, also used by ${prior} on ${host}`, has(path) ? {} : { locateAt: memberPath(m), target: 'key' }));
        else taken.set(k, m.name);
      }
      return out;
    },
  },
  {
    id: 'tls-per-member',
    says: 'With more than one member, `tls.cert` and `tls.key` contain `{member}`, so each member has its own identity.',
    check(config, has) {
      const members = distinctVoters(config);
      const out: ConfigProblem[] = [];
      for (const field of ['cert', 'key'] as const) {
        const seen = new Map<string, MemberConfig>();
        for (const m of members) {
          const prior = seen.get(m.tls[field]);
          if (prior) {
            // Point at the member's own tls.cert/key when the file sets one (that is what clashes), else at tls.cert/key.
            const own = [m, prior].map((x) => [...memberPath(x), 'tls', field]).find((p) => has(p));
            if (own) out.push(err('tls-per-member', own, `expected ${field === 'cert' ? 'a certificate' : 'a key'} file of its own, found ${m.tls[field]}, also used by ${own[1] === m.name ? prior.name : m.name}`));
            else out.push(err('tls-per-member', ['tls', field], `expected a path with {member} so that each member has its own ${field}, found ${m.tls[field]} shared by ${prior.name} and ${m.name}`, has(['tls', field]) ? {} : { locateAt: has(['tls']) ? ['tls'] : [], target: 'key' }));
            break;
          }
          seen.set(m.tls[field], m);
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
        // The module's nodes that exist (names in `nodes` that do not are reported above, once);
        // a name that is a node but not one of them "does not run this module".
        const runs = mod.nodes.filter((n) => nodeNames.includes(n));
        const notHere = (n: string) => (nodeNames.includes(n) ? `${JSON.stringify(n)}, which does not run this module` : why(n));
        const theirs = runs.length > 0 ? `one of the module's nodes ${runs.join(', ')}` : 'one of the module\'s nodes (it names none that exists)';
        if (mod.kind === 'mirror' && mod.preferredNode && !mod.nodes.includes(mod.preferredNode)) {
          out.push(err('preferred-node-exists', [...modulePath(mod), 'preferred_node'], `expected ${theirs}, found ${notHere(mod.preferredNode)}`));
        }
        if (mod.kind === 'farm' && mod.gate) {
          for (const n of Object.keys(mod.gate.weights)) {
            if (!mod.nodes.includes(n)) out.push(err('module-nodes-exist', [...modulePath(mod), 'gate', 'weights', n], `expected ${theirs}, found ${notHere(n)}`, { target: 'key' }));
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
    check(config, has) {
      return config.modules
        .filter((m) => m.kind === 'mirror' && m.nodes.length < 2)
        .map((m) => {
          const path = [...modulePath(m), 'nodes'];
          if (has(path)) return err('mirror-needs-two-nodes', path, `expected at least two nodes for a mirror module, found ${m.nodes.length} (${m.nodes.join(', ')})`);
          return err('mirror-needs-two-nodes', path, `expected at least two nodes for a mirror module, found ${m.nodes.length}: without nodes it runs on every node, and the cluster has only ${m.nodes.join(', ')}`, { locateAt: modulePath(m), target: 'key' });
        });
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
      // Compare normalized paths ("/data/../srv/" is "/srv"), each with one trailing slash.
      const norm = (p: string) => posix.normalize(p).replace(/\/*$/, '/');
      for (const mod of config.modules) {
        if (mod.kind !== 'mirror') continue;
        mod.directories.forEach((dir, i) => {
          const clash = seen.find((s) => norm(dir).startsWith(norm(s.dir)) || norm(s.dir).startsWith(norm(dir)));
          const how = (c: { dir: string }) => (norm(c.dir) === norm(dir) ? 'is the same directory as' : norm(dir).startsWith(norm(c.dir)) ? 'is inside' : 'contains');
          if (clash) out.push(err('directories-disjoint', [...modulePath(mod), 'directories', i], `expected a directory apart from the others, found ${dir}, which ${how(clash)} ${clash.dir} of module ${clash.module}`));
          else seen.push({ dir, module: mod.name });
        });
      }
      return out;
    },
  },
  {
    id: 'two-node-policy',
    says: 'Two nodes without a witness must choose `cluster.two_node_policy`; other shapes must not set it. `preferred_node_wins` needs a `preferred_node` on every mirror module.',
    check(config) {
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
      return [];
    },
  },
  {
    id: 'api-users-not-members',
    says: 'An API user does not share a member\'s name: a member\'s certificate acts as `admin`, and a name names one identity.',
    check(config) {
      const members = new Set(voters(config).map((m) => m.name));
      return config.api.users.filter((u) => members.has(u.name)).map((u) => err('api-users-not-members', ['api', 'users', u.name], `expected a user name that is not a member's, found ${u.name}, which is a ${config.nodes.some((n) => n.name === u.name) ? 'node' : 'witness'}`, { target: 'key' }));
    },
  },
  {
    id: 'api-tls-off-on-loopback',
    says: 'Warning: with `api.tls: false`, tokens and cluster data cross the network in clear unless every member listens on loopback.',
    check(config, has) {
      if (config.api.tls) return [];
      const exposed = voters(config).filter((m) => !/^(127\.|::1$|localhost$)/i.test(m.bind));
      if (!exposed.length) return [];
      return [{ severity: 'warning', kind: 'rule', rule: 'api-tls-off-on-loopback', path: ['api', 'tls'], ...(has(['api', 'tls']) ? {} : { locateAt: ['api'] }), message: `expected HTTPS for an API reachable from the network (${exposed.map((m) => m.name).join(', ')} listen beyond loopback), found api.tls: false: tokens travel in clear` }];
    },
  },
  {
    id: 'even-voters',
    says: 'Warning: an even number of voters (4 or more) gains nothing over one fewer; a witness breaks the tie.',
    check(config) {
      const n = voters(config).length;
      if (n >= 4 && n % 2 === 0) {
        return [{ severity: 'warning', kind: 'rule', rule: 'even-voters', path: ['witnesses'], locateAt: config.witnesses.length ? ['witnesses'] : ['nodes'], target: 'key', message: `expected an odd number of voters, found ${n}: a split in two halves leaves no majority; add or remove a witness` }];
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
      const v = (f: keyof Timings) => timingValue(config, f, has);
      if (!(t.heartbeatInterval < t.suspectAfter)) {
        out.push(timingRule('heartbeat-order', has, ['suspectAfter', 'heartbeatInterval'], 'heartbeat_interval < suspect_after', `${v('heartbeatInterval')} >= ${v('suspectAfter')}`));
      }
      if (!(t.suspectAfter < t.deadAfter)) {
        out.push(timingRule('heartbeat-order', has, ['deadAfter', 'suspectAfter'], 'suspect_after < dead_after', `${v('suspectAfter')} >= ${v('deadAfter')}`));
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
      const v = (f: keyof Timings) => timingValue(config, f, has);
      return [timingRule('renew-within-lease', has, ['renewInterval', 'driftMargin', 'lease'], 'renew_interval + drift_margin < lease', `${v('renewInterval')} + ${v('driftMargin')} >= ${v('lease')}`)];
    },
  },
  {
    id: 'lease-within-failover-budget',
    says: '`lease` + `drift_margin` < `failover_budget`: a new primary can start within the promised time.',
    check(config, has) {
      const t = config.timings;
      if (t.lease + t.driftMargin < t.failoverBudget) return [];
      const v = (f: keyof Timings) => timingValue(config, f, has);
      return [timingRule('lease-within-failover-budget', has, ['lease', 'driftMargin', 'failoverBudget'], 'lease + drift_margin < failover_budget', `${v('lease')} + ${v('driftMargin')} >= ${v('failoverBudget')}`)];
    },
  },
  {
    id: 'checker-timeout-within-interval',
    says: 'A checker\'s `timeout` is at most its `interval`, so checks never pile up.',
    check(config, has) {
      const out: ConfigProblem[] = [];
      for (const mod of config.modules) {
        mod.checkers.forEach((c, i) => {
          if (c.timeout <= c.interval) return;
          const at: KeyPath = [...modulePath(mod), 'checkers', i];
          // Point at the checker's timeout, else its interval, else the checker: the values then come from cluster.timings or the profile, as the message says.
          const where = has([...at, 'timeout']) ? {} : has([...at, 'interval']) ? { locateAt: [...at, 'interval'] } : { locateAt: at, target: 'key' as const };
          out.push(err('checker-timeout-within-interval', [...at, 'timeout'], `expected a timeout of at most the interval ${d(c.interval)}${checkerSource(config, has, at, 'interval')}, found ${d(c.timeout)}${checkerSource(config, has, at, 'timeout')}`, where));
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
          if (c.interval * c.fall <= config.timings.gateBudget) return;
          const at: KeyPath = [...modulePath(mod), 'checkers', i];
          const where = has([...at, 'interval']) ? {} : has([...at, 'fall']) ? { locateAt: [...at, 'fall'] } : { locateAt: at, target: 'key' as const };
          out.push(err('checker-within-gate-budget', [...at, 'interval'], `expected interval x fall within ${timingValue(config, 'gateBudget', has)}, found ${d(c.interval)}${checkerSource(config, has, at, 'interval')} x ${c.fall} = ${d(c.interval * c.fall)}; lower interval or fall, or raise cluster.timings.gate_budget`, where));
        });
      }
      return out;
    },
  },
];

export function checkRules(config: ClusterConfig, has: (path: KeyPath) => boolean): ConfigProblem[] {
  return RULES.flatMap((r) => r.check(config, has));
}

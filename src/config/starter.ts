/**
 * The starter config that `skyha init` writes: a commented YAML file that
 * teaches the format and is valid as written (`skyha validate` says ok, also
 * with `--node` for each member once the certificates are next to it).
 */
import { parse } from 'yaml';
import type { TwoNodePolicy } from './model.js';

export interface StarterOptions {
  /** The cluster's name. */
  cluster: string;
  /** Node names, at least one, in order; the first is the mirror example's preferred node. */
  nodes: readonly string[];
  /** Witness names; may be empty. */
  witnesses: readonly string[];
  /** Only for exactly two nodes and no witness; default `stop_when_alone` there. */
  twoNodePolicy?: TwoNodePolicy;
}

/** Documentation address ranges (RFC 5737): TEST-NET-1, -2 and -3. */
const DOC_NETS = ['192.0.2', '198.51.100', '203.0.113'] as const;

/** The i-th member's example address: spread over the three ranges, all different. */
const exampleAddress = (i: number): string => `${DOC_NETS[i % DOC_NETS.length]}.${10 + Math.floor(i / DOC_NETS.length)}`;

interface Place {
  cloud: string;
  region?: string;
  zone?: string;
}

/** Where the reference picture puts a member, judging by its name; `index` spreads members of one cloud over zones. */
function placeOf(name: string, index: number): Place {
  if (name.startsWith('aws-')) return { cloud: 'aws', region: 'eu-west-1', zone: `eu-west-1${'abc'[index % 3]}` };
  if (name.startsWith('azure-')) return { cloud: 'azure', region: 'westeurope', zone: `westeurope-${(index % 3) + 1}` };
  if (name.startsWith('gcp-')) return { cloud: 'gcp', region: 'europe-west1', zone: `europe-west1-${'bcd'[index % 3]}` };
  return { cloud: 'onprem' };
}

/** A YAML scalar that reads back as the same string (names such as `null`, `true` or `123` need quotes). */
function scalar(s: string): string {
  let back: unknown;
  try {
    back = parse(s);
  } catch {
    back = undefined;
  }
  return back === s && !/[#:{}[\],&*!|>'"%@`]/.test(s) ? s : JSON.stringify(s);
}

export function renderStarterConfig(options: StarterOptions): string {
  const { cluster, nodes, witnesses } = options;
  if (nodes.length === 0) throw new RangeError('a cluster needs at least one node');
  const members = [...nodes, ...witnesses];
  if (new Set(members).size !== members.length) throw new RangeError('member names must be unique');
  if (members.length > DOC_NETS.length * 240) throw new RangeError('too many members for example addresses');
  const twoBare = nodes.length === 2 && witnesses.length === 0;
  if (options.twoNodePolicy !== undefined && !twoBare) throw new RangeError('two_node_policy applies only to two nodes without a witness');
  const twoNodePolicy: TwoNodePolicy | undefined = twoBare ? (options.twoNodePolicy ?? 'stop_when_alone') : undefined;

  const perCloud = new Map<string, number>();
  const place = new Map<string, Place>();
  const address = new Map<string, string>();
  members.forEach((name, i) => {
    const cloudKey = placeOf(name, 0).cloud;
    const n = perCloud.get(cloudKey) ?? 0;
    perCloud.set(cloudKey, n + 1);
    place.set(name, placeOf(name, n));
    address.set(name, exampleAddress(i));
  });
  const sites = new Set(members.map((m) => `${place.get(m)!.cloud}/${place.get(m)!.region ?? ''}`));
  const profile = sites.size > 1 ? 'wan' : 'lan';
  const first = nodes[0]!;
  const voters = members.length;

  const out: string[] = [];
  const line = (text = '') => out.push(text);

  line(`# skyha.yaml: the config of cluster ${JSON.stringify(cluster)}, written by \`skyha init\`.`);
  line('#');
  line('# One file describes the whole cluster: give every node and witness the same');
  line('# file. Check it with `skyha validate skyha.yaml`; on each member, add');
  line('# `--node NAME` to check that member\'s certificate and key as well.');
  line('# Editors that understand JSON Schema can check it as you type with');
  line('# schema/skyha.schema.json from the skyha package.');
  line('#');
  line('# Durations take a unit: 250ms, 2s, 5m. Relative paths are relative to this file.');
  line('# Commented-out keys show more options, with their defaults where they have one.');
  line();

  line('# ---------------------------------------------------------------------------');
  line('# The cluster: its name, timing profile and quorum choices.');
  line('cluster:');
  line('  # Links refuse members of another cluster: the name is in every certificate.');
  line(`  name: ${scalar(cluster)}`);
  line('  # Timing profile: lan (one site or zone; fastest failover), wan (across clouds:');
  line('  # slower to suspect a peer, fewer false alarms), local (a demo on one machine),');
  line('  # test (fast, for tests).');
  line(profile === 'wan' ? '  # The members below are in more than one place, hence wan.' : '  # The members below are in one place, hence lan.');
  line(`  profile: ${profile}`);
  line('  # Override single timings of the profile; `skyha validate` checks the rules');
  line('  # between them (e.g. renew_interval + drift_margin < lease).');
  line('  # timings:');
  line('  #   heartbeat_interval: 500ms');
  line('  #   lease: 5s');
  if (twoNodePolicy) {
    line('  # Two nodes and no witness: when the two lose each other, neither can tell a');
    line('  # dead peer from a broken network, and a majority of two is both. You choose:');
    line('  #   stop_when_alone      a node that loses its peer stops being primary. Never');
    line('  #                        two primaries, but no automatic failover: the');
    line('  #                        application waits until both are back or you act.');
    line('  #   preferred_node_wins  each mirror module\'s preferred_node keeps running');
    line('  #                        alone; the other node never takes over without it.');
    line('  #                        Automatic recovery when the other node fails, none');
    line('  #                        when the preferred node does.');
    line('  # A witness in a third place (`skyha init --witness NAME`) gives you both safety');
    line('  # and automatic failover; then remove this key.');
    line(`  two_node_policy: ${twoNodePolicy}`);
  }
  line('  # Where each member keeps its state (leases, dirty sets, events), in a');
  line('  # directory named after the member.');
  line('  data_dir: /var/lib/skyha');
  line();

  line('# ---------------------------------------------------------------------------');
  line('# The links between members are mutual TLS. `skyha init` wrote the cluster CA and');
  line('# one certificate and key per member into certs/; {member} stands for the');
  line('# member\'s name, which the certificate\'s SAN carries. Each member needs ca.crt');
  line('# and its own .crt and .key (mode 0600); keep ca.key off the members.');
  line('tls:');
  line('  ca: certs/ca.crt');
  line('  cert: "certs/{member}.crt"');
  line('  key: "certs/{member}.key"');
  line();

  /** A line with a comment aligned at one column. */
  const commented = (text: string, comment: string) => line(`${text.padEnd(26)} # ${comment}`);
  const memberBlock = (name: string, what: 'node' | 'witness') => {
    const p = place.get(name)!;
    line(`  ${scalar(name)}:`);
    commented(`    address: ${address.get(name)!}`, 'replace with the address the other members use');
    commented('    # bind: 10.0.0.10', 'the local address to listen on, if not `address` (NAT)');
    commented('    link_port: 7400', 'the mutual-TLS link');
    commented('    api_port: 7401', what === 'node' ? 'REST API, /health/MODULE, /metrics, console' : "/metrics and the witness's status");
    commented('    labels:', 'where it runs; the console groups members by these');
    line(`      cloud: ${scalar(p.cloud)}`);
    if (p.region) line(`      region: ${scalar(p.region)}`);
    else line('      # region: dc-1');
    if (p.zone) line(`      zone: ${scalar(p.zone)}`);
    else line('      # zone: room-1');
  };

  line('# ---------------------------------------------------------------------------');
  line('# The nodes: machines that run `skyha agent --config skyha.yaml --node NAME`.');
  line('# The addresses are documentation examples (RFC 5737): replace each with the');
  line('# address the other members use to reach that node.');
  line('nodes:');
  nodes.forEach((n) => memberBlock(n, 'node'));
  line();

  line('# ---------------------------------------------------------------------------');
  line('# Witnesses: small voters in a third place (`skyha witness --config skyha.yaml');
  line('# --name NAME`). They run no application and store no data; they break ties, so');
  line('# that the side of a split that still reaches a majority keeps working.');
  if (voters % 2 === 0 && voters >= 4) {
    line(`# Note: ${voters} voters is an even number; a split in two halves leaves no majority.`);
    line('# Add or remove a witness to make the count odd.');
  }
  if (witnesses.length > 0) {
    line('witnesses:');
    witnesses.forEach((w) => memberBlock(w, 'witness'));
  } else {
    line('# This cluster has none. To add one:');
    line('# witnesses:');
    line(`#   ${members.includes('witness-1') ? 'witness-9' : 'witness-1'}:`);
    line(`#     address: ${exampleAddress(members.length)}`);
    line('#     labels:');
    line('#       cloud: onprem');
  }
  line();

  line('# ---------------------------------------------------------------------------');
  line('# The Access Gate: the load balancer of farm modules, inside every agent.');
  line('gate:');
  line('  # builtin (Node.js) or haproxy (skyha writes HAProxy\'s config and drives it).');
  line('  engine: builtin');
  line('  # haproxy_binary: /usr/sbin/haproxy');
  line();

  line('# ---------------------------------------------------------------------------');
  line('# The structured log (stderr).');
  line('log:');
  line('  level: info   # trace, debug, info, warn, error, fatal');
  line('  format: auto  # auto (readable on a terminal, JSON lines otherwise), json, pretty');
  line();

  line('# ---------------------------------------------------------------------------');
  line('# Modules: the applications skyha supervises. Replace the examples with yours.');
  line('# Scripts learn the module, node, role and epoch from SKYHA_* variables.');
  line('modules:');
  line('  # A farm module runs on every healthy node at once. The gate listens on');
  line('  # gate.port on every node and spreads requests over the nodes whose checkers');
  line('  # pass; point your users (or your cloud load balancer, using');
  line('  # GET /health/web on the API port) at the gate.');
  line('  web:');
  line('    kind: farm');
  line('    # nodes: [...]         # the nodes that run it; default: every node');
  line('    start: python3 -m http.server 8081 --bind 0.0.0.0 --directory /srv/web');
  line('    # stop: ...            # default: SIGTERM to its process group, SIGKILL after stop_timeout');
  line('    # start_timeout: 30s');
  line('    # stop_timeout: 30s');
  line('    # environment:');
  line('    #   WEB_ROOT: /srv/web');
  line('    port: 8081             # the application\'s port on each node, where the gate forwards');
  line('    checkers:              # process, tcp, http or command');
  line('      - kind: http');
  line('        url: http://127.0.0.1:8081/');
  line('        expect_status: 200');
  line('        # interval, timeout: the profile\'s check_interval and check_timeout;');
  line('        # interval x fall must fit in the gate budget');
  line('        # rise: 2              # passes in a row to count as healthy');
  line('        # fall: 3              # failures in a row to count as failed');
  line('    restart:               # restart up to max_restarts times within window,');
  line('      max_restarts: 3      # then leave the gate\'s pool on this node');
  line('      window: 5m');
  line('    gate:');
  line('      port: 8080           # the public port, on every node');
  line('      mode: http           # http (retries idempotent requests on another node) or tcp');
  line('      balance: round_robin # round_robin, least_connections, client_address, cookie');
  line('      # weights:');
  line(`      #   ${scalar(first)}: 1`);
  line();
  if (nodes.length >= 2) {
    line('  # A mirror module runs as primary on one node; its directories are replicated');
    line('  # to the other nodes, which take over when the primary fails. Do not write to');
    line('  # these directories on a secondary.');
    line('  db:');
    line('    kind: mirror');
    line('    start: /opt/db/bin/db-server --data /srv/db --port 5432');
    line('    directories:           # absolute paths, replicated from the primary');
    line('      - /srv/db');
    line(`    preferred_node: ${scalar(first)}  # primary whenever it is healthy and in sync`);
    line('    failback: automatic    # return to preferred_node by itself, or manual (skyha switchover)');
    line('    checkers:');
    line('      - kind: tcp');
    line('        port: 5432');
    line('    restart:               # up to 3 restarts in 5m, then fail over to an in-sync secondary');
    line('      max_restarts: 3');
    line('      window: 5m');
  } else {
    line('  # A mirror module (primary/secondary with replicated directories) needs at');
    line('  # least two nodes; add a node to use one:');
    line('  # db:');
    line('  #   kind: mirror');
    line('  #   start: /opt/db/bin/db-server --data /srv/db --port 5432');
    line('  #   directories: [/srv/db]');
    line(`  #   preferred_node: ${scalar(first)}`);
  }
  return out.join('\n') + '\n';
}

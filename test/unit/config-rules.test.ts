/**
 * Table-driven checks of the config model: every timing profile satisfies
 * every cross-field rule; the defaults the resolver fills in are the ones the
 * schema (and so the README) documents; durations parse and format.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { loadConfigText } from '../../src/config/load.js';
import type { ClusterConfig, FarmModuleConfig, MirrorModuleConfig } from '../../src/config/model.js';
import { PROFILES, TIMING_KEYS, type ProfileName, type Timings } from '../../src/config/profiles.js';
import { renderReference } from '../../src/config/reference.js';
import { checkRules, RULES } from '../../src/config/rules.js';
import { SCHEMA, checkSchema } from '../../src/config/schema.js';
import { formatDuration, parseDuration } from '../../src/core/duration.js';
import { REPO_ROOT } from '../helpers/cli.js';

const FILE = join(REPO_ROOT, 'test/fixtures/good/unit.yaml');

function load(text: string): ClusterConfig {
  const r = loadConfigText(FILE, text, { checkTls: false });
  assert.deepEqual(r.errors, [], text);
  assert.ok(r.config);
  return r.config;
}

/** A cluster with every kind of module and checker, all timings from the profile. */
const everything = (profile: ProfileName) => `
cluster: { name: c, profile: ${profile} }
nodes:
  a: { address: 192.0.2.1 }
  b: { address: 192.0.2.2 }
witnesses:
  w: { address: 192.0.2.3 }
modules:
  web:
    kind: farm
    start: ./start.sh
    port: 8080
    gate: { port: 80 }
    checkers: [ { kind: process }, { kind: tcp, port: 8080 }, { kind: http, url: "http://127.0.0.1:8080/" }, { kind: command, command: "true" } ]
  db:
    kind: mirror
    start: ./db.sh
    directories: [/srv/db]
    preferred_node: a
    checkers: [ { kind: process }, { kind: tcp, port: 5432 } ]
`;

const profiles = Object.keys(PROFILES) as ProfileName[];

describe('timing profiles', () => {
  for (const profile of profiles) {
    for (const rule of RULES) {
      it(`profile ${profile} satisfies rule ${rule.id}`, () => {
        const config = load(everything(profile));
        assert.equal(config.profile, profile);
        assert.deepEqual(config.timings, PROFILES[profile]);
        // `has` says nothing is written in the file, so every timing counts as the profile's.
        assert.deepEqual(rule.check(config, () => false), []);
      });
    }
    it(`profile ${profile} keeps its promises with the default checker (fall 3)`, () => {
      const t: Timings = PROFILES[profile];
      assert.ok(t.heartbeatInterval < t.suspectAfter && t.suspectAfter < t.deadAfter, 'heartbeat < suspect < dead');
      assert.ok(t.renewInterval + t.driftMargin < t.lease, 'renew + drift < lease');
      assert.ok(t.lease + t.driftMargin < t.failoverBudget, 'lease + drift < failover budget');
      assert.ok(t.checkTimeout <= t.checkInterval, 'check timeout <= interval');
      assert.ok(t.checkInterval * 3 <= t.gateBudget, 'check interval x 3 <= gate budget');
    });
  }

  it('DESIGN.md: with the lan profile a mirror primary moves in under 2 s and a farm node leaves the gate in under 1 s', () => {
    const t = PROFILES.lan;
    assert.ok(t.lease + t.driftMargin < 2000);
    assert.ok(t.failoverBudget <= 2000 && t.gateBudget <= 1000);
  });

  it('every timing has a key under cluster.timings in the schema, and no other key is there', () => {
    const keys = Object.keys(SCHEMA.properties.cluster.properties.timings.properties).sort();
    assert.deepEqual(keys, Object.values(TIMING_KEYS).sort());
  });

  it('a broken profile would be caught: each timing rule fails when its inequality is turned around', () => {
    // The rules must be able to fail: check them against configs that break each one.
    const broken: Record<string, string> = {
      'heartbeat-order': 'heartbeat_interval: 1s',
      'renew-within-lease': 'renew_interval: 590ms',
      'lease-within-failover-budget': 'failover_budget: 650ms',
      'checker-timeout-within-interval': 'check_timeout: 300ms',
      'checker-within-gate-budget': 'check_interval: 400ms\n    check_timeout: 100ms',
    };
    for (const [id, override] of Object.entries(broken)) {
      const text = everything('lan').replace('cluster: { name: c, profile: lan }', `cluster:\n  name: c\n  timings:\n    ${override}`);
      const r = loadConfigText(FILE, text, { checkTls: false });
      assert.ok(r.errors.some((e) => e.endsWith(`[rule ${id}]`)), `${id}: ${r.errors.join('\n')}`);
    }
  });
});

/** The `default` the schema gives for a key: on the property itself (next to its $ref) or on what the $ref names. */
function schemaDefault(...path: string[]): unknown {
  let node: any = SCHEMA;
  let found: unknown;
  for (const seg of path) {
    node = node.properties?.[seg] ?? node.additionalProperties;
    found = node?.default;
    while (node?.$ref) {
      node = node.$ref.split('/').slice(1).reduce((n: any, k: string) => n[k], SCHEMA);
      found ??= node?.default;
    }
    assert.ok(node, `no schema for ${path.join('.')}`);
  }
  assert.notEqual(found, undefined, `the schema documents no default for ${path.join('.')}`);
  return found;
}
const msDefault = (...path: string[]) => parseDuration(schemaDefault(...path) as string);

describe('defaults: what the resolver fills in is what the schema documents', () => {
  const minimal = load(`
cluster: { name: c }
nodes:
  a: { address: 192.0.2.1 }
  b: { address: 192.0.2.2 }
witnesses:
  w: { address: 192.0.2.3 }
modules:
  web:
    kind: farm
    start: ./start.sh
    port: 8080
    gate: { port: 80 }
    checkers: [ { kind: tcp, port: 8080 }, { kind: http, url: "http://127.0.0.1:8080/" } ]
  db:
    kind: mirror
    start: ./db.sh
    directories: [/srv/db]
`);
  const web = minimal.modules.find((m) => m.name === 'web') as FarmModuleConfig;
  const db = minimal.modules.find((m) => m.name === 'db') as MirrorModuleConfig;
  const node = minimal.nodes[0]!;
  const [tcp, http] = web.checkers;

  const table: [string, unknown, unknown][] = [
    ['cluster.profile', minimal.profile, schemaDefault('cluster', 'profile')],
    ['cluster.data_dir (plus the member name)', node.dataDir, `${schemaDefault('cluster', 'data_dir')}/a`],
    ['nodes.NAME.link_port', node.linkPort, schemaDefault('nodes', 'a', 'link_port')],
    ['nodes.NAME.api_port', node.apiPort, schemaDefault('nodes', 'a', 'api_port')],
    ['nodes.NAME.bind (the address)', node.bind, node.address],
    ['tls.ca', minimal.tls.ca, join(REPO_ROOT, 'test/fixtures/good', schemaDefault('tls', 'ca') as string)],
    ['tls.cert', node.tls.cert, join(REPO_ROOT, 'test/fixtures/good', (schemaDefault('tls', 'cert') as string).replace('{member}', 'a'))],
    ['tls.key', node.tls.key, join(REPO_ROOT, 'test/fixtures/good', (schemaDefault('tls', 'key') as string).replace('{member}', 'a'))],
    ['gate.engine', minimal.gate.engine, schemaDefault('gate', 'engine')],
    ['gate.haproxy_binary', minimal.gate.haproxyBinary, schemaDefault('gate', 'haproxy_binary')],
    ['log.level', minimal.log.level, schemaDefault('log', 'level')],
    ['log.format', minimal.log.format, schemaDefault('log', 'format')],
    ['modules.NAME.start_timeout', web.startTimeout, msDefault('modules', 'web', 'start_timeout')],
    ['modules.NAME.stop_timeout', web.stopTimeout, msDefault('modules', 'web', 'stop_timeout')],
    ['modules.NAME.restart.max_restarts', web.restart.maxRestarts, schemaDefault('modules', 'web', 'restart', 'max_restarts')],
    ['modules.NAME.restart.window', web.restart.window, msDefault('modules', 'web', 'restart', 'window')],
    ['modules.NAME.gate.mode', web.gate?.mode, schemaDefault('modules', 'web', 'gate', 'mode')],
    ['modules.NAME.gate.balance', web.gate?.balance, schemaDefault('modules', 'web', 'gate', 'balance')],
    ['modules.NAME.gate.connect_timeout', web.gate?.connectTimeout, msDefault('modules', 'web', 'gate', 'connect_timeout')],
    ['modules.NAME.gate.response_timeout', web.gate?.responseTimeout, msDefault('modules', 'web', 'gate', 'response_timeout')],
    ['modules.NAME.gate.max_connections', web.gate?.maxConnections, schemaDefault('modules', 'web', 'gate', 'max_connections')],
    ['modules.NAME.gate.weights', web.gate?.weights, {}],
    ['modules.NAME.nodes (every node)', web.nodes, ['a', 'b']],
    ['modules.NAME.working_dir (the file\'s directory)', web.workingDir, join(REPO_ROOT, 'test/fixtures/good')],
    ['modules.NAME.failback without preferred_node', db.failback, 'manual'],
    ['checkers[].rise', tcp?.rise, 2],
    ['checkers[].fall', tcp?.fall, 3],
    ['checkers[].interval (profile check_interval)', tcp?.interval, PROFILES.lan.checkInterval],
    ['checkers[].timeout (profile check_timeout)', tcp?.timeout, PROFILES.lan.checkTimeout],
    ['checkers[].warmup (the interval)', tcp?.warmup, tcp?.interval],
    ['checkers[].name', tcp?.name, 'tcp-0'],
    ['http checker method', http?.kind === 'http' ? http.method : undefined, SCHEMA.definitions.checker.oneOf[2].properties.method.default],
    ['http checker expect_status', http?.kind === 'http' ? http.expectStatus : undefined, SCHEMA.definitions.checker.oneOf[2].properties.expect_status.default],
  ];
  for (const [key, actual, documented] of table) {
    it(`${key}: ${JSON.stringify(documented)}`, () => {
      assert.notEqual(documented, undefined);
      assert.deepEqual(actual, documented);
    });
  }

  it('a tcp checker without host leaves it to the probe (the node\'s address), as the schema says', () => {
    assert.equal(tcp?.kind === 'tcp' ? tcp.host : 'not tcp', undefined);
    assert.equal(SCHEMA.definitions.checker.oneOf[1].properties.host.default, undefined);
    assert.match(SCHEMA.definitions.checker.oneOf[1].properties.host.description, /this node's address/);
  });

  it('the README reference gives rise 2 and fall 3, the values the resolver uses', () => {
    const ref = renderReference();
    assert.match(ref, /\| `rise` \| integer \| `2` \|/);
    assert.match(ref, /\| `fall` \| integer \| `3` \|/);
  });

  it('failback is automatic when a preferred node is set', () => {
    const c = load(everything('lan'));
    assert.equal((c.modules.find((m) => m.name === 'db') as MirrorModuleConfig).failback, 'automatic');
  });

  it('checker interval and timeout follow the profile and cluster.timings', () => {
    for (const profile of profiles) {
      const c = load(everything(profile));
      for (const ch of c.modules.flatMap((m) => m.checkers)) {
        assert.equal(ch.interval, PROFILES[profile].checkInterval);
        assert.equal(ch.timeout, PROFILES[profile].checkTimeout);
      }
    }
    const c = load(everything('wan').replace('profile: wan }', 'profile: wan, timings: { check_interval: 700ms, check_timeout: 600ms } }'));
    assert.deepEqual([...new Set(c.modules.flatMap((m) => m.checkers.map((ch) => [ch.interval, ch.timeout].join('/'))))], ['700/600']);
  });

  it('the resolved minimal config passes every rule', () => {
    assert.deepEqual(checkRules(minimal, () => false), []);
  });
});

describe('durations', () => {
  const good: [string, number][] = [
    ['0ms', 0],
    ['250ms', 250],
    ['2s', 2000],
    ['1.5s', 1500],
    ['0.25s', 250],
    ['1.0004s', 1000],
    ['0.0016s', 2],
    ['5m', 300_000],
    ['1.5m', 90_000],
    ['1h', 3_600_000],
    ['0.5h', 1_800_000],
  ];
  for (const [text, ms] of good) {
    it(`parses ${text} as ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  }
  const bad = ['', '5', '-1s', '+1s', '1 s', ' 1s', '1s ', '2S', '1.s', '.5s', '1e3ms', 's', '1d', '1us', '1,5s', '1s2', '0x10s', '１s'];
  for (const text of bad) {
    it(`refuses ${JSON.stringify(text)}, and so does the schema`, () => {
      assert.equal(parseDuration(text), undefined);
      const problems = checkSchema({ cluster: { name: 'c', timings: { lease: text } }, nodes: { a: { address: '192.0.2.1' } } });
      assert.deepEqual(problems.map((p) => p.path.join('.')), ['cluster.timings.lease']);
      assert.match(problems[0]!.message, /^expected a duration with a unit, such as 250ms, 2s or 5m, found the string /);
    });
  }
  it('the schema accepts exactly what parseDuration parses', () => {
    for (const [text] of good) {
      assert.deepEqual(checkSchema({ cluster: { name: 'c', timings: { lease: text } }, nodes: { a: { address: '192.0.2.1' } } }), [], text);
    }
  });

  const formatted: [number, string][] = [
    [0, '0ms'],
    [1, '1ms'],
    [250, '250ms'],
    [999, '999ms'],
    [1000, '1s'],
    [1500, '1.5s'],
    [1234, '1.234s'],
    [90_000, '90s'],
    [60_000, '1m'],
    [300_000, '5m'],
    [3_600_000, '1h'],
    [5_400_000, '90m'],
  ];
  for (const [ms, text] of formatted) {
    it(`formats ${ms} ms as ${text}`, () => assert.equal(formatDuration(ms), text));
  }

  it('formatDuration and parseDuration round-trip every whole number of milliseconds', () => {
    fc.assert(
      fc.property(fc.nat({ max: 10 * 24 * 3_600_000 }), (ms) => {
        assert.equal(parseDuration(formatDuration(ms)), ms);
      }),
      { numRuns: 2000 },
    );
  });
});

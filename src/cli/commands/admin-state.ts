/**
 * `skyha drain|ready|maint MODULE --node NODE --config FILE`: sets the admin
 * state of a farm module on one node, as HAProxy's server states are set:
 * `drain` takes no new requests and lets the open ones finish, `maint` takes
 * the node out and closes its connections, `ready` puts it back.
 *
 * Run anywhere the config file and credentials are: the command asks a
 * member's REST API (`PUT /v1/modules/MODULE/nodes/NODE/admin`), which passes
 * the change to the node that owns it. The node keeps the state across
 * restarts; every gate follows it within one link round trip.
 *
 * `skyha restart MODULE --node NODE`: restarts the module's application on
 * that node (or resets a module given up there); `skyha stop MODULE` and
 * `skyha start MODULE`: the module on every node. Through the API too.
 */
import type { Command } from 'commander';
import { SkyhaError } from '../../core/errors.js';
import type { AdminState } from '../../logic/farm-pool.js';

interface Options {
  config: string;
  node: string;
  via?: string;
  json?: boolean;
  token?: string;
}

const VERBS: ReadonlyArray<{ state: AdminState; says: string }> = [
  { state: 'drain', says: 'stop sending new requests of a farm module to a node; open ones finish' },
  { state: 'maint', says: 'take a node out of a farm module\'s gate (open connections are closed)' },
  { state: 'ready', says: 'put a node back into a farm module\'s gate' },
];

export function registerAdminStates(program: Command): void {
  for (const verb of VERBS) {
    program
      .command(`${verb.state} <module>`)
      .description(verb.says)
      .requiredOption('--config <file>', 'the cluster config file')
      .requiredOption('--node <node>', 'the node whose admin state changes')
      .option('--via <member>', 'the member whose API to ask first (default: the first that answers)')
      .option('--json', 'print the answer as JSON')
      .option('--token <token>', 'API bearer token (default: $SKYHA_TOKEN, else the certificate of a member whose key is readable here)')
      .action(async (module: string, opts: Options) => {
        const { requireConfig } = await import('../../config/load.js');
        const { config } = requireConfig(opts.config, { checkTls: false });
        const mod = config.modules.find((m) => m.name === module);
        if (!mod || mod.kind !== 'farm') throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `${module}: expected a farm module of ${config.name} (${config.modules.filter((m) => m.kind === 'farm').map((m) => m.name).join(', ') || 'none'})`);
        if (!mod.nodes.includes(opts.node)) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `--node: expected a node that runs ${module} (${mod.nodes.join(', ')}), found ${JSON.stringify(opts.node)}`);
        await act(config, opts, 'PUT', `/v1/modules/${encodeURIComponent(module)}/nodes/${encodeURIComponent(opts.node)}/admin`, { state: verb.state }, { module, node: opts.node, state: verb.state });
      });
  }
  for (const [verb, says] of [
    ['stop', 'stop a module on every node until `skyha start` (farm: out of the gates; mirror: no node takes the role); kept across restarts'],
    ['start', 'start a module stopped by `skyha stop` again on every node'],
  ] as const) {
    program
      .command(`${verb} <module>`)
      .description(says)
      .requiredOption('--config <file>', 'the cluster config file')
      .option('--via <member>', 'the member whose API to ask first (default: the first that answers)')
      .option('--json', 'print the answer as JSON')
      .option('--token <token>', 'API bearer token (default: $SKYHA_TOKEN, else the certificate of a member whose key is readable here)')
      .action(async (module: string, opts: Omit<Options, 'node'>) => {
        const { requireConfig } = await import('../../config/load.js');
        const { config } = requireConfig(opts.config, { checkTls: false });
        if (!config.modules.some((m) => m.name === module)) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `${module}: expected a module of ${config.name} (${config.modules.map((m) => m.name).join(', ') || 'none'})`);
        await act(config, { ...opts, node: '' }, 'POST', `/v1/modules/${encodeURIComponent(module)}/${verb}`, undefined, { module, [verb]: true });
      });
  }
  program
    .command('restart <module>')
    .description('restart a module\'s application on a node (a module given up there is reset and started)')
    .requiredOption('--config <file>', 'the cluster config file')
    .requiredOption('--node <node>', 'the node where the module restarts')
    .option('--via <member>', 'the member whose API to ask first (default: the first that answers)')
    .option('--json', 'print the answer as JSON')
    .option('--token <token>', 'API bearer token (default: $SKYHA_TOKEN, else the certificate of a member whose key is readable here)')
    .action(async (module: string, opts: Options) => {
      const { requireConfig } = await import('../../config/load.js');
      const { config } = requireConfig(opts.config, { checkTls: false });
      const mod = config.modules.find((m) => m.name === module);
      if (!mod) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `${module}: expected a module of ${config.name} (${config.modules.map((m) => m.name).join(', ') || 'none'})`);
      if (!mod.nodes.includes(opts.node)) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `--node: expected a node that runs ${module} (${mod.nodes.join(', ')}), found ${JSON.stringify(opts.node)}`);
      await act(config, opts, 'POST', `/v1/modules/${encodeURIComponent(module)}/nodes/${encodeURIComponent(opts.node)}/restart`, undefined, { module, node: opts.node, restart: true });
    });
}

async function act(config: import('../../config/model.js').ClusterConfig, opts: Options, method: string, path: string, body: unknown, json: Record<string, unknown>): Promise<void> {
  const { askCluster, failOn, openApi } = await import('../api-access.js');
  const client = openApi(config, opts.token);
  try {
    const { member, answer } = await askCluster<{ detail?: string }>(config, client, method, path, body, opts.via ? { via: opts.via } : {});
    failOn(member, answer);
    process.stdout.write(opts.json ? JSON.stringify({ ...json, via: member, detail: answer.body.detail ?? '' }) + '\n' : `${answer.body.detail ?? 'done'} (via ${member})\n`);
  } finally {
    client.close();
  }
}

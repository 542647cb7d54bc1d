/**
 * `skyha drain|ready|maint MODULE --node NODE --config FILE`: sets the admin
 * state of a farm module on one node, as HAProxy's server states are set:
 * `drain` takes no new requests and lets the open ones finish, `maint` takes
 * the node out and closes its connections, `ready` puts it back.
 *
 * Run on any node of the cluster: the command talks to the agent on this
 * machine through its control socket (`<data_dir>/run/control.sock`), and
 * that agent passes the change to the node that owns it. The node keeps the
 * state across restarts; every gate follows it within one link round trip.
 */
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { SkyhaError } from '../../core/errors.js';
import type { AdminState } from '../../logic/farm-pool.js';

interface Options {
  config: string;
  node: string;
  via?: string;
  json?: boolean;
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
      .option('--via <node>', 'the agent on this machine to ask (default: the one whose control socket is here)')
      .option('--json', 'print the answer as JSON')
      .action(async (module: string, opts: Options) => {
        const { requireConfig } = await import('../../config/load.js');
        const { controlRequest } = await import('../../agent/control-socket.js');
        const { config } = requireConfig(opts.config, { checkTls: false });
        const mod = config.modules.find((m) => m.name === module);
        if (!mod || mod.kind !== 'farm') throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `${module}: expected a farm module of ${config.name} (${config.modules.filter((m) => m.kind === 'farm').map((m) => m.name).join(', ') || 'none'})`);
        if (!mod.nodes.includes(opts.node)) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `--node: expected a node that runs ${module} (${mod.nodes.join(', ')}), found ${JSON.stringify(opts.node)}`);
        const candidates = config.nodes.filter((n) => (opts.via ? n.name === opts.via : true));
        if (opts.via && candidates.length === 0) throw new SkyhaError('SKYHA_ERR_CONFIG_UNKNOWN_MEMBER', `--via: no node named ${opts.via} in ${config.file}`);
        const sockets = candidates.map((n) => ({ node: n.name, path: join(n.dataDir, 'run', 'control.sock') })).filter((s) => existsSync(s.path));
        if (sockets.length === 0) {
          throw new SkyhaError('SKYHA_ERR_CONTROL_UNREACHABLE', `no agent of ${config.name} runs on this machine (no control socket under the data_dir of ${candidates.map((n) => n.name).join(', ')})`);
        }
        const by = `${userInfo().username}@cli`;
        let lastError = '';
        for (const s of sockets) {
          let reply;
          try {
            reply = await controlRequest(s.path, { op: 'admin', module, node: opts.node, state: verb.state, by });
          } catch (err) {
            lastError = `${s.path}: ${(err as Error).message}`;
            continue;
          }
          if (!reply.ok) throw new SkyhaError('SKYHA_ERR_CONTROL_REFUSED', `the agent ${s.node} refused: ${reply.error}`);
          process.stdout.write(opts.json ? JSON.stringify({ module, node: opts.node, state: verb.state, via: reply.member }) + '\n' : `${reply.detail ?? `${module} on ${opts.node}: ${verb.state}`} via ${reply.member}\n`);
          return;
        }
        throw new SkyhaError('SKYHA_ERR_CONTROL_UNREACHABLE', `no agent answered on its control socket (${lastError})`);
      });
  }
}

/**
 * `skyha barrier MODULE --config FILE [--timeout 5s]`: returns (exit 0) once
 * every change made to the mirror module's directories before the call is
 * durable on every in-sync secondary; fails (exit 1, SKYHA_ERR_BARRIER) on a
 * timeout, with no secondary in sync, or when no agent on this machine is
 * the module's primary — never early. An application calls it after its own
 * fsync, on the primary; the agent is asked through its control socket.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { SkyhaError } from '../../core/errors.js';
import { parseDuration } from '../../core/duration.js';

interface Options {
  config: string;
  timeout: string;
  json?: boolean;
}

export function registerBarrier(program: Command): void {
  program
    .command('barrier <module>')
    .description('wait until every change made before the call is durable on every in-sync secondary of a mirror module')
    .requiredOption('--config <file>', 'the cluster config file')
    .option('--timeout <duration>', 'give up after this long (e.g. 500ms, 5s)', '5s')
    .option('--json', 'print the answer as JSON')
    .action(async (module: string, opts: Options) => {
      const { requireConfig } = await import('../../config/load.js');
      const { controlRequest } = await import('../../agent/control-socket.js');
      const { config } = requireConfig(opts.config, { checkTls: false });
      const mod = config.modules.find((m) => m.name === module);
      if (!mod || mod.kind !== 'mirror') throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `${module}: expected a mirror module of ${config.name} (${config.modules.filter((m) => m.kind === 'mirror').map((m) => m.name).join(', ') || 'none'})`);
      const timeoutMs = parseDuration(opts.timeout);
      if (timeoutMs === undefined || timeoutMs <= 0 || timeoutMs > 600_000) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `--timeout: expected a duration up to 10m such as 500ms or 5s, found ${JSON.stringify(opts.timeout)}`);
      const sockets = config.nodes.filter((n) => mod.nodes.includes(n.name)).map((n) => ({ node: n.name, path: join(n.dataDir, 'run', 'control.sock') })).filter((s) => existsSync(s.path));
      if (sockets.length === 0) throw new SkyhaError('SKYHA_ERR_CONTROL_UNREACHABLE', `no agent of a node of ${module} runs on this machine (no control socket under their data_dir)`);
      const refusals: string[] = [];
      for (const s of sockets) {
        let reply;
        try {
          reply = await controlRequest(s.path, { op: 'barrier', module, timeoutMs }, timeoutMs + 2000);
        } catch (err) {
          refusals.push(`${s.node}: ${(err as Error).message}`);
          continue;
        }
        if (reply.ok) {
          process.stdout.write(opts.json ? JSON.stringify({ module, ok: true, primary: reply.member, detail: reply.detail }) + '\n' : `${reply.detail ?? 'done'}\n`);
          return;
        }
        // The primary answered: its failure is the answer. Another node only says it is not the primary.
        if (!/is not the primary/.test(reply.error)) throw new SkyhaError('SKYHA_ERR_BARRIER', `barrier of ${module} failed on ${s.node}: ${reply.error}`);
        refusals.push(`${s.node}: ${reply.error}`);
      }
      throw new SkyhaError('SKYHA_ERR_BARRIER', `no agent on this machine could run the barrier of ${module}: ${refusals.join('; ')}`);
    });
}

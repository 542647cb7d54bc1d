/**
 * Moving a mirror module's primary by hand:
 *
 *   skyha switchover MODULE [--to NODE] --config FILE   planned, no loss: the
 *     primary stops its application, a final barrier makes everything
 *     durable on the target, the lease is handed over, the target starts;
 *   skyha failover MODULE --to NODE --force --config FILE   when the
 *     automatic failover will not happen because NODE is not in sync (it may
 *     lack writes acknowledged by barriers): NODE takes the role anyway, and
 *     the log, events and status say that data may be lost.
 *
 * The command asks any member's REST API (which passes it to the node it
 * concerns); then it follows the members' status until the new primary runs,
 * a refusal is reported, or the timeout passes.
 */
import type { Command } from 'commander';
import { answerError } from '../../api/client.js';
import { SkyhaError } from '../../core/errors.js';
import type { ClusterConfig, MirrorModuleConfig } from '../../config/model.js';
import type { MirrorCommand } from '../../agent/control-socket.js';
import type { ClusterStatus } from '../../api/cluster-view.js';

interface Options {
  config: string;
  to?: string;
  force?: boolean;
  timeout: string;
  json?: boolean;
  token?: string;
}

/** Refusals the member machine reports for these commands (mirror-role.ts). */
const REFUSALS = new Set(['SWITCHOVER_ABORTED', 'NOT_PRIMARY', 'HAND_OVER_REFUSED', 'STALE_EPOCH_REFUSED']);

export function registerMirrorRole(program: Command): void {
  program
    .command('switchover <module>')
    .description('move a mirror module\'s primary to another in-sync node, without losing a write (stop, final barrier, hand over, start)')
    .requiredOption('--config <file>', 'the cluster config file')
    .option('--to <node>', 'the node to become primary (default: an in-sync secondary)')
    .option('--timeout <duration>', 'give up waiting after this long', '30s')
    .option('--json', 'print the outcome as JSON')
    .option('--token <token>', 'API bearer token (default: $SKYHA_TOKEN, else the certificate of a member whose key is readable here)')
    .action(async (module: string, opts: Options) => run('switchover', module, opts));
  program
    .command('failover <module>')
    .description('make NODE the primary of a mirror module although it is not in sync (with --force: writes acknowledged by barriers may be lost)')
    .requiredOption('--config <file>', 'the cluster config file')
    .requiredOption('--to <node>', 'the node to become primary')
    .option('--force', 'confirm that data acknowledged by barriers may be lost')
    .option('--timeout <duration>', 'give up waiting after this long', '30s')
    .option('--json', 'print the outcome as JSON')
    .option('--token <token>', 'API bearer token (default: $SKYHA_TOKEN, else the certificate of a member whose key is readable here)')
    .action(async (module: string, opts: Options) => run('force-failover', module, opts));
}

async function run(command: MirrorCommand, module: string, opts: Options): Promise<void> {
  const { requireConfig } = await import('../../config/load.js');
  const { parseDuration } = await import('../../core/duration.js');
  const { gatherStatus } = await import('../../api/cluster-view.js');
  const { askCluster, failOn, openApi } = await import('../api-access.js');
  const { config } = requireConfig(opts.config, { checkTls: false });
  const mod = config.modules.find((m): m is MirrorModuleConfig => m.name === module && m.kind === 'mirror');
  if (!mod) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `${module}: expected a mirror module of ${config.name} (${config.modules.filter((m) => m.kind === 'mirror').map((m) => m.name).join(', ') || 'none'})`);
  if (opts.to !== undefined && !mod.nodes.includes(opts.to)) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `--to: expected a node that runs ${module} (${mod.nodes.join(', ')}), found ${JSON.stringify(opts.to)}`);
  if (command === 'force-failover' && !opts.force) {
    throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `failover: a failover to an in-sync node happens by itself; to promote ${opts.to}, which may lack writes acknowledged by barriers, add --force (data may be lost)`);
  }
  const timeout = parseDuration(opts.timeout);
  if (timeout === undefined || timeout <= 0) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `--timeout: expected a duration such as 30s, found ${JSON.stringify(opts.timeout)}`);
  const client = openApi(config, opts.token);
  try {
    await follow(command, module, opts, timeout, config, (c, ms) => gatherStatus(c, ms, client), async () => {
      const path = `/v1/modules/${encodeURIComponent(module)}/${command === 'switchover' ? 'switchover' : 'failover'}`;
      const body = command === 'switchover' ? (opts.to ? { to: opts.to } : {}) : { to: opts.to, force: true };
      const { member, answer } = await askCluster<{ detail?: string }>(config, client, 'POST', path, body);
      if (answer.status === 409) throw new SkyhaError(command === 'switchover' ? 'SKYHA_ERR_SWITCHOVER_FAILED' : 'SKYHA_ERR_FAILOVER_FAILED', answerError(member, answer));
      failOn(member, answer);
      return answer.body.detail || `${command} of ${module} asked of ${member}`;
    });
  } finally {
    client.close();
  }
}

async function follow(command: MirrorCommand, module: string, opts: Options, timeout: number, config: ClusterConfig, gatherStatus: (c: ClusterConfig, timeout: number) => Promise<ClusterStatus>, ask: () => Promise<string>): Promise<void> {
  const before = await primaryOf(config, module, gatherStatus);
  const started = Date.now();
  const asked = await ask();
  if (!opts.json) process.stdout.write(`${asked}\n`);

  // Follow the members' own words until the role has moved, or a refusal comes.
  const code = command === 'switchover' ? 'SWITCHOVER_FAILED' : 'FAILOVER_FAILED';
  for (;;) {
    const status = await gatherStatus(config, 1000);
    const now = await primaryOf(config, module, async () => status);
    const moved = now && now.node !== before?.node && (opts.to === undefined || now.node === opts.to) && now.running;
    if (moved) {
      const took = Date.now() - started;
      if (opts.json) process.stdout.write(JSON.stringify({ module, command, primary: now.node, epoch: now.epoch, from: before?.node ?? null, tookMs: took }) + '\n');
      else process.stdout.write(`${now.node} is the primary of ${module} at epoch ${now.epoch} (was ${before?.node ?? 'none'}; ${took} ms)${command === 'force-failover' ? ' — forced: writes acknowledged on other nodes may be missing' : ''}\n`);
      return;
    }
    const refusal = Object.values(status.reports)
      .flatMap((r) => r.events)
      .find((e) => e.module === module && REFUSALS.has(e.reason) && Date.parse(e.at) >= started - 1000);
    if (refusal) throw new SkyhaError(`SKYHA_ERR_${code}`, `${command} of ${module} refused: ${refusal.text}`);
    if (Date.now() - started > timeout) throw new SkyhaError(`SKYHA_ERR_${code}`, `${command} of ${module}: no new primary${opts.to ? ` on ${opts.to}` : ''} within ${opts.timeout} (primary now: ${now?.node ?? 'none'})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function primaryOf(config: ClusterConfig, module: string, gather: (c: ClusterConfig, t: number) => Promise<ClusterStatus>): Promise<{ node: string; epoch: number; running: boolean } | undefined> {
  const status = await gather(config, 1000);
  for (const r of Object.values(status.reports)) {
    const m = r.modules.find((x) => x.name === module);
    if (m?.role === 'primary') return { node: r.member, epoch: m.epoch, running: m.app.status === 'running' };
  }
  return undefined;
}

/**
 * `skyha agent --config FILE --node NAME` and `skyha witness --config FILE
 * --name NAME`: one member in the foreground until SIGTERM or SIGINT. The
 * first signal stops it cleanly (a primary stops its application and releases
 * its lease); a second one exits at once.
 */
import type { Command } from 'commander';
import { SkyhaError } from '../../core/errors.js';

interface Options {
  config: string;
  node?: string;
  name?: string;
  logLevel?: string;
  logFormat?: string;
}

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the agent of one node in the foreground (supervision, links, lease, health endpoint)')
    .requiredOption('--config <file>', 'the cluster config file (the same on every member)')
    .requiredOption('--node <name>', 'which node of the config this machine is')
    .option('--log-level <level>', 'trace, debug, info, warn, error (default: log.level of the config)')
    .option('--log-format <format>', 'json or pretty (default: log.format of the config)')
    .addHelpText('after', '\nSIGTERM or SIGINT stops it cleanly: a primary stops its application and releases its\nlease, farm applications stop. A second signal exits at once (each application keeper\nthen stops its application when the lease deadline passes).')
    .action((opts: Options) => runMember('node', opts.node!, opts));
}

export function registerWitness(program: Command): void {
  program
    .command('witness')
    .description('run a witness in the foreground: a voter that breaks ties; runs no application, stores no data')
    .requiredOption('--config <file>', 'the cluster config file (the same on every member)')
    .requiredOption('--name <name>', 'which witness of the config this machine is')
    .option('--log-level <level>', 'trace, debug, info, warn, error (default: log.level of the config)')
    .option('--log-format <format>', 'json or pretty (default: log.format of the config)')
    .action((opts: Options) => runMember('witness', opts.name!, opts));
}

async function runMember(role: 'node' | 'witness', name: string, opts: Options): Promise<void> {
  const { requireConfig } = await import('../../config/load.js');
  const { config, warnings } = requireConfig(opts.config, { member: name });
  for (const w of warnings) process.stderr.write(w + '\n');
  const entry = [...config.nodes, ...config.witnesses].find((m) => m.name === name)!;
  if (entry.role !== role) {
    const hint = entry.role === 'node' ? `skyha agent --config ${opts.config} --node ${name}` : `skyha witness --config ${opts.config} --name ${name}`;
    throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `${name} is a ${entry.role} in ${opts.config}, not a ${role}; run: ${hint}`);
  }
  const levels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];
  if (opts.logLevel !== undefined && !levels.includes(opts.logLevel)) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `--log-level: expected one of ${levels.join(', ')}, found ${JSON.stringify(opts.logLevel)}`);
  if (opts.logFormat !== undefined && !['json', 'pretty'].includes(opts.logFormat)) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `--log-format: expected json or pretty, found ${JSON.stringify(opts.logFormat)}`);

  const { createLogger } = await import('../../observe/log.js');
  const { Agent } = await import('../../agent/agent.js');
  const logger = createLogger({ level: (opts.logLevel ?? config.log.level) as 'info', format: (opts.logFormat ?? config.log.format) as 'json', base: { member: name } });
  const agent = new Agent({ config, name, logger });
  await agent.start();

  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals === 1) {
        logger.info({ signal }, `${signal}: stopping cleanly (send it again to exit at once)`);
        void agent.stop().then(resolve, (err) => {
          logger.error({ err }, 'clean stop failed');
          resolve();
        });
      } else {
        logger.warn({ signal }, `${signal} again: exiting at once`);
        void agent.stop({ force: true }).finally(resolve);
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  logger.flush?.();
  // Nothing of ours is left to wait for; an idle keep-alive socket of a client must not hold the exit.
  process.exit(0);
}

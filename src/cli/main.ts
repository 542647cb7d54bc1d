/**
 * The `skyha` command. Each subcommand lives in commands/; this file wires
 * them up and turns every outcome into one of three exit codes:
 * 0 success, 1 runtime failure, 2 bad usage or bad config.
 */
import { Command, CommanderError } from 'commander';
import { EXIT_RUNTIME, EXIT_USAGE, isSkyhaError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { registerAdminStates } from './commands/admin-state.js';
import { registerBarrier } from './commands/barrier.js';
import { registerDemo } from './commands/demo.js';
import { registerEvents } from './commands/events.js';
import { registerMirrorRole } from './commands/mirror-role.js';
import { registerInit } from './commands/init.js';
import { registerAgent, registerWitness } from './commands/run-member.js';
import { registerStatus } from './commands/status.js';
import { registerToken } from './commands/token.js';
import { registerValidate } from './commands/validate.js';

export function buildProgram(): Command {
  const program = new Command('skyha')
    .description('High availability for a critical application across clouds and sites.\nOne agent per node; farm (active-active behind the gate) and mirror (primary/secondary with real-time replication) modules; quorum with a witness.')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`skyha: ${text.replace(/^error: /, '')}`) });
  program.addHelpText('after', '\nExit codes: 0 success, 1 runtime failure, 2 bad usage or bad config.\nRun `skyha COMMAND --help` for the options of a command.');
  registerValidate(program);
  registerInit(program);
  registerAgent(program);
  registerWitness(program);
  registerStatus(program);
  registerAdminStates(program);
  registerBarrier(program);
  registerMirrorRole(program);
  registerEvents(program);
  registerDemo(program);
  registerToken(program);
  for (const cmd of program.commands) cmd.exitOverride().helpOption('-h, --help', 'show help');
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    if (process.exitCode === undefined) process.exitCode = 0;
  } catch (err) {
    process.exitCode = exitCodeFor(err);
  }
}

function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version end in a CommanderError too, with exit code 0.
    return err.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  if (isSkyhaError(err)) {
    process.stderr.write(`skyha: ${err.message} [${err.code}]\n`);
    for (const line of err.details) process.stderr.write(`${line}\n`);
    return err.exitCode;
  }
  process.stderr.write(`skyha: unexpected error [SKYHA_ERR_INTERNAL]: ${(err as Error)?.stack ?? String(err)}\n`);
  return EXIT_RUNTIME;
}

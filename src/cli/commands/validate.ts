/** `skyha validate FILE [--node NAME]`: prints `ok`, or every error as FILE:LINE:COL: KEY.PATH: message, exit 2. */
import type { Command } from 'commander';
import { EXIT_USAGE } from '../../core/errors.js';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check a cluster config file: schema, cross-field rules and the cluster CA')
    .argument('<file>', 'the cluster config file (YAML)')
    .option('--node <name>', "also check this member's own certificate and key (run it on that member)")
    .option('--json', 'print the result as JSON: {ok, errors, warnings}')
    .addHelpText('after', '\nPrints `ok` and exits 0 when the file is valid; otherwise prints every error as\nFILE:LINE:COL: KEY.PATH: what was expected, what was found\nand exits 2. Warnings are printed but do not fail.')
    .action(async (file: string, opts: { node?: string; json?: boolean }) => {
      // Loaded on use: the schema compiler is the heaviest part of start-up.
      const { loadConfigFile } = await import('../../config/load.js');
      const result = loadConfigFile(file, opts.node !== undefined ? { member: opts.node } : {});
      const ok = result.config !== undefined;
      if (opts.json) {
        process.stdout.write(JSON.stringify({ ok, code: result.code ?? null, errors: result.errors, warnings: result.warnings }, null, 2) + '\n');
      } else {
        for (const w of result.warnings) process.stderr.write(w + '\n');
        if (ok) process.stdout.write('ok\n');
        else for (const e of result.errors) process.stderr.write(e + '\n');
      }
      process.exitCode = ok ? 0 : EXIT_USAGE;
    });
}

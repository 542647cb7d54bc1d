/**
 * `skyha token NAME --role ROLE`: makes a new API bearer token for a user and
 * prints it once, with the lines to add under `api.users` in the config file
 * (which keeps only the token's SHA-256). Nothing is written: the operator
 * puts the lines in the one config file every member shares.
 */
import type { Command } from 'commander';
import { SkyhaError } from '../../core/errors.js';

export function registerToken(program: Command): void {
  program
    .command('token <name>')
    .description('make an API bearer token for a user; prints the token and the config lines that admit it')
    .requiredOption('--role <role>', 'monitor (read), control (switchover, failover, drain, restart, barrier) or admin')
    .option('--json', 'print {name, role, token, token_sha256} as JSON')
    .action(async (name: string, opts: { role: string; json?: boolean }) => {
      const { hashToken, newToken } = await import('../../api/auth.js');
      const { MEMBER_NAME } = await import('../../link/certificates.js');
      if (!MEMBER_NAME.test(name)) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `name: expected lowercase letters, digits and dashes (as member names), found ${JSON.stringify(name)}`);
      if (!['monitor', 'control', 'admin'].includes(opts.role)) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `--role: expected monitor, control or admin, found ${JSON.stringify(opts.role)}`);
      const token = newToken();
      const hash = hashToken(token);
      if (opts.json) {
        process.stdout.write(JSON.stringify({ name, role: opts.role, token, token_sha256: hash }) + '\n');
        return;
      }
      process.stdout.write(`token for ${name} (shown once; keep it secret):\n\n  ${token}\n\nadd to the config file of every member, under api.users:\n\n  api:\n    users:\n      ${name}: { role: ${opts.role}, token_sha256: ${hash} }\n\nthen call the API with "Authorization: Bearer <token>", or the CLI with --token or SKYHA_TOKEN.\n`);
    });
}

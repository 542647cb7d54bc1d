import type { Command } from 'commander';
export function registerInit(program: Command): void {
  program.command('init').description('write a starter config and the cluster certificates').action(() => {
    throw new Error('not yet');
  });
}

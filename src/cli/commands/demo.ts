/**
 * `skyha demo [--dir DIR]`: a whole cluster on this machine (src/demo/demo.ts)
 * in the foreground until Ctrl-C. From another terminal, `skyha demo --kill
 * aws-1` kills a node (agent and applications, as a power loss), `--start`
 * brings it back, `--stop` ends the demo.
 */
import type { Command } from 'commander';
import { SkyhaError } from '../../core/errors.js';

interface Options {
  dir: string;
  kill?: string;
  start?: string;
  stop?: boolean;
  net?: string;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run a whole cluster on this machine: nodes aws-1 and azure-1, a witness, a farm and a mirror sample application; Ctrl-C stops it')
    .option('--dir <dir>', 'where the demo keeps its config, certificates, data and logs', './skyha-demo')
    .option('--net <prefix>', 'the members\' loopback addresses: PREFIX.1, .2 and .3', '127.0.0')
    .option('--kill <member>', 'in a running demo: kill a member (its agent and applications, like a power loss)')
    .option('--start <member>', 'in a running demo: start a killed member again')
    .option('--stop', 'stop a running demo')
    .action(async (opts: Options) => {
      const { Demo, demoRequest } = await import('../../demo/demo.js');
      const { join, resolve } = await import('node:path');
      const asked = [opts.kill !== undefined, opts.start !== undefined, Boolean(opts.stop)].filter(Boolean).length;
      if (asked > 1) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', 'expected one of --kill, --start and --stop');
      if (asked === 1) {
        const op = opts.stop ? { op: 'stop' as const } : opts.kill !== undefined ? { op: 'kill' as const, member: opts.kill } : { op: 'start' as const, member: opts.start! };
        const socket = join(resolve(opts.dir), 'demo.sock');
        const reply = await demoRequest(socket, op).catch((err: Error) => {
          throw new SkyhaError('SKYHA_ERR_DEMO', `no demo answers in ${resolve(opts.dir)} (${err.message}); start one with \`skyha demo\``);
        });
        if (!reply.ok) throw new SkyhaError(reply.text.startsWith('no member') ? 'SKYHA_ERR_USAGE_BAD_ARGUMENT' : 'SKYHA_ERR_DEMO', reply.text);
        process.stdout.write(`${reply.text}\n`);
        return;
      }
      const say = (line: string) => process.stdout.write(`${line}\n`);
      const demo = new Demo({ dir: opts.dir, say, ...(opts.net ? { net: opts.net } : {}) });
      await demo.prepare();
      let stopping = false;
      const finished = new Promise<void>((done) => {
        const stop = (): void => {
          if (stopping) return;
          stopping = true;
          say('\nstopping: primaries hand over, applications stop…');
          void demo.stop().then(() => {
            say(`stopped; the files stay in ${demo.dir}`);
            done();
          });
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      try {
        await demo.start();
      } catch (err) {
        await demo.stop();
        throw err;
      }
      for (const line of demo.welcome()) say(line);
      void demo.followEvents();
      await finished;
    });
}

/**
 * `skyha events --config FILE [--follow] [--module M] [--json]`: the cluster's
 * events as any member has them (every member relays its events to the
 * others), oldest first; with --follow, then each new one as it happens
 * (Server-Sent Events), reconnecting to another member if one goes away.
 */
import type { Command } from 'commander';
import type { ClusterEvent } from '../../observe/cluster-events.js';
import { SkyhaError } from '../../core/errors.js';

interface Options {
  config: string;
  follow?: boolean;
  module?: string;
  limit: string;
  json?: boolean;
  via?: string;
  token?: string;
}

export function registerEvents(program: Command): void {
  program
    .command('events')
    .description('show the cluster\'s events (role changes, restarts, fences, resyncs, operators\' actions); --follow streams new ones')
    .requiredOption('--config <file>', 'the cluster config file')
    .option('--follow', 'keep streaming new events until interrupted')
    .option('--module <module>', 'only the events of this module')
    .option('--limit <n>', 'how many past events to show first', '50')
    .option('--json', 'one JSON object per line')
    .option('--via <member>', 'the member whose API to ask first')
    .option('--token <token>', 'API bearer token (default: $SKYHA_TOKEN, else the certificate of a member whose key is readable here)')
    .action(async (opts: Options) => {
      const { requireConfig } = await import('../../config/load.js');
      const { askCluster, failOn, openApi } = await import('../api-access.js');
      const { config } = requireConfig(opts.config, { checkTls: false });
      if (!/^\d{1,4}$/.test(opts.limit) || Number(opts.limit) < 1 || Number(opts.limit) > 2000) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `--limit: expected 1 to 2000, found ${JSON.stringify(opts.limit)}`);
      if (opts.module !== undefined && !config.modules.some((m) => m.name === opts.module)) throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', `--module: expected a module of ${config.name} (${config.modules.map((m) => m.name).join(', ')}), found ${JSON.stringify(opts.module)}`);
      const client = openApi(config, opts.token);
      const query = (extra: Record<string, string>) => new URLSearchParams({ ...(opts.module ? { module: opts.module } : {}), ...extra }).toString();
      const print = (e: ClusterEvent) => process.stdout.write(opts.json ? JSON.stringify(e) + '\n' : `${e.at}  ${e.member.padEnd(12)} ${(e.module ?? '-').padEnd(10)} ${e.reason.padEnd(24)} ${e.text}\n`);
      try {
        const { member, answer } = await askCluster<{ events: ClusterEvent[] }>(config, client, 'GET', `/v1/events?${query({ limit: opts.limit })}`, undefined, opts.via ? { via: opts.via } : {});
        failOn(member, answer);
        for (const e of answer.body.events) print(e);
        if (!opts.follow) return;
        // Ids are each member's own: a stream continues from the last one seen on the same member.
        let via = member;
        let lastId = String(answer.body.events.at(-1)?.id ?? 0);
        const seen = new Set(answer.body.events.map((e) => `${e.member}/${e.seq}`));
        const stop = new Promise<void>((resolve) => process.once('SIGINT', resolve));
        let stopped = false;
        void stop.then(() => {
          stopped = true;
          client.close();
        });
        const order = [...config.nodes, ...config.witnesses];
        for (let i = order.findIndex((m) => m.name === via); !stopped; i = (i + 1) % order.length) {
          const m = order[i]!;
          if (m.name !== via) lastId = '0';
          via = m.name;
          try {
            const r = await client.stream(m, `/v1/events?${query({ after: lastId })}`, (data, id) => {
              const e = JSON.parse(data) as ClusterEvent;
              if (id) lastId = id;
              const key = `${e.member}/${e.seq}`;
              if (seen.has(key)) return;
              seen.add(key);
              print(e);
            });
            if (r.status !== 200) failOn(m.name, { status: r.status, body: safeJson(r.body) });
          } catch (err) {
            if (err instanceof SkyhaError) throw err;
            if (!opts.json) process.stderr.write(`skyha: ${m.name}: ${(err as Error).message}; trying the next member\n`);
            await new Promise((r) => setTimeout(r, 1000));
          }
        }
      } finally {
        client.close();
      }
    });
}

function safeJson(text: string | undefined): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text;
  }
}

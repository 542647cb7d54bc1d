/**
 * An open-loop HTTP client for the gate's fault tests and benchmarks: sends
 * GET requests at a fixed rate whatever the answers do (a slow or failing
 * server does not slow the sender down — unlike a closed loop, which hides
 * failures by sending less), each with a deadline, and records every
 * request: when it was sent and answered on CLOCK_MONOTONIC (shared by every
 * namespace, so a test can line results up with the moment of a fault),
 * status, and which node answered (the sample application says so).
 *
 *   node open-loop-client.js --url URL --rate N --duration MS [--timeout MS] --out FILE
 *
 * Prints `ready` when it starts sending and one progress line a second; writes
 * the records as JSON to FILE at the end (exit 0), or at SIGTERM.
 */
import { writeFileSync, renameSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

export interface ClientRecord {
  /** Sent and finished, ms on CLOCK_MONOTONIC. */
  sent: number;
  done: number;
  status: number;
  node?: string;
  error?: string;
}

export interface ClientResult {
  url: string;
  rate: number;
  records: ClientRecord[];
}

function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

function main(): void {
  const { values } = parseArgs({ options: { url: { type: 'string' }, rate: { type: 'string' }, duration: { type: 'string' }, timeout: { type: 'string', default: '5000' }, out: { type: 'string' } } });
  if (!values.url || !values.rate || !values.duration || !values.out) {
    process.stderr.write('usage: open-loop-client --url URL --rate N --duration MS [--timeout MS] --out FILE\n');
    process.exit(2);
  }
  const url = new URL(values.url);
  const rate = Number(values.rate);
  const duration = Number(values.duration);
  const timeout = Number(values.timeout);
  const out = values.out;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const records: ClientRecord[] = [];
  let pending = 0;
  let finished = false;

  const send = (): void => {
    const rec: ClientRecord = { sent: monotonicMs(), done: 0, status: 0 };
    records.push(rec);
    pending++;
    let settled = false;
    const end = (status: number, body: string | undefined, error?: string): void => {
      if (settled) return;
      settled = true;
      pending--;
      rec.done = monotonicMs();
      rec.status = status;
      if (error) rec.error = error;
      if (body) {
        try {
          rec.node = (JSON.parse(body) as { node?: string }).node;
        } catch {
          // Not the sample application's answer (the gate's own error page): no node.
        }
      }
      if (finished && pending === 0) write();
    };
    const req = http.get({ host: url.hostname, port: url.port, path: url.pathname, agent, timeout }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => end(res.statusCode ?? 0, Buffer.concat(chunks).toString()));
      res.on('error', (err) => end(0, undefined, err.message));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeout} ms`)));
    req.on('error', (err) => end(0, undefined, err.message));
  };

  const write = (): void => {
    const result: ClientResult = { url: values.url!, rate, records };
    writeFileSync(`${out}.tmp`, JSON.stringify(result));
    renameSync(`${out}.tmp`, out);
    process.exit(0);
  };

  // Ticks of 10 ms; each sends the requests that are due, so the rate holds even when a tick runs late.
  const start = monotonicMs();
  let sentCount = 0;
  let lastProgress = start;
  process.stdout.write('ready\n');
  const timer = setInterval(() => {
    const now = monotonicMs();
    const due = Math.min(Math.floor(((now - start) * rate) / 1000), Math.floor((duration * rate) / 1000));
    while (sentCount < due) {
      sentCount++;
      send();
    }
    if (now - lastProgress >= 1000) {
      lastProgress = now;
      const failed = records.filter((r) => r.done > 0 && (r.status < 200 || r.status >= 300)).length;
      process.stdout.write(`sent ${sentCount} ok ${records.filter((r) => r.status >= 200 && r.status < 300).length} failed ${failed} pending ${pending}\n`);
    }
    if (now - start >= duration) {
      clearInterval(timer);
      finished = true;
      if (pending === 0) write();
    }
  }, 10);
  process.on('SIGTERM', write);
}

main();

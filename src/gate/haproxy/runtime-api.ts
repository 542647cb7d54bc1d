/**
 * HAProxy's runtime API (the "stats socket", level admin), as the HAProxy
 * gate uses it: a few `set server` commands when backends change, and
 * `show stat` / `show servers state` twice a second.
 *
 * One connection per call, not the interactive `prompt` mode: in
 * non-interactive mode HAProxy answers and closes, so the end of the answer
 * is the end of the stream — no prompt to look for in the output, no state
 * left on a connection across an HAProxy restart, nothing to resynchronise
 * after a timeout. A Unix connect costs microseconds, and calls are rare.
 * The gate sends its calls one at a time (never two in flight), so their
 * order is the order it decided them in.
 *
 * Several commands may go in one call, joined by `;`: HAProxy runs them in
 * order within one connection, so a multi-step change of one server leaves
 * no gap between its steps for a request to slip through.
 *
 * Errors. HAProxy answers an error as text, with the connection closed
 * normally. Each call first says `set severity-output number`, which
 * prefixes HAProxy's messages with their syslog level (`[3]: No such
 * server.`); a level of 3 or less (or an unknown command, which HAProxy
 * reports at level 6) is an error, thrown as SkyhaError SKYHA_ERR_HAPROXY
 * quoting HAProxy.
 */
import { connect } from 'node:net';
import { SkyhaError } from '../../core/errors.js';

export const DEFAULT_COMMAND_TIMEOUT = 3000;

/** One line of `show stat`: a frontend, a backend or a server, with the fields the gate reads as numbers (empty = 0). */
export interface StatRow {
  readonly proxy: string;
  /** `FRONTEND`, `BACKEND` or the server's name. */
  readonly name: string;
  readonly status: string;
  readonly scur: number;
  readonly stot: number;
  readonly econ: number;
  readonly eresp: number;
  readonly wretr: number;
  readonly wredis: number;
  /** HAProxy's average time to response headers over its last 1024 requests, ms: an average, not a percentile. */
  readonly rtime: number;
  readonly weight: number;
  readonly reqTot: number;
  /** HTTP responses by class, 1xx..5xx and other, summed. */
  readonly responses: number;
  readonly hrsp5xx: number;
  readonly cliAbrt: number;
  readonly srvAbrt: number;
  /** Seconds since the server was last given a session; -1 if never (or not a server). */
  readonly lastsess: number;
  /** Every field as HAProxy wrote it, by its CSV name. */
  readonly fields: Readonly<Record<string, string>>;
}

/** One server of `show servers state`: what HAProxy applies right now. */
export interface ServerStateRow {
  readonly proxy: string;
  readonly server: string;
  readonly addr: string;
  readonly port: number;
  /** Operational state: `down` when stopped, else `up` (running, starting or stopping). */
  readonly health: 'up' | 'down';
  /** From the admin flags: any maintenance flag → `maint`, else any drain flag → `drain`, else `ready`. */
  readonly admin: 'ready' | 'drain' | 'maint';
  /** The weight set by configuration or `set server weight`. */
  readonly weight: number;
}

// Admin flags of a server (HAProxy 2.6 include/haproxy/server-t.h, SRV_ADMF_MAINT and SRV_ADMF_DRAIN):
// maintenance forced, inherited or for want of an address; drain forced or inherited. 0x04 (CMAINT) only
// records that the config said `disabled` and stays set after the server left maintenance.
const ADMF_MAINT = 0x01 | 0x02 | 0x20;
const ADMF_DRAIN = 0x08 | 0x10;

export class RuntimeApi {
  constructor(
    readonly socketPath: string,
    readonly timeout = DEFAULT_COMMAND_TIMEOUT,
  ) {}

  /** Runs the commands in order on one connection; resolves with their answers (severity prefixes removed), throws if HAProxy refused any. */
  async command(...commands: string[]): Promise<string> {
    for (const c of commands) {
      if (c.trim() === '' || /[;\r\n]/.test(c)) throw new SkyhaError('SKYHA_ERR_HAPROXY', `not a single runtime API command: ${JSON.stringify(c)}`);
    }
    const raw = await this.exchange(['set severity-output number', ...commands].join('; '));
    return parseAnswer(commands, raw);
  }

  async showStat(proxy: string): Promise<StatRow[]> {
    return parseShowStat(await this.command(`show stat ${proxy} -1 -1`));
  }

  async showServersState(proxy: string): Promise<ServerStateRow[]> {
    return parseServersState(await this.command(`show servers state ${proxy}`));
  }

  /** Sends one line, reads the answer until HAProxy closes. */
  private exchange(line: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.socketPath);
      const chunks: Buffer[] = [];
      let settled = false;
      const fail = (why: string, cause?: unknown): void => {
        if (settled) return;
        settled = true;
        socket.destroy();
        reject(new SkyhaError('SKYHA_ERR_HAPROXY', `HAProxy's runtime API at ${this.socketPath}: ${why}`, cause === undefined ? {} : { cause }));
      };
      socket.setTimeout(this.timeout, () => fail(`no answer within ${this.timeout} ms to ${JSON.stringify(line)}`));
      socket.on('error', (err) => fail((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ECONNREFUSED' ? 'not answering (is HAProxy running?)' : err.message, err));
      socket.on('data', (d: Buffer) => chunks.push(d));
      socket.on('end', () => {
        if (settled) return;
        settled = true;
        socket.destroy();
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
      socket.write(`${line}\n`);
    });
  }
}

/**
 * The answer to `set severity-output number; <commands>`: HAProxy ends each
 * command's output with an empty line, and prefixes its messages with
 * `[level]: `. Throws on an error message; returns the text without the
 * prefixes and the first (empty) answer.
 */
export function parseAnswer(commands: readonly string[], raw: string): string {
  // The answer to `set severity-output` itself is an empty line.
  const body = raw.startsWith('\n') ? raw.slice(1) : raw;
  const errors: string[] = [];
  const text = body
    .split('\n')
    .map((line) => {
      const m = /^\[(\d)\]: (.*)$/.exec(line);
      if (!m) return line;
      const level = Number(m[1]);
      const message = m[2]!;
      if (level <= 3 || message.startsWith('Unknown command')) errors.push(message);
      return message;
    })
    .join('\n');
  if (errors.length > 0) {
    throw new SkyhaError('SKYHA_ERR_HAPROXY', `HAProxy refused ${commands.length === 1 ? JSON.stringify(commands[0]) : `one of ${JSON.stringify(commands.join('; '))}`}: ${errors.join(' ')}`, { details: errors });
  }
  return text.replace(/\n+$/, '\n');
}

/** `show stat` CSV: a `# pxname,svname,...` header, then one line per frontend, backend and server. Fields may be quoted. */
export function parseShowStat(text: string): StatRow[] {
  const lines = text.split('\n');
  const headerAt = lines.findIndex((l) => l.startsWith('# '));
  if (headerAt < 0) throw new SkyhaError('SKYHA_ERR_HAPROXY', `\`show stat\` answered without its CSV header: ${JSON.stringify(text.slice(0, 200))}`);
  const names = splitCsv(lines[headerAt]!.slice(2));
  const rows: StatRow[] = [];
  for (const line of lines.slice(headerAt + 1)) {
    if (line.trim() === '') continue;
    const values = splitCsv(line);
    const fields: Record<string, string> = {};
    names.forEach((n, i) => {
      if (n !== '' && n !== '-') fields[n] = values[i] ?? '';
    });
    const num = (f: string): number => {
      const v = Number(fields[f] ?? '');
      return Number.isFinite(v) ? v : 0;
    };
    rows.push({
      proxy: fields.pxname ?? '',
      name: fields.svname ?? '',
      status: fields.status ?? '',
      scur: num('scur'),
      stot: num('stot'),
      econ: num('econ'),
      eresp: num('eresp'),
      wretr: num('wretr'),
      wredis: num('wredis'),
      rtime: num('rtime'),
      weight: num('weight'),
      reqTot: num('req_tot'),
      responses: num('hrsp_1xx') + num('hrsp_2xx') + num('hrsp_3xx') + num('hrsp_4xx') + num('hrsp_5xx') + num('hrsp_other'),
      hrsp5xx: num('hrsp_5xx'),
      cliAbrt: num('cli_abrt'),
      srvAbrt: num('srv_abrt'),
      lastsess: fields.lastsess === undefined || fields.lastsess === '' ? -1 : num('lastsess'),
      fields,
    });
  }
  return rows;
}

/** `show servers state`: a format version line, a `# be_id be_name ...` header, then one space-separated line per server. */
export function parseServersState(text: string): ServerStateRow[] {
  const lines = text.split('\n');
  const headerAt = lines.findIndex((l) => l.startsWith('# '));
  if (headerAt < 0) throw new SkyhaError('SKYHA_ERR_HAPROXY', `\`show servers state\` answered without its header: ${JSON.stringify(text.slice(0, 200))}`);
  const names = lines[headerAt]!.slice(2).trim().split(/\s+/);
  const at = (n: string): number => names.indexOf(n);
  const need = ['be_name', 'srv_name', 'srv_addr', 'srv_op_state', 'srv_admin_state', 'srv_uweight', 'srv_port'];
  for (const n of need) {
    if (at(n) < 0) throw new SkyhaError('SKYHA_ERR_HAPROXY', `\`show servers state\` has no column ${n}`);
  }
  const rows: ServerStateRow[] = [];
  for (const line of lines.slice(headerAt + 1)) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const v = line.trim().split(/\s+/);
    const adminFlags = Number(v[at('srv_admin_state')]);
    rows.push({
      proxy: v[at('be_name')] ?? '',
      server: v[at('srv_name')] ?? '',
      addr: v[at('srv_addr')] ?? '',
      port: Number(v[at('srv_port')]),
      health: Number(v[at('srv_op_state')]) === 0 ? 'down' : 'up',
      admin: adminFlags & ADMF_MAINT ? 'maint' : adminFlags & ADMF_DRAIN ? 'drain' : 'ready',
      weight: Number(v[at('srv_uweight')]),
    });
  }
  return rows;
}

/** One CSV line (RFC 4180 quoting, as HAProxy's csv_enc writes it). */
export function splitCsv(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c === '"' && cur === '') {
      quoted = true;
    } else if (c === ',') {
      out.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  out.push(cur);
  return out;
}

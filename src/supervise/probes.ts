/**
 * One probe of a module on this node, for each checker kind. A probe never
 * rejects and never outlives its checker's timeout: every failure, including
 * its own, is a result `{ ok: false, detail }` that says what was seen, for
 * the log and the status (the rise/fall machine in logic/checker.ts decides).
 */
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import type { CheckerConfig } from '../config/model.js';
import type { CheckResult } from '../logic/checker.js';
import { groupAlive, processAlive, runScript } from './script.js';

export interface ProbeContext {
  /** The application's top process and process group, as the keeper reported them. */
  appPid?: number;
  pgid?: number;
  cwd: string;
  env: Record<string, string>;
}

/** How much of an HTTP body is read to look for `expectBody`. */
const MAX_BODY = 64 * 1024;

export async function probe(checker: CheckerConfig, ctx: ProbeContext): Promise<CheckResult> {
  const timeout = Math.max(1, checker.timeout);
  let timer: NodeJS.Timeout | undefined;
  // Each kind cleans up after its own timeout; this one is the backstop that keeps the promise.
  const backstop = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, detail: `timeout after ${timeout} ms` }), timeout + 50);
  });
  try {
    return await Promise.race([probeKind(checker, ctx, timeout), backstop]);
  } catch (err) {
    return { ok: false, detail: `probe failed: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    clearTimeout(timer);
  }
}

function probeKind(checker: CheckerConfig, ctx: ProbeContext, timeout: number): Promise<CheckResult> {
  switch (checker.kind) {
    case 'process':
      return checker.pidFile === undefined ? Promise.resolve(probeGroup(ctx)) : probePidFile(checker.pidFile, timeout);
    case 'tcp':
      return probeTcp(checker.host ?? ctx.env.SKYHA_NODE_ADDRESS ?? '127.0.0.1', checker.port, timeout);
    case 'http':
      return probeHttp(checker.url, checker.method, checker.expectStatus, checker.expectBody, timeout);
    case 'command':
      return probeCommand(checker.command, ctx, timeout);
  }
}

function probeGroup(ctx: ProbeContext): CheckResult {
  if (ctx.pgid !== undefined) {
    return groupAlive(ctx.pgid) ? { ok: true, detail: `process group ${ctx.pgid} is running` } : { ok: false, detail: `no process of group ${ctx.pgid} is running` };
  }
  if (ctx.appPid !== undefined) {
    return processAlive(ctx.appPid) ? { ok: true, detail: `process ${ctx.appPid} is running` } : { ok: false, detail: `process ${ctx.appPid} is not running` };
  }
  return { ok: false, detail: 'the application is not running (no process to check)' };
}

async function probePidFile(pidFile: string, timeout: number): Promise<CheckResult> {
  let text: string;
  try {
    text = await readFile(pidFile, { encoding: 'utf8', signal: AbortSignal.timeout(timeout) });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return { ok: false, detail: `pid file ${pidFile} is missing` };
    if (e.name === 'AbortError') return { ok: false, detail: `timeout after ${timeout} ms reading pid file ${pidFile}` };
    return { ok: false, detail: `cannot read pid file ${pidFile}: ${e.message}` };
  }
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed) || Number(trimmed) <= 0) {
    return { ok: false, detail: `pid file ${pidFile} does not hold a pid (${JSON.stringify(trimmed.slice(0, 40))})` };
  }
  const pid = Number(trimmed);
  return processAlive(pid) ? { ok: true, detail: `process ${pid} from ${pidFile} is running` } : { ok: false, detail: `process ${pid} from ${pidFile} is not running` };
}

function probeTcp(host: string, port: number, timeout: number): Promise<CheckResult> {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (result: CheckResult): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ ok: false, detail: `timeout after ${timeout} ms connecting to ${where}` }), timeout);
    socket.once('connect', () => done({ ok: true, detail: `tcp ${where} accepts connections` }));
    socket.once('error', (err) => done({ ok: false, detail: `tcp ${where}: ${errorText(err)}` }));
  });
}

async function probeHttp(url: string, method: 'GET' | 'HEAD', expectStatus: number, expectBody: string | undefined, timeout: number): Promise<CheckResult> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout);
  try {
    const res = await fetch(url, { method, redirect: 'manual', signal: controller.signal, headers: { 'user-agent': 'skyha-checker' } });
    if (res.status !== expectStatus) {
      await res.body?.cancel().catch(() => {});
      return { ok: false, detail: `http ${res.status} from ${url} (expected ${expectStatus})` };
    }
    if (expectBody === undefined || method === 'HEAD') {
      await res.body?.cancel().catch(() => {});
      return { ok: true, detail: `http ${res.status} from ${url}` };
    }
    const body = await readBounded(res, MAX_BODY);
    return body.includes(expectBody)
      ? { ok: true, detail: `http ${res.status} from ${url} with the expected body` }
      : { ok: false, detail: `http ${res.status} from ${url} but the body does not contain ${JSON.stringify(expectBody)}` };
  } catch (err) {
    if (controller.signal.aborted) return { ok: false, detail: `timeout after ${timeout} ms (${url})` };
    return { ok: false, detail: `http ${url}: ${errorText(err)}` };
  } finally {
    clearTimeout(timer);
  }
}

/** At most `max` bytes of the body, decoded; the rest is not read. */
async function readBounded(res: Response, max: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < max) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, max).toString('utf8');
}

async function probeCommand(command: string, ctx: ProbeContext, timeout: number): Promise<CheckResult> {
  const r = await runScript(command, { cwd: ctx.cwd, env: ctx.env, timeout, tailBytes: 512 });
  if (r.timedOut) return { ok: false, detail: `command timed out after ${timeout} ms` };
  const last = r.outputTail.trim().split('\n').pop()?.trim() ?? '';
  const said = last ? `: ${last.slice(0, 200)}` : '';
  if (r.ok) return { ok: true, detail: `command exited 0${said}` };
  if (r.code === null && r.signal === null) return { ok: false, detail: `command could not run${said}` };
  return { ok: false, detail: `command ${r.signal ? `killed by ${r.signal}` : `exited with code ${r.code}`}${said}` };
}

/** "connection refused" rather than "connect ECONNREFUSED 127.0.0.1:1"; fetch hides the reason in `cause`. */
function errorText(err: unknown): string {
  const e = (err instanceof Error && err.cause instanceof Error ? err.cause : err) as NodeJS.ErrnoException;
  const known: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    ENOTFOUND: 'name not found',
    EAI_AGAIN: 'name lookup failed',
    ETIMEDOUT: 'timed out',
  };
  if (e && typeof e.code === 'string' && known[e.code]) return known[e.code]!;
  return e instanceof Error ? e.message : String(e);
}

/**
 * The structured log: pino JSON lines, or a readable form on a terminal.
 * Every component logs through a child logger named after it (`component`),
 * and every event carries its reason code as `reason` so logs, API and
 * metrics use the same value.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LogOptions {
  level?: LevelWithSilent;
  format?: 'auto' | 'json' | 'pretty';
  /** Where lines go; default stderr (stdout belongs to command output). */
  stream?: NodeJS.WritableStream & { fd?: number };
  /** Bound into every line, e.g. { member: 'aws-1' }. */
  base?: Record<string, unknown>;
}

export function createLogger(options: LogOptions = {}): Logger {
  const stream = options.stream ?? process.stderr;
  const isTty = 'isTTY' in stream && Boolean((stream as { isTTY?: boolean }).isTTY);
  const readable = options.format === 'pretty' || ((options.format ?? 'auto') === 'auto' && isTty);
  const opts = { level: options.level ?? 'info', base: options.base ?? {}, timestamp: pino.stdTimeFunctions.isoTime };
  if (readable) {
    // Synchronous so that the last lines before an exit are not lost.
    return pino(opts, pretty({ destination: stream, sync: true, colorize: isTty, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  return pino(opts, stream);
}

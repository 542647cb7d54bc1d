/**
 * A member's events on disk, `<data_dir>/events.jsonl`: one JSON object per
 * line, appended as they happen, so that the API and console still show what
 * happened before a restart. Bounded: past `maxBytes` the file becomes
 * `events.1.jsonl` (the one before is dropped). No fsync: events describe the
 * cluster, they are not its state; a power cut may lose the last few lines.
 */
import { appendFileSync, closeSync, existsSync, openSync, readSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { SkyhaEvent } from './events.js';

const MAX_BYTES = 4 * 1024 * 1024;

export class EventLog {
  readonly path: string;
  private size: number;

  constructor(
    dir: string,
    private readonly maxBytes = MAX_BYTES,
  ) {
    this.path = join(dir, 'events.jsonl');
    this.size = existsSync(this.path) ? statSync(this.path).size : 0;
  }

  /** The last `limit` events kept on disk, oldest first; a torn or foreign line is skipped. */
  load(limit: number): SkyhaEvent[] {
    const out: SkyhaEvent[] = [];
    for (const file of [join(this.path, '..', 'events.1.jsonl'), this.path]) {
      for (const line of tail(file, 1024 * 1024).split('\n')) {
        if (!line) continue;
        try {
          const e = JSON.parse(line) as SkyhaEvent;
          if (typeof e.seq === 'number' && typeof e.reason === 'string') out.push(e);
        } catch {
          // The last line of a file cut by a crash.
        }
      }
    }
    return out.slice(-limit);
  }

  append(event: SkyhaEvent): void {
    const line = JSON.stringify(event) + '\n';
    try {
      if (this.size + line.length > this.maxBytes && this.size > 0) {
        renameSync(this.path, join(this.path, '..', 'events.1.jsonl'));
        this.size = 0;
      }
      appendFileSync(this.path, line, { mode: 0o600 });
      this.size += Buffer.byteLength(line);
    } catch {
      // A full or read-only disk must not stop the agent; the log still has the event.
    }
  }
}

/** The last `bytes` of a file, from the first whole line. */
function tail(file: string, bytes: number): string {
  if (!existsSync(file)) return '';
  const fd = openSync(file, 'r');
  try {
    const size = statSync(file).size;
    const start = Math.max(0, size - bytes);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const text = buf.toString('utf8');
    return start === 0 ? text : text.slice(text.indexOf('\n') + 1);
  } finally {
    closeSync(fd);
  }
}


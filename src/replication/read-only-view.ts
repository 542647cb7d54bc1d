/**
 * Keeps a secondary's replicated directories read-only for everyone but the
 * agent: each directory is bind-mounted read-only over itself, and the
 * agent applies changes through a private writable bind mount of the same
 * directory (`<module state>/rw/<index>`) — the same files, another door.
 * A write on a secondary would otherwise be overwritten, or found only by a
 * full comparison. On promotion the read-only mount is taken away before
 * the application starts; when the node is secondary again (its
 * application stopped) it comes back.
 *
 * Needs root (mounts); where it cannot be done, the directories stay
 * writable and `state` says why (status shows it). Mounts left by a killed
 * agent are taken down when the next one starts.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

export interface ViewState {
  /** The public directories are read-only now. */
  readOnly: boolean;
  /** Why not, when they could be. */
  reason?: string;
}

export class ReadOnlyView {
  /** Where the agent writes: the writable views, or the directories themselves when there are none. */
  writeRoots: readonly string[];
  private protectedNow = false;
  private problem: string | undefined;

  /** The directories as the mount table names them (symlinks resolved). */
  private readonly roots: readonly string[];

  constructor(
    roots: readonly string[],
    private readonly viewDir: string,
    enabled: boolean,
  ) {
    this.roots = roots.map((r) => realpathSync(r));
    this.writeRoots = this.roots;
    if (!enabled) this.problem = 'read_only_on_secondaries is false';
    else if (process.getuid?.() !== 0) this.problem = 'the agent does not run as root (mounts need it)';
  }

  get state(): ViewState {
    return { readOnly: this.protectedNow, ...(this.problem && !this.protectedNow ? { reason: this.problem } : {}) };
  }

  /** Takes down mounts a killed agent left, and makes the writable views. */
  prepare(): void {
    const views = this.roots.map((_, i) => join(this.viewDir, String(i)));
    unmountAll([...this.roots, ...views]);
    if (this.problem) return;
    try {
      for (let i = 0; i < this.roots.length; i++) {
        mkdirSync(views[i]!, { recursive: true, mode: 0o700 });
        run('mount', ['--bind', this.roots[i]!, views[i]!]);
      }
      this.writeRoots = views;
    } catch (err) {
      unmountAll(views);
      this.problem = (err as Error).message;
    }
  }

  /** Secondary: the directories read-only for everyone else. */
  protect(): void {
    if (this.problem || this.protectedNow) return;
    try {
      for (const r of this.roots) {
        run('mount', ['--bind', r, r]);
        run('mount', ['-o', 'remount,bind,ro', r]);
      }
      this.protectedNow = true;
    } catch (err) {
      unmountAll(this.roots);
      this.problem = (err as Error).message;
    }
  }

  /** Primary (or stopping): writable again. */
  release(): void {
    if (!this.protectedNow) return;
    unmountAll(this.roots);
    this.protectedNow = false;
  }

  /** Everything back as it was (a clean stop). */
  close(): void {
    this.release();
    unmountAll(this.writeRoots.filter((w) => !this.roots.includes(w)));
    this.writeRoots = this.roots;
  }
}

function run(command: string, args: string[]): void {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
}

/** Unmounts every mount (stacked ones too) whose mount point is one of `paths`. */
export function unmountAll(paths: readonly string[]): void {
  const wanted = new Set(paths);
  for (let round = 0; round < 8; round++) {
    const mounted = mountPoints().filter((p) => wanted.has(p));
    if (mounted.length === 0) return;
    // Deepest first: a mount on top of another goes before it.
    for (const p of mounted.reverse()) spawnSync('umount', ['-l', p]);
  }
}

/** Mount points of this mount namespace, in mount order. */
export function mountPoints(): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  // Field 5 is the mount point, with space, tab, newline and backslash as octal escapes.
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

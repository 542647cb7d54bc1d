/** Walking a replicated directory. */
import { readdirSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { STAGING_DIR } from './record.js';

/** Every path under a root ('' first, then parents before children), the staging area left out. */
export function walkTree(root: string): string[] {
  const out: string[] = [''];
  const visit = (dir: string, rel: string): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (rel === '' && e.name === STAGING_DIR) continue;
      const path = rel ? `${rel}/${e.name}` : e.name;
      out.push(path);
      if (e.isDirectory()) visit(join(dir, e.name), path);
    }
  };
  visit(root, '');
  return out;
}

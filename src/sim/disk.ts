/** The simulated disk: a key-value map whose values are deep-frozen when stored. */
import type { Disk, DiskValue } from './process.js';

export class SimDisk implements Disk {
  private readonly map = new Map<string, DiskValue>();
  /** Writes and deletes, for the stats. */
  writes = 0;

  get(key: string): DiskValue | undefined {
    return this.map.get(key);
  }

  set(key: string, value: DiskValue): void {
    this.writes++;
    this.map.set(key, deepFreeze(value));
  }

  delete(key: string): void {
    this.writes++;
    this.map.delete(key);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  keys(): IterableIterator<string> {
    return this.map.keys();
  }

  get size(): number {
    return this.map.size;
  }
}

function deepFreeze<T extends DiskValue>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v as DiskValue);
  }
  return value;
}

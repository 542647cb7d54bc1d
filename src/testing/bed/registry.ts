/**
 * A record on disk of what each test bed created, so that the leftovers of a
 * bed whose test process died (SIGKILL, a crash, a timeout of the test
 * runner) are removed by the next bed instead of piling up on the machine.
 *
 * One file per bed, `/tmp/skyha-bed/<prefix>.json`, names the owner process
 * and every namespace, interface and root-namespace process the bed made. A
 * second file per subnet, `subnet-10.X.Y.0`, reserves the bed's /24 with an
 * exclusive create, so two beds started at the same moment never share one.
 * Processes are identified by PID plus start time, so a recycled PID is never
 * taken for the owner (which would keep a stale bed forever) nor killed.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ipSync, isNotFound, netnsPidsSync } from './ip.js';

export const REGISTRY_DIR = '/tmp/skyha-bed';

/** A process that cannot be confused with a later one that got the same PID. */
export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks since boot); null when it could not be read. */
  startTime: string | null;
}

export interface BedRecord {
  prefix: string;
  label: string | null;
  owner: ProcessIdentity;
  /** "10.X.Y.0/24", once reserved. */
  subnet: string | null;
  namespaces: string[];
  links: string[];
  /** Processes the bed started in the root namespace (relays, spawnRoot). */
  rootProcesses: ProcessIdentity[];
  createdAt: string;
}

export function processIdentity(pid: number): ProcessIdentity {
  return { pid, startTime: startTimeOf(pid) };
}

/** True when the process exists and, if its start time was recorded, is the same one. */
export function isAlive(id: ProcessIdentity): boolean {
  const now = startTimeOf(id.pid);
  if (now === null) return false;
  return id.startTime === null || id.startTime === now;
}

function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

const recordFile = (prefix: string): string => join(REGISTRY_DIR, `${prefix}.json`);
const subnetFile = (subnet: string): string => join(REGISTRY_DIR, `subnet-${subnet.replace(/\/\d+$/, '')}`);

/** Writes the record only if no bed has this prefix yet; false when it is taken. */
export function claimPrefix(record: BedRecord): boolean {
  mkdirSync(REGISTRY_DIR, { recursive: true });
  try {
    writeFileSync(recordFile(record.prefix), JSON.stringify(record, null, 2), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** Replaces the record (write and rename, so a reader never sees half a file). */
export function saveRecord(record: BedRecord): void {
  const tmp = `${recordFile(record.prefix)}.tmp`;
  writeFileSync(tmp, JSON.stringify(record, null, 2));
  renameSync(tmp, recordFile(record.prefix));
}

/** Reserves `subnet` for the bed `prefix`; false when another bed holds it. */
export function claimSubnet(prefix: string, subnet: string): boolean {
  mkdirSync(REGISTRY_DIR, { recursive: true });
  try {
    writeFileSync(subnetFile(subnet), prefix, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** Forgets the bed: its subnet reservation first, then its record (the reverse of creation). */
export function releaseRecord(record: BedRecord): void {
  if (record.subnet) rmSync(subnetFile(record.subnet), { force: true });
  rmSync(recordFile(record.prefix), { force: true });
}

export function readRecords(): BedRecord[] {
  if (!existsSync(REGISTRY_DIR)) return [];
  const out: BedRecord[] = [];
  for (const f of readdirSync(REGISTRY_DIR)) {
    if (!f.endsWith('.json')) continue;
    try {
      out.push(JSON.parse(readFileSync(join(REGISTRY_DIR, f), 'utf8')) as BedRecord);
    } catch {
      // Being written right now (claimPrefix) or corrupt: neither is ours to judge here.
    }
  }
  return out;
}

/**
 * Kills and deletes everything `record` names, synchronously: root processes
 * (when still the same process), every process inside the bed's namespaces
 * (found by namespace, so also applications the bed's processes started),
 * then interfaces and namespaces, plus any interface or namespace that
 * carries the bed's prefix. Returns what could not be removed.
 */
export function removeBedResourcesSync(record: BedRecord): string[] {
  const problems: string[] = [];
  for (const p of record.rootProcesses) {
    if (isAlive(p)) signal(p.pid);
  }
  const mine = (name: string): boolean => name.startsWith(`${record.prefix}-`);
  const namespaces = unique([...record.namespaces, ...listNamespaces().filter(mine)]);
  for (const ns of namespaces) for (const pid of netnsPidsSync(ns)) signal(pid);
  // Deleting one end of a veth pair deletes the other: the peers may be gone by their turn.
  const links = unique([...record.links, ...listLinks().filter(mine)]);
  for (const link of links) attempt(problems, () => ipSync('link', 'del', link));
  for (const ns of namespaces) attempt(problems, () => ipSync('netns', 'del', ns));
  return problems;
}

/**
 * Removes the leftovers of every bed whose owner process is gone, and
 * subnet reservations that belong to no bed. Returns the prefixes swept.
 */
export function sweepStaleBeds(): string[] {
  const swept: string[] = [];
  for (const record of readRecords()) {
    if (isAlive(record.owner)) continue;
    const problems = removeBedResourcesSync(record);
    if (problems.length) process.stderr.write(`skyha bed: sweeping stale bed ${record.prefix} left: ${problems.join('; ')}\n`);
    releaseRecord(record);
    swept.push(record.prefix);
  }
  if (existsSync(REGISTRY_DIR)) {
    for (const f of readdirSync(REGISTRY_DIR)) {
      if (!f.startsWith('subnet-')) continue;
      try {
        const prefix = readFileSync(join(REGISTRY_DIR, f), 'utf8').trim();
        // A bed writes its record before reserving a subnet: no record means nobody holds it.
        if (prefix && !existsSync(recordFile(prefix))) rmSync(join(REGISTRY_DIR, f), { force: true });
      } catch {
        // Removed meanwhile by another sweep.
      }
    }
  }
  return swept;
}

export function listNamespaces(): string[] {
  try {
    return ipSync('netns', 'list')
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0] ?? '')
      .filter(Boolean);
  } catch {
    return [];
  }
}

export function listLinks(): string[] {
  try {
    // "7: skab12-h0@if6: <BROADCAST,…" → "skab12-h0"
    return ipSync('-o', 'link', 'show')
      .split('\n')
      .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? '')
      .filter(Boolean);
  } catch {
    return [];
  }
}

/** SIGCONT (a stopped process still dies of SIGKILL, but be explicit), then SIGKILL, by PID. */
function signal(pid: number): void {
  for (const s of ['SIGCONT', 'SIGKILL'] as const) {
    try {
      process.kill(pid, s);
    } catch {
      // Already gone.
    }
  }
}

function attempt(problems: string[], step: () => unknown): void {
  try {
    step();
  } catch (err) {
    if (!isNotFound(err)) problems.push((err as Error).message);
  }
}

const unique = (xs: string[]): string[] => [...new Set(xs)];

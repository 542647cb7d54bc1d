/**
 * `skyha init [--dir DIR] [--cluster NAME] [--nodes a,b] [--witness w | --no-witness] [--force]`:
 * writes DIR/skyha.yaml (a commented starter config) and DIR/certs/ (the
 * cluster CA and one certificate and key per member).
 *
 * All or nothing: everything is written and fsynced into a temp directory
 * next to the targets (DIR/.skyha-init-PID-RANDOM), then renamed into place.
 * With --force the previous files are first renamed aside into that temp
 * directory and only deleted once the new ones are in place; on any failure
 * they are renamed back. The temp directory's contents say how far a run got,
 * so a later run can finish the cleanup of one that was killed:
 *
 *   staging/   being written; nothing outside the temp directory changed yet
 *   new/       complete (staging/ renamed); the swap may have started
 *   old/       the previous files, moved aside during the swap
 *   committed  the swap is done; the rest is garbage
 */
import { closeSync, fsyncSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, renameSync, rmdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { SkyhaError } from '../../core/errors.js';
import { SCHEMA } from '../../config/schema.js';
import { renderStarterConfig } from '../../config/starter.js';

export const DEFAULT_CLUSTER = 'skyha';
export const DEFAULT_NODES = 'aws-1,azure-1';
export const DEFAULT_WITNESS = 'witness-1';
const CONFIG_FILE = 'skyha.yaml';
const CERTS_DIR = 'certs';
/** What init owns in DIR, in the order of the swap. */
const TARGETS = [CERTS_DIR, CONFIG_FILE] as const;
const TEMP_PREFIX = '.skyha-init-';
/** The schema's own rule for names (definitions.name), so that init accepts exactly what the config does. */
const NAME_SCHEMA: { pattern?: unknown; 'x-expected'?: unknown } = SCHEMA.definitions?.name ?? {};
const MEMBER_NAME = new RegExp(typeof NAME_SCHEMA.pattern === 'string' ? NAME_SCHEMA.pattern : '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$');
const NAME_RULE = typeof NAME_SCHEMA['x-expected'] === 'string' ? NAME_SCHEMA['x-expected'] : 'a name of lowercase letters, digits and inner dashes, at most 63 characters';

export interface InitOptions {
  dir: string;
  cluster: string;
  nodes: readonly string[];
  witnesses: readonly string[];
  force: boolean;
}

interface CliOptions {
  dir: string;
  cluster: string;
  nodes: string;
  witness?: string | false;
  force?: boolean;
}

export function registerInit(program: Command): void {
  const cmd = program
    .command('init')
    .description('write a starter config and the cluster certificates')
    .option('--dir <dir>', 'the directory to write skyha.yaml and certs/ into; created if missing', '.')
    .option('--cluster <name>', "the cluster's name; it goes into every certificate", DEFAULT_CLUSTER)
    .option('--nodes <names>', 'the nodes, comma-separated; the first is the preferred node of the example mirror module', DEFAULT_NODES)
    .option('--witness <names>', `the witness, or witnesses comma-separated (default: ${DEFAULT_WITNESS})`)
    .option('--no-witness', 'no witness; with exactly two nodes the config then sets cluster.two_node_policy: stop_when_alone')
    .option('--force', 'replace an existing skyha.yaml and certs/ (the previous CA and keys are deleted)')
    .addHelpText(
      'after',
      [
        '',
        'Writes:',
        '  DIR/skyha.yaml          a commented starter config that `skyha validate` accepts',
        '  DIR/certs/ca.crt        the cluster CA (ECDSA P-256, valid 10 years)',
        '  DIR/certs/ca.key        its private key (mode 0600); keep it off the members',
        '  DIR/certs/NAME.crt      one certificate per node and witness: SAN DNS:NAME,',
        '  DIR/certs/NAME.key      O=CLUSTER, for both ends of a mutual-TLS link (valid 2 years)',
        '',
        'Names: lowercase letters, digits and inner dashes, at most 63 characters, each used once.',
        'Nothing is overwritten without --force, and nothing is left half-written: the files',
        'are written into DIR/.skyha-init-* and renamed into place; on failure the previous',
        'files stay as they were.',
        '',
        'Examples:',
        '  skyha init --dir ./prod --cluster prod',
        '  skyha init --nodes aws-1,azure-1 --witness gcp-1',
        '  skyha init --nodes site-a,site-b --no-witness',
        '',
        'Exit codes: 0 written, 1 could not write (nothing changed), 2 bad usage or the files exist.',
      ].join('\n'),
    );
  // Commander lets the last of --witness / --no-witness win silently; refuse both instead.
  const given = new Set<string>();
  cmd.on('option:witness', () => given.add('--witness'));
  cmd.on('option:no-witness', () => given.add('--no-witness'));
  cmd.action(async (opts: CliOptions) => {
    if (given.size === 2) usage('--witness and --no-witness contradict each other; give one of them');
    const options = parseOptions(opts);
    const report = await runInit(options);
    process.stdout.write(report);
  });
}

function usage(message: string): never {
  throw new SkyhaError('SKYHA_ERR_USAGE_BAD_ARGUMENT', message);
}

function parseNames(flag: string, text: string, what: string): string[] {
  if (text.trim() === '') usage(`${flag}: expected at least one ${what} name, found an empty list`);
  const names = text.split(',').map((s) => s.trim());
  names.forEach((n, i) => {
    if (n === '') usage(`${flag} ${JSON.stringify(text)}: expected ${what} names separated by commas, found an empty name at position ${i + 1}`);
    if (!MEMBER_NAME.test(n)) usage(`${flag}: expected ${NAME_RULE}, found ${JSON.stringify(n)}`);
  });
  return names;
}

export function parseOptions(opts: CliOptions): InitOptions {
  if (!MEMBER_NAME.test(opts.cluster)) usage(`--cluster: expected ${NAME_RULE}, found ${JSON.stringify(opts.cluster)}`);
  if (opts.dir === '') usage('--dir: expected a directory, found an empty path');
  const nodes = parseNames('--nodes', opts.nodes, 'node');
  const witnesses = opts.witness === false ? [] : parseNames('--witness', opts.witness ?? DEFAULT_WITNESS, 'witness');
  const seen = new Map<string, string>();
  for (const [role, names] of [['node', nodes], ['witness', witnesses]] as const) {
    for (const n of names) {
      const prior = seen.get(n);
      if (prior === role) usage(`--${role === 'node' ? 'nodes' : 'witness'}: expected each name once, found ${JSON.stringify(n)} twice`);
      if (prior) usage(`expected each member name once, found ${JSON.stringify(n)} both as a node and as a witness`);
      if (n === 'ca') usage(`expected a member name other than "ca", found "ca": certs/ca.crt and certs/ca.key are the cluster CA's`);
      seen.set(n, role);
    }
  }
  return { dir: opts.dir, cluster: opts.cluster, nodes, witnesses, force: opts.force === true };
}

// ---------------------------------------------------------------------------
// The files

interface FileToWrite {
  /** Relative to DIR. */
  path: string;
  text: string;
  mode: number;
  /** Shown in the report. */
  what: string;
}

async function renderFiles(o: InitOptions): Promise<FileToWrite[]> {
  // Loaded here, not at the top: the X.509 library takes a while to load, and only init needs it.
  const { createCa, issueMemberCert } = await import('../../link/certificates.js');
  const files: FileToWrite[] = [];
  files.push({ path: CONFIG_FILE, text: renderStarterConfig({ cluster: o.cluster, nodes: o.nodes, witnesses: o.witnesses }), mode: 0o644, what: 'the cluster config: the same file on every member' });
  const ca = await createCa(o.cluster);
  files.push({ path: join(CERTS_DIR, 'ca.crt'), text: ca.certPem, mode: 0o644, what: 'the cluster CA certificate: every member needs it' });
  files.push({ path: join(CERTS_DIR, 'ca.key'), text: ca.keyPem, mode: 0o600, what: "the CA's private key: keep it safe and off the members" });
  for (const [role, names] of [['node', o.nodes], ['witness', o.witnesses]] as const) {
    for (const name of names) {
      const m = await issueMemberCert(ca, name, o.cluster);
      files.push({ path: join(CERTS_DIR, `${name}.crt`), text: m.certPem, mode: 0o644, what: `${role} ${name}: certificate` });
      files.push({ path: join(CERTS_DIR, `${name}.key`), text: m.keyPem, mode: 0o600, what: `${role} ${name}: private key` });
    }
  }
  return files;
}

// ---------------------------------------------------------------------------
// File system steps. Each names the path it works on, for the error message.

class StepError extends Error {
  constructor(
    readonly action: string,
    readonly path: string,
    readonly errno: string | undefined,
    cause: unknown,
  ) {
    super(`${action} ${path}: ${describeErrno(errno, cause)}`, { cause });
  }
}

function describeErrno(code: string | undefined, cause: unknown): string {
  const words: Record<string, string> = {
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
    EROFS: 'read-only file system',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOTDIR: 'a part of the path is not a directory',
    EEXIST: 'already exists',
    ENOENT: 'no such file or directory',
    EIO: 'input/output error',
    ENAMETOOLONG: 'name too long',
    EBUSY: 'busy (a mount point?)',
  };
  if (code && words[code]) return `${words[code]} (${code})`;
  return code ?? (cause instanceof Error ? cause.message : String(cause));
}

function step<T>(action: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof StepError || e instanceof SkyhaError) throw e;
    throw new StepError(action, path, (e as NodeJS.ErrnoException).code, e);
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new StepError('cannot inspect', path, (e as NodeJS.ErrnoException).code, e);
  }
}

function fsyncPath(path: string): void {
  step('cannot sync', path, () => {
    const fd = openSync(path, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
}

function writeNewFile(path: string, text: string, mode: number): void {
  step('cannot write', path, () => {
    // 'wx': create, never follow or replace what is there; the mode applies at creation.
    const fd = openSync(path, 'wx', mode);
    try {
      const data = Buffer.from(text, 'utf8');
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  });
}

function rename(from: string, to: string): void {
  step('cannot move', `${from} to ${to}`, () => renameSync(from, to));
}

// ---------------------------------------------------------------------------
// The swap, its rollback, and the cleanup of runs that were killed

/**
 * Puts the previous files back, as far as a run got (see the file comment).
 * Used for a failure of this run and for a temp directory left by a killed one.
 * Returns the targets it restored.
 */
function rollBack(dir: string, tmp: string): string[] {
  const restored: string[] = [];
  const fresh = join(tmp, 'new');
  if (!exists(fresh) || exists(join(tmp, 'committed'))) return restored;
  for (const t of TARGETS) {
    const target = join(dir, t);
    const movedIn = !exists(join(fresh, t));
    const aside = join(tmp, 'old', t);
    if (movedIn && exists(target)) rename(target, join(fresh, t));
    if (exists(aside)) {
      rename(aside, target);
      restored.push(t);
    }
  }
  if (restored.length > 0) fsyncPath(dir);
  return restored;
}

function swapIn(dir: string, tmp: string, force: boolean): string[] {
  const replaced: string[] = [];
  const fresh = join(tmp, 'new');
  step('cannot create', join(tmp, 'old'), () => mkdirSync(join(tmp, 'old')));
  for (const t of TARGETS) {
    const target = join(dir, t);
    if (!exists(target)) continue;
    // Checked before, but something may have appeared since.
    if (!force) throw existsError([target]);
    rename(target, join(tmp, 'old', t));
    replaced.push(t);
  }
  for (const t of TARGETS) rename(join(fresh, t), join(dir, t));
  fsyncPath(dir);
  step('cannot create', join(tmp, 'committed'), () => mkdirSync(join(tmp, 'committed')));
  return replaced;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Temp directories of earlier runs that were killed: restores what they had moved aside, then removes them. */
function recoverStale(dir: string): string[] {
  const notes: string[] = [];
  const entries = step('cannot list', dir, () => readdirSync(dir));
  for (const entry of entries) {
    if (!entry.startsWith(TEMP_PREFIX)) continue;
    const pid = Number(/^\.skyha-init-([0-9]+)-/.exec(entry)?.[1] ?? NaN);
    if (Number.isInteger(pid) && pid !== process.pid && pidAlive(pid)) continue; // another init at work
    const tmp = join(dir, entry);
    const restored = rollBack(dir, tmp);
    step('cannot remove', tmp, () => rmSync(tmp, { recursive: true, force: true }));
    notes.push(restored.length > 0 ? `restored ${restored.join(' and ')} from ${tmp}, left by an interrupted \`skyha init\`` : `removed ${tmp}, left by an interrupted \`skyha init\``);
  }
  return notes;
}

function existsError(found: string[]): SkyhaError {
  const names = found.map((p) => p + (basename(p) === CERTS_DIR ? '/' : ''));
  const them = found.length === 1 ? 'it' : 'them';
  return new SkyhaError('SKYHA_ERR_INIT_EXISTS', `${names.join(' and ')} already exist${found.length === 1 ? 's' : ''}; nothing was changed. Add --force to replace ${them} (the previous CA and keys are then deleted), or choose another --dir`);
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The directories to create for DIR (outermost first), or a usage error when a part of the path is not a directory. */
function missingDirs(dir: string, shown: string): string[] {
  const missing: string[] = [];
  for (let p = dir; ; p = dirname(p)) {
    try {
      const st = statSync(p);
      if (!st.isDirectory()) usage(`--dir ${shown}: expected a directory, but ${p} is ${st.isFile() ? 'a file' : 'not a directory'}`);
      return missing.reverse();
    } catch (e) {
      if (e instanceof SkyhaError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new SkyhaError('SKYHA_ERR_INIT_WRITE', `cannot use --dir ${shown}: ${describeErrno(code, e)} at ${p}`, { cause: e });
      missing.push(p);
      if (dirname(p) === p) return missing.reverse();
    }
  }
}

// ---------------------------------------------------------------------------

/** Writes the files; returns the report for stdout. Throws SkyhaError on usage errors and failures. */
export async function runInit(o: InitOptions): Promise<string> {
  const dir = resolve(o.dir);
  const toCreate = missingDirs(dir, o.dir);
  const notes: string[] = [];
  if (toCreate.length === 0) {
    let found: string[];
    try {
      notes.push(...recoverStale(dir));
      found = [CONFIG_FILE, CERTS_DIR].map((t) => join(dir, t)).filter((p) => exists(p));
    } catch (e) {
      throw writeError('nothing was written', e);
    } finally {
      for (const n of notes) process.stderr.write(`skyha: note: ${n}\n`);
    }
    if (found.length > 0 && !o.force) throw existsError(found);
  }

  // Everything in memory first: nothing touches the disk until it is all ready.
  const files = await renderFiles(o);

  const created: string[] = [];
  let tmp: string | undefined;
  let replaced: string[] = [];
  try {
    for (const d of toCreate) {
      step('cannot create', d, () => mkdirSync(d, { mode: 0o755 }));
      created.push(d);
    }
    tmp = step('cannot create a temp directory in', dir, () => mkdtempSync(join(dir, `${TEMP_PREFIX}${process.pid}-`)));
    const staging = join(tmp, 'staging');
    step('cannot create', staging, () => mkdirSync(staging, { mode: 0o755 }));
    step('cannot create', join(staging, CERTS_DIR), () => mkdirSync(join(staging, CERTS_DIR), { mode: 0o755 }));
    for (const f of files) writeNewFile(join(staging, f.path), f.text, f.mode);
    fsyncPath(join(staging, CERTS_DIR));
    fsyncPath(staging);
    rename(staging, join(tmp, 'new'));
    fsyncPath(tmp);
    replaced = swapIn(dir, tmp, o.force);
  } catch (e) {
    const problems: string[] = [];
    if (tmp !== undefined) {
      try {
        rollBack(dir, tmp);
      } catch (r) {
        problems.push(`could not put the previous files back: ${(r as Error).message}; they are in ${tmp}/old`);
        tmp = undefined; // keep it: it holds the only copy
      }
      if (tmp !== undefined) {
        try {
          rmSync(tmp, { recursive: true, force: true });
        } catch (r) {
          problems.push(`could not remove ${tmp}: ${(r as Error).message}; the next \`skyha init\` removes it`);
        }
      }
    }
    for (const d of created.reverse()) {
      try {
        rmdirSync(d);
      } catch (r) {
        problems.push(`could not remove the directory ${d}, which init created: ${(r as Error).message}`);
      }
    }
    if (e instanceof SkyhaError) {
      if (problems.length === 0) throw e;
      throw new SkyhaError(e.code, e.message, { details: [...e.details, ...problems], cause: e });
    }
    throw writeError(problems.length === 0 ? 'nothing was changed' : 'the cleanup was incomplete (see below)', e, problems);
  }

  // Committed: the new files are in place. What is left in tmp is garbage (and the previous files).
  try {
    rmSync(tmp, { recursive: true, force: true });
  } catch (e) {
    process.stderr.write(`skyha: warning: could not remove ${tmp} (${(e as Error).message}); the next \`skyha init\` removes it\n`);
  }
  return report(o, dir, files, replaced);
}

function writeError(what: string, e: unknown, details: string[] = []): SkyhaError {
  const why = e instanceof Error ? e.message : String(e);
  return new SkyhaError('SKYHA_ERR_INIT_WRITE', `${why}; ${what}`, { details, cause: e });
}

/** A path as the user would type it: relative to the working directory when inside it. */
function display(p: string): string {
  const r = relative(process.cwd(), p);
  return r !== '' && !r.startsWith('..') && !isAbsolute(r) ? r : p;
}

function report(o: InitOptions, dir: string, files: FileToWrite[], replaced: string[]): string {
  const out: string[] = [];
  const at = (rel: string) => display(join(dir, rel));
  out.push(`Wrote the starter config and the certificates of cluster ${JSON.stringify(o.cluster)}${replaced.length > 0 ? ` (replacing the previous ${replaced.join(' and ')})` : ''}:`);
  const width = Math.max(...files.map((f) => at(f.path).length));
  for (const f of files) out.push(`  ${at(f.path).padEnd(width)}  ${f.what}`);
  const config = at(CONFIG_FILE);
  const anyMember = o.nodes[0]!;
  out.push('');
  out.push('Next steps:');
  out.push(`  1. Edit ${config}: replace the example addresses with the ones the members use`);
  out.push('     to reach each other, and the example modules with your applications.');
  out.push(`  2. Check it: skyha validate ${shellQuote(config)}`);
  out.push(`     and for one member's certificate and key: skyha validate ${shellQuote(config)} --node ${anyMember}`);
  out.push(`  3. Copy to each member, in the same layout: ${CONFIG_FILE}, ${CERTS_DIR}/ca.crt and that member's own`);
  out.push(`     ${CERTS_DIR}/NAME.crt and ${CERTS_DIR}/NAME.key (keep the key mode 0600). ${CERTS_DIR}/ca.key stays here.`);
  out.push('  4. Start each member:');
  for (const n of o.nodes) out.push(`       on ${n}: skyha agent --config ${CONFIG_FILE} --node ${n}`);
  for (const w of o.witnesses) out.push(`       on ${w}: skyha witness --config ${CONFIG_FILE} --name ${w}`);
  return out.join('\n') + '\n';
}

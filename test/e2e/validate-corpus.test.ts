/**
 * The corpus of bad config files (test/fixtures/bad/NNN-*.yaml): each file
 * says in its leading comments which errors `skyha validate` must print
 * (line:col and key path, as a set), the error code, and substrings of the
 * output. Every file goes through the real CLI with --json; a sample also
 * without --json (the same lines on stderr); all of them in-process too,
 * which must agree with the CLI. See test/fixtures/bad/README.md.
 */
import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfigFile, type LoadResult } from '../../src/config/load.js';
import { RULES } from '../../src/config/rules.js';
import { REPO_ROOT, runCli, type CliResult } from '../helpers/cli.js';

const CORPUS = join(REPO_ROOT, 'test/fixtures/bad');

interface Fixture {
  file: string;
  /** "L:C path" (path empty for a syntax error without one). */
  expect: Set<string>;
  expectWarning: Set<string>;
  /** The `code` of `validate --json`; null when the file is valid. */
  code: string | null;
  args: string[];
  contains: string[];
  exit: number;
}

/** Reads the header: the comment lines at the top of the file. */
function parseFixture(file: string, text: string): Fixture {
  const f: Fixture = { file, expect: new Set(), expectWarning: new Set(), code: undefined as unknown as null, args: [], contains: [], exit: 2 };
  for (const line of text.split('\n')) {
    if (!line.startsWith('#')) break;
    const m = /^# ([a-z-]+): (.*)$/.exec(line);
    if (!m) continue;
    const [, key, value] = m as unknown as [string, string, string];
    if (key === 'expect') f.expect.add(value.trim());
    else if (key === 'expect-warning') f.expectWarning.add(value.trim());
    else if (key === 'code') f.code = value === 'null' ? null : value;
    else if (key === 'args') f.args = value.split(/\s+/).filter(Boolean);
    else if (key === 'contains') f.contains.push(value);
    else if (key === 'exit') f.exit = Number(value);
    else throw new Error(`${file}: unknown header "# ${key}:"`);
  }
  assert.notEqual(f.code, undefined, `${file}: no "# code:" line`);
  assert.ok(f.expect.size + f.expectWarning.size > 0, `${file}: no "# expect:" line`);
  for (const e of [...f.expect, ...f.expectWarning]) assert.match(e, /^\d+:\d+( \S+)?$/, `${file}: malformed expectation "${e}"`);
  return f;
}

const KEYED = /^(\d+):(\d+): (?:warning: )?(\S+): expected .+, found .+/;
const PLAIN = /^(\d+):(\d+): \S.*/;

/** "L:C path" of one printed line, after checking its shape. */
function where(file: string, line: string, syntax: boolean, warning: boolean): string {
  assert.ok(line.startsWith(`${file}:`), `does not start with FILE: ${line}`);
  const rest = line.slice(file.length + 1);
  assert.equal(rest.includes(': warning: '), warning, `warning: marks warnings only: ${line}`);
  const keyed = KEYED.exec(rest);
  if (keyed) return `${keyed[1]}:${keyed[2]} ${keyed[3]}`;
  // A syntax error may be just FILE:L:C: message.
  assert.ok(syntax && PLAIN.test(rest), `not FILE:LINE:COL: KEY.PATH: expected ..., found ...: ${line}`);
  const plain = PLAIN.exec(rest)!;
  return `${plain[1]}:${plain[2]}`;
}

interface Outcome {
  json: CliResult;
  text?: CliResult;
  inProcess: LoadResult;
}

/** Runs jobs with at most `limit` at a time. */
async function pool<T, R>(items: readonly T[], limit: number, job: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await job(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

const files = readdirSync(CORPUS).filter((f) => /^\d{3}-[a-z0-9-]+\.yaml$/.test(f)).sort();
const fixtures = files.map((f) => parseFixture(f, readFileSync(join(CORPUS, f), 'utf8')));
/** Also run without --json: the first fixture of each error code (and with --node), and every twentieth. */
const firstOfKind = new Set([...new Map(fixtures.map((f) => [`${f.code} ${f.args.length > 0}`, f.file] as const).reverse()).values()]);
const textToo = (f: Fixture, i: number) => i % 20 === 0 || firstOfKind.has(f.file);

describe('skyha validate on the corpus of bad config files', () => {
  let dir = '';
  const outcomes = new Map<string, Outcome>();

  before(async () => {
    // A copy, so that key files get the modes the fixtures rely on (git keeps no modes).
    dir = mkdtempSync(join(tmpdir(), 'skyha-corpus-'));
    cpSync(CORPUS, dir, { recursive: true });
    for (const k of readdirSync(join(dir, 'certs')).filter((n) => n.endsWith('.key'))) {
      chmodSync(join(dir, 'certs', k), k.endsWith('.mode0644.key') ? 0o644 : 0o600);
    }
    const jobs = fixtures.flatMap((f, i) => [{ f, json: true }, ...(textToo(f, i) ? [{ f, json: false }] : [])]);
    const results = await pool(jobs, Math.max(2, Math.min(8, availableParallelism())), ({ f, json }) =>
      runCli(['validate', f.file, ...f.args, ...(json ? ['--json'] : [])], { cwd: dir }),
    );
    jobs.forEach(({ f, json }, i) => {
      const o = outcomes.get(f.file) ?? ({ inProcess: undefined } as unknown as Outcome);
      if (json) o.json = results[i]!;
      else o.text = results[i]!;
      outcomes.set(f.file, o);
    });
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      for (const f of fixtures) {
        const member = f.args[f.args.indexOf('--node') + 1];
        outcomes.get(f.file)!.inProcess = loadConfigFile(f.file, f.args.includes('--node') && member ? { member } : {});
      }
    } finally {
      process.chdir(cwd);
    }
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('holds at least 60 fixtures, covering every error code and every rule', () => {
    assert.ok(fixtures.length >= 60, `only ${fixtures.length} fixtures`);
    const codes = new Set(fixtures.map((f) => f.code));
    for (const c of ['SKYHA_ERR_CONFIG_SYNTAX', 'SKYHA_ERR_CONFIG_SCHEMA', 'SKYHA_ERR_CONFIG_RULE', 'SKYHA_ERR_CONFIG_TLS', 'SKYHA_ERR_CONFIG_UNKNOWN_MEMBER', null]) {
      assert.ok(codes.has(c), `no fixture with code ${c}`);
    }
    const printed = [...outcomes.values()].map((o) => o.json.stdout).join('\n');
    for (const rule of RULES) assert.ok(printed.includes(`[rule ${rule.id}]`), `no fixture breaks rule ${rule.id}`);
  });

  for (const [i, f] of fixtures.entries()) {
    it(`${f.file}${f.args.length ? ' ' + f.args.join(' ') : ''}`, () => {
      const o = outcomes.get(f.file)!;
      const detail = `\n--- stdout:\n${o.json.stdout}\n--- stderr:\n${o.json.stderr}`;
      assert.equal(o.json.code, f.exit, `exit code${detail}`);
      assert.equal(o.json.stderr, '', `--json prints nothing on stderr${detail}`);
      const out = JSON.parse(o.json.stdout) as { ok: boolean; code: string | null; errors: string[]; warnings: string[] };
      assert.equal(out.ok, f.exit === 0);
      assert.equal(out.code, f.code, `code${detail}`);

      const syntax = f.code === 'SKYHA_ERR_CONFIG_SYNTAX';
      const errors = out.errors.map((l) => where(f.file, l, syntax, false));
      const warnings = out.warnings.map((l) => where(f.file, l, false, true));
      assert.deepEqual(new Set(errors), f.expect, `errors (line:col path)${detail}`);
      assert.deepEqual(new Set(warnings), f.expectWarning, `warnings (line:col path)${detail}`);
      assert.equal(new Set(out.errors).size, out.errors.length, `an error printed twice${detail}`);
      const all = [...out.errors, ...out.warnings].join('\n');
      for (const c of f.contains) assert.ok(all.includes(c), `output lacks ${JSON.stringify(c)}${detail}`);

      // The in-process loader says the same.
      assert.deepEqual(o.inProcess.errors, out.errors);
      assert.deepEqual(o.inProcess.warnings, out.warnings);
      assert.equal(o.inProcess.code ?? null, out.code);

      // Without --json: the same lines, warnings and errors on stderr; `ok` on stdout when valid.
      if (o.text) {
        const textDetail = `\n--- stdout:\n${o.text.stdout}\n--- stderr:\n${o.text.stderr}`;
        assert.equal(o.text.code, f.exit, `exit code without --json${textDetail}`);
        assert.equal(o.text.stdout, f.exit === 0 ? 'ok\n' : '', `stdout without --json${textDetail}`);
        assert.deepEqual(o.text.stderr.split('\n').filter(Boolean), [...out.warnings, ...out.errors], `stderr without --json${textDetail}`);
      } else {
        assert.ok(!textToo(f, i));
      }
    });
  }
});

/**
 * Property: whatever the config text, the loader never throws, and either
 * returns a config with no errors, or at least one error, each of them
 * FILE:LINE:COL: with a message (KEY.PATH: expected ..., found ... unless the
 * YAML itself is broken). Inputs are the valid configs in test/fixtures/good/,
 * mutated at random: keys deleted, renamed, added, values replaced by values
 * of other types, and characters, lines and indentation of the text changed.
 * A few dozen mutated files also go through the real CLI.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { loadConfigText, type LoadResult } from '../../src/config/load.js';
import { ERROR_CODES } from '../../src/core/errors.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';

const GOOD = join(REPO_ROOT, 'test/fixtures/good');
/** Mutated texts are loaded as if they were this file, so that tls.ca (../bad/certs/ca.crt) resolves. */
const FILE = join(GOOD, 'mutated.yaml');

const goodFiles = readdirSync(GOOD).filter((f) => f.endsWith('.yaml')).sort();
const goodTexts = goodFiles.map((f) => readFileSync(join(GOOD, f), 'utf8'));

type Data = null | boolean | number | string | Data[] | { [key: string]: Data };
type Path = (string | number)[];

// ------------------------------------------------------------ checking one result

/** A key path: words, dots, [0], and keys in quotes (which may hold spaces), as formatPath writes them. */
const PATH = String.raw`(?:[^\s"]|"(?:[^"\\]|\\.)*")+`;
const KEYED = new RegExp(String.raw`^(\d+):(\d+): (?:warning: )?${PATH}: expected .+, found .+`, 's');
const PLAIN = /^(\d+):(\d+): \S/;

/** Asserts the loader's contract for one text; returns a description of what came out. */
function checkResult(file: string, text: string, r: LoadResult): 'ok' | 'errors' {
  const lines = text.split('\n').length;
  for (const w of r.warnings) {
    assert.ok(w.startsWith(`${file}:`), `warning without FILE: ${w}`);
    assert.match(w.slice(file.length + 1), KEYED, `malformed warning: ${w}`);
  }
  if (r.config) {
    assert.deepEqual(r.errors, [], 'a config and errors at once');
    return 'ok';
  }
  assert.ok(r.errors.length >= 1, 'neither a config nor an error');
  assert.ok(r.code && r.code in ERROR_CODES, `no error code: ${r.code}`);
  for (const e of r.errors) {
    assert.ok(e.startsWith(`${file}:`), `error without FILE: ${e}`);
    assert.doesNotMatch(e, /[\u0000-\u0008\u000a-\u001f\u007f]/, `a control character in an error, which must be one line: ${JSON.stringify(e)}`);
    const rest = e.slice(file.length + 1);
    const m = (r.code === 'SKYHA_ERR_CONFIG_SYNTAX' ? PLAIN : KEYED).exec(rest);
    assert.ok(m, `not FILE:LINE:COL: ${r.code === 'SKYHA_ERR_CONFIG_SYNTAX' ? 'message' : 'KEY.PATH: expected ..., found ...'}: ${e}`);
    const [line, col] = [Number(m[1]), Number(m[2])];
    assert.ok(line >= 1 && line <= lines && col >= 1, `position ${line}:${col} outside the file (${lines} lines): ${e}`);
    assert.ok(rest.replace(/^\d+:\d+: /, '').trim().length > 3, `empty message: ${e}`);
  }
  return 'errors';
}

function load(text: string): LoadResult {
  try {
    return loadConfigText(FILE, text);
  } catch (err) {
    assert.fail(`loadConfigText threw: ${(err as Error)?.stack ?? String(err)}\n--- text:\n${text}`);
  }
}

// ------------------------------------------------------------ mutations of the data

function allPaths(v: Data, prefix: Path = []): Path[] {
  const out: Path[] = [];
  if (Array.isArray(v)) v.forEach((x, i) => out.push([...prefix, i], ...allPaths(x, [...prefix, i])));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push([...prefix, k], ...allPaths(x, [...prefix, k]));
  return out;
}
function containerAt(root: Data, path: Path): Data {
  let v: Data = root;
  for (const seg of path) v = (v as Record<string | number, Data>)[seg] as Data;
  return v;
}
function mappingPaths(root: Data): Path[] {
  return [[], ...allPaths(root)].filter((p) => {
    const v = containerAt(root, p);
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  });
}

/** A value of some other type than the one there: the shapes people (and editors) get wrong. */
const otherValue: fc.Arbitrary<Data> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.integer(),
  fc.integer({ max: -1 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('250ms', '0s', '-1s', '1 s', '5', 'aws-1', 'witness-1', 'Aws_1', '/abs/dir', 'rel/dir', '', ' ', 'true', '~', '0x10', '1e3', '.inf', '{member}', 'http://127.0.0.1/', '127.0.0.1', '300.1.1.1', 'mirror', 'farm', 'tcp', 'http', 'lan'),
  fc.constantFrom(0, 1, 65535, 65536, 70000, 1.5, 1e21, Number.MAX_SAFE_INTEGER),
  fc.array(fc.oneof(fc.string({ maxLength: 6 }), fc.integer()), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.string({ maxLength: 6 }), fc.integer()), { maxKeys: 3 }),
  fc.nat({ max: 20_000 }).map((n) => 'x'.repeat(n)),
);

/** A misspelling of a key, or another key altogether. */
const typo = (key: string, how: number, ch: string): string => {
  const i = key.length === 0 ? 0 : how % key.length;
  switch (how % 5) {
    case 0: return key.slice(0, i) + key.slice(i + 1);
    case 1: return key.slice(0, i) + ch + key.slice(i);
    case 2: return key.slice(0, i) + (key[i + 1] ?? '') + (key[i] ?? '') + key.slice(i + 2);
    case 3: return key.toUpperCase();
    default: return `${key}_${ch}`;
  }
};

interface DataMutation {
  /** copy: the value of another key of the same file (same types, so it reaches the cross-field rules). */
  op: 'delete' | 'replace' | 'rename' | 'add' | 'copy';
  pick: number;
  how: number;
  ch: string;
  value: Data;
}
const dataMutation: fc.Arbitrary<DataMutation> = fc.record({
  op: fc.constantFrom('delete', 'replace', 'rename', 'add', 'copy', 'copy'),
  pick: fc.nat(),
  how: fc.nat(),
  ch: fc.constantFrom('a', 'x', '_', '-', '1', 'é', ' '),
  value: otherValue,
});

function applyData(root: Data, m: DataMutation): Data {
  const data = structuredClone(root);
  if (m.op === 'add') {
    const targets = mappingPaths(data);
    const target = containerAt(data, targets[m.pick % targets.length]!) as Record<string, Data>;
    const siblings = Object.keys(target);
    const key = siblings.length > 0 && m.how % 2 === 0 ? typo(siblings[m.how % siblings.length]!, m.how, m.ch) : `unknown${m.ch}${m.how % 100}`;
    target[key] = m.value;
    return data;
  }
  const paths = allPaths(data);
  if (paths.length === 0) return m.value;
  const path = paths[m.pick % paths.length]!;
  const parent = containerAt(data, path.slice(0, -1)) as Record<string | number, Data>;
  const last = path[path.length - 1]!;
  if (m.op === 'replace') parent[last] = m.value;
  else if (m.op === 'copy') {
    const kind = (v: Data) => (Array.isArray(v) ? 'list' : v === null ? 'null' : typeof v);
    const same = paths.filter((p) => kind(containerAt(data, p)) === kind(parent[last] as Data));
    parent[last] = structuredClone(containerAt(data, same[m.how % same.length]!));
  }
  else if (m.op === 'delete') {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else if (typeof last === 'string') {
    // Rename, keeping the key's place among its siblings.
    const entries = Object.entries(parent).map(([k, v]) => [k === last ? typo(k, m.how, m.ch) : k, v] as const);
    for (const k of Object.keys(parent)) delete parent[k];
    for (const [k, v] of entries) parent[k] = v;
  }
  return data;
}

// ------------------------------------------------------------ mutations of the text

interface TextMutation {
  op: 'delete-char' | 'insert-char' | 'duplicate-char' | 'delete-line' | 'duplicate-line' | 'insert-line' | 'swap-lines' | 'truncate' | 'indent' | 'dedent' | 'tab' | 'duplicate-key';
  at: number;
  n: number;
  ch: string;
}
const textMutation: fc.Arbitrary<TextMutation> = fc.record({
  op: fc.constantFrom('delete-char', 'insert-char', 'duplicate-char', 'delete-line', 'duplicate-line', 'insert-line', 'swap-lines', 'truncate', 'indent', 'dedent', 'tab', 'duplicate-key'),
  at: fc.nat(),
  n: fc.integer({ min: 1, max: 4 }),
  ch: fc.oneof(fc.constantFrom(' ', '\t', '\n', ':', '-', '{', '}', '[', ']', '#', '&', '*', '!', '|', '>', "'", '"', '%', '@', '`', ',', '?', '\\', '\r', '\u00a0', '\ufeff', 'é', '😀', '\0'), fc.string({ maxLength: 3 })),
});

function applyText(text: string, m: TextMutation): string {
  const lines = text.split('\n');
  const li = m.at % lines.length;
  const ci = text.length === 0 ? 0 : m.at % text.length;
  switch (m.op) {
    case 'delete-char': return text.slice(0, ci) + text.slice(ci + m.n);
    case 'insert-char': return text.slice(0, ci) + m.ch + text.slice(ci);
    case 'duplicate-char': return text.slice(0, ci) + text.slice(ci, ci + m.n) + text.slice(ci);
    case 'truncate': return text.slice(0, ci);
    case 'delete-line': lines.splice(li, m.n); break;
    case 'duplicate-line': lines.splice(li, 0, ...lines.slice(li, li + m.n)); break;
    case 'insert-line': lines.splice(li, 0, ' '.repeat(m.n * 2 - 2) + m.ch + ': ' + m.ch); break;
    case 'swap-lines': {
      const other = (li + m.n) % lines.length;
      [lines[li], lines[other]] = [lines[other]!, lines[li]!];
      break;
    }
    case 'indent': lines[li] = ' '.repeat(m.n) + lines[li]; break;
    case 'dedent': lines[li] = lines[li]!.replace(new RegExp(`^ {1,${m.n}}`), ''); break;
    case 'tab': lines[li] = lines[li]!.replace(/^ */, (s) => s.replace(/ {1,2}$/, '\t')); break;
    case 'duplicate-key': {
      // The same key twice in a mapping: copy a `key: value` line right below itself.
      const keyed = lines.map((l, i) => [l, i] as const).filter(([l]) => /^\s*[\w-]+:\s*\S/.test(l));
      if (keyed.length > 0) {
        const [l, i] = keyed[m.at % keyed.length]!;
        lines.splice(i + 1, 0, l);
      }
      break;
    }
  }
  return lines.join('\n');
}

// ------------------------------------------------------------ the inputs

const goodData: Data[] = goodTexts.map((t) => parse(t) as Data);

const fromData: fc.Arbitrary<string> = fc
  .tuple(fc.nat({ max: goodData.length - 1 }), fc.array(dataMutation, { minLength: 1, maxLength: 3 }))
  .map(([i, ms]) => stringify(ms.reduce(applyData, goodData[i]!)));

const fromText: fc.Arbitrary<string> = fc
  .tuple(fc.nat({ max: goodTexts.length - 1 }), fc.array(textMutation, { minLength: 1, maxLength: 4 }))
  .map(([i, ms]) => ms.reduce(applyText, goodTexts[i]!));

describe('config loader on mutated configs (property)', () => {
  it('the good configs themselves load without errors or warnings', () => {
    assert.ok(goodFiles.length >= 3);
    for (const [i, text] of goodTexts.entries()) {
      const r = loadConfigText(join(GOOD, goodFiles[i]!), text);
      assert.deepEqual([r.errors, r.warnings], [[], []], goodFiles[i]);
      assert.ok(r.config);
    }
  });

  it('never throws; a config, or errors at FILE:LINE:COL (keys deleted, renamed, added, values of other types)', () => {
    const seen = { ok: 0, errors: 0 };
    fc.assert(
      fc.property(fromData, (text) => {
        seen[checkResult(FILE, text, load(text))]++;
      }),
      { numRuns: 1500 },
    );
    // The mutations must break configs, and not only break them.
    assert.ok(seen.errors > 500, JSON.stringify(seen));
  });

  it('never throws; a config, or errors at FILE:LINE:COL (characters, lines, indentation, duplicate keys, truncation)', () => {
    const seen = { ok: 0, errors: 0 };
    fc.assert(
      fc.property(fromText, (text) => {
        seen[checkResult(FILE, text, load(text))]++;
      }),
      { numRuns: 2500 },
    );
    assert.ok(seen.errors > 500 && seen.ok > 0, JSON.stringify(seen));
  });

  it('the CLI exits 0 or 2, never 1, printing `ok` or error lines (40 mutated files)', async () => {
    const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : Date.now() % 2 ** 31;
    const texts = [...fc.sample(fromData, { seed, numRuns: 20 }), ...fc.sample(fromText, { seed, numRuns: 20 })];
    const dir = mkdtempSync(join(tmpdir(), 'skyha-prop-'));
    try {
      // Relative paths in the configs (tls.ca: ../bad/certs/ca.crt) must resolve as from test/fixtures/good.
      const files = texts.map((text, i) => {
        const file = join(dir, `m${i}.yaml`);
        writeFileSync(file, text.replaceAll('../bad/certs/', join(REPO_ROOT, 'test/fixtures/bad/certs/')));
        return file;
      });
      const limit = Math.max(2, Math.min(8, availableParallelism()));
      let next = 0;
      const failures: string[] = [];
      await Promise.all(
        Array.from({ length: limit }, async () => {
          while (next < files.length) {
            const i = next++;
            const file = files[i]!;
            const r = await runCli(['validate', file]);
            const why = (msg: string) => failures.push(`${msg} (FC_SEED=${seed}, case ${i})\n--- ${file}:\n${readFileSync(file, 'utf8')}\n--- stdout:\n${r.stdout}--- stderr:\n${r.stderr}`);
            if (r.code !== 0 && r.code !== 2) {
              why(`exit code ${r.code}`);
              continue;
            }
            if (r.code === 0 && r.stdout !== 'ok\n') why('exit 0 without `ok`');
            if (r.code === 2 && r.stdout !== '') why('exit 2 with something on stdout');
            const lines = r.stderr.split('\n').filter(Boolean);
            if (r.code === 2 && lines.length === 0) why('exit 2 without an error');
            for (const l of lines) if (!l.startsWith(`${file}:`) || !PLAIN.test(l.slice(file.length + 1))) why(`not FILE:LINE:COL: ${l}`);
          }
        }),
      );
      assert.deepEqual(failures, []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

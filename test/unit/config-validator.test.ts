/**
 * The config schema's validator is code `npm run build` generates
 * (scripts/build-config-validator.mjs); schema.ts falls back to compiling
 * the schema at start-up where that code is missing or was made from
 * another schema. Both must judge every input the same, error for error:
 * the operator's messages are made from ajv's error objects.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { parse } from 'yaml';
import { compileSchema } from '../../src/config/schema-compile.js';
import { schemaHash } from '../../src/config/schema-hash.js';
import { SCHEMA, SCHEMA_URL } from '../../src/config/schema.js';
import { REPO_ROOT } from '../helpers/cli.js';

type Validate = ((data: unknown) => boolean) & { errors?: unknown[] | null };
const generated = (await import(new URL('../../src/config/schema-validate.js', import.meta.url).href)) as { validate: Validate; schemaHash: string };

const GOOD = join(REPO_ROOT, 'test/fixtures/good');
const goods = readdirSync(GOOD).filter((f) => f.endsWith('.yaml')).sort().map((f) => parse(readFileSync(join(GOOD, f), 'utf8')) as unknown);

test('the build generated the validator from this schema', () => {
  assert.equal(generated.schemaHash, schemaHash(readFileSync(SCHEMA_URL, 'utf8')));
});

test('the generated validator and the one compiled at start-up find the same errors (property)', () => {
  const compiled = compileSchema(SCHEMA) as Validate;
  const judge = (v: Validate, data: unknown) => ({ ok: v(data), errors: structuredClone(v.errors ?? null) });
  // A good config with one value somewhere replaced by anything JSON can hold.
  const mutated = fc.tuple(fc.constantFrom(...goods), fc.nat(), fc.jsonValue({ maxDepth: 2 })).map(([good, at, value]) => {
    const copy = structuredClone(good) as Record<string, unknown>;
    const slots: Array<[Record<string, unknown> | unknown[], string | number]> = [];
    const visit = (x: unknown): void => {
      if (Array.isArray(x)) x.forEach((v, i) => (slots.push([x, i]), visit(v)));
      else if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) (slots.push([x as Record<string, unknown>, k]), visit(v));
    };
    visit(copy);
    const [holder, key] = slots[at % slots.length]!;
    (holder as Record<string | number, unknown>)[key] = value;
    return copy;
  });
  fc.assert(
    fc.property(fc.oneof(mutated, fc.constantFrom(...goods)), (data) => {
      assert.deepEqual(judge(generated.validate, data), judge(compiled, data));
    }),
    { numRuns: 500 },
  );
});

test('without the generated code (or with code from another schema), the schema is compiled at start-up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skyha-validator-'));
  try {
    // A copy of the built tree whose generated validator is stale: schema.ts must not use it.
    cpSync(join(REPO_ROOT, 'dist', 'src'), join(dir, 'dist', 'src'), { recursive: true });
    cpSync(join(REPO_ROOT, 'schema'), join(dir, 'schema'), { recursive: true });
    cpSync(join(REPO_ROOT, 'package.json'), join(dir, 'package.json'));
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'));
    const generatedFile = join(dir, 'dist', 'src', 'config', 'schema-validate.js');
    const findings = (schemaModule: string): string => {
      const probe = `import(${JSON.stringify(schemaModule)}).then((m) => console.log(JSON.stringify(m.checkSchema({ cluster: 'x' }).map((p) => p.message))))`;
      const run = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8', cwd: REPO_ROOT });
      assert.equal(run.status, 0, run.stderr);
      return run.stdout;
    };
    const expected = findings(join(REPO_ROOT, 'dist/src/config/schema.js'));
    assert.match(expected, /nodes/);
    // Made from another schema, and accepting anything: used, it would find nothing wrong.
    writeFileSync(generatedFile, 'export const schemaHash = "another schema";\nexport const validate = () => true;\n');
    assert.equal(findings(join(dir, 'dist/src/config/schema.js')), expected, 'a stale validator: the schema compiled at start-up');
    rmSync(generatedFile);
    assert.equal(findings(join(dir, 'dist/src/config/schema.js')), expected, 'no generated validator (a tsc-only build): the same');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

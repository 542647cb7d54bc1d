/** The README's configuration reference and docs/errors.md follow the code. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { spliceReference } from '../../src/config/reference.js';
import { ERROR_CODES } from '../../src/core/errors.js';
import { REPO_ROOT } from '../helpers/cli.js';

describe('docs in step with the code', () => {
  it('the README holds the configuration reference generated from the schema (run `npm run docs:config`)', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    assert.equal(readme, spliceReference(readme));
  });

  it('docs/errors.md lists every error code with its exit code, and no other', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs/errors.md'), 'utf8');
    const documented = new Map([...doc.matchAll(/^\| `(SKYHA_ERR_[A-Z_]+)` \| (\d) \|/gm)].map((m) => [m[1], Number(m[2])]));
    assert.deepEqual([...documented.keys()].sort(), Object.keys(ERROR_CODES).sort());
    for (const [code, { exit }] of Object.entries(ERROR_CODES)) assert.equal(documented.get(code), exit, code);
  });

  it('the README names the test command that CI runs', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const ci = readFileSync(join(REPO_ROOT, '.ci/run'), 'utf8');
    assert.match(readme, /```sh\nnpm test\n```/);
    assert.match(ci, /^npm test$/m);
  });
});

/** The test helpers that replace fixed sleeps: waiting for a condition, and a condition holding through a window. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { holdsFor, waitFor } from '../../src/testing/wait.js';

describe('waiting with a deadline', () => {
  it('waitFor returns the first truthy value, and names what it waited for at the deadline', async () => {
    let n = 0;
    assert.equal(await waitFor('n reaches 3', () => (++n >= 3 ? n : 0), { every: 1 }), 3);
    await assert.rejects(waitFor('never', () => false, { deadline: 30, every: 5 }), /timed out after 30 ms waiting for never/);
  });

  it('holdsFor checks through the whole window and fails as soon as the check does', async () => {
    let calls = 0;
    const start = performance.now();
    await holdsFor('always', () => void calls++, { duration: 60, every: 10 });
    assert.ok(performance.now() - start >= 60 && calls >= 3);
    let k = 0;
    await assert.rejects(holdsFor('k stays below 2', () => ++k < 2, { duration: 1000, every: 1 }), /k stays below 2: stopped holding/);
    assert.equal(k, 2);
  });
});

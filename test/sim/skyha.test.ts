/**
 * The real decision core under seeded fault schedules (src/sim/models/skyha.ts):
 * at least 10,000 schedules over three cluster shapes must keep every
 * guarantee, and every deliberately broken variant must be caught. Runs the
 * `sim` command as a child process, as an operator would, so a failure prints
 * its seed and the command that replays it.
 *
 * SKYHA_SIM_SEED=S explores other schedules (CI uses a fixed seed so that a
 * red run can be replayed exactly).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const CLI = fileURLToPath(new URL('../../src/sim/cli.js', import.meta.url));
const SEED = process.env.SKYHA_SIM_SEED ?? '20261123';
// Shorter than the command's default runs, so that 10,000 fit in a few minutes on two cores.
const TIMING = ['--duration', '6000', '--quiet', '3000'];

function sim(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args, ...TIMING], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 10 * 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('simulation: the guarantees hold under seeded faults', () => {
  const runs: Array<[string, number]> = [
    ['2n+w', 4000],
    ['3n', 4000],
    ['5v', 2000],
  ];
  for (const [shape, schedules] of runs) {
    it(`${schedules} schedules on ${shape} keep every guarantee (seed ${SEED})`, () => {
      const r = sim(['--model', 'skyha', '--shape', shape, '--schedules', String(schedules), '--seed', SEED]);
      const summary = r.out.split('\n').filter((l) => /schedules\/s|all passed|out of scope/.test(l)).join('\n');
      process.stdout.write(`# ${shape}: ${summary.replace(/\n/g, '\n# ')}\n`);
      assert.equal(r.code, 0, r.out.slice(0, 20_000));
      assert.match(r.out, new RegExp(`${schedules} schedules \\(model skyha, shape ${shape.replace('+', '\\+')}, master seed ${SEED}\\): all passed`));
    });
  }
});

describe('simulation: a checker that cannot fail proves nothing', () => {
  const variants: Array<[string, RegExp]> = [
    ['no-drift-margin', /\[(noTwoPrimaries|leaseExclusive)\]/],
    ['promote-out-of-sync', /\[noLostAckedWrite\]/],
    ['keep-serving', /\[(noTwoPrimaries|leaseExclusive)\]/],
    ['stop-early', /\[noTwoPrimaries\]/],
  ];
  for (const [variant, caughtBy] of variants) {
    it(`catches skyha:${variant}`, () => {
      const r = sim(['--model', `skyha:${variant}`, '--shape', '2n+w', '--schedules', '1000', '--seed', SEED]);
      assert.equal(r.code, 1, `the broken variant passed 1000 schedules:\n${r.out.slice(0, 5000)}`);
      assert.match(r.out, /FAILED: seed \d+/);
      assert.match(r.out, /replay: npm run sim -- --replay --seed \d+ --model skyha:/);
      assert.match(r.out, caughtBy);
    });
  }
});

describe('simulation: schedules that once broke a guarantee stay fixed', () => {
  // Each replays one schedule at the command's default timing, as the seed was found.
  const found: Array<[string, string, string]> = [
    ['648988185', '3n', 'failback to a preferred node whose removal from the in-sync set was still being committed'],
    ['3392909758', '3n', 'a hand-over target that lost its disk between the final barrier and the transfer'],
    ['2116425407', '3n+w', 'voters split between two records of one holder refused every candidate (liveness)'],
    ['2801785463', '2n+w', 'a first lease stored on one voter of a new cluster left the others amnesiac for good (liveness)'],
  ];
  for (const [seed, shape, story] of found) {
    it(`seed ${seed} on ${shape}: ${story}`, () => {
      const r = spawnSync(process.execPath, [CLI, '--replay', '--seed', seed, '--model', 'skyha', '--shape', shape, '--tail', '0'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
      const out = `${r.stdout}${r.stderr}`;
      assert.equal(r.status, 0, out.slice(-5000));
      assert.match(out, /result: ok/);
    });
  }
});

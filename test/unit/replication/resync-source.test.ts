/**
 * The primary's side of a resync on a real tree, with the link in memory:
 * a resync stopped from outside (its connection was replaced) sends
 * nothing more, and another to the same node may start at once.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../../../src/observe/log.js';
import { History } from '../../../src/replication/history.js';
import type { ResyncMessage } from '../../../src/replication/resync-messages.js';
import { ResyncSource } from '../../../src/replication/resync-source.js';
import { waitFor } from '../../../src/testing/wait.js';

test('a resync stopped because its connection was replaced sends nothing more, and the next one starts at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skyha-resync-src-'));
  const root = join(dir, 'data');
  mkdirSync(root);
  for (let i = 0; i < 20; i++) writeFileSync(join(root, `f${String(i).padStart(2, '0')}`), `file ${i}`);
  const history = new History({ path: join(dir, 'history') });
  history.start(2, { epoch: 1, seq: 0 });
  const sent: ResyncMessage[] = [];
  const events: string[] = [];
  // The link takes `room` records, then fills up until the test lets it drain.
  let room = 3;
  let drain: (() => void) | undefined;
  // The links' connection to b: a new one means what went on the old one may be lost.
  let connection = 1;
  const source = new ResyncSource({
    module: 'db',
    roots: [root],
    history,
    maxRecordBytes: 64 * 1024,
    log: createLogger({ level: 'silent', format: 'json' }),
    send: (_to, message) => (sent.push(message), true),
    writable: async () => {
      if (sent.filter((m) => m.type === 'repl-resync').length >= room) await new Promise<void>((resolve) => (drain = resolve));
      return true;
    },
    exclusive: (fn) => fn(),
    connection: () => connection,
    streamHashes: new Map(),
    recapture: () => undefined,
    emit: (reason, text) => events.push(`${reason}: ${text}`),
  });
  /** Waits for a run's begin and answers it with an empty manifest (the secondary has nothing); returns its id. */
  const answerBegin = async (): Promise<string> => {
    const begin = await waitFor('the begin', () => sent.find((m) => m.type === 'repl-resync-begin'));
    assert.ok(begin?.type === 'repl-resync-begin');
    source.onManifest('b', { type: 'repl-resync-manifest', module: 'db', epoch: 2, id: begin.id, full: true, data: Buffer.alloc(0), last: true });
    return begin.id;
  };
  try {
    // A position the history does not know: every path is compared.
    const first = source.run('b', 2, { epoch: 9, seq: 9 });
    const firstId = await answerBegin();
    await waitFor('the link to fill up', () => drain !== undefined);
    const before = sent.length;
    source.abort('b');
    assert.equal(source.isRunning('b'), false, 'another may start at once');
    drain!();
    const outcome = await first;
    assert.equal(outcome.complete, false);
    assert.equal(sent.length, before, 'nothing more of it went on the link');
    assert.match(events.join('\n'), /REPLICATION_RESYNC_ABORTED: .*connection was replaced/);
    // Its records carry its id: the secondary drops them once a later resync began.
    assert.ok(sent.filter((m) => m.type === 'repl-resync').every((m) => m.type === 'repl-resync' && m.id === firstId));

    sent.splice(0);
    room = Infinity;
    const second = source.run('b', 2, { epoch: 9, seq: 9 });
    assert.notEqual(await answerBegin(), firstId);
    const whole = await second;
    assert.equal(whole.complete, true);
    assert.equal(whole.paths, 21, 'the directory and its 20 files');

    // The connection is replaced before the links say so (their onUp comes a turn later): the resync stops too.
    sent.splice(0);
    room = 3;
    drain = undefined;
    const third = source.run('b', 2, { epoch: 9, seq: 9 });
    await answerBegin();
    await waitFor('the link to fill up', () => drain !== undefined);
    const sentBefore = sent.length;
    connection = 2;
    drain!();
    assert.equal((await third).complete, false);
    assert.equal(sent.length, sentBefore, 'nothing of it on the new connection');
  } finally {
    history.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

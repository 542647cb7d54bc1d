import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../../src/observe/log.js';

function capture(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const w = new Writable({ write(chunk, _enc, cb) { chunks.push(String(chunk)); cb(); } }) as Writable & { text: () => string };
  w.text = () => chunks.join('');
  return w;
}

describe('structured log', () => {
  it('writes one JSON object per line with level, time, bound fields and the reason code', () => {
    const out = capture();
    const log = createLogger({ format: 'json', stream: out, base: { member: 'aws-1' } });
    log.child({ component: 'lease' }).warn({ reason: 'LEASE_RENEW_FAILED' }, 'demoted self because the lease was not renewed');
    const line = JSON.parse(out.text().trim());
    assert.equal(line.level, 40);
    assert.equal(line.member, 'aws-1');
    assert.equal(line.component, 'lease');
    assert.equal(line.reason, 'LEASE_RENEW_FAILED');
    assert.equal(line.msg, 'demoted self because the lease was not renewed');
    assert.match(line.time, /^\d{4}-\d\d-\d\dT/);
  });

  it('writes readable lines in pretty format and respects the level', () => {
    const out = capture();
    const log = createLogger({ format: 'pretty', stream: out, level: 'warn' });
    log.info('hidden');
    log.error({ reason: 'X' }, 'shown');
    const text = out.text();
    assert.doesNotMatch(text, /hidden/);
    assert.match(text, /ERROR.*shown/);
    assert.throws(() => JSON.parse(text));
  });
});

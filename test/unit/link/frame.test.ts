import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  FRAME_VERSION,
  FRAME_VERSION_BINARY,
  FrameDecoder,
  FrameTooLargeError,
  type Envelope,
  type FrameErrorCode,
} from '../../../src/link/frame.js';

const MSG: Envelope = { cluster: 'test', from: 'aws-1', to: 'azure-1', kind: 'msg', body: { type: 'heartbeat', seq: 7, note: 'é ✓ 😀' } };
const PING: Envelope = { cluster: 'test', from: 'azure-1', to: 'aws-1', kind: 'ping' };
const SECOND: Envelope = { cluster: 'test', from: 'aws-1', to: 'azure-1', kind: 'msg', body: [1, null, 'x', { deep: [true] }] };

/** A frame with a handcrafted rest (version byte + payload). */
function rawFrame(rest: Buffer | string, version = FRAME_VERSION): Buffer {
  const payload = typeof rest === 'string' ? Buffer.from(rest, 'utf8') : rest;
  const out = Buffer.alloc(5 + payload.length);
  out.writeUInt32BE(1 + payload.length, 0);
  out.writeUInt8(version, 4);
  payload.copy(out, 5);
  return out;
}

function decodeAll(chunks: Buffer[], maxFrameBytes?: number): { frames: Envelope[]; error?: FrameErrorCode } {
  const d = new FrameDecoder(maxFrameBytes === undefined ? {} : { maxFrameBytes });
  const frames: Envelope[] = [];
  for (const c of chunks) {
    const r = d.push(c);
    frames.push(...r.frames);
    if (r.error) return { frames, error: r.error.code };
  }
  return { frames };
}

function errorOf(bytes: Buffer, maxFrameBytes?: number): FrameErrorCode | undefined {
  return decodeAll([bytes], maxFrameBytes).error;
}

describe('frame: encoding', () => {
  it('writes the length of the rest, the version byte, then the JSON envelope', () => {
    const f = encodeFrame(PING);
    assert.equal(f.readUInt32BE(0), f.length - 4);
    assert.equal(f[4], FRAME_VERSION);
    assert.deepEqual(JSON.parse(f.subarray(5).toString('utf8')), PING);
  });

  it('counts the length in UTF-8 bytes, not characters', () => {
    const f = encodeFrame(MSG);
    assert.equal(f.readUInt32BE(0), 1 + Buffer.byteLength(JSON.stringify(MSG)));
  });

  it('refuses a message above the limit, and a msg without a body', () => {
    const big: Envelope = { ...MSG, body: 'x'.repeat(100) };
    assert.throws(() => encodeFrame(big, 50), (e: unknown) => e instanceof FrameTooLargeError && e.limit === 50 && e.bytes > 100);
    assert.doesNotThrow(() => encodeFrame(big, encodeFrame(big).length - 4));
    assert.throws(() => encodeFrame(big, encodeFrame(big).length - 5), FrameTooLargeError);
    assert.throws(() => encodeFrame({ cluster: 'c', from: 'a', to: 'b', kind: 'msg' }), TypeError);
  });
});

describe('frame: streaming decoder', () => {
  const stream = Buffer.concat([encodeFrame(MSG), encodeFrame(PING), encodeFrame(SECOND)]);
  const expected = [MSG, PING, SECOND];

  it('decodes several frames from one chunk', () => {
    assert.deepEqual(decodeAll([stream]), { frames: expected });
  });

  it('decodes the same frames whatever byte boundary splits the stream', () => {
    for (let i = 0; i <= stream.length; i++) {
      assert.deepEqual(decodeAll([stream.subarray(0, i), stream.subarray(i)]), { frames: expected }, `split at ${i}`);
    }
  });

  it('decodes one byte at a time, and holds only the incomplete tail', () => {
    const d = new FrameDecoder();
    const frames: Envelope[] = [];
    for (let i = 0; i < stream.length; i++) {
      const r = d.push(stream.subarray(i, i + 1));
      assert.equal(r.error, undefined);
      frames.push(...r.frames);
    }
    assert.deepEqual(frames, expected);
    assert.equal(d.bufferedBytes, 0);
  });

  it('accepts empty chunks and a zero-copy Uint8Array view', () => {
    const d = new FrameDecoder();
    assert.deepEqual(d.push(Buffer.alloc(0)), { frames: [] });
    const f = encodeFrame(PING);
    const view = new Uint8Array(f.buffer, f.byteOffset, f.length);
    assert.deepEqual(d.push(view), { frames: [PING] });
  });

  it('ignores unknown envelope keys (room for a compatible addition)', () => {
    assert.deepEqual(decodeAll([rawFrame(JSON.stringify({ ...PING, trace: 'abc' }))]).frames, [PING]);
  });
});

describe('frame: decode errors', () => {
  it('too-large: refused on the header alone, before any payload is buffered', () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(DEFAULT_MAX_FRAME_BYTES + 1, 0);
    const d = new FrameDecoder();
    const r = d.push(header);
    assert.equal(r.error?.code, 'too-large');
    assert.equal(d.bufferedBytes, 0);
    assert.equal(errorOf(Buffer.from([0xff, 0xff, 0xff, 0xff])), 'too-large');
  });

  it('too-large: the limit is configurable and inclusive', () => {
    const f = encodeFrame(MSG);
    const rest = f.length - 4;
    assert.equal(errorOf(f, rest), undefined);
    assert.equal(errorOf(f, rest - 1), 'too-large');
  });

  it('bad-version: another version byte, or an empty frame', () => {
    assert.equal(errorOf(rawFrame(JSON.stringify(PING), 3)), 'bad-version');
    assert.equal(errorOf(rawFrame(JSON.stringify(PING), 0)), 'bad-version');
    assert.equal(errorOf(Buffer.from([0, 0, 0, 0])), 'bad-version');
  });

  it('bad-json: not JSON, truncated JSON, invalid UTF-8', () => {
    assert.equal(errorOf(rawFrame('not json')), 'bad-json');
    assert.equal(errorOf(rawFrame('{"cluster":"test"')), 'bad-json');
    assert.equal(errorOf(rawFrame('')), 'bad-json');
    assert.equal(errorOf(rawFrame(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))), 'bad-json');
  });

  it('bad-envelope: not an object, a field missing or of the wrong type, an unknown kind, a msg without body', () => {
    const bad: unknown[] = [
      null,
      42,
      'text',
      [PING],
      { ...PING, cluster: undefined },
      { ...PING, from: 7 },
      { ...PING, to: '' },
      { ...PING, kind: 'hello' },
      { cluster: 'test', from: 'a', to: 'b', kind: 'msg' },
    ];
    for (const b of bad) assert.equal(errorOf(rawFrame(JSON.stringify(b))), 'bad-envelope', JSON.stringify(b));
    // A msg whose body is null is a message (null is a JSON value).
    assert.equal(errorOf(rawFrame(JSON.stringify({ ...MSG, body: null }))), undefined);
  });

  it('returns the good frames before the bad one, then stays broken', () => {
    const d = new FrameDecoder();
    const r = d.push(Buffer.concat([encodeFrame(MSG), rawFrame('garbage'), encodeFrame(PING)]));
    assert.deepEqual(r.frames, [MSG]);
    assert.equal(r.error?.code, 'bad-json');
    assert.deepEqual(d.push(encodeFrame(PING)), { frames: [], error: r.error });
    assert.equal(d.error?.code, 'bad-json');
    assert.equal(d.bufferedBytes, 0);
  });
});

describe('frame: properties', () => {
  const name = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/);
  const envelope: fc.Arbitrary<Envelope> = fc.oneof(
    fc.record({ cluster: name, from: name, to: name, kind: fc.constant('msg' as const), body: fc.jsonValue() }),
    fc.record({ cluster: name, from: name, to: name, kind: fc.constant('ping' as const) }),
  );

  it('any sequence of envelopes, cut anywhere, decodes to the same envelopes', () => {
    fc.assert(
      fc.property(fc.array(envelope, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (envs, cuts) => {
        const bytes = Buffer.concat(envs.map((e) => encodeFrame(e)));
        const points = [...new Set(cuts.map((c) => (bytes.length === 0 ? 0 : c % (bytes.length + 1))))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let at = 0;
        for (const p of points) {
          chunks.push(bytes.subarray(at, p));
          at = p;
        }
        chunks.push(bytes.subarray(at));
        // What JSON can carry (e.g. -0 becomes 0) is what the wire promises.
        const expected = envs.map((e) => JSON.parse(JSON.stringify(e)) as Envelope);
        assert.deepEqual(decodeAll(chunks), { frames: expected });
      }),
      { numRuns: 300 },
    );
  });

  it('arbitrary bytes never throw: whole frames, or one typed error', () => {
    const codes = new Set<string>(['too-large', 'bad-version', 'bad-json', 'bad-envelope']);
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 6 }), fc.integer({ min: 1, max: 128 }), (chunks, max) => {
        const d = new FrameDecoder({ maxFrameBytes: max });
        for (const c of chunks) {
          const r = d.push(c);
          if (r.error) assert.ok(codes.has(r.error.code));
          assert.ok(d.bufferedBytes <= 4 + max);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('frame: binary data', () => {
  it('carries a body\'s binary `data` as raw bytes after the JSON, and hands it back as a Buffer, cut anywhere', () => {
    const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    const env: Envelope = { cluster: 'test', from: 'aws-1', to: 'azure-1', kind: 'msg', body: { type: 'repl-change', module: 'db', epoch: 3, seq: 9, data } };
    const frame = encodeFrame(env);
    assert.equal(frame[4], FRAME_VERSION_BINARY);
    assert.equal(frame.indexOf(Buffer.from(data.toString('base64').slice(0, 40))), -1, 'not base64');
    for (const cut of [1, 7, 100, frame.length - 1]) {
      const d = new FrameDecoder();
      const got = [...d.push(frame.subarray(0, cut)).frames, ...d.push(frame.subarray(cut)).frames];
      assert.equal(got.length, 1);
      const body = got[0]!.body as { data: Buffer; seq: number };
      assert.equal(Buffer.isBuffer(body.data), true);
      assert.deepEqual(body.data, data);
      assert.equal(body.seq, 9);
    }
    // Without binary data nothing changes: version 1, JSON only.
    assert.equal(encodeFrame(MSG)[4], FRAME_VERSION);
  });

  it('refuses a binary frame whose JSON length runs past the frame, or whose body is not an object', () => {
    const json = Buffer.from(JSON.stringify({ cluster: 'c', from: 'a', to: 'b', kind: 'msg', body: 1 }));
    const head = Buffer.alloc(4);
    head.writeUInt32BE(json.length);
    const good = Buffer.concat([Buffer.from([FRAME_VERSION_BINARY]), head, json, Buffer.from([1, 2])]);
    const frame = (rest: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, rest.length]), rest]);
    assert.equal(new FrameDecoder().push(frame(good)).error?.code, 'bad-envelope');
    head.writeUInt32BE(json.length + 10);
    const long = Buffer.concat([Buffer.from([FRAME_VERSION_BINARY]), head, json]);
    assert.match(new FrameDecoder().push(frame(long)).error?.detail ?? '', /runs past the frame/);
  });
});

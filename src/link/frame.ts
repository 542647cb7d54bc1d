/**
 * The wire format of a link: length-prefixed frames, each carrying one JSON
 * envelope. A frame is
 *
 *   4 bytes  big-endian length of the rest (version byte + JSON)
 *   1 byte   protocol version (FRAME_VERSION)
 *   n bytes  UTF-8 JSON: { cluster, from, to, kind: 'msg' | 'ping', body? }
 *
 * A message whose body has a binary `data` field (file blocks of a change
 * record) goes as version FRAME_VERSION_BINARY instead, so that file bytes
 * are neither base64'd nor parsed as JSON:
 *
 *   4 bytes  big-endian length of the rest
 *   1 byte   FRAME_VERSION_BINARY
 *   4 bytes  big-endian length of the JSON
 *   n bytes  UTF-8 JSON envelope, its body without `data`
 *   m bytes  `data`, handed back as a Buffer in body.data
 *
 * The decoder is pure and streaming: TCP delivers arbitrary slices, so it
 * takes chunks and returns whole frames. A bad frame poisons the stream (no
 * resynchronisation is possible after a bad length), so the caller drops the
 * connection on the first error. The length is checked against the limit as
 * soon as its 4 bytes arrive, before any payload is buffered, so a peer
 * cannot make a member hold more than one frame's worth of memory.
 */

export const FRAME_VERSION = 1;
export const FRAME_VERSION_BINARY = 2;
export const FRAME_HEADER_BYTES = 4;
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;

export type FrameKind = 'msg' | 'ping';

export interface Envelope<B = unknown> {
  cluster: string;
  from: string;
  to: string;
  kind: FrameKind;
  /** Present on 'msg' (the message), absent on 'ping'. */
  body?: B;
}

export type FrameErrorCode = 'too-large' | 'bad-version' | 'bad-json' | 'bad-envelope';

export interface FrameError {
  code: FrameErrorCode;
  /** For the log; never parsed. */
  detail: string;
}

export interface DecodeResult {
  /** The whole frames found, in order; may be non-empty even when `error` is set. */
  frames: Envelope[];
  /** Set once the stream is broken; every later push returns it again. */
  error?: FrameError;
}

/** Thrown by `encodeFrame` when a message would exceed the receiver's limit: the caller drops it. */
export class FrameTooLargeError extends RangeError {
  constructor(readonly bytes: number, readonly limit: number) {
    super(`a frame of ${bytes} bytes exceeds the limit of ${limit} bytes`);
    this.name = 'FrameTooLargeError';
  }
}

/**
 * One frame, ready to write. Throws FrameTooLargeError above `maxFrameBytes`
 * (counted like the decoder counts: version byte + JSON), and whatever
 * JSON.stringify throws for a body it cannot encode (a BigInt, a cycle).
 */
export function encodeFrame(envelope: Envelope, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Buffer {
  const parts = encodeFrameParts(envelope, maxFrameBytes);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** The same frame as the buffers to write one after the other: a binary part is not copied. */
export function encodeFrameParts(envelope: Envelope, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Buffer[] {
  if (envelope.kind === 'msg' && envelope.body === undefined) throw new TypeError('a msg frame needs a body');
  const body = envelope.body as Record<string, unknown> | undefined;
  const binary = body !== null && typeof body === 'object' && body.data instanceof Uint8Array ? body.data : undefined;
  const jsonBody = binary ? { ...body, data: undefined } : envelope.body;
  const json = JSON.stringify({ cluster: envelope.cluster, from: envelope.from, to: envelope.to, kind: envelope.kind, ...(jsonBody === undefined ? {} : { body: jsonBody }) });
  const payload = Buffer.byteLength(json, 'utf8');
  const rest = binary ? 1 + 4 + payload + binary.length : 1 + payload;
  if (rest > maxFrameBytes) throw new FrameTooLargeError(rest, maxFrameBytes);
  const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES + (binary ? 5 : 1) + payload);
  head.writeUInt32BE(rest, 0);
  if (!binary) {
    head.writeUInt8(FRAME_VERSION, FRAME_HEADER_BYTES);
    head.write(json, FRAME_HEADER_BYTES + 1, 'utf8');
    return [head];
  }
  head.writeUInt8(FRAME_VERSION_BINARY, FRAME_HEADER_BYTES);
  head.writeUInt32BE(payload, FRAME_HEADER_BYTES + 1);
  head.write(json, FRAME_HEADER_BYTES + 5, 'utf8');
  return [head, Buffer.isBuffer(binary) ? binary : Buffer.from(binary.buffer, binary.byteOffset, binary.byteLength)];
}

// Fatal: a frame that is not valid UTF-8 is refused rather than patched with U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function nonEmptyString(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

/** Parses the rest of one frame (version byte + JSON). */
export function parseFrame(rest: Uint8Array): Envelope | FrameError {
  if (rest.length < 1) return { code: 'bad-version', detail: 'empty frame (no version byte)' };
  if (rest[0] !== FRAME_VERSION && rest[0] !== FRAME_VERSION_BINARY) return { code: 'bad-version', detail: `protocol version ${rest[0]}, expected ${FRAME_VERSION} or ${FRAME_VERSION_BINARY}` };
  let jsonBytes = rest.subarray(1);
  let binary: Uint8Array | undefined;
  if (rest[0] === FRAME_VERSION_BINARY) {
    if (rest.length < 5) return { code: 'bad-envelope', detail: 'a binary frame without its JSON length' };
    const n = ((rest[1]! << 24) >>> 0) + (rest[2]! << 16) + (rest[3]! << 8) + rest[4]!;
    if (5 + n > rest.length) return { code: 'bad-envelope', detail: `a binary frame's JSON of ${n} bytes runs past the frame` };
    jsonBytes = rest.subarray(5, 5 + n);
    binary = rest.subarray(5 + n);
  }
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(jsonBytes));
  } catch (e) {
    return { code: 'bad-json', detail: (e as Error).message };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { code: 'bad-envelope', detail: 'the envelope is not a JSON object' };
  const v = value as Record<string, unknown>;
  for (const key of ['cluster', 'from', 'to'] as const) {
    if (!nonEmptyString(v[key])) return { code: 'bad-envelope', detail: `envelope.${key} is not a non-empty string` };
  }
  if (v.kind !== 'msg' && v.kind !== 'ping') return { code: 'bad-envelope', detail: `envelope.kind is ${JSON.stringify(v.kind)}, expected "msg" or "ping"` };
  if (v.kind === 'msg' && !('body' in v)) return { code: 'bad-envelope', detail: 'a msg envelope has no body' };
  // Unknown keys are ignored: a later minor version may add some; incompatible changes bump the version byte.
  const envelope: Envelope = { cluster: v.cluster as string, from: v.from as string, to: v.to as string, kind: v.kind };
  if ('body' in v) envelope.body = v.body;
  if (binary) {
    if (v.kind !== 'msg' || typeof v.body !== 'object' || v.body === null || Array.isArray(v.body)) return { code: 'bad-envelope', detail: 'a binary frame whose body is not an object' };
    const view = Buffer.isBuffer(binary) ? binary : Buffer.from(binary.buffer, binary.byteOffset, binary.byteLength);
    envelope.body = { ...(v.body as Record<string, unknown>), data: view };
  }
  return envelope;
}

function isFrameError(r: Envelope | FrameError): r is FrameError {
  return 'code' in r && 'detail' in r && !('kind' in r);
}

/** Streaming decoder for one connection. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private size = 0;
  /** The length of the frame being read, once its header is in. */
  private need: number | undefined;
  private failure: FrameError | undefined;
  readonly maxFrameBytes: number;

  constructor(options: { maxFrameBytes?: number } = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /** Bytes held waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.size;
  }

  get error(): FrameError | undefined {
    return this.failure;
  }

  push(chunk: Uint8Array): DecodeResult {
    if (this.failure) return { frames: [], error: this.failure };
    if (chunk.length > 0) {
      this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.size += chunk.length;
    }
    const frames: Envelope[] = [];
    for (;;) {
      if (this.need === undefined) {
        if (this.size < FRAME_HEADER_BYTES) break;
        const length = this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
        if (length > this.maxFrameBytes) return this.fail(frames, { code: 'too-large', detail: `a frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes} bytes` });
        this.need = length;
      }
      if (this.size < this.need) break;
      const parsed = parseFrame(this.take(this.need));
      this.need = undefined;
      if (isFrameError(parsed)) return this.fail(frames, parsed);
      frames.push(parsed);
    }
    return { frames };
  }

  private fail(frames: Envelope[], error: FrameError): DecodeResult {
    this.failure = error;
    this.chunks = [];
    this.size = 0;
    return { frames, error };
  }

  /** Removes and returns the first n buffered bytes (n <= size); copies only when they span chunks. */
  private take(n: number): Buffer {
    this.size -= n;
    const first = this.chunks[0];
    if (n === 0) return Buffer.alloc(0);
    if (first && first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}

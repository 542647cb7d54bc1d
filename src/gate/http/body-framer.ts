/**
 * Where a message body ends, found while its bytes pass through unchanged.
 * The gate never decodes a body: it only needs to know which byte is the
 * last one of this message, so that the connection can carry the next one
 * (keep-alive on both sides) and a truncated body is noticed.
 *
 * Chunked framing (RFC 9112 §7.1) is tracked by a small byte-level state
 * machine that survives any split of the stream into buffers: chunk size in
 * hex, optional extensions, CRLF, data, CRLF, ..., a zero chunk, trailer
 * lines, and the final CRLF.
 */
import { HeadError, type Framing } from './head.js';

const enum S {
  Size,
  SizeExt,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerLine,
  TrailerLf,
  FinalLf,
  Done,
}

// Chunk sizes beyond 2^48 bytes are nonsense and would lose precision.
const MAX_SIZE_DIGITS = 12;
const MAX_TRAILER_BYTES = 16 * 1024;

export class BodyFramer {
  private remaining: number;
  private state: S = S.Size;
  private digits = 0;
  private trailerBytes = 0;

  constructor(
    readonly framing: Framing,
    private readonly side: 'request' | 'response' = 'response',
  ) {
    this.remaining = framing.kind === 'length' ? framing.length : 0;
    if (framing.kind === 'none') this.state = S.Done;
  }

  get done(): boolean {
    return this.state === S.Done;
  }

  /** A body that ends when the connection closes (responses without length or chunking). */
  get untilClose(): boolean {
    return this.framing.kind === 'close';
  }

  /**
   * Consumes `buf[from, to)`; returns the index just past the body's last
   * byte if the body ends inside it, else -1 (all of it is body).
   */
  feed(buf: Buffer, from = 0, to = buf.length): number {
    if (this.state === S.Done) return from;
    switch (this.framing.kind) {
      case 'close':
        return -1;
      case 'length': {
        const n = to - from;
        if (n < this.remaining) {
          this.remaining -= n;
          return -1;
        }
        const end = from + this.remaining;
        this.remaining = 0;
        this.state = S.Done;
        return end;
      }
      case 'chunked':
        return this.feedChunked(buf, from, to);
      default:
        return from;
    }
  }

  private fail(what: string): never {
    throw new HeadError(this.side === 'request' ? 400 : 502, `malformed chunked body: ${what}`);
  }

  private feedChunked(buf: Buffer, from: number, to: number): number {
    let i = from;
    while (i < to) {
      switch (this.state) {
        case S.Data: {
          const n = Math.min(this.remaining, to - i);
          this.remaining -= n;
          i += n;
          if (this.remaining === 0) this.state = S.DataCr;
          break;
        }
        case S.Size: {
          const c = buf[i]!;
          const v = hexValue(c);
          if (v >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) this.fail('chunk size too large');
            this.remaining = this.remaining * 16 + v;
          } else if (this.digits === 0) {
            this.fail('missing chunk size');
          } else if (c === 0x0d) {
            this.state = S.SizeLf;
          } else if (c === 0x3b || c === 0x20 || c === 0x09) {
            this.state = S.SizeExt;
          } else {
            this.fail('bad character in chunk size');
          }
          i++;
          break;
        }
        case S.SizeExt: {
          const c = buf[i]!;
          if (c === 0x0d) this.state = S.SizeLf;
          else if (c === 0x0a || c === 0) this.fail('bare LF in chunk extension');
          i++;
          break;
        }
        case S.SizeLf:
          if (buf[i] !== 0x0a) this.fail('expected LF after chunk size');
          i++;
          this.digits = 0;
          this.state = this.remaining === 0 ? S.TrailerStart : S.Data;
          break;
        case S.DataCr:
          if (buf[i] !== 0x0d) this.fail('expected CRLF after chunk data');
          i++;
          this.state = S.DataLf;
          break;
        case S.DataLf:
          if (buf[i] !== 0x0a) this.fail('expected CRLF after chunk data');
          i++;
          this.state = S.Size;
          break;
        case S.TrailerStart:
          // Either the final CRLF, or a trailer field line.
          if (buf[i] === 0x0d) this.state = S.FinalLf;
          else this.state = S.TrailerLine;
          i++;
          if (++this.trailerBytes > MAX_TRAILER_BYTES) this.fail('trailer section too large');
          break;
        case S.TrailerLine: {
          const c = buf[i]!;
          if (c === 0x0d) this.state = S.TrailerLf;
          else if (c === 0x0a) this.fail('bare LF in trailer');
          i++;
          if (++this.trailerBytes > MAX_TRAILER_BYTES) this.fail('trailer section too large');
          break;
        }
        case S.TrailerLf:
          if (buf[i] !== 0x0a) this.fail('expected LF after trailer line');
          i++;
          this.state = S.TrailerStart;
          break;
        case S.FinalLf:
          if (buf[i] !== 0x0a) this.fail('expected LF after the last chunk');
          this.state = S.Done;
          return i + 1;
        case S.Done:
          return i;
      }
    }
    return -1;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

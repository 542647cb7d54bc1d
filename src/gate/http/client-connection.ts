/**
 * One client connection to the gate in HTTP mode. It reads request heads,
 * hands each request to an Exchange (one at a time: pipelined requests wait
 * in the buffer, and their answers go out in order), and keeps the
 * connection for the next request when both sides allow it.
 *
 * A request body of up to RETRY_BODY_LIMIT bytes with a known length is read
 * whole before the request is sent, so that an idempotent request can be
 * sent again to another node if the first one fails before answering. Larger
 * or chunked bodies stream through as they arrive.
 */
import type { Socket } from 'node:net';
import type { BuiltinGate } from '../builtin-gate.js';
import { Exchange } from './exchange.js';
import { HeadError, MAX_HEAD_BYTES, parseRequestHead, type RequestHead } from './head.js';
import { errorReply } from './replies.js';

export const RETRY_BODY_LIMIT = 64 * 1024;
const CRLF2 = Buffer.from('\r\n\r\n');

export class ClientConnection {
  buf: Buffer | null = null;
  exchange: Exchange | null = null;
  closed = false;
  /** The client's address as backends see it in X-Forwarded-For and Forwarded. */
  readonly clientAddress: string;
  /** Waiting for a whole small body before sending the request. */
  private pendingHead: { head: RequestHead; headBytes: number; length: number } | null = null;
  /** The gate's coarse clock at the last byte from the client or the end of the last exchange. */
  activeAt: number;

  constructor(
    readonly gate: BuiltinGate,
    readonly socket: Socket,
    readonly proto: 'http' | 'https',
  ) {
    const addr = socket.remoteAddress ?? '';
    this.clientAddress = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
    gate.connections.add(this);
    this.activeAt = gate.clock;
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('end', () => this.onEnd());
    socket.on('close', () => this.onClose());
    socket.on('error', () => undefined);
    socket.on('drain', () => this.exchange?.onClientDrain());
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Called by the gate's sweep: idle between requests, or a request head that never completes, too long. */
  expire(now: number): void {
    if (this.exchange === null && now - this.activeAt > this.gate.options.clientIdleTimeout) this.socket.destroy();
  }

  private onData(d: Buffer): void {
    this.activeAt = this.gate.clock;
    const ex = this.exchange;
    if (ex !== null && ex.wantsClientBytes) {
      const rest = ex.clientBytes(d);
      if (rest === null) return;
      d = rest;
    }
    this.buf = this.buf === null ? d : Buffer.concat([this.buf, d]);
    if (this.exchange === null) this.next();
    else if (this.buf.length > MAX_HEAD_BYTES + RETRY_BODY_LIMIT) this.socket.pause(); // pipelined requests beyond reason wait for their turn
  }

  private onEnd(): void {
    // A half-closed client still gets the answer to its current request.
    if (this.exchange === null) this.socket.end();
    else this.exchange.onClientEnd();
  }

  private onClose(): void {
    this.closed = true;
    this.gate.connections.delete(this);
    this.exchange?.onClientClose();
  }

  /** The exchange finished; `keep` says the connection may carry the next request. */
  finished(keep: boolean): void {
    this.exchange = null;
    this.activeAt = this.gate.clock;
    if (!keep || this.closed) {
      this.socket.end();
      return;
    }
    if (this.socket.isPaused()) this.socket.resume();
    if (this.buf !== null) this.next();
  }

  /** Takes the next request from the buffer, if a whole head (and small body) is there. */
  private next(): void {
    const buf = this.buf;
    if (buf === null || this.closed) return;
    if (this.pendingHead !== null) return this.awaitBody(buf);
    const end = buf.indexOf(CRLF2);
    if (end < 0) {
      if (buf.length > MAX_HEAD_BYTES) this.refuse(new HeadError(431, 'request head too large'));
      return;
    }
    // Leading empty lines before a request line are tolerated (RFC 9112 §2.2).
    let start = 0;
    while (start + 1 < end && buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
    const view = start === 0 ? buf : buf.subarray(start);
    let head: RequestHead;
    try {
      head = parseRequestHead(view, end - start, this.gate.markHeader);
    } catch (err) {
      this.refuse(err instanceof HeadError ? err : new HeadError(400, String(err)));
      return;
    }
    const headBytes = end + 4;
    if (head.framing.kind === 'length' && head.framing.length <= RETRY_BODY_LIMIT && !head.expectContinue && !head.upgrade) {
      this.pendingHead = { head, headBytes, length: head.framing.length };
      return this.awaitBody(buf);
    }
    this.take(headBytes);
    this.exchange = new Exchange(this, head, null);
    // Bytes of a streamed body that came with the head.
    const rest = this.buf as Buffer | null;
    if (rest !== null && this.exchange.wantsClientBytes) {
      this.buf = null;
      const after = this.exchange.clientBytes(rest);
      if (after !== null) this.buf = this.buf === null ? after : Buffer.concat([this.buf, after]);
    }
    this.exchange.start();
  }

  private awaitBody(buf: Buffer): void {
    const p = this.pendingHead!;
    if (buf.length < p.headBytes + p.length) return;
    this.pendingHead = null;
    const body = Buffer.from(buf.subarray(p.headBytes, p.headBytes + p.length));
    this.take(p.headBytes + p.length);
    this.exchange = new Exchange(this, p.head, body);
    this.exchange.start();
  }

  private take(n: number): void {
    const buf = this.buf!;
    this.buf = buf.length > n ? buf.subarray(n) : null;
  }

  /** A request the gate will not forward: answer and close (the rest of the stream cannot be trusted). */
  private refuse(err: HeadError): void {
    this.gate.failed++;
    this.buf = null;
    this.socket.end(errorReply(err.status, err.message, false));
    this.socket.pause();
  }
}

/**
 * One request through the gate and its response: pick a backend, take a
 * pooled connection to it, send the head (with the forwarding headers) and
 * the body, wait for the response head, then stream the response body to the
 * client while counting where it ends.
 *
 * Retries. A request that fails before any byte of a response reached the
 * client is sent to another node when that is safe:
 * - the connection could not be made: always (nothing was sent);
 * - the backend closed, reset or went out of the pool after the request was
 *   sent: only if the request is idempotent (by method, or marked by the
 *   configured header) and its body was kept (known length up to 64 KiB).
 * A response timeout is not retried: the backend may still be working on it.
 * Once a response byte went to the client nothing is retried; a response cut
 * off midway closes the client connection, which is how HTTP/1.1 says so.
 */
import type { BackendSlot, InFlight } from '../backend-slot.js';
import type { AcquireError, UpstreamSocket, UpstreamUser } from '../upstream-pool.js';
import { BodyFramer } from './body-framer.js';
import type { ClientConnection } from './client-connection.js';
import { cookieValue, HeadError, MAX_HEAD_BYTES, parseResponseHead, type RequestHead, type ResponseHead } from './head.js';
import { errorReply } from './replies.js';

const CRLF2 = Buffer.from('\r\n\r\n');
/** First try plus retries; each retry goes to a node not tried yet. */
const MAX_ATTEMPTS = 4;
export class Exchange implements InFlight, UpstreamUser {
  private slot: BackendSlot | null = null;
  private upstream: UpstreamSocket | null = null;
  private tried: Set<string> | undefined;
  private attempts = 0;
  /** A byte of a response (even a 100 Continue) went to the client: no retry from here. */
  private responseStarted = false;
  /** Bytes of a streamed body went to a backend: they are gone, no retry. */
  private bodyStreamed = false;
  private rbuf: Buffer | null = null;
  private res: ResponseHead | null = null;
  private resFramer: BodyFramer | null = null;
  /** The backend sent more than its response: the connection cannot be reused. */
  private junk = false;
  private readonly reqFramer: BodyFramer | null;
  private reqQueue: Buffer[] = [];
  private reqDone: boolean;
  private sentAt = 0;
  /** The gate's coarse clock when the backend last sent something (or the request went out): the response timeout counts from it. */
  private activeAt = 0;
  private done = false;
  private clientEnded = false;
  private tunnel = false;
  private readonly idempotent: boolean;
  private readonly headText: string;
  private readonly affinity: string | undefined;

  constructor(
    private readonly conn: ClientConnection,
    private readonly req: RequestHead,
    /** The whole body when it was read ahead (known length, small); null when there is none or it streams. */
    private readonly body: Buffer | null,
  ) {
    const gate = conn.gate;
    this.idempotent = gate.isIdempotent(req.method, req.marked);
    const streams = body === null && req.framing.kind !== 'none';
    this.reqFramer = streams ? new BodyFramer(req.framing, 'request') : null;
    this.reqDone = !streams;
    this.affinity = gate.options.balance === 'cookie' ? cookieValue(req.cookie, gate.options.cookieName) : undefined;
    const addr = conn.clientAddress;
    const xff = req.xForwardedFor !== undefined ? `${req.xForwardedFor}, ${addr}` : addr;
    const forFor = addr.includes(':') ? `"[${addr}]"` : addr;
    // RFC 7239 `for` and `proto`, as the HAProxy engine writes them; the Host header itself goes through unchanged.
    const forwarded = `${req.forwarded !== undefined ? `${req.forwarded}, ` : ''}for=${forFor};proto=${conn.proto}`;
    this.headText =
      `${req.method} ${req.target} HTTP/1.${req.minor}\r\n${req.forwardLines}` +
      `X-Forwarded-For: ${xff}\r\nX-Forwarded-Proto: ${conn.proto}\r\nForwarded: ${forwarded}\r\n` +
      // An HTTP/1.0 client gets an HTTP/1.0 exchange end to end (no chunked responses it cannot read).
      (req.minor === 0 ? 'Connection: close\r\n\r\n' : '\r\n');
  }

  /** Whether client bytes belong to this exchange (a streamed body, or a tunnel after an upgrade). */
  get wantsClientBytes(): boolean {
    return this.tunnel || (this.reqFramer !== null && !this.reqDone);
  }

  private get retryable(): boolean {
    return this.idempotent && !this.bodyStreamed && !this.responseStarted;
  }

  start(): void {
    this.conn.gate.requests++;
    this.dispatch();
  }

  private dispatch(): void {
    const gate = this.conn.gate;
    const slot = gate.pick({ clientKey: this.conn.clientAddress, affinity: this.affinity, tried: this.tried, mayTrial: this.retryable && this.reqFramer === null });
    if (slot === undefined) {
      return this.fail(this.attempts === 0 ? 503 : 502, this.attempts === 0 ? `no node of ${gate.options.module} takes requests` : `${this.attempts} attempt(s) failed, no other node to try`);
    }
    this.slot = slot;
    const attempt = ++this.attempts;
    slot.requests++;
    slot.lastRequestAt = Date.now();
    slot.inFlight.add(this);
    slot.pool.acquire({
      onConnection: (socket) => this.connected(attempt, slot, socket),
      onConnectFailed: (error, detail) => this.connectFailed(attempt, slot, error, detail),
    });
  }

  private connected(attempt: number, slot: BackendSlot, socket: UpstreamSocket): void {
    if (attempt !== this.attempts || this.done) {
      slot.pool.release(socket, this.conn.gate.clock);
      return;
    }
    this.upstream = socket;
    socket.user = this;
    this.activeAt = this.conn.gate.clock;
    this.sentAt = performance.now();
    const head = this.headText;
    if (this.body !== null) {
      const out = Buffer.allocUnsafe(head.length + this.body.length);
      out.write(head, 0, 'latin1');
      this.body.copy(out, head.length);
      socket.write(out);
    } else {
      socket.write(Buffer.from(head, 'latin1'));
    }
    if (this.reqQueue.length > 0) {
      this.bodyStreamed = true;
      for (const part of this.reqQueue) socket.write(part);
      this.reqQueue = [];
    }
    if (this.tunnel) return;
  }

  private connectFailed(attempt: number, slot: BackendSlot, error: AcquireError, detail: string): void {
    if (attempt !== this.attempts || this.done) return;
    if (error !== 'queue-full' && error !== 'closed') slot.observed.failure();
    slot.errors++;
    // Nothing reached the backend: any request may go elsewhere.
    this.retry(`${error}: ${detail}`, true);
  }

  /** Bytes from the client for a streamed body (or a tunnel); returns what follows the body, if anything. */
  clientBytes(d: Buffer): Buffer | null {
    if (this.tunnel) {
      if (this.upstream !== null && !this.upstream.write(d)) this.conn.socket.pause();
      return null;
    }
    let end: number;
    try {
      end = this.reqFramer!.feed(d);
    } catch (err) {
      this.fail((err as HeadError).status ?? 400, (err as Error).message, false);
      return null;
    }
    const part = end < 0 ? d : d.subarray(0, end);
    if (end >= 0) this.reqDone = true;
    if (part.length > 0) {
      const up = this.upstream;
      if (up !== null && !this.done) {
        this.bodyStreamed = true;
        if (!up.write(part)) this.conn.socket.pause();
      } else if (!this.done) {
        this.reqQueue.push(part);
      }
    }
    return end >= 0 && end < d.length ? d.subarray(end) : null;
  }

  onUpstreamData(d: Buffer): void {
    if (this.done) return;
    this.activeAt = this.conn.gate.clock;
    if (this.tunnel) {
      if (!this.conn.socket.write(d)) this.upstream?.pause();
      return;
    }
    if (this.res !== null) return this.forwardBody(d, 0);
    let buf = this.rbuf === null ? d : Buffer.concat([this.rbuf, d]);
    for (;;) {
      const end = buf.indexOf(CRLF2);
      if (end < 0) {
        if (buf.length > MAX_HEAD_BYTES) return this.badResponse('response head too large');
        this.rbuf = buf;
        return;
      }
      let head: ResponseHead;
      try {
        head = parseResponseHead(buf, end, this.req.method);
      } catch (err) {
        return this.badResponse((err as Error).message);
      }
      const rest = end + 4;
      if (head.status >= 100 && head.status < 200 && head.status !== 101) {
        // Interim responses (100 Continue, 103 Early Hints) pass to HTTP/1.1 clients; the final one follows.
        if (this.req.minor === 1) {
          this.responseStarted = true;
          this.conn.socket.write(`HTTP/1.1 ${head.status} ${head.reasonPhrase}\r\n${head.forwardLines}\r\n`, 'latin1');
        }
        if (rest >= buf.length) {
          this.rbuf = null;
          return;
        }
        buf = buf.subarray(rest);
        continue;
      }
      this.rbuf = null;
      return this.onResponseHead(head, buf, rest);
    }
  }

  private onResponseHead(head: ResponseHead, buf: Buffer, rest: number): void {
    const slot = this.slot!;
    slot.observed.success(performance.now() - this.sentAt);
    this.res = head;
    this.responseStarted = true;
    const upgrade = head.status === 101 && this.req.upgrade;
    const gate = this.conn.gate;
    let extra = '';
    if (gate.options.balance === 'cookie' && this.affinity !== slot.node) extra += `Set-Cookie: ${gate.options.cookieName}=${slot.node}; Path=/; HttpOnly; SameSite=Lax\r\n`;
    if (!upgrade) {
      if (!this.keepClient(head)) extra += 'Connection: close\r\n';
      else if (this.req.minor === 0) extra += 'Connection: keep-alive\r\n';
    }
    const client = this.conn.socket;
    const verbatim = head.verbatim && extra === '' && this.req.minor === 1 && !upgrade && this.keepClient(head);
    const text = verbatim ? '' : `HTTP/1.1 ${head.status} ${head.reasonPhrase}\r\n${head.forwardLines}${extra}\r\n`;
    if (upgrade) {
      // A tunnel has no response timeout: websockets may be quiet for long.
      this.tunnel = true;
      client.write(text, 'latin1');
      if (rest < buf.length) client.write(buf.subarray(rest));
      // Bytes the client sent after its upgrade request belong to the tunnel.
      const early = this.conn.buf;
      this.conn.buf = null;
      if (early !== null) this.upstream!.write(early);
      return;
    }
    const framer = (this.resFramer = new BodyFramer(head.framing));
    if (framer.done) {
      if (verbatim) client.write(rest === buf.length ? buf : buf.subarray(0, rest));
      else client.write(text, 'latin1');
      if (rest < buf.length) this.junk = true;
      return this.complete();
    }
    // The common case, a whole small body in the same read: one buffer, one write (a writev of a string and a buffer costs more).
    let end: number;
    try {
      end = framer.feed(buf, rest);
    } catch {
      this.slot!.errors++;
      return this.abandon();
    }
    const bodyEnd = end < 0 ? buf.length : end;
    let out: Buffer;
    if (verbatim) {
      // Head and body as the backend sent them, without a copy.
      out = bodyEnd === buf.length ? buf : buf.subarray(0, bodyEnd);
    } else {
      out = Buffer.allocUnsafe(text.length + bodyEnd - rest);
      out.write(text, 0, 'latin1');
      buf.copy(out, text.length, rest, bodyEnd);
    }
    if (!client.write(out)) this.upstream?.pause();
    if (end >= 0) {
      if (end < buf.length) this.junk = true;
      this.complete();
    }
  }

  private forwardBody(d: Buffer, from: number): void {
    let end: number;
    try {
      end = this.resFramer!.feed(d, from);
    } catch {
      // A malformed chunked body from the backend: the client cannot be told cleanly any more.
      this.slot!.errors++;
      return this.abandon();
    }
    const client = this.conn.socket;
    const part = end < 0 ? (from === 0 ? d : d.subarray(from)) : d.subarray(from, end);
    if (part.length > 0 && !client.write(part)) this.upstream?.pause();
    if (end >= 0) {
      if (end < d.length) this.junk = true;
      this.complete();
    }
  }

  private keepClient(head: ResponseHead): boolean {
    return this.req.keepAlive && head.framing.kind !== 'close' && !this.clientEnded;
  }

  /** The response went out whole. */
  private complete(): void {
    const slot = this.slot!;
    const socket = this.upstream!;
    this.done = true;
    slot.inFlight.delete(this);
    const res = this.res!;
    if (res.keepAlive && this.reqDone && !this.junk && socket.readable) slot.pool.release(socket, this.conn.gate.clock);
    else slot.pool.discard(socket);
    this.upstream = null;
    // A body the backend answered before reading in full leaves unknown bytes on the client connection.
    this.conn.finished(this.keepClient(res) && this.reqDone);
  }

  onUpstreamClose(): void {
    if (this.done) return;
    const slot = this.slot!;
    if (this.tunnel) {
      this.done = true;
      slot.inFlight.delete(this);
      this.conn.socket.end();
      return;
    }
    if (this.res !== null && this.resFramer?.untilClose) {
      if (this.upstream) this.upstream.user = null;
      this.upstream = null;
      this.done = true;
      slot.inFlight.delete(this);
      this.conn.finished(false);
      return;
    }
    slot.errors++;
    if (this.res === null) {
      slot.observed.failure();
      return this.retry(`${slot.node} closed the connection before answering`, false);
    }
    this.abandon();
  }

  /** Called by the gate's sweep: the response timeout counts from the request and from each byte of the answer. */
  expire(now: number): void {
    if (this.done || this.tunnel || this.upstream === null) return;
    if (now - this.activeAt > this.conn.gate.options.responseTimeout) this.onUpstreamTimeout();
  }

  private onUpstreamTimeout(): void {
    if (this.done) return;
    const slot = this.slot!;
    slot.errors++;
    if (this.res === null) {
      slot.observed.failure();
      this.dropUpstream();
      return this.fail(504, `${slot.node} did not answer within ${this.conn.gate.options.responseTimeout} ms`);
    }
    // The body stalled midway.
    this.abandon();
  }

  onUpstreamDrain(): void {
    if (this.conn.socket.isPaused()) this.conn.socket.resume();
  }

  onClientDrain(): void {
    if (this.upstream?.isPaused()) this.upstream.resume();
  }

  onClientEnd(): void {
    this.clientEnded = true;
    if (this.tunnel) this.upstream?.end();
  }

  onClientClose(): void {
    if (this.done) return;
    this.done = true;
    this.slot?.inFlight.delete(this);
    this.dropUpstream();
  }

  /** The backend left the pool (down or maintenance): try elsewhere if still possible, else close. */
  abort(why: string): void {
    if (this.done) return;
    this.retry(why, false);
  }

  private retry(why: string, nothingSent: boolean): void {
    const slot = this.slot!;
    slot.inFlight.delete(this);
    this.dropUpstream();
    if (this.responseStarted || (!nothingSent && !this.retryable) || (nothingSent && this.bodyStreamed)) {
      if (this.responseStarted) return this.abandon();
      return this.fail(502, why);
    }
    (this.tried ??= new Set()).add(slot.node);
    if (this.attempts >= MAX_ATTEMPTS) return this.fail(502, `${this.attempts} attempts failed; last: ${why}`);
    const gate = this.conn.gate;
    gate.retries++;
    slot.retries++;
    this.res = null;
    this.rbuf = null;
    this.dispatch();
  }

  private badResponse(why: string): void {
    const slot = this.slot!;
    slot.errors++;
    this.dropUpstream();
    this.fail(502, `${slot.node} sent a malformed response: ${why}`);
  }

  /** The gate answers itself: nothing of a response went out yet. */
  private fail(status: number, why: string, keepIfPossible = true): void {
    if (this.done) return;
    this.done = true;
    this.slot?.inFlight.delete(this);
    this.dropUpstream();
    const gate = this.conn.gate;
    gate.failed++;
    gate.options.logger?.debug({ module: gate.options.module, status, method: this.req.method, target: this.req.target }, `gate: ${status} for ${this.req.method} ${this.req.target}: ${why}`);
    const keep = keepIfPossible && this.reqDone && this.req.keepAlive && !this.clientEnded;
    if (this.responseStarted) return this.abandon();
    this.conn.socket.write(errorReply(status, why, keep), 'latin1');
    this.conn.finished(keep);
  }

  /** Midway through a response: the only honest signal left is closing the client connection. */
  private abandon(): void {
    const wasDone = this.done;
    this.done = true;
    if (!wasDone) this.conn.gate.failed++;
    this.slot?.inFlight.delete(this);
    this.dropUpstream();
    this.conn.socket.destroy();
  }

  private dropUpstream(): void {
    const socket = this.upstream;
    if (socket === null) return;
    this.upstream = null;
    this.slot?.pool.discard(socket);
  }
}

/**
 * The real links between the members of a cluster: mutual TLS with the
 * cluster CA, offering the same `Transport` face as the in-memory network.
 *
 * A member is who its certificate says (CN and SAN = its name, O = the
 * cluster), and nothing else is trusted: every envelope must come from the
 * certificate's member, for this cluster and this member, or it is dropped
 * and counted (guarantee 6). A bad peer can never crash a member: every
 * socket has an error handler, and what strangers can trigger is logged
 * through a rate limiter.
 *
 * Two TCP connections per pair: each member dials every peer and sends only
 * on its own outbound connection, and receives messages only on inbound
 * ones. No tie-breaking, and each side repairs what it owns. Both ends of
 * every connection ping when idle and destroy a connection on which nothing
 * arrived for `idleTimeout`: that is what notices a half-open connection
 * (a partition, `ip link set down`) in about a second where TCP would buffer
 * for minutes, and the dialer then reconnects on its own short backoff
 * instead of TCP's retransmission backoff.
 *
 * Delivery is best-effort: the protocol above retries, so a message that
 * cannot be sent now (no connection, a full buffer) is dropped and counted
 * rather than queued.
 */
import net from 'node:net';
import tls, { type PeerCertificate, type TLSSocket } from 'node:tls';
import { systemClock } from '../core/clock.js';
import { SkyhaError } from '../core/errors.js';
import type { Logger } from '../observe/log.js';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, encodeFrameParts, FrameDecoder, FrameTooLargeError, type Envelope, type FrameError } from './frame.js';
import type { Transport } from './memory-network.js';
import { RateLimitedLog } from './rate-limited-log.js';

export interface PeerAddress {
  host: string;
  port: number;
}

export interface TlsLinksOptions<M = unknown> {
  /** This member's name; its certificate must name it. */
  self: string;
  cluster: string;
  /** PEM: the cluster CA, and this member's certificate and key. */
  tls: { ca: string | Buffer; cert: string | Buffer; key: string | Buffer };
  /** Port 0 picks a free port (tests); `port` tells which after start(). */
  listen: PeerAddress;
  /**
   * Every other member and where it listens. These names are the only ones
   * accepted on inbound connections. An entry named `self` is ignored; port 0
   * means "not known yet": nothing is dialed until setPeerAddress().
   */
  peers: Record<string, PeerAddress>;
  logger: Logger;
  /** ms without sending anything after which a ping goes out; default 200. */
  keepaliveInterval?: number;
  /** ms without receiving anything after which a connection is destroyed (and redialed); default 1000. */
  idleTimeout?: number;
  /** Redial delays: exponential from min to max, with jitter, reset once connected; default 50 ms .. 2 s. */
  backoff?: { min: number; max: number };
  /** ms a TLS handshake may take, both ways (for the dialer: until the peer has accepted it); default 2000. */
  handshakeTimeout?: number;
  /**
   * ms the dialer waits for the TCP connection itself, within handshakeTimeout; default handshakeTimeout. A SYN
   * lost in a partition is retried by TCP only a second later: a short bound here redials sooner once it heals.
   */
  connectTimeout?: number;
  /** Largest frame (version byte + JSON) sent or accepted; default 4 MiB. */
  maxFrameBytes?: number;
  /** Bytes that may wait in one outbound socket's buffer; a message that would exceed it is dropped; default 8 MiB. */
  maxPendingBytes?: number;
  /** Inbound TCP connections at once, in total and per source address; default 64 and 16. */
  maxInbound?: { total?: number; perSource?: number };
  /** Checks a received message's shape; a body it refuses is dropped and counted as malformed (the connection stays). */
  validate?: (body: unknown) => body is M;
}

export type OutboundState = 'connected' | 'connecting' | 'backoff';

export interface PeerLinkStatus {
  /** connecting: dialing, or waiting for the peer to accept our certificate. */
  outbound: OutboundState;
  /** Whether the peer has an authenticated connection to us. */
  inbound: boolean;
  /** Wall-clock ms (Date.now()) when the last bytes from this peer arrived, on either connection. */
  lastReceivedAt?: number;
}

export interface LinkStats {
  /** Messages written to a peer's connection (not pings, not messages to self). */
  sent: number;
  /** Messages from peers handed to the receive handler (not pings, not messages to self). */
  received: number;
  dropped: {
    /** No connected outbound to that peer (or an unknown peer, or after close()). */
    notConnected: number;
    /** The peer's socket buffer was over maxPendingBytes. */
    backpressure: number;
    /** The message encodes to more than maxFrameBytes. */
    tooLarge: number;
  };
  refused: {
    /** TLS handshake failed: not TLS, timed out, hung up, no common protocol. */
    handshakeFailed: number;
    /** Certificate not from the cluster CA, missing, or not naming a member of this cluster (both directions). */
    unauthenticated: number;
    wrongCluster: number;
    /** An envelope whose `from` is not the certificate's member. */
    impersonation: number;
    /** An envelope not addressed to this member. */
    misaddressed: number;
    /** A frame the decoder refused (the connection is closed), or a body `validate` refused. */
    malformed: number;
    /** Inbound connections over the total or per-source limit. */
    overLimit: number;
  };
  /** Outbound connections established (the peer accepted us). */
  connects: number;
  /** Of those, the ones that replaced an earlier outbound connection to the same peer. */
  reconnects: number;
  /**
   * Dials started over because the peer was heard while ours still waited for TCP: its SYN went into a
   * partition that has healed since, and TCP would send it again only a second later.
   */
  dialsRestarted: number;
  /** Bytes of message frames written to each peer (before TLS): what replication and resyncs cost on the wire. */
  bytesSentTo: Record<string, number>;
}

/** Reason codes of the link's log lines. */
export const LINK_REASONS = {
  started: 'LINK_STARTED',
  up: 'LINK_UP',
  down: 'LINK_DOWN',
  dialFailed: 'LINK_DIAL_FAILED',
  dialRestarted: 'LINK_DIAL_RESTARTED',
  peerRefusedUs: 'LINK_PEER_REFUSED_US',
  idleTimeout: 'LINK_IDLE_TIMEOUT',
  socketError: 'LINK_SOCKET_ERROR',
  handshakeFailed: 'LINK_REFUSED_HANDSHAKE',
  unauthenticated: 'LINK_REFUSED_UNAUTHENTICATED',
  wrongCluster: 'LINK_REFUSED_WRONG_CLUSTER',
  impersonation: 'LINK_REFUSED_IMPERSONATION',
  misaddressed: 'LINK_REFUSED_MISADDRESSED',
  malformed: 'LINK_REFUSED_MALFORMED',
  overLimit: 'LINK_REFUSED_OVER_LIMIT',
  droppedNotConnected: 'LINK_DROPPED_NOT_CONNECTED',
  droppedBackpressure: 'LINK_DROPPED_BACKPRESSURE',
  droppedTooLarge: 'LINK_DROPPED_TOO_LARGE',
  handlerFailed: 'LINK_HANDLER_FAILED',
  serverError: 'LINK_SERVER_ERROR',
} as const;

interface Outbound {
  readonly name: string;
  addr: PeerAddress;
  state: OutboundState;
  socket: TLSSocket | undefined;
  decoder: FrameDecoder;
  /** Whether the TLS handshake of the current socket finished (then only the peer's hello is awaited). */
  secure: boolean;
  /** When the current socket's dial started, and whether its TCP connection is up. */
  dialedAt: number;
  tcpConnected: boolean;
  /** The next dial goes at once, without backoff. */
  redialAtOnce?: boolean;
  /** Failed dials since the last success: the backoff exponent. */
  attempt: number;
  everConnected: boolean;
  /** Counts the connections made: what was sent on an earlier one may be lost once this changes. */
  generation: number;
  retry: NodeJS.Timeout | undefined;
  handshakeTimer: NodeJS.Timeout | undefined;
  lastSentAt: number;
  lastReceivedAt: number;
}

interface Inbound {
  readonly socket: TLSSocket;
  readonly peer: string;
  readonly decoder: FrameDecoder;
  lastSentAt: number;
  lastReceivedAt: number;
}

/** A dial younger than this is not started over when the peer is heard: its SYN may still be on its way. */
const DIAL_RESTART_AFTER = 10;

/** Raised by checkServerIdentity; recognised when counting. */
const IDENTITY_ERROR = 'ERR_SKYHA_LINK_IDENTITY';

/** Certificate verification failures as OpenSSL and Node name them (not alerts from the other side). */
const CERT_PROBLEM = /CERT|ISSUER|SIGNATURE|SELF_SIGNED|INVALID_CA|PURPOSE|PATH_LENGTH|UNTRUSTED|ALTNAME/;

function single(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/**
 * Why `cert` is not a member certificate of `cluster` acceptable to `accept`,
 * or undefined when it is; returns the member's name too. CN and SAN must
 * both name the member (one CN, one O), so no certificate can be read two ways.
 */
export function memberOfCertificate(cert: PeerCertificate | undefined, cluster: string, accept: (name: string) => boolean): { name: string } | { problem: string } {
  if (!cert || !cert.subject) return { problem: 'no certificate' };
  const cn = single(cert.subject.CN);
  const o = single(cert.subject.O);
  if (!cn) return { problem: 'the certificate has no single CN' };
  if (o !== cluster) return { problem: `the certificate of ${cn} is for cluster ${JSON.stringify(cert.subject.O ?? null)}, not ${cluster}` };
  const sans = (cert.subjectaltname ?? '').split(',').map((s) => s.trim());
  if (!sans.includes(`DNS:${cn}`)) return { problem: `the certificate's SAN does not name its CN ${cn}` };
  if (!accept(cn)) return { problem: `${cn} is not a peer of this member` };
  return { name: cn };
}

function errCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  return e?.code ?? 'UNKNOWN';
}

function errText(err: unknown): string {
  const e = err as (Error & { reason?: unknown; code?: string }) | undefined;
  // OpenSSL messages carry addresses and source paths; its `reason` is the readable part.
  if (e && typeof e.reason === 'string' && e.reason) return e.code ? `${e.reason} (${e.code})` : e.reason;
  return (e?.message ?? String(err)).split('\n')[0]!.trim();
}

function waitClosed(socket: net.Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

const now = (): number => systemClock.now();

export class TlsLinks<M> implements Transport<M> {
  readonly self: string;
  readonly cluster: string;
  private readonly opts: {
    keepaliveInterval: number;
    idleTimeout: number;
    backoff: { min: number; max: number };
    handshakeTimeout: number;
    connectTimeout: number;
    maxFrameBytes: number;
    maxPendingBytes: number;
    maxInboundTotal: number;
    maxInboundPerSource: number;
  };
  private readonly clientContext: tls.SecureContext;
  private readonly listenAt: PeerAddress;
  private readonly validate: ((body: unknown) => body is M) | undefined;
  private readonly logger: Logger;
  private readonly rlog: RateLimitedLog;

  private readonly outbounds = new Map<string, Outbound>();
  private readonly inbounds = new Map<string, Inbound>();
  /** Raw TCP sockets accepted and not yet closed, whatever their TLS state. */
  private readonly rawSockets = new Set<net.Socket>();
  private readonly perSource = new Map<string, number>();
  private readonly lastHeard = new Map<string, number>();
  private readonly pingTo = new Map<string, Buffer>();
  private readonly localDeliveries = new Set<NodeJS.Immediate>();

  private readonly netServer: net.Server;
  private readonly tlsServer: tls.Server;
  private handler: ((from: string, message: M) => void) | undefined;
  private upHandler: ((peer: string) => void) | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private listening: Promise<void> | undefined;
  private boundPort: number | undefined;

  private readonly counters: LinkStats = {
    sent: 0,
    received: 0,
    dropped: { notConnected: 0, backpressure: 0, tooLarge: 0 },
    refused: { handshakeFailed: 0, unauthenticated: 0, wrongCluster: 0, impersonation: 0, misaddressed: 0, malformed: 0, overLimit: 0 },
    connects: 0,
    reconnects: 0,
    dialsRestarted: 0,
    bytesSentTo: {},
  };

  constructor(options: TlsLinksOptions<M>) {
    this.self = options.self;
    this.cluster = options.cluster;
    this.opts = {
      keepaliveInterval: options.keepaliveInterval ?? 200,
      idleTimeout: options.idleTimeout ?? 1000,
      backoff: options.backoff ?? { min: 50, max: 2000 },
      handshakeTimeout: options.handshakeTimeout ?? 2000,
      connectTimeout: Math.min(options.connectTimeout ?? Infinity, options.handshakeTimeout ?? 2000),
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      maxPendingBytes: options.maxPendingBytes ?? 8 * 1024 * 1024,
      maxInboundTotal: options.maxInbound?.total ?? 64,
      maxInboundPerSource: options.maxInbound?.perSource ?? 16,
    };
    const o = this.opts;
    for (const [k, v] of Object.entries({ keepaliveInterval: o.keepaliveInterval, idleTimeout: o.idleTimeout, handshakeTimeout: o.handshakeTimeout, connectTimeout: o.connectTimeout, 'backoff.min': o.backoff.min, maxFrameBytes: o.maxFrameBytes, maxPendingBytes: o.maxPendingBytes, 'maxInbound.total': o.maxInboundTotal, 'maxInbound.perSource': o.maxInboundPerSource })) {
      if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`TlsLinks: ${k} must be a positive number, got ${v}`);
    }
    // The peer pings after keepaliveInterval of silence; a shorter idle timeout would cut healthy links.
    if (o.idleTimeout <= o.keepaliveInterval) throw new RangeError(`TlsLinks: idleTimeout (${o.idleTimeout} ms) must exceed keepaliveInterval (${o.keepaliveInterval} ms)`);
    if (o.backoff.max < o.backoff.min) throw new RangeError(`TlsLinks: backoff.max (${o.backoff.max}) is below backoff.min (${o.backoff.min})`);

    this.listenAt = { ...options.listen };
    this.validate = options.validate;
    this.logger = options.logger;
    this.rlog = new RateLimitedLog(options.logger);

    for (const [name, addr] of Object.entries(options.peers)) {
      if (name === this.self) continue;
      this.outbounds.set(name, {
        name,
        addr: { ...addr },
        state: 'backoff',
        socket: undefined,
        decoder: new FrameDecoder({ maxFrameBytes: o.maxFrameBytes }),
        secure: false,
        dialedAt: 0,
        tcpConnected: false,
        attempt: 0,
        everConnected: false,
        generation: 0,
        retry: undefined,
        handshakeTimer: undefined,
        lastSentAt: 0,
        lastReceivedAt: 0,
      });
      this.pingTo.set(name, encodeFrame({ cluster: this.cluster, from: this.self, to: name, kind: 'ping' }, Infinity));
    }

    // rejectUnauthorized is false on purpose, and every connection is checked in onSecureInbound before
    // anything is read from it: with true, Node drops a certificate from another CA silently (a bare
    // "socket hang up"), and such a refusal could not be counted and logged as unauthenticated.
    try {
      // Parsed once here, so bad PEM or a key that does not match the certificate fails now, clearly.
      this.clientContext = tls.createSecureContext({ ca: options.tls.ca, cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.3' });
      this.tlsServer = tls.createServer({
        requestCert: true,
        rejectUnauthorized: false,
        ca: options.tls.ca,
        cert: options.tls.cert,
        key: options.tls.key,
        minVersion: 'TLSv1.3',
        handshakeTimeout: o.handshakeTimeout,
      });
    } catch (err) {
      throw new SkyhaError('SKYHA_ERR_CONFIG_TLS', `the TLS material of ${this.self} cannot be used for links: ${errText(err)}`, { cause: err });
    }
    this.tlsServer.on('secureConnection', (socket: TLSSocket) => this.onSecureInbound(socket));
    this.tlsServer.on('tlsClientError', (err: Error, socket: TLSSocket) => this.onInboundHandshakeError(err, socket));
    // TCP is accepted here and handed to the TLS server, so limits apply before any TLS work is done.
    this.netServer = net.createServer((raw) => this.onTcpConnection(raw));
    // Listen errors reject start(); later ones (e.g. EMFILE on accept) are logged.
    this.netServer.on('error', (err) => this.netServer.listening && this.rlog.log('error', LINK_REASONS.serverError, { code: errCode(err) }, `link server error: ${errText(err)}`));
  }

  /** The port the links listen on: the bound one once started (useful with port 0). */
  get port(): number {
    return this.boundPort ?? this.listenAt.port;
  }

  /** Listens, then dials every peer. Rejects with the listen error (e.g. EADDRINUSE). */
  async start(): Promise<void> {
    if (this.started) throw new Error('TlsLinks.start() was called twice');
    if (this.closed) throw new Error('TlsLinks.start() after close()');
    this.started = true;
    this.listening = new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.netServer.once('error', onError);
      this.netServer.listen({ host: this.listenAt.host, port: this.listenAt.port }, () => {
        this.netServer.off('error', onError);
        resolve();
      });
    });
    await this.listening;
    const address = this.netServer.address();
    this.boundPort = typeof address === 'object' && address ? address.port : this.listenAt.port;
    if (this.closed) return;
    const tick = Math.max(5, Math.min(250, Math.min(this.opts.keepaliveInterval, this.opts.idleTimeout) / 4));
    this.ticker = setInterval(() => this.tick(), tick);
    for (const p of this.outbounds.values()) this.dial(p);
    this.logger.info({ reason: LINK_REASONS.started, host: this.listenAt.host, port: this.boundPort, peers: [...this.outbounds.keys()] }, `links of ${this.self} listening on ${this.listenAt.host}:${this.boundPort}`);
  }

  /** Closes the server and every connection and cancels every timer; resolves once all are closed. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    for (const i of this.localDeliveries) clearImmediate(i);
    this.localDeliveries.clear();
    const sockets: net.Socket[] = [];
    for (const p of this.outbounds.values()) {
      if (p.retry) clearTimeout(p.retry);
      if (p.handshakeTimer) clearTimeout(p.handshakeTimer);
      p.retry = p.handshakeTimer = undefined;
      p.state = 'backoff';
      if (p.socket) sockets.push(p.socket);
    }
    for (const c of this.inbounds.values()) sockets.push(c.socket);
    sockets.push(...this.rawSockets);
    for (const s of sockets) s.destroy();
    // A listen still under way is waited for, so that its server is closed too.
    const server = (this.listening ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => new Promise<void>((resolve) => (this.netServer.listening ? this.netServer.close(() => resolve()) : resolve())));
    this.closing = Promise.all([server, ...sockets.map(waitClosed)]).then(() => this.rlog.flush());
    return this.closing;
  }

  onReceive(handler: (from: string, message: M) => void): void {
    this.handler = handler;
  }

  /** Called (on a later turn) each time the link to a peer comes up, so that the caller can speak at once rather than at its next tick. */
  onUp(handler: (peer: string) => void): void {
    this.upHandler = handler;
  }

  /** Best-effort: drops (and counts) what cannot be written now, and says whether it was written. To self: delivered on the next turn of the event loop. */
  send(to: string, message: M): boolean {
    if (to === this.self) {
      if (this.closed) {
        this.counters.dropped.notConnected++;
        return false;
      }
      // A JSON copy, as the wire would make: the receiver never shares the sender's objects.
      const text = JSON.stringify(message);
      const copy = text === undefined ? undefined : (JSON.parse(text) as M);
      const immediate = setImmediate(() => {
        this.localDeliveries.delete(immediate);
        this.deliver(this.self, copy as M);
      });
      this.localDeliveries.add(immediate);
      return true;
    }
    const p = this.outbounds.get(to);
    if (this.closed || !p || p.state !== 'connected' || !p.socket || !p.socket.writable) {
      this.counters.dropped.notConnected++;
      const why = !p ? `${to} is not a peer of ${this.self}` : this.closed ? 'the links are closed' : `no connection to ${to} (${p.state})`;
      this.rlog.log(p ? 'debug' : 'warn', LINK_REASONS.droppedNotConnected, { peer: to }, `dropped a message to ${to}: ${why}`, p ? `${LINK_REASONS.droppedNotConnected}:${to}` : LINK_REASONS.droppedNotConnected);
      return false;
    }
    let parts: Buffer[];
    try {
      parts = encodeFrameParts({ cluster: this.cluster, from: this.self, to, kind: 'msg', body: message }, this.opts.maxFrameBytes);
    } catch (err) {
      if (!(err instanceof FrameTooLargeError)) throw err;
      this.counters.dropped.tooLarge++;
      this.rlog.log('warn', LINK_REASONS.droppedTooLarge, { peer: to, bytes: err.bytes, limit: err.limit }, `dropped a message to ${to}: ${err.message}`, `${LINK_REASONS.droppedTooLarge}:${to}`);
      return false;
    }
    const frameBytes = parts.reduce((n, b) => n + b.length, 0);
    if (p.socket.writableLength + frameBytes > this.opts.maxPendingBytes) {
      this.counters.dropped.backpressure++;
      this.rlog.log('warn', LINK_REASONS.droppedBackpressure, { peer: to, pending: p.socket.writableLength, limit: this.opts.maxPendingBytes }, `dropped a message to ${to}: ${p.socket.writableLength} bytes already wait to be sent`, `${LINK_REASONS.droppedBackpressure}:${to}`);
      return false;
    }
    if (parts.length === 1) p.socket.write(parts[0]!);
    else {
      p.socket.cork();
      for (const b of parts) p.socket.write(b);
      p.socket.uncork();
    }
    p.lastSentAt = now();
    this.counters.sent++;
    this.counters.bytesSentTo[to] = (this.counters.bytesSentTo[to] ?? 0) + frameBytes;
    return true;
  }

  /**
   * Resolves true once fewer than `below` bytes wait in the connection to
   * `to` (at once if so already), false if there is no connection: bulk
   * senders (a resync) wait here instead of having messages dropped.
   */
  /**
   * Which connection to `to` messages go on now (it changes with every new
   * one), or undefined while there is none: a sender of unnumbered messages
   * that sees it change knows some may be lost.
   */
  connection(to: string): number | undefined {
    const p = this.outbounds.get(to);
    return p?.state === 'connected' ? p.generation : undefined;
  }

  async whenWritable(to: string, below: number): Promise<boolean> {
    for (;;) {
      const p = this.outbounds.get(to);
      const socket = p?.socket;
      if (this.closed || !p || p.state !== 'connected' || !socket || !socket.writable) return false;
      if (socket.writableLength < below) return true;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.once('drain', done);
        socket.once('close', done);
      });
    }
  }

  peerStatus(): Record<string, PeerLinkStatus> {
    const out: Record<string, PeerLinkStatus> = {};
    for (const p of this.outbounds.values()) {
      const heard = this.lastHeard.get(p.name);
      out[p.name] = { outbound: p.state, inbound: this.inbounds.has(p.name), ...(heard === undefined ? {} : { lastReceivedAt: heard }) };
    }
    return out;
  }

  /** A copy of the counters. */
  stats(): LinkStats {
    const c = this.counters;
    return { ...c, dropped: { ...c.dropped }, refused: { ...c.refused }, bytesSentTo: { ...c.bytesSentTo } };
  }

  /**
   * Changes where a peer is dialed (tests that start members on port 0, then
   * tell each other the ports). Redials at once; an unknown name is an error.
   */
  setPeerAddress(name: string, addr: PeerAddress): void {
    const p = this.outbounds.get(name);
    if (!p) throw new RangeError(`${name} is not a peer of ${this.self}`);
    p.addr = { ...addr };
    p.attempt = 0;
    if (!this.started || this.closed) return;
    if (p.socket) {
      p.socket.destroy(); // the close handler redials after the shortest backoff
    } else {
      if (p.retry) clearTimeout(p.retry);
      p.retry = undefined;
      this.dial(p);
    }
  }

  // ---- outbound: dial, wait for the peer's hello, send, redial ----

  private dial(p: Outbound): void {
    if (this.closed || p.socket) return;
    if (p.addr.port === 0) {
      p.state = 'backoff'; // address not known yet: setPeerAddress() dials
      return;
    }
    p.state = 'connecting';
    p.secure = false;
    p.tcpConnected = false;
    p.dialedAt = now();
    p.decoder = new FrameDecoder({ maxFrameBytes: this.opts.maxFrameBytes });
    const socket = tls.connect({
      host: p.addr.host,
      port: p.addr.port,
      secureContext: this.clientContext,
      servername: p.name,
      minVersion: 'TLSv1.3',
      checkServerIdentity: (_host, cert) => {
        const r = memberOfCertificate(cert, this.cluster, (name) => name === p.name);
        if ('name' in r) return undefined;
        return Object.assign(new Error(`the member at ${p.addr.host}:${p.addr.port} is not ${p.name} of cluster ${this.cluster}: ${r.problem}`), { code: IDENTITY_ERROR });
      },
    });
    p.socket = socket;
    socket.setNoDelay(true);
    // Bounds the whole setup (TCP, TLS, the peer's hello): an unreachable peer must not hold a dial for TCP's minutes.
    // The TCP connection has a shorter bound of its own.
    const started = now();
    let connected = false;
    const giveUp = (): void => {
      p.handshakeTimer = undefined;
      const what = !connected ? `TCP connection within ${this.opts.connectTimeout}` : `${p.secure ? 'hello' : 'TLS handshake'} within ${this.opts.handshakeTimeout}`;
      this.rlog.log('warn', LINK_REASONS.dialFailed, { peer: p.name, code: 'TIMEOUT' }, `cannot link to ${p.name} at ${p.addr.host}:${p.addr.port}: no ${what} ms`, `${LINK_REASONS.dialFailed}:${p.name}`);
      socket.destroy();
    };
    p.handshakeTimer = setTimeout(giveUp, this.opts.connectTimeout);
    socket.once('connect', () => {
      connected = true;
      if (p.socket === socket) p.tcpConnected = true;
      if (p.socket !== socket || !p.handshakeTimer || this.opts.connectTimeout >= this.opts.handshakeTimeout) return;
      clearTimeout(p.handshakeTimer);
      p.handshakeTimer = setTimeout(giveUp, Math.max(0, this.opts.handshakeTimeout - (now() - started)));
    });
    socket.on('secureConnect', () => {
      p.secure = true;
      p.lastReceivedAt = now();
    });
    socket.on('data', (chunk: Buffer) => this.onOutboundData(p, socket, chunk));
    socket.on('error', (err) => this.onOutboundError(p, socket, err));
    socket.on('close', () => this.onOutboundClose(p, socket));
  }

  private onOutboundData(p: Outbound, socket: TLSSocket, chunk: Buffer): void {
    if (p.socket !== socket || this.closed) return;
    p.lastReceivedAt = now();
    this.lastHeard.set(p.name, Date.now());
    const { frames, error } = p.decoder.push(chunk);
    for (const f of frames) {
      if (!this.checkEnvelope(f, p.name, 'outbound')) continue;
      if (f.kind === 'msg') {
        // Messages travel only on the sender's outbound connection: one coming back on ours is a broken peer.
        this.refuseMalformed(socket, p.name, 'outbound', { code: 'bad-envelope', detail: 'a message on the connection we dialed (peers send only on their own)' });
        return;
      }
      if (p.state === 'connecting') this.markConnected(p);
    }
    if (error) this.refuseMalformed(socket, p.name, 'outbound', error);
  }

  /** The peer's first ping says it has authenticated us: only now can messages flow. */
  private markConnected(p: Outbound): void {
    if (p.handshakeTimer) clearTimeout(p.handshakeTimer);
    p.handshakeTimer = undefined;
    p.state = 'connected';
    p.generation++;
    p.attempt = 0;
    p.lastSentAt = now();
    this.counters.connects++;
    if (p.everConnected) this.counters.reconnects++;
    p.everConnected = true;
    this.rlog.log('info', LINK_REASONS.up, { peer: p.name }, `link to ${p.name} is up`, `${LINK_REASONS.up}:${p.name}`);
    const up = this.upHandler;
    if (up) setImmediate(() => !this.closed && p.state === 'connected' && up(p.name));
  }

  private onOutboundError(p: Outbound, socket: TLSSocket, err: Error): void {
    if (this.closed || p.socket !== socket) return;
    const code = errCode(err);
    const where = `${p.addr.host}:${p.addr.port}`;
    if (code === IDENTITY_ERROR || (!p.secure && CERT_PROBLEM.test(code) && !code.includes('ALERT'))) {
      // We refuse the server: its certificate is not the peer's.
      this.counters.refused.unauthenticated++;
      this.rlog.log('warn', LINK_REASONS.unauthenticated, { peer: p.name, direction: 'outbound', code }, `refused the member at ${where} dialed as ${p.name}: ${errText(err)}`, `${LINK_REASONS.unauthenticated}:${p.name}`);
    } else if (code.includes('ALERT')) {
      this.rlog.log('warn', LINK_REASONS.peerRefusedUs, { peer: p.name, code }, `${p.name} at ${where} refused our link: ${errText(err)}`, `${LINK_REASONS.peerRefusedUs}:${p.name}`);
    } else if (!p.secure && (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS'))) {
      this.counters.refused.handshakeFailed++;
      this.rlog.log('warn', LINK_REASONS.handshakeFailed, { peer: p.name, direction: 'outbound', code }, `TLS handshake with ${p.name} at ${where} failed: ${errText(err)}`, `${LINK_REASONS.handshakeFailed}:${p.name}`);
    } else if (p.state === 'connected') {
      this.rlog.log('info', LINK_REASONS.socketError, { peer: p.name, direction: 'outbound', code }, `link to ${p.name} at ${where}: ${errText(err)}`, `${LINK_REASONS.socketError}:out:${p.name}`);
    } else {
      this.rlog.log('warn', LINK_REASONS.dialFailed, { peer: p.name, code }, `cannot link to ${p.name} at ${where}: ${errText(err)}`, `${LINK_REASONS.dialFailed}:${p.name}`);
    }
  }

  private onOutboundClose(p: Outbound, socket: TLSSocket): void {
    if (p.socket !== socket) return;
    if (p.handshakeTimer) clearTimeout(p.handshakeTimer);
    p.handshakeTimer = undefined;
    p.socket = undefined;
    const was = p.state;
    if (this.closed) return;
    if (was === 'connected') {
      this.rlog.log('warn', LINK_REASONS.down, { peer: p.name }, `link to ${p.name} is down`, `${LINK_REASONS.down}:${p.name}`);
    } else if (p.secure) {
      this.rlog.log('warn', LINK_REASONS.peerRefusedUs, { peer: p.name }, `${p.name} closed our link before accepting it (does it refuse our certificate, or is it restarting?)`, `${LINK_REASONS.peerRefusedUs}:${p.name}`);
    }
    this.scheduleRedial(p);
  }

  private scheduleRedial(p: Outbound): void {
    p.state = 'backoff';
    const { min, max } = this.opts.backoff;
    const base = Math.min(max, min * 2 ** Math.min(p.attempt, 30));
    p.attempt++;
    // Equal jitter: members that lost each other at the same instant do not redial in lockstep.
    const delay = p.redialAtOnce ? 0 : base / 2 + Math.random() * (base / 2);
    p.redialAtOnce = false;
    p.retry = setTimeout(() => {
      p.retry = undefined;
      this.dial(p);
    }, delay);
  }

  // ---- inbound: limit, handshake, authenticate, receive ----

  private onTcpConnection(raw: net.Socket): void {
    if (this.closed) {
      raw.destroy();
      return;
    }
    const source = raw.remoteAddress ?? 'unknown';
    const fromSource = this.perSource.get(source) ?? 0;
    if (this.rawSockets.size >= this.opts.maxInboundTotal || fromSource >= this.opts.maxInboundPerSource) {
      this.counters.refused.overLimit++;
      this.rlog.log('warn', LINK_REASONS.overLimit, { source, open: this.rawSockets.size, fromSource }, `refused a connection from ${source}: too many open (${fromSource} from it, ${this.rawSockets.size} in all)`);
      raw.destroy();
      return;
    }
    this.perSource.set(source, fromSource + 1);
    this.rawSockets.add(raw);
    // The TLS socket wrapping it reports errors; this one only keeps a stray error from crashing the member.
    raw.on('error', () => undefined);
    raw.once('close', () => {
      this.rawSockets.delete(raw);
      const n = (this.perSource.get(source) ?? 1) - 1;
      if (n <= 0) this.perSource.delete(source);
      else this.perSource.set(source, n);
    });
    this.tlsServer.emit('connection', raw);
  }

  private onInboundHandshakeError(err: Error, socket: TLSSocket): void {
    socket.on('error', () => undefined);
    socket.destroy();
    if (this.closed) return;
    const code = errCode(err);
    const source = socket.remoteAddress ?? 'unknown';
    if (CERT_PROBLEM.test(code) && !code.includes('ALERT')) {
      this.counters.refused.unauthenticated++;
      this.rlog.log('warn', LINK_REASONS.unauthenticated, { source, direction: 'inbound', code }, `refused a connection from ${source}: ${errText(err)}`);
    } else {
      this.counters.refused.handshakeFailed++;
      this.rlog.log('warn', LINK_REASONS.handshakeFailed, { source, direction: 'inbound', code }, `TLS handshake from ${source} failed: ${errText(err)}`);
    }
  }

  private onSecureInbound(socket: TLSSocket): void {
    let conn: Inbound | undefined;
    socket.on('error', (err) => {
      if (this.closed) return;
      // Keyed by reason only until authenticated: before that, the source is a stranger.
      const peer = conn?.peer;
      this.rlog.log('info', LINK_REASONS.socketError, { peer, direction: 'inbound', code: errCode(err) }, `inbound link from ${peer ?? socket.remoteAddress}: ${errText(err)}`, peer ? `${LINK_REASONS.socketError}:in:${peer}` : LINK_REASONS.socketError);
    });
    if (this.closed) {
      socket.destroy();
      return;
    }
    const source = socket.remoteAddress ?? 'unknown';
    // Checked before anything is read: the server accepts unverified certificates only to count them here.
    const member = socket.authorized
      ? memberOfCertificate(socket.getPeerCertificate(), this.cluster, (name) => this.outbounds.has(name))
      : { problem: socket.authorizationError ? `certificate not accepted (${String(socket.authorizationError)})` : 'no certificate' };
    if ('problem' in member) {
      this.counters.refused.unauthenticated++;
      this.rlog.log('warn', LINK_REASONS.unauthenticated, { source, direction: 'inbound' }, `refused a connection from ${source}: ${member.problem}`);
      socket.destroy();
      return;
    }
    const peer = member.name;
    socket.setNoDelay(true);
    const t = now();
    conn = { socket, peer, decoder: new FrameDecoder({ maxFrameBytes: this.opts.maxFrameBytes }), lastSentAt: t, lastReceivedAt: t };
    const c = conn;
    // The newest connection wins: the peer redialed, so an older one is dead or about to be.
    const old = this.inbounds.get(peer);
    this.inbounds.set(peer, c);
    old?.socket.destroy();
    socket.on('data', (chunk: Buffer) => this.onInboundData(c, chunk));
    socket.on('close', () => {
      if (this.inbounds.get(peer) === c) this.inbounds.delete(peer);
    });
    // The hello: tells the dialer that we accepted it, so it may start sending.
    this.ping(socket, peer);
    c.lastSentAt = t;
  }

  private onInboundData(c: Inbound, chunk: Buffer): void {
    if (this.closed || c.socket.destroyed) return;
    c.lastReceivedAt = now();
    this.lastHeard.set(c.peer, Date.now());
    const { frames, error } = c.decoder.push(chunk);
    for (const f of frames) {
      if (this.closed) return;
      if (!this.checkEnvelope(f, c.peer, 'inbound') || f.kind === 'ping') continue;
      if (this.validate && !this.validate(f.body)) {
        this.counters.refused.malformed++;
        this.rlog.log('warn', LINK_REASONS.malformed, { peer: c.peer, direction: 'inbound' }, `dropped a message from ${c.peer}: its body is not a valid message`);
        continue;
      }
      this.counters.received++;
      this.deliver(c.peer, f.body as M);
    }
    if (error) this.refuseMalformed(c.socket, c.peer, 'inbound', error);
  }

  // ---- shared ----

  /** Whether an envelope on a connection authenticated as `peer` is for us and from it; counts and logs the refusals. */
  private checkEnvelope(f: Envelope, peer: string, direction: 'inbound' | 'outbound'): boolean {
    let why: 'wrongCluster' | 'impersonation' | 'misaddressed' | undefined;
    let text = '';
    if (f.cluster !== this.cluster) {
      why = 'wrongCluster';
      text = `an envelope for cluster ${JSON.stringify(f.cluster)}`;
    } else if (f.from !== peer) {
      why = 'impersonation';
      text = `an envelope claiming to be from ${JSON.stringify(f.from)}`;
    } else if (f.to !== this.self) {
      why = 'misaddressed';
      text = `an envelope addressed to ${JSON.stringify(f.to)}`;
    }
    if (!why) return true;
    this.counters.refused[why]++;
    this.rlog.log('warn', LINK_REASONS[why], { peer, direction, kind: f.kind }, `dropped ${text} on the link of ${peer}`);
    return false;
  }

  private refuseMalformed(socket: TLSSocket, peer: string, direction: 'inbound' | 'outbound', error: FrameError): void {
    this.counters.refused.malformed++;
    this.rlog.log('warn', LINK_REASONS.malformed, { peer, direction, code: error.code }, `closed the ${direction} link of ${peer}: ${error.code}: ${error.detail}`);
    socket.destroy();
  }

  private deliver(from: string, message: M): void {
    if (this.closed || !this.handler) return;
    // The peer reaches us, so the path works again (a partition healed): dial it now rather than when the backoff ends.
    const back = this.outbounds.get(from);
    if (back && back.state === 'backoff' && back.retry) {
      clearTimeout(back.retry);
      back.retry = undefined;
      back.attempt = 0;
      this.dial(back);
    } else if (back && back.state === 'connecting' && back.socket && !back.tcpConnected && now() - back.dialedAt >= DIAL_RESTART_AFTER) {
      // Our dial's SYN went out while the path was cut and is lost; TCP would send it again a second after.
      this.counters.dialsRestarted++;
      this.rlog.log('debug', LINK_REASONS.dialRestarted, { peer: from }, `${from} is heard again while our dial still waits for TCP: dialing it again now`, `${LINK_REASONS.dialRestarted}:${from}`);
      back.attempt = 0;
      back.redialAtOnce = true;
      back.socket.destroy();
    }
    try {
      this.handler(from, message);
    } catch (err) {
      // A bug in the receiver must not take the links down with it; it is logged, not hidden.
      this.rlog.log('error', LINK_REASONS.handlerFailed, { peer: from, err }, `the receive handler threw on a message from ${from}: ${errText(err)}`);
    }
  }

  private ping(socket: TLSSocket, peer: string): void {
    if (!socket.writable || socket.writableLength > this.opts.maxPendingBytes) return;
    socket.write(this.pingTo.get(peer)!);
  }

  /** Keepalive and idle timeout for every established connection, both directions. */
  private tick(): void {
    const t = now();
    const { keepaliveInterval, idleTimeout } = this.opts;
    for (const p of this.outbounds.values()) {
      const s = p.socket;
      if (!s || p.state !== 'connected') continue;
      if (t - p.lastReceivedAt >= idleTimeout) {
        this.rlog.log('warn', LINK_REASONS.idleTimeout, { peer: p.name, direction: 'outbound' }, `nothing from ${p.name} for ${Math.round(t - p.lastReceivedAt)} ms: reconnecting`, `${LINK_REASONS.idleTimeout}:${p.name}`);
        s.destroy();
      } else if (t - p.lastSentAt >= keepaliveInterval) {
        this.ping(s, p.name);
        p.lastSentAt = t;
      }
    }
    for (const c of this.inbounds.values()) {
      if (t - c.lastReceivedAt >= idleTimeout) {
        this.rlog.log('warn', LINK_REASONS.idleTimeout, { peer: c.peer, direction: 'inbound' }, `nothing from ${c.peer} for ${Math.round(t - c.lastReceivedAt)} ms on its link to us: closing it`, `${LINK_REASONS.idleTimeout}:in:${c.peer}`);
        c.socket.destroy();
        this.inbounds.delete(c.peer);
      } else if (t - c.lastSentAt >= keepaliveInterval) {
        this.ping(c.socket, c.peer);
        c.lastSentAt = t;
      }
    }
  }
}

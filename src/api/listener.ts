/**
 * One port, two protocols: a member's API port answers HTTPS (the API, the
 * console, `/metrics`) and plain HTTP (`/health/MODULE` for load balancers'
 * probes, which rarely speak TLS to a backend) on the same address. The first
 * byte of a connection tells them apart: a TLS handshake starts with 0x16,
 * which no HTTP method does.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';

export interface ListenerOptions {
  host: string;
  port: number;
  /** Absent: plain HTTP only. */
  tls?: { ca: Buffer; cert: Buffer; key: Buffer };
  handle(req: IncomingMessage, res: ServerResponse): void;
  onError(err: Error): void;
}

/** A connection that sends nothing in this long is closed (it would hold a socket forever). */
const FIRST_BYTE_TIMEOUT = 10_000;

export class DualListener {
  private net: NetServer | undefined;
  private readonly plain: HttpServer;
  private readonly secure: HttpsServer | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly options: ListenerOptions) {
    this.plain = createHttpServer(options.handle);
    if (options.tls) {
      // requestCert without rejectUnauthorized: a client certificate is one way in, a bearer token the other.
      this.secure = createHttpsServer({ ...options.tls, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, options.handle);
      this.secure.on('tlsClientError', () => undefined);
    }
    for (const s of [this.plain, this.secure]) {
      if (!s) continue;
      s.keepAliveTimeout = 5000;
      s.headersTimeout = 10_000;
      // Event streams stay open; their own heartbeats keep proxies from cutting them.
      s.requestTimeout = 0;
    }
  }

  get port(): number {
    return (this.net?.address() as AddressInfo | null)?.port ?? this.options.port;
  }

  start(): Promise<void> {
    const net = createNetServer((socket) => this.accept(socket));
    this.net = net;
    return new Promise((resolve, reject) => {
      net.once('error', reject);
      net.listen(this.options.port, this.options.host, () => {
        net.off('error', reject);
        net.on('error', (err) => this.options.onError(err));
        resolve();
      });
    });
  }

  close(): Promise<void> {
    const net = this.net;
    this.net = undefined;
    for (const s of this.sockets) s.destroy();
    this.plain.closeAllConnections();
    this.secure?.closeAllConnections();
    if (!net) return Promise.resolve();
    return new Promise((resolve) => net.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setTimeout(FIRST_BYTE_TIMEOUT, () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(first);
      const server = first[0] === 0x16 && this.secure ? this.secure : this.plain;
      server.emit('connection', socket);
      process.nextTick(() => socket.resume());
    });
  }
}

/**
 * The member's HTTP endpoint on its API port:
 * - `GET|HEAD /health/MODULE` for cloud load balancers: 200 or 503 with a
 *   one-line JSON reason (the condition is Agent.health's doc comment);
 * - `GET /v1/status`: this member's status report (JSON), for `skyha status`.
 *
 * Plain HTTP for now: load balancers' health probes speak it. The full
 * REST API with TLS and authentication comes with the operator's surface.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observe/log.js';

export interface HttpEndpointOptions {
  host: string;
  port: number;
  logger: Logger;
  health(module: string): { code: number; healthy: boolean; why: string };
  status(): unknown;
}

export class HttpEndpoint {
  private server: Server | undefined;

  constructor(private readonly options: HttpEndpointOptions) {}

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? this.options.port;
  }

  start(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    // Probes come often and from few sources: short keep-alive, bounded headers.
    server.keepAliveTimeout = 5000;
    server.headersTimeout = 5000;
    server.requestTimeout = 10_000;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.options.logger.error({ err }, 'HTTP endpoint error'));
        resolve();
      });
    });
  }

  close(): Promise<void> {
    const server = this.server;
    if (!server) return Promise.resolve();
    this.server = undefined;
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://local');
    const method = req.method ?? 'GET';
    try {
      const health = /^\/health\/([^/]+)$/.exec(url.pathname);
      if (health) {
        if (method !== 'GET' && method !== 'HEAD') return this.send(res, 405, { error: 'use GET or HEAD' }, method, { Allow: 'GET, HEAD' });
        const module = decodeURIComponent(health[1]!);
        const h = this.options.health(module);
        return this.send(res, h.code, { module, healthy: h.healthy, why: h.why }, method);
      }
      if (url.pathname === '/v1/status') {
        if (method !== 'GET' && method !== 'HEAD') return this.send(res, 405, { error: 'use GET' }, method, { Allow: 'GET, HEAD' });
        return this.send(res, 200, this.options.status(), method);
      }
      return this.send(res, 404, { error: `no route ${url.pathname}` }, method);
    } catch (err) {
      this.options.logger.error({ err }, `error serving ${url.pathname}`);
      return this.send(res, 500, { error: 'internal error; see the agent log' }, method);
    }
  }

  private send(res: ServerResponse, code: number, body: unknown, method: string, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body) + '\n';
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store', ...headers });
    res.end(method === 'HEAD' ? undefined : text);
  }
}

/**
 * A member's API port: routes (routes.ts) behind authentication (auth.ts) on
 * one listener for HTTPS and plain HTTP (listener.ts), and the console's
 * static files. Every refused request says why (401 names what was missing,
 * 403 the role needed); every accepted action is an event naming who asked
 * (the member records it where it acts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../observe/log.js';
import { allows, Authenticator, type Caller } from './auth.js';
import { consoleAsset, serveConsoleFile } from './console-files.js';
import { ApiError, sendError } from './http.js';
import { DualListener } from './listener.js';
import { ROUTES, type ApiBackend, type Route } from './routes.js';

export interface ApiServerOptions {
  host: string;
  port: number;
  /** HTTPS material; absent when `api.tls: false`. */
  tls?: { ca: Buffer; cert: Buffer; key: Buffer };
  backend: ApiBackend;
  logger: Logger;
}

interface CompiledRoute extends Route {
  pattern: RegExp;
  names: string[];
}

const COMPILED: CompiledRoute[] = ROUTES.map((r) => {
  const names: string[] = [];
  const source = r.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_, n: string) => {
    names.push(n);
    return '([^/]+)';
  });
  return { ...r, pattern: new RegExp(`^${source}$`), names };
});

export class ApiServer {
  private readonly listener: DualListener;
  private readonly auth: Authenticator;

  constructor(private readonly options: ApiServerOptions) {
    const { config } = options.backend;
    this.auth = new Authenticator(config.api.users, new Set([...config.nodes, ...config.witnesses].map((m) => m.name)));
    this.listener = new DualListener({
      host: options.host,
      port: options.port,
      ...(options.tls ? { tls: options.tls } : {}),
      handle: (req, res) => void this.handle(req, res),
      onError: (err) => options.logger.error({ err }, 'API listener error'),
    });
  }

  get port(): number {
    return this.listener.port;
  }

  start(): Promise<void> {
    return this.listener.start();
  }

  close(): Promise<void> {
    return this.listener.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const head = method === 'HEAD';
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://member');
    } catch {
      return sendError(res, new ApiError(400, 'SKYHA_API_BAD_URL', 'expected a request path'));
    }
    const encrypted = Boolean((req.socket as { encrypted?: boolean }).encrypted);
    try {
      const matched = COMPILED.filter((r) => r.pattern.test(url.pathname));
      if (matched.length === 0) {
        const asset = consoleAsset(url.pathname);
        if (asset && (method === 'GET' || head) && (encrypted || !this.options.backend.config.api.tls) && serveConsoleFile(req, res, asset)) return;
        throw new ApiError(404, 'SKYHA_API_NO_ROUTE', `no route ${url.pathname}; the API is described at /v1/openapi.json`);
      }
      const route = matched.find((r) => r.method === method || (head && r.method === 'GET'));
      if (!route) {
        const allow = [...new Set(matched.flatMap((r) => (r.method === 'GET' ? ['GET', 'HEAD'] : [r.method])))].join(', ');
        throw new ApiError(405, 'SKYHA_API_METHOD_NOT_ALLOWED', `${url.pathname} takes ${allow}, not ${method}`, undefined, { Allow: allow });
      }
      const config = this.options.backend.config;
      const open = route.role === 'public' || (route.operationId === 'getMetrics' && config.api.publicMetrics);
      if (config.api.tls && !encrypted && !route.plain && !(route.operationId === 'getMetrics' && config.api.publicMetrics)) {
        throw new ApiError(403, 'SKYHA_API_HTTPS_ONLY', `${url.pathname} answers over HTTPS only (api.tls is on): use https://; plain HTTP serves /health/MODULE`);
      }
      let caller: Caller | undefined;
      if (!open) {
        const a = this.auth.authenticate(req);
        if (!a.ok) throw new ApiError(401, 'SKYHA_API_UNAUTHENTICATED', a.why, undefined, { 'WWW-Authenticate': 'Bearer realm="skyha"' });
        caller = a.caller;
        if (!allows(caller, route.role as Exclude<Route['role'], 'public'>)) {
          this.options.logger.warn({ caller: caller.name, role: caller.role, operation: route.operationId }, `refused ${method} ${url.pathname} to ${caller.name}: needs ${route.role}`);
          throw new ApiError(403, 'SKYHA_API_FORBIDDEN', `${route.operationId} needs the role ${route.role}; ${caller.name} has ${caller.role}`);
        }
      }
      const params: Record<string, string> = {};
      const m = route.pattern.exec(url.pathname)!;
      try {
        route.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1]!)));
      } catch {
        throw new ApiError(400, 'SKYHA_API_BAD_URL', `malformed escape in ${url.pathname}`);
      }
      await route.handle({ req, res, url, params, caller, by: byOf(caller, req), backend: this.options.backend, head });
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof ApiError) return sendError(res, err, head);
      this.options.logger.error({ err }, `error serving ${method} ${url.pathname}`);
      return sendError(res, new ApiError(500, 'SKYHA_API_INTERNAL', 'internal error; see the agent log'), head);
    }
  }
}

/**
 * Who asked, as events record it: the user's name; a member certificate
 * (the CLI on a node) may add the person at the keyboard in X-Skyha-Actor.
 */
function byOf(caller: Caller | undefined, req: IncomingMessage): string {
  if (!caller) return 'anonymous';
  const actor = req.headers['x-skyha-actor'];
  if (caller.via === 'member-certificate' && typeof actor === 'string' && /^[\w.@-]{1,64}$/.test(actor)) return `${actor} (with ${caller.name}'s certificate)`;
  return caller.name;
}

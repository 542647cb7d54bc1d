/**
 * The routes of the REST API, one handler per verb and resource, each with
 * the role it needs. Their shapes are those of schema/openapi.json (a test
 * validates every answer against it). Actions are carried out by the member
 * (ApiBackend), which passes them to the node they concern over the links.
 */
import type { ServerResponse } from 'node:http';
import type { ClusterStatus } from './cluster-view.js';
import type { ControlReply, ControlRequest } from '../agent/control-socket.js';
import type { MemberStatusReport } from '../agent/status.js';
import type { ClusterConfig, ModuleConfig } from '../config/model.js';
import { parseDuration } from '../core/duration.js';
import type { ClusterEvents } from '../observe/cluster-events.js';
import type { ApiRole, Caller } from './auth.js';
import { serveConsoleFile } from './console-files.js';
import { streamEvents } from './event-stream.js';
import { ApiError, onlyFields, readJsonBody, sendJson } from './http.js';
import { OPENAPI_TEXT } from './openapi.js';

/** What the API needs of the member it runs in. */
export interface ApiBackend {
  readonly config: ClusterConfig;
  readonly member: string;
  health(module: string): { code: number; healthy: boolean; why: string };
  status(): MemberStatusReport;
  clusterStatus(timeoutMs: number): Promise<ClusterStatus>;
  readonly events: ClusterEvents;
  /** An operator's action (or a barrier), with the caller's name in `by`. */
  operate(request: ControlRequest): Promise<ControlReply>;
  metrics(): Promise<{ contentType: string; text: string }>;
}

export interface RouteContext {
  req: import('node:http').IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  caller: Caller | undefined;
  /** The caller's name as actions record it. */
  by: string;
  backend: ApiBackend;
  head: boolean;
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT';
  /** OpenAPI path template: `/v1/modules/{module}`. */
  path: string;
  operationId: string;
  /** `public`: no credentials needed. */
  role: ApiRole | 'public';
  /** Answers over plain HTTP too when the API is on HTTPS. */
  plain?: boolean;
  handle(ctx: RouteContext): Promise<void> | void;
}

const CLUSTER_TIMEOUT = 2000;

export const ROUTES: readonly Route[] = [
  {
    method: 'GET',
    path: '/health/{module}',
    operationId: 'getHealth',
    role: 'public',
    plain: true,
    handle({ res, params, backend, head }) {
      const h = backend.health(params.module!);
      sendJson(res, h.code, { module: params.module, healthy: h.healthy, why: h.why }, {}, head);
    },
  },
  {
    method: 'GET',
    path: '/',
    operationId: 'getConsole',
    role: 'public',
    handle({ req, res }) {
      if (!serveConsoleFile(req, res, 'index.html')) throw new ApiError(404, 'SKYHA_API_NO_CONSOLE', 'the console is not built here (npm run build makes it); the API is described at /v1/openapi.json');
    },
  },
  {
    method: 'GET',
    path: '/v1/openapi.json',
    operationId: 'getOpenApi',
    role: 'public',
    handle({ res, head }) {
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(OPENAPI_TEXT)), 'Cache-Control': 'no-cache' });
      res.end(head ? undefined : OPENAPI_TEXT);
    },
  },
  {
    method: 'GET',
    path: '/v1/session',
    operationId: 'getSession',
    role: 'monitor',
    handle({ res, caller, backend, head }) {
      sendJson(res, 200, { user: caller!.name, role: caller!.role, via: caller!.via, member: backend.member, cluster: backend.config.name }, {}, head);
    },
  },
  {
    method: 'GET',
    path: '/v1/status',
    operationId: 'getMemberStatus',
    role: 'monitor',
    handle({ res, backend, head }) {
      sendJson(res, 200, backend.status(), {}, head);
    },
  },
  {
    method: 'GET',
    path: '/v1/cluster',
    operationId: 'getCluster',
    role: 'monitor',
    async handle({ res, backend, head }) {
      sendJson(res, 200, summary(await backend.clusterStatus(CLUSTER_TIMEOUT)), {}, head);
    },
  },
  {
    method: 'GET',
    path: '/v1/members',
    operationId: 'listMembers',
    role: 'monitor',
    async handle({ res, backend, head }) {
      sendJson(res, 200, { members: (await backend.clusterStatus(CLUSTER_TIMEOUT)).members }, {}, head);
    },
  },
  {
    method: 'GET',
    path: '/v1/modules',
    operationId: 'listModules',
    role: 'monitor',
    async handle({ res, backend, head }) {
      sendJson(res, 200, { modules: (await backend.clusterStatus(CLUSTER_TIMEOUT)).modules }, {}, head);
    },
  },
  {
    method: 'GET',
    path: '/v1/modules/{module}',
    operationId: 'getModule',
    role: 'monitor',
    async handle({ res, params, backend, head }) {
      moduleOf(backend, params.module!);
      const m = (await backend.clusterStatus(CLUSTER_TIMEOUT)).modules.find((x) => x.name === params.module)!;
      sendJson(res, 200, m, {}, head);
    },
  },
  {
    method: 'GET',
    path: '/v1/events',
    operationId: 'listEvents',
    role: 'monitor',
    handle(ctx) {
      const { url, req, res, backend, head } = ctx;
      const filter = { ...(url.searchParams.get('module') ? { module: url.searchParams.get('module')! } : {}), ...(url.searchParams.get('member') ? { member: url.searchParams.get('member')! } : {}) };
      if (filter.module !== undefined) moduleOf(backend, filter.module);
      const after = intParam(url, 'after', 0);
      const limit = intParam(url, 'limit', 100);
      if (limit < 1 || limit > 2000) throw new ApiError(400, 'SKYHA_API_BAD_PARAMETER', `limit: expected 1 to 2000, found ${limit}`, 'limit');
      if (/\btext\/event-stream\b/.test(req.headers.accept ?? '')) {
        const resume = req.headers['last-event-id'];
        const from = typeof resume === 'string' && /^\d+$/.test(resume) ? Number(resume) : url.searchParams.has('after') ? after : undefined;
        streamEvents(req, res, backend.events, filter, from);
        return;
      }
      sendJson(res, 200, { events: backend.events.since(after, filter, limit) }, {}, head);
    },
  },
  {
    method: 'POST',
    path: '/v1/modules/{module}/switchover',
    operationId: 'switchoverModule',
    role: 'control',
    async handle({ req, res, params, backend, by }) {
      const mod = mirrorOf(backend, params.module!);
      const body = await readJsonBody(req);
      onlyFields(body, ['to']);
      const to = optionalNode(body, 'to', mod);
      await act(res, backend, { op: 'mirror', module: mod.name, command: 'switchover', ...(to ? { node: to } : {}), by });
    },
  },
  {
    method: 'POST',
    path: '/v1/modules/{module}/failover',
    operationId: 'failoverModule',
    role: 'control',
    async handle({ req, res, params, backend, by }) {
      const mod = mirrorOf(backend, params.module!);
      const body = await readJsonBody(req);
      onlyFields(body, ['to', 'force']);
      const to = optionalNode(body, 'to', mod);
      if (!to) throw new ApiError(400, 'SKYHA_API_MISSING_FIELD', 'to: expected the node to become primary', 'to');
      if (body.force !== true) throw new ApiError(400, 'SKYHA_API_FORCE_REQUIRED', `force: expected true — a failover to an in-sync node happens by itself; promoting ${to}, which may lack writes acknowledged by barriers, must be forced (data may be lost)`, 'force');
      await act(res, backend, { op: 'mirror', module: mod.name, command: 'force-failover', node: to, by });
    },
  },
  {
    method: 'POST',
    path: '/v1/modules/{module}/barrier',
    operationId: 'barrierModule',
    role: 'control',
    async handle({ req, res, params, backend }) {
      const mod = mirrorOf(backend, params.module!);
      const body = await readJsonBody(req);
      onlyFields(body, ['timeout']);
      let timeoutMs = 10_000;
      if (body.timeout !== undefined) {
        const t = typeof body.timeout === 'string' ? parseDuration(body.timeout) : undefined;
        if (t === undefined || t <= 0 || t > 600_000) throw new ApiError(400, 'SKYHA_API_BAD_FIELD', `timeout: expected a duration up to 10m such as "5s", found ${JSON.stringify(body.timeout)}`, 'timeout');
        timeoutMs = t;
      }
      const started = Date.now();
      const reply = await backend.operate({ op: 'barrier', module: mod.name, timeoutMs });
      if (!reply.ok) throw new ApiError(503, 'SKYHA_API_BARRIER_FAILED', reply.error);
      sendJson(res, 200, { module: mod.name, primary: reply.member, detail: reply.detail ?? '', tookMs: Date.now() - started });
    },
  },
  {
    method: 'PUT',
    path: '/v1/modules/{module}/nodes/{node}/admin',
    operationId: 'setNodeAdminState',
    role: 'control',
    async handle({ req, res, params, backend, by }) {
      const mod = moduleOf(backend, params.module!);
      if (mod.kind !== 'farm') throw new ApiError(409, 'SKYHA_API_NOT_A_FARM', `${mod.name} is a ${mod.kind} module: admin states (ready, drain, maint) are for farm modules`);
      const node = nodeOf(mod, params.node!);
      const body = await readJsonBody(req);
      onlyFields(body, ['state']);
      if (body.state !== 'ready' && body.state !== 'drain' && body.state !== 'maint') throw new ApiError(400, 'SKYHA_API_BAD_FIELD', `state: expected "ready", "drain" or "maint", found ${JSON.stringify(body.state)}`, 'state');
      await act(res, backend, { op: 'admin', module: mod.name, node, state: body.state, by });
    },
  },
  {
    method: 'POST',
    path: '/v1/modules/{module}/stop',
    operationId: 'stopModule',
    role: 'control',
    async handle({ req, res, params, backend, by }) {
      const mod = moduleOf(backend, params.module!);
      onlyFields(await readJsonBody(req), []);
      await act(res, backend, { op: 'module', module: mod.name, command: 'stop', by });
    },
  },
  {
    method: 'POST',
    path: '/v1/modules/{module}/start',
    operationId: 'startModule',
    role: 'control',
    async handle({ req, res, params, backend, by }) {
      const mod = moduleOf(backend, params.module!);
      onlyFields(await readJsonBody(req), []);
      await act(res, backend, { op: 'module', module: mod.name, command: 'start', by });
    },
  },
  {
    method: 'POST',
    path: '/v1/modules/{module}/nodes/{node}/restart',
    operationId: 'restartModuleOnNode',
    role: 'control',
    async handle({ req, res, params, backend, by }) {
      const mod = moduleOf(backend, params.module!);
      const node = nodeOf(mod, params.node!);
      onlyFields(await readJsonBody(req), []);
      await act(res, backend, { op: 'restart', module: mod.name, node, by });
    },
  },
  {
    method: 'GET',
    path: '/metrics',
    operationId: 'getMetrics',
    role: 'monitor',
    async handle({ res, backend, head }) {
      const m = await backend.metrics();
      res.writeHead(200, { 'Content-Type': m.contentType, 'Content-Length': String(Buffer.byteLength(m.text)), 'Cache-Control': 'no-store' });
      res.end(head ? undefined : m.text);
    },
  },
];

/** The merged cluster view without the raw per-member reports (they are at each member's /v1/status). */
function summary(s: ClusterStatus): Omit<ClusterStatus, 'reports'> {
  const { reports: _reports, ...rest } = s;
  return rest;
}

async function act(res: ServerResponse, backend: ApiBackend, request: ControlRequest): Promise<void> {
  const reply = await backend.operate(request);
  if (!reply.ok) throw new ApiError(409, 'SKYHA_API_REFUSED', reply.error);
  sendJson(res, 202, { accepted: true, member: reply.member, detail: reply.detail ?? '' });
}

function moduleOf(backend: ApiBackend, name: string): ModuleConfig {
  const mod = backend.config.modules.find((m) => m.name === name);
  if (!mod) throw new ApiError(404, 'SKYHA_API_UNKNOWN_MODULE', `no module named ${JSON.stringify(name)} in cluster ${backend.config.name} (${backend.config.modules.map((m) => m.name).join(', ') || 'none'})`);
  return mod;
}

function mirrorOf(backend: ApiBackend, name: string): ModuleConfig {
  const mod = moduleOf(backend, name);
  if (mod.kind !== 'mirror') throw new ApiError(409, 'SKYHA_API_NOT_A_MIRROR', `${name} is a farm module: switchover, failover and barrier are for mirror modules`);
  return mod;
}

function nodeOf(mod: ModuleConfig, node: string): string {
  if (!mod.nodes.includes(node)) throw new ApiError(404, 'SKYHA_API_UNKNOWN_NODE', `${JSON.stringify(node)} does not run ${mod.name} (${mod.nodes.join(', ')})`);
  return node;
}

function optionalNode(body: Record<string, unknown>, field: string, mod: ModuleConfig): string | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !mod.nodes.includes(v)) throw new ApiError(400, 'SKYHA_API_BAD_FIELD', `${field}: expected a node that runs ${mod.name} (${mod.nodes.join(', ')}), found ${JSON.stringify(v)}`, field);
  return v;
}

function intParam(url: URL, name: string, fallback: number): number {
  const v = url.searchParams.get(name);
  if (v === null) return fallback;
  if (!/^\d{1,9}$/.test(v)) throw new ApiError(400, 'SKYHA_API_BAD_PARAMETER', `${name}: expected a whole number, found ${JSON.stringify(v)}`, name);
  return Number(v);
}

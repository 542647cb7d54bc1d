/**
 * A caller of members' APIs: the CLI (`skyha status`, `switchover`, …) and an
 * agent gathering the cluster's view for its own API. HTTPS checks that the
 * answering certificate is signed by the cluster CA and names the member
 * asked (its CN), as the links do. Credentials: a bearer token, or a client
 * certificate — the CLI on a node uses its node's (see `localCredentials`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import type { ClusterConfig, MemberConfig } from '../config/model.js';

export interface ApiCredentials {
  token?: string;
  /** A client certificate and key (PEM) signed by the cluster CA. */
  cert?: Buffer;
  key?: Buffer;
  /** Whose certificate it is, for messages. */
  as?: string;
  /** The person acting, sent as X-Skyha-Actor (recorded in events when acting with a member's certificate). */
  actor?: string;
}

export interface ApiAnswer<T = unknown> {
  status: number;
  body: T;
}

export class ApiRequestError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export class ApiClient {
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly ca: Buffer | undefined;

  constructor(
    config: ClusterConfig,
    private readonly credentials: ApiCredentials,
  ) {
    if (config.api.tls) {
      this.ca = readFileSync(config.tls.ca);
      this.agent = new HttpsAgent({ keepAlive: true, maxSockets: 4 });
    } else {
      this.agent = new HttpAgent({ keepAlive: true, maxSockets: 4 });
    }
  }

  /** A JSON request to `member`'s API; rejects on a network failure or timeout, resolves with any HTTP status. */
  request<T = unknown>(member: MemberConfig, method: string, path: string, body: unknown, timeoutMs: number): Promise<ApiAnswer<T>> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (text !== undefined) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) });
    if (this.credentials.token) headers.Authorization = `Bearer ${this.credentials.token}`;
    if (this.credentials.actor) headers['X-Skyha-Actor'] = this.credentials.actor;
    const common = { host: member.address, port: member.apiPort, method, path, headers, agent: this.agent, timeout: timeoutMs };
    return new Promise((resolve, reject) => {
      const req = this.ca
        ? httpsRequest({
            ...common,
            ca: this.ca,
            ...(this.credentials.cert && this.credentials.key ? { cert: this.credentials.cert, key: this.credentials.key } : {}),
            servername: member.name,
            checkServerIdentity: (_host: string, cert: PeerCertificate) => (cert.subject?.CN === member.name ? undefined : new Error(`the API at ${member.address}:${member.apiPort} answered as ${JSON.stringify(cert.subject?.CN)}, not ${member.name}`)),
          })
        : httpRequest(common);
      const timer = setTimeout(() => req.destroy(new ApiRequestError(`no answer within ${timeoutMs} ms`, 'TIMEOUT')), timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(err instanceof ApiRequestError ? err : new ApiRequestError(err.code ?? err.message, err.code ?? 'ERROR'));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => undefined);
        res.on('end', () => {
          clearTimeout(timer);
          const raw = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = raw;
          try {
            parsed = raw ? JSON.parse(raw) : undefined;
          } catch {
            // Not JSON (a proxy's error page): the caller sees the text.
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
      });
      req.end(text);
    });
  }

  /** Opens a Server-Sent Events stream (`GET path`, Accept: text/event-stream) and calls `onEvent` with each event's data; resolves when it ends. */
  stream(member: MemberConfig, path: string, onEvent: (data: string, id?: string) => void, options: { lastEventId?: string; connectTimeoutMs?: number; signal?: AbortSignal } = {}): Promise<{ status: number; body?: string }> {
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    if (this.credentials.token) headers.Authorization = `Bearer ${this.credentials.token}`;
    if (options.lastEventId) headers['Last-Event-ID'] = options.lastEventId;
    const common = { host: member.address, port: member.apiPort, method: 'GET', path, headers, ...(options.signal ? { signal: options.signal } : {}) };
    return new Promise((resolve, reject) => {
      const req = this.ca
        ? httpsRequest({ ...common, ca: this.ca, ...(this.credentials.cert && this.credentials.key ? { cert: this.credentials.cert, key: this.credentials.key } : {}), servername: member.name, checkServerIdentity: (_h: string, cert: PeerCertificate) => (cert.subject?.CN === member.name ? undefined : new Error(`answered as ${JSON.stringify(cert.subject?.CN)}, not ${member.name}`)) })
        : httpRequest(common);
      const timer = setTimeout(() => req.destroy(new ApiRequestError(`no answer within ${options.connectTimeoutMs ?? 5000} ms`, 'TIMEOUT')), options.connectTimeoutMs ?? 5000);
      req.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (options.signal?.aborted) return resolve({ status: 200 });
        reject(err instanceof ApiRequestError ? err : new ApiRequestError(err.code ?? err.message, err.code ?? 'ERROR'));
      });
      req.on('response', (res) => {
        clearTimeout(timer);
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          return;
        }
        res.setEncoding('utf8');
        let buffered = '';
        res.on('data', (chunk: string) => {
          buffered += chunk;
          let end: number;
          while ((end = buffered.indexOf('\n\n')) >= 0) {
            const block = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            let data = '';
            let id: string | undefined;
            for (const line of block.split('\n')) {
              if (line.startsWith('data: ')) data += line.slice(6);
              else if (line.startsWith('id: ')) id = line.slice(4);
            }
            if (data) onEvent(data, id);
          }
        });
        res.on('end', () => resolve({ status: 200 }));
        res.on('error', () => resolve({ status: 200 }));
      });
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * The credentials a CLI run uses: `--token` or `SKYHA_TOKEN`, else the
 * certificate of a member whose key this user can read (the CLI on a node
 * acts with its node's identity, as its own agent would), preferring `prefer`.
 */
export function localCredentials(config: ClusterConfig, token?: string, prefer?: string): ApiCredentials {
  const t = token ?? process.env.SKYHA_TOKEN;
  if (t) return { token: t };
  const members = [...config.nodes, ...config.witnesses].sort((a, b) => Number(b.name === prefer) - Number(a.name === prefer));
  for (const m of members) {
    try {
      if (!existsSync(m.tls.key)) continue;
      return { cert: readFileSync(m.tls.cert), key: readFileSync(m.tls.key), as: m.name };
    } catch {
      // Not readable by this user: try the next.
    }
  }
  return {};
}

/** An error message for an API answer that is not a success. */
export function answerError(member: string, answer: ApiAnswer): string {
  const b = answer.body as { error?: { code?: string; message?: string } } | string | undefined;
  if (b && typeof b === 'object' && b.error?.message) return `${member} answered ${answer.status}: ${b.error.message}${b.error.code ? ` (${b.error.code})` : ''}`;
  return `${member} answered HTTP ${answer.status}`;
}

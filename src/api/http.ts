/**
 * The small HTTP vocabulary of the API: a typed error that becomes a JSON
 * answer with a reason code (and the field at fault), a bounded JSON body
 * reader, and the writer of JSON answers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

const MAX_BODY = 64 * 1024;

/** The request's JSON object body; `{}` when there is none. */
export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new ApiError(413, 'SKYHA_API_BODY_TOO_LARGE', `expected a body of at most ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return {};
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new ApiError(415, 'SKYHA_API_BAD_CONTENT_TYPE', `expected Content-Type: application/json, found ${JSON.stringify(type)}`);
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new ApiError(400, 'SKYHA_API_BAD_JSON', `expected a JSON object: ${(err as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'SKYHA_API_BAD_JSON', 'expected a JSON object');
  return body as Record<string, unknown>;
}

/** Checks that `body` has no key outside `allowed` (a misspelt field is an error, not a silent default). */
export function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw new ApiError(400, 'SKYHA_API_UNKNOWN_FIELD', `unknown field ${JSON.stringify(key)}; expected ${allowed.length ? allowed.map((a) => JSON.stringify(a)).join(', ') : 'no body'}`, key);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, head = false): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)), 'Cache-Control': 'no-store', ...headers });
  res.end(head ? undefined : text);
}

export function sendError(res: ServerResponse, err: ApiError, head = false): void {
  const body: ErrorBody = { error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } };
  sendJson(res, err.status, body, err.headers, head);
}

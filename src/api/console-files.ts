/**
 * The web console's files, served by every member: `GET /` (the page) and
 * `GET /console/NAME` (its script and style sheet), bundled at build time
 * into dist/console by scripts/build-console.mjs from src/console/. They are
 * public: the page holds no data, it signs in with a token and calls the API.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

const DIR = new URL('../../console/', import.meta.url);
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', svg: 'image/svg+xml', map: 'application/json' };

interface File {
  body: Buffer;
  type: string;
  etag: string;
}

let files: Map<string, File> | undefined;

function load(): Map<string, File> {
  if (files) return files;
  files = new Map();
  for (const name of ['index.html', 'app.js', 'style.css']) {
    const url = new URL(name, DIR);
    if (!existsSync(url)) continue;
    const body = readFileSync(url);
    files.set(name, { body, type: TYPES[name.split('.').pop()!]!, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` });
  }
  return files;
}

/** Serves `name` (index.html for `/`); false when there is no such file. */
export function serveConsoleFile(req: IncomingMessage, res: ServerResponse, name: string): boolean {
  const f = load().get(name);
  if (!f) return false;
  const headers = {
    'Content-Type': f.type,
    ETag: f.etag,
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    ...(name === 'index.html' ? { 'Content-Security-Policy': "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'", 'X-Frame-Options': 'DENY', 'Referrer-Policy': 'no-referrer' } : {}),
  };
  if (req.headers['if-none-match'] === f.etag) {
    res.writeHead(304, headers).end();
    return true;
  }
  res.writeHead(200, { ...headers, 'Content-Length': String(f.body.length) });
  res.end(req.method === 'HEAD' ? undefined : f.body);
  return true;
}

/** The console's asset for a request path under /console/, or undefined. */
export function consoleAsset(pathname: string): string | undefined {
  const m = /^\/console\/([a-z]+\.(?:js|css))$/.exec(pathname);
  return m?.[1];
}

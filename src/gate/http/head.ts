/**
 * HTTP/1.1 message heads as a reverse proxy needs them: the framing of the
 * body (RFC 9112 §6), whether the connection persists, and the head to
 * forward with hop-by-hop headers removed and the forwarding headers added.
 *
 * Why not node:http or undici: measured on the 2-core CI machine, a
 * node:http server forwarding through an undici pool reached 0.25× HAProxy's
 * throughput, a proxy that frames messages itself on plain sockets 0.6×
 * (docs/benchmarks.md). The gate forwards bodies byte for byte and only needs
 * the few headers that decide framing and routing, so it parses those and
 * passes everything else through untouched.
 *
 * Strict where leniency lets two parsers disagree about where a message ends
 * (request smuggling): both Content-Length and Transfer-Encoding, differing
 * Content-Lengths, a Transfer-Encoding other than a final `chunked`, folded
 * lines, bare CR or LF, and bytes outside the token grammar in names are all
 * refused with 400 before anything reaches a backend.
 */

export const MAX_HEAD_BYTES = 16 * 1024;

export class HeadError extends Error {
  constructor(
    readonly status: 400 | 431 | 501 | 502,
    message: string,
  ) {
    super(message);
  }
}

export type Framing =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' }
  /** Response only: the body runs until the backend closes the connection. */
  | { readonly kind: 'close' };

const NONE: Framing = { kind: 'none' };
const CHUNKED: Framing = { kind: 'chunked' };
const UNTIL_CLOSE: Framing = { kind: 'close' };

export interface RequestHead {
  readonly method: string;
  readonly target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minor: number;
  readonly framing: Framing;
  /** The client wants the connection kept after this exchange. */
  readonly keepAlive: boolean;
  /** `Connection: upgrade` with an `Upgrade` header (websockets and the like). */
  readonly upgrade: boolean;
  readonly expectContinue: boolean;
  readonly host: string | undefined;
  /** The raw `Cookie` header values, joined with `; `. */
  readonly cookie: string | undefined;
  /** The request carries the header the config names as the mark of an idempotent request. */
  readonly marked: boolean;
  /** Header lines to forward (each ending in CRLF), hop-by-hop and forwarding headers removed. */
  readonly forwardLines: string;
  readonly xForwardedFor: string | undefined;
  readonly forwarded: string | undefined;
}

export interface ResponseHead {
  readonly status: number;
  readonly minor: number;
  readonly reasonPhrase: string;
  readonly framing: Framing;
  /** The backend keeps the connection open after this response. */
  readonly keepAlive: boolean;
  /** Header lines to forward to the client (each ending in CRLF), hop-by-hop removed (kept for 101). */
  readonly forwardLines: string;
  /**
   * The head as the backend sent it may go to an HTTP/1.1 client unchanged:
   * HTTP/1.1, and no hop-by-hop header but `Connection: keep-alive` (which
   * says to the client what the gate does anyway). Saves rebuilding it.
   */
  readonly verbatim: boolean;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, obs-text, space and tab. No CR, LF or NUL.
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
// Transfer-Encoding and Content-Length are not here: bodies pass through byte for byte, framing included.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade']);

interface RawHeaders {
  /** Lines after the start line, without CRLF. */
  readonly lines: string[];
  contentLength: number;
  chunked: boolean;
  hasTransferEncoding: boolean;
  connectionTokens: string[];
  upgradeHeader: boolean;
}

/**
 * Parses the request head in `buf[0, end)` (`end` is the index of the blank
 * line's CRLF CRLF). `markHeader` (lower case) is the config's idempotent header.
 */
export function parseRequestHead(buf: Buffer, end: number, markHeader?: string): RequestHead {
  if (end > MAX_HEAD_BYTES) throw new HeadError(431, `request head of ${end} bytes exceeds ${MAX_HEAD_BYTES}`);
  const text = buf.toString('latin1', 0, end);
  const lineEnd = text.indexOf('\r\n');
  const startLine = lineEnd < 0 ? text : text.slice(0, lineEnd);
  const sp1 = startLine.indexOf(' ');
  const sp2 = startLine.lastIndexOf(' ');
  if (sp1 <= 0 || sp2 === sp1) throw new HeadError(400, 'malformed request line');
  const method = startLine.slice(0, sp1);
  const target = startLine.slice(sp1 + 1, sp2);
  const version = startLine.slice(sp2 + 1);
  if (!TOKEN.test(method)) throw new HeadError(400, 'malformed method');
  if (target.length === 0 || target.includes(' ') || BAD_VALUE.test(target)) throw new HeadError(400, 'malformed request target');
  const minor = versionMinor(version);
  if (minor < 0) throw new HeadError(version.startsWith('HTTP/') ? 501 : 400, `unsupported protocol version ${JSON.stringify(version.slice(0, 16))}`);

  let host: string | undefined;
  let cookie: string | undefined;
  let xff: string | undefined;
  let forwarded: string | undefined;
  let expectContinue = false;
  let marked = false;
  const raw: RawHeaders = { lines: [], contentLength: -1, chunked: false, hasTransferEncoding: false, connectionTokens: [], upgradeHeader: false };
  let forwardLines = '';
  splitLines(text, lineEnd, raw);
  for (const line of raw.lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = trimOws(line.slice(colon + 1));
    if (framingHeader(name, value, raw, 'request')) {
      forwardLines += line + '\r\n';
      continue;
    }
    switch (name) {
      case 'host':
        if (host !== undefined) throw new HeadError(400, 'more than one Host header');
        host = value;
        break;
      case 'cookie':
        cookie = cookie === undefined ? value : `${cookie}; ${value}`;
        break;
      case 'x-forwarded-for':
        xff = xff === undefined ? value : `${xff}, ${value}`;
        continue;
      case 'forwarded':
        forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
        continue;
      case 'x-forwarded-proto':
        // The gate says how the client reached it; a client's own claim is not passed on.
        continue;
      case 'expect':
        if (value.toLowerCase() === '100-continue') expectContinue = true;
        break;
      case 'connection':
      case 'keep-alive':
      case 'proxy-connection':
      case 'te':
        continue;
      case 'upgrade':
        raw.upgradeHeader = true;
        continue;
    }
    if (markHeader !== undefined && name === markHeader) marked = true;
    forwardLines += line + '\r\n';
  }
  if (minor === 1 && host === undefined) throw new HeadError(400, 'HTTP/1.1 request without Host');
  if (raw.hasTransferEncoding && minor === 0) throw new HeadError(400, 'Transfer-Encoding in an HTTP/1.0 request');
  if (raw.hasTransferEncoding && !raw.chunked) throw new HeadError(400, 'Transfer-Encoding whose final coding is not chunked');
  if (raw.chunked && raw.contentLength >= 0) throw new HeadError(400, 'both Content-Length and Transfer-Encoding');

  const tokens = raw.connectionTokens;
  const keepAlive = minor === 1 ? !tokens.includes('close') : tokens.includes('keep-alive');
  const upgrade = raw.upgradeHeader && tokens.includes('upgrade') && minor === 1;
  if (upgrade) {
    forwardLines += 'Connection: upgrade\r\n';
    for (const line of raw.lines) if (line.slice(0, 8).toLowerCase() === 'upgrade:') forwardLines += line + '\r\n';
  }
  forwardLines = dropNamedByConnection(forwardLines, tokens);
  const framing: Framing = raw.chunked ? CHUNKED : raw.contentLength > 0 ? { kind: 'length', length: raw.contentLength } : NONE;
  return { method, target, minor, framing, keepAlive, upgrade, expectContinue, host, cookie, marked, forwardLines, xForwardedFor: xff, forwarded };
}

/**
 * Parses a response head. `requestMethod` decides whether a body follows
 * (HEAD never has one, nor 1xx, 204 and 304).
 */
export function parseResponseHead(buf: Buffer, end: number, requestMethod: string): ResponseHead {
  if (end > MAX_HEAD_BYTES) throw new HeadError(502, `response head of ${end} bytes exceeds ${MAX_HEAD_BYTES}`);
  const text = buf.toString('latin1', 0, end);
  const lineEnd = text.indexOf('\r\n');
  const startLine = lineEnd < 0 ? text : text.slice(0, lineEnd);
  // HTTP/1.1 200 OK — the reason phrase may be empty or missing.
  const minor = versionMinor(startLine.slice(0, 8));
  const status = startLine.charCodeAt(8) === 32 ? parseStatus(startLine.slice(9, 12)) : -1;
  if (minor < 0 || status < 0 || (startLine.length > 12 && startLine.charCodeAt(12) !== 32)) throw new HeadError(502, 'malformed status line from the backend');
  const reasonPhrase = startLine.length > 13 ? startLine.slice(13) : '';

  const raw: RawHeaders = { lines: [], contentLength: -1, chunked: false, hasTransferEncoding: false, connectionTokens: [], upgradeHeader: false };
  splitLines(text, lineEnd, raw, 502);
  let forwardLines = '';
  let dropped = 0;
  const switching = status === 101;
  for (const line of raw.lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = trimOws(line.slice(colon + 1));
    if (framingHeader(name, value, raw, 'response')) {
      forwardLines += line + '\r\n';
      continue;
    }
    if (name === 'upgrade') raw.upgradeHeader = true;
    if (!switching && HOP_BY_HOP.has(name)) {
      if (name !== 'connection') dropped++;
      continue;
    }
    if (switching && name !== 'upgrade' && name !== 'connection' && HOP_BY_HOP.has(name)) continue;
    forwardLines += line + '\r\n';
  }
  if (raw.hasTransferEncoding && !raw.chunked) throw new HeadError(502, 'backend response with a Transfer-Encoding other than chunked');
  const tokens = raw.connectionTokens;
  const noBody = requestMethod === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304;
  let framing: Framing;
  if (noBody) framing = NONE;
  // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3); the Content-Length line is dropped below.
  else if (raw.chunked) framing = CHUNKED;
  else if (raw.contentLength >= 0) framing = raw.contentLength === 0 ? NONE : { kind: 'length', length: raw.contentLength };
  else framing = UNTIL_CLOSE;
  if (raw.chunked && raw.contentLength >= 0) forwardLines = forwardLines.replace(/^content-length:[^\r]*\r\n/gim, '');
  const keepAlive = framing.kind !== 'close' && (minor === 1 ? !tokens.includes('close') : tokens.includes('keep-alive'));
  if (!switching) forwardLines = dropNamedByConnection(forwardLines, tokens);
  const verbatim = minor === 1 && !switching && dropped === 0 && tokens.every((t) => t === 'keep-alive') && !(raw.chunked && raw.contentLength >= 0);
  return { status, minor, reasonPhrase, framing, keepAlive, forwardLines, verbatim };
}

function versionMinor(version: string): number {
  if (version === 'HTTP/1.1') return 1;
  if (version === 'HTTP/1.0') return 0;
  return -1;
}

function parseStatus(s: string): number {
  if (s.length !== 3) return -1;
  const n = Number(s);
  return Number.isInteger(n) && n >= 100 && n <= 999 && /^[0-9]{3}$/.test(s) ? n : -1;
}

function splitLines(text: string, firstEnd: number, raw: RawHeaders, status: 400 | 502 = 400): void {
  if (firstEnd < 0) return;
  let at = firstEnd + 2;
  while (at < text.length) {
    let next = text.indexOf('\r\n', at);
    if (next < 0) next = text.length;
    const line = text.slice(at, next);
    at = next + 2;
    if (line.length === 0) continue;
    const first = line.charCodeAt(0);
    if (first === 32 || first === 9) throw new HeadError(status as 400, 'folded header line (obs-fold)');
    const colon = line.indexOf(':');
    if (colon <= 0 || !TOKEN.test(line.slice(0, colon))) throw new HeadError(status as 400, `malformed header line ${JSON.stringify(line.slice(0, 40))}`);
    if (BAD_VALUE.test(line)) throw new HeadError(status as 400, `control character in header ${line.slice(0, colon)}`);
    raw.lines.push(line);
  }
}

/** Records the headers that decide framing and persistence; true when the line is one of them and is to be forwarded as is. */
function framingHeader(name: string, value: string, raw: RawHeaders, side: 'request' | 'response'): boolean {
  const status = side === 'request' ? 400 : 502;
  switch (name) {
    case 'content-length': {
      // "5, 5" from a list-folding intermediary is the same length; anything else is ambiguous.
      for (const part of value.split(',')) {
        const v = part.trim();
        if (!/^[0-9]{1,15}$/.test(v)) throw new HeadError(status as 400, `bad Content-Length ${JSON.stringify(value.slice(0, 20))}`);
        const n = Number(v);
        if (raw.contentLength >= 0 && raw.contentLength !== n) throw new HeadError(status as 400, 'conflicting Content-Length values');
        raw.contentLength = n;
      }
      return true;
    }
    case 'transfer-encoding': {
      raw.hasTransferEncoding = true;
      const codings = value.toLowerCase().split(',').map((c) => c.trim()).filter((c) => c.length > 0);
      // Only a final `chunked` says where the body ends; `chunked` twice is a smuggling trick.
      raw.chunked = codings.length > 0 && codings[codings.length - 1] === 'chunked' && codings.indexOf('chunked') === codings.length - 1;
      return true;
    }
    case 'connection':
      for (const t of value.toLowerCase().split(',')) {
        const token = t.trim();
        if (token.length > 0) raw.connectionTokens.push(token);
      }
      return false;
    default:
      return false;
  }
}

/** Removes the headers that the Connection header declares hop-by-hop. */
function dropNamedByConnection(lines: string, tokens: readonly string[]): string {
  let out = lines;
  for (const t of tokens) {
    if (t === 'close' || t === 'keep-alive' || t === 'upgrade') continue;
    if (!TOKEN.test(t) || t === 'content-length' || t === 'transfer-encoding' || t === 'host') continue;
    out = out
      .split('\r\n')
      .filter((l) => l.length === 0 || l.slice(0, t.length + 1).toLowerCase() !== `${t}:`)
      .join('\r\n');
  }
  return out;
}

function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** The value of cookie `name` in a Cookie header, if present. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  let at = 0;
  while (at < header.length) {
    let end = header.indexOf(';', at);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', at);
    if (eq > 0 && eq < end && header.slice(at, eq).trim() === name) return header.slice(eq + 1, end).trim();
    at = end + 1;
  }
  return undefined;
}

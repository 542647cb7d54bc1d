/**
 * Answers the gate gives itself when it cannot forward a request. Short
 * plain-text bodies that say why, so that an operator reading a client's log
 * knows whether the gate or the application answered.
 */
import { STATUS_CODES } from 'node:http';

export function errorReply(status: number, why: string, keepAlive: boolean, extraHeaders = ''): string {
  const body = `skyha gate: ${status} ${STATUS_CODES[status] ?? ''}: ${why}\n`;
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    extraHeaders +
    (keepAlive ? '' : 'Connection: close\r\n') +
    '\r\n' +
    body
  );
}

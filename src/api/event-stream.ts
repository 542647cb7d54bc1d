/**
 * `GET /v1/events` as Server-Sent Events: each cluster event as it arrives,
 * with its local id, so that a client that reconnects (`Last-Event-ID`, which
 * browsers send by themselves) gets what it missed while the ring still holds
 * it. A comment line every 15 s keeps proxies from closing an idle stream; a
 * client that does not read is cut off rather than buffered without bound.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { matches, type ClusterEvent, type ClusterEvents, type EventFilter } from '../observe/cluster-events.js';

const KEEPALIVE_MS = 15_000;
const MAX_BUFFERED = 1024 * 1024;

export function streamEvents(req: IncomingMessage, res: ServerResponse, events: ClusterEvents, filter: EventFilter, after: number | undefined): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
  res.write('retry: 2000\n\n');
  const send = (e: ClusterEvent): void => {
    if (!matches(e, filter)) return;
    res.write(`id: ${e.id}\nevent: skyha\ndata: ${JSON.stringify(e)}\n\n`);
    if (res.writableLength > MAX_BUFFERED) res.destroy();
  };
  if (after !== undefined) for (const e of events.since(after, filter, 2000)) send(e);
  const unsubscribe = events.subscribe(send);
  const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
  keepalive.unref();
  const end = (): void => {
    clearInterval(keepalive);
    unsubscribe();
  };
  req.on('close', end);
  res.on('close', end);
}

/**
 * The demo's farm application: a small HTTP service that runs on every node
 * behind the gate. Each answer says which node served it, so that a user who
 * reloads the gate's address watches the traffic move when a node goes away.
 *
 *   GET /        {"node", "served", "uptimeS"} (JSON) or a line of text for curl
 *   GET /health  200 "ok"
 *
 * Listens on the node's address (SKYHA_NODE_ADDRESS) and WEB_PORT.
 */
import { createServer } from 'node:http';

const node = process.env.SKYHA_NODE ?? 'unknown';
const host = process.env.SKYHA_NODE_ADDRESS ?? '127.0.0.1';
const port = Number(process.env.WEB_PORT ?? 8081);
const started = Date.now();
let served = 0;

const server = createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
    return;
  }
  served++;
  const body = { node, served, uptimeS: Math.round((Date.now() - started) / 1000) };
  if (/json/.test(req.headers.accept ?? '')) res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body) + '\n');
  else res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`hello from ${node} (request ${served} here)\n`);
});
server.listen(port, host);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
  });
}

/**
 * haproxy.cfg for one farm module, as a pure function of the gate's options
 * and the backends' states: HAProxy does the forwarding, skyha decides. The
 * rendered file holds only what is fixed for the life of one HAProxy process
 * (listener, timeouts, balancing, retries, the forwarding headers, the set of
 * servers); every later change of a backend's health, admin state, weight or
 * address goes through the runtime API (haproxy-gate.ts), never a reload.
 *
 * The choices, and where they come from (HAProxy 2.6 configuration manual):
 * - One `listen` section named after the module: the runtime API then says
 *   `<module>/<node>`, and logs and stats carry the names operators know.
 * - No health checks (`check`): the cluster decides health. A server without
 *   checks still obeys `set server <m>/<n> health up|down`, and HAProxy's own
 *   checks would only fight the cluster's word.
 * - A server that should not take traffic when the process starts is
 *   rendered `disabled` (maintenance); the gate moves it to its state once
 *   the runtime socket answers, so no request reaches it in between.
 * - Retries (HTTP): `retry-on conn-failure empty-response` with `retries 3`
 *   and `option redispatch 1` (every retry goes to another server than the
 *   last), and `http-request disable-l7-retry` for requests that are neither
 *   idempotent by method nor marked by the idempotent header. HAProxy never
 *   retries once a response byte went to the client, and a request whose
 *   body does not fit in one buffer (16 KiB) is never retried beyond a
 *   connection failure. A response timeout is not retried (as in the
 *   built-in gate: the backend may still be working on it).
 * - Cookie affinity: `cookie NAME insert indirect nocache` and `cookie
 *   <node>` per server. HAProxy keeps sending a cookie's holder to a drained
 *   server or one of weight 0; the built-in gate does not. So the gate
 *   applies `drain` as weight 0 as well, and a `replace-header` rule per
 *   server turns the cookie of a server of weight 0 into an unknown value:
 *   HAProxy then balances the request and sets a new cookie, as the
 *   built-in gate does.
 * - `balance source` with `hash-type consistent`: a client stays on its
 *   node, and a retry can avoid the server that failed (map-based hashing
 *   cannot).
 */
import { isIP } from 'node:net';
import { SkyhaError } from '../../core/errors.js';
import { defaultCookieName, type BackendState } from '../backend.js';
import type { BalanceKind } from '../balancer.js';

export interface HaproxyGateOptions {
  module: string;
  bind: string;
  /** The public port; 0 picks a free one at start (tests). */
  port: number;
  mode: 'http' | 'tcp';
  balance: BalanceKind;
  /** The backends known before start; update() may replace them until then. Servers cannot be added once HAProxy runs. */
  backends?: readonly BackendState[];
  connectTimeout: number;
  /** Time to the response's head, ms. HAProxy has only `timeout server`, an inactivity timeout on the server side: it also ends a response body that stalls this long. */
  responseTimeout: number;
  maxConnections: number;
  /** Requests carrying this header may be retried whatever their method. */
  idempotentHeader?: string;
  /** Latency ejection bound, ms (HTTP mode): see haproxy-gate.ts for how HAProxy's numbers are used. */
  slowP99?: number;
  tls?: { cert: string; key: string };
  /** Default `SKYHA_<MODULE>`: letters, digits and `_` only. */
  cookieName?: string;
  /** The runtime API socket; default `<runDir>/haproxy-<module>.sock`. */
  socketPath?: string;
}

export interface HaproxyConfigInput extends Omit<HaproxyGateOptions, 'backends' | 'tls' | 'socketPath' | 'slowP99'> {
  port: number;
  backends: readonly BackendState[];
  socketPath: string;
  /** The certificate and its key in one PEM file (HAProxy 2.6's `crt` takes both from one file). */
  tlsPem?: string;
  /** Log one line per request to stdout (`skyha-sample <node> <Tr>`), for the latency judgement. */
  samples?: boolean;
}

/** Client connections idle this long between requests are closed (as the built-in gate's client idle timeout). */
export const CLIENT_IDLE_TIMEOUT = 60_000;
/** A tunnel (TCP mode, or an HTTP upgrade) idle both ways this long is closed; the built-in gate has no such limit. */
export const TUNNEL_TIMEOUT = 3_600_000;
/** First try plus retries, as the built-in gate's MAX_ATTEMPTS. */
export const RETRIES = 3;
/** Methods whose requests may be sent twice (RFC 9110 9.2.2), as the built-in gate has them. */
export const IDEMPOTENT_METHODS = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'] as const;
/** Where the runtime socket must stay below: sun_path is 108 bytes with its NUL. */
export const MAX_SOCKET_PATH = 107;
export const SAMPLE_PREFIX = 'skyha-sample ';

/** HAProxy's rule for proxy and server names (and what the runtime API can address). */
const HAPROXY_NAME = /^[A-Za-z0-9_.:-]+$/;
/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A cookie name that needs no quoting anywhere. */
const COOKIE_NAME = /^[A-Za-z0-9_]+$/;

export { defaultCookieName } from '../backend.js';

/** What HAProxy's address syntax needs: the family made explicit for literals (an IPv6 literal has colons of its own). */
export function serverAddress(host: string, port: number): string {
  const family = isIP(host);
  if (family === 4) return `ipv4@${host}:${port}`;
  if (family === 6) return `ipv6@${host}:${port}`;
  return `${host}:${port}`;
}

/** The weight HAProxy is given: a drained server gets 0 too, so that affinity cookies leave it (see above). */
export function haproxyWeight(b: Pick<BackendState, 'admin' | 'weight'>): number {
  return b.admin === 'drain' ? 0 : b.weight;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new SkyhaError('SKYHA_ERR_HAPROXY', `cannot render haproxy.cfg: ${what}`);
}

function ms(n: number): string {
  return `${Math.max(1, Math.round(n))}ms`;
}

/** The text of haproxy.cfg. Throws SkyhaError SKYHA_ERR_HAPROXY on a value HAProxy could not take. */
export function renderHaproxyConfig(o: HaproxyConfigInput): string {
  const http = o.mode === 'http';
  const cookieName = o.cookieName ?? defaultCookieName(o.module);
  check(HAPROXY_NAME.test(o.module), `module name ${JSON.stringify(o.module)} has characters HAProxy does not allow in a proxy name`);
  check(Number.isInteger(o.port) && o.port > 0 && o.port < 65536, `port ${o.port} is not a TCP port`);
  check(o.socketPath.length <= MAX_SOCKET_PATH && !/\s/.test(o.socketPath), `socket path ${JSON.stringify(o.socketPath)} is longer than ${MAX_SOCKET_PATH} bytes or has white space`);
  check(Number.isInteger(o.maxConnections) && o.maxConnections > 0, `max_connections ${o.maxConnections} is not a positive integer`);
  check(o.idempotentHeader === undefined || HEADER_NAME.test(o.idempotentHeader), `idempotent header ${JSON.stringify(o.idempotentHeader)} is not a header name`);
  check(COOKIE_NAME.test(cookieName), `cookie name ${JSON.stringify(cookieName)} may hold letters, digits and _ only`);
  check(o.tlsPem === undefined || !/\s/.test(o.tlsPem), `TLS file path ${JSON.stringify(o.tlsPem)} has white space`);
  const seen = new Set<string>();
  for (const b of o.backends) {
    check(HAPROXY_NAME.test(b.node), `node name ${JSON.stringify(b.node)} has characters HAProxy does not allow in a server name`);
    check(!seen.has(b.node), `node ${b.node} is listed twice`);
    seen.add(b.node);
    check(/^[A-Za-z0-9_.:-]+$/.test(b.host), `address ${JSON.stringify(b.host)} of ${b.node} is not a host name or IP address`);
    check(Number.isInteger(b.port) && b.port > 0 && b.port < 65536, `port ${b.port} of ${b.node} is not a TCP port`);
    check(Number.isInteger(b.weight) && b.weight >= 0 && b.weight <= 256, `weight ${b.weight} of ${b.node} is not in 0..256`);
  }

  const lines: string[] = [];
  const out = (s = ''): void => {
    lines.push(s);
  };
  out(`# haproxy.cfg of the skyha gate for farm module ${o.module}.`);
  out('# Written by skyha at every start of HAProxy; state changes go through the runtime API. Do not edit.');
  out('global');
  // Room above the module's limit for the runtime API's own connections.
  out(`  maxconn ${o.maxConnections + 32}`);
  out(`  stats socket ${o.socketPath} mode 600 level admin`);
  out('  stats timeout 10s');
  if (o.samples && http) out('  log stdout format raw daemon');
  if (o.tlsPem) out('  ssl-default-bind-options ssl-min-ver TLSv1.2');
  out();
  out('defaults');
  out(`  mode ${o.mode}`);
  out(`  timeout connect ${ms(o.connectTimeout)}`);
  out(`  timeout server ${ms(o.responseTimeout)}`);
  out(`  timeout client ${ms(CLIENT_IDLE_TIMEOUT)}`);
  out(`  timeout tunnel ${ms(TUNNEL_TIMEOUT)}`);
  if (http) {
    out(`  timeout http-request ${ms(CLIENT_IDLE_TIMEOUT)}`);
    out(`  timeout http-keep-alive ${ms(CLIENT_IDLE_TIMEOUT)}`);
  }
  out(`  timeout queue ${ms(o.connectTimeout)}`);
  out();
  out(`listen ${o.module}`);
  out(`  bind ${serverAddress(o.bind, o.port)}${o.tlsPem ? ` ssl crt ${o.tlsPem}` : ''}`);
  out(`  maxconn ${o.maxConnections}`);
  switch (o.balance) {
    case 'round_robin':
      out('  balance roundrobin');
      break;
    case 'least_connections':
      out('  balance leastconn');
      break;
    case 'client_address':
      out('  balance source');
      out('  hash-type consistent');
      break;
    case 'cookie':
      // In TCP mode there is no cookie: round robin, as the built-in gate does without one.
      out('  balance roundrobin');
      break;
  }
  // A connection that cannot be made is tried again on another server, in both modes: nothing was sent.
  out(`  retries ${RETRIES}`);
  out('  option redispatch 1');
  if (http) {
    out('  retry-on conn-failure empty-response');
    out(`  acl skyha_idempotent method ${IDEMPOTENT_METHODS.join(' ')}`);
    if (o.idempotentHeader !== undefined) {
      out(`  acl skyha_marked req.hdr(${o.idempotentHeader}) -m found`);
      out('  http-request disable-l7-retry unless skyha_idempotent || skyha_marked');
    } else {
      out('  http-request disable-l7-retry unless skyha_idempotent');
    }
    const proto = o.tlsPem ? 'https' : 'http';
    out('  option forwardfor');
    out(`  http-request set-header X-Forwarded-Proto ${proto}`);
    // RFC 7239 (an IPv6 client quoted in brackets), as one rule with no ACL: clients have the family of the address the gate listens on. No `host=` (the Host
    // header goes through unchanged): a regex per request cost more than everything else the engine adds.
    if (isIP(o.bind) === 6) out(`  http-request add-header Forwarded "for=\\"[%[src]]\\";proto=${proto}"`);
    else out(`  http-request add-header Forwarded "for=%[src];proto=${proto}"`);
    if (o.balance === 'cookie') {
      out(`  cookie ${cookieName} insert indirect nocache httponly attr "SameSite=Lax"`);
      for (const b of o.backends) {
        // The cookie of a server that takes nothing new (drained, weight 0) names no server any more: balanced, and a new cookie set.
        out(`  http-request replace-header Cookie '^(.*;\\s*)?${cookieName}=${b.node}(\\s*;.*)?$' '\\1${cookieName}=-\\2' if { srv_weight(${o.module}/${b.node}) eq 0 }`);
      }
    }
    if (o.samples) {
      out('  log global');
      out(`  log-format "${SAMPLE_PREFIX}%s %Tr"`);
    }
  }
  // No `on-marked-down shutdown-sessions`: skyha shuts a server's sessions itself, a connect timeout after it left the pool (haproxy-gate.ts).
  for (const b of o.backends) {
    const parts = [`  server ${b.node} ${serverAddress(b.host, b.port)}`, `weight ${b.weight}`];
    if (isIP(b.host) === 0) parts.push('init-addr libc,none');
    if (http && o.balance === 'cookie') parts.push(`cookie ${b.node}`);
    if (!(b.health === 'up' && b.admin === 'ready')) parts.push('disabled');
    out(parts.join(' '));
  }
  out();
  return lines.join('\n');
}

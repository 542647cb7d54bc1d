/**
 * Who is calling the API, and may they do this. A caller proves a name with
 * a bearer token (the config keeps only its SHA-256) or with a client
 * certificate signed by the cluster CA (its CN is the name); the name's role
 * says what it may do. A member's own certificate acts as `admin`: whoever
 * holds a member's key already controls that member.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { ApiRole, ApiUser } from '../config/model.js';

export type { ApiRole };

export interface Caller {
  name: string;
  role: ApiRole;
  via: 'token' | 'certificate' | 'member-certificate' | 'open';
}

const RANK: Record<ApiRole, number> = { monitor: 0, control: 1, admin: 2 };

export function allows(caller: Caller, needed: ApiRole): boolean {
  return RANK[caller.role] >= RANK[needed];
}

/** A new bearer token: 32 random bytes, base64url, with a prefix that secret scanners recognise. */
export function newToken(): string {
  return `skyha_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export type Authentication = { ok: true; caller: Caller } | { ok: false; why: string };

export class Authenticator {
  private readonly byHash: Array<{ hash: Buffer; user: ApiUser }>;
  private readonly users: Map<string, ApiUser>;

  constructor(
    users: readonly ApiUser[],
    private readonly members: ReadonlySet<string>,
  ) {
    this.users = new Map(users.map((u) => [u.name, u]));
    this.byHash = users.flatMap((u) => (u.tokenSha256 ? [{ hash: Buffer.from(u.tokenSha256, 'hex'), user: u }] : []));
  }

  authenticate(req: IncomingMessage): Authentication {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!m) return { ok: false, why: 'the Authorization header is not "Bearer TOKEN"' };
      const hash = createHash('sha256').update(m[1]!, 'utf8').digest();
      // Compare against every user in constant time per comparison: the loop reveals the count of users, not which matched.
      let found: ApiUser | undefined;
      for (const { hash: h, user } of this.byHash) if (timingSafeEqual(h, hash)) found = user;
      if (!found) return { ok: false, why: 'the bearer token is not one of api.users' };
      return { ok: true, caller: { name: found.name, role: found.role, via: 'token' } };
    }
    const socket = req.socket as Partial<TLSSocket>;
    if (socket.encrypted && typeof socket.getPeerCertificate === 'function') {
      const cert = socket.getPeerCertificate();
      if (cert && Object.keys(cert).length > 0) {
        if (!socket.authorized) return { ok: false, why: `the client certificate is not signed by the cluster CA (${String(socket.authorizationError)})` };
        const cn = typeof cert.subject?.CN === 'string' ? cert.subject.CN : undefined;
        if (cn && this.members.has(cn)) return { ok: true, caller: { name: cn, role: 'admin', via: 'member-certificate' } };
        const user = cn ? this.users.get(cn) : undefined;
        if (!user) return { ok: false, why: `the client certificate names ${JSON.stringify(cn)}, neither a member nor one of api.users` };
        return { ok: true, caller: { name: user.name, role: user.role, via: 'certificate' } };
      }
    }
    return { ok: false, why: 'no credentials: send "Authorization: Bearer TOKEN" or a client certificate' };
  }
}

/**
 * How CLI commands reach the members' APIs: with the cluster CA of the config
 * file and the credentials `--token`, `$SKYHA_TOKEN`, or else a member's
 * certificate readable on this machine.
 */
import { userInfo } from 'node:os';
import { ApiClient, answerError, localCredentials, type ApiAnswer } from '../api/client.js';
import type { ClusterConfig } from '../config/model.js';
import { SkyhaError } from '../core/errors.js';

export function openApi(config: ClusterConfig, token?: string, prefer?: string): ApiClient {
  try {
    return new ApiClient(config, { ...localCredentials(config, token, prefer), actor: actor() });
  } catch (err) {
    throw new SkyhaError('SKYHA_ERR_CONFIG_TLS', `cannot read the cluster CA ${config.tls.ca} to check the members' API certificates: ${(err as Error).message}`, { cause: err });
  }
}

/** The person at the keyboard, recorded in events when the CLI acts with a member's certificate. */
export function actor(): string {
  try {
    return `${userInfo().username}@cli`;
  } catch {
    return 'cli';
  }
}

/**
 * Sends one request to the first member that answers: `via` first, then the
 * nodes, then the witnesses. A member that cannot be reached is skipped; an
 * HTTP answer (success or refusal) is returned.
 */
export async function askCluster<T = unknown>(config: ClusterConfig, client: ApiClient, method: string, path: string, body: unknown, options: { via?: string; timeoutMs?: number } = {}): Promise<{ member: string; answer: ApiAnswer<T> }> {
  const order = [...config.nodes, ...config.witnesses].sort((a, b) => Number(b.name === options.via) - Number(a.name === options.via));
  if (options.via && order[0]?.name !== options.via) throw new SkyhaError('SKYHA_ERR_CONFIG_UNKNOWN_MEMBER', `--via: no member named ${options.via} in ${config.file}`);
  const failures: string[] = [];
  for (const m of options.via ? [order[0]!] : order) {
    try {
      return { member: m.name, answer: await client.request<T>(m, method, path, body, options.timeoutMs ?? 5000) };
    } catch (err) {
      failures.push(`${m.name} (${m.address}:${m.apiPort}): ${(err as Error).message}`);
    }
  }
  throw new SkyhaError('SKYHA_ERR_API_UNREACHABLE', `no member of ${config.name} answered ${method} ${path}`, { details: failures });
}

/** Throws the CLI's error for an API answer that is not a success. */
export function failOn(member: string, answer: ApiAnswer): void {
  if (answer.status >= 200 && answer.status < 300) return;
  const message = answerError(member, answer);
  if (answer.status === 401 || answer.status === 403) throw new SkyhaError('SKYHA_ERR_API_DENIED', `${message}${answer.status === 401 ? ' — pass --token or set SKYHA_TOKEN (see `skyha token`)' : ''}`);
  throw new SkyhaError('SKYHA_ERR_API_REFUSED', message);
}

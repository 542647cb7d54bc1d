/**
 * Loading a config file: read, parse, check against the schema, resolve,
 * apply the cross-field rules and (optionally) check TLS material. Either a
 * complete ClusterConfig comes out, or every problem found, each located.
 */
import { readFileSync } from 'node:fs';
import { SkyhaError, type ErrorCode } from '../core/errors.js';
import type { ClusterConfig, MemberConfig } from './model.js';
import { findMember } from './model.js';
import { byPosition, formatProblem, locate, printable, type LocatedProblem } from './problem.js';
import { resolveConfig } from './resolve.js';
import { checkRules } from './rules.js';
import { checkSchema } from './schema.js';
import { parseSource } from './source.js';
import { checkTls } from './tls-check.js';

export interface LoadOptions {
  /** Also check this member's own certificate and key. */
  member?: string;
  /** Check the cluster CA (default true). */
  checkTls?: boolean;
}

export interface LoadResult {
  config?: ClusterConfig;
  /** Errors (config is then undefined) and warnings, in file order, formatted FILE:LINE:COL: KEY.PATH: message. */
  errors: string[];
  warnings: string[];
  /** The error code that fits the first error. */
  code?: ErrorCode;
}

export function loadConfigText(file: string, text: string, options: LoadOptions = {}): LoadResult {
  const parsed = parseSource(file, text);
  if (!parsed.ok) {
    return { errors: parsed.problems.map((p) => printable(`${file}:${p.position.line}:${p.position.col}: ${p.message}`)), warnings: [], code: 'SKYHA_ERR_CONFIG_SYNTAX' };
  }
  const { source } = parsed;
  const render = (ps: LocatedProblem[]) => ps.sort(byPosition).map((p) => formatProblem(file, p));

  const schemaProblems = checkSchema(source.data).map((p) => locate(source, p));
  if (schemaProblems.length > 0) return { errors: render(schemaProblems), warnings: [], code: 'SKYHA_ERR_CONFIG_SCHEMA' };

  const config = resolveConfig(source.data as Record<string, unknown>, file);
  const found = checkRules(config, source.has).map((p) => locate(source, p));
  let member: MemberConfig | undefined;
  if (options.member !== undefined) {
    member = findMember(config, options.member);
    if (!member) {
      // Reported like every other error (at the nodes key), together with whatever else is wrong.
      const names = [...config.nodes, ...config.witnesses].map((m) => m.name);
      found.push(locate(source, { severity: 'error', kind: 'member', path: ['nodes'], target: 'key', message: `expected the name of a node or witness (--node), found no member named ${JSON.stringify(options.member)}; the config defines ${names.join(', ')}` }));
    }
  }
  if (options.checkTls !== false) found.push(...checkTls(config, member, source.has).map((p) => locate(source, p)));

  const errors = found.filter((p) => p.severity === 'error');
  const warnings = render(found.filter((p) => p.severity === 'warning'));
  if (errors.length > 0) {
    const first = errors.sort(byPosition)[0]!;
    const code: ErrorCode = errors.some((p) => p.kind === 'member') ? 'SKYHA_ERR_CONFIG_UNKNOWN_MEMBER' : first.kind === 'tls' ? 'SKYHA_ERR_CONFIG_TLS' : 'SKYHA_ERR_CONFIG_RULE';
    return { errors: render(errors), warnings, code };
  }
  return { config, errors: [], warnings };
}

export function loadConfigFile(file: string, options: LoadOptions = {}): LoadResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : `${code ?? (e as Error).message}`;
    return { errors: [`${file}: cannot read the config file: ${why}`], warnings: [], code: 'SKYHA_ERR_CONFIG_READ' };
  }
  return loadConfigText(file, text, options);
}

/** For commands that need a config: the config, or a SkyhaError carrying every error. */
export function requireConfig(file: string, options: LoadOptions = {}): { config: ClusterConfig; warnings: string[] } {
  const r = loadConfigFile(file, options);
  if (!r.config) {
    throw new SkyhaError(r.code ?? 'SKYHA_ERR_CONFIG_SCHEMA', `${file}: ${r.errors.length} error${r.errors.length === 1 ? '' : 's'} in the config`, { details: r.errors });
  }
  return { config: r.config, warnings: r.warnings };
}

/**
 * The JSON Schema of the config file (schema/skyha.schema.json, checked in so
 * editors can use it) and the translation of ajv's findings into sentences an
 * operator can act on: "expected ..., found ...", with "did you mean".
 */
import { readFileSync } from 'node:fs';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { ConfigProblem } from './problem.js';
import { didYouMean } from './problem.js';
import { schemaHash } from './schema-hash.js';
import { describeValue, quoted, type KeyPath } from './source.js';

export const SCHEMA_URL = new URL('../../../schema/skyha.schema.json', import.meta.url);
export type JsonSchema = Record<string, any>;
const SCHEMA_TEXT = readFileSync(SCHEMA_URL, 'utf8');
export const SCHEMA: JsonSchema = JSON.parse(SCHEMA_TEXT);

/** The validator `npm run build` generated from this very schema, else one compiled now (see schema-compile.ts). */
async function loadValidator(): Promise<ValidateFunction> {
  // Missing only after a tsc-only build; anything else wrong with it is a broken build, and says so.
  const generated = await import(new URL('./schema-validate.js', import.meta.url).href).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw err;
  });
  if (generated?.schemaHash === schemaHash(SCHEMA_TEXT)) return generated.validate as ValidateFunction;
  return (await import('./schema-compile.js')).compileSchema(SCHEMA);
}
const validate = await loadValidator();

/** Checks data against the schema; returns every finding, or [] when it conforms. */
export function checkSchema(data: unknown): ConfigProblem[] {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    return [{ severity: 'error', kind: 'schema', path: [], message: `expected a mapping with the keys cluster, nodes and modules, found ${describeValue(data)}` }];
  }
  if (validate(data)) return [];
  const errors = validate.errors ?? [];
  // "adress" is unknown and "address" is missing: one mistake, reported once, as the unknown key with its "did you mean".
  const typos = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'additionalProperties') continue;
    const suggestion = suggestKey(e);
    if (suggestion) typos.add(`${e.instancePath}/${suggestion}`);
  }
  const kept = errors.filter((e) => !(e.keyword === 'required' && typos.has(`${e.instancePath}/${String((e.params as { missingProperty?: unknown }).missingProperty)}`)));
  return dedupe(kept.flatMap((e) => translate(e, data)));
}

function pathOf(instancePath: string): (string | number)[] {
  if (instancePath === '') return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

function valueAt(data: unknown, path: KeyPath): unknown {
  let v: any = data;
  for (const seg of path) v = v == null ? undefined : v[seg];
  return v;
}

function expected(e: ErrorObject): string | undefined {
  return (e.parentSchema as JsonSchema | undefined)?.['x-expected'];
}

function typeWords(t: string | string[]): string {
  const words: Record<string, string> = { string: 'a string', integer: 'a whole number', number: 'a number', boolean: 'true or false', object: 'a mapping', array: 'a list', null: 'nothing' };
  return (Array.isArray(t) ? t : [t]).map((x) => words[x] ?? x).join(' or ');
}

/** Keys the schema allows here that the mapping does not have yet: the candidates for a typo. */
function unusedKeys(e: ErrorObject): string[] {
  const allowed = Object.keys((e.parentSchema as JsonSchema).properties ?? {});
  const present = e.data && typeof e.data === 'object' ? Object.keys(e.data) : [];
  return allowed.filter((k) => !present.includes(k));
}
function suggestKey(e: ErrorObject): string | undefined {
  return /did you mean "(.*)"\?/.exec(didYouMean(String((e.params as { additionalProperty?: unknown }).additionalProperty), unusedKeys(e)))?.[1];
}

function translate(e: ErrorObject, data: unknown): ConfigProblem[] {
  const path = pathOf(e.instancePath);
  const found = describeValue(e.data);
  const problem = (p: Omit<ConfigProblem, 'severity' | 'kind'>): ConfigProblem[] => [{ severity: 'error', kind: 'schema', ...p }];
  const p = e.params as Record<string, any>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      const allowed = Object.keys((e.parentSchema as JsonSchema).properties ?? {});
      return problem({
        path: [...path, key],
        target: 'key',
        message: `expected one of the keys ${allowed.join(', ')}, found unknown key ${quoted(key)}${didYouMean(key, unusedKeys(e))}`,
      });
    }
    case 'required': {
      const key = String(p.missingProperty);
      return problem({ path: [...path, key], locateAt: path, target: 'key', message: `expected a value, found nothing (the key ${key} is required)` });
    }
    case 'propertyNames':
      return []; // the nested error (pattern) carries the detail, see below
    case 'discriminator': {
      const kinds = ((e.parentSchema as JsonSchema).oneOf as JsonSchema[]).map((b) => b.properties.kind.const as string);
      const absent = valueAt(data, [...path, 'kind']) === undefined;
      if (p.error === 'tag') return problem({ path: [...path, 'kind'], ...(absent ? { locateAt: path, target: 'key' as const } : {}), message: `expected one of ${kinds.join(', ')}, found ${describeValue(valueAt(data, [...path, 'kind']))}` });
      const tag = String(p.tagValue);
      return problem({ path: [...path, 'kind'], message: `expected one of ${kinds.join(', ')}, found ${describeValue(tag)}${didYouMean(tag, kinds)}` });
    }
    case 'false schema': {
      const key = path[path.length - 1];
      const owner = valueAt(data, path.slice(0, -1)) as { kind?: unknown } | undefined;
      const kind = owner?.kind;
      const other = kind === 'farm' ? 'mirror' : 'farm';
      return problem({ path, target: 'key', message: `expected no ${String(key)} on a ${String(kind)} module (it is a key of ${other} modules), found ${found}` });
    }
    case 'if':
    case 'oneOf':
    case 'anyOf':
      return [];
    case 'enum': {
      const allowed = (p.allowedValues as unknown[]).map(String);
      const hint = typeof e.data === 'string' ? didYouMean(e.data, allowed) : '';
      return problem({ path, message: `expected one of ${allowed.join(', ')}, found ${found}${hint}` });
    }
    case 'const':
      return problem({ path, message: `expected ${JSON.stringify(p.allowedValue)}, found ${found}` });
    case 'type':
      return problem({ path, message: `expected ${expected(e) ?? typeWords(p.type)}, found ${found}` });
    case 'pattern':
    case 'format':
    case 'minLength':
    case 'maxLength': {
      // Errors inside propertyNames are about the key itself, not a value.
      if (e.propertyName !== undefined) {
        return problem({ path: [...path, e.propertyName], target: 'key', message: `expected ${expected(e) ?? 'a valid name'}, found the name ${quoted(e.propertyName)}` });
      }
      const what = expected(e) ?? (e.keyword === 'minLength' ? 'a non-empty string' : e.keyword === 'maxLength' ? `at most ${p.limit} characters` : `a string matching ${p.pattern ?? p.format}`);
      return problem({ path, message: `expected ${what}, found ${found}` });
    }
    case 'minimum':
    case 'maximum': {
      const s = e.parentSchema as JsonSchema;
      const range = s.minimum !== undefined && s.maximum !== undefined ? `from ${s.minimum} to ${s.maximum}` : e.keyword === 'minimum' ? `of at least ${s.minimum}` : `of at most ${s.maximum}`;
      const number = s.type === 'integer' ? 'a whole number' : 'a number';
      return problem({ path, message: `expected ${expected(e) ?? `${number} ${range}`}, found ${found}` });
    }
    case 'minProperties': {
      const what = path.length === 1 ? `at least ${p.limit} entr${p.limit === 1 ? 'y' : 'ies'}` : `at least ${p.limit} key${p.limit === 1 ? '' : 's'}`;
      return problem({ path, message: `expected ${what}, found an empty mapping` });
    }
    case 'minItems':
      return problem({ path, message: `expected at least ${p.limit} item${p.limit === 1 ? '' : 's'}, found ${found}` });
    case 'uniqueItems': {
      // ajv's i and j are the two equal items in either order: report the later one.
      const items = e.data as unknown[];
      const [first, again] = [Math.min(p.i, p.j), Math.max(p.i, p.j)];
      return problem({ path: [...path, again], message: `expected each item once, found ${describeValue(items[again])} again (also item ${first})` });
    }
    default:
      return problem({ path, message: `expected ${expected(e) ?? 'a valid value'}, found ${found} (${e.message ?? e.keyword})` });
  }
}

/** One finding per key: a type error makes the other findings about that key noise. */
function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  const out: ConfigProblem[] = [];
  for (const p of problems) {
    const k = JSON.stringify(p.path);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(p);
  }
  return out;
}

/**
 * The JSON Schema of the config file (schema/skyha.schema.json, checked in so
 * editors can use it) and the translation of ajv's findings into sentences an
 * operator can act on: "expected ..., found ...", with "did you mean".
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import AjvModule, { type ErrorObject } from 'ajv';
import type { ConfigProblem } from './problem.js';
import { didYouMean } from './problem.js';
import { describeValue, type KeyPath } from './source.js';

// ajv is published as CommonJS with a default export.
const Ajv = AjvModule.default ?? AjvModule;

export const SCHEMA_URL = new URL('../../../schema/skyha.schema.json', import.meta.url);
export type JsonSchema = Record<string, any>;
export const SCHEMA: JsonSchema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8'));

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const ajv = new Ajv({ allErrors: true, verbose: true, discriminator: true, strict: true, strictRequired: false, allowUnionTypes: true });
ajv.addKeyword({ keyword: 'x-expected', schemaType: 'string' });
ajv.addFormat('host', { type: 'string', validate: (s: string) => isIP(s) !== 0 || HOSTNAME.test(s) });
const validate = ajv.compile(SCHEMA);

/** Checks data against the schema; returns every finding, or [] when it conforms. */
export function checkSchema(data: unknown): ConfigProblem[] {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    return [{ severity: 'error', kind: 'schema', path: [], message: `expected a mapping with the keys cluster, nodes and modules, found ${describeValue(data)}` }];
  }
  if (validate(data)) return [];
  const problems = (validate.errors ?? []).flatMap((e) => translate(e, data));
  return dedupe(problems);
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
        message: `expected one of the keys ${allowed.join(', ')}; found unknown key ${JSON.stringify(key)}${didYouMean(key, allowed)}`,
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
      if (p.error === 'tag') return problem({ path: [...path, 'kind'], locateAt: path, message: `expected one of ${kinds.join(', ')}, found ${describeValue(valueAt(data, [...path, 'kind']))}` });
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
        return problem({ path: [...path, e.propertyName], target: 'key', message: `expected ${expected(e) ?? 'a valid name'}, found the name ${JSON.stringify(e.propertyName)}` });
      }
      const what = expected(e) ?? (e.keyword === 'minLength' ? 'a non-empty string' : e.keyword === 'maxLength' ? `at most ${p.limit} characters` : `a string matching ${p.pattern ?? p.format}`);
      return problem({ path, message: `expected ${what}, found ${found}` });
    }
    case 'minimum':
    case 'maximum': {
      const s = e.parentSchema as JsonSchema;
      const range = s.minimum !== undefined && s.maximum !== undefined ? `from ${s.minimum} to ${s.maximum}` : e.keyword === 'minimum' ? `of at least ${s.minimum}` : `of at most ${s.maximum}`;
      return problem({ path, message: `expected ${expected(e) ?? `a number ${range}`}, found ${found}` });
    }
    case 'minProperties': {
      const what = path.length === 1 ? `at least ${p.limit} entr${p.limit === 1 ? 'y' : 'ies'}` : `at least ${p.limit} key${p.limit === 1 ? '' : 's'}`;
      return problem({ path, message: `expected ${what}, found an empty mapping` });
    }
    case 'minItems':
      return problem({ path, message: `expected at least ${p.limit} item${p.limit === 1 ? '' : 's'}, found ${found}` });
    case 'uniqueItems': {
      const items = e.data as unknown[];
      return problem({ path: [...path, p.j], message: `expected each item once, found ${describeValue(items[p.j])} again (also item ${p.i})` });
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

/**
 * Validates API answers against schema/openapi.json: the response schema of
 * an operation for a status code (JSON bodies), with Ajv's 2020-12 dialect,
 * which OpenAPI 3.1 uses.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { OPENAPI_URL } from '../../src/api/openapi.js';

type Json = Record<string, any>;
export const OPENAPI: Json = JSON.parse(readFileSync(OPENAPI_URL, 'utf8'));

const ajv = new Ajv2020.default({ strict: false, allErrors: true });
addFormats.default(ajv);
ajv.addSchema({ $id: 'openapi', components: OPENAPI.components }, 'openapi');

export const OPERATIONS = new Map<string, { method: string; path: string; op: Json }>();
for (const [path, item] of Object.entries<Json>(OPENAPI.paths)) for (const [method, op] of Object.entries<Json>(item)) OPERATIONS.set(op.operationId, { method: method.toUpperCase(), path, op });

function deref(x: Json): Json {
  if (typeof x.$ref === 'string') {
    const parts = x.$ref.replace('#/', '').split('/');
    return parts.reduce((o: Json, k: string) => o[k], OPENAPI);
  }
  return x;
}

/** Asserts that `body` is what `operationId` documents for `status`. */
export function assertDocumented(operationId: string, status: number, body: unknown): void {
  const o = OPERATIONS.get(operationId);
  assert.ok(o, `no operation ${operationId} in openapi.json`);
  const response = o.op.responses[String(status)];
  assert.ok(response, `${operationId} does not document status ${status} (body: ${JSON.stringify(body).slice(0, 300)})`);
  const schema = deref(response).content?.['application/json']?.schema;
  if (!schema) return;
  const validate = ajv.compile(schema.$ref ? { $ref: `openapi${schema.$ref}` } : rewrite(schema));
  assert.ok(validate(body), `${operationId} ${status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 600)}`);
}

/** Inline schemas refer to components as `#/components/...`: make those refer to the registered document. */
function rewrite(s: unknown): any {
  if (Array.isArray(s)) return s.map(rewrite);
  if (s && typeof s === 'object') return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? `openapi${v}` : rewrite(v)]));
  return s;
}

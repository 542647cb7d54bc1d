/**
 * The API's OpenAPI 3.1 description, schema/openapi.json: checked in (so that
 * clients and reviewers see it), served at /v1/openapi.json, and the contract
 * that tests validate every answer against.
 */
import { readFileSync } from 'node:fs';

export const OPENAPI_URL = new URL('../../../schema/openapi.json', import.meta.url);
export const OPENAPI_TEXT = readFileSync(OPENAPI_URL, 'utf8');

/**
 * Compiling the config schema with ajv. `npm run build` does it once and
 * writes the code (scripts/build-config-validator.mjs): compiling at start-up
 * cost every command and every agent start ~0.14 s here. schema.ts compiles
 * here at start-up only where that code is missing or was made from another
 * schema.
 */
import AjvModule, { type CodeOptions, type ValidateFunction } from 'ajv';
import { formats } from './schema-formats.js';

// ajv is published as CommonJS with a default export.
const Ajv = AjvModule.default ?? AjvModule;

/** The ajv the schema compiles with; `code` for generating it as a module. */
export function configAjv(code: CodeOptions = {}): InstanceType<typeof Ajv> {
  // No optimizing pass when compiling at start-up: the schema compiles faster.
  const ajv = new Ajv({ allErrors: true, verbose: true, discriminator: true, strict: true, strictRequired: false, allowUnionTypes: true, code: { optimize: false, ...code } });
  ajv.addKeyword({ keyword: 'x-expected', schemaType: 'string' });
  ajv.addFormat('host', formats.host);
  return ajv;
}

export function compileSchema(schema: object): ValidateFunction {
  return configAjv().compile(schema);
}

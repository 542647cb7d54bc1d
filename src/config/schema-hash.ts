/** Which schema a generated validator was made from (schema-compile.ts): a stale one is not used. */
import { createHash } from 'node:crypto';

export function schemaHash(schemaText: string): string {
  return createHash('sha256').update(schemaText).digest('hex');
}

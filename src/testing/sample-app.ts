/** The sample application of the tests and benchmarks (test/fixtures/apps/sample-app.mjs), as a module's `start` command. */
import { fileURLToPath } from 'node:url';

export const SAMPLE_APP = fileURLToPath(new URL('../../../test/fixtures/apps/sample-app.mjs', import.meta.url));

/** Listens on the node's own address, so that nodes sharing one machine do not collide. */
export function sampleAppCommand(): string {
  return `APP_HOST="$SKYHA_NODE_ADDRESS" exec "${process.execPath}" "${SAMPLE_APP}"`;
}

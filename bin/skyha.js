#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build`.
import('../dist/src/cli/main.js').then(
  (cli) => cli.main(process.argv.slice(2)),
  (err) => {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli/main.js')) {
      process.stderr.write('skyha: not built yet; run `npm run build` in the checkout first\n');
    } else {
      process.stderr.write(`skyha: ${err && err.stack ? err.stack : err}\n`);
    }
    process.exit(1);
  },
);

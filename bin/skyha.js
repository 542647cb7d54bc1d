#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build`.
//
// CommonJS on purpose (bin/package.json): an ES module entry is read through
// libuv's thread pool, which then already has its size. The agent runs its
// fsyncs side by side (a resync's files, a run's directories) and a disk stuck
// behind writeback must not hold every thread: 16 instead of libuv's 4, unless
// the operator chose a size.
process.env.UV_THREADPOOL_SIZE ??= '16';
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

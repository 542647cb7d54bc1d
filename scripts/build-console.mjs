// Bundles the web console (src/console/) into dist/console/ with esbuild: one
// script (preact and htm included, minified), its style sheet and the page.
// The console is served by every member; nothing is loaded from elsewhere.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

const out = new URL('../dist/console/', import.meta.url);
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [new URL('../src/console/main.ts', import.meta.url).pathname],
  outfile: new URL('app.js', out).pathname,
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'linked',
  logLevel: 'warning',
});
for (const f of ['index.html', 'style.css']) copyFileSync(new URL(`../src/console/${f}`, import.meta.url), new URL(f, out));

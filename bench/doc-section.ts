/**
 * Each benchmark owns one section of docs/benchmarks.md between
 * `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->` and rewrites only
 * that; a section not yet there is appended under `heading`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BENCHMARKS_DOC = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));

export function writeSection(name: string, heading: string, lines: readonly string[]): void {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const section = [start, ...lines, end].join('\n');
  const doc = readFileSync(BENCHMARKS_DOC, 'utf8');
  const a = doc.indexOf(start);
  const b = doc.indexOf(end);
  writeFileSync(BENCHMARKS_DOC, a >= 0 && b > a ? doc.slice(0, a) + section + doc.slice(b + end.length) : `${doc.trimEnd()}\n\n## ${heading}\n\n${section}\n`);
}

/** A finding about a config file, tied to a key path and rendered as FILE:LINE:COL. */
import type { KeyPath, ParsedSource, Position } from './source.js';
import { formatPath } from './source.js';
import { closest, distance } from 'fastest-levenshtein';

export interface ConfigProblem {
  severity: 'error' | 'warning';
  /** The key the message is about; shown as KEY.PATH. */
  path: KeyPath;
  /** Where to point when the key itself is absent (e.g. a missing required key: its parent). */
  locateAt?: KeyPath;
  /** Point at the key rather than its value (unknown keys, bad names). */
  target?: 'key' | 'value';
  /** "expected ..., found ..." */
  message: string;
  /** Name of the cross-field rule that found it, if any. */
  rule?: string;
  /** Which error family it belongs to; decides the error code. `member`: --node names no member of the file. */
  kind: 'schema' | 'rule' | 'tls' | 'member';
}

export interface LocatedProblem extends ConfigProblem {
  position: Position;
}

export function locate(source: ParsedSource, problem: ConfigProblem): LocatedProblem {
  return { ...problem, position: source.locate(problem.locateAt ?? problem.path, problem.target) };
}

export function formatProblem(file: string, p: LocatedProblem): string {
  const level = p.severity === 'warning' ? 'warning: ' : '';
  const rule = p.rule ? ` [rule ${p.rule}]` : '';
  return printable(`${file}:${p.position.line}:${p.position.col}: ${level}${formatPath(p.path)}: ${p.message}${rule}`);
}

/**
 * One error, one line: control characters from the file (a key or a path
 * with a newline or a NUL in it) are shown escaped, as \u000a.
 */
export function printable(line: string): string {
  return line.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function byPosition(a: LocatedProblem, b: LocatedProblem): number {
  return a.position.line - b.position.line || a.position.col - b.position.col;
}

/**
 * " (did you mean "x"?)" when a candidate is close enough to be a typo, else "".
 * Close means: the same word in another case; the one candidate the word
 * begins (a name cut short: "two_node" for two_node_policy, "auto" for
 * automatic); a few letters off, fewer for short words ("frm" for farm, but
 * not "fast" for test); or the candidate with something added ("lease_time").
 */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const hint = (c: string) => ` (did you mean ${JSON.stringify(c)}?)`;
  if (candidates.length === 0 || candidates.includes(word)) return '';
  const lower = candidates.find((c) => c.toLowerCase() === word.toLowerCase());
  if (lower) return hint(lower);
  const longer = word.length >= 3 ? candidates.filter((c) => c.startsWith(word)) : [];
  if (longer.length === 1) return hint(longer[0]!);
  const best = closest(word, candidates as string[]);
  const limit = word.length <= 4 ? 1 : Math.max(2, Math.floor(word.length / 3));
  if (distance(word, best) <= limit) return hint(best);
  const shorter = candidates.filter((c) => c.length >= 4 && word.startsWith(c) && /^[_-]/.test(word.slice(c.length)));
  if (shorter.length === 1) return hint(shorter[0]!);
  return '';
}

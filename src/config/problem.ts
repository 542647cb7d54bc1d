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
  /** Which error family it belongs to; decides the error code. */
  kind: 'schema' | 'rule' | 'tls';
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
  return `${file}:${p.position.line}:${p.position.col}: ${level}${formatPath(p.path)}: ${p.message}${rule}`;
}

export function byPosition(a: LocatedProblem, b: LocatedProblem): number {
  return a.position.line - b.position.line || a.position.col - b.position.col;
}

/** " (did you mean "x"?)" when a candidate is close enough to be a typo, else "". */
export function didYouMean(word: string, candidates: readonly string[]): string {
  if (candidates.length === 0) return '';
  const best = closest(word, candidates as string[]);
  const limit = Math.max(2, Math.floor(word.length / 3));
  return distance(word, best) <= limit ? ` (did you mean ${JSON.stringify(best)}?)` : '';
}

/**
 * The config file as text: parsing YAML and mapping a key path back to the
 * line and column where it stands, so every error can name FILE:LINE:COL.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from 'yaml';

/** A key path into the config: map keys and list indexes, e.g. ['modules', 'web', 'checkers', 0]. */
export type KeyPath = readonly (string | number)[];

export interface Position {
  line: number;
  col: number;
}

export interface ParsedSource {
  file: string;
  data: unknown;
  /** Where the key path stands; falls back to the nearest ancestor present in the file. */
  locate(path: KeyPath, target?: 'key' | 'value'): Position;
  /** True when the path is written in the file (not a default). */
  has(path: KeyPath): boolean;
}

export interface SyntaxProblem {
  position: Position;
  message: string;
}

export type ParseResult = { ok: true; source: ParsedSource } | { ok: false; problems: SyntaxProblem[] };

/** Renders a key path the way the docs write it: modules.web.checkers[0].interval */
export function formatPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out === '' ? '(top level)' : out;
}

export function parseSource(file: string, text: string): ParseResult {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true });
  const at = (offset: number): Position => {
    const p = lines.linePos(offset);
    return { line: p.line, col: p.col };
  };
  if (!Array.isArray(docs)) {
    // An empty stream parses to an EmptyStream object.
    return { ok: false, problems: [{ position: { line: 1, col: 1 }, message: 'the file is empty; expected a mapping with the keys cluster, nodes and modules' }] };
  }
  const problems: SyntaxProblem[] = [];
  for (const doc of docs) {
    for (const err of doc.errors) problems.push({ position: at(err.pos[0]), message: yamlMessage(err.message) });
  }
  if (problems.length > 0) return { ok: false, problems };
  if (docs.length > 1) {
    const second = docs[1]!;
    return { ok: false, problems: [{ position: at(second.range[0]), message: 'the file holds several YAML documents; expected exactly one' }] };
  }
  const doc = docs[0];
  if (!doc || doc.contents === null) {
    return { ok: false, problems: [{ position: { line: 1, col: 1 }, message: 'the file is empty; expected a mapping with the keys cluster, nodes and modules' }] };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { ok: false, problems: [{ position: { line: 1, col: 1 }, message: yamlMessage((err as Error).message) }] };
  }
  const rootPos = at(doc.contents.range?.[0] ?? 0);
  return {
    ok: true,
    source: {
      file,
      data,
      has: (path) => walk(doc, path).found,
      locate(path, target = 'value') {
        const hit = walk(doc, path);
        // A key that is absent is reported at its nearest ancestor's key line.
        const node = target === 'key' || !hit.found ? hit.key ?? hit.value : hit.value ?? hit.key;
        const offset = node?.range?.[0];
        return offset === undefined ? rootPos : at(offset);
      },
    },
  };
}

interface Hit {
  found: boolean;
  key?: Node | undefined;
  value?: Node | undefined;
}

/** Follows the path as far as the document has it; returns the deepest key/value nodes reached. */
function walk(doc: Document, path: KeyPath): Hit {
  let node: unknown = doc.contents;
  let hit: Hit = { found: true, value: node as Node };
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node) && typeof seg === 'string') {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === seg);
      if (!pair) return { ...hit, found: false };
      const value = pair.value as Node | null;
      // `key:` with nothing after it has a null value without a useful range: point at the key.
      const valueNode = value && value.range && !(isScalar(value) && value.value === null && value.range[0] === value.range[1]) ? value : undefined;
      hit = { found: true, key: pair.key as Node, value: valueNode };
      node = value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      if (!item) return { ...hit, found: false };
      hit = { found: true, key: item, value: item };
      node = item;
    } else {
      return { ...hit, found: false };
    }
  }
  return hit;
}

/** yaml's messages end with a code and sometimes a source excerpt; keep the sentence. */
function yamlMessage(message: string): string {
  const first = message.split('\n')[0] ?? message;
  return first.replace(/ at line \d+, column \d+:?$/, '').replace(/\.$/, '');
}

/** Describes a value for "found ..." in error messages. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 60 ? value.slice(0, 57) + '...' : value)}`;
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return `${value}`;
  if (Array.isArray(value)) return `a list of ${value.length} item${value.length === 1 ? '' : 's'}`;
  return 'a mapping';
}

/**
 * The config file as text: parsing YAML and mapping a key path back to the
 * line and column where it stands, so every error can name FILE:LINE:COL.
 */
import { isAlias, isCollection, isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, visit, type Document, type Node, type YAMLError } from 'yaml';

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
    // A key that a dotted path would misrender (empty, with dots, spaces, brackets) is quoted.
    else if (!/^[^\s.[\]"]+$/.test(seg)) out += `[${quoted(seg)}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  // One word, like every other path, so that FILE:LINE:COL: KEY.PATH: stays easy to split.
  return out === '' ? '(top-level)' : out;
}

const EMPTY = 'the file is empty; expected a mapping with the keys cluster, nodes and modules';

export function parseSource(file: string, text: string): ParseResult {
  const lines = new LineCounter();
  // The core schema only, whatever a %YAML directive says, and no implicit
  // !!binary, !!timestamp, !!set...: a config holds strings, numbers, booleans,
  // lists and mappings. Any other tag is reported below.
  const docs = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true, schema: 'core', resolveKnownTags: false, logLevel: 'silent' });
  const at = (offset: number): Position => {
    const p = lines.linePos(offset);
    return { line: p.line, col: p.col };
  };
  if (!Array.isArray(docs)) {
    // An empty stream parses to an EmptyStream object.
    return { ok: false, problems: [{ position: { line: 1, col: 1 }, message: EMPTY }] };
  }
  const problems: SyntaxProblem[] = [];
  for (const doc of docs) {
    for (const err of doc.errors) problems.push(explain(doc, err, text, at));
    for (const warning of doc.warnings) {
      if (warning.code === 'TAG_RESOLVE_FAILED') problems.push(explain(doc, warning, text, at));
    }
  }
  if (problems.length > 0) return { ok: false, problems: dedupeProblems(problems) };
  if (docs.length > 1) {
    const second = docs[1]!;
    return { ok: false, problems: [{ position: at(second.range[0]), message: 'the file holds several YAML documents; expected exactly one' }] };
  }
  const doc = docs[0];
  if (!doc || doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null && doc.contents.source === '' && !doc.contents.tag)) {
    return { ok: false, problems: [{ position: { line: 1, col: 1 }, message: EMPTY }] };
  }
  const keyProblems = [...collectionKeys(doc, at), ...unresolvedAliases(doc, at)];
  if (keyProblems.length > 0) return { ok: false, problems: keyProblems };
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

/** The key a map entry gets in the data, as yaml's toJS makes it (a null key becomes ""). */
function keyString(key: unknown): string {
  if (isScalar(key)) return key.value === null ? '' : String(key.value);
  return String(key);
}

/**
 * Turns a yaml error into a located sentence. The most common mistakes get a
 * key path and the position where the fix goes: a duplicate key (a node
 * defined twice), an unclosed quote or bracket (yaml notices it where the
 * file or the collection ends; the opening is what the reader must find),
 * an unknown tag.
 */
function explain(doc: Document, err: YAMLError, text: string, at: (offset: number) => Position): SyntaxProblem {
  const offset = err.pos[0];
  // yaml may point at the indentation before a misplaced line: point at the line's text.
  let first = offset;
  while (text[first] === ' ') first++;
  const fallback: SyntaxProblem = { position: at(text[first] === '\n' || first >= text.length ? offset : first), message: yamlMessage(err.message) };
  if (err.code === 'DUPLICATE_KEY') {
    // yaml's offset is at or before the repeated key (it may include the space before it):
    // the repeated key is the first key, from that offset on, that repeats an earlier one of its mapping.
    let found: { start: number; problem: SyntaxProblem } | undefined;
    visit(doc, {
      Map(_, map, ancestors) {
        map.items.forEach((pair, i) => {
          const start = (pair.key as Node | null)?.range?.[0];
          if (start === undefined || start < offset || (found && found.start <= start)) return;
          const name = keyString(pair.key);
          const earlier = map.items.findIndex((p) => keyString(p.key) === name);
          if (earlier >= i) return;
          const firstLine = at((map.items[earlier]!.key as Node | null)?.range?.[0] ?? start).line;
          const path = [...pathOf(ancestors, map), name];
          found = { start, problem: { position: at(start), message: `${formatPath(path)}: expected each key once in a mapping, found ${quoted(name)} again (first at line ${firstLine})` } };
        });
        return undefined;
      },
    });
    return found?.problem ?? fallback;
  }
  if (err.code === 'MISSING_CHAR' && /quote/.test(err.message)) {
    // The unclosed string runs from its opening quote up to where yaml gave up.
    let found: SyntaxProblem | undefined;
    visit(doc, {
      Scalar(_, scalar, ancestors) {
        const r = scalar.range;
        if (!r || (scalar.type !== 'QUOTE_DOUBLE' && scalar.type !== 'QUOTE_SINGLE') || !(r[0] < offset && offset <= r[2] + 1)) return undefined;
        const quote = scalar.type === 'QUOTE_DOUBLE' ? '"' : "'";
        found = { position: at(r[0]), message: `${formatPath(pathOf(ancestors, scalar))}: expected a closing ${quote} for the string that starts here, found none before ${offset >= text.length ? 'the end of the file' : `line ${at(offset).line}`}` };
        return undefined; // keep the innermost (last) match
      },
    });
    return found ?? fallback;
  }
  if (err.code === 'BAD_INDENT' && /^Flow (map|sequence)/.test(err.message)) {
    // An unclosed { or [: point at the opening bracket of the collection yaml was in.
    let found: SyntaxProblem | undefined;
    visit(doc, {
      Node(_, node, ancestors) {
        if (!isCollection(node) || !node.flow || !node.range) return undefined;
        const [start, end] = node.range;
        if (!(start < offset && end <= offset + 1) || isClosed(node, text)) return undefined;
        const what = isMap(node) ? 'mapping' : 'list';
        found = { position: at(start), message: `${formatPath(pathOf(ancestors, node))}: expected a closing ${isMap(node) ? '}' : ']'} for the ${what} that starts here, found none before ${offset >= text.length ? 'the end of the file' : `line ${at(offset).line}`}` };
        return undefined; // keep the innermost unclosed one
      },
    });
    return found ?? fallback;
  }
  if (err.code === 'TAG_RESOLVE_FAILED') {
    const tag = /: (\S+)$/.exec(err.message)?.[1] ?? 'this tag';
    // The tagged node starts after its tag: the first node with a tag from the tag's offset on.
    let path: KeyPath | undefined;
    let best = Infinity;
    visit(doc, {
      Node(_, node, ancestors) {
        if (node.tag && node.range && node.range[0] >= offset && node.range[0] < best) {
          best = node.range[0];
          path = pathOf(ancestors, node);
        }
        return undefined;
      },
    });
    const name = tag.replace(/^tag:yaml\.org,2002:/, '!!');
    return { position: at(offset), message: `${path ? formatPath(path) + ': ' : ''}expected a plain value (a string, number, true/false, list or mapping), found the YAML tag ${name}` };
  }
  const hint = hintFor(err);
  return hint ? { ...fallback, message: `${fallback.message}${hint}` } : fallback;
}

/** Whether a flow collection's closing bracket is in the text, after its last item. */
function isClosed(node: Node, text: string): boolean {
  if (!isCollection(node) || !node.range) return true;
  const last = node.items[node.items.length - 1] as unknown;
  const lastNode = (isPair(last) ? (last.value ?? last.key) : last) as Node | null | undefined;
  const from = lastNode?.range ? Math.max(lastNode.range[1], lastNode.range[2]) : node.range[0] + 1;
  return text.slice(from, node.range[1]).replace(/#.*$/gm, '').includes(isMap(node) ? '}' : ']');
}

/** What to look for, after yaml's own words, for the mistakes people make most. */
function hintFor(err: YAMLError): string | undefined {
  switch (err.code) {
    case 'TAB_AS_INDENT':
      return '; indent with spaces';
    case 'BAD_INDENT':
      return '; check the indentation of this line against the lines above';
    case 'BLOCK_AS_IMPLICIT_KEY':
    case 'MULTILINE_IMPLICIT_KEY':
      return '; is the next line indented deeper than it should be?';
    case 'MISSING_CHAR':
      return /^Implicit map keys/.test(err.message) ? '; is a colon, or the space after it, missing?' : undefined;
    case 'UNEXPECTED_TOKEN':
      // Text after the top-level mapping ended: usually a line indented less than the first key of the file.
      return /in YAML (stream|document)/.test(err.message) ? '; do all top-level keys start at the column of the first one?' : '; check the indentation and punctuation here';
    default:
      return undefined;
  }
}

/** The key path of a node from the ancestors yaml's visit() hands over. */
function pathOf(ancestors: readonly unknown[], node: unknown): (string | number)[] {
  const path: (string | number)[] = [];
  const chain = [...ancestors, node];
  for (let i = 0; i < chain.length - 1; i++) {
    const parent = chain[i];
    const child = chain[i + 1];
    if (isPair(parent) && parent.value === child) path.push(keyString(parent.key));
    else if (isPair(parent) && parent.key === child) path.push(keyString(parent.key));
    else if (isSeq(parent)) path.push(parent.items.indexOf(child as never));
  }
  return path;
}

/** A mapping key that is itself a list or mapping (`? [a, b]: x`) has no place in a config. */
function collectionKeys(doc: Document, at: (offset: number) => Position): SyntaxProblem[] {
  const out: SyntaxProblem[] = [];
  visit(doc, {
    Pair(_, pair, ancestors) {
      const key = isAlias(pair.key) ? pair.key.resolve(doc) : pair.key;
      if (isCollection(key)) {
        const offset = (pair.key as Node).range?.[0] ?? 0;
        const parent = ancestors[ancestors.length - 1];
        out.push({ position: at(offset), message: `${formatPath(pathOf(ancestors.slice(0, -1), parent))}: expected a plain key (a name), found ${isMap(key) ? 'a mapping' : 'a list'} used as a key` });
        return visit.SKIP;
      }
      return undefined;
    },
  });
  return out;
}

/** `*name` with no `&name` before it: yaml would only notice while converting, without a position. */
function unresolvedAliases(doc: Document, at: (offset: number) => Position): SyntaxProblem[] {
  const out: SyntaxProblem[] = [];
  visit(doc, {
    Alias(_, alias, ancestors) {
      if (alias.resolve(doc) === undefined) {
        out.push({ position: at(alias.range?.[0] ?? 0), message: `${formatPath(pathOf(ancestors, alias))}: expected an anchor &${alias.source} defined before this alias, found none` });
      }
      return undefined;
    },
  });
  return out;
}

/**
 * yaml sometimes reports one mistake twice, or two ways, and once lost it
 * reports every token that follows: keep the first error of each line, and
 * of the errors about text after the end of the top-level mapping, the first.
 */
function dedupeProblems(problems: SyntaxProblem[]): SyntaxProblem[] {
  const lines = new Set<number>();
  let afterEnd = false;
  return problems.filter((p) => {
    if (lines.has(p.position.line)) return false;
    const stray = /in YAML (stream|document)/.test(p.message);
    if (stray && afterEnd) return false;
    afterEnd ||= stray;
    lines.add(p.position.line);
    return true;
  });
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
      const pair = node.items.find((p) => keyString(p.key) === seg);
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

/** A string in quotes for a message, cut short when long. */
export function quoted(text: string): string {
  return JSON.stringify(text.length > 60 ? text.slice(0, 57) + '...' : text);
}

/** Describes a value for "found ..." in error messages. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (typeof value === 'string') return `the string ${quoted(value)}`;
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return `${value}`;
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : `a list of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (typeof value === 'object' && Object.keys(value).length === 0) return 'an empty mapping';
  return 'a mapping';
}

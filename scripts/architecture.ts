// The architecture as the code's own imports show it: folders and files under src/, import
// circles between files and between folders, arrows that point up the layer order, the places
// that name each model kind, the longest functions and the size of the native binding.
//
//   node --import tsx scripts/architecture.ts [--json]
//
// src/architecture.test.ts asserts the rules (no circles, no upward arrows) with the same code.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/**
 * The layers, bottom first: a folder may import its own layer's folders and those below, never
 * one above. A folder not listed takes the layer of its nearest listed parent. The README's map
 * of src/ is this list in words.
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts', 'config.ts', 'env.ts', 'version.ts', 'kernels'],
  ['tensor'],
  ['backends', 'backends/ts', 'backends/native'],
  ['ops'],
  ['nn', 'optim', 'likelihoods'],
  ['io', 'data'],
  ['models/sampling'],
  ['models/core'],
  ['models/*'],
  ['models'],
  ['train'],
  ['codec'],
  ['export', 'serve', 'serve/page', 'web'],
  ['cli'],
  ['testing'],
  ['index.ts', 'core.ts', 'browser.ts'],
];

export interface ImportEdge {
  from: string;
  to: string;
  typeOnly: boolean;
}

/** Every .ts file under dir (relative to root), tests included. */
export function sourceFiles(root: string, dir = 'src'): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(join(root, d), { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'fixtures' && e.name !== 'node_modules') walk(p);
      } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

export const isTest = (f: string): boolean => f.endsWith('.test.ts');

/** The relative imports of each file, resolved to files; `import type` and `export type` marked. */
export function importEdges(root: string, files: readonly string[]): ImportEdge[] {
  const known = new Set(files);
  const edges: ImportEdge[] = [];
  for (const from of files) {
    const text = readFileSync(join(root, from), 'utf8');
    const sf = ts.createSourceFile(from, text, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
    const add = (spec: string, typeOnly: boolean): void => {
      if (!spec.startsWith('.')) return;
      let to = relative(root, resolve(root, dirname(from), spec)).replace(/\.js$/, '.ts');
      if (!known.has(to) && known.has(join(to, 'index.ts'))) to = join(to, 'index.ts');
      if (known.has(to)) edges.push({ from, to, typeOnly });
    };
    const visit = (node: ts.Node): void => {
      if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
        const clause = node.importClause;
        const typeOnly = !!clause && (clause.isTypeOnly || (!clause.name && !!clause.namedBindings && ts.isNamedImports(clause.namedBindings)
          && clause.namedBindings.elements.length > 0 && clause.namedBindings.elements.every((e) => e.isTypeOnly)));
        add(node.moduleSpecifier.text, typeOnly);
      } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
        add(node.moduleSpecifier.text, node.isTypeOnly);
      } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
        add(node.arguments[0].text, false);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return edges;
}

/** Strongly connected components with more than one member (Tarjan), each sorted. */
export function circles(nodes: readonly string[], edges: readonly { from: string; to: string }[]): string[][] {
  const next = new Map<string, string[]>(nodes.map((n) => [n, []]));
  for (const e of edges) if (e.from !== e.to) next.get(e.from)?.push(e.to);
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const n of nodes) if (!index.has(n)) strong(n);
  return out;
}

/** A file's folder under src/; a file directly in src/ is a node of its own (its name). */
export const folderOf = (file: string): string => {
  const folder = dirname(relative('src', file));
  return folder === '.' ? relative('src', file) : folder;
};

/** The layer of a file (its folder, or the file itself for files directly in src/). */
export function layerOf(file: string): number {
  const candidates: string[] = [];
  for (let f = folderOf(file); f !== '.'; f = dirname(f)) candidates.push(f);
  for (const c of candidates) {
    for (let i = 0; i < LAYERS.length; i++) {
      for (const entry of LAYERS[i]!) {
        if (entry === c) return i;
        if (entry.endsWith('/*') && dirname(c) === entry.slice(0, -2) && c !== entry.slice(0, -2)) return i;
      }
    }
  }
  return -1;
}

export interface Report {
  folders: number;
  files: { source: number; tests: number };
  /** Circles of runtime imports between files. */
  fileCircles: string[][];
  /** Circles that close only through `import type` (a stepper naming its own model's class), each inside one folder. */
  typeOnlyCircles: string[][];
  folderCircles: string[][];
  upward: ImportEdge[];
  unlayered: string[];
  kinds: Record<string, string[]>;
  longestFunctions: { name: string; file: string; lines: number }[];
  nativeBinding: Record<string, number>;
}

/** Where each kind's name appears as a string (code, not comments), outside tests, per file. */
function kindMentions(root: string, files: readonly string[], kinds: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = Object.fromEntries(kinds.map((k) => [k, []]));
  const extra = ['python/arpix_torch/__init__.py'].filter((f) => { try { return statSync(join(root, f)).isFile(); } catch { return false; } });
  for (const f of [...files.filter((x) => !isTest(x)), ...extra]) {
    const text = readFileSync(join(root, f), 'utf8').replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*#.*$/gm, '');
    for (const k of kinds) if (new RegExp(`['"\`]${k.replace(/[+]/g, '\\+')}['"\`]`).test(text)) out[k]!.push(f);
  }
  return out;
}

function longestFunctions(root: string, files: readonly string[], top: number): Report['longestFunctions'] {
  const found: Report['longestFunctions'] = [];
  for (const file of files.filter((f) => !isTest(f))) {
    const text = readFileSync(join(root, file), 'utf8');
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
    const visit = (node: ts.Node): void => {
      let name: string | null = null;
      if (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node)) name = node.name?.getText(sf) ?? '(anonymous)';
      else if ((ts.isArrowFunction(node) || ts.isFunctionExpression(node)) && ts.isVariableDeclaration(node.parent)) name = node.parent.name.getText(sf);
      if (name !== null) {
        const lines = sf.getLineAndCharacterOfPosition(node.getEnd()).line - sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
        found.push({ name, file, lines });
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return found.sort((a, b) => b.lines - a.lines).slice(0, top);
}

function nativeBinding(root: string): Record<string, number> {
  const out: Record<string, number> = {};
  const count = (f: string): number => { try { return readFileSync(join(root, f), 'utf8').split('\n').length; } catch { return 0; } };
  for (const f of ['src/kernels/contracts.ts', 'src/backends/native/addon.ts', 'src/backends/native/kernels.ts']) out[f] = count(f);
  for (const f of readdirSync(join(root, 'native')).filter((x) => /^(addon|binding).*\.(cc|h)$/.test(x))) {
    const text = readFileSync(join(root, 'native', f), 'utf8');
    out[`native/${f}`] = text.split('\n').length;
    out[`native/${f}: info[i]`] = (text.match(/info\[\d+\]/g) ?? []).length;
    out[`native/${f}: bufOf(`] = (text.match(/bufOf\(/g) ?? []).length;
  }
  return out;
}

export function report(root: string, kinds: readonly string[]): Report {
  const all = sourceFiles(root);
  const code = all.filter((f) => !isTest(f));
  const edges = importEdges(root, code);
  const folders = new Set(code.map(folderOf));
  const folderEdges = edges.map((e) => ({ from: folderOf(e.from), to: folderOf(e.to) })).filter((e) => e.from !== e.to);
  return {
    folders: new Set(all.map((f) => dirname(f))).size,
    files: { source: code.length, tests: all.length - code.length },
    fileCircles: circles(code, edges.filter((e) => !e.typeOnly)),
    typeOnlyCircles: circles(code, edges).filter((c) => circles(c, edges.filter((e) => !e.typeOnly && c.includes(e.from) && c.includes(e.to))).length === 0),
    folderCircles: circles([...folders], folderEdges),
    upward: edges.filter((e) => layerOf(e.from) >= 0 && layerOf(e.to) > layerOf(e.from)),
    unlayered: code.filter((f) => layerOf(f) < 0),
    kinds: kindMentions(root, all, kinds),
    longestFunctions: longestFunctions(root, all, 8),
    nativeBinding: nativeBinding(root),
  };
}

async function main(): Promise<void> {
  const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
  const { MODEL_KINDS } = await import('../src/models/index.js');
  const r = report(root, MODEL_KINDS);
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify(r, null, 2));
    return;
  }
  console.log(`folders ${r.folders}, files ${r.files.source} (+ ${r.files.tests} tests)`);
  console.log(`import circles between files: ${r.fileCircles.length}`);
  for (const c of r.fileCircles) console.log(`  ${c.join(' ↔ ')}`);
  console.log(`circles closed only by \`import type\`: ${r.typeOnlyCircles.length}`);
  for (const c of r.typeOnlyCircles) console.log(`  ${c.join(' ↔ ')}`);
  console.log(`import circles between folders: ${r.folderCircles.length}`);
  for (const c of r.folderCircles) console.log(`  ${c.join(' ↔ ')}`);
  console.log(`upward arrows: ${r.upward.length}`);
  for (const e of r.upward) console.log(`  ${e.from} → ${e.to}${e.typeOnly ? ' (types only)' : ''}`);
  if (r.unlayered.length) console.log(`files in no layer: ${r.unlayered.join(', ')}`);
  console.log('places (files outside tests) that name each kind:');
  for (const [k, files] of Object.entries(r.kinds)) console.log(`  ${k.padEnd(16)} ${files.length}  ${files.join(', ')}`);
  console.log('longest functions:');
  for (const f of r.longestFunctions) console.log(`  ${String(f.lines).padStart(4)}  ${f.name} (${f.file})`);
  console.log('native binding:');
  for (const [k, v] of Object.entries(r.nativeBinding)) console.log(`  ${String(v).padStart(5)}  ${k}`);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) await main();

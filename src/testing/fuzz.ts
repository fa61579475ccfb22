// A small seeded fuzzer for arpix's readers and commands: byte mutations of a real file (made by
// arpix itself), structure-aware mutations of JSON values and of argument lists, and a tally of
// what each mutated input did. A family of inputs passes when crashes, hangs, internal errors,
// silently accepted damage and files changed by a failed command are all zero.
//
// Every case is a pure function of (seed, index), so a failure is reproduced by its index alone.
// Used by the fuzz test suites (src/testing/input-fuzz.test.ts) and printed by scripts/fuzz-report.ts.

import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashKey } from '../data/rng.js';

/** What every family of inputs takes (src/testing/*-fuzz.ts). */
export interface FamilyOptions {
  seed?: number;
  /** Cases per family (the CLI family runs a quarter as many: each is a whole command). */
  count?: number;
}

/** A seeded generator (mulberry32 keyed by seed and case index). */
export class FuzzRng {
  private s: number;
  constructor(seed: number, index = 0) {
    this.s = hashKey(seed, index);
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length)]!;
  }
}

// ---- byte mutations ----------------------------------------------------------------------

/** Values that tend to break length fields and counters. */
const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x20, 0x30, 0x39, 0x2c, 0x29, 0x27];
const INTERESTING_U32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 1e6, 1e9];

export interface ByteMutation {
  bytes: Uint8Array;
  /** What was done, for a reproducible report: `flip@12`, `truncate@96`, … */
  ops: string[];
  /** The lowest offset of the base whose byte or position changed (base.length when none). */
  firstChange: number;
  /** Whether the length changed (bytes inserted, removed, or the file truncated). */
  resized: boolean;
}

/**
 * One to `maxOps` random edits of `base`: bit flips, random or interesting bytes and 32-bit
 * words, truncation, insertion, deletion, duplication of a range, and garbage appended.
 * Never returns the base unchanged.
 */
export function mutateBytes(base: Uint8Array, rng: FuzzRng, maxOps = 4): ByteMutation {
  let b: Uint8Array = Uint8Array.from(base);
  const ops: string[] = [];
  let first = base.length;
  let resized = false;
  const nOps = rng.int(1, maxOps + 1);
  for (let k = 0; k < nOps; k++) {
    const len = b.length;
    const at = len > 0 ? rng.int(0, len) : 0;
    const kind = len === 0 ? 'insert' : rng.pick(['flip', 'byte', 'interesting', 'u32', 'truncate', 'insert', 'delete', 'duplicate', 'append'] as const);
    switch (kind) {
      case 'flip': b[at] = b[at]! ^ (1 << rng.int(0, 8)); first = Math.min(first, at); break;
      case 'byte': b[at] = rng.int(0, 256); first = Math.min(first, at); break;
      case 'interesting': b[at] = rng.pick(INTERESTING_BYTES); first = Math.min(first, at); break;
      case 'u32': {
        const v = rng.pick(INTERESTING_U32);
        const little = rng.next() < 0.5;
        for (let i = 0; i < 4 && at + i < len; i++) b[at + i] = (v >>> (8 * (little ? i : 3 - i))) & 0xff;
        first = Math.min(first, at);
        break;
      }
      case 'truncate': b = b.slice(0, at); first = Math.min(first, at); resized = true; break;
      case 'insert': {
        const extra = Uint8Array.from({ length: rng.int(1, 17) }, () => rng.int(0, 256));
        b = concat(b.subarray(0, at), extra, b.subarray(at));
        first = Math.min(first, at);
        resized = true;
        break;
      }
      case 'delete': {
        const end = Math.min(len, at + rng.int(1, 17));
        b = concat(b.subarray(0, at), b.subarray(end));
        first = Math.min(first, at);
        resized = true;
        break;
      }
      case 'duplicate': {
        const end = Math.min(len, at + rng.int(1, 65));
        b = concat(b.subarray(0, end), b.subarray(at, end), b.subarray(end));
        first = Math.min(first, end);
        resized = true;
        break;
      }
      case 'append': b = concat(b, Uint8Array.from({ length: rng.int(1, 33) }, () => rng.int(0, 256))); first = Math.min(first, len); resized = true; break;
    }
    ops.push(`${kind}@${at}`);
  }
  if (!resized && equalBytes(b, base)) return mutateBytes(base, rng, maxOps);
  return { bytes: b, ops, firstChange: first, resized };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---- JSON value mutations ---------------------------------------------------------------

/** Values that break range and type checks. */
export const HOSTILE_VALUES: readonly unknown[] = [
  0, -1, 1, -0, 0.5, 1.5, 1e9, -1e9, 1e300, -1e300, 2 ** 53, 65536, 100001, '', 'x', '1', 'NaN', 'Infinity', null, true, false, [], [1], [1, 2, 3], {}, { a: 1 },
];

type Json = unknown;

function paths(v: Json, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out);
  return out;
}

/**
 * One to `maxOps` edits of a JSON value: a leaf or subtree replaced by a hostile value, a key
 * removed, an unknown key added, a number scaled or negated, a value wrapped in deep nesting.
 * Returns the new value and the edits made.
 */
export function mutateJson(base: Json, rng: FuzzRng, maxOps = 3): { value: Json; ops: string[] } {
  const root = { v: JSON.parse(JSON.stringify(base)) as Json };
  const ops: string[] = [];
  const nOps = rng.int(1, maxOps + 1);
  for (let k = 0; k < nOps; k++) {
    const all = paths(root.v);
    const path = rng.pick(all);
    let parent: Record<string | number, Json> = root as unknown as Record<string, Json>;
    let key: string | number = 'v';
    for (const p of path) {
      parent = parent[key] as Record<string | number, Json>;
      key = p;
    }
    const here = parent[key];
    const kind = rng.pick(['hostile', 'hostile', 'remove', 'unknown-key', 'scale', 'negate', 'nest', 'stringify'] as const);
    const name = path.join('.') || '(root)';
    switch (kind) {
      case 'hostile': parent[key] = rng.pick(HOSTILE_VALUES); break;
      case 'remove':
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else if (parent !== (root as unknown)) delete parent[key];
        break;
      case 'unknown-key':
        if (here !== null && typeof here === 'object' && !Array.isArray(here)) (here as Record<string, Json>)[`fuzz${rng.int(0, 100)}`] = rng.pick(HOSTILE_VALUES);
        break;
      case 'scale': if (typeof here === 'number') parent[key] = here * rng.pick([1000, 1e6, 0.001, 2 ** 20]); break;
      case 'negate': if (typeof here === 'number') parent[key] = -here; break;
      case 'nest': {
        let v: Json = here;
        const depth = rng.pick([2, 40, 1000]);
        for (let i = 0; i < depth; i++) v = rng.next() < 0.5 ? [v] : { a: v };
        parent[key] = v;
        break;
      }
      case 'stringify': parent[key] = JSON.stringify(here) ?? 'undefined'; break;
    }
    ops.push(`${kind}:${name}`);
  }
  return { value: root.v, ops };
}

// ---- argument-list mutations --------------------------------------------------------------

/** Tokens that break flag parsing: invalid numbers, empty strings, stray dashes, unicode. */
export const HOSTILE_TOKENS: readonly string[] = [
  '', '-', '--', '-1', '0', '1.5', '1e400', 'NaN', 'Infinity', '0x10', '1e3', ' 1', 'abc', '\u00e9\u{1f600}', '--n', '--seed', '--force',
  '--model.hiddenChannels=-1', '--train.steps=NaN', '--train.x=1', '--model.', '--dataset.bits=9', 'x'.repeat(5000),
];

/** One to `maxOps` edits of an argument list: tokens replaced, dropped, duplicated or inserted. */
export function mutateArgs(base: readonly string[], rng: FuzzRng, maxOps = 2): { args: string[]; ops: string[] } {
  const args = [...base];
  const ops: string[] = [];
  const nOps = rng.int(1, maxOps + 1);
  for (let k = 0; k < nOps; k++) {
    const at = rng.int(0, args.length + 1);
    const kind = args.length === 0 ? 'insert' : rng.pick(['replace', 'replace', 'drop', 'duplicate', 'insert', 'swap'] as const);
    const i = Math.min(at, args.length - 1);
    switch (kind) {
      case 'replace': args[i] = rng.pick(HOSTILE_TOKENS); break;
      case 'drop': args.splice(i, 1); break;
      case 'duplicate': args.splice(i, 0, args[i]!); break;
      case 'insert': args.splice(at, 0, rng.pick(HOSTILE_TOKENS)); break;
      case 'swap': {
        const j = rng.int(0, args.length);
        [args[i], args[j]] = [args[j]!, args[i]!];
        break;
      }
    }
    ops.push(`${kind}@${at}`);
  }
  return { args, ops };
}

// ---- outcomes -----------------------------------------------------------------------------

/**
 * What one mutated input did. `clean-error`: refused with a one-line user error; `accepted`: taken,
 * and the input was valid (or the change is one its format cannot detect); the rest are failures.
 */
export type Verdict = 'clean-error' | 'accepted' | 'crash' | 'hang' | 'internal-error' | 'silent-acceptance' | 'file-changed';

export const FAILURES: readonly Verdict[] = ['crash', 'hang', 'internal-error', 'silent-acceptance', 'file-changed'];

export interface FuzzTally {
  family: string;
  tried: number;
  counts: Record<Verdict, number>;
  /** The first few failures: case index, verdict, the edits and what happened. */
  failures: { index: number; verdict: Verdict; ops: string[]; detail: string }[];
  seconds: number;
}

export interface FuzzCase {
  ops: string[];
  /** Runs the case; resolves to its verdict and a detail for the report. */
  run: () => Promise<{ verdict: Verdict; detail?: string }> | { verdict: Verdict; detail?: string };
}

export interface FuzzOptions {
  family: string;
  seed: number;
  count: number;
  /** Makes case `index` from its own generator. */
  make: (rng: FuzzRng, index: number) => FuzzCase;
  /** A case taking longer than this counts as a hang (default 2000 ms). */
  hangMs?: number;
  /** Failures kept for the report (default 5). */
  keep?: number;
}

/** Runs `count` cases of one family and tallies their verdicts. An escaped throw is a crash. */
export async function runFuzz(o: FuzzOptions): Promise<FuzzTally> {
  const counts = Object.fromEntries((['clean-error', 'accepted', ...FAILURES] as Verdict[]).map((v) => [v, 0])) as Record<Verdict, number>;
  const failures: FuzzTally['failures'] = [];
  const hangMs = o.hangMs ?? 2000;
  const started = performance.now();
  for (let i = 0; i < o.count; i++) {
    const c = o.make(new FuzzRng(o.seed, i), i);
    const t0 = performance.now();
    let verdict: Verdict;
    let detail: string;
    try {
      ({ verdict, detail = '' } = await c.run());
    } catch (e) {
      verdict = 'crash';
      detail = e instanceof Error ? `${e.name}: ${e.message}`.slice(0, 300) : String(e);
    }
    if (performance.now() - t0 > hangMs && verdict !== 'crash') {
      detail = `${verdict} after ${Math.round(performance.now() - t0)} ms${detail ? `: ${detail}` : ''}`;
      verdict = 'hang';
    }
    counts[verdict]++;
    if (FAILURES.includes(verdict) && failures.length < (o.keep ?? 5)) failures.push({ index: i, verdict, ops: c.ops, detail });
  }
  return { family: o.family, tried: o.count, counts, failures, seconds: (performance.now() - started) / 1000 };
}

/** Phrases of engine internals that a message meant for a user must never carry. */
export const INTERNAL_PHRASES = /internal error|undefined|is not a function|Cannot read prop|Maximum call stack|Invalid typed array|Invalid array length|out of bounds|outside the bounds/i;

/**
 * The verdict of a thrown error: a one-line user error free of engine internals is clean;
 * anything else is internal.
 */
export function errorVerdict(e: unknown, isUserError: (e: unknown) => boolean): { verdict: Verdict; detail: string } {
  const message = e instanceof Error ? e.message : String(e);
  const clean = isUserError(e) && message.length > 0 && !message.includes('\n') && !INTERNAL_PHRASES.test(message);
  return { verdict: clean ? 'clean-error' : 'internal-error', detail: `${e instanceof Error ? e.name : typeof e}: ${message.slice(0, 300)}` };
}

/** The failure count of a tally (must be 0). */
export function failureCount(t: FuzzTally): number {
  return FAILURES.reduce((a, v) => a + t.counts[v], 0);
}

/** One line per family: mutations tried, clean errors, accepted, and the five failure counts. */
export function formatTallies(tallies: readonly FuzzTally[]): string {
  const head = ['family', 'tried', 'clean errors', 'accepted', 'crashes', 'hangs', 'internal', 'silent', 'files changed', 'seconds'];
  const rows = tallies.map((t) => [
    t.family, t.tried, t.counts['clean-error'], t.counts.accepted, t.counts.crash, t.counts.hang, t.counts['internal-error'],
    t.counts['silent-acceptance'], t.counts['file-changed'], t.seconds.toFixed(1),
  ].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const details = tallies.flatMap((t) => t.failures.map((f) => `  ${t.family} #${f.index} ${f.verdict} [${f.ops.join(' ')}]: ${f.detail}`));
  return [line(head), ...rows.map(line), ...details].join('\n');
}

// ---- files changed by a failed command -----------------------------------------------------

/** Every file under `dir` with a hash of its bytes (symlinks by their target text). */
export function snapshotDir(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const p = join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      if (st.isDirectory()) {
        out.set(`${r}/`, 'dir');
        walk(p, r);
      } else if (st.isFile()) out.set(r, createHash('sha256').update(readFileSync(p)).digest('hex'));
      else out.set(r, `special:${st.mode}`);
    }
  };
  walk(dir, '');
  return out;
}

/** Paths created, removed or changed between two snapshots. */
export function changedPaths(before: Map<string, string>, after: Map<string, string>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((k) => before.get(k) !== after.get(k)).sort();
}

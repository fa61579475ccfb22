// A run's configuration: the preset's `model` and `dataset` sections plus a `train` section, all
// plain JSON, with `--section.key=value` overrides type-checked against the defaults (nanoGPT's
// configurator): an unknown key is refused with the list of known ones, a value must parse as its
// default's type. The sections, defaults and checks are in run-config.ts (no file access); the
// config files, presets and overrides here.

import { readFileSync } from 'node:fs';
import { ConfigError } from '../config.js';
import { MAX_CONFIG_FILE, readRegularFile } from '../io/files.js';
import { loadPreset } from '../models/presets.js';
import { clone, isObject, resolveRunConfig, SECTIONS, type Raw } from './run-config.js';

export * from './run-config.js';

/** The raw sections of a preset (model unresolved, so overrides merge into what the file says). */
export function presetRaw(name: string): Raw {
  const p = loadPreset(name); // checks the name, lists the presets when unknown
  return { preset: name, model: clone(p.model), dataset: clone(p.dataset), train: clone(p.train) };
}

/** A JSON config file: {model, dataset, train?}. */
export function configFileRaw(file: string): Raw {
  let text: string;
  try {
    text = readRegularFile(file, MAX_CONFIG_FILE, 'a JSON config').toString('utf8');
  } catch (e) {
    throw new ConfigError('--config', (e as Error).message);
  }
  let raw: Raw;
  try {
    raw = JSON.parse(text) as Raw;
  } catch (e) {
    throw new ConfigError('--config', `'${file}' is not valid JSON: ${(e as Error).message.replace(/\s+/g, ' ')}`);
  }
  if (!isObject(raw) || Array.isArray(raw)) {
    const got = raw === null ? 'null' : Array.isArray(raw) ? 'a list' : `a ${typeof raw}`;
    throw new ConfigError('--config', `'${file}' holds ${got}; a config is a JSON object with model, dataset and train sections`);
  }
  const depth = nestingDepth(raw, MAX_CONFIG_DEPTH);
  if (depth > MAX_CONFIG_DEPTH) throw new ConfigError('--config', `'${file}' nests objects and lists more than ${MAX_CONFIG_DEPTH} levels deep; a config needs 4`);
  return raw;
}

/** A config is a few levels deep; far deeper is damage (and would exhaust the checks' stack). */
const MAX_CONFIG_DEPTH = 32;

/** How deep `v` nests objects and lists, counted up to just past `limit` (iteratively: no recursion to overflow). */
function nestingDepth(v: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    deepest = Math.max(deepest, d + 1);
    if (deepest > limit) return deepest;
    for (const child of Object.values(x as Record<string, unknown>)) stack.push([child, d + 1]);
  }
  return deepest;
}

/** The value at a dotted path of a resolved config, or undefined. */
function lookup(obj: unknown, path: readonly string[]): unknown {
  let cur = obj;
  for (const k of path) {
    if (!isObject(cur) || !(k in cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

/** Parses the text of an override as the type of the value it replaces. */
function parseValue(key: string, text: string, like: unknown): unknown {
  if (typeof like === 'number') {
    const v = Number(text);
    if (text.trim() === '' || !Number.isFinite(v)) throw new ConfigError(key, `must be a number (like the default ${like}), got '${text}'`);
    return v;
  }
  if (typeof like === 'boolean') {
    if (text !== 'true' && text !== 'false') throw new ConfigError(key, `must be true or false, got '${text}'`);
    return text === 'true';
  }
  if (typeof like === 'string') return text;
  if (Array.isArray(like) && text.startsWith('@')) {
    // A list from a JSON file: the file's list, or its `colours` (a palette from `arpix palette fit`).
    const file = text.slice(1);
    let v: unknown;
    try {
      v = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError(key, `could not read the JSON list in ${file}: ${(e as Error).message}`);
    }
    const list = isObject(v) && Array.isArray(v.colours) ? v.colours : v;
    if (!Array.isArray(list)) throw new ConfigError(key, `must be a JSON list, but ${file} holds neither a list nor an object with 'colours'`);
    return list;
  }
  try {
    return JSON.parse(text);
  } catch {
    if (Array.isArray(like)) throw new ConfigError(key, `must be a JSON list (like ${JSON.stringify(like)}), got '${text}'`);
    return text;
  }
}

/**
 * Applies `section.key=value` overrides to a raw config. Values are parsed as the type the key has
 * in the resolved config (so `--train.lr=3e-4` is a number); keys the config lacks are left for
 * resolveRunConfig to refuse with the list of known keys.
 */
export function applyOverrides(raw: Raw, overrides: readonly string[]): Raw {
  const out = clone(raw);
  const resolved = resolveRunConfig(raw, typeof raw.preset === 'string' ? raw.preset : '') as unknown as Raw;
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq < 1) throw new ConfigError(o, 'is not an override: write section.key=value, e.g. train.lr=3e-4');
    const key = o.slice(0, eq);
    const path = key.split('.');
    if (!(SECTIONS as readonly string[]).includes(path[0]!) || path.length < 2 || path.some((p) => p === '')) {
      throw new ConfigError(key, `is not a known key: overrides look like ${SECTIONS.map((s) => `--${s}.KEY=VALUE`).join(', ')}`);
    }
    const like = lookup(resolved, path);
    const value = parseValue(key, o.slice(eq + 1), like);
    let cur = out;
    for (const k of path.slice(0, -1)) {
      if (!isObject(cur[k])) cur[k] = {};
      cur = cur[k] as Raw;
    }
    cur[path.at(-1)!] = value;
  }
  return out;
}

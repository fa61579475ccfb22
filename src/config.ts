// Configs are data: plain JSON objects checked against their defaults. Unknown keys are refused
// with the list of known ones, and every value must have its default's type.

import { ArpixError } from './errors.js';

export class ConfigError extends ArpixError {
  constructor(readonly key: string, detail: string) {
    super(`config: ${key} ${detail}`);
  }
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  return typeof v;
}

/**
 * Merges `given` over `defaults`, refusing keys the defaults lack and values of another type.
 * Objects merge key by key; lists and scalars replace. `open` names object keys whose contents
 * are checked elsewhere (e.g. a likelihood, whose keys depend on its kind).
 */
export function resolveConfig<T extends Record<string, unknown>>(defaults: T, given: Record<string, unknown>, prefix = '', open: readonly string[] = []): T {
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new ConfigError(prefix || 'config', `must be an object, got ${typeName(given)}`);
  }
  const out: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(given)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (!(key in defaults)) {
      throw new ConfigError(path, `is not a known key; known keys${prefix ? ` of ${prefix}` : ''}: ${Object.keys(defaults).join(', ')}`);
    }
    const dflt = (defaults as Record<string, unknown>)[key];
    if (open.includes(path)) {
      out[key] = value;
    } else if (typeName(dflt) === 'object' && typeName(value) === 'object') {
      out[key] = resolveConfig(dflt as Record<string, unknown>, value as Record<string, unknown>, path, open);
    } else if (dflt !== null && typeName(dflt) !== typeName(value)) {
      throw new ConfigError(path, `must be a ${typeName(dflt)} (like the default ${JSON.stringify(dflt)}), got ${JSON.stringify(value)}`);
    } else if (Array.isArray(dflt) && Array.isArray(value) && dflt.length > 0 && value.some((v) => typeName(v) !== typeName(dflt[0]))) {
      throw new ConfigError(path, `must be a list of ${typeName(dflt[0])}s, got ${JSON.stringify(value)}`);
    } else {
      out[key] = value;
    }
  }
  return out as T;
}

// Test cases for every family in the table: the invariant and sampler tests build their cases
// here from each family's `tiny` architecture and `supports`, so a new family is tested by
// adding its table entry, with no test naming it.

import { FAMILIES, type FamilyCase, type ModelFamily } from '../models/index.js';

export type TinyConfig = Record<string, unknown> & { kind: string };

export interface CaseTemplate {
  name: string;
  height: number;
  width: number;
  channels: number;
  likelihood: Record<string, unknown> & { kind: FamilyCase['likelihood'] };
  numClasses?: number;
  conditionDim?: number;
}

/** A family's tiny model of a template's shape, head and conditioning. */
export function tinyConfig(family: ModelFamily, t: CaseTemplate, extra: Record<string, unknown> = {}): TinyConfig {
  return {
    kind: family.kind,
    height: t.height,
    width: t.width,
    channels: t.channels,
    likelihood: t.likelihood,
    numClasses: t.numClasses ?? 0,
    conditionDim: t.conditionDim ?? 0,
    ...family.tiny(t.height, t.width),
    ...extra,
  };
}

function supported(family: ModelFamily, t: CaseTemplate): boolean {
  return family.supports({ height: t.height, width: t.width, channels: t.channels, likelihood: t.likelihood.kind, numClasses: t.numClasses ?? 0, conditionDim: t.conditionDim ?? 0 });
}

/** [test name, config] for every family × template the family supports, and each of its variants. */
export function familyCases(templates: readonly CaseTemplate[], filter: (f: ModelFamily) => boolean = () => true): [string, TinyConfig, ModelFamily][] {
  const out: [string, TinyConfig, ModelFamily][] = [];
  for (const family of FAMILIES) {
    if (!filter(family)) continue;
    for (const t of templates) {
      if (!supported(family, t)) continue;
      out.push([`${family.kind} ${t.name}`, tinyConfig(family, t), family]);
      for (const [variant, arch] of Object.entries(family.variants?.(t.height, t.width) ?? {})) {
        out.push([`${family.kind} (${variant}) ${t.name}`, tinyConfig(family, t, arch as Record<string, unknown>), family]);
      }
    }
  }
  return out;
}

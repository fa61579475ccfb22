// The family table is the one registry: every kind it lists has a PyTorch mirror registered in
// python/arpix_torch (FAMILIES, kind → module) under the module name the entry gives, and the
// Python registry names no kind the table lacks. A family that joins the table without a mirror
// fails here, naming what is missing.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FAMILIES } from './families.js';

const python = fileURLToPath(new URL('../../python/', import.meta.url));

/** python/arpix_torch's FAMILIES, read by Python itself (the package's __init__ imports no torch). */
function pythonRegistry(): Record<string, string> | string {
  const r = spawnSync('python3', ['-c', 'import json, sys; sys.path.insert(0, sys.argv[1]); import arpix_torch; print(json.dumps(arpix_torch.FAMILIES))', python], { encoding: 'utf8' });
  if (r.error) return `python3 is not available (${r.error.message})`;
  if (r.status !== 0) throw new Error(`reading python/arpix_torch/__init__.py failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, string>;
}

test('every family in the table has its PyTorch mirror, and the mirrors name no other kind', (t) => {
  const registry = pythonRegistry();
  if (typeof registry === 'string') {
    t.skip(registry);
    return;
  }
  const problems: string[] = [];
  for (const f of FAMILIES) {
    if (!(f.kind in registry)) problems.push(`kind '${f.kind}' is in the family table but not in FAMILIES of python/arpix_torch/__init__.py: add "${f.kind}": "${f.mirror}" and python/arpix_torch/${f.mirror}.py`);
    else if (registry[f.kind] !== f.mirror) problems.push(`kind '${f.kind}': the family entry's mirror is '${f.mirror}' but python/arpix_torch maps it to '${registry[f.kind]}'`);
    if (!existsSync(`${python}arpix_torch/${f.mirror}.py`)) problems.push(`kind '${f.kind}': its mirror module python/arpix_torch/${f.mirror}.py does not exist`);
  }
  const kinds = new Set(FAMILIES.map((f) => f.kind));
  for (const k of Object.keys(registry)) if (!kinds.has(k)) problems.push(`python/arpix_torch mirrors kind '${k}', which the family table (src/models/families.ts) does not have`);
  assert.deepEqual(problems, []);
});

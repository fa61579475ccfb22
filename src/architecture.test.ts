// The layout's rules, read from the code's own imports (scripts/architecture.ts): no import
// circles between files or folders, no arrow up the layer order, every folder in a layer. The only
// circles allowed close through `import type`, inside one folder (a family's cached stepper naming
// its own model's class, whose public fields it reads).

import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { report } from '../scripts/architecture.js';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const r = report(root, []);

test('no import circles between files', () => assert.deepEqual(r.fileCircles, []));

test('no import circles between folders', () => assert.deepEqual(r.folderCircles, []));

test('no import points up the layer order (scripts/architecture.ts LAYERS)', () => {
  assert.deepEqual(r.upward.map((e) => `${e.from} → ${e.to}`), []);
});

test('every source file is in a layer', () => assert.deepEqual(r.unlayered, []));

test('circles through `import type` stay inside one folder', () => {
  for (const c of r.typeOnlyCircles) assert.equal(new Set(c.map((f) => dirname(f))).size, 1, `type-only circle across folders: ${c.join(' ↔ ')}`);
});

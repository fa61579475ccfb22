// The layout's rules, read from the code's own imports (scripts/architecture.ts): no import
// circles between files or folders, not even through `import type` (a family's cached stepper
// names its model's class; the model does not name its stepper, which the family entry attaches),
// no arrow up the layer order, every file in a layer.

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

test('no circles through `import type` either', () => assert.deepEqual(r.typeOnlyCircles, []));

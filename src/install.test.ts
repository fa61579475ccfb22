// What a fresh `npm ci` may run: every dependency with an install script is named in package.json's
// allowScripts (npm 11 warns about the others, and npm 12 skips them), and nothing else is.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const read = (file: string) => JSON.parse(readFileSync(new URL(`../${file}`, import.meta.url), 'utf8')) as Record<string, unknown>;

test('every dependency whose install script npm runs is declared in allowScripts, and only those', () => {
  const lock = read('package-lock.json') as { packages: Record<string, { hasInstallScript?: boolean }> };
  const withScripts = Object.entries(lock.packages)
    .filter(([path, p]) => path !== '' && p.hasInstallScript === true)
    .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
  const allowed = (read('package.json').allowScripts ?? {}) as Record<string, boolean>;
  assert.ok(withScripts.length > 0, 'the lockfile marks no install script at all: has its format changed?');
  assert.deepEqual([...new Set(withScripts)].sort(), Object.keys(allowed).sort());
  for (const name of withScripts) assert.equal(allowed[name], true, `${name}'s install script is needed (esbuild checks its binary)`);
});

test('the version the code knows (src/version.ts) is package.json\'s', async () => {
  const { ARPIX_VERSION } = await import('./version.js');
  assert.equal(ARPIX_VERSION, read('package.json').version, 'set src/version.ts to package.json\'s version');
});

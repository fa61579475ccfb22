// The registry's choice from ARPIX_BACKEND, in child processes (the variable is read once, at
// import): a backend asked for that is absent or did not load makes every kernel refuse with one
// error saying why — nothing computes on another backend — until setBackend() chooses again.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const registry = JSON.stringify(fileURLToPath(new URL('./registry.ts', import.meta.url)));
const ops = JSON.stringify(fileURLToPath(new URL('../ops/index.ts', import.meta.url)));

/** Runs `body` in a child with ARPIX_BACKEND=`choice`, the registry as `r` and the ops as `ops`; its stdout lines. */
function child(choice: string, body: string): string[] {
  const code = `const r = await import(${registry}); const ops = await import(${ops});
    const tryAdd = () => { try { return 'sum ' + ops.add(ops.tensor([1]), ops.tensor([2])).data[0]; } catch (e) { return 'refused: ' + e.message; } };
    ${body}`;
  const { NODE_OPTIONS: _, ...env } = process.env;
  const c = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { env: { ...env, ARPIX_BACKEND: choice }, encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  return c.stdout.trim().split('\n');
}

test('an unknown ARPIX_BACKEND: importing works, every kernel refuses with the one line, setBackend mends it', () => {
  const lines = child('gpu', `console.log(r.backendChoiceError()?.message); console.log(tryAdd()); r.setBackend('ts'); console.log(r.backendChoiceError()); console.log(tryAdd());`);
  assert.deepEqual(lines, [
    "ARPIX_BACKEND: value must be one of ts, native, wasm, got 'gpu'",
    "refused: ARPIX_BACKEND: value must be one of ts, native, wasm, got 'gpu'",
    'null',
    'sum 3',
  ]);
});

test('ARPIX_BACKEND=wasm: refused until registered; registered without a module, refused with why and how to build it; registered, used', () => {
  const lines = child('wasm', `console.log(tryAdd()); r.registerBackend('wasm', null, 'the module is missing'); console.log(tryAdd());
    r.registerBackend('wasm', { name: 'wasm' }); console.log(r.backendName(), r.backendChoiceError(), tryAdd());`);
  assert.match(lines[0]!, /^refused: ARPIX_BACKEND: wasm asks for the wasm backend, which was never registered/);
  assert.match(lines[1]!, /^refused: ARPIX_BACKEND: wasm asks for the wasm backend, which is not available: the module is missing\. Build it with `npm run build:wasm`/);
  assert.equal(lines[2], 'wasm null sum 3'); // a backend of no kernels: every kernel falls back to ts
});

test('without ARPIX_BACKEND, native becomes the default when it registers, and a failed native falls back to ts', () => {
  assert.deepEqual(child('', `console.log(r.backendName()); r.registerBackend('native', null, 'no addon'); console.log(r.backendName(), tryAdd());`), ['ts', 'ts sum 3']);
  assert.deepEqual(child('', `r.registerBackend('native', { name: 'native' }); console.log(r.backendName(), tryAdd());`), ['native sum 3']);
});

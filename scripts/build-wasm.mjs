// Builds the WebAssembly backend: wasm/*.c → wasm/build/arpix.wasm with Debian's clang-14 and
// wasm-ld-14 (SIMD128, no libc, no fused multiply-adds: the same bits on every machine). Skips
// when the module is newer than its sources; checks that the module exports every function
// src/backends/wasm/exports.ts lists. `npm run build:wasm`; `--force` rebuilds.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'wasm');
// Beside its sources, not under build/, which node-gyp's rebuild deletes.
const outDir = join(root, 'wasm', 'build');
const out = join(outDir, 'arpix.wasm');
const exportsFile = join(root, 'src', 'backends', 'wasm', 'exports.ts');
const force = process.argv.includes('--force');

function fail(message) {
  console.error(`arpix build:wasm: ${message}`);
  process.exit(1);
}

function have(tool) {
  const r = spawnSync(tool, ['--version'], { encoding: 'utf8' });
  return r.status === 0;
}

const sources = readdirSync(src).filter((f) => f.endsWith('.c')).sort();
const inputs = [...readdirSync(src).map((f) => join(src, f)), fileURLToPath(import.meta.url)];
if (!force && existsSync(out)) {
  const built = statSync(out).mtimeMs;
  if (inputs.every((f) => statSync(f).mtimeMs <= built)) {
    console.log('arpix build:wasm: wasm/build/arpix.wasm is up to date');
    process.exit(0);
  }
}

for (const tool of ['clang-14', 'wasm-ld-14']) {
  if (!have(tool)) fail(`${tool} is missing: install it with \`apt-get install -y clang-14 lld-14\`, then run \`npm run build:wasm\``);
}

mkdirSync(join(outDir, 'obj'), { recursive: true });
const cflags = ['--target=wasm32', '-msimd128', '-mbulk-memory', '-O3', '-nostdlib', '-fno-builtin', '-ffp-contract=off', '-std=c11', '-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter'];
const objects = [];
for (const file of sources) {
  const obj = join(outDir, 'obj', file.replace(/\.c$/, '.o'));
  const r = spawnSync('clang-14', [...cflags, '-c', join(src, file), '-o', obj], { encoding: 'utf8' });
  if (r.status !== 0) fail(`clang-14 failed on wasm/${file}:\n${r.stderr}`);
  objects.push(obj);
}
const partial = `${out}.partial`;
const link = spawnSync('wasm-ld-14', ['--no-entry', '--export=__heap_base', '-z', 'stack-size=1048576', '--initial-memory=4194304', '--max-memory=2147483648', ...objects, '-o', partial], { encoding: 'utf8' });
if (link.status !== 0) fail(`wasm-ld-14 failed:\n${link.stderr}`);

// The module must export what the TypeScript side calls.
const list = /WASM_EXPORTS = \[([^\]]*)\]/.exec(readFileSync(exportsFile, 'utf8'));
if (!list) fail('src/backends/wasm/exports.ts has no WASM_EXPORTS = [...] list to check the module against');
const expected = [...list[1].matchAll(/'([A-Za-z_0-9]+)'/g)].map((m) => m[1]);
const { Module } = globalThis.WebAssembly;
const exported = new Set(Module.exports(new Module(readFileSync(partial))).map((e) => e.name));
const missing = expected.filter((name) => !exported.has(name));
if (missing.length > 0) {
  rmSync(partial);
  fail(`the module lacks ${missing.join(', ')}, which src/backends/wasm/exports.ts lists: add them to wasm/*.c`);
}
renameSync(partial, out);
console.log(`arpix build:wasm: built wasm/build/arpix.wasm (${(statSync(out).size / 1024).toFixed(0)} KiB, ${exported.size} exports)`);

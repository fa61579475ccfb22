// Builds the WebAssembly backend: wasm/*.c → wasm/build/arpix.wasm with Debian's clang-14 and
// wasm-ld-14 (SIMD128, no libc, no fused multiply-adds: the same bits on every machine), and from
// the same sources wasm/build/arpix-threads.wasm (-DARPIX_THREADS, atomics, a shared memory the
// caller gives it, __stack_pointer exported so each helper thread gets its own stack). Skips when
// both modules are newer than their sources; checks that each exports every function
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
const outThreads = join(outDir, 'arpix-threads.wasm');
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
if (!force && existsSync(out) && existsSync(outThreads)) {
  const built = Math.min(statSync(out).mtimeMs, statSync(outThreads).mtimeMs);
  if (inputs.every((f) => statSync(f).mtimeMs <= built)) {
    console.log('arpix build:wasm: wasm/build/arpix.wasm and arpix-threads.wasm are up to date');
    process.exit(0);
  }
}

for (const tool of ['clang-14', 'wasm-ld-14']) {
  if (!have(tool)) fail(`${tool} is missing: install it with \`apt-get install -y clang-14 lld-14\`, then run \`npm run build:wasm\``);
}

const cflags = ['--target=wasm32', '-msimd128', '-mbulk-memory', '-O3', '-nostdlib', '-fno-builtin', '-ffp-contract=off', '-std=c11', '-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter'];
const ldflags = ['--no-entry', '--export=__heap_base', '-z', 'stack-size=1048576', '--initial-memory=4194304', '--max-memory=2147483648'];
// The threads module's memory is imported and shared: its page counts are THREADS_MEMORY's in
// src/backends/wasm/exports.ts, which creates it.
const threadFlags = ['-matomics', '-mmutable-globals', '-DARPIX_THREADS'];
const threadLd = ['--shared-memory', '--import-memory', '--export=__stack_pointer', '--export=thread_loop', '--export=threads_start', '--export=threads_set', '--export=threads_ran'];

const list = /WASM_EXPORTS = \[([^\]]*)\]/.exec(readFileSync(exportsFile, 'utf8'));
if (!list) fail('src/backends/wasm/exports.ts has no WASM_EXPORTS = [...] list to check the module against');
const expected = [...list[1].matchAll(/'([A-Za-z_0-9]+)'/g)].map((m) => m[1]);

function build(target, objDir, extraC, extraLd, extraExports) {
  mkdirSync(objDir, { recursive: true });
  const objects = [];
  for (const file of sources) {
    const obj = join(objDir, file.replace(/\.c$/, '.o'));
    const r = spawnSync('clang-14', [...cflags, ...extraC, '-c', join(src, file), '-o', obj], { encoding: 'utf8' });
    if (r.status !== 0) fail(`clang-14 failed on wasm/${file}:\n${r.stderr}`);
    objects.push(obj);
  }
  const partial = `${target}.partial`;
  const link = spawnSync('wasm-ld-14', [...ldflags, ...extraLd, ...objects, '-o', partial], { encoding: 'utf8' });
  if (link.status !== 0) fail(`wasm-ld-14 failed:\n${link.stderr}`);
  // The module must export what the TypeScript side calls.
  const { Module } = globalThis.WebAssembly;
  const module = new Module(readFileSync(partial));
  const exported = new Set(Module.exports(module).map((e) => e.name));
  if (extraLd.includes('--import-memory')) for (const i of Module.imports(module)) if (i.kind === 'memory') exported.add(i.name);
  const missing = [...expected, ...extraExports].filter((name) => !exported.has(name));
  if (missing.length > 0) {
    rmSync(partial);
    fail(`${target.slice(root.length + 1)} lacks ${missing.join(', ')}, which src/backends/wasm/exports.ts lists: add them to wasm/*.c`);
  }
  renameSync(partial, target);
  console.log(`arpix build:wasm: built ${target.slice(root.length + 1)} (${(statSync(target).size / 1024).toFixed(0)} KiB, ${exported.size} exports)`);
}

build(out, join(outDir, 'obj'), [], [], []);
build(outThreads, join(outDir, 'obj-threads'), threadFlags, threadLd, ['__stack_pointer', 'thread_loop', 'threads_start', 'threads_set', 'threads_ran']);

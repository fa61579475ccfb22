// The browser build of the core: esbuild bundles src/browser.ts for the browser with nothing
// external (a Node built-in anywhere in its imports fails the build), the bundle names no Node
// built-in, and it runs in a bare JavaScript context — no process, Buffer, require or import of
// Node — where every family's checkpoint decodes (sums verified) and samples the same images, and
// evaluates to the same log-likelihoods, as in Node on the same backend.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import vm from 'node:vm';
import { build } from 'esbuild';
import { browserBundleOptions } from '../scripts/browser-bundle.js';
import { setBackend } from './backends/registry.js';
import { portableSha256Hash, sha256 } from './env.js';
import { decodeCheckpoint } from './io/checkpoint.js';
import { modelFromCheckpoint } from './models/checkpoint.js';
import { FAMILIES } from './models/families.js';
import { sample } from './models/sampling/index.js';
import { noGrad } from './ops/index.js';
import { trainedCheckpoint } from './testing/checkpoints.js';

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

test('the browser bundle builds for platform browser with nothing external, and imports no Node built-in', async () => {
  const r = await build({ ...browserBundleOptions(), write: false });
  assert.ok(r.outputFiles);
  const imports = Object.values(r.metafile.inputs).flatMap((i) => i.imports.map((x) => x.path));
  assert.deepEqual(imports.filter((p) => NODE_BUILTINS.has(p) || p.startsWith('node:')), []);
  assert.deepEqual(Object.values(r.metafile.outputs).flatMap((o) => o.imports).filter((x) => x.external), [], 'nothing is left for the page to import');
  const text = r.outputFiles[0]!.text;
  assert.ok(text.length > 50_000, 'the bundle holds the core');
  for (const pattern of [/node:/, /(?<![\w$.])require\(/, /(?<![\w$])Buffer\./]) assert.doesNotMatch(text, pattern);
  // The core's sources themselves: no module of it imports Node (the build would fail; this names the file).
  const nodeInputs = Object.keys(r.metafile.inputs).filter((f) => /src\/(backends\/node|io\/(disk|files|atomic)|models\/presets)\.ts$/.test(f));
  assert.deepEqual(nodeInputs, [], 'Node-only modules stay out of the bundle');
});

test('SHA-256: the portable implementation the browser uses equals OpenSSL\'s', () => {
  for (const data of [new Uint8Array(0), new Uint8Array(1000).map((_, i) => i * 7), 'arpix ✓ sums']) {
    assert.equal(portableSha256Hash().update(data).hex(), sha256().update(data).hex());
  }
});

// ---- the bundle in a bare context ------------------------------------------------------------

interface BareArpix {
  setBackend(name: string): void;
  backendName(): string;
  decodeCheckpoint(bytes: Uint8Array, file: string): { integrity: string };
  modelFromCheckpoint(c: unknown): { logProb(x: unknown): { data: Float32Array }; config: Record<string, unknown> };
  sample(model: unknown, opts: Record<string, unknown>): { data: Int32Array; shape: number[] };
  noGrad<T>(fn: () => T): T;
  tensor(data: Int32Array, shape: number[]): unknown;
}

let bare: BareArpix;
let dir: string;
const checkpoints = new Map<string, Uint8Array>();

before(async () => {
  const r = await build({ ...browserBundleOptions({ format: 'iife' }), write: false });
  assert.ok(r.outputFiles);
  // What a Web Worker has, and nothing of Node's.
  const context = vm.createContext({
    TextEncoder, TextDecoder, performance, console, WebAssembly,
    Float32Array, Float64Array, Int32Array, Uint8Array, Uint16Array, Uint32Array, Int8Array, Int16Array, DataView, ArrayBuffer,
  });
  vm.runInContext(`${r.outputFiles[0]!.text}\nglobalThis.arpix = arpix;`, context);
  assert.equal(vm.runInContext('typeof process + typeof Buffer + typeof require', context), 'undefinedundefinedundefined');
  bare = (context as unknown as { arpix: BareArpix }).arpix;
  dir = mkdtempSync(join(tmpdir(), 'arpix-browser-'));
  for (const f of FAMILIES) checkpoints.set(f.kind, (await trainedCheckpoint(f.kind, join(dir, f.kind), 2)).bytes);
});

after(() => {
  setBackend('native');
  rmSync(dir, { recursive: true, force: true });
});

for (const family of FAMILIES) {
  test(`${family.kind}: in a bare context, the bundle decodes its checkpoint, samples the same images and computes the same log-likelihoods as Node`, () => {
    setBackend('ts');
    bare.setBackend('ts');
    const bytes = checkpoints.get(family.kind)!;
    const c = decodeCheckpoint(bytes, 'checkpoint.safetensors');
    const cb = bare.decodeCheckpoint(bytes, 'checkpoint.safetensors');
    assert.equal(cb.integrity, 'verified');
    assert.equal(cb.integrity, c.integrity);
    const model = modelFromCheckpoint(c);
    const modelB = bare.modelFromCheckpoint(cb);
    const opts = { n: 3, seed: 11, temperature: 0.9 };
    const images = sample(model, opts);
    const imagesB = bare.sample(modelB, opts);
    assert.deepEqual([...imagesB.shape], [...images.shape]);
    assert.deepEqual(Array.from(imagesB.data), Array.from(images.data as Int32Array));
    const lp = noGrad(() => model.logProb(images)).data;
    const lpB = bare.noGrad(() => modelB.logProb(bare.tensor(imagesB.data, imagesB.shape))).data;
    assert.deepEqual(Array.from(lpB), Array.from(lp));
    assert.ok(lp.every(Number.isFinite));
  });
}

test('a damaged checkpoint is refused in the bare context as in Node, with the same line', () => {
  const bytes = Uint8Array.from(checkpoints.get('pixelcnn')!);
  bytes[bytes.length - 5]! ^= 0x40;
  const message = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      return (e as Error).message;
    }
    return 'accepted';
  };
  const node = message(() => decodeCheckpoint(bytes, 'checkpoint.safetensors'));
  assert.match(node, /checksum|SHA-256|sum/i);
  assert.equal(message(() => bare.decodeCheckpoint(bytes, 'checkpoint.safetensors')), node);
});

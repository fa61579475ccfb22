// Node's entry to the core, imported for its effects by every Node program of arpix (the package's
// main module, the CLI, serve's workers, the benches; `npm test` preloads it): it installs Node's
// services in place of the portable ones (src/env.ts) and registers the native backend, which
// then becomes the default, and the wasm backend. Nothing the core needs is here; a browser
// simply never imports it.

import { constants as bufferConstants } from 'node:buffer';
import { createHash } from 'node:crypto';
import { totalmem } from 'node:os';
import { installPlatform, type Sha256 } from '../env.js';
import { loadNativeBackend, nativeLoadError } from './native/index.js';
import { kernelProfileTable, registerBackend } from './registry.js';
import { wasmBackend, wasmLoadError } from './wasm/node.js';

function opensslSha256(): Sha256 {
  const h = createHash('sha256');
  const hash: Sha256 = {
    update(data) {
      if (typeof data === 'string') h.update(data, 'utf8');
      else h.update(data);
      return hash;
    },
    hex: () => h.digest('hex'),
  };
  return hash;
}

installPlatform({
  env: (name) => process.env[name],
  totalMemory: () => totalmem(),
  // Unzeroed: a kernel output is fully overwritten, and a memset per op costs (src/tensor/tensor.ts).
  allocate: (bytes) => Buffer.allocUnsafeSlow(bytes).buffer as ArrayBuffer,
  sha256: opensslSha256,
  maxBytes: bufferConstants.MAX_LENGTH,
});

const native = loadNativeBackend();
registerBackend('native', native, nativeLoadError ?? 'the addon did not load');
registerBackend('wasm', wasmBackend, wasmLoadError ?? 'it did not load'); // ARPIX_BACKEND=wasm, setBackend('wasm')

if (process.env.ARPIX_PROFILE) process.on('exit', () => process.stderr.write(kernelProfileTable()));

// A helper thread of the WebAssembly kernels (wasm-helper.js beside worker.js): started by a page's
// worker whose backend runs on threads (wasm.ts), it joins the pool — its own instance of the threads
// module on the pool's shared memory, its own stack — and stays in the pool's loop.

import { runHelper, type HelperStart } from '../backends/wasm/index.js';

interface HelperScope {
  onmessage: ((e: { data: HelperStart }) => void) | null;
  postMessage(message: 'ready'): void;
}

const scope = globalThis as unknown as HelperScope;
scope.onmessage = ({ data }) => {
  scope.onmessage = null;
  runHelper(data, () => scope.postMessage('ready'));
};

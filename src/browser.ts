// arpix's public surface in a browser page or a Web Worker (the package's `browser` build): the
// platform-free core, running on the ts backend until a backend is registered — e.g. the wasm one,
// instantiated from the module's bytes (registerBackend('wasm', …), then setBackend('wasm')).

export * from './core.js';
export { createWasmBackend, instantiateWasmBackend, type WasmBackend } from './backends/wasm/index.js';

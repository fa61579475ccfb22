// The arpix version, as a constant so that code running where there is no package.json to read (a
// browser page, a Web Worker) knows it too: checkpoints record it, and a native or wasm file of
// `arpix compress` decodes only with the version that wrote it. src/install.test.ts checks it is
// package.json's.

export const ARPIX_VERSION = '0.1.0';

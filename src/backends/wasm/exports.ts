// The functions the TypeScript side calls in wasm/build/arpix.wasm, written once: the backend
// refuses a module that lacks one (built from older sources), and scripts/build-wasm.mjs checks a
// fresh build against WASM_EXPORTS (it reads the names between its brackets). Their signatures
// follow, as the adapters call them.

export const WASM_EXPORTS = [
  'memory', '__heap_base', 'arpix_math_init', 'arpix_workers',
  'unary_f32', 'unary_backward_f32', 'clamp_f32', 'binary_f32', 'gate_f32', 'gated_residual_f32', 'concat_elu_f32',
  'softmax_last_f32', 'softmax_cross_entropy_f32', 'reduce_f32', 'layer_norm_f32', 'gelu_f32',
  'pack_b', 'gemm_packed', 'matmul_f32', 'transpose_f32', 'conv2d_f32', 'pack_conv_transposed', 'conv2d_backward_data_f32', 'conv2d_backward_weights_f32',
  'attention_step_f32', 'attention_f32',
  'row_lstm_step_f32', 'lstm_scan_f32', 'categorical_draw_f32', 'draw_exp_f64',
] as const;

/** The module's exported functions, as the TypeScript side calls them (pointers are byte offsets). */
export interface WasmExports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  arpix_math_init(): void;
  /** Threads the kernels' loops use now: each gets its own part of attention's scratch. */
  arpix_workers(): number;
  unary_f32(x: number, out: number, n: number, op: number): void;
  unary_backward_f32(x: number, y: number, g: number, dx: number, n: number, op: number): void;
  clamp_f32(x: number, out: number, n: number, lo: number, hi: number): void;
  binary_f32(a: number, b: number, out: number, op: number, rank: number, dims: number, strides: number): void;
  gate_f32(x: number, out: number, rows: number, c: number): void;
  gated_residual_f32(x: number, h: number, out: number, rows: number, c: number): void;
  concat_elu_f32(x: number, out: number, rows: number, c: number): void;
  softmax_last_f32(x: number, out: number, rows: number, k: number, log: number): void;
  reduce_f32(x: number, out: number, outSize: number, op: number, rank: number, dims: number, outStrides: number): void;
  softmax_cross_entropy_f32(x: number, targets: number, loss: number, probs: number, rows: number, k: number): void;
  layer_norm_f32(x: number, weight: number, bias: number, out: number, mean: number, rstd: number, rows: number, c: number, eps: number, rms: number): void;
  gelu_f32(x: number, out: number, n: number, tanh: number): void;
  pack_b(b: number, k: number, n: number, transB: number, bp: number): void;
  gemm_packed(a: number, lda: number, m: number, k: number, bp: number, n: number, out: number, ldo: number, bias: number, accumulate: number): void;
  matmul_f32(a: number, aStep: number, bp: number, bpStep: number, out: number, batch: number, m: number, k: number, n: number): void;
  transpose_f32(a: number, rows: number, cols: number, at: number): void;
  conv2d_f32(x: number, wp: number, bias: number, out: number, residual: number, accumulate: number, geom: number, rows: number, zero: number): void;
  pack_conv_transposed(w: number, taps: number, cin: number, cout: number, bp: number): void;
  conv2d_backward_data_f32(dy: number, wp: number, dx: number, geom: number, rows: number, zero: number): void;
  conv2d_backward_weights_f32(x: number, dy: number, dw: number, db: number, geom: number, at: number, dyp: number, pix: number, chunk: number): void;
  attention_step_f32(q: number, k: number, v: number, out: number, n: number, rows: number, c: number, heads: number, scale: number, position: number, lo: number, pattern: number, scratch: number, stage: number): void;
  attention_f32(qkv: number, out: number, lse: number, n: number, l: number, c: number, heads: number, scale: number, pattern: number, scratch: number): void;
  row_lstm_step_f32(plan: number): void;
  categorical_draw_f32(logits: number, u: number, out: number, rows: number, p: number, at: number, levels: number, temperature: number, w: number): void;
  /** The tests' probe of the draw's exponential (not called by the backend). */
  draw_exp_f64(x: number, out: number, n: number): void;
  lstm_scan_f32(xg: number, wp: number, h0: number, c0: number, hs: number, cs: number, acts: number, T: number, B: number, L: number, H: number, k: number, pad: number, rows: number, zero: number): void;
}

/** Columns per packed panel (NR in wasm/arpix.h). */
export const NR = 8;

/** The threads module's extra exports (wasm/threads.c; its memory is imported, not exported). */
export const WASM_THREAD_EXPORTS = ['__stack_pointer', 'thread_loop', 'threads_start', 'threads_set', 'threads_ran'] as const;

export interface WasmThreadExports {
  /** The instance's stack pointer (each thread's instance has its own): set before a helper runs. */
  __stack_pointer: WebAssembly.Global;
  /** A helper's loop (never returns): id 1 … helpers. */
  thread_loop(id: number): void;
  /** Declares the helpers in (or about to enter) thread_loop; no loop may be running. */
  threads_start(helpers: number): void;
  /** Threads the next calls may use (clamped to 1 … helpers + 1); returns what it set. */
  threads_set(use: number): number;
  /** Items worker `worker` has run in parallel loops so far. */
  threads_ran(worker: number): number;
}

/**
 * The shared memory the threads module imports (as env.memory), in 64 KiB pages: its initial and
 * maximum sizes are those scripts/build-wasm.mjs links it with.
 */
export const THREADS_MEMORY = { initial: 64, maximum: 32768 } as const;

/** Bytes of stack each helper thread gets (the calling thread keeps the module's own 1 MiB). */
export const HELPER_STACK = 256 * 1024;

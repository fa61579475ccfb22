// The functions the TypeScript side calls in build/wasm/arpix.wasm, written once: the backend
// refuses a module that lacks one (built from older sources), and scripts/build-wasm.mjs checks a
// fresh build against this list (it reads the names between the brackets below).

export const WASM_EXPORTS = [
  'memory', '__heap_base', 'arpix_math_init',
  'unary_f32', 'clamp_f32', 'binary_f32', 'gate_f32', 'gated_residual_f32', 'concat_elu_f32',
  'softmax_last_f32', 'softmax_cross_entropy_f32', 'layer_norm_f32', 'gelu_f32',
  'pack_b', 'gemm_packed', 'matmul_f32', 'transpose_f32', 'conv2d_f32', 'pack_conv_transposed', 'conv2d_backward_data_f32',
  'attention_step_f32', 'attention_f32',
  'row_lstm_step_f32', 'lstm_scan_f32',
] as const;

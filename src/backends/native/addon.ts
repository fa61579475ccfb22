// The shape of the compiled addon's exports (native/addon.cc): bindKernels, which binds the C++
// kernels to their entries in the kernel table (native/binding.h), and a few hand-bound functions.
// Only kernels.ts and index.ts call these.

import type { KernelDescriptor, RowLSTMStepPlan } from '../../kernels/contracts.js';

/** An opaque native object (a Node-API external). */
export type NativeHandle = { readonly __native: unique symbol };

export interface ConvBenchFigure {
  /** Median seconds per call of the fastest configuration. */
  readonly seconds: number;
  /** Its fastest call (less sensitive to other load on the machine). */
  readonly minSeconds: number;
  /** Which configuration that was, e.g. 'nhwc/direct' or 'nChw16c/auto'. */
  readonly config: string;
}

export interface ConvBenchBest {
  readonly forward: ConvBenchFigure;
  readonly backwardData: ConvBenchFigure;
  readonly backwardWeights: ConvBenchFigure;
}

/** What oneDNN can do on this CPU (native/onednn_common.cc). */
export interface CpuCapabilities {
  /** oneDNN's effective ISA after ONEDNN_MAX_CPU_ISA, e.g. 'avx2', 'avx512_core_bf16', 'avx512_core_amx'. */
  readonly isa: string;
  /** The implementation oneDNN picks for a small bf16 convolution ('' when it refuses bf16), e.g. 'brgconv:avx512_core_amx'. */
  readonly bf16Conv: string;
  /** The same for a bf16 matmul. */
  readonly bf16Matmul: string;
}

/** The kernels bindKernels made, and the way to hand them a larger frame. */
export interface NativeBinding {
  /** Each registered kernel, taking its contract's arguments as kernels.ts marshals them. */
  readonly kernels: Readonly<Record<string, (...args: unknown[]) => unknown>>;
  useFrame(frame: Float64Array): void;
}

export interface NativeAddon {
  /**
   * Binds every C++ kernel to its entry in table; the shapes and attributes of each call are read
   * from frame. Throws, naming the kernel and the argument, when a C++ function disagrees with its entry.
   */
  bindKernels(table: Readonly<Record<string, KernelDescriptor>>, frame: Float64Array): NativeBinding;
  /** A native handle for a Row LSTM step plan; the plan's arrays must outlive it. */
  rowLstmPlan(plan: RowLSTMStepPlan): NativeHandle;
  /** The address of the buffer's first byte modulo 64. */
  addressMod64(buffer: ArrayBuffer): number;
  convImplementations(): { what: string; impl: string }[];
  threads(): number;
  setThreads(n: number): void;
  setConvAlgorithm(policy: string): void;
  convAlgorithm(): string;
  onednnVersion(): string;
  cpuCapabilities(): CpuCapabilities;
  clearCaches(): void;
  cacheSizes(): { primitives: number; weights: number; keptInputs: number };
  convBenchBest(n: number, h: number, w: number, cin: number, cout: number, k: number, iters: number): ConvBenchBest;
}

// The `native` backend: the C++ addon (oneDNN + OpenMP) built by node-gyp into
// build/Release/arpix_native.node. Loading never throws: without the addon, or with one that
// disagrees with the kernel table (a build from older sources), loadNativeBackend() returns null
// and nativeLoadError says why — naming the kernel and saying to rebuild — for the registry's one
// warning; ARPIX_BACKEND=native then refuses to start with the same reason.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import type { Backend, Kernels } from '../../kernels/contracts.js';
import type { ConvBenchBest, CpuCapabilities, NativeAddon } from './addon.js';
import { nativeKernels } from './kernels.js';
import { tsKernels } from '../ts/index.js';
import { alignBuffersWith } from '../../tensor/tensor.js';
import { withOpenmpDefaults, type OpenmpSettings } from './openmp.js';
import { packageRoot } from './package-root.js';

export type { ConvBenchBest, ConvBenchFigure, CpuCapabilities } from './addon.js';
export type { OpenmpSettings } from './openmp.js';

export type ConvAlgorithm = 'auto' | 'direct' | 'winograd';

/**
 * The native backend: every kernel (those the addon lacks run on the ts reference), plus thread
 * control and the conv probe.
 */
export type NativeBackend = { readonly name: 'native' } & Kernels & {
  /** OpenMP threads used by kernels and oneDNN. */
  threads(): number;
  setThreads(n: number): void;
  onednnVersion(): string;
  /** oneDNN's effective ISA and the bf16 implementations it has on this CPU (what precision 'auto' reads). */
  cpuCapabilities(): CpuCapabilities;
  /**
   * Convolution algorithm policy. 'auto' (default, or ARPIX_CONV_ALGO): Winograd for large 3×3
   * stride-1 layers where it measured faster, direct otherwise. 'direct': never Winograd, so an
   * output pixel's value does not depend on the batch or image size it was computed in (what
   * bit-exact comparisons, e.g. cached vs naive sampling at full size, need). 'winograd':
   * wherever oneDNN supports it.
   */
  setConvAlgorithm(policy: ConvAlgorithm): void;
  convAlgorithm(): ConvAlgorithm;
  /**
   * Times the fastest oneDNN configuration (layout nhwc or nChw16c, algorithm direct or auto)
   * of a stride-1 'same' k×k convolution [n, h, w, cin] → cout, entirely in C++: the ceiling the
   * benchmarks compare the native kernels against.
   */
  convBenchBest(n: number, h: number, w: number, cin: number, cout: number, k: number, iters?: number): ConvBenchBest;
  /** Counts of cached oneDNN primitives, reordered weight tensors and inputs kept for backward. */
  cacheSizes(): { primitives: number; weights: number; keptInputs: number };
  clearCaches(): void;
  /**
   * Every convolution primitive built so far, with the oneDNN implementation running it (e.g.
   * "jit:avx512_core", "brgconv:avx512_core", "ref:any" — the last is the slow reference loop).
   */
  convImplementations(): { what: string; impl: string }[];
  /** The address of a buffer's first byte modulo 64 (tests and diagnostics of alignment). */
  addressMod64(buffer: ArrayBuffer): number;
};

/** Why the addon did not load, or null when it did (or was not tried yet). */
export let nativeLoadError: string | null = null;

let cached: NativeBackend | null | undefined;
let openmp: OpenmpSettings | null = null;

/** The wait policy the addon's OpenMP loaded with (null before it loaded): see openmp.ts. */
export function openmpSettings(): OpenmpSettings | null {
  return openmp;
}

/**
 * Every op output is a fresh buffer, so a training step hands V8 about a gigabyte of external
 * memory and V8 collects every 64 MB of it. Its concurrent marker then runs on a third thread of a
 * machine whose cores the OpenMP kernels already fill, and each kernel waits at its barrier for the
 * preempted thread: a Gated PixelCNN step took 625 ms with concurrent marking and 525 ms without.
 * Marking on the main thread costs a few milliseconds per collection on our small JS heap.
 * (`--single-threaded-gc` cannot be set after start-up; this flag can.)
 */
function quietGarbageCollector(): void {
  if (process.env.ARPIX_CONCURRENT_GC !== '1') setFlagsFromString('--no-concurrent-marking');
}

function load(): NativeBackend | null {
  let addon: NativeAddon;
  try {
    const path = join(packageRoot(), 'build', 'Release', 'arpix_native.node');
    if (!existsSync(path)) {
      nativeLoadError = `${path} is missing (the addon was not built)`;
      return null;
    }
    const loaded = withOpenmpDefaults(() => createRequire(import.meta.url)(path) as NativeAddon);
    addon = loaded.result;
    openmp = loaded.settings;
  } catch (e) {
    nativeLoadError = e instanceof Error ? e.message : String(e);
    return null;
  }
  let kernels: Partial<Kernels>;
  try {
    kernels = nativeKernels(addon);
  } catch (e) {
    nativeLoadError = `${e instanceof Error ? e.message : String(e)}; the addon was built from other sources than these: rebuild it with \`npm run build:native\``;
    return null;
  }
  nativeLoadError = null;
  quietGarbageCollector();
  alignBuffersWith((buffer) => addon.addressMod64(buffer));
  return {
    name: 'native',
    ...tsKernels,
    ...kernels,
    threads: () => addon.threads(),
    setThreads: (n) => addon.setThreads(n),
    onednnVersion: () => addon.onednnVersion(),
    cpuCapabilities: () => addon.cpuCapabilities(),
    setConvAlgorithm: (policy) => addon.setConvAlgorithm(policy),
    convAlgorithm: () => addon.convAlgorithm() as ConvAlgorithm,
    convBenchBest: (n, h, w, cin, cout, k, iters = 10) => addon.convBenchBest(n, h, w, cin, cout, k, iters),
    cacheSizes: () => addon.cacheSizes(),
    clearCaches: () => addon.clearCaches(),
    convImplementations: () => addon.convImplementations(),
    addressMod64: (buffer) => addon.addressMod64(buffer),
  };
}

/** The native backend, or null (never throws) when the addon is missing, fails to load or disagrees with the kernel table. */
export function loadNativeBackend(): NativeBackend | null {
  if (cached === undefined) cached = load();
  return cached;
}

/** Type guard for code holding a plain Backend (e.g. the registry's nativeBackend()). */
export function isNativeBackend(b: Backend | null): b is NativeBackend {
  return b !== null && b.name === 'native' && typeof (b as Partial<NativeBackend>).threads === 'function';
}

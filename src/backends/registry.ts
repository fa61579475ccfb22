// Chooses the backend kernels run on. `native` (the oneDNN addon) when it loads, else `ts` with
// one warning; `ARPIX_BACKEND=ts|native` or `setBackend()` force either. Kernels the native
// backend does not implement, and every float64 computation, run on `ts`.

import type { Backend, ConvParams, Kernels } from '../kernels/contracts.js';
import { ArgumentError } from '../errors.js';
import { tsKernels } from './ts/index.js';
import { loadNativeBackend, nativeLoadError } from './native/index.js';

export type BackendName = 'ts' | 'native';

let nativeError = '';

/** The native backend, or null with nativeError saying why (a missing addon, or one built from other sources). */
function tryLoadNative(): Backend | null {
  try {
    const backend = loadNativeBackend();
    if (backend === null) nativeError = nativeLoadError ?? 'the addon did not load';
    return backend;
  } catch (e) {
    nativeError = e instanceof Error ? e.message : String(e);
    return null;
  }
}

const native: Backend | null = tryLoadNative();

let activeName: BackendName = 'ts';
let active: Kernels = tsKernels;

/** Switches every following op to the named backend. Throws when native is asked for but absent. */
export function setBackend(name: BackendName): void {
  if (name === 'ts') {
    activeName = 'ts';
    active = maybeProfile(tsKernels, null);
    return;
  }
  if (name !== 'native') throw new ArgumentError('setBackend', 'name', `must be 'ts' or 'native', got '${String(name)}'`);
  if (!native) {
    throw new ArgumentError('setBackend', 'native', `is not available: ${nativeError}. Build it with \`npm run build:native\` (needs \`apt-get install -y libdnnl-dev\`)`);
  }
  activeName = 'native';
  active = maybeProfile({ ...tsKernels, ...native } as Kernels, native);
}

// ---- profiling -------------------------------------------------------------------------------
// ARPIX_PROFILE=1 times every kernel call and prints a table at exit: where a step's time goes,
// and which kernels fell back from native to ts.

interface KernelStat { calls: number; ms: number; backend: string }
const profile = new Map<string, KernelStat>();

function maybeProfile(k: Kernels, nativeImpl: Backend | null): Kernels {
  if (!process.env.ARPIX_PROFILE) return k;
  const wrapped = {} as Record<string, unknown>;
  for (const [name, fn] of Object.entries(k) as [string, (...a: unknown[]) => unknown][]) {
    const backend = nativeImpl && nativeImpl[name as keyof Backend] !== tsKernels[name as keyof Kernels] ? 'native' : 'ts';
    wrapped[name] = (...args: unknown[]) => {
      const shape = (args[0] as { shape?: readonly number[] } | undefined)?.shape;
      const detail = name === 'unary' || name === 'binary' || name === 'reduce' ? `${name}:${String(args.at(-1))}` : name;
      const key = `${detail} ${shape ? `[${shape.join(',')}]` : ''}${name.startsWith('conv2d') ? convDetail(name, args) : ''}`;
      const t0 = performance.now();
      const result = fn(...args);
      const st = profile.get(key) ?? { calls: 0, ms: 0, backend };
      st.calls++;
      st.ms += performance.now() - t0;
      profile.set(key, st);
      return result;
    };
  }
  return wrapped as unknown as Kernels;
}

/** A convolution's weight shape, dilation and algorithm hint, so that layers of one input shape are told apart. */
function convDetail(name: string, args: unknown[]): string {
  const w = args[name === 'conv2dBackwardWeights' || name === 'conv2dBackward' ? 2 : 1] as { shape?: readonly number[] } | undefined;
  const p = args.find((a): a is ConvParams => typeof a === 'object' && a !== null && 'strideH' in a);
  let s = w?.shape ? ` w[${w.shape.join(',')}]` : '';
  if (p && (p.dilationH > 1 || p.dilationW > 1)) s += ` dilation ${p.dilationH}×${p.dilationW}`;
  if (p?.rowWinograd) s += ' rowWinograd';
  return s;
}

/** Forgets the profile gathered so far, e.g. after warm-up steps. */
export function resetKernelProfile(): void {
  profile.clear();
}

/** The profile gathered so far (ARPIX_PROFILE=1), slowest first. */
export function kernelProfile(): [string, KernelStat][] {
  return [...profile.entries()].sort((a, b) => b[1].ms - a[1].ms);
}

if (process.env.ARPIX_PROFILE) {
  process.on('exit', () => {
    const rows = kernelProfile().slice(0, Number(process.env.ARPIX_PROFILE_TOP) || 40);
    const total = [...profile.values()].reduce((s, v) => s + v.ms, 0);
    process.stderr.write(`\narpix kernel profile (${total.toFixed(0)} ms in kernels)\n`);
    for (const [key, st] of rows) process.stderr.write(`${st.ms.toFixed(1).padStart(10)} ms ${String(st.calls).padStart(7)}× ${st.backend.padEnd(6)} ${key}\n`);
  });
}

export function backendName(): BackendName {
  return activeName;
}

export function nativeAvailable(): boolean {
  return native !== null;
}

/** The native backend's own object (thread control, version), or null. */
export function nativeBackend(): Backend | null {
  return native;
}

/** The kernels for a computation; float64 always runs on the reference backend. */
export function kernels(float64 = false): Kernels {
  return float64 ? tsKernels : active;
}

function chooseInitial(): void {
  const env = process.env.ARPIX_BACKEND;
  if (env !== undefined && env !== '') {
    if (env !== 'ts' && env !== 'native') {
      throw new ArgumentError('ARPIX_BACKEND', 'value', `must be 'ts' or 'native', got '${env}'`);
    }
    setBackend(env);
    return;
  }
  if (native) {
    setBackend('native');
  } else {
    setBackend('ts');
    process.emitWarning(`arpix: the native backend did not load (${nativeError}); using the slower ts backend. Install libdnnl-dev and run \`npm run build:native\`.`, { code: 'ARPIX_NO_NATIVE' });
  }
}

chooseInitial();

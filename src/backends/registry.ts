// Chooses the backend kernels run on. The registry itself runs anywhere (it imports no backend
// but the ts reference): backends register themselves — `native` (the oneDNN addon) from Node's
// entry, src/backends/node.ts, which also loads `wasm` (src/backends/wasm/node.ts) and registers
// it; a page registers `wasm` itself once it instantiated the module. `native` becomes the default
// when it registers; without it kernels run on `ts` (with one warning in Node).
// `ARPIX_BACKEND=ts|native|wasm` or `setBackend()` choose.
// Kernels a backend does not implement, and every float64 computation, run on `ts`.

import type { Backend, ConvParams, Kernels } from '../kernels/contracts.js';
import { ArgumentError } from '../errors.js';
import { envVar } from '../env.js';
import { tsKernels } from './ts/index.js';

export type BackendName = 'ts' | 'native' | 'wasm';
export const BACKEND_NAMES: readonly BackendName[] = ['ts', 'native', 'wasm'];

interface Registered { backend: Backend | null; reason: string }
const registered = new Map<Exclude<BackendName, 'ts'>, Registered>();

/** Set once a choice was made on purpose (ARPIX_BACKEND or setBackend): registration then changes nothing. */
let chosen = false;
let activeName: BackendName = 'ts';
let active: Kernels = tsKernels;

const HOW_TO: Record<Exclude<BackendName, 'ts'>, string> = {
  native: 'Build it with `npm run build:native` (needs `apt-get install -y libdnnl-dev`)',
  wasm: 'Build it with `npm run build:wasm` (needs `apt-get install -y clang-14 lld-14`)',
};

/**
 * Makes a backend available under its name; `null` with the reason it could not load. The
 * native backend becomes the active one unless a backend was chosen on purpose.
 */
export function registerBackend(name: Exclude<BackendName, 'ts'>, backend: Backend | null, unavailableReason = 'it did not load'): void {
  if (name !== 'native' && name !== 'wasm') throw new ArgumentError('registerBackend', 'name', `must be 'native' or 'wasm', got '${String(name)}'`);
  registered.set(name, { backend, reason: backend ? '' : unavailableReason });
  const wanted = envVar('ARPIX_BACKEND');
  if (wanted === name) {
    chosen = true;
    if (backend) setBackend(name);
    else refuseKernels(new ArgumentError('ARPIX_BACKEND', name, `asks for the ${name} backend, which is not available: ${unavailableReason}. ${HOW_TO[name]}`));
  } else if (!chosen && name === 'native') {
    if (backend) setBackend('native');
    else if (wanted !== 'ts') warn(`arpix: the native backend did not load (${unavailableReason}); using the slower ts backend. Install libdnnl-dev and run \`npm run build:native\`.`);
  }
}

function warn(message: string): void {
  const p = (globalThis as { process?: { emitWarning?: (m: string, o: { code: string }) => void } }).process;
  if (p?.emitWarning) p.emitWarning(message, { code: 'ARPIX_NO_NATIVE' });
}

/** Switches every following op to the named backend. Throws when it is absent or did not load. */
export function setBackend(name: BackendName): void {
  chosen = true;
  if (name === 'ts') {
    choiceError = null;
    activeName = 'ts';
    active = maybeProfile(tsKernels, null);
    return;
  }
  if (name !== 'native' && name !== 'wasm') throw new ArgumentError('setBackend', 'name', `must be one of ${BACKEND_NAMES.join(', ')}, got '${String(name)}'`);
  const r = registered.get(name);
  if (!r) {
    throw new ArgumentError('setBackend', name, name === 'native'
      ? 'is not registered: it exists only in Node, where importing arpix (or src/backends/node.ts) registers it'
      : 'is not registered: in Node import src/backends/node.ts; in a page, instantiate the module and call registerBackend(\'wasm\', …)');
  }
  if (!r.backend) throw new ArgumentError('setBackend', name, `is not available: ${r.reason}. ${HOW_TO[name]}`);
  choiceError = null;
  activeName = name;
  active = maybeProfile({ ...tsKernels, ...r.backend } as Kernels, r.backend);
}
// ---- profiling -------------------------------------------------------------------------------
// ARPIX_PROFILE=1 times every kernel call; Node's entry prints the table at exit: where a step's
// time goes, and which kernels fell back to ts.

interface KernelStat { calls: number; ms: number; backend: string }
const profile = new Map<string, KernelStat>();

function maybeProfile(k: Kernels, impl: Backend | null): Kernels {
  if (!envVar('ARPIX_PROFILE')) return k;
  const wrapped = {} as Record<string, unknown>;
  for (const [name, fn] of Object.entries(k) as [string, (...a: unknown[]) => unknown][]) {
    const backend = impl && impl[name as keyof Backend] !== tsKernels[name as keyof Kernels] && name in impl ? activeName : 'ts';
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

/** The profile as the table Node's entry prints at exit. */
export function kernelProfileTable(top = Number(envVar('ARPIX_PROFILE_TOP')) || 40): string {
  const rows = kernelProfile().slice(0, top);
  const total = [...profile.values()].reduce((s, v) => s + v.ms, 0);
  let out = `\narpix kernel profile (${total.toFixed(0)} ms in kernels)\n`;
  for (const [key, st] of rows) out += `${st.ms.toFixed(1).padStart(10)} ms ${String(st.calls).padStart(7)}× ${st.backend.padEnd(6)} ${key}\n`;
  return out;
}

export function backendName(): BackendName {
  return activeName;
}

/** A registered backend's own object (thread control, version), or null when absent or not loaded. */
export function registeredBackend(name: Exclude<BackendName, 'ts'>): Backend | null {
  return registered.get(name)?.backend ?? null;
}

export function nativeAvailable(): boolean {
  return registeredBackend('native') !== null;
}

/** The native backend's own object (thread control, version), or null. */
export function nativeBackend(): Backend | null {
  return registeredBackend('native');
}

/** The kernels for a computation; float64 always runs on the reference backend. */
export function kernels(float64 = false): Kernels {
  return float64 ? tsKernels : active;
}

/**
 * ARPIX_BACKEND at start: `ts` now; `native` or `wasm` when that backend registers — until
 * then every kernel refuses to run, so that nothing silently computes on another backend.
 */
function chooseInitial(): void {
  const env = envVar('ARPIX_BACKEND');
  if (env === undefined || env === '') {
    active = maybeProfile(tsKernels, null);
    return;
  }
  chosen = true;
  if (!(BACKEND_NAMES as readonly string[]).includes(env)) {
    refuseKernels(new ArgumentError('ARPIX_BACKEND', 'value', `must be one of ${BACKEND_NAMES.join(', ')}, got '${env}'`));
    return;
  }
  if (env === 'ts') {
    setBackend('ts');
    return;
  }
  activeName = env as BackendName;
  refuseKernels(new ArgumentError('ARPIX_BACKEND', env, env === 'native'
    ? 'asks for the native backend, which was never registered: it exists only in Node programs that import arpix (or src/backends/node.ts)'
    : 'asks for the wasm backend, which was never registered: import src/backends/node.ts in Node, or register the instantiated module in a page'));
}

/** Why the backend ARPIX_BACKEND asks for cannot run, or null (see refuseKernels). */
let choiceError: ArgumentError | null = null;

/**
 * The error every kernel throws while the backend ARPIX_BACKEND asks for cannot run (until a
 * registration or setBackend() mends it), or null: a program checks it at start to say so in one
 * line before any work (the CLI does).
 */
export function backendChoiceError(): ArgumentError | null {
  return choiceError;
}

/** Every kernel throws `error`: no op silently computes on another backend than the one asked for. */
function refuseKernels(error: ArgumentError): void {
  choiceError = error;
  const refuse = (): never => {
    throw error;
  };
  active = Object.fromEntries(Object.keys(tsKernels).map((k) => [k, refuse])) as unknown as Kernels;
}

chooseInitial();

// Chooses the backend kernels run on. `native` (the oneDNN addon) when it loads, else `ts` with
// one warning; `ARPIX_BACKEND=ts|native` or `setBackend()` force either. Kernels the native
// backend does not implement, and every float64 computation, run on `ts`.

import type { Backend, Kernels } from '../kernels/contracts.js';
import { ArgumentError } from '../errors.js';
import { tsKernels } from './ts/index.js';
import { loadNativeBackend, nativeLoadError } from './native/index.js';

export type BackendName = 'ts' | 'native';

let nativeError = '';

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
    active = tsKernels;
    return;
  }
  if (name !== 'native') throw new ArgumentError('setBackend', 'name', `must be 'ts' or 'native', got '${String(name)}'`);
  if (!native) {
    throw new ArgumentError('setBackend', 'native', `is not available: ${nativeError}. Build it with \`npm run build:native\` (needs \`apt-get install -y libdnnl-dev\`)`);
  }
  activeName = 'native';
  active = { ...tsKernels, ...native } as Kernels;
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
    process.emitWarning(`arpix: the native backend did not load (${nativeError}); using the slower ts backend. Install libdnnl-dev and run \`npm run build:native\`.`, { code: 'ARPIX_NO_NATIVE' });
  }
}

chooseInitial();

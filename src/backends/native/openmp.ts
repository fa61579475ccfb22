// How long the addon's idle OpenMP threads spin. GNU OpenMP (libgomp) reads OMP_WAIT_POLICY and
// GOMP_SPINCOUNT once, when it is loaded — that is, when the addon is first required — so arpix
// puts its default into the environment just for that moment, unless the user set either
// variable, whose choice then stands. Set in a worker thread, process.env is the worker's own
// copy and libgomp never sees it: the variables count only in the main thread's environment.

/** The variables that choose libgomp's wait policy; a user who sets either keeps libgomp's reading of it. */
export const WAIT_VARIABLES = ['OMP_WAIT_POLICY', 'GOMP_SPINCOUNT'] as const;

/**
 * arpix's default: spin 5,000 rounds (about 0.1 ms on the development machine's AMD EPYC), then
 * sleep. Left to itself, libgomp spins an idle thread 300,000 rounds (about 5 ms) after every
 * parallel region — through every stretch of JavaScript between kernels — and beside another busy
 * process the spinning threads take the cores it needs: two Gated PixelCNN trainings on the 2
 * cores reached 63–78 % of one alone together, a training beside the cached sampler 52–67 % of
 * their speeds alone. At 5,000 they reach 99–100 % and 113–116 %, and either alone runs as fast as
 * at 300,000 (per-round ratios 0.97–1.03, within their spread). OMP_WAIT_POLICY=PASSIVE (sleep at
 * once) shares as well but ran up to 5 % slower alone: every kernel then waits for a thread to
 * wake. `npm run bench -- shared` measures this.
 */
export const ARPIX_OPENMP_DEFAULT: Readonly<Record<string, string>> = { GOMP_SPINCOUNT: '5000' };

/** What libgomp was given when the addon loaded, and by whom. */
export interface OpenmpSettings {
  /** OMP_WAIT_POLICY and GOMP_SPINCOUNT as set when the addon loaded (absent: libgomp's own default). */
  readonly variables: Readonly<Record<string, string>>;
  /** 'arpix' when arpix's default was applied, 'environment' when the user's settings stood. */
  readonly source: 'arpix' | 'environment';
}

/** The variables arpix adds to env before loading the addon: its default, or nothing when the user chose. */
export function openmpDefaults(env: NodeJS.ProcessEnv): Record<string, string> {
  const userChose = WAIT_VARIABLES.some((name) => env[name] !== undefined);
  return userChose ? {} : { ...ARPIX_OPENMP_DEFAULT };
}

/**
 * Runs load (which requires the addon) with arpix's defaults in process.env, then takes them out
 * again: libgomp has read them by then, and child processes (PyTorch mirrors, scripts) inherit
 * the user's environment unchanged.
 */
export function withOpenmpDefaults<T>(load: () => T): { result: T; settings: OpenmpSettings } {
  const added = openmpDefaults(process.env);
  const variables: Record<string, string> = {};
  for (const name of WAIT_VARIABLES) {
    const v = added[name] ?? process.env[name];
    if (v !== undefined) variables[name] = v;
  }
  Object.assign(process.env, added);
  try {
    return { result: load(), settings: { variables, source: Object.keys(added).length > 0 ? 'arpix' : 'environment' } };
  } finally {
    for (const name of Object.keys(added)) delete process.env[name];
  }
}

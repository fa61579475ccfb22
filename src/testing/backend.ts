// Running a piece of a test on a named backend, whichever is active around it.

import { backendName, setBackend, type BackendName } from '../backends/registry.js';

/** Runs fn on the named backend and restores the one active before. */
export function onBackend<T>(name: BackendName, fn: () => T): T {
  const was = backendName();
  setBackend(name);
  try {
    return fn();
  } finally {
    setBackend(was);
  }
}

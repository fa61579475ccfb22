// The wait policy the addon's OpenMP starts with: arpix's default when the user set neither
// variable, the user's own setting otherwise, and the environment left as the user had it. The
// last cases load the addon in a child process and read back what libgomp itself parsed
// (OMP_DISPLAY_ENV=VERBOSE prints it at load), so a default applied too late fails them.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadNativeBackend, nativeLoadError } from './index.js';
import { ARPIX_OPENMP_DEFAULT, WAIT_VARIABLES, openmpDefaults, withOpenmpDefaults } from './openmp.js';

const INDEX = fileURLToPath(new URL('./index.ts', import.meta.url));

/** Runs fn with process.env's wait variables set as given (absent when undefined), then restores them. */
function withEnv<T>(vars: Partial<Record<(typeof WAIT_VARIABLES)[number], string>>, fn: () => T): T {
  const saved = WAIT_VARIABLES.map((name) => [name, process.env[name]] as const);
  for (const name of WAIT_VARIABLES) {
    if (vars[name] === undefined) delete process.env[name];
    else process.env[name] = vars[name];
  }
  try {
    return fn();
  } finally {
    for (const [name, v] of saved) {
      if (v === undefined) delete process.env[name];
      else process.env[name] = v;
    }
  }
}

describe('openmp wait policy', () => {
  test('the default is added only when the user set neither variable', () => {
    assert.deepEqual(openmpDefaults({}), ARPIX_OPENMP_DEFAULT);
    assert.ok(Object.keys(ARPIX_OPENMP_DEFAULT).length > 0);
    assert.deepEqual(openmpDefaults({ OMP_WAIT_POLICY: 'ACTIVE' }), {});
    assert.deepEqual(openmpDefaults({ GOMP_SPINCOUNT: '300000' }), {});
    assert.deepEqual(openmpDefaults({ OMP_WAIT_POLICY: '' }), {}, 'set, even empty, is the user’s choice');
  });

  test('load sees the default, and the environment is the user’s again afterwards', () => {
    withEnv({}, () => {
      const { result, settings } = withOpenmpDefaults(() => WAIT_VARIABLES.map((name) => process.env[name]));
      assert.deepEqual(result, WAIT_VARIABLES.map((name) => ARPIX_OPENMP_DEFAULT[name]));
      assert.deepEqual(settings, { variables: ARPIX_OPENMP_DEFAULT, source: 'arpix' });
      for (const name of WAIT_VARIABLES) assert.equal(process.env[name], undefined, `${name} left behind`);
    });
  });

  test('load sees the user’s setting unchanged', () => {
    withEnv({ OMP_WAIT_POLICY: 'PASSIVE' }, () => {
      const { result, settings } = withOpenmpDefaults(() => WAIT_VARIABLES.map((name) => process.env[name]));
      assert.deepEqual(result, ['PASSIVE', undefined]);
      assert.deepEqual(settings, { variables: { OMP_WAIT_POLICY: 'PASSIVE' }, source: 'environment' });
      assert.equal(process.env.OMP_WAIT_POLICY, 'PASSIVE');
    });
  });

  test('the defaults are taken out even when load throws', () => {
    withEnv({}, () => {
      assert.throws(() => withOpenmpDefaults(() => { throw new Error('no addon'); }), /no addon/);
      for (const name of WAIT_VARIABLES) assert.equal(process.env[name], undefined);
    });
  });
});

const skip = loadNativeBackend() === null ? `native backend not built (${nativeLoadError})` : false;

/**
 * Loads the native backend in a child with the given wait variables and OMP_DISPLAY_ENV=VERBOSE;
 * returns what libgomp printed it parsed (null when the OpenMP runtime prints no such table) and
 * the wait variables the child's environment holds after the load.
 */
function loadedWith(vars: Record<string, string>): { parsed: Record<string, string> | null; after: Record<string, string> } {
  const env: NodeJS.ProcessEnv = { ...process.env, ...vars, OMP_DISPLAY_ENV: 'VERBOSE' };
  for (const name of WAIT_VARIABLES) if (vars[name] === undefined) delete env[name];
  const code = `const m = await import(${JSON.stringify(INDEX)});
if (m.loadNativeBackend() === null) throw new Error(m.nativeLoadError);
const after = {};
for (const name of ${JSON.stringify(WAIT_VARIABLES)}) if (process.env[name] !== undefined) after[name] = process.env[name];
console.log(JSON.stringify(after));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const table = /OPENMP DISPLAY ENVIRONMENT BEGIN([\s\S]*?)OPENMP DISPLAY ENVIRONMENT END/.exec(r.stderr);
  const parsed = table ? Object.fromEntries([...table[1]!.matchAll(/^\s*(\w+) = '([^']*)'/gm)].map((m) => [m[1]!, m[2]!])) : null;
  return { parsed, after: JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, string> };
}

describe('openmp wait policy, as libgomp reads it', { skip }, () => {
  test('with nothing set, libgomp loads with arpix’s default and children inherit nothing', (t) => {
    const { parsed, after } = loadedWith({});
    assert.deepEqual(after, {});
    if (parsed === null) return t.skip('the OpenMP runtime does not print OMP_DISPLAY_ENV (not GNU libgomp)');
    for (const [name, value] of Object.entries(ARPIX_OPENMP_DEFAULT)) assert.equal(parsed[name], value, name);
  });

  test('the user’s GOMP_SPINCOUNT and OMP_WAIT_POLICY win', (t) => {
    const spin = loadedWith({ GOMP_SPINCOUNT: '1234' });
    assert.deepEqual(spin.after, { GOMP_SPINCOUNT: '1234' });
    if (spin.parsed === null) return t.skip('the OpenMP runtime does not print OMP_DISPLAY_ENV (not GNU libgomp)');
    assert.equal(spin.parsed.GOMP_SPINCOUNT, '1234');
    const active = loadedWith({ OMP_WAIT_POLICY: 'ACTIVE' });
    assert.equal(active.parsed?.OMP_WAIT_POLICY, 'ACTIVE');
    assert.equal(active.parsed?.GOMP_SPINCOUNT, '30000000000', 'ACTIVE spins without bound, not arpix’s count');
  });
});

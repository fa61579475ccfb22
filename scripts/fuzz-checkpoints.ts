// `node --import tsx scripts/fuzz-checkpoints.ts [--count N] [--seed S]`: the checkpoint family of
// the fuzz suite (src/testing/checkpoint-fuzz.ts) at any size; prints, per model family, the
// mutations tried, clean one-line errors, accepted files, and the counts of crashes, hangs,
// internal errors, silently accepted damage and files changed by a failed resume (all of the
// last five must be 0), with the first failures. Exit 1 when any of them is not 0.

import '../src/backends/node.js'; // Node's services and the native backend, as every Node program of arpix
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuzzCheckpoints } from '../src/testing/checkpoint-fuzz.js';
import { failureCount, formatTallies } from '../src/testing/fuzz.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const root = mkdtempSync(join(tmpdir(), 'arpix-checkpoint-fuzz-'));
try {
  const tallies = await fuzzCheckpoints({ count: option('--count', 1000), seed: option('--seed', 14), root });
  process.stdout.write(formatTallies(tallies) + '\n');
  process.exitCode = tallies.some((t) => failureCount(t) > 0) ? 1 : 0;
} finally {
  rmSync(root, { recursive: true, force: true });
}

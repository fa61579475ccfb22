// `npm run fuzz [-- --count N --seed S]`: runs every input family of the fuzz suite and prints, per
// family, the mutations tried, the clean one-line errors, the inputs accepted, and the counts of
// crashes, hangs, internal errors, silently accepted damage and files changed by a failed command
// (all of the last five must be 0), with the first failures of each family.

import '../src/backends/node.js'; // Node's services and the native backend, as every Node program of arpix
import { formatTallies, failureCount } from '../src/testing/fuzz.js';
import { fuzzAll, type ConfigTally } from '../src/testing/input-fuzz.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const tallies = await fuzzAll({ count: option('--count', 3000), seed: option('--seed', undefined as unknown as number) || undefined });
process.stdout.write(formatTallies(tallies) + '\n');
const config = tallies.find((t) => t.family === 'config') as ConfigTally | undefined;
if (config) process.stdout.write(`config: ${config.tooLargeToBuild} accepted configs were too large to build in a test (left to the memory estimate)\n`);
process.stdout.write('cli: each case is one whole command run in-process; it runs a quarter of --count\n');
process.exitCode = tallies.some((t) => failureCount(t) > 0) ? 1 : 0;

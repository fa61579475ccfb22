// `npm run bench -- <suite> [--json] [suite options]`: runs one suite from bench/suites/.

import '../src/backends/node.js'; // Node's services and the native backend, registered before anything computes
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { machineLine, Reporter, type Suite } from './harness.js';

const dir = fileURLToPath(new URL('./suites/', import.meta.url));
const suites = readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3)).sort();
const argv = process.argv.slice(2);
const json = argv.includes('--json');
const rest = argv.filter((a) => a !== '--json');
const name = rest.shift();
if (!name || !suites.includes(name)) {
  process.stderr.write(`usage: npm run bench -- <suite> [--json]\nsuites: ${suites.join(', ')}\n`);
  process.exit(name ? 2 : 0);
}
const mod = (await import(`./suites/${name}.ts`)) as { default: Suite };
const reporter = new Reporter(json);
reporter.note(`CPU: ${machineLine()}`);
await mod.default({ reporter, args: rest });
reporter.table();

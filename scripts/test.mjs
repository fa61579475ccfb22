// Runs every *.test.ts under src/ with node's test runner (Node 20 has no glob for --test).
// Extra arguments are passed through, e.g. `npm test -- --test-name-pattern=conv`. Every test
// process first imports src/backends/node.ts, as arpix's Node programs do: Node's services and the
// native backend (a focused run needs the same: node --import tsx --import ./src/backends/node.ts --test FILE).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'fixtures' ? [] : find(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const files = find('src').sort();
const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', './src/backends/node.ts', '--test', ...process.argv.slice(2), ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);

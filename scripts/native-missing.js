// Printed by `npm install` / `npm ci` when `node-gyp rebuild` fails: says what is missing and that
// arpix still works (on the slower pure-TypeScript backend). Exits 0 so the install succeeds.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const onPath = (cmd) => (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, cmd)));
const hasDnnl = ['/usr/include/oneapi/dnnl/dnnl.hpp', '/usr/local/include/oneapi/dnnl/dnnl.hpp'].some(existsSync);

let cause;
if (!hasDnnl) {
  cause = 'oneDNN is not installed. On Debian/Ubuntu:\n\n    apt-get install -y libdnnl-dev\n';
} else if (!onPath('g++') || !onPath('make')) {
  cause = 'a C++ compiler or make is missing. On Debian/Ubuntu:\n\n    apt-get install -y build-essential\n';
} else {
  cause = 'the build failed for another reason; the node-gyp output above says why.\n';
}

process.stderr.write(
  `\narpix: the native backend (oneDNN + OpenMP addon) was not built: ${cause}\n` +
    'arpix works without it, on the slower pure-TypeScript backend. Once fixed, build it with\n\n' +
    '    npm run build:native\n\n',
);
process.exit(0);

// `arpix serve [RUN_DIR ...]`: the local web app over run folders (src/serve). Prints the page's
// URL and serves until Ctrl-C.

import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { InvalidArgumentError, type Command } from 'commander';
import { CliError, EXIT } from './commands.js';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('--port must be an integer in 0..65535 (0: any free port)');
  return n;
}

export function registerServeCommand(program: Command, setExit: (code: number) => void): void {
  program.command('serve')
    .description('a local web app: runs and live curves, sampling drawn as it streams, completion, where the bits go, receptive fields')
    .argument('[run-dirs...]', 'run folders, or folders of runs (default runs/)')
    .option('--port <p>', 'port to listen on (0: any free port)', port, 8470)
    .option('--host <h>', 'address to bind (default 127.0.0.1: this machine only)', '127.0.0.1')
    .option('--workers <n>', 'model worker threads', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 16) throw new InvalidArgumentError('--workers must be an integer in 1..16');
      return n;
    }, 2)
    .option('--open', 'open the page in the default browser', false)
    .action(async (dirs: string[], o: { port: number; host: string; workers: number; open: boolean }) => {
      const runDirs = dirs.length > 0 ? dirs : ['runs'];
      for (const d of runDirs) {
        if (!existsSync(d)) throw new CliError(`${d} does not exist; give run folders or a folder of runs (train one with: arpix train --preset gated-pixelcnn-fmnist)`, EXIT.usage);
      }
      const { startServer } = await import('../serve/index.js');
      let server;
      try {
        server = await startServer({ runDirs, port: o.port, host: o.host, workers: o.workers });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE') throw new CliError(`port ${o.port} on ${o.host} is in use; choose another with --port (0 picks a free one)`);
        if (code === 'EADDRNOTAVAIL') throw new CliError(`cannot bind ${o.host}: no such address on this machine; use --host 127.0.0.1`);
        throw e;
      }
      process.stdout.write(`arpix serve: ${server.url} (serving ${server.serveApp.runs.roots.map((r) => r.dir).join(', ')}; Ctrl-C stops)\n`);
      if (o.host !== '127.0.0.1' && o.host !== 'localhost' && o.host !== '::1') process.stderr.write(`arpix serve: listening on ${o.host}: other machines can reach these runs\n`);
      if (o.open) {
        const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'start' : 'xdg-open';
        spawn(opener, [server.url], { stdio: 'ignore', detached: true }).on('error', () => process.stderr.write(`arpix serve: could not start ${opener}; open ${server.url} yourself\n`)).unref();
      }
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await server.close();
      setExit(EXIT.ok);
    });
}

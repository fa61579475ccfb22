// `arpix serve [RUN_DIR ...]`: the local web app over run folders (src/serve). Prints the page's
// URL and serves until Ctrl-C.

import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { InvalidArgumentError, type Command } from 'commander';
import { ALLOW_UNVERIFIED, CliError, EXIT } from './commands.js';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('--port must be an integer in 0..65535 (0: any free port)');
  return n;
}

/** One line for a failure to listen on host:port, saying what to do. */
export function bindError(e: unknown, host: string, port: number): CliError {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'EADDRINUSE': return new CliError(`port ${port} on ${host} is in use; choose another with --port (0 picks a free one)`);
    case 'EADDRNOTAVAIL': return new CliError(`cannot bind ${host}: no such address on this machine; use --host 127.0.0.1, or an address of this machine`);
    case 'ENOTFOUND':
    case 'EAI_NONAME':
    case 'EAI_FAIL': return new CliError(`cannot bind ${host}: no host of that name is known (${err.code}); use --host 127.0.0.1, or an address of this machine`);
    case 'EAI_AGAIN': return new CliError(`cannot bind ${host}: the name could not be resolved now (EAI_AGAIN: no name server answered); use --host 127.0.0.1, or an address of this machine`);
    case 'EACCES':
    case 'EPERM': return new CliError(`cannot listen on port ${port} of ${host}: permission denied (${err.code}; ports below 1024 need privileges); choose --port 1024 or above, or 0 for any free port`);
    default: return new CliError(`cannot listen on ${host} port ${port}: ${err.message ?? String(e)}`);
  }
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
    .option('--allow-unverified', ALLOW_UNVERIFIED, false)
    .option('--compute <where>', "where the page computes sampling, completion, bits and receptive fields when it opens: 'server' or 'page' (the browser, on the run's weights; the page switches between them)", (v) => {
      if (v !== 'server' && v !== 'page') throw new InvalidArgumentError("--compute must be 'server' or 'page'");
      return v;
    }, 'server')
    .action(async (dirs: string[], o: { port: number; host: string; workers: number; open: boolean; allowUnverified: boolean; compute: 'server' | 'page' }) => {
      const runDirs = dirs.length > 0 ? dirs : ['runs'];
      for (const d of runDirs) {
        if (!existsSync(d)) throw new CliError(`${d} does not exist; give run folders or a folder of runs (train one with: arpix train --preset gated-pixelcnn-fmnist)`, EXIT.usage);
      }
      const { startServer } = await import('../serve/index.js');
      let server;
      try {
        server = await startServer({ runDirs, port: o.port, host: o.host, workers: o.workers, allowUnverified: o.allowUnverified, compute: o.compute });
      } catch (e) {
        throw bindError(e, o.host, o.port);
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

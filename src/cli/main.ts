// The `arpix` command: flags parsed by commander, each sub-command in commands.ts. Every failure a
// user can cause ends as one line on stderr that says what to do, and a non-zero exit code:
// 1 an error, 2 bad usage or config, 3 training diverged, 130 interrupted.

import '../backends/node.js'; // Node's services and the native backend, registered before anything computes
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError } from '../config.js';
import { DatasetUnavailableError } from '../data/index.js';
import { ArpixError, FormatError } from '../errors.js';
import { backendChoiceError } from '../backends/registry.js';
import { CheckpointMismatchError } from '../io/checkpoint.js';
import { StateDictError } from '../nn/module.js';
import { ARPIX_VERSION, TrainError } from '../train/index.js';
import { UnverifiedCheckpointError } from '../train/checkpoint.js';
import { presetNames } from '../models/presets.js';
import { registerDataCommands } from './data.js';
import { registerImageGPTCommands } from './image-gpt.js';
import { registerTorchCommands } from './torch.js';
import { MaskedTapError, UnsafePickleError } from '../export/index.js';
import { registerServeCommand } from './serve.js';
import { registerCodecCommands } from './codec.js';
import { ALLOW_UNVERIFIED, CliError, EXIT, completeCommand, demoCommand, evalCommand, infoCommand, plotCommand, sampleCommand, trainCommand, verifyCommand } from './commands.js';

const SECTION_FLAG = /^--(model|dataset|train)\./;

function int(name: string, min = 0) {
  return (v: string): number => {
    const n = v.trim() === '' ? NaN : Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}

function positive(name: string) {
  return (v: string): number => {
    const n = v.trim() === '' ? NaN : Number(v);
    if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}

/**
 * Splits what commander did not recognise into `section.key=value` overrides; anything else is an
 * unknown flag or a stray argument, refused with the flags the command knows.
 */
function collectOverrides(cmd: Command, rest: readonly string[]): string[] {
  const overrides: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (SECTION_FLAG.test(a)) {
      if (a.includes('=')) overrides.push(a.slice(2));
      else if (i + 1 < rest.length && !rest[i + 1]!.startsWith('--')) overrides.push(`${a.slice(2)}=${rest[++i]}`);
      else throw new CliError(`${a} needs a value: write ${a}=VALUE`, EXIT.usage);
      continue;
    }
    const known = cmd.options.map((o) => o.long).filter(Boolean).join(', ');
    if (a.startsWith('-')) throw new CliError(`unknown option '${a}' for 'arpix ${cmd.name()}'; known options: ${known}, and overrides --model.KEY=VALUE, --dataset.KEY=VALUE, --train.KEY=VALUE`, EXIT.usage);
    throw new CliError(`unexpected argument '${a}' for 'arpix ${cmd.name()}' (see arpix ${cmd.name()} --help)`, EXIT.usage);
  }
  return overrides;
}

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('arpix')
    .description('Deep autoregressive image models: train, evaluate bits/dim, sample and complete images')
    .version(ARPIX_VERSION)
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ writeErr: () => {} });

  program.command('train')
    .description('train a model from a preset or a config file, or resume a run')
    .option('--preset <name>', `a preset: ${presetNames().join(', ')}`)
    .option('--config <file>', 'a JSON config with model, dataset and train sections')
    .option('--resume <run-dir>', 'continue the run in this folder from its checkpoint, exactly')
    .option('--out <dir>', 'the run folder (default runs/<time>-<preset>)')
    .option('--no-bar', 'plain log lines even on a terminal')
    .option('--force', 'start over in an --out folder holding the config.json and metrics.jsonl of a run that wrote no checkpoint', false)
    .option('--allow-unverified', ALLOW_UNVERIFIED, false)
    .addHelpText('after', '\nOverrides: --train.lr=3e-4 --train.steps=2000 --model.hiddenChannels=32 --dataset.bits=5 …\n(each checked against the config\'s keys and types; on --resume only train.steps, epochs, minutes and the reporting intervals may change)')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (opts: { preset?: string; config?: string; resume?: string; out?: string; bar: boolean; force: boolean; allowUnverified: boolean }, cmd: Command) => {
      const overrides = collectOverrides(cmd, cmd.args);
      setExit(await trainCommand({ ...opts, overrides }));
    });

  program.command('eval')
    .description('negative log-likelihood in bits/dim (and nats/image for binary data) with its standard error')
    .argument('<checkpoint>', 'a checkpoint file or a run folder')
    .addOption(new Option('--split <split>', 'which images').choices(['test', 'validation']).default('test'))
    .option('--raw', 'use the trained weights rather than their moving average (EMA)', false)
    .option('--batch-size <n>', 'images per batch', int('--batch-size', 1), 100)
    .option('--limit <n>', 'evaluate the first N images only', int('--limit', 1))
    .option('--json', 'print one JSON object', false)
    .option('--allow-unverified', ALLOW_UNVERIFIED, false)
    .action(async (checkpoint: string, o: { split: 'test' | 'validation'; raw: boolean; batchSize: number; limit?: number; json: boolean; allowUnverified: boolean }) => {
      setExit(await evalCommand({ checkpoint, ...o }));
    });

  program.command('sample')
    .description('draw images: a PNG grid and the raw values as .npy; the same seed gives the same images')
    .argument('<checkpoint>', 'a checkpoint file or a run folder')
    .option('--n <n>', 'number of images', int('--n', 1), 64)
    .option('--seed <s>', 'seed of the sampling stream', int('--seed', 0), 0)
    .option('--temperature <t>', 'divides the logits (below 1: sharper)', positive('--temperature'), 1)
    .option('--label <l>', 'class label for a class-conditional model', int('--label', 0))
    .option('--out <dir>', 'output folder (default: samples/ beside the checkpoint)')
    .option('--raw', 'use the trained weights rather than their moving average (EMA)', false)
    .option('--force', 'replace existing output files', false)
    .option('--allow-unverified', ALLOW_UNVERIFIED, false)
    .action(async (checkpoint: string, o: { n: number; seed: number; temperature: number; label?: number; out?: string; raw: boolean; force: boolean; allowUnverified: boolean }) => {
      setExit(await sampleCommand({ checkpoint, ...o }));
    });

  program.command('complete')
    .description('keep the top rows of images and sample the rest: a PNG grid of original, occluded and completed images')
    .argument('<checkpoint>', 'a checkpoint file or a run folder')
    .requiredOption('--images <path>', 'a PNG/JPEG image, a .npy of uint8 images, or a folder of images')
    .requiredOption('--keep-rows <k>', 'rows kept from the top of each image', int('--keep-rows', 0))
    .option('--samples <s>', 'completions per image', int('--samples', 1), 3)
    .option('--seed <s>', 'seed of the sampling stream', int('--seed', 0), 0)
    .option('--temperature <t>', 'divides the logits', positive('--temperature'), 1)
    .option('--limit <n>', 'complete at most N images', int('--limit', 1), 16)
    .option('--out <dir>', 'output folder (default: samples/ beside the checkpoint)')
    .option('--raw', 'use the trained weights rather than their moving average (EMA)', false)
    .option('--force', 'replace existing output files', false)
    .option('--allow-unverified', ALLOW_UNVERIFIED, false)
    .action(async (checkpoint: string, o: Omit<Parameters<typeof completeCommand>[0], 'checkpoint'>) => {
      setExit(await completeCommand({ checkpoint, ...o }));
    });

  program.command('info')
    .description('parameter count, receptive field and FLOPs per image')
    .argument('[checkpoint]', 'a checkpoint file or a run folder')
    .option('--preset <name>', 'a preset instead of a checkpoint')
    .option('--config <file>', 'a config file instead of a checkpoint')
    .option('--json', 'print one JSON object', false)
    .option('--allow-unverified', ALLOW_UNVERIFIED, false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (checkpoint: string | undefined, o: { preset?: string; config?: string; json: boolean; allowUnverified: boolean }, cmd: Command) => {
      // With --preset or --config, commander takes the first override for the optional CHECKPOINT.
      if (checkpoint !== undefined && SECTION_FLAG.test(checkpoint)) checkpoint = undefined;
      const rest = cmd.args.slice(checkpoint === undefined ? 0 : 1);
      setExit(await infoCommand({ checkpoint, ...o, overrides: collectOverrides(cmd, rest) }));
    });

  program.command('verify')
    .description('run the checks every command that loads a checkpoint runs: checksums, metadata, config, every tensor against its model, optimiser state, finite values')
    .argument('<checkpoint>', 'a checkpoint file or a run folder')
    .option('--json', 'print one JSON object', false)
    .option('--allow-unverified', ALLOW_UNVERIFIED, false)
    .action(async (checkpoint: string, o: { json: boolean; allowUnverified: boolean }) => {
      setExit(await verifyCommand(checkpoint, o.json, o));
    });

  program.command('plot')
    .description('training and validation curves of a run as a PNG')
    .argument('<run-dir>', 'the folder of a training run')
    .option('--out <file>', 'output PNG (default <run-dir>/curves.png)')
    .option('--force', 'replace an existing --out file', false)
    .action(async (runDir: string, o: { out?: string; force: boolean }) => {
      setExit(await plotCommand(runDir, o.out, o.force));
    });

  program.command('demo')
    .description('what `npm start` runs: a few minutes of training on Fashion-MNIST, then test bits/dim, samples, completions and curves')
    .option('--minutes <m>', 'training time', positive('--minutes'), 4)
    .option('--out <dir>', 'the output folder (default runs/<time>-gated-pixelcnn-fmnist)')
    .option('--no-bar', 'plain log lines even on a terminal')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(async (o: { minutes: number; out?: string; bar: boolean }, cmd: Command) => {
      setExit(await demoCommand({ ...o, overrides: collectOverrides(cmd, cmd.args) }));
    });

  registerDataCommands(program, setExit);
  registerImageGPTCommands(program, setExit);
  registerTorchCommands(program, setExit, collectOverrides);
  registerServeCommand(program, setExit);
  registerCodecCommands(program, setExit);
  // A group (`arpix data`, `arpix palette`) named without one of its commands: its usage, and exit 2.
  for (const group of program.commands.filter((c) => c.commands.length > 0)) {
    group.allowExcessArguments().action((_opts: unknown, cmd: Command) => {
      const names = group.commands.map((c) => c.name()).join(', ');
      const stray = cmd.args[0];
      if (stray !== undefined) throw new CliError(`unknown command 'arpix ${group.name()} ${stray}'; its commands are ${names} (see arpix ${group.name()} --help)`, EXIT.usage);
      process.stderr.write(group.helpInformation());
      setExit(EXIT.usage);
    });
  }
  return program;
}

/** The message and exit code for anything a command threw. */
export function describeError(e: unknown): { message: string; code: number } {
  if (e instanceof CommanderError) {
    const msg = e.message.replace(/^error: /, '');
    return { message: `${msg} (see arpix --help)`, code: EXIT.usage };
  }
  if (e instanceof CliError) return { message: e.message, code: e.exitCode };
  if (e instanceof ConfigError) return { message: `${e.message} (see arpix train --help)`, code: EXIT.usage };
  if (e instanceof CheckpointMismatchError) return { message: `${e.message}; use a checkpoint of this model, or the config it was trained with`, code: EXIT.error };
  if (e instanceof StateDictError) return { message: `${e.message}; the checkpoint's weights do not fit its own config — it is damaged or from another arpix version`, code: EXIT.error };
  if (e instanceof UnsafePickleError || e instanceof MaskedTapError) return { message: e.message, code: EXIT.error };
  // Says what to do itself: pass --allow-unverified, or use a checkpoint with sums.
  if (e instanceof UnverifiedCheckpointError) return { message: e.message, code: EXIT.error };
  if (e instanceof FormatError) {
    const hint = /safetensors|checkpoint/.test(e.message) && !/arpix import/.test(e.message) ? '; the file is damaged or not a checkpoint — use another checkpoint (training writes checkpoint.safetensors in the run folder)' : '';
    return { message: e.message + hint, code: EXIT.error };
  }
  if (e instanceof DatasetUnavailableError || e instanceof TrainError || e instanceof ArpixError) return { message: e.message, code: EXIT.error };
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && err.syscall) {
    const where = err.path ?? (err as { dest?: string }).dest ?? '';
    const what: Record<string, string> = {
      ENOSPC: 'the disk is full; free some space and run the command again (files already there are untouched)',
      EDQUOT: 'the disk quota is exhausted; free some space and run the command again',
      EACCES: 'permission denied; choose a folder you can write with --out',
      EPERM: 'operation not permitted; choose a folder you can write with --out',
      EROFS: 'the file system is read-only; choose another folder with --out',
      ENOTDIR: 'a part of the path is a file, not a folder; choose another --out',
      EISDIR: 'is a folder where a file was expected',
      EEXIST: 'already exists; pass --force to replace it, or choose another --out',
      ENOENT: 'does not exist',
    };
    return { message: `cannot ${err.syscall} ${where}: ${what[err.code] ?? err.message}`, code: EXIT.error };
  }
  const msg = e instanceof Error ? e.message : String(e);
  return { message: `internal error: ${msg} (set ARPIX_DEBUG=1 for the stack trace)`, code: EXIT.error };
}

function exitOnEpipe(e: NodeJS.ErrnoException): void {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
}

export async function main(argv: readonly string[]): Promise<number> {
  // Output piped into a reader that stops early (`arpix info … | head`) is not an error of ours.
  if (!process.stdout.listeners('error').includes(exitOnEpipe)) process.stdout.on('error', exitOnEpipe);
  let code: number = EXIT.ok;
  const program = buildProgram((c) => {
    code = c;
  });
  try {
    if (argv.length === 0) {
      program.outputHelp();
      return EXIT.usage;
    }
    // A backend ARPIX_BACKEND asks for that cannot run: one line now, not a refusal mid-command.
    const choice = backendChoiceError();
    if (choice) throw choice;
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError && (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help')) return EXIT.ok;
    if (process.env.ARPIX_DEBUG) console.error(e);
    const { message, code: exit } = describeError(e);
    process.stderr.write(`arpix: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
    return exit;
  }
}

// Run when this file is the entry point (`node --import tsx src/cli/main.ts …`); bin/arpix.js imports main().
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}

// `npm run bench -- signals [--preset NAME] [--runs N] [--model.K=V …]`: seconds from Ctrl-C (SIGINT) to the exit
// of `arpix train --preset gated-pixelcnn-fmnist` at its default settings, signalled a few
// seconds into training, next to the time of one training step (the goal: under one step). Also a
// double Ctrl-C, and SIGINT with checkpointEvery=0.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threads, type Suite } from '../harness.js';
import { interruptTraining } from '../../src/testing/signals.js';

function option(args: readonly string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1]! : fallback;
}

const suite: Suite = async ({ reporter, args }) => {
  const preset = option(args, '--preset', 'gated-pixelcnn-fmnist');
  const runs = Number(option(args, '--runs', '3'));
  // Overrides pass through to every run (a smoke test at a tiny size); the figures take none.
  const overrides = args.filter((a) => /^--(model|train|dataset)\./.test(a));
  const cases: { name: string; extra: string[]; twice?: boolean }[] = [
    { name: 'SIGINT, default settings', extra: [] },
    { name: 'SIGINT twice, default settings', extra: [], twice: true },
    { name: 'SIGINT, checkpointEvery=0', extra: ['--train.checkpointEvery=0'] },
  ];
  for (const c of cases) {
    const exits: number[] = [];
    const steps: number[] = [];
    for (let i = 0; i < runs; i++) {
      const root = mkdtempSync(join(tmpdir(), 'arpix-bench-signals-'));
      const runDir = join(root, 'run');
      try {
        // Signalled 3 s after the first logged step (step 10 at the default logEvery).
        const r = await interruptTraining({ args: ['--preset', preset, '--out', runDir, ...overrides, ...c.extra], runDir, delayMs: 3000, twiceAfterMs: c.twice ? 300 : undefined, timeoutMs: 600_000 });
        // A second Ctrl-C may also end the process by the signal itself (what a shell reports as 130).
        const stopped = r.code === 130 || (c.twice === true && r.exitSignal === 'SIGINT');
        if (!stopped) throw new Error(`${c.name}: exit code ${r.code} (signal ${r.exitSignal}), expected 130; stderr:\n${r.stderr}`);
        exits.push(r.seconds);
        if (r.stepSeconds !== null) steps.push(r.stepSeconds);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    }
    exits.sort((a, b) => a - b);
    const step = steps.length > 0 ? steps.sort((a, b) => a - b)[steps.length >> 1]! : NaN;
    reporter.add({
      suite: 'signals', case: `${preset}: ${c.name}`, system: 'arpix', threads: threads(), unit: 's to exit',
      median: exits[exits.length >> 1]!, min: exits[0]!, max: exits.at(-1)!,
      extra: { 'step s': step.toFixed(3), 'exit / step': (exits[exits.length >> 1]! / step).toFixed(2), runs },
    });
  }
};

export default suite;

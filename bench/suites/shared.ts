// `npm run bench -- shared [--json] [--threads N] [--preset gated-pixelcnn-fmnist] [--batch 32]
//  [--sample-batch 16] [--seconds 2] [--rounds 5] [--policies arpix,libgomp] [--max-foreign 5]
//  [--attempts 5] [--alone-only]`:
// two arpix processes sharing the machine against each alone. Per wait policy, three worker
// processes (bench/shared-worker.ts) warm up once: two train the preset (as bench/suites/train.ts
// does), one runs its cached sampler (a batch as the web app's default asks). Every round times,
// for every policy:
//  - one training alone and one sampler alone (the others idle),
//  - the two trainings at once: each one's images/s and their sum as a share of one alone,
//  - a training and the sampler at once: each as a share of itself alone, and their sum.
// The phases' order rotates and the policies alternate round by round; ratios are taken within a
// round and reported as median and spread. At once, rates count only the common window in which
// every process of the phase was working (each piece of work pro rata), so neither process is
// credited with time it ran alone. What is timed is arpix beside arpix: a phase during which
// other processes used more than --max-foreign % of the machine (/proc/stat, less the workers'
// own CPU time) is repeated once the machine is quiet, and the figures say how much was left.
//
// Policies: `arpix` (no variable set: arpix's default applies), `libgomp` (GOMP_SPINCOUNT=300000,
// what libgomp does when nothing is set — arpix before its default), `passive`
// (OMP_WAIT_POLICY=PASSIVE), `spin=N` (GOMP_SPINCOUNT=N). The idle-machine figure of each policy
// is also given as a ratio to the first policy's in the same round; --alone-only times only that,
// in more rounds for the same minutes, for a finer comparison of the policies on an idle machine.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { median, threads as defaultThreads, type BenchCase, type Suite } from '../harness.js';
import { option } from '../torch.js';

const SUITE = 'shared';
const WORKER = fileURLToPath(new URL('../shared-worker.ts', import.meta.url));

/** The variables a policy sets; the user's own OMP_WAIT_POLICY / GOMP_SPINCOUNT are taken out first. */
function policyEnv(policy: string): Record<string, string> {
  if (policy === 'arpix') return {};
  if (policy === 'libgomp') return { GOMP_SPINCOUNT: '300000' };
  if (policy === 'passive') return { OMP_WAIT_POLICY: 'PASSIVE' };
  const spin = /^spin=(\d+)$/.exec(policy);
  if (spin) return { GOMP_SPINCOUNT: spin[1]! };
  throw new Error(`shared: unknown policy '${policy}' (arpix, libgomp, passive, spin=N)`);
}

/** One piece of work: its images and when it started and ended (CLOCK_MONOTONIC, shared by processes). */
interface Piece { work: number; t0: number; t1: number }

class Worker {
  private readonly lines: AsyncIterator<string>;
  ready!: Record<string, unknown>;

  private constructor(private readonly child: ChildProcessWithoutNullStreams, readonly label: string) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    child.stderr.on('data', (d: Buffer) => process.stderr.write(`[${label}] ${d.toString()}`));
  }

  static async start(label: string, args: string[], env: NodeJS.ProcessEnv): Promise<Worker> {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const w = new Worker(child, label);
    try {
      w.ready = await w.next();
    } catch (e) {
      child.kill();
      throw e;
    }
    return w;
  }

  private async next(): Promise<Record<string, unknown>> {
    const r = await this.lines.next();
    if (r.done) throw new Error(`shared: worker ${this.label} exited (code ${this.child.exitCode})`);
    return JSON.parse(r.value) as Record<string, unknown>;
  }

  async run(seconds: number): Promise<Piece[]> {
    this.child.stdin.write(JSON.stringify({ seconds }) + '\n');
    return (await this.next()).pieces as Piece[];
  }

  get pid(): number {
    return this.child.pid!;
  }

  close(): void {
    this.child.stdin.end();
  }
}

/** Images/s of each process within the window in which all of them were working (pieces pro rata). */
function commonRates(runs: Piece[][]): number[] {
  const from = Math.max(...runs.map((p) => p[0]!.t0));
  const to = Math.min(...runs.map((p) => p.at(-1)!.t1));
  if (!(to > from)) throw new Error('shared: the processes of a phase did not overlap');
  return runs.map((pieces) => {
    let work = 0;
    for (const p of pieces) {
      const overlap = Math.min(p.t1, to) - Math.max(p.t0, from);
      if (overlap > 0) work += (p.work * overlap) / (p.t1 - p.t0);
    }
    return work / ((to - from) / 1e9);
  });
}

/** Clock ticks of CPU time: the machine's busy and total, and the given processes' own (all threads). */
function cpuTicks(pids: readonly number[]): { busy: number; total: number; ours: number } | null {
  try {
    const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number) as number[];
    const busy = user! + nice! + system! + irq! + softirq! + steal!;
    let ours = 0;
    for (const pid of pids) {
      // After the command's closing parenthesis, utime and stime are the 12th and 13th fields.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)!.split(' ');
      ours += Number(fields[11]) + Number(fields[12]);
    }
    return { busy, total: busy + idle! + iowait!, ours };
  } catch {
    return null; // not Linux: no check
  }
}

/** The share of the machine other processes than ours used between two readings (null without /proc). */
function foreignShare(a: ReturnType<typeof cpuTicks>, b: ReturnType<typeof cpuTicks>): number | null {
  if (a === null || b === null || b.total === a.total) return null;
  return Math.max(0, b.busy - a.busy - (b.ours - a.ours)) / (b.total - a.total);
}

/**
 * Runs the phases of a round on a machine others share: a phase during which other processes took
 * more than maxForeign of the machine is repeated once the machine is quiet again (up to `attempts`
 * times; then kept, and counted), so that what is timed is arpix sharing with arpix.
 */
class QuietPhases {
  repeated = 0;
  keptDisturbed = 0;
  readonly foreign: number[] = [];
  constructor(private readonly pids: () => number[], private readonly maxForeign: number, private readonly attempts: number) {}

  async run<T>(phase: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const a = cpuTicks(this.pids());
      const result = await phase();
      const share = foreignShare(a, cpuTicks(this.pids()));
      if (share === null || share <= this.maxForeign || attempt >= this.attempts) {
        if (share !== null) this.foreign.push(share);
        if (share !== null && share > this.maxForeign) this.keptDisturbed++;
        return result;
      }
      this.repeated++;
      process.stderr.write(`shared: other processes used ${(100 * share).toFixed(0)} % of the machine during a phase; waiting for quiet to repeat it\n`);
      await this.quiet();
    }
  }

  /** Waits (at most 10 minutes) until others have used at most maxForeign for 3 s in a row. */
  private async quiet(): Promise<void> {
    const until = Date.now() + 600_000;
    for (let calm = 0; calm < 3 && Date.now() < until;) {
      const a = cpuTicks(this.pids());
      await new Promise((resolve) => setTimeout(resolve, 1000));
      calm = (foreignShare(a, cpuTicks(this.pids())) ?? 0) <= this.maxForeign ? calm + 1 : 0;
    }
  }
}

const spread = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

const suite: Suite = async ({ reporter, args }) => {
  const threads = Number(option(args, '--threads', String(defaultThreads())));
  const preset = option(args, '--preset', 'gated-pixelcnn-fmnist');
  const batch = option(args, '--batch', '32');
  const sampleBatch = option(args, '--sample-batch', '16');
  const seconds = Number(option(args, '--seconds', '2'));
  const rounds = Math.max(5, Number(option(args, '--rounds', '5')));
  const policies = option(args, '--policies', 'arpix,libgomp').split(',');
  const maxForeign = Number(option(args, '--max-foreign', '5')) / 100;
  const attempts = Number(option(args, '--attempts', '5'));
  const aloneOnly = args.includes('--alone-only');

  const base: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads) };
  delete base.OMP_WAIT_POLICY;
  delete base.GOMP_SPINCOUNT;
  const workers = new Map<string, { train: Worker; train2: Worker | null; sample: Worker }>();
  const started: Worker[] = [];
  try {
    // Started (and warmed up) all at once: nothing is timed yet.
    await Promise.all(policies.map(async (policy) => {
      const env = { ...base, ...policyEnv(policy) };
      const start = (label: string, role: string, n: string) => Worker.start(`${policy} ${label}`, [role, preset, n], env).then((w) => (started.push(w), w));
      const [train, train2, sample] = await Promise.all([start('train', 'train', batch), aloneOnly ? null : start('train 2', 'train', batch), start('sample', 'sample', sampleBatch)]);
      workers.set(policy, { train, train2, sample });
    }));
    const first = workers.get(policies[0]!)!.train.ready;
    reporter.note(`oneDNN ${String(first.onednn)}; ${threads} threads; backend ${String(first.backend)}; ${rounds} rounds of ${seconds} s per phase`);
    for (const policy of policies) reporter.note(`${policy}: OpenMP as loaded ${JSON.stringify(workers.get(policy)!.train.ready.openmp)}`);

    const phases = new QuietPhases(() => [process.pid, ...started.map((w) => w.pid)], maxForeign, attempts);
    // Per policy, per round: the figures of each phase.
    type Round = { train: number; sample: number; pair: number[]; mixed: number[] };
    const results = new Map<string, Round[]>(policies.map((p) => [p, []]));
    for (let r = 0; r < rounds; r++) {
      process.stderr.write(`shared: round ${r + 1} of ${rounds}\n`);
      const order = r % 2 === 0 ? policies : [...policies].reverse();
      for (const policy of order) {
        const w = workers.get(policy)!;
        const round: Partial<Round> = {};
        const steps = [
          async () => { round.train = commonRates([await phases.run(() => w.train.run(seconds))])[0]; },
          async () => { round.sample = commonRates([await phases.run(() => w.sample.run(seconds))])[0]; },
        ];
        const { train2 } = w;
        if (train2 !== null) {
          steps.push(async () => { round.pair = commonRates(await phases.run(() => Promise.all([w.train.run(seconds), train2.run(seconds)]))); });
          steps.push(async () => { round.mixed = commonRates(await phases.run(() => Promise.all([w.train.run(seconds), w.sample.run(seconds)]))); });
        }
        for (let i = 0; i < steps.length; i++) await steps[(i + r) % steps.length]!();
        results.get(policy)!.push(round as Round);
      }
    }

    if (phases.foreign.length > 0) {
      reporter.note(`other processes used ${(100 * median(phases.foreign)).toFixed(1)} % of the machine (median; at most ${(100 * Math.max(...phases.foreign)).toFixed(1)} %) during the phases kept; ${phases.repeated} phases repeated for their load, ${phases.keptDisturbed} kept above ${100 * maxForeign} % after ${attempts} attempts`);
    }
    const row = { suite: SUITE, batch: Number(batch), threads };
    const add = (c: Omit<BenchCase, 'suite' | 'threads'>) => reporter.add({ ...row, ...c });
    const firstRounds = results.get(policies[0]!)!;
    for (const policy of policies) {
      const rs = results.get(policy)!;
      const train = rs.map((x) => x.train);
      const sample = rs.map((x) => x.sample);
      add({ case: `${preset} training alone`, system: policy, unit: 'images/s', ...spread(train) });
      add({ case: `${preset} cached sampling alone`, system: policy, batch: Number(sampleBatch), unit: 'images/s', ...spread(sample) });
      if (policy !== policies[0]) {
        add({ case: `training alone: ${policy} / ${policies[0]}, per round`, system: 'ratio', unit: '×', ...spread(rs.map((x, i) => x.train / firstRounds[i]!.train)) });
        add({ case: `sampling alone: ${policy} / ${policies[0]}, per round`, system: 'ratio', batch: Number(sampleBatch), unit: '×', ...spread(rs.map((x, i) => x.sample / firstRounds[i]!.sample)) });
      }
      if (aloneOnly) continue;
      add({ case: 'two trainings at once: each', system: policy, unit: 'images/s', ...spread(rs.flatMap((x) => x.pair)) });
      add({ case: 'two trainings at once: combined / alone', system: policy, unit: '%', ...spread(rs.map((x) => (100 * (x.pair[0]! + x.pair[1]!)) / x.train)), extra: { target: '≥ 90' } });
      add({ case: 'training + sampling at once: training', system: policy, unit: 'images/s', ...spread(rs.map((x) => x.mixed[0]!)) });
      add({ case: 'training + sampling at once: sampling', system: policy, batch: Number(sampleBatch), unit: 'images/s', ...spread(rs.map((x) => x.mixed[1]!)) });
      add({ case: 'training + sampling at once: sum of shares of alone', system: policy, unit: '%', ...spread(rs.map((x) => 100 * (x.mixed[0]! / x.train + x.mixed[1]! / x.sample))), extra: { target: '≥ 90' } });
    }
  } finally {
    for (const w of started) w.close();
  }
};

export default suite;

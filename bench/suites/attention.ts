// `npm run bench -- attention [--json] [--threads N] [--batch 16] [--length 784] [--width 128]
//  [--heads 4] [--block 112] [--steps 3] [--rounds 9]`: the fused attention op, forward and
// backward (with a fixed output gradient), causal and local 1-D (query blocks of `block`, one block
// of memory), on packed qkv [N, L, 3C] — the Fashion-MNIST-sized problem of issue #15 by default.
// Beside it the PyTorch mirror (bench/pytorch/attention_bench.py, Debian's torch 1.13 with the
// same threads: matmul–mask–softmax–matmul, as that version has no fused attention), its runs
// interleaved with arpix's round by round as the train suite does. For each pattern the mirror runs
// the dense masked composition and a block-wise one (causal: query blocks against the keys up to
// their block; local 1-D: tensor2tensor's blocked form), each with OpenBLAS on the thread count and
// on one thread (its spinning pool fights torch's OpenMP threads on few cores); the ratio uses its
// fastest.
// Before timing, the mirror's output on a small problem is checked against arpix's.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median, threads as defaultThreads, type Suite } from '../harness.js';
import { findTorchPython, mirrorScript, noteTorch, option, startServe, type ServeProcess } from '../torch.js';

const suite: Suite = async ({ reporter, args }) => {
  const threads = Number(option(args, '--threads', String(defaultThreads())));
  process.env.OMP_NUM_THREADS = String(threads);
  const num = (name: string, dflt: number) => Number(option(args, name, String(dflt)));
  const batch = num('--batch', 16), length = num('--length', 784), width = num('--width', 128), heads = num('--heads', 4);
  const block = num('--block', 112), steps = num('--steps', 3), rounds = Math.max(5, num('--rounds', 9));

  const ax = await import('../../src/index.js');
  if (!ax.nativeAvailable()) reporter.note('the native backend is not built: arpix figures are on the slow ts backend');
  const gen = new ax.Generator(0);
  const qkv = ax.randn([batch, length, 3 * width], { generator: gen }).requireGrad();
  const grad = ax.randn([batch, length, width], { generator: gen });
  const patterns = { causal: { kind: 'causal' }, local1d: { kind: 'local1d', block } } as const;
  const arpixRun = (pattern: (typeof patterns)[keyof typeof patterns]) => {
    const t0 = process.hrtime.bigint();
    for (let s = 0; s < steps; s++) {
      ax.attention(qkv, { heads, pattern }).backward(grad, { releaseGraph: true });
      qkv.grad = null;
    }
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };

  const python = findTorchPython();
  let mirror: ServeProcess | null = null;
  if (python === null) reporter.note('PyTorch is not installed (apt-get install python3-torch): no PyTorch comparison');
  else {
    mirror = await startServe(python, mirrorScript('attention_bench.py'), ['serve', ...['--batch', batch, '--length', length, '--width', width, '--heads', heads, '--block', block, '--threads', threads, '--steps', steps].map(String)], threads);
    noteTorch(reporter, mirror.ready, 'PyTorch attention');
  }
  try {
    if (mirror) await checkMirror(ax, mirror, block);
    const row = { suite: 'attention', batch, threads, unit: 'ms per forward+backward' };
    const extra = { L: length, C: width, heads };
    for (const [name, pattern] of Object.entries(patterns)) {
      // Each formulation with OpenBLAS on each thread count the mirror offers ("causal-blocked 1").
      const blasThreads = (mirror?.ready.blasThreads as number[] | undefined) ?? [];
      const torchCases = (name === 'causal' ? ['causal-dense', 'causal-blocked'] : ['local1d-dense', 'local1d-blocked'])
        .flatMap((f) => blasThreads.map((n) => (n === threads ? f : `${f} ${n}`)));
      arpixRun(pattern); // warm-up (the mirror warmed up as it started)
      const mine: number[] = [];
      const theirs: Record<string, number[]> = Object.fromEntries(torchCases.map((c) => [c, []]));
      for (let r = 0; r < rounds; r++) {
        const torchRound = async () => {
          if (!mirror) return;
          for (const c of torchCases) theirs[c]!.push(Number((await mirror.request(c)).seconds));
        };
        if (r % 2 === 0) { mine.push(arpixRun(pattern)); await torchRound(); }
        else { await torchRound(); mine.push(arpixRun(pattern)); }
      }
      const ms = (secs: number[]) => secs.map((s) => (s / steps) * 1e3);
      const summary = (xs: number[]) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
      const label = name === 'local1d' ? `local1d (block ${block}, memory ${block})` : name;
      reporter.add({ ...row, case: label, system: ax.backendName(), ...summary(ms(mine)), extra });
      if (!mirror) continue;
      const caseName = (c: string) => c.replace(/ (\d+)$/, ', OpenBLAS on $1 thread(s)');
      for (const c of torchCases) reporter.add({ ...row, case: `${label} (PyTorch ${caseName(c)})`, system: 'pytorch', ...summary(ms(theirs[c]!)), extra });
      const best = torchCases.reduce((a, b) => (median(theirs[a]!) <= median(theirs[b]!) ? a : b));
      reporter.add({
        ...row, case: `${label}: PyTorch (${caseName(best)}, its fastest) / arpix, per round`, system: 'ratio', unit: '×',
        ...summary(mine.map((s, r) => theirs[best]![r]! / s)), extra: { ...extra, target: '≥ 2' },
      });
    }
  } finally {
    mirror?.close();
  }
};

/** The mirror's formulations must compute arpix's attention (a small problem, every formulation). */
async function checkMirror(ax: typeof import('../../src/index.js'), mirror: ServeProcess, block: number): Promise<void> {
  const [n, l, c, h, b] = [2, 3 * block + 5, 32, 2, block];
  const x = ax.randn([n, l, 3 * c], { generator: new ax.Generator(5) });
  const dir = mkdtempSync(join(tmpdir(), 'arpix-attn-'));
  try {
    const path = join(dir, 'qkv.f32');
    writeFileSync(path, Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength));
    const local1d = { kind: 'local1d', block: b } as const;
    for (const [formulation, pattern] of [['causal-dense', { kind: 'causal' }], ['causal-blocked', { kind: 'causal' }], ['local1d-dense', local1d], ['local1d-blocked', local1d]] as const) {
      await mirror.request(`check ${path} ${n} ${l} ${c} ${h} ${formulation} ${b}`);
      const buf = readFileSync(`${path}.out`);
      const theirs = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
      const mine = ax.attention(x, { heads: h, pattern }).data;
      let worst = 0;
      for (let i = 0; i < mine.length; i++) worst = Math.max(worst, Math.abs(mine[i]! - theirs[i]!));
      if (!(worst < 1e-4) || theirs.length !== mine.length) throw new Error(`attention bench: the PyTorch mirror's ${formulation} differs from arpix's attention by ${worst}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export default suite;

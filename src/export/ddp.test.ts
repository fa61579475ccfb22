// The hand-off with PyTorch end to end, on this machine's CPUs: an exported model trained by
// train.py under DDP with two gloo ranks on 127.0.0.1, imported back, evaluated and resumed by
// arpix; and a Lightning checkpoint of the UvA tutorial's Gated PixelCNN, trained in PyTorch,
// evaluated by arpix to PyTorch's bits/dim. Skipped only when no Python here imports torch.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { locateDataset } from '../data/index.js';
import { loadCheckpoint } from '../io/disk.js';
import { noGrad } from '../ops/index.js';
import { Tensor } from '../tensor/tensor.js';
import { modelFromCheckpoint } from '../models/checkpoint.js';
import { findTorchPython, freePort } from './python.js';

const python = findTorchPython();
const haveFashion = locateDataset('fashion-mnist') !== null;
const skipDdp = python === null ? 'no Python here imports torch (apt-get install python3-torch)' : !haveFashion ? 'Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)' : false;
const MAIN = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
const ENV = { ...process.env, NODE_NO_WARNINGS: '1', OMP_NUM_THREADS: '1' };
const tmp = mkdtempSync(join(tmpdir(), 'arpix-ddp-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function arpix(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: ENV, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Seconds a rank may take (a few steps of a tiny model take ~5 s). */
const RANK_LIMIT_S = 180;

/** Runs train.py as `world` ranks started by hand (MASTER_ADDR/RANK, as torchrun would set them). */
async function trainRanks(dir: string, out: string, world: number, extra: string[] = []): Promise<Record<string, unknown>> {
  const port = await freePort();
  const runs = Array.from({ length: world }, (_, rank) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    // OpenBLAS on one thread: its spinning pool beside gloo's threads and the other tests on 2 cores
    // once left a rank at gloo's final barrier for minutes after the other had gone.
    const env = { ...ENV, OPENBLAS_NUM_THREADS: '1', RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) };
    const child = spawn(python!, [join(dir, 'train.py'), '--out', out, '--device', 'cpu', '--threads', '1', ...extra], { env });
    // A rank that outlives the limit is killed, so a hang fails the test instead of stalling the run.
    const limit = setTimeout(() => { stderr += `\n(killed after ${RANK_LIMIT_S} s)`; child.kill('SIGKILL'); }, RANK_LIMIT_S * 1000);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (code) => { clearTimeout(limit); resolve({ code, stdout, stderr }); });
  }));
  const results = await Promise.all(runs);
  for (const [rank, r] of results.entries()) {
    assert.equal(r.code, 0, `rank ${rank}: ${r.stderr}`);
    // No rank needed the bound on leaving the process group (train.py has no final barrier).
    assert.doesNotMatch(r.stderr, /Traceback|did not shut down/, `rank ${rank}: ${r.stderr}`);
  }
  return JSON.parse(results[0]!.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

interface Done { step: number; ranks: number; rankDigests: string[]; check: { images: number; loss: number } }

describe('train.py under DDP (gloo, 2 ranks on 127.0.0.1), back into arpix', { skip: skipDdp }, () => {
  test('the ranks agree, arpix reproduces PyTorch\'s loss and validation, matches 1 rank, and resumes the run', async () => {
    const exp = join(tmp, 'export');
    const tiny = ['--model.hiddenChannels=4', '--model.dilations=[1,2]', '--train.batchSize=8', '--train.steps=4', '--train.logEvery=1', '--train.checkpointEvery=2',
      '--train.validationSize=32', '--train.ema=0.9', '--train.schedule.warmup=2', '--train.lr=0.01'];
    const e = arpix(['export', '--preset', 'gated-pixelcnn-fmnist', '--torch', exp, ...tiny]);
    assert.equal(e.code, 0, e.stderr);

    const done = await trainRanks(exp, join(exp, 'run2'), 2) as unknown as Done;
    assert.equal(done.ranks, 2);
    assert.equal(done.step, 4);
    assert.equal(done.rankDigests.length, 2);
    assert.equal(done.rankDigests[0], done.rankDigests[1], 'both ranks hold the same weights');

    // The same global batch on one rank is the same optimisation, up to the order of float sums.
    const single = await trainRanks(exp, join(exp, 'run1'), 1) as unknown as Done;
    assert.ok(Math.abs(single.check.loss - done.check.loss) < 1e-4 * done.check.loss, `1 rank ${single.check.loss} vs 2 ranks ${done.check.loss}`);
    // train.py continues from its own checkpoint.
    const more = await trainRanks(exp, join(exp, 'run1'), 1, ['--resume', '--steps', '6']) as unknown as Done;
    assert.equal(more.step, 6);
    const steps1 = readFileSync(join(exp, 'run1', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; step: number }).filter((r) => r.type === 'train').map((r) => r.step);
    assert.deepEqual(steps1, [1, 2, 3, 4, 5, 6]);

    const run = join(tmp, 'run');
    const i = arpix(['import', join(exp, 'run2', 'checkpoint.safetensors'), '--out', run]);
    assert.equal(i.code, 0, i.stderr);
    assert.match(i.stdout, /step 4, optimiser state, averaged weights/);

    // The loss PyTorch logged for its final trained weights, on the first validation batch.
    const ckpt = await loadCheckpoint(join(run, 'checkpoint.safetensors'));
    const model = modelFromCheckpoint(ckpt, { useEma: false });
    const [, h, w, c] = [0, 28, 28, 1];
    const bytes = readFileSync(join(exp, 'data', 'validation.u8')).subarray(0, done.check.images * h * w * c);
    const images = new Tensor(Int32Array.from(bytes), [done.check.images, h, w, c]);
    const loss = noGrad(() => model.loss(images)).item();
    assert.ok(Math.abs(loss - done.check.loss) < 1e-5 * done.check.loss, `arpix ${loss} vs PyTorch ${done.check.loss}`);

    // The validation bits/dim PyTorch logged (averaged weights), from arpix eval on the same split.
    const logged = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; bitsPerDim?: number; step: number });
    assert.deepEqual(logged.filter((r) => r.type === 'train').map((r) => r.step), [1, 2, 3, 4]);
    const val = logged.find((r) => r.type === 'validation')!;
    const ev = arpix(['eval', run, '--split', 'validation', '--json']);
    assert.equal(ev.code, 0, ev.stderr);
    const bpd = (JSON.parse(ev.stdout) as { bitsPerDim: number }).bitsPerDim;
    assert.ok(Math.abs(bpd - val.bitsPerDim!) < 1e-5 * bpd, `arpix eval ${bpd} vs train.py ${val.bitsPerDim}`);

    const resumed = arpix(['train', '--resume', run, '--train.steps=6', '--no-bar']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const after = await loadCheckpoint(join(run, 'checkpoint.safetensors'));
    assert.equal(after.meta.step, 6);
    assert.equal((after.meta.ema as { updates: number }).updates, 6);
  });
});

// The UvA deep-learning tutorial's Gated PixelCNN (tutorial 12), as its code builds it: masked
// convolutions whose forward multiplies the weight by the mask in place, trained two steps so the
// masked taps hold non-zero values again, saved as a Lightning checkpoint.
const UVA = String.raw`
import json, math, sys, torch, torch.nn as nn, torch.nn.functional as F
torch.manual_seed(0)
class MaskedConvolution(nn.Module):
    def __init__(self, c_in, c_out, mask, dilation=1):
        super().__init__()
        k = (mask.shape[0], mask.shape[1])
        self.conv = nn.Conv2d(c_in, c_out, k, padding=tuple(dilation * (k[i] - 1) // 2 for i in range(2)), dilation=dilation)
        self.register_buffer("mask", mask[None, None])
    def forward(self, x):
        self.conv.weight.data *= self.mask
        return self.conv(x)
def vertical(c_in, c_out, k=3, mask_center=False, dilation=1):
    m = torch.ones(k, k); m[k // 2 + 1:, :] = 0
    if mask_center: m[k // 2, :] = 0
    return MaskedConvolution(c_in, c_out, m, dilation)
def horizontal(c_in, c_out, k=3, mask_center=False, dilation=1):
    m = torch.ones(1, k); m[0, k // 2 + 1:] = 0
    if mask_center: m[0, k // 2] = 0
    return MaskedConvolution(c_in, c_out, m, dilation)
class GatedMaskedConv(nn.Module):
    def __init__(self, c, dilation=1):
        super().__init__()
        self.conv_vert = vertical(c, 2 * c, dilation=dilation)
        self.conv_horiz = horizontal(c, 2 * c, dilation=dilation)
        self.conv_vert_to_horiz = nn.Conv2d(2 * c, 2 * c, 1)
        self.conv_horiz_1x1 = nn.Conv2d(c, c, 1)
    def forward(self, v, h):
        vf = self.conv_vert(v)
        a, b = vf.chunk(2, dim=1)
        v_out = torch.tanh(a) * torch.sigmoid(b)
        hf = self.conv_horiz(h) + self.conv_vert_to_horiz(vf)
        a, b = hf.chunk(2, dim=1)
        return v_out, h + self.conv_horiz_1x1(torch.tanh(a) * torch.sigmoid(b))
class PixelCNN(nn.Module):
    def __init__(self, c_in=1, c_hidden=64):
        super().__init__()
        self.conv_vstack = vertical(c_in, c_hidden, mask_center=True)
        self.conv_hstack = horizontal(c_in, c_hidden, mask_center=True)
        self.conv_layers = nn.ModuleList([GatedMaskedConv(c_hidden, d) for d in (1, 2, 1, 4, 1, 2, 1)])
        self.conv_out = nn.Conv2d(c_hidden, c_in * 256, 1)
    def forward(self, x):
        x = (x.float() / 255.0) * 2 - 1
        v, h = self.conv_vstack(x), self.conv_hstack(x)
        for layer in self.conv_layers:
            v, h = layer(v, h)
        out = self.conv_out(F.elu(h))
        return out.reshape(out.shape[0], 256, out.shape[1] // 256, out.shape[2], out.shape[3])
    def bpd(self, x):
        nll = F.cross_entropy(self.forward(x), x, reduction="none")
        return nll.mean(dim=[1, 2, 3]) * math.log2(math.exp(1))
model = PixelCNN()
assert sum(p.numel() for p in model.parameters()) == 852160
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
x = torch.randint(0, 256, (4, 1, 28, 28))
for _ in range(2):
    opt.zero_grad(); model.bpd(x).mean().backward(); opt.step()
leak = bool((model.conv_layers[0].conv_vert.conv.weight.data[:, :, 2, :] != 0).any())
torch.save({"state_dict": model.state_dict(), "epoch": 1, "global_step": 2, "pytorch-lightning_version": "1.9.0", "hyper_parameters": {"c_in": 1, "c_hidden": 64}}, sys.argv[1])
model.eval()
with torch.no_grad():
    bpd = model.bpd(x)
open(sys.argv[2], "wb").write(x.permute(0, 2, 3, 1).to(torch.uint8).numpy().tobytes())
print(json.dumps({"bpd": bpd.tolist(), "maskedTapsNonZero": leak}))
`;

describe('a Lightning checkpoint of the UvA tutorial\'s Gated PixelCNN', { skip: python === null && 'no Python here imports torch (apt-get install python3-torch)' }, () => {
  test('imports with --preset gated-pixelcnn-mnist and gives PyTorch\'s bits/dim image by image', async () => {
    const ckptFile = join(tmp, 'uva.ckpt');
    const imagesFile = join(tmp, 'uva-images.u8');
    const r = spawnSync(python!, ['-c', UVA, ckptFile, imagesFile], { encoding: 'utf8', env: ENV });
    assert.equal(r.status, 0, r.stderr);
    const theirs = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { bpd: number[]; maskedTapsNonZero: boolean };
    const run = join(tmp, 'uva-run');
    const i = arpix(['import', ckptFile, '--out', run, '--preset', 'gated-pixelcnn-mnist']);
    assert.equal(i.code, 0, i.stderr);
    assert.match(i.stdout, /imported a Lightning checkpoint \(masked formulation: masks applied, masked taps dropped\)/);
    assert.equal(theirs.maskedTapsNonZero, true, 'the saved masked taps are non-zero, so the masks must be applied');
    const model = modelFromCheckpoint(await loadCheckpoint(join(run, 'checkpoint.safetensors')));
    const images = new Tensor(Int32Array.from(readFileSync(imagesFile)), [4, 28, 28, 1]);
    const ours = noGrad(() => model.bitsPerDim(images)).data;
    for (let k = 0; k < 4; k++) assert.ok(Math.abs(ours[k]! - theirs.bpd[k]!) < 1e-5 * theirs.bpd[k]!, `image ${k}: arpix ${ours[k]} vs PyTorch ${theirs.bpd[k]}`);
  });
});

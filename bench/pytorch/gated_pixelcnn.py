#!/usr/bin/env python3
"""PyTorch mirror of arpix's gated-pixelcnn (src/models/gated-pixelcnn/), grey images only.

    python3 gated_pixelcnn.py check  --fixture IN.safetensors --out OUT.safetensors
    python3 gated_pixelcnn.py train  --data DIR --threads 2 --json

The common masked formulation (van den Oord et al. 2016): the vertical stack's first layer is a
k0×k0 convolution keeping only the rows above the centre, its later layers k×k (dilated) keeping
the rows above and the centre row; the horizontal stack's first layer is 1×k0 keeping only the
taps left of the centre, its later layers 1×k keeping the left taps and the centre; a 1×1 link
from the vertical pre-activation (no shift), gates tanh(a)·sigmoid(b), a 1×1 residual on the
horizontal stack, then ELU and a 1×1 convolution to 256 logits. arpix computes the same function
without the zeroed taps; `check` proves it on arpix's own weights.

`train` reads what bench/suites/quality.ts wrote into DIR: config.json (model and train
sections, minutes), init.safetensors (arpix's initial weights in PyTorch's layout, so both start
from the same point), train.u8 and test.u8 (uint8 [N, H, W] images). It trains for the same
wall-clock budget with the same batch size, optimiser, schedule, clipping and EMA, then prints
the test bits/dim of the averaged weights and the number of images seen, as one JSON object.
"""

import argparse
import json
import math
import os
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["check", "train"])
    ap.add_argument("--fixture")
    ap.add_argument("--out")
    ap.add_argument("--data")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--memory-format", choices=["channels_last", "nchw"], default="channels_last",
                    help="channels_last is PyTorch's faster CPU path for these convolutions (2x on the development machine)")
    return ap.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(ARGS.threads)

# safetensors without the safetensors package: arpix's PyTorch package has the reader and writer.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from arpix_torch.io import read_safetensors, write_safetensors  # noqa: E402


# ---- the model ----------------------------------------------------------------------------------


class MaskedConv2d(nn.Conv2d):
    """A convolution whose weight is multiplied by a fixed 0/1 mask of kernel taps."""

    def __init__(self, cin, cout, kh, kw, keep_rows, keep_cols, dilation=1):
        super().__init__(cin, cout, (kh, kw), dilation=dilation, padding=((kh // 2) * dilation, (kw // 2) * dilation))
        mask = torch.zeros(1, 1, kh, kw)
        mask[:, :, :keep_rows, :keep_cols] = 1
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding, dilation=self.dilation)


def gate(x):
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedBlock(nn.Module):
    def __init__(self, p, k, d):
        super().__init__()
        r = k // 2
        self.vConv = MaskedConv2d(p, 2 * p, k, k, keep_rows=r + 1, keep_cols=k, dilation=d)
        self.hConv = MaskedConv2d(p, 2 * p, 1, k, keep_rows=1, keep_cols=r + 1, dilation=d)
        self.link = nn.Conv2d(2 * p, 2 * p, 1)
        self.residual = nn.Conv2d(p, p, 1)

    def forward(self, v, h):
        v_pre = self.vConv(v)
        h_pre = self.hConv(h) + self.link(v_pre)
        return gate(v_pre), h + self.residual(gate(h_pre))


class GatedPixelCNN(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        assert cfg["channels"] == 1 and cfg["likelihood"]["kind"] == "categorical", "the mirror covers grey images with a categorical head"
        c, p, k, k0 = cfg["channels"], cfg["hiddenChannels"], cfg["kernelSize"], cfg["firstKernelSize"]
        r0 = k0 // 2
        self.levels = cfg["likelihood"]["levels"]
        self.vFirst = MaskedConv2d(c, p, k0, k0, keep_rows=r0, keep_cols=k0)
        self.hFirst = MaskedConv2d(c, p, 1, k0, keep_rows=1, keep_cols=r0)
        self.blocks = nn.ModuleList([GatedBlock(p, k, d) for d in cfg["dilations"]])
        self.out = nn.Conv2d(p, self.levels, 1)

    def forward(self, images):
        """int images [N, 1, H, W] -> logits [N, levels, H, W]"""
        x = images.to(self.out.weight.dtype) * (2 / (self.levels - 1)) - 1
        v, h = self.vFirst(x), self.hFirst(x)
        for block in self.blocks:
            v, h = block(v, h)
        return self.out(F.elu(h))

    def log_prob(self, images):
        """log p(x) in nats per image: [N]"""
        logits = self.forward(images)
        return -F.cross_entropy(logits, images[:, 0].long(), reduction="none").sum(dim=(1, 2))

    def load_arpix(self, sd):
        """Loads arpix's state dict (PyTorch layout): its skipped taps become the masked zeros."""
        with torch.no_grad():
            own = dict(self.named_parameters())
            for name, t in sd.items():
                w = own[name]
                if w.dim() == 4 and tuple(t.shape) != tuple(w.shape):
                    # arpix's kernels are the kept rows (vertical) or columns (horizontal), from the top-left.
                    w.zero_()
                    w[:, :, :t.shape[2], :t.shape[3]] = t
                else:
                    w.copy_(t.reshape(w.shape))
            missing = set(own) - set(sd)
            assert not missing, f"arpix weights lack {sorted(missing)}"


# ---- modes -------------------------------------------------------------------------------------


def check():
    tensors, meta = read_safetensors(ARGS.fixture)
    cfg = json.loads(meta["config"])
    model = GatedPixelCNN(cfg).double()
    sd = {k[len("model."):]: v.double() for k, v in tensors.items() if k.startswith("model.")}
    model.load_arpix(sd)
    images = tensors["images"].permute(0, 3, 1, 2)  # NHWC -> NCHW
    with torch.no_grad():
        lp = model.log_prob(images)
    out = dict(tensors)
    out["torch_logprob"] = lp.double()
    write_safetensors(ARGS.out, out, meta)
    print(json.dumps({"logprob": lp.tolist()}))


def train():
    d = ARGS.data
    cfg = json.load(open(os.path.join(d, "config.json")))
    m, t = cfg["model"], cfg["train"]
    h, w = m["height"], m["width"]
    train_x = torch.from_numpy(np.fromfile(os.path.join(d, "train.u8"), dtype=np.uint8).reshape(-1, 1, h, w).copy())
    test_x = torch.from_numpy(np.fromfile(os.path.join(d, "test.u8"), dtype=np.uint8).reshape(-1, 1, h, w).copy())
    torch.manual_seed(t["seed"])
    model = GatedPixelCNN(m)
    init, _ = read_safetensors(os.path.join(d, "init.safetensors"))
    model.load_arpix(init)
    fmt = torch.channels_last if ARGS.memory_format == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    train_x = train_x.contiguous(memory_format=fmt)
    test_x = test_x.contiguous(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=t["lr"], betas=tuple(t["betas"]), eps=t["eps"], weight_decay=t["weightDecay"])
    s = t["schedule"]

    def factor(step):  # arpix's withWarmup(warmup, exponentialDecay(gamma) | constant)
        if step < s["warmup"]:
            return (step + 1) / s["warmup"]
        return s["gamma"] ** (step - s["warmup"]) if s["decay"] == "exponential" else 1.0

    assert s["decay"] in ("exponential", "constant"), "the mirror implements the warm-up, exponential and constant schedules"
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    ema = [p.detach().clone() for p in model.parameters()] if t["ema"] > 0 else None
    budget = cfg["minutes"] * 60
    bs = t["batchSize"]
    n = train_x.shape[0]
    steps, images, epoch, trained = 0, 0, 0, 0.0
    model.train()
    while trained < budget:
        perm = torch.randperm(n)
        for i in range(0, n - bs + 1, bs):
            t0 = time.perf_counter()
            batch = train_x[perm[i:i + bs]].contiguous(memory_format=fmt)
            loss = -model.log_prob(batch).mean() / (h * w * math.log(2))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if t["gradClip"] > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), t["gradClip"])
            opt.step()
            sched.step()
            if ema is not None:
                with torch.no_grad():
                    decay = min(t["ema"], (1 + steps) / (10 + steps))  # arpix's EMA warm-up
                    for e, p in zip(ema, model.parameters()):
                        e.mul_(decay).add_(p.detach(), alpha=1 - decay)
            steps += 1
            images += bs
            trained += time.perf_counter() - t0
            if trained >= budget:
                break
        epoch += 1
    if ema is not None:
        with torch.no_grad():
            for e, p in zip(ema, model.parameters()):
                p.copy_(e)
    model.eval()
    nll = []
    with torch.no_grad():
        for i in range(0, test_x.shape[0], 100):
            nll.append(-model.log_prob(test_x[i:i + 100].contiguous(memory_format=fmt)).double())
    nll = torch.cat(nll) / (h * w * math.log(2))
    result = {
        "system": "pytorch", "bitsPerDim": nll.mean().item(), "stderr": (nll.std() / math.sqrt(len(nll))).item(),
        "images": images, "steps": steps, "seconds": trained, "threads": torch.get_num_threads(), "torch": torch.__version__, "memoryFormat": ARGS.memory_format,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    check() if ARGS.mode == "check" else train()
    sys.stdout.flush()

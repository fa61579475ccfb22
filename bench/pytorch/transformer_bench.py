#!/usr/bin/env python3
"""The PyTorch mirror of image-transformer (python/arpix_torch/image_transformer.py) for
bench/suites/transformer.ts and bench/suites/quality.ts.

    python3 transformer_bench.py serve  --config CFG.json --batch 32 --threads 2 [--warmup 2 --steps 3]
    python3 transformer_bench.py sample --config CFG.json --batch 16 --threads 2 --positions 28 [--runs 5]
    python3 transformer_bench.py train  --data DIR --threads 2 [--json]

serve: training steps (forward, log-likelihood, backward, Adam) at the batch size on request, so
the caller interleaves them with its own runs: after warm-up it prints {"ready": true}, then for
each line read from stdin times one run of `steps` steps and prints {"seconds": ...}.
sample: the naive sampler (the whole network per sub-pixel), timed over `positions` steps and
extrapolated to the whole sequence (each step does the same work).
train: quality.ts's equal-wall-clock run: DIR holds config.json ({model, train, minutes}),
init.safetensors (arpix's initial weights in PyTorch's layout), train.u8 and test.u8 (uint8
[N, H, W] grey images); trains for `minutes` of training time with arpix's hyper-parameters and
prints the test bits/dim as one JSON line.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from arpix_torch import build_model  # noqa: E402
from arpix_torch.io import read_safetensors  # noqa: E402
from arpix_torch.train_lib import make_optimizer, set_lr  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["serve", "sample", "train"])
ap.add_argument("--config")
ap.add_argument("--data")
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--positions", type=int, default=28)
ap.add_argument("--json", action="store_true")
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)


def emit(**kw):
    print(json.dumps(kw), flush=True)


def bits_per_dim_loss(model, images):
    n, h, w, c = images.shape
    return -model(images).mean() / (h * w * c * math.log(2))


if args.mode == "serve":
    cfg = json.load(open(args.config))
    model = build_model(cfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    levels = 2 if cfg["likelihood"]["kind"] == "bernoulli" else cfg["likelihood"].get("levels", 256)
    images = torch.randint(0, levels, (args.batch, cfg["height"], cfg["width"], cfg["channels"]))

    def run():
        for _ in range(args.steps):
            loss = bits_per_dim_loss(model, images)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    for _ in range(args.warmup):
        run()
    emit(ready=True)
    for _ in sys.stdin:
        t = time.perf_counter()
        run()
        emit(seconds=time.perf_counter() - t)

elif args.mode == "sample":
    cfg = json.load(open(args.config))
    model = build_model(cfg).eval()
    h, w, c = cfg["height"], cfg["width"], cfg["channels"]
    levels = cfg["likelihood"]["levels"]
    assert cfg["likelihood"]["kind"] == "categorical", "the naive sampler here draws from the categorical head"
    canvas = torch.zeros(args.batch, h, w, c, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)

    def steps():
        with torch.no_grad():
            for p in range(args.positions):
                pixel, ch = divmod(p, c)
                y, x = divmod(pixel % (h * w), w)
                logits = model.params(canvas)[:, y, x, ch * levels:(ch + 1) * levels]
                canvas[:, y, x, ch] = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=gen)[:, 0]

    for _ in range(1):
        steps()
    secs = []
    for _ in range(max(1, args.runs - 2)):
        t = time.perf_counter()
        steps()
        secs.append(time.perf_counter() - t)
    total = h * w * c
    rates = sorted(args.batch / (s / args.positions * total) for s in secs)
    emit(mode="sample", batch=args.batch, threads=args.threads, positions_timed=args.positions,
         median=statistics.median(rates), min=rates[0], max=rates[-1])

else:
    d = args.data
    cfg = json.load(open(os.path.join(d, "config.json")))
    m, t = cfg["model"], cfg["train"]
    h, w, c = m["height"], m["width"], m["channels"]
    train_x = torch.from_numpy(np.fromfile(os.path.join(d, "train.u8"), dtype=np.uint8).reshape(-1, h, w, c).astype(np.int64))
    test_x = torch.from_numpy(np.fromfile(os.path.join(d, "test.u8"), dtype=np.uint8).reshape(-1, h, w, c).astype(np.int64))
    torch.manual_seed(t["seed"])
    model = build_model(m)
    init, _ = read_safetensors(os.path.join(d, "init.safetensors"))
    model.load_state_dict(init, strict=True)
    opt = make_optimizer(model, t)
    budget = cfg["minutes"] * 60
    bs = t["batchSize"]
    n = train_x.shape[0]
    steps, images, trained = 0, 0, 0.0
    ema = {k: p.detach().clone() for k, p in model.named_parameters()} if t["ema"] > 0 else None
    model.train()
    while trained < budget:
        perm = torch.randperm(n)
        for i in range(0, n - bs + 1, bs):
            t0 = time.perf_counter()
            set_lr(opt, t, steps)
            loss = bits_per_dim_loss(model, train_x[perm[i:i + bs]])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if t["gradClip"] > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), t["gradClip"])
            opt.step()
            if ema is not None:
                with torch.no_grad():
                    decay = min(t["ema"], (1 + steps) / (10 + steps))
                    for k, p in model.named_parameters():
                        ema[k].mul_(decay).add_(p.detach(), alpha=1 - decay)
            steps += 1
            images += bs
            trained += time.perf_counter() - t0
            if trained >= budget:
                break
    if ema is not None:
        with torch.no_grad():
            for k, p in model.named_parameters():
                p.copy_(ema[k])
    model.eval()
    nll = []
    with torch.no_grad():
        for i in range(0, test_x.shape[0], 100):
            nll.append(-model(test_x[i:i + 100]).double())
    nll = torch.cat(nll) / (h * w * c * math.log(2))
    emit(system="pytorch", bitsPerDim=nll.mean().item(), stderr=(nll.std() / math.sqrt(len(nll))).item(),
         images=images, steps=steps, seconds=trained, threads=torch.get_num_threads(), torch=torch.__version__, memoryFormat="n/a (sequence)")

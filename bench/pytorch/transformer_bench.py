#!/usr/bin/env python3
"""The PyTorch mirror of image-transformer (python/arpix_torch/image_transformer.py) for
bench/suites/transformer.ts.

    python3 transformer_bench.py serve  --config CFG.json --batch 32 --threads 2 [--warmup 2 --steps 3]
    python3 transformer_bench.py sample --config CFG.json --batch 16 --threads 2 --positions 28 [--runs 5]

serve: training steps (forward, log-likelihood, backward, Adam) at the batch size on request, so
the caller interleaves them with its own runs: after warm-up it prints {"ready": true}, then for
each line read from stdin times one run of `steps` steps and prints {"seconds": ...}.
sample: the naive sampler (the whole network per sub-pixel), timed over `positions` steps and
extrapolated to the whole sequence (each step does the same work).
quality.ts's equal-wall-clock run of the mirror is bench/pytorch/quality_train.py.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from arpix_torch import build_model  # noqa: E402
from timing import emit, serve  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["serve", "sample"])
ap.add_argument("--config")
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--positions", type=int, default=28)
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)


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

    serve(run, args.warmup)

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


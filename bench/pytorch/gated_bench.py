#!/usr/bin/env python3
"""Timings of the PyTorch mirror of gated-pixelcnn-fmnist for bench/suites/train.ts and sample.ts.

    python3 gated_bench.py serve  --config CFG.json --batch 32 --threads 2 [--warmup 2 --steps 3]
    python3 gated_bench.py sample --config CFG.json --batch 16 --threads 2 --pixels 28 [--runs 5]

serve: full training steps (forward, cross-entropy, backward, Adam step) at the batch size, in
NCHW or channels_last, on request, so the caller interleaves them with its own runs: after
warm-up it prints {"ready": true}, then for each line "nchw" or "channels_last" read from stdin
times one run of `steps` steps and prints {"format": ..., "seconds": ...}; it ends at end of input.
sample: the naive sampler (the whole network per pixel); a full 28×28 image takes 784 such
steps, so `pixels` of them are timed and images/s is extrapolated to the whole image — each step
does the same work, so the extrapolation is exact up to noise. One JSON object per line.
"""

import argparse
import json
import os
import statistics
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["serve", "sample"])
ap.add_argument("--config", required=True)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
ap.add_argument("--runs", type=int, default=5)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--pixels", type=int, default=28)
args = ap.parse_args()

# The mirror parses its own arguments at import; give it a harmless command line.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.argv = [sys.argv[0], "check", "--threads", str(args.threads)]
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import gated_pixelcnn as mirror  # noqa: E402
from timing import emit, timed  # noqa: E402

torch.set_num_threads(args.threads)
cfg = json.load(open(args.config))
torch.manual_seed(0)


def training_run(fmt):
    """One run of `steps` training steps of a fresh mirror in memory format fmt."""
    model = mirror.GatedPixelCNN(cfg)
    mf = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=mf)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.randint(0, cfg["likelihood"]["levels"], (args.batch, 1, cfg["height"], cfg["width"]))
    images = images.contiguous(memory_format=mf)

    def run():
        for _ in range(args.steps):
            logits = model(images)
            loss = F.cross_entropy(logits, images[:, 0].long())
            opt.zero_grad()
            loss.backward()
            opt.step()

    return run


if args.mode == "serve":
    runs = {fmt: training_run(fmt) for fmt in ("nchw", "channels_last")}
    for run in runs.values():
        timed(run, 0, args.warmup)
    emit(ready=True)
    for line in sys.stdin:
        fmt = line.strip()
        if fmt not in runs:
            emit(error=f"unknown format {fmt!r}")
            continue
        t = time.perf_counter()
        runs[fmt]()
        emit(format=fmt, seconds=time.perf_counter() - t)
else:
    model = mirror.GatedPixelCNN(cfg).eval()
    h, w = cfg["height"], cfg["width"]
    canvas = torch.zeros(args.batch, 1, h, w, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)

    def steps():
        with torch.no_grad():
            for p in range(args.pixels):
                y, x = divmod(p, w)
                logits = model(canvas)[:, :, y, x]
                canvas[:, 0, y, x] = torch.multinomial(F.softmax(logits, dim=1), 1, generator=gen)[:, 0]

    secs = timed(steps, max(1, args.runs - 2), 1)
    per_step = statistics.median(secs) / args.pixels
    rates = sorted(args.batch / (s / args.pixels * h * w) for s in secs)
    emit(mode="sample", batch=args.batch, threads=args.threads, pixels_timed=args.pixels,
         seconds_per_image_batch=per_step * h * w, median=statistics.median(rates), min=rates[0], max=rates[-1])

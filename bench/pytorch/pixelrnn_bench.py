#!/usr/bin/env python3
"""Timings of the PyTorch mirror of arpix's PixelRNNs (python/arpix_torch/pixelrnn.py: a Python
loop over rows or diagonals, as the public implementations write them) for bench/suites/pixelrnn.ts.

    python3 pixelrnn_bench.py serve  --config CFG.json --batch 32 --threads 2 [--warmup 1 --steps 2]
    python3 pixelrnn_bench.py sample --config CFG.json --batch 16 --threads 2 --pixels 4 [--runs 3]

serve: full training steps (forward, arpix's bits/dim loss, backward, Adam step) at the batch
size, on request, so the caller interleaves them with its own runs: after warm-up it prints
{"ready": true}, then for each line read from stdin ("nchw") times one run of `steps` steps and
prints {"format": ..., "seconds": ...}; it ends at end of input.
sample: the naive sampler (the whole network per pixel); `pixels` steps are timed and images/s is
extrapolated to the whole image (every step does the same work). One JSON object per line.
"""

import argparse
import json
import math
import os
import statistics
import sys

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["serve", "sample"])
ap.add_argument("--config", required=True)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--warmup", type=int, default=1)
ap.add_argument("--steps", type=int, default=2)
ap.add_argument("--pixels", type=int, default=4)
args = ap.parse_args()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import torch  # noqa: E402
from arpix_torch import build_model  # noqa: E402
from arpix_torch.common import scale_input  # noqa: E402
from timing import emit, serve, timed  # noqa: E402

torch.set_num_threads(args.threads)
cfg = json.load(open(args.config))
torch.manual_seed(0)
h, w, c = cfg["height"], cfg["width"], cfg["channels"]
levels = cfg["likelihood"].get("levels", 2) if cfg["likelihood"]["kind"] != "bernoulli" else 2


if args.mode == "serve":
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.randint(0, levels, (args.batch, h, w, c))

    def run():
        for _ in range(args.steps):
            loss = -model(images).mean() / (h * w * c * math.log(2))
            opt.zero_grad()
            loss.backward()
            opt.step()

    serve(run, args.warmup)
else:
    if cfg["likelihood"]["kind"] != "categorical" or c != 1:
        raise SystemExit("pixelrnn_bench.py sample: grey categorical models only")
    model = build_model(cfg).eval()
    canvas = torch.zeros(args.batch, h, w, 1, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)

    def steps():
        with torch.no_grad():
            for p in range(args.pixels):
                y, x = divmod(p, w)
                logits = model.network(scale_input(canvas, levels, torch.float32), None)[:, :, y, x]
                canvas[:, y, x, 0] = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=gen)[:, 0]

    secs = timed(steps, args.runs, 1)
    rates = sorted(args.batch / (s / args.pixels * h * w) for s in secs)
    emit(mode="sample", batch=args.batch, threads=args.threads, pixels_timed=args.pixels,
         seconds_per_image_batch=statistics.median(secs) / args.pixels * h * w, median=statistics.median(rates), min=rates[0], max=rates[-1])

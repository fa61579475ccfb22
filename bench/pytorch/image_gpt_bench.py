#!/usr/bin/env python3
"""Timings of the PyTorch mirror of image-gpt (python/arpix_torch/image_gpt.py) for
bench/suites/image-gpt.ts.

    python3 image_gpt_bench.py serve  --config CFG.json --batch 32 --threads 2 [--warmup 2 --steps 3]
    python3 image_gpt_bench.py sample --config CFG.json --batch 16 --threads 2 --pixels 28 [--runs 5]

serve: training steps (forward, the loss arpix minimises, backward, Adam step) on request: after
warm-up it prints {"ready": true}; each input line "run" times one run of `steps` steps and prints
{"seconds": ...}; it ends at end of input. sample: the naive sampler (the whole sequence through
the network per token), `pixels` tokens timed and images/s extrapolated to the whole image.
"""

import argparse
import json
import math
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import torch  # noqa: E402
from arpix_torch.image_gpt import Model  # noqa: E402
from timing import emit, serve  # noqa: E402

torch.set_num_threads(args.threads)
cfg = json.load(open(args.config))
torch.manual_seed(0)
h, w, c = cfg["height"], cfg["width"], cfg["channels"]
levels = 256 if cfg["likelihood"]["kind"] == "palette" else cfg["likelihood"]["levels"]


if args.mode == "serve":
    model = Model(cfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.randint(0, levels, (args.batch, h, w, c))

    def run():
        for _ in range(args.steps):
            loss = -model(images).mean() / (model.loss_dims * math.log(2))
            opt.zero_grad()
            loss.backward()
            opt.step()

    serve(run, args.warmup)
else:
    model = Model(cfg).eval()
    canvas = torch.zeros(args.batch, h, w, c, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)

    def steps():
        with torch.no_grad():
            for p in range(args.pixels):
                y, x = divmod(p % (h * w), w)
                tokens = model.tokens(canvas)
                logits = model.head(model.normOut(model.hidden(tokens)))[:, p % (h * w)]
                tok = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=gen)[:, 0]
                canvas[:, y, x, :] = tok[:, None] if model.palette is None else model.palette[tok].long()

    secs = []
    steps()
    for _ in range(max(1, args.runs - 2)):
        t = time.perf_counter()
        steps()
        secs.append(time.perf_counter() - t)
    rates = sorted(args.batch / (s / args.pixels * h * w) for s in secs)
    emit(mode="sample", batch=args.batch, threads=args.threads, pixels_timed=args.pixels, median=statistics.median(rates), min=rates[0], max=rates[-1])

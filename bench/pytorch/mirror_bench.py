#!/usr/bin/env python3
"""Timings of the bench's PyTorch mirrors (fast_mirrors.py) for the suites train, sample,
transformer, image-gpt and pixelrnn.

    python3 mirror_bench.py serve  --config CFG.json --batch 32 --threads 2 [--steps 3] [--warmup 2] [--precisions fp32,bf16]
    python3 mirror_bench.py sample --config CFG.json --batch 16 --threads 2 [--positions 28] [--runs 3]

serve: training steps (forward, arpix's bits/dim loss, backward, Adam step) on random images, one
model and optimiser per variant: a precision (fp32, or bf16 under torch.cpu.amp.autocast, the line
a PyTorch user adds on a CPU with native bf16) and, for the convolutional families, a memory format
(NCHW or channels_last: which is faster depends on the CPU and the shapes); for the others fp32
also with OpenBLAS on one thread (the products alternate with OpenMP work). It first checks the
mirror against python/arpix_torch's on the same weights, warms every variant up and prints
{"ready": true, "variants": [{"name", "precision"}...], "formulation", "check", "torch",
"threads", "blas"}; then each line read from stdin names a variant, whose `steps` steps are timed:
{"variant": ..., "seconds": ...}. It ends at the end of its input. The caller interleaves these
runs with arpix's.

sample: the naive sampler (the whole network per position, a categorical or palette head),
`positions` steps timed and images/s extrapolated to the whole image: every step does the same
work. One JSON line.
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
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--precisions", default="fp32", help="comma-separated: fp32, bf16")
ap.add_argument("--positions", type=int, default=28)
ap.add_argument("--runs", type=int, default=3)
args = ap.parse_args()
# Before torch loads: its OpenMP pool and OpenBLAS's pthreads pool read these once.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import fast_mirrors  # noqa: E402
from machine import blas_thread_choices, describe, precision, set_blas_threads  # noqa: E402
from timing import emit, timed  # noqa: E402

torch.set_num_threads(args.threads)
cfg = json.load(open(args.config))
h, w, c = cfg["height"], cfg["width"], cfg["channels"]
lik = cfg["likelihood"]
levels = 2 if lik["kind"] == "bernoulli" else lik.get("levels", 256)
CONV_KINDS = fast_mirrors.CONV_KINDS
FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
BLAS_THREADS = blas_thread_choices(args.threads, cfg["kind"] not in CONV_KINDS)


def training_run(fmt, prec, blas_threads):
    """One run of `steps` training steps of a fresh mirror in memory format `fmt`, precision `prec`,
    OpenBLAS on `blas_threads` threads."""
    torch.manual_seed(0)
    model = fast_mirrors.build(cfg).train()
    if fmt is not None:
        model = model.to(memory_format=FORMATS[fmt])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.randint(0, levels, (args.batch, h, w, c))

    def run():
        set_blas_threads(blas_threads)
        for _ in range(args.steps):
            with precision(prec):
                loss = fast_mirrors.bits_per_dim_loss(model, images)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def variants():
    """(name, precision, memory format, OpenBLAS threads) of each variant to time."""
    precisions = args.precisions.split(",")
    if cfg["kind"] in CONV_KINDS:
        return [(f"{fmt} {p}", p, fmt, args.threads) for p in precisions for fmt in FORMATS]
    out = [(p, p, None, args.threads) for p in precisions]
    if "fp32" in precisions and len(BLAS_THREADS) > 1:  # see machine.blas_thread_choices
        out.insert(precisions.index("fp32") + 1, ("fp32 OpenBLAS-1", "fp32", None, 1))
    return out


def serve():
    worst = fast_mirrors.check(cfg)
    if not worst <= 1e-9:
        raise SystemExit(f"mirror_bench: the {cfg['kind']} mirror differs from python/arpix_torch's by {worst} (relative log-likelihood)")
    runs, skipped = {}, []
    for name, prec, fmt, blas_threads in variants():
        run = training_run(fmt, prec, blas_threads)
        try:
            timed(run, 0, args.warmup)
        except RuntimeError as e:  # e.g. oneDNN without bf16 convolutions on an AVX2-only CPU
            skipped.append({"name": name, "reason": str(e).split("\n")[0]})
            continue
        runs[name] = (run, prec)
    emit(ready=True, variants=[{"name": k, "precision": p} for k, (_, p) in runs.items()], skipped=skipped,
         formulation=fast_mirrors.formulation(cfg), check=worst, **describe())
    for line in sys.stdin:
        name = line.strip()
        if name not in runs:
            emit(error=f"unknown variant {name!r} (variants: {', '.join(runs)})")
            continue
        t = time.perf_counter()
        runs[name][0]()
        emit(variant=name, seconds=time.perf_counter() - t)


def logits_at(model):
    """(canvas, y, x, ch) -> logits [N, K] of that position, from the whole network."""
    kind = cfg["kind"]
    if kind == "image-transformer":
        return lambda canvas, y, x, ch: model.params(canvas)[:, y, x, ch * levels:(ch + 1) * levels]
    if kind == "image-gpt":
        return lambda canvas, y, x, ch: model.head(model.normOut(model.hidden(model.tokens(canvas))))[:, y * w + x]
    from arpix_torch.common import scale_input
    return lambda canvas, y, x, ch: model.network(scale_input(canvas, levels, torch.float32), None)[:, ch * levels:(ch + 1) * levels, y, x]


def sample():
    if lik["kind"] not in ("categorical", "palette"):
        raise SystemExit("mirror_bench.py sample: categorical and palette heads only")
    model = fast_mirrors.build(cfg).eval()
    palette = getattr(model, "palette", None)
    per_position = 1 if cfg["kind"] == "image-gpt" else c  # image-gpt draws one token per pixel
    logits = logits_at(model)
    canvas = torch.zeros(args.batch, h, w, c, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)

    def steps():
        with torch.no_grad():
            for p in range(args.positions):
                pixel, ch = divmod(p, per_position)
                y, x = divmod(pixel % (h * w), w)
                tok = torch.multinomial(torch.softmax(logits(canvas, y, x, ch), dim=-1), 1, generator=gen)[:, 0]
                if cfg["kind"] == "image-gpt":
                    canvas[:, y, x, :] = tok[:, None] if palette is None else palette[tok].long()
                else:
                    canvas[:, y, x, ch] = tok

    total = h * w * per_position
    best = None
    # Each of BLAS_THREADS timed; the faster is reported.
    for blas_threads in BLAS_THREADS:
        set_blas_threads(blas_threads)
        rates = sorted(args.batch / (s / args.positions * total) for s in timed(steps, args.runs, 1))
        if best is None or statistics.median(rates) > statistics.median(best[1]):
            best = (blas_threads, rates)
    blas_threads, rates = best
    emit(mode="sample", batch=args.batch, positions_timed=args.positions, median=statistics.median(rates), min=rates[0], max=rates[-1],
         formulation=fast_mirrors.formulation(cfg) + (f", OpenBLAS on {blas_threads} thread(s)" if len(BLAS_THREADS) > 1 else ""), **describe())


if __name__ == "__main__":
    serve() if args.mode == "serve" else sample()

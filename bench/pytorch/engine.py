#!/usr/bin/env python3
"""PyTorch mirror of bench/suites/engine.ts: the same shapes, timed the same way.

    python3 bench/pytorch/engine.py --threads 2 [--json] [--runs 7] [--warmup 2]

Prints a table, or with --json one JSON object per case in the harness's format (suite, case,
system, batch, threads, unit, median, min, max, extra) plus {"note": ...} lines. Every case is run
in both memory formats, NCHW and channels_last, because which one is faster depends on the shape
and the build; the arpix suite compares against the faster of the two.

Threads are set explicitly: torch.set_num_threads(N) for PyTorch's own OpenMP pool, and
OMP_NUM_THREADS / OPENBLAS_NUM_THREADS for the BLAS behind matmul (Debian's build calls the
system libblas.so.3, which torch.set_num_threads does not reach), set before torch is imported.
"""

import argparse
import json
import os
import statistics
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--matmul", type=int, default=1024)
    return ap.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import torch  # noqa: E402  (after the thread variables, which the libraries read when loaded)
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import describe  # noqa: E402

SUITE = "engine"
FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def timed(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(max(5, runs)):
        t0 = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t0)
    return seconds


def report(case, system, batch, unit, work, seconds, extra=None):
    """work per run / seconds → a rate: median, and min/max from the slowest/fastest run."""
    rec = {"suite": SUITE, "case": case, "system": system}
    if batch is not None:
        rec["batch"] = batch
    rec.update({"threads": ARGS.threads, "unit": unit,
                "median": work / statistics.median(seconds), "min": work / max(seconds), "max": work / min(seconds)})
    if extra:
        rec["extra"] = extra
    RESULTS.append(rec)
    if ARGS.json:
        print(json.dumps(rec), flush=True)


def note(message):
    if ARGS.json:
        print(json.dumps({"note": message}), flush=True)
    else:
        print(f"note: {message}", flush=True)


RESULTS = []


def conv_flops(n, h, w, cin, cout, k):
    return 2.0 * n * h * w * cout * cin * k * k


def bench_conv(fmt_name, fmt):
    n, h, w, c, k = ARGS.batch, 28, 28, 64, 3
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, h, w, generator=g).contiguous(memory_format=fmt)
    wt = (torch.randn(c, c, k, k, generator=g) * 0.05).contiguous(memory_format=fmt)
    dy = torch.randn(n, c, h, w, generator=g).contiguous(memory_format=fmt)
    flops = conv_flops(n, h, w, c, c, k) / 1e9
    system = f"pytorch/{fmt_name}"
    conv_args = ([1, 1], [1, 1], [1, 1], False, [0, 0], 1)  # stride, padding, dilation, transposed, output_padding, groups

    with torch.no_grad():
        fwd = timed(lambda: F.conv2d(x, wt, None, 1, 1), ARGS.warmup, ARGS.runs)
    # convolution_backward is what autograd calls; the mask asks for one gradient at a time.
    bwd_data = timed(lambda: torch.ops.aten.convolution_backward(dy, x, wt, None, *conv_args, [True, False, False]), ARGS.warmup, ARGS.runs)
    bwd_w = timed(lambda: torch.ops.aten.convolution_backward(dy, x, wt, None, *conv_args, [False, True, False]), ARGS.warmup, ARGS.runs)
    case = f"conv3x3 64→64 [{n},28,28,64]"
    report(f"{case} forward", system, n, "GFLOP/s", flops, fwd)
    report(f"{case} backward-data", system, n, "GFLOP/s", flops, bwd_data)
    report(f"{case} backward-weights", system, n, "GFLOP/s", flops, bwd_w)
    # The three together: sum of the per-part times.
    total = [a + b + c for a, b, c in zip(sorted(fwd), sorted(bwd_data), sorted(bwd_w))]
    report(f"{case} fwd+bwd", system, n, "GFLOP/s", 3 * flops, total)

    # One training step of the layer as autograd runs it: the forward, then one
    # convolution_backward asked for both gradients.
    def step():
        with torch.no_grad():
            F.conv2d(x, wt, None, 1, 1)
        torch.ops.aten.convolution_backward(dy, x, wt, None, *conv_args, [True, True, False])
    report(f"{case} training step", system, n, "GFLOP/s", 3 * flops, timed(step, ARGS.warmup, ARGS.runs))


class GatedBlock(torch.nn.Module):
    """x → conv3×3 C→2C → tanh(a)·sigmoid(b) → conv1×1 C→C → + x (the arpix suite's block)."""

    def __init__(self, c):
        super().__init__()
        self.conv_in = torch.nn.Conv2d(c, 2 * c, 3, padding=1)
        self.conv_out = torch.nn.Conv2d(c, c, 1)

    def forward(self, x):
        a, b = self.conv_in(x).chunk(2, dim=1)
        return x + self.conv_out(torch.tanh(a) * torch.sigmoid(b))


def gated_block_flops(n, c=64, hw=28 * 28):
    """Convolution FLOPs of one training step: forward, backward-data and backward-weights."""
    fwd = 2.0 * n * hw * (2 * c) * c * 9 + 2.0 * n * hw * c * c
    return 3 * fwd


def bench_gated(fmt_name, fmt):
    n, c = ARGS.batch, 64
    torch.manual_seed(0)
    block = GatedBlock(c).to(memory_format=fmt)
    x = torch.randn(n, c, 28, 28).contiguous(memory_format=fmt).requires_grad_(True)
    params = list(block.parameters())

    def step():
        for p in params:
            p.grad = None
        x.grad = None
        block(x).sum().backward()

    seconds = timed(step, ARGS.warmup, ARGS.runs)
    case = f"gated block train step [{n},28,28,64]"
    report(f"{case}", f"pytorch/{fmt_name}", n, "images/s", n, seconds)
    report(f"{case} conv FLOPs", f"pytorch/{fmt_name}", n, "GFLOP/s", gated_block_flops(n) / 1e9, seconds)


def bench_matmul():
    m = ARGS.matmul
    g = torch.Generator().manual_seed(0)
    a = torch.randn(m, m, generator=g)
    b = torch.randn(m, m, generator=g)
    with torch.no_grad():
        seconds = timed(lambda: torch.matmul(a, b), ARGS.warmup, ARGS.runs)
    report(f"matmul {m}×{m}", "pytorch", None, "GFLOP/s", 2.0 * m ** 3 / 1e9, seconds)


def config_summary():
    cfg = torch.__config__.show()
    keep = []
    for line in cfg.splitlines():
        line = line.strip()
        if "MKL-DNN" in line or "oneDNN" in line or "CPU capability" in line:
            keep.append(line.lstrip("- "))
        if "BLAS_INFO" in line:
            blas_info = [kv for kv in line.split(", ") if kv.startswith("BLAS_INFO")]
            keep.extend(blas_info)
    return "; ".join(keep)


def main():
    torch.set_num_threads(ARGS.threads)
    note(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, mkldnn {'on' if torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled else 'off'}; {config_summary()}")
    for fmt_name, fmt in FORMATS.items():
        bench_conv(fmt_name, fmt)
    for fmt_name, fmt in FORMATS.items():
        bench_gated(fmt_name, fmt)
    bench_matmul()
    env = describe()
    if ARGS.json:
        print(json.dumps({"torch": env}), flush=True)  # the suite notes it, and warns when the BLAS is not OpenBLAS
    else:
        note(f"PyTorch matmul BLAS: {env['blas']['name']} ({env['blas']['config'] or ', '.join(env['blas']['libraries'])})")
    if not ARGS.json:
        width = max(len(r["case"]) for r in RESULTS)
        for r in RESULTS:
            print(f"{r['case']:<{width}}  {r['system']:<22} {r['median']:10.2f} {r['unit']:<9} (min {r['min']:.2f}, max {r['max']:.2f})")


if __name__ == "__main__":
    sys.exit(main())

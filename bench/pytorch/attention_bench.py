#!/usr/bin/env python3
"""PyTorch mirror of arpix's fused attention for bench/suites/attention.ts.

    python3 attention_bench.py serve --batch 16 --length 784 --width 128 --heads 4 --block 112 \
        --threads 2 [--warmup 2 --steps 3]

Debian's torch 1.13 has no fused attention, so this is the usual composition on the same packed
layout: qkv [N, L, 3C] → q, k, v as [N, heads, L, d] views, matmul, mask, softmax, matmul, back to
[N, L, C]; forward and backward (autograd) with a fixed output gradient. Formulations
(attention_forms.py):
  causal-dense    dense L×L scores under the causal mask
  causal-blocked  query blocks of `block` against the keys up to their block's end
  local1d-dense   dense L×L scores under the local 1-D mask
  local1d-blocked tensor2tensor's local_attention_1d: the sequence padded to whole blocks, each
                  query block against [previous block, own block], a (2·block)-wide mask
After warm-up it prints {"ready": true, "blasThreads": [...], "blas": ..., ...}; then for each
request line (a formulation, optionally an OpenBLAS thread count of blasThreads) it times one run of
`steps` forward+backward passes and prints {"case": ..., "seconds": ...}.
"check PATH N L C HEADS FORMULATION BLOCK" reads float32 qkv [N, L, 3C] from PATH, writes the
output [N, L, C] to PATH.out and prints {"ok": true}: the suite compares it with arpix's.
"""

import argparse
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["serve"])
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--length", type=int, default=784)
ap.add_argument("--width", type=int, default=128)
ap.add_argument("--heads", type=int, default=4)
ap.add_argument("--block", type=int, default=112)
ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--steps", type=int, default=3)
args = ap.parse_args()
# Before torch loads: its OpenMP pool and OpenBLAS's pthreads pool read these once.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attention_forms import causal_bias, causal_blocked, dense, local1d_blocked  # noqa: E402
from machine import blas_thread_choices, describe, set_blas_threads  # noqa: E402
from timing import emit  # noqa: E402

torch.set_num_threads(args.threads)


def split_heads(qkv, heads):
    n, l, c3 = qkv.shape
    c = c3 // 3
    # [N, L, 3, heads, d] → three [N, heads, L, d] views
    return qkv.view(n, l, 3, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)


def merge_heads(o):
    n, h, l, d = o.shape
    return o.transpose(1, 2).reshape(n, l, h * d)


def local1d_bias_dense(l, block):
    i = torch.arange(l)[:, None]
    j = torch.arange(l)[None, :]
    return torch.where((j <= i) & (j >= (i // block) * block - block), 0.0, -1e9)


def formulation(name, heads, l, block):
    """qkv [N, L, 3C] -> [N, L, C] in formulation `name` (block: the query block, and local 1-D's memory)."""
    if name == "causal-dense":
        bias = causal_bias(l)
        return lambda x: merge_heads(dense(*split_heads(x, heads), bias))
    if name == "causal-blocked":
        return lambda x: merge_heads(causal_blocked(*split_heads(x, heads), block))
    if name == "local1d-dense":
        bias = local1d_bias_dense(l, block)
        return lambda x: merge_heads(dense(*split_heads(x, heads), bias))
    if name == "local1d-blocked":
        return lambda x: merge_heads(local1d_blocked(*split_heads(x, heads), block, block))
    raise ValueError(f"unknown formulation {name!r}")


n, l, c = args.batch, args.length, args.width
gen = torch.Generator().manual_seed(0)
qkv = torch.randn(n, l, 3 * c, generator=gen).requires_grad_()
grad = torch.randn(n, l, c, generator=gen)
cases = {name: formulation(name, args.heads, l, args.block) for name in ("causal-dense", "causal-blocked", "local1d-dense", "local1d-blocked")}
# Each formulation with OpenBLAS on each of these thread counts (machine.blas_thread_choices): its
# pthreads pool and torch's OpenMP threads can fight over few cores.
BLAS_THREADS = blas_thread_choices(args.threads)


def run(fn, blas_threads=args.threads):
    set_blas_threads(blas_threads)
    for _ in range(args.steps):
        out = fn(qkv)
        out.backward(grad)
        qkv.grad = None


for fn in cases.values():
    for _ in range(args.warmup):
        run(fn)
emit(ready=True, blasThreads=BLAS_THREADS, **describe())
for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    if words[0] == "check":
        path, cn, cl, cc, ch, name, cb = words[1:]
        x = torch.from_numpy(np.fromfile(path, dtype=np.float32).reshape(int(cn), int(cl), 3 * int(cc)))
        with torch.no_grad():
            y = formulation(name, int(ch), int(cl), int(cb))(x)
        y.numpy().astype(np.float32).tofile(path + ".out")
        emit(ok=True)
        continue
    blas_threads = int(words[1]) if len(words) > 1 else args.threads
    if words[0] not in cases or blas_threads not in BLAS_THREADS:
        emit(error=f"unknown case {line.strip()!r} (a formulation, then one of {BLAS_THREADS} OpenBLAS threads)")
        continue
    t = time.perf_counter()
    run(cases[words[0]], blas_threads)
    emit(case=words[0], seconds=time.perf_counter() - t)

#!/usr/bin/env python3
"""PyTorch mirror of arpix's fused attention for bench/suites/attention.ts.

    python3 attention_bench.py serve --batch 16 --length 784 --width 128 --heads 4 --block 112 \
        --threads 2 [--warmup 2 --steps 3]

Debian's torch 1.13 has no fused attention, so this is the usual composition on the same packed
layout: qkv [N, L, 3C] → q, k, v as [N, heads, L, d] views, matmul, mask, softmax, matmul, back to
[N, L, C]; forward and backward (autograd) with a fixed output gradient. Formulations:
  causal          dense L×L scores with the causal mask (the only way without fused kernels)
  local1d-dense   dense L×L scores with the local 1-D mask
  local1d-blocked tensor2tensor's local_attention_1d: the sequence padded to whole blocks, each
                  query block against [previous block, own block], a (2·block)-wide mask
After warm-up it prints {"ready": true, "blas": ...}; then for each request line (a formulation)
it times one run of `steps` forward+backward passes and prints {"case": ..., "seconds": ...}.
"check PATH N L C HEADS FORMULATION BLOCK" reads float32 qkv [N, L, 3C] from PATH, writes the
output [N, L, C] to PATH.out and prints {"ok": true}: the suite compares it with arpix's.
"""

import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch

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
torch.set_num_threads(args.threads)


def emit(**kw):
    print(json.dumps(kw), flush=True)


def split_heads(qkv, heads):
    n, l, c3 = qkv.shape
    c = c3 // 3
    # [N, L, 3, heads, d] → three [N, heads, L, d] views
    parts = qkv.view(n, l, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    return parts[0], parts[1], parts[2]


def merge_heads(o):
    n, h, l, d = o.shape
    return o.transpose(1, 2).reshape(n, l, h * d)


def dense(qkv, heads, allowed):
    q, k, v = split_heads(qkv, heads)
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    scores = scores.masked_fill(~allowed, float("-inf"))
    return merge_heads(torch.matmul(torch.softmax(scores, dim=-1), v))


def causal_mask(l):
    return torch.ones(l, l, dtype=torch.bool).tril()


def local1d_mask(l, block):
    i = torch.arange(l)[:, None]
    j = torch.arange(l)[None, :]
    return (j <= i) & (j >= (i // block) * block - block)


def local1d_blocked(qkv, heads, block):
    q, k, v = split_heads(qkv, heads)
    n, h, l, d = q.shape
    nb = (l + block - 1) // block
    pad = nb * block - l
    # The sequence padded to whole blocks and one block of zeros in front (the first block's memory).
    q = torch.nn.functional.pad(q, (0, 0, 0, pad)).view(n, h, nb, block, d)
    kp = torch.nn.functional.pad(k, (0, 0, block, pad)).view(n, h, nb + 1, block, d)
    vp = torch.nn.functional.pad(v, (0, 0, block, pad)).view(n, h, nb + 1, block, d)
    keys = torch.cat([kp[:, :, :-1], kp[:, :, 1:]], dim=3)  # [N, h, nb, 2·block, d]
    vals = torch.cat([vp[:, :, :-1], vp[:, :, 1:]], dim=3)
    scores = torch.matmul(q, keys.transpose(-2, -1)) * (1.0 / math.sqrt(d))
    # query r of block b sees memory column c when c ≤ block + r, and not the zero block before block 0.
    r = torch.arange(block)[:, None]
    c = torch.arange(2 * block)[None, :]
    allowed = (c <= block + r)[None, None, None].expand(1, 1, nb, block, 2 * block).clone()
    allowed[0, 0, 0, :, :block] = False
    scores = scores.masked_fill(~allowed, float("-inf"))
    out = torch.matmul(torch.softmax(scores, dim=-1), vals)  # [N, h, nb, block, d]
    return merge_heads(out.view(n, h, nb * block, d)[:, :, :l])


def formulation(name, heads, l, block):
    if name == "causal":
        mask = causal_mask(l)
        return lambda x: dense(x, heads, mask)
    if name == "local1d-dense":
        mask = local1d_mask(l, block)
        return lambda x: dense(x, heads, mask)
    if name == "local1d-blocked":
        return lambda x: local1d_blocked(x, heads, block)
    raise ValueError(f"unknown formulation {name!r}")


def blas():
    """torch's BLAS_INFO and the BLAS libraries actually mapped (Debian's 'generic' resolves via alternatives)."""
    m = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    with open("/proc/self/maps") as f:
        libs = sorted({os.path.realpath(line.split()[-1]) for line in f if "blas" in line.lower() and "/" in line})
    return f"{m.group(1) if m else 'unknown'} ({', '.join(libs) or 'no BLAS library mapped'})"


n, l, c = args.batch, args.length, args.width
gen = torch.Generator().manual_seed(0)
qkv = torch.randn(n, l, 3 * c, generator=gen).requires_grad_()
grad = torch.randn(n, l, c, generator=gen)
cases = {name: formulation(name, args.heads, l, args.block) for name in ("causal", "local1d-dense", "local1d-blocked")}


def run(fn):
    for _ in range(args.steps):
        out = fn(qkv)
        out.backward(grad)
        qkv.grad = None


for fn in cases.values():
    for _ in range(args.warmup):
        run(fn)
emit(ready=True, blas=blas(), threads=torch.get_num_threads(), torch=torch.__version__)
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
    if words[0] not in cases:
        emit(error=f"unknown case {words[0]!r}")
        continue
    t = time.perf_counter()
    run(cases[words[0]])
    emit(case=words[0], seconds=time.perf_counter() - t)

#!/usr/bin/env python3
"""The PyTorch side of bench/suites/quality.ts: the family's bench mirror (fast_mirrors.py: the
network of python/arpix_torch in the fastest formulation, convolutions channels-last, OpenBLAS on
the faster of its thread choices) trained for the same wall-clock budget as arpix, from arpix's
initial weights, with arpix's hyper-parameters.

    python3 quality_train.py train --data DIR --threads 2 [--json]

DIR holds what quality.ts wrote: config.json ({model, train, minutes}), init.safetensors (arpix's
initial weights in PyTorch's layout), train.u8 and test.u8 (uint8 [N, H, W, C] images). The run
stops at `minutes` of training time (time spent in steps only, as arpix counts it) or at
train.steps when that is set, whichever comes first; then the test bits/dim of the weight average
(or the weights, without one) is printed as one JSON line.
"""

import argparse
import copy
import json
import math
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["train"])
ap.add_argument("--data", required=True)
ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
ap.add_argument("--json", action="store_true")
args = ap.parse_args()
# Before torch loads: its OpenMP pool and OpenBLAS's pthreads pool read these once.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fast_mirrors  # noqa: E402  (puts python/ on the path)
from arpix_torch.io import read_safetensors  # noqa: E402
from arpix_torch.train_lib import EMA, make_optimizer, set_lr  # noqa: E402
from machine import blas_thread_choices, describe, set_blas_threads  # noqa: E402

torch.set_num_threads(args.threads)

d = args.data
cfg = json.load(open(os.path.join(d, "config.json")))
m, t = cfg["model"], cfg["train"]
h, w, c = m["height"], m["width"], m["channels"]


def images(name):
    x = np.fromfile(os.path.join(d, name), dtype=np.uint8).reshape(-1, h, w, c)
    return torch.from_numpy(x.astype(np.int64))


train_x, test_x = images("train.u8"), images("test.u8")
torch.manual_seed(t["seed"])
model = fast_mirrors.build(m)
init, _ = read_safetensors(os.path.join(d, "init.safetensors"))
model.load_state_dict(init, strict=True)
model = model.to(memory_format=torch.channels_last)  # only convolution weights change


def choose_blas_threads():
    """The OpenBLAS thread count (of machine.blas_thread_choices) whose training steps are faster,
    timed in alternation on a copy of the model before the budget starts."""
    choices = blas_thread_choices(args.threads, m["kind"] not in fast_mirrors.CONV_KINDS)
    if len(choices) == 1:
        return choices[0]
    trial = copy.deepcopy(model)
    trial_opt = torch.optim.Adam(trial.parameters())
    batch = train_x[:t["batchSize"]]
    best = {n: math.inf for n in choices}
    for r in range(3):  # round 0 warms up
        for n in choices if r % 2 else choices[::-1]:
            set_blas_threads(n)
            t0 = time.perf_counter()
            loss = -trial(batch).mean()
            trial_opt.zero_grad(set_to_none=True)
            loss.backward()
            trial_opt.step()
            if r > 0:
                best[n] = min(best[n], time.perf_counter() - t0)
    n = min(choices, key=best.get)
    set_blas_threads(n)
    return n


blas_threads = choose_blas_threads()
opt = make_optimizer(model, t)
ema = EMA(model, t["ema"]) if t["ema"] > 0 else None
budget = cfg["minutes"] * 60
max_steps = t["steps"] if t["steps"] > 0 else math.inf
bs, n, dims = t["batchSize"], train_x.shape[0], h * w * c
steps, seen, trained = 0, 0, 0.0
model.train()
while trained < budget and steps < max_steps:
    perm = torch.randperm(n)
    for i in range(0, n - bs + 1, bs):
        t0 = time.perf_counter()
        set_lr(opt, t, steps)
        loss = -model(train_x[perm[i:i + bs]]).mean() / (dims * math.log(2))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if t["gradClip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t["gradClip"])
        opt.step()
        if ema is not None:
            ema.update(model)
        steps += 1
        seen += bs
        trained += time.perf_counter() - t0
        if trained >= budget or steps >= max_steps:
            break
if ema is not None:
    with torch.no_grad():
        for k, p in model.named_parameters():
            p.copy_(ema.shadow[k])
model.eval()
nll = []
with torch.no_grad():
    for i in range(0, test_x.shape[0], 100):
        nll.append(-model(test_x[i:i + 100]).double())
bpd = torch.cat(nll) / (dims * math.log(2))
print(json.dumps(dict(system="pytorch", bitsPerDim=bpd.mean().item(), stderr=(bpd.std() / math.sqrt(len(bpd))).item(),
                      images=seen, steps=steps, seconds=trained, formulation=f"{fast_mirrors.formulation(m)}, OpenBLAS on {blas_threads} thread(s)",
                      **describe())), flush=True)

#!/usr/bin/env python3
"""The PyTorch side of bench/suites/quality.ts for every family but the Gated PixelCNN (whose
channels-last mirror is gated_pixelcnn.py): the family's mirror from python/arpix_torch trained for
the same wall-clock budget as arpix, from arpix's initial weights, with arpix's hyper-parameters.

    python3 quality_train.py train --data DIR --threads 2 [--json]

DIR holds what quality.ts wrote: config.json ({model, train, minutes}), init.safetensors (arpix's
initial weights in PyTorch's layout), train.u8 and test.u8 (uint8 [N, H, W, C] images). The run
stops at `minutes` of training time (time spent in steps only, as arpix counts it) or at
train.steps when that is set, whichever comes first; then the test bits/dim of the weight average
(or the weights, without one) is printed as one JSON line.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from arpix_torch import build_model  # noqa: E402
from arpix_torch.io import read_safetensors  # noqa: E402
from arpix_torch.train_lib import EMA, make_optimizer, set_lr  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["train"])
ap.add_argument("--data", required=True)
ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
ap.add_argument("--json", action="store_true")
args = ap.parse_args()
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
model = build_model(m)
init, _ = read_safetensors(os.path.join(d, "init.safetensors"))
model.load_state_dict(init, strict=True)
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
                      images=seen, steps=steps, seconds=trained, threads=torch.get_num_threads(), torch=torch.__version__,
                      memoryFormat="n/a (" + m["kind"] + ")")), flush=True)

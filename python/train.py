#!/usr/bin/env python3
"""Trains an arpix model exported with `arpix export ... --torch DIR` in PyTorch, on one device or
many with DistributedDataParallel (torchrun), the way `arpix train` does:

* the same optimiser (Adam, AdamW or SGD with arpix's hyper-parameters), learning-rate schedule
  (warm-up, then constant, exponential or cosine), gradient clipping to train.gradClip, and weight
  average (decay train.ema with the min(decay, (1+n)/(10+n)) warm-up);
* the same batch: train.batchSize is the global batch of one optimiser step, split evenly across
  the ranks (DDP averages the ranks' gradients, so the step is the one of the whole batch); epochs
  of floor(N / batchSize) steps over a permutation shared by all ranks;
* seeds per rank: dropout and dynamic binarisation draw from train.seed·1000 + rank;
* checkpoints every train.checkpointEvery steps and at the end, by rank 0, written atomically in
  arpix's checkpoint format (PyTorch weight layout): `arpix import OUT/checkpoint.safetensors
  --out RUN` makes an arpix run of it (eval, sample, serve, train --resume);
* metrics.jsonl in arpix's format, so `arpix plot` draws the curves.

    python3 train.py [--out DIR] [--resume] [--steps N] [--device cpu|cuda] [--data DIR]
    torchrun --nproc_per_node=G train.py ...          (see README.md beside this file)
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from arpix_torch import build_model  # noqa: E402
from arpix_torch.train_lib import EMA, load_checkpoint, make_optimizer, save_checkpoint, set_lr, transform  # noqa: E402


def parse_args():
    ap = argparse.ArgumentParser(description="Train an exported arpix model with PyTorch (DDP under torchrun).")
    ap.add_argument("--out", default=os.path.join(HERE, "run"), help="folder for checkpoint.safetensors and metrics.jsonl (default: run/ beside this script)")
    ap.add_argument("--init", default=os.path.join(HERE, "checkpoint.safetensors"), help="the exported weights (and optimiser state, for a run) to start from")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors when it exists")
    ap.add_argument("--data", default=os.path.join(HERE, "data"), help="folder of the exported uint8 arrays (data.json, train.u8, ...)")
    ap.add_argument("--steps", type=int, default=None, help="override train.steps (total optimiser steps)")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--backend", choices=["auto", "gloo", "nccl"], default="auto", help="process-group backend (auto: nccl on GPUs, gloo on CPUs)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads per rank (0: PyTorch's default)")
    ap.add_argument("--validation-limit", type=int, default=0, help="evaluate on at most this many validation images at the end (0: all)")
    return ap.parse_args()


def load_split(data_dir, split, meta):
    info = meta["splits"].get(split)
    if info is None:
        return None, None
    n = info["n"]
    h, w, c = meta["height"], meta["width"], meta["channels"]
    images = torch.from_numpy(np.fromfile(os.path.join(data_dir, f"{split}.u8"), dtype=np.uint8).reshape(n, h, w, c).copy())
    labels = None
    if info.get("labels"):
        labels = torch.from_numpy(np.fromfile(os.path.join(data_dir, f"{split}-labels.u8"), dtype=np.uint8).astype(np.int64))
    return images, labels


def digest(model):
    h = hashlib.sha256()
    for _, p in sorted(model.state_dict().items()):
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main():
    args = parse_args()
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if world > 1:
        backend = args.backend if args.backend != "auto" else ("nccl" if use_cuda else "gloo")
        dist.init_process_group(backend=backend)

    cfg = json.load(open(os.path.join(HERE, "config.json")))
    m, d, t = cfg["model"], cfg["dataset"], cfg["train"]
    if args.steps is not None:
        t["steps"] = args.steps
    meta_data = json.load(open(os.path.join(args.data, "data.json")))
    train_x, train_y = load_split(args.data, "train", meta_data)
    val_x, val_y = load_split(args.data, "validation", meta_data)
    conditional = m.get("numClasses", 0) > 0

    model = build_model(m).to(device)
    opt = make_optimizer(model, t)
    ckpt_path = os.path.join(args.out, "checkpoint.safetensors")
    start = ckpt_path if args.resume and os.path.exists(ckpt_path) else args.init
    ema = EMA(model, t["ema"]) if t["ema"] > 0 else None
    meta = load_checkpoint(start, model, opt, ema)
    if ema is not None and not meta.get("ema"):
        ema = EMA(model, t["ema"])  # a fresh average starts at the loaded weights
    for st in opt.state.values():
        for k, v in st.items():
            if torch.is_tensor(v) and k != "step":
                st[k] = v.to(device)
    if ema is not None:
        ema.shadow = {k: v.to(device) for k, v in ema.shadow.items()}
    step = meta.get("step", 0)
    loader = meta.get("loader") or {"epoch": 0, "step": 0}
    train_seconds = meta.get("trainSeconds", 0.0)
    images_seen = meta.get("imagesSeen", 0)

    batch = t["batchSize"]
    if batch % world != 0:
        sys.exit(f"train.py: train.batchSize ({batch}) must be divisible by the number of ranks ({world}); it is the global batch of one step")
    local = batch // world
    n = train_x.shape[0]
    steps_per_epoch = n // batch
    bounds = [b for b in (t["steps"] if t["steps"] > 0 else None, t["epochs"] * steps_per_epoch if t["epochs"] > 0 else None) if b is not None]
    total = min(bounds) if bounds else None
    budget = t["minutes"] * 60 if t["minutes"] > 0 else math.inf
    dims = m["height"] * m["width"] * m["channels"]

    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None) if world > 1 else model
    torch.manual_seed(t["seed"] * 1000 + rank)  # dropout, per rank
    draws = torch.Generator().manual_seed(t["seed"] * 1000 + rank)  # dynamic binarisation, per rank

    def permutation(epoch):
        return torch.randperm(n, generator=torch.Generator().manual_seed(t["seed"] * 100003 + epoch))

    os.makedirs(args.out, exist_ok=True)
    metrics_path = os.path.join(args.out, "metrics.jsonl")
    if rank == 0:
        kept = []
        if os.path.exists(metrics_path):
            kept = [line for line in open(metrics_path) if line.strip() and json.loads(line)["step"] <= step]
        with open(metrics_path, "w") as f:
            f.writelines(kept)

    def log(record):
        if rank == 0:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")

    def checkpoint(extra=None):
        if rank == 0:
            save_checkpoint(ckpt_path, model, opt, ema, cfg, step, epoch, in_epoch, train_seconds, images_seen, extra)

    epoch, in_epoch = loader["epoch"], loader["step"]
    perm = permutation(epoch)
    window, rate = [], None
    done = lambda: (total is not None and step >= total) or train_seconds >= budget  # noqa: E731
    net.train()
    while not done():
        if in_epoch >= steps_per_epoch:
            epoch, in_epoch = epoch + 1, 0
            perm = permutation(epoch)
        t0 = time.perf_counter()
        idx = perm[in_epoch * batch + rank * local: in_epoch * batch + (rank + 1) * local]
        x = transform(train_x[idx], d, draws).to(device)
        y = train_y[idx].to(device) if conditional else None
        set_lr(opt, t, step)
        loss = -net(x, y).mean() / (dims * math.log(2))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t["gradClip"] if t["gradClip"] > 0 else math.inf)
        opt.step()
        if ema is not None:
            ema.update(model)
        step += 1
        in_epoch += 1
        images_seen += batch
        global_loss = loss.detach().clone()
        if world > 1:
            dist.all_reduce(global_loss)
            global_loss /= world
        dt = time.perf_counter() - t0
        train_seconds += dt
        rate = batch / dt if rate is None else 0.9 * rate + 0.1 * batch / dt
        window.append((global_loss.item(), norm.item()))
        if step % t["logEvery"] == 0:
            log({"type": "train", "step": step, "epoch": epoch, "loss": sum(a for a, _ in window) / len(window), "lr": opt.param_groups[0]["lr"],
                 "gradNorm": sum(b for _, b in window) / len(window), "imagesPerSec": rate, "seconds": train_seconds, "ranks": world})
            window = []
        if t["checkpointEvery"] > 0 and step % t["checkpointEvery"] == 0 and not done():
            checkpoint()

    # The ranks must hold the same weights: DDP's all-reduce keeps them in step.
    mine = digest(model)
    digests = [mine]
    if world > 1:
        digests = [None] * world
        dist.all_gather_object(digests, mine)
    net.eval()
    check = None
    if rank == 0 and val_x is not None:
        with torch.no_grad():
            # The loss arpix must reproduce from the imported checkpoint: the first batch of the
            # validation split, deterministic transform, the trained (not averaged) weights.
            k = min(batch, val_x.shape[0])
            xs = transform(val_x[:k], {**d, "binarize": "fixed" if d.get("binarize") == "dynamic" else d.get("binarize", "none")}).to(device)
            ys = val_y[:k].to(device) if conditional else None
            check = {"images": k, "loss": (-model(xs, ys).mean() / (dims * math.log(2))).item()}
            limit = val_x.shape[0] if args.validation_limit <= 0 else min(args.validation_limit, val_x.shape[0])
            backup = None
            if ema is not None:
                backup = {k2: p.detach().clone() for k2, p in model.named_parameters()}
                for k2, p in model.named_parameters():
                    p.copy_(ema.shadow[k2])
            nll = []
            for i in range(0, limit, 100):
                xv = transform(val_x[i:min(i + 100, limit)], {**d, "binarize": "fixed" if d.get("binarize") == "dynamic" else d.get("binarize", "none")}).to(device)
                yv = val_y[i:min(i + 100, limit)].to(device) if conditional else None
                nll.append(-model(xv, yv).double().cpu() / (dims * math.log(2)))
            if backup is not None:
                for k2, p in model.named_parameters():
                    p.copy_(backup[k2])
            nll = torch.cat(nll)
            log({"type": "validation", "step": step, "epoch": epoch, "bitsPerDim": nll.mean().item(),
                 "stderr": (nll.std() / math.sqrt(len(nll))).item() if len(nll) > 1 else 0.0, "ema": ema is not None, "seconds": train_seconds})
    checkpoint({"torch": {"worldSize": world, "rankDigests": digests, "check": check, "version": torch.__version__}})
    if rank == 0:
        print(json.dumps({"type": "done", "step": step, "ranks": world, "rankDigests": digests, "check": check, "checkpoint": ckpt_path}), flush=True)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()

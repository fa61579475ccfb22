#!/usr/bin/env python3
"""Trains an arpix model exported with `arpix export ... --torch DIR` in PyTorch, on one device or
many with DistributedDataParallel (torchrun), the way `arpix train` does:

* the same optimiser (Adam, AdamW, SGD or RMSprop with arpix's hyper-parameters), learning-rate
  schedule (warm-up, then constant, exponential or cosine), gradient clipping to train.gradClip,
  and weight average (decay train.ema with the min(decay, (1+n)/(10+n)) warm-up);
* the same batch: train.batchSize is the global batch of one optimiser step, split evenly across
  the ranks (DDP averages the ranks' gradients, so the step is the one of the whole batch); epochs
  of floor(N / batchSize) steps over a permutation shared by all ranks;
* seeds per rank: dropout and dynamic binarisation draw from train.seed·1000 + rank;
* checkpoints every train.checkpointEvery steps and at the end, by rank 0, written atomically in
  arpix's checkpoint format (PyTorch weight layout) with its SHA-256 sums: `arpix import
  OUT/checkpoint.safetensors --out RUN` makes an arpix run of it (eval, sample, serve, train --resume);
* metrics.jsonl in arpix's format, so `arpix plot` draws the curves;
* the same care: config.json, data/ and the checkpoint are checked before anything is written (the
  checkpoint's SHA-256 sums, every value finite, every tensor fitting the model), a bad input ends
  in one line and exit 1; a non-finite loss, gradient or weight stops the run with exit 3 and
  writes no checkpoint of it (the last good one stays).

    python3 train.py [--out DIR] [--resume | --force] [--steps N] [--device cpu|cuda] [--data DIR]
    torchrun --nproc_per_node=G train.py ...          (see README.md beside this file)

Exit codes: 0 done, 1 a bad input or a failure, 2 bad usage, 3 training diverged, 130 interrupted.
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import sys
import threading
import time
import types
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from arpix_torch import FAMILIES, build_model  # noqa: E402
from arpix_torch.io import FormatError, read_regular_file, strict_json, write_atomic  # noqa: E402
from arpix_torch.train_lib import EMA, OPTIMIZERS, check_model_config, js_number, lr_factor, make_optimizer, read_checkpoint, restore, save_checkpoint, set_lr, transform  # noqa: E402

# DDP's reducer warns, once per run, when a parameter with a dimension of size 1 (a 1×3 kernel) has
# gradient strides that differ from its bucket's only along that dimension: the same layout in memory,
# "not an error", as the warning itself says.
warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")

#: Seconds a rank waits for the process group to shut down before it exits without it. Every file
#: has been written by then; gloo's teardown was once seen to hang on a loaded machine.
LEAVE_TIMEOUT_S = 60


class Stop(Exception):
    """Ends the run with one line on stderr and an exit code (1 a bad input, 3 diverged)."""

    def __init__(self, message, code=1, quiet=False):
        super().__init__(message)
        self.code, self.quiet = code, quiet


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Train an exported arpix model with PyTorch (DDP under torchrun).")
    ap.add_argument("--out", default=os.path.join(HERE, "run"), help="folder for checkpoint.safetensors and metrics.jsonl (default: run/ beside this script)")
    ap.add_argument("--init", default=os.path.join(HERE, "checkpoint.safetensors"), help="the exported weights (and optimiser state, for a run) to start from")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors when it exists")
    ap.add_argument("--force", action="store_true", help="start again from --init even though OUT already holds a run (its checkpoint and metrics are replaced)")
    ap.add_argument("--allow-unverified", action="store_true", help="train on a checkpoint that records no SHA-256 sums (damage to it cannot be detected)")
    ap.add_argument("--data", default=os.path.join(HERE, "data"), help="folder of the exported uint8 arrays (data.json, train.u8, ...)")
    ap.add_argument("--steps", type=int, default=None, help="override train.steps (total optimiser steps)")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--backend", choices=["auto", "gloo", "nccl"], default="auto", help="process-group backend (auto: nccl on GPUs, gloo on CPUs)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds a rank waits for the others in one collective before it fails (default 1800)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads per rank (0: PyTorch's default)")
    ap.add_argument("--validation-limit", type=int, default=0, help="evaluate on at most this many validation images at the end (0: all)")
    args = ap.parse_args(argv)
    if args.resume and args.force:
        ap.error("give --resume or --force, not both")
    if not args.timeout > 0:
        ap.error("--timeout must be a positive number of seconds")
    return args


# ---- inputs: config.json, data/ ---------------------------------------------------------------


def read_json(path, what):
    raw = read_regular_file(path, what)
    try:
        return strict_json(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise FormatError(path, f"is not UTF-8 text (byte {e.start}); give {what}") from None
    except (ValueError, RecursionError) as e:
        raise FormatError(path, f"is not valid JSON ({e}); give {what}") from None


def _is_int(v, lo=0, hi=2 ** 53):
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_config(path, cfg):
    """The fields train.py uses, with arpix's ranges (src/train/config.ts checkTrain)."""
    def need(ok, key, expected, value=None):
        if not ok:
            raise FormatError(path, f"{key} must be {expected}, got {json.dumps(value)}; fix config.json or export again")
    need(isinstance(cfg, dict) and all(isinstance(cfg.get(s), dict) for s in ("model", "dataset", "train")), "the config", "an object with model, dataset and train sections", None)
    m, d, t = cfg["model"], cfg["dataset"], cfg["train"]
    need(isinstance(m.get("kind"), str) and m["kind"] in FAMILIES, "model.kind", f"one of {', '.join(sorted(FAMILIES))}", m.get("kind"))
    for k in ("height", "width", "channels"):
        need(_is_int(m.get(k), 1, 65536), f"model.{k}", "a positive integer", m.get(k))
    need(_is_int(m.get("numClasses", 0), 0, 256), "model.numClasses", "an integer in 0..256", m.get("numClasses"))
    need(_is_int(d.get("bits", 8), 1, 8), "dataset.bits", "an integer in 1..8", d.get("bits"))
    need(d.get("binarize", "none") in ("none", "fixed", "dynamic"), "dataset.binarize", "none, fixed or dynamic", d.get("binarize"))
    need(isinstance(t.get("optimizer"), str) and t["optimizer"] in OPTIMIZERS, "train.optimizer", ", ".join(OPTIMIZERS), t.get("optimizer"))
    need(_is_int(t.get("batchSize"), 1), "train.batchSize", "a positive integer", t.get("batchSize"))
    need(_is_num(t.get("lr")) and t["lr"] > 0, "train.lr", "a positive number", t.get("lr"))
    for k in ("eps", "weightDecay", "momentum", "gradClip", "minutes"):
        need(_is_num(t.get(k)) and t[k] >= 0, f"train.{k}", "a number >= 0", t.get(k))
    for k in ("ema", "alpha"):
        need(_is_num(t.get(k)) and 0 <= t[k] < 1, f"train.{k}", "a number in [0, 1)", t.get(k))
    b = t.get("betas")
    need(isinstance(b, list) and len(b) == 2 and all(_is_num(x) and 0 <= x < 1 for x in b), "train.betas", "two numbers in [0, 1)", b)
    for k in ("steps", "epochs", "checkpointEvery", "seed"):
        need(_is_int(t.get(k)), f"train.{k}", "an integer >= 0", t.get(k))
    need(_is_int(t.get("logEvery"), 1), "train.logEvery", "a positive integer", t.get("logEvery"))
    s = t.get("schedule")
    need(isinstance(s, dict) and s.get("decay") in ("constant", "exponential", "cosine", "noam"), "train.schedule.decay", "constant, exponential, cosine or noam", (s or {}).get("decay") if isinstance(s, dict) else s)
    need(_is_int(s.get("warmup")), "train.schedule.warmup", "an integer >= 0", s.get("warmup"))
    need(_is_num(s.get("gamma")) and 0 < s["gamma"] <= 1, "train.schedule.gamma", "a number in (0, 1]", s.get("gamma"))
    need(_is_num(s.get("minFactor")), "train.schedule.minFactor", "a number", s.get("minFactor"))
    need(t["steps"] > 0 or t["epochs"] > 0 or t["minutes"] > 0, "train.steps, train.epochs or train.minutes", "set: the run has no stopping point", 0)
    need(s["decay"] != "noam" or s["warmup"] >= 1, "train.schedule.warmup", ">= 1 with decay 'noam'", s["warmup"])
    need(s["decay"] != "cosine" or t["steps"] > s["warmup"], "train.steps", f"greater than the warm-up ({s['warmup']}) with decay 'cosine'", t["steps"])


def load_split(data_dir, split, info, meta, m):
    """(images uint8 [N, H, W, C], labels int64 [N] or None) of one split, sizes and labels checked."""
    where = os.path.join(data_dir, "data.json")
    if not (isinstance(info, dict) and _is_int(info.get("n"), 1) and isinstance(info.get("labels", False), bool)):
        raise FormatError(where, f"splits.{split} must be {{\"n\": a positive integer, \"labels\": true or false}}")
    n = info["n"]
    h, w, c = meta["height"], meta["width"], meta["channels"]
    path = os.path.join(data_dir, f"{split}.u8")
    raw = read_regular_file(path, f"the {split} images of an export's data/")
    if len(raw) != n * h * w * c:
        raise FormatError(path, f"has {len(raw)} bytes, but data.json declares {n} images of {h}×{w}×{c} = {n * h * w * c} bytes; the file is damaged or truncated: export again")
    images = torch.from_numpy(np.frombuffer(raw, dtype=np.uint8).reshape(n, h, w, c).copy())
    labels = None
    if info.get("labels"):
        lpath = os.path.join(data_dir, f"{split}-labels.u8")
        lraw = read_regular_file(lpath, f"the {split} labels of an export's data/")
        if len(lraw) != n:
            raise FormatError(lpath, f"has {len(lraw)} bytes, but data.json declares {n} labels; the file is damaged or truncated: export again")
        labels = torch.from_numpy(np.frombuffer(lraw, dtype=np.uint8).astype(np.int64))
        if m.get("numClasses", 0) > 0 and int(labels.max()) >= m["numClasses"]:
            raise FormatError(lpath, f"holds label {int(labels.max())}, but the model has {m['numClasses']} classes")
    elif m.get("numClasses", 0) > 0:
        raise FormatError(where, f"splits.{split} has no labels, but the model is conditioned on {m['numClasses']} classes")
    return images, labels


def load_data(data_dir, cfg, config_path):
    """The train and (when exported) validation splits of an export's data/, checked against the model."""
    where = os.path.join(data_dir, "data.json")
    if not os.path.exists(where):
        raise FormatError(data_dir, "holds no data.json; the export was written with --no-data, or this is not an export's data/ folder: give --data DIR of an export that has it")
    meta = read_json(where, "the data.json of an export's data/")
    m = cfg["model"]
    if not (isinstance(meta, dict) and isinstance(meta.get("splits"), dict) and "train" in meta["splits"]):
        raise FormatError(where, "must be an object whose splits hold train (export again)")
    for k in ("height", "width", "channels"):
        if meta.get(k) != m[k]:
            raise FormatError(where, f"describes images with {k} {json.dumps(meta.get(k))}, but config.json's model has {m[k]}")
    train_x, train_y = load_split(data_dir, "train", meta["splits"]["train"], meta, m)
    val_x, val_y = None, None
    if "validation" in meta["splits"]:
        val_x, val_y = load_split(data_dir, "validation", meta["splits"]["validation"], meta, m)
    batch = cfg["train"]["batchSize"]
    if train_x.shape[0] < batch:
        raise FormatError(config_path, f"train.batchSize ({batch}) is more than the {train_x.shape[0]} images of {os.path.join(data_dir, 'train.u8')}: one step needs a whole batch")
    return train_x, train_y, val_x, val_y


def kept_metrics(path, step):
    """The lines of an earlier metrics.jsonl up to `step` (a resumed run continues them)."""
    if not os.path.exists(path):
        return []
    lines = read_regular_file(path, "a metrics.jsonl").decode("utf-8", "replace").splitlines(keepends=True)
    kept = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = strict_json(line)
        except (ValueError, RecursionError):
            record = None
        if not (isinstance(record, dict) and _is_int(record.get("step"))):
            raise FormatError(path, f"line {i} is not a metrics record (a JSON object with a step); move the file away to start its metrics afresh")
        if record["step"] <= step:
            kept.append(line if line.endswith("\n") else line + "\n")
    return kept


def digest(model):
    h = hashlib.sha256()
    for _, p in sorted(model.state_dict().items()):
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# ---- the process group ------------------------------------------------------------------------


def leave_group(rank, code):
    """Destroys the process group, bounded: a rank whose teardown has not finished after
    LEAVE_TIMEOUT_S exits without it. There is no final barrier: the last collective is the
    gathering of the ranks' weight digests; after it rank 0 validates and writes the checkpoint and
    the others have nothing left to wait for (torchrun waits for every rank)."""
    if not dist.is_available() or not dist.is_initialized():
        return

    def give_up():
        sys.stdout.flush()
        sys.stderr.write(f"train.py: rank {rank}: the process group did not shut down within {LEAVE_TIMEOUT_S} s; exiting without it\n")
        sys.stderr.flush()
        os._exit(code)
    timer = threading.Timer(LEAVE_TIMEOUT_S, give_up)
    timer.daemon = True
    timer.start()
    try:
        dist.destroy_process_group()
    finally:
        timer.cancel()


# ---- the run ------------------------------------------------------------------------------------


def prepare(args, world, device, config_path=os.path.join(HERE, "config.json")):
    """Reads and checks every input — config.json, data/, the checkpoint to start from, --out —
    and builds the model, optimiser and average from them. Nothing is written and no rank is
    joined before this has passed; a bad input raises FormatError or Stop (one line)."""
    cfg = read_json(config_path, "the config.json of an arpix export")
    if args.steps is not None and isinstance(cfg, dict) and isinstance(cfg.get("train"), dict):
        cfg["train"]["steps"] = args.steps
    check_config(config_path, cfg)
    m, t = cfg["model"], cfg["train"]
    if t["batchSize"] % world != 0:
        raise Stop(f"train.batchSize ({t['batchSize']}) must be divisible by the number of ranks ({world}); it is the global batch of one step")
    ckpt_path = os.path.join(args.out, "checkpoint.safetensors")
    if os.path.exists(ckpt_path) and not (args.resume or args.force):
        raise Stop(f"{args.out} already holds a run ({ckpt_path}); continue it with --resume, or pass --force to start again over it")
    start = ckpt_path if args.resume and os.path.exists(ckpt_path) else args.init
    meta, tensors = read_checkpoint(start, args.allow_unverified)
    # The model section must be the one arpix checked and signed into the checkpoint: only then is
    # a network built from it.
    check_model_config(start, meta, cfg, config_path)
    data = load_data(args.data, cfg, config_path)
    try:
        model = build_model(m).to(device)
    except (KeyError, TypeError, ValueError, IndexError, OverflowError, ZeroDivisionError, RuntimeError) as e:
        first = (str(e).strip().splitlines() or [""])[0]
        raise FormatError(config_path, f"its model section cannot be built ({type(e).__name__}: {first}); export again") from None
    opt = make_optimizer(model, t)
    ema = EMA(model, t["ema"]) if t["ema"] > 0 else None
    restore(start, meta, tensors, model, opt, ema, cfg)
    if ema is not None and not meta.get("ema"):
        ema = EMA(model, t["ema"])  # a fresh average starts at the loaded weights
    for st in opt.state.values():
        for k, v in st.items():
            if torch.is_tensor(v) and k != "step":
                st[k] = v.to(device)
    if ema is not None:
        ema.shadow = {k: v.to(device) for k, v in ema.shadow.items()}
    metrics_path = os.path.join(args.out, "metrics.jsonl")
    kept = kept_metrics(metrics_path, meta["step"]) if args.resume else []
    return types.SimpleNamespace(cfg=cfg, data=data, model=model, opt=opt, ema=ema, meta=meta, ckpt_path=ckpt_path, start=start, metrics_path=metrics_path, kept=kept)


def main(args, rank, world, local_rank):
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if args.device == "cuda" and not torch.cuda.is_available():
        raise Stop("--device cuda, but PyTorch sees no CUDA device here; use --device cpu")
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    ready = prepare(args, world, device)
    cfg, model, opt, ema, meta = ready.cfg, ready.model, ready.opt, ready.ema, ready.meta
    train_x, train_y, val_x, val_y = ready.data
    m, d, t = cfg["model"], cfg["dataset"], cfg["train"]
    batch = t["batchSize"]
    conditional = m.get("numClasses", 0) > 0
    ckpt_path, metrics_path = ready.ckpt_path, ready.metrics_path
    step = meta["step"]
    loader = meta.get("loader") or {"epoch": 0, "step": 0}
    train_seconds = meta["trainSeconds"]
    images_seen = meta["imagesSeen"]
    last_checkpoint = ready.start if ready.start == ckpt_path else None

    local = batch // world
    n = train_x.shape[0]
    steps_per_epoch = n // batch
    bounds = [b for b in (t["steps"] if t["steps"] > 0 else None, t["epochs"] * steps_per_epoch if t["epochs"] > 0 else None) if b is not None]
    total = min(bounds) if bounds else None
    budget = t["minutes"] * 60 if t["minutes"] > 0 else math.inf
    dims = getattr(model, "loss_dims", m["height"] * m["width"] * m["channels"])  # bits per value, or per token (a palette head)

    if world > 1:
        backend = args.backend if args.backend != "auto" else ("nccl" if use_cuda else "gloo")
        # A collective that waits longer than --timeout fails (gloo, and NCCL with its error
        # handling) instead of holding the rank forever when another rank has died.
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=args.timeout))
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None) if world > 1 else model
    # Seeds modulo 2^63: torch takes 64-bit seeds, arpix allows train.seed up to 2^53.
    torch.manual_seed((t["seed"] * 1000 + rank) % 2 ** 63)  # dropout, per rank
    draws = torch.Generator().manual_seed((t["seed"] * 1000 + rank) % 2 ** 63)  # dynamic binarisation, per rank

    def permutation(epoch):
        return torch.randperm(n, generator=torch.Generator().manual_seed((t["seed"] * 100003 + epoch) % 2 ** 63))

    os.makedirs(args.out, exist_ok=True)
    if rank == 0:
        write_atomic(metrics_path, "".join(ready.kept))

    def log(record):
        if rank == 0:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(record, allow_nan=False) + "\n")

    def diverged(what):
        where = f"the last good checkpoint is {last_checkpoint}" if last_checkpoint else f"no checkpoint had been written in {args.out} yet"
        return Stop(f"training diverged {what}; {where}; start again with a lower train.lr in config.json or with train.gradClip=1", code=3, quiet=rank != 0)

    def checkpoint(extra=None):
        # Every rank holds the same weights, so every rank finds the same non-finite value.
        nonlocal last_checkpoint
        bad = save_checkpoint(ckpt_path, model, opt, ema, cfg, step, epoch, in_epoch, train_seconds, images_seen, extra, write=rank == 0)
        if bad is not None:
            raise diverged(f"by step {step}: {bad}, so no checkpoint was written")
        last_checkpoint = ckpt_path

    epoch, in_epoch = loader["epoch"], loader["step"]
    perm = permutation(epoch)
    window, rate = [], None
    done = lambda: (total is not None and step >= total) or train_seconds >= budget  # noqa: E731
    net.train()
    synced = time.perf_counter()
    while not done():
        if in_epoch >= steps_per_epoch:
            epoch, in_epoch = epoch + 1, 0
            perm = permutation(epoch)
        idx = perm[in_epoch * batch + rank * local: in_epoch * batch + (rank + 1) * local]
        x = transform(train_x[idx], d, draws).to(device)
        y = train_y[idx].to(device) if conditional else None
        set_lr(opt, t, step)
        loss = -net(x, y).mean() / (dims * math.log(2))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), t["gradClip"] if t["gradClip"] > 0 else math.inf))
        # The batch's loss and the step's time, averaged over the ranks: every rank then decides
        # alike whether the run diverged or its time budget is spent (else one would wait forever).
        shared = torch.tensor([loss.item(), time.perf_counter() - synced], dtype=torch.float64, device=device)
        if world > 1:
            dist.all_reduce(shared)
            shared /= world
        loss_value, dt = shared.tolist()
        synced = time.perf_counter()
        if not (math.isfinite(loss_value) and math.isfinite(norm)):
            # Nothing of this step is applied: the weights and the last checkpoint stay good.
            opt.zero_grad(set_to_none=True)
            raise diverged(f"at step {step + 1}: the loss is {js_number(loss_value)} and the gradient norm {js_number(norm)}")
        opt.step()
        if ema is not None:
            ema.update(model)
        step += 1
        in_epoch += 1
        images_seen += batch
        train_seconds += dt
        rate = batch / dt if rate is None else 0.9 * rate + 0.1 * batch / dt
        window.append((loss_value, norm))
        if step % t["logEvery"] == 0:
            log({"type": "train", "step": step, "epoch": epoch, "loss": sum(a for a, _ in window) / len(window), "lr": t["lr"] * lr_factor(t, step),  # the next step's, as arpix logs it
                 "gradNorm": sum(b for _, b in window) / len(window), "imagesPerSec": rate, "seconds": train_seconds, "ranks": world})
            window = []
        if t["checkpointEvery"] > 0 and step % t["checkpointEvery"] == 0 and not done():
            checkpoint()

    # The ranks must hold the same weights: DDP's all-reduce keeps them in step. This is the last
    # collective; no rank waits for another after it.
    mine = digest(model)
    digests = [mine]
    if world > 1:
        digests = [None] * world
        dist.all_gather_object(digests, mine)
    net.eval()
    check = None
    if rank == 0 and val_x is not None:
        check = validate(model, ema, val_x, val_y, d, batch, dims, conditional, device, args.validation_limit)
        if not (math.isfinite(check["loss"]) and math.isfinite(check["bitsPerDim"])):
            raise diverged(f"by step {step}: the validation loss of the trained weights is {js_number(check['loss'])} and the bits/dim {js_number(check['bitsPerDim'])}, so no checkpoint was written")
        log({"type": "validation", "step": step, "epoch": epoch, "bitsPerDim": check.pop("bitsPerDim"), "stderr": check.pop("stderr"), "ema": ema is not None, "seconds": train_seconds})
    checkpoint({"torch": {"worldSize": world, "rankDigests": digests, "check": check, "version": torch.__version__}})
    if rank == 0:
        print(json.dumps({"type": "done", "step": step, "ranks": world, "rankDigests": digests, "check": check, "checkpoint": ckpt_path}), flush=True)
    return 0


def validate(model, ema, val_x, val_y, d, batch, dims, conditional, device, limit):
    """The loss arpix must reproduce from the imported checkpoint (the first batch of the validation
    split, deterministic transform, the trained weights) and the split's bits/dim (averaged weights)."""
    fixed = {**d, "binarize": "fixed" if d.get("binarize") == "dynamic" else d.get("binarize", "none")}
    with torch.no_grad():
        k = min(batch, val_x.shape[0])
        xs = transform(val_x[:k], fixed).to(device)
        ys = val_y[:k].to(device) if conditional else None
        check = {"images": k, "loss": (-model(xs, ys).mean() / (dims * math.log(2))).item()}
        limit = val_x.shape[0] if limit <= 0 else min(limit, val_x.shape[0])
        backup = None
        if ema is not None:
            backup = {k2: p.detach().clone() for k2, p in model.named_parameters()}
            for k2, p in model.named_parameters():
                p.copy_(ema.shadow[k2])
        nll = []
        for i in range(0, limit, 100):
            xv = transform(val_x[i:min(i + 100, limit)], fixed).to(device)
            yv = val_y[i:min(i + 100, limit)].to(device) if conditional else None
            nll.append(-model(xv, yv).double().cpu() / (dims * math.log(2)))
        if backup is not None:
            for k2, p in model.named_parameters():
                p.copy_(backup[k2])
        nll = torch.cat(nll)
        check["bitsPerDim"] = nll.mean().item()
        check["stderr"] = (nll.std() / math.sqrt(len(nll))).item() if len(nll) > 1 else 0.0
    return check


def run():
    """main() with every ending turned into one line and an exit code (no traceback)."""
    args = parse_args()
    try:
        rank = int(os.environ.get("RANK", "0"))
        world = int(os.environ.get("WORLD_SIZE", "1"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        print("train.py: RANK, WORLD_SIZE and LOCAL_RANK must be integers (torchrun sets them)", file=sys.stderr)
        return 2
    who = f"train.py: rank {rank}:" if world > 1 else "train.py:"
    code = 1
    try:
        code = main(args, rank, world, local_rank)
    except Stop as e:
        code = e.code
        if not e.quiet:
            print(f"{who} {e}", file=sys.stderr)
    except FormatError as e:
        print(f"{who} {e}", file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
        print(f"{who} interrupted; checkpoints are replaced whole, so the last one written (if any) is intact: --resume continues from it", file=sys.stderr)
    except OSError as e:
        print(f"{who} {e.filename + ': ' if e.filename else ''}{e.strerror or e}", file=sys.stderr)
    except Exception as e:  # noqa: BLE001 — the last resort: one line, not a traceback
        first = (str(e).strip().splitlines() or [""])[0]
        print(f"{who} internal error: {type(e).__name__}: {first} (please report it with the command that caused it)", file=sys.stderr)
    finally:
        sys.stdout.flush()
        leave_group(rank, code)
    return code


if __name__ == "__main__":
    sys.exit(run())

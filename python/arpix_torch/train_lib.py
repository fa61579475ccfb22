"""What `arpix train` does, in PyTorch: the optimiser, the learning-rate schedule, the weight
average, the pixel transform, and arpix's checkpoint format (src/io/checkpoint.ts), so a run can
move between arpix and PyTorch in either direction and continue.

A checkpoint written here is arpix's: one safetensors file with `model.<name>`,
`optimizer.<param index>.<buffer>` and `ema.<name>` tensors and the `arpix` JSON metadata (config,
step, loader position, optimiser/scheduler/average state), with one difference said in it:
`"layout": "pytorch"` — convolution weights (and their moments) are in PyTorch's [Cout, Cin, kH,
kW]. `arpix import` turns it into an arpix run.
"""

import json
import math
import time

import torch

from .io import read_safetensors, write_safetensors

OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}
BUFFERS = {"adam": ["exp_avg", "exp_avg_sq"], "adamw": ["exp_avg", "exp_avg_sq"], "sgd": ["momentum_buffer"]}


def make_optimizer(model, t):
    """torch.optim's Adam, AdamW or SGD with arpix's hyper-parameters (arpix uses their formulas)."""
    params = list(model.parameters())
    if t["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=t["lr"], betas=tuple(t["betas"]), eps=t["eps"], weight_decay=t["weightDecay"])
    if t["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=t["lr"], betas=tuple(t["betas"]), eps=t["eps"], weight_decay=t["weightDecay"])
    return torch.optim.SGD(params, lr=t["lr"], momentum=t["momentum"], weight_decay=t["weightDecay"])


def lr_factor(t, step):
    """arpix's schedule (src/train/train.ts makeSchedule): linear warm-up, then constant,
    exponential (gamma per step) or cosine (to minFactor at train.steps)."""
    s = t["schedule"]
    w = s["warmup"]
    if w > 0 and step < w:
        return (step + 1) / w
    k = step - w if w > 0 else step
    if s["decay"] == "exponential":
        return s["gamma"] ** k
    if s["decay"] == "cosine":
        n = t["steps"] - w
        x = min(max(k, 0), n) / n
        return s["minFactor"] + (1 - s["minFactor"]) * 0.5 * (1 + math.cos(math.pi * x))
    return 1.0


def set_lr(opt, t, step):
    for g in opt.param_groups:
        g["lr"] = t["lr"] * lr_factor(t, step)


class EMA:
    """shadow = d·shadow + (1 − d)·param, d = min(decay, (1 + n) / (10 + n)) after n updates."""

    def __init__(self, model, decay):
        self.decay = decay
        self.updates = 0
        self.shadow = {k: p.detach().clone() for k, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model):
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, p in model.named_parameters():
            self.shadow[k].mul_(d).add_(p.detach(), alpha=1 - d)
        self.updates += 1


def transform(images, dataset_cfg, generator=None):
    """uint8 [B, H, W, C] -> the integer levels the model sees (src/train/data.ts transformFor):
    dynamic binarisation draws Bernoulli(v/255) from `generator`; fixed thresholds at 128."""
    b = dataset_cfg.get("binarize", "none")
    x = images.long()
    if b == "dynamic":
        return (torch.rand(images.shape, generator=generator) < images.double() / 255).long()
    if b == "fixed":
        return (x >= 128).long()
    bits = dataset_cfg.get("bits", 8)
    return x >> (8 - bits) if bits < 8 else x


# ---- checkpoints ------------------------------------------------------------------------------


def save_checkpoint(path, model, opt, ema, run_config, step, epoch, loader_step, train_seconds, images_seen, extra=None, arpix_version="0.1.0"):
    """Writes an arpix checkpoint (PyTorch layout) of the model, optimiser and average."""
    t = run_config["train"]
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    names = [k for k, _ in model.named_parameters()]
    steps = {}
    for i, p in enumerate(model.parameters()):
        st = opt.state.get(p)
        if not st:
            continue
        steps[str(i)] = int(st["step"].item() if torch.is_tensor(st["step"]) else st["step"]) if "step" in st else step
        for b in BUFFERS[t["optimizer"]]:
            if b in st and st[b] is not None:
                tensors[f"optimizer.{i}.{b}"] = st[b].detach().contiguous()
    if ema is not None:
        for k in names:
            tensors[f"ema.{k}"] = ema.shadow[k].contiguous()
    hyper = {"lr": opt.param_groups[0]["lr"], "initialLr": t["lr"], "weightDecay": t["weightDecay"]}
    if t["optimizer"] == "sgd":
        hyper.update({"momentum": t["momentum"], "dampening": 0, "nesterov": False})
    else:
        hyper.update({"betas": list(t["betas"]), "eps": t["eps"]})
    meta = {
        "format": "arpix-checkpoint", "version": 1, "arpixVersion": arpix_version, "layout": "pytorch",
        "modelKind": run_config["model"]["kind"], "config": run_config,
        "step": step, "epoch": epoch, "loader": {"epoch": epoch, "step": loader_step},
        "generators": {}, "optimizer": {"kind": OPTIMIZERS[t["optimizer"]], "groups": [{**hyper, "params": list(range(len(names)))}], "steps": steps},
        "scheduler": {"stepCount": step},
        "ema": {"decay": ema.decay, "warmup": True, "updates": ema.updates} if ema is not None else None,
        "trainSeconds": train_seconds, "imagesSeen": images_seen, "extra": {"validation": None, **(extra or {})},
    }
    write_safetensors(path, tensors, {"arpix": json.dumps(meta)})


def load_checkpoint(path, model, opt=None, ema=None):
    """Restores what save_checkpoint (or `arpix export` of a run) wrote; returns the metadata."""
    tensors, raw = read_safetensors(path)
    meta = json.loads(raw["arpix"]) if "arpix" in raw else {}
    if meta and meta.get("layout", "pytorch") != "pytorch":
        raise ValueError(f"{path} is an arpix checkpoint in arpix's layout; export it with `arpix export RUN_DIR --torch OUT` first")
    dtype = next(model.parameters()).dtype
    model.load_state_dict({k[6:]: v.to(dtype) for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    params = list(model.parameters())
    if opt is not None and meta.get("optimizer"):
        t = meta["config"]["train"]
        for key, n in meta["optimizer"]["steps"].items():
            p = params[int(key)]
            st = {"step": torch.tensor(float(n))}
            for b in BUFFERS[t["optimizer"]]:
                if f"optimizer.{key}.{b}" in tensors:
                    st[b] = tensors[f"optimizer.{key}.{b}"].to(dtype).clone()
            opt.state[p] = st
    if ema is not None and meta.get("ema"):
        ema.updates = meta["ema"]["updates"]
        for k in ema.shadow:
            ema.shadow[k] = tensors[f"ema.{k}"].to(dtype).clone()
    return meta


class Clock:
    def __init__(self, start=0.0):
        self.total = start
        self._t = None

    def __enter__(self):
        self._t = time.perf_counter()

    def __exit__(self, *exc):
        self.total += time.perf_counter() - self._t

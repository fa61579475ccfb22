"""What `arpix train` does, in PyTorch: the optimiser, the learning-rate schedule, the weight
average, the pixel transform, and arpix's checkpoint format (src/io/checkpoint.ts), so a run can
move between arpix and PyTorch in either direction and continue.

A checkpoint written here is arpix's: one safetensors file with `model.<name>`,
`optimizer.<param index>.<buffer>` and `ema.<name>` tensors, the `arpix` JSON metadata (config,
step, loader position, optimiser/scheduler/average state) and, under `arpix.sha256`, the SHA-256
of the tensors and of that JSON, with one difference said in it: `"layout": "pytorch"` —
convolution weights (and their moments) are in PyTorch's [Cout, Cin, kH, kW]. `arpix import` turns
it into an arpix run (and checks the sums).

A checkpoint read here is checked as arpix's readers check one before anything is trained on it:
the sums, the metadata's fields, every tensor's name, shape and dtype against the model and
optimiser config.json builds, and every value's finiteness. A problem is a FormatError: one line
naming the file and what is wrong.
"""

import json
import math
import time

import torch

from .io import FormatError, decode_entry, meta_sum, parse_header, read_regular_file, strict_json, tensor_sum, write_safetensors

OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSProp"}
META_KEY = "arpix"
SUM_KEY = "arpix.sha256"
PREFIXES = ("model", "optimizer", "ema")
#: The fields of the `arpix` metadata (src/io/checkpoint.ts checkpointMetaSchema); no other is allowed.
META_FIELDS = {"format", "version", "arpixVersion", "modelKind", "config", "layout", "step", "epoch", "loader", "generators", "optimizer",
               "scheduler", "ema", "trainSeconds", "imagesSeen", "extra"}


def buffer_names(t):
    """The moment buffers arpix's optimiser keeps per parameter (src/optim/*.ts bufferNames)."""
    if t["optimizer"] in ("adam", "adamw"):
        return ["exp_avg", "exp_avg_sq"]
    if t["optimizer"] == "rmsprop":
        return ["square_avg", "momentum_buffer"] if t["momentum"] != 0 else ["square_avg"]
    return ["momentum_buffer"] if t["momentum"] != 0 else []


def make_optimizer(model, t):
    """torch.optim's Adam, AdamW, SGD or RMSprop with arpix's hyper-parameters (arpix uses their formulas)."""
    params = list(model.parameters())
    if t["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=t["lr"], betas=tuple(t["betas"]), eps=t["eps"], weight_decay=t["weightDecay"])
    if t["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=t["lr"], betas=tuple(t["betas"]), eps=t["eps"], weight_decay=t["weightDecay"])
    if t["optimizer"] == "rmsprop":
        return torch.optim.RMSprop(params, lr=t["lr"], alpha=t["alpha"], eps=t["eps"], momentum=t["momentum"], weight_decay=t["weightDecay"])
    return torch.optim.SGD(params, lr=t["lr"], momentum=t["momentum"], weight_decay=t["weightDecay"])


def lr_factor(t, step):
    """arpix's schedule (src/train/train.ts makeSchedule): linear warm-up, then constant,
    exponential (gamma per step) or cosine (to minFactor at train.steps); or noam."""
    s = t["schedule"]
    w = s["warmup"]
    if s["decay"] == "noam":  # the Transformer's, peak 1 at the warm-up (src/optim/schedules.ts noam)
        return min((step + 1) / w, math.sqrt(w / (step + 1)))
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


# ---- checkpoints: writing -----------------------------------------------------------------------


def js_number(v):
    """A float as arpix's messages print it (NaN, Infinity, -Infinity)."""
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity") if math.isinf(v) else repr(v)


def first_non_finite(groups):
    """The first non-finite value among {what: {name: tensor}}, as `what 'name' holds NaN at flat
    index i`, or None (src/train/train.ts firstNonFinite)."""
    for what, tensors in groups.items():
        for name, t in tensors.items():
            if not t.is_floating_point():
                continue
            flat = t.detach().reshape(-1)
            bad = (~torch.isfinite(flat)).nonzero()
            if bad.numel() > 0:
                i = int(bad[0, 0])
                return f"{what} '{name}' holds {js_number(float(flat[i]))} at flat index {i}"
    return None


def checkpoint_state(model, opt, ema, t, step):
    """The tensors of a checkpoint by group: model weights, optimiser buffers by parameter index,
    averaged weights; and the per-parameter step counts."""
    model_t = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    optimizer_t, steps = {}, {}
    for i, p in enumerate(model.parameters()):
        st = opt.state.get(p)
        if not st:
            continue
        n = st.get("step", step)  # SGD keeps no count: the run's steps are its
        steps[str(i)] = int(n.item() if torch.is_tensor(n) else n)
        for b in buffer_names(t):
            if st.get(b) is not None:
                optimizer_t[f"{i}.{b}"] = st[b].detach().contiguous()
    ema_t = {k: v.contiguous() for k, v in ema.shadow.items()} if ema is not None else {}
    return {"model": model_t, "optimizer": optimizer_t, "ema": ema_t}, steps


def save_checkpoint(path, model, opt, ema, run_config, step, epoch, loader_step, train_seconds, images_seen, extra=None, arpix_version="0.1.0", write=True):
    """Writes an arpix checkpoint (PyTorch layout, with its SHA-256 sums) of the model, optimiser and
    average, atomically. Writes nothing and returns what is wrong when a weight, moment or average
    is not finite (arpix's run then has diverged); None otherwise. With write=False, only checks."""
    t = run_config["train"]
    groups, steps = checkpoint_state(model, opt, ema, t, step)
    bad = first_non_finite({"weight": groups["model"], "optimizer moment": groups["optimizer"], "averaged weight": groups["ema"]})
    if bad is not None or not write:
        return bad
    names = [k for k, _ in model.named_parameters()]
    hyper = {"lr": opt.param_groups[0]["lr"], "initialLr": t["lr"], "weightDecay": t["weightDecay"]}
    if t["optimizer"] == "sgd":
        hyper.update({"momentum": t["momentum"], "dampening": 0, "nesterov": False})
    elif t["optimizer"] == "rmsprop":
        hyper.update({"alpha": t["alpha"], "eps": t["eps"], "momentum": t["momentum"]})
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
    tensors = {f"{g}.{k}": v for g in PREFIXES for k, v in groups[g].items()}
    write_safetensors(path, tensors, {META_KEY: json.dumps(meta, allow_nan=False)}, sums_of=META_KEY)
    return None


# ---- checkpoints: reading -----------------------------------------------------------------------


def _verify_sums(path, raw, entries, metadata, data_start):
    """Checks the recorded SHA-256 sums against the bytes (src/io/checkpoint.ts verifySums); False
    when the file records none."""
    recorded = metadata.get(SUM_KEY)
    if recorded is None:
        return False
    try:
        sums = strict_json(recorded)
    except (ValueError, RecursionError):
        raise FormatError(path, f"is damaged: its recorded checksums ('{SUM_KEY}') are not valid JSON") from None
    hexdigits = set("0123456789abcdef")
    ok = lambda v: isinstance(v, str) and len(v) == 64 and set(v) <= hexdigits  # noqa: E731
    if not isinstance(sums, dict) or not ok(sums.get("tensors")) or not ok(sums.get("meta")):
        raise FormatError(path, f"is damaged: its recorded checksums ('{SUM_KEY}') are malformed")
    if meta_sum(metadata[META_KEY]) != sums["meta"]:
        raise FormatError(path, "is damaged: its metadata does not match the SHA-256 recorded when it was written; use an earlier checkpoint")
    # The tensors tile the data section (parse_header checked it), so their bytes in order are the section.
    if tensor_sum(entries, raw[data_start:]) != sums["tensors"]:
        raise FormatError(path, "is damaged: its tensors do not match the SHA-256 recorded when it was written; use an earlier checkpoint")
    return True


def _is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10 ** 12


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_meta(path, text):
    """The `arpix` metadata, with the fields train.py uses checked (src/io/checkpoint.ts schema)."""
    try:
        meta = strict_json(text)
    except (ValueError, RecursionError) as e:
        raise FormatError(path, f"has corrupt checkpoint metadata: {e}") from None

    def need(ok, field, expected):
        if not ok:
            raise FormatError(path, f"has bad checkpoint metadata: field '{field}' must be {expected}")
    if not isinstance(meta, dict) or meta.get("format") != "arpix-checkpoint":
        raise FormatError(path, "is not an arpix checkpoint (wrong format tag)")
    v = meta.get("version")
    need(_is_count(v) and v >= 1, "version", "a positive integer")
    if v > 1:
        raise FormatError(path, f"is checkpoint format version {v}; this train.py reads version 1 (export again with the arpix that wrote it)")
    unknown = sorted(set(meta) - META_FIELDS)
    if unknown:
        raise FormatError(path, f"has bad checkpoint metadata: unknown field '{unknown[0]}'")
    if meta.get("layout") != "pytorch":
        raise FormatError(path, "is an arpix checkpoint in arpix's layout; export it with `arpix export RUN_DIR --torch OUT` first")
    need(isinstance(meta.get("config"), dict) and isinstance(meta["config"].get("model"), dict), "config", "an object with a model section")
    need(meta.get("modelKind") == meta["config"]["model"].get("kind"), "modelKind", "the kind in config.model")
    for k in ("step", "epoch", "imagesSeen"):
        need(_is_count(meta.get(k)), k, "a non-negative integer")
    need(_is_number(meta.get("trainSeconds")) and meta["trainSeconds"] >= 0, "trainSeconds", "a non-negative number")
    loader = meta.get("loader")
    need(loader is None or (isinstance(loader, dict) and _is_count(loader.get("epoch")) and _is_count(loader.get("step"))), "loader", "null or {epoch, step} of non-negative integers")
    for k in ("loader", "optimizer", "ema"):
        need(k in meta, k, "present (null when there is none)")
    o = meta.get("optimizer")
    need(o is None or (isinstance(o, dict) and isinstance(o.get("kind"), str) and isinstance(o.get("steps"), dict)
                       and all(k.isascii() and k.isdigit() and _is_count(n) for k, n in o["steps"].items())), "optimizer", "null or {kind, groups, steps} with steps of non-negative integers by parameter index")
    e = meta.get("ema")
    need(e is None or (isinstance(e, dict) and _is_number(e.get("decay")) and 0 <= e["decay"] <= 1 and _is_count(e.get("updates"))), "ema", "null or {decay in [0, 1], warmup, updates}")
    return meta


def read_checkpoint(path, allow_unverified=False):
    """(metadata, {"model"|"optimizer"|"ema": {name: tensor}}) of an arpix checkpoint in PyTorch's
    layout. The structure and the sums are checked before the metadata is parsed, and both before
    any tensor is decoded (src/io/checkpoint.ts decodeCheckpoint); then every value's finiteness."""
    raw = read_regular_file(path, "an arpix checkpoint (the checkpoint.safetensors of an export or of a train.py run)")
    entries, metadata, data_start = parse_header(raw, path)
    if META_KEY not in metadata:
        raise FormatError(path, "is a safetensors file but not an arpix checkpoint (no arpix metadata); start from the checkpoint.safetensors of an export or of a train.py run")
    if not _verify_sums(path, raw, entries, metadata, data_start) and not allow_unverified:
        raise FormatError(path, f"records no SHA-256 sums ('{SUM_KEY}'), so damage to it cannot be detected; pass --allow-unverified to train on it anyway")
    meta = _check_meta(path, metadata[META_KEY])
    groups = {g: {} for g in PREFIXES}
    for e in entries:
        g = next((g for g in PREFIXES if e.name.startswith(g + ".")), None)
        if g is None:
            raise FormatError(path, f"holds tensor '{e.name}' outside the model., optimizer. and ema. groups")
        if e.dtype != "F32":
            raise FormatError(path, f"tensor '{e.name}' holds {e.dtype} values; an arpix checkpoint holds its weights, moments and averages as float32 (F32)")
        groups[g][e.name[len(g) + 1:]] = decode_entry(raw, e, data_start, path)
    if not groups["model"]:
        raise FormatError(path, "holds no model weights")
    if meta["optimizer"] is None and groups["optimizer"]:
        raise FormatError(path, "holds optimizer tensors but its metadata has no optimizer state")
    if meta["ema"] is None and groups["ema"]:
        raise FormatError(path, "holds averaged (ema.) weights but its metadata has no EMA state")
    if meta["ema"] is not None and not groups["ema"]:
        raise FormatError(path, "has EMA state in its metadata but no averaged (ema.) weights")
    bad = first_non_finite({"tensor": {f"{g}.{k}": v for g in PREFIXES for k, v in groups[g].items()}})
    if bad is not None:
        raise FormatError(path, f"{bad}; a checkpoint with non-finite values cannot be used")
    return meta, groups


def _first_difference(found, expected, prefix):
    """The first difference of two JSON values as `key is A in the checkpoint but B in config.json`."""
    if isinstance(found, dict) and isinstance(expected, dict):
        for k in list(expected) + [k for k in found if k not in expected]:
            d = _first_difference(found.get(k), expected.get(k), f"{prefix}.{k}")
            if d is not None:
                return d
        return None
    if found == expected and type(found) is type(expected):
        return None
    return f"{prefix} is {json.dumps(found)} in the checkpoint but {json.dumps(expected)} in config.json"


def _fits(path, what, tensors, want):
    """Checks a group of tensors against {name: shape}: the first missing, unexpected or misshapen
    key as one line (src/export/import.ts mismatch)."""
    missing = [k for k in want if k not in tensors]
    extra = [k for k in tensors if k not in want]
    counts = f"({len(missing)} missing, {len(extra)} unexpected of {len(want)} keys)"
    if missing:
        raise FormatError(path, f"{what} '{missing[0]}' {list(want[missing[0]])} is missing {counts}; the file does not fit config.json")
    if extra:
        raise FormatError(path, f"holds {what} '{extra[0]}', which config.json's model does not have {counts}")
    for k, shape in want.items():
        if list(tensors[k].shape) != list(shape):
            raise FormatError(path, f"{what} '{k}' has shape {list(tensors[k].shape)} but config.json's model has {list(shape)}")


def check_model_config(path, meta, run_config, config_path):
    """Refuses a config.json whose model section differs from the checkpoint's, naming both files
    and the first difference; done before a model is built from config.json, whose model section
    must then be the one arpix checked and signed into the checkpoint."""
    diff = _first_difference(meta["config"]["model"], run_config["model"], "model")
    if diff is not None:
        raise FormatError(config_path, f"its model section is not the one in {path}: {diff}; use the config.json exported with that checkpoint")


def restore(path, meta, groups, model, opt, ema, run_config):
    """Puts what read_checkpoint returned into the model, optimiser and average built from
    `run_config` (config.json), after checking that every tensor fits them."""
    t = run_config["train"]
    dtype = next(model.parameters()).dtype
    named = list(model.named_parameters())
    _fits(path, "model weight", groups["model"], {k: v.shape for k, v in model.state_dict().items()})

    states = {}
    if meta["optimizer"] is not None and opt is not None:
        kind = meta["optimizer"]["kind"]
        if kind != OPTIMIZERS[t["optimizer"]]:
            raise FormatError(path, f"holds {kind} state but config.json's train.optimizer is '{t['optimizer']}'; set it back to the optimiser the run used")
        want = {}
        for key in meta["optimizer"]["steps"]:
            if int(key) >= len(named):
                raise FormatError(path, f"has optimiser state for parameter {key}, but the model has {len(named)}")
            want.update({f"{key}.{b}": named[int(key)][1].shape for b in buffer_names(t)})
        _fits(path, "optimizer moment", groups["optimizer"], want)
        for key, n in meta["optimizer"]["steps"].items():
            st = {} if t["optimizer"] == "sgd" else {"step": torch.tensor(float(n))}
            for b in buffer_names(t):
                st[b] = groups["optimizer"][f"{key}.{b}"].to(dtype)
            states[named[int(key)][1]] = st
    if meta["ema"] is not None and ema is not None:
        _fits(path, "averaged weight", groups["ema"], {k: p.shape for k, p in named})

    # Everything fits: only now is anything changed.
    model.load_state_dict({k: v.to(dtype) for k, v in groups["model"].items()}, strict=True)
    for p, st in states.items():
        opt.state[p] = st
    if meta["ema"] is not None and ema is not None:
        ema.updates = meta["ema"]["updates"]
        ema.shadow = {k: groups["ema"][k].to(dtype).clone() for k, _ in named}
    return meta


class Clock:
    def __init__(self, start=0.0):
        self.total = start
        self._t = None

    def __enter__(self):
        self._t = time.perf_counter()

    def __exit__(self, *exc):
        self.total += time.perf_counter() - self._t

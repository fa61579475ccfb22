"""Checks of the mirrors that arpix's tests drive (python3 -m arpix_torch.tool MODE ...).

    logprob FIXTURE...    Each FIXTURE holds model.* (PyTorch layout), images [N,H,W,C] int32,
                          optionally labels [N], and metadata `config` (the resolved model
                          config). Writes FIXTURE.out with `logprob` [N] float64 and, when the
                          metadata has `train`, the loss before and after one optimiser step of
                          that train section on the batch (`loss0`, `loss1`).
    keys CONFIG.json      Prints the mirror's state_dict keys and shapes as JSON, in order.
"""

import json
import math
import sys

import torch

from . import build_model
from .io import read_safetensors, write_safetensors
from .train_lib import make_optimizer


def _load(path, dtype):
    tensors, meta = read_safetensors(path)
    cfg = json.loads(meta["config"])
    model = build_model(cfg).to(dtype)
    sd = {k[len("model."):]: v.to(dtype) for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(sd, strict=True)
    images = tensors["images"].long()
    labels = tensors["labels"].long() if "labels" in tensors else None
    return model, cfg, meta, images, labels, tensors


def logprob(fixture, out):
    model, cfg, meta, images, labels, tensors = _load(fixture, torch.float64)
    model.eval()
    with torch.no_grad():
        lp = model(images, labels)
    result = {"logprob": lp.double()}
    if "train" in meta:
        # One optimiser step in float32, as arpix trains (dropout off: the fixture sets it to 0).
        model32, *_ = _load(fixture, torch.float32)
        model32.train()
        t = json.loads(meta["train"])
        opt = make_optimizer(model32, t)
        dims = images.shape[1] * images.shape[2] * images.shape[3]
        loss = -model32(images, labels).mean() / (dims * math.log(2))
        loss.backward()
        if t["gradClip"] > 0:
            torch.nn.utils.clip_grad_norm_(model32.parameters(), t["gradClip"])
        opt.step()
        with torch.no_grad():
            loss1 = -model32(images, labels).mean() / (dims * math.log(2))
        result["loss0"] = loss.detach().double().reshape(1)
        result["loss1"] = loss1.double().reshape(1)
    write_safetensors(out, result)


def keys(config_file):
    cfg = json.load(open(config_file))
    model = build_model(cfg)
    print(json.dumps([[k, list(v.shape)] for k, v in model.state_dict().items()]))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "logprob":
        for fixture in sys.argv[2:]:
            logprob(fixture, fixture + ".out")
    elif mode == "keys":
        keys(sys.argv[2])
    else:
        sys.exit(f"arpix_torch.tool: unknown mode '{mode}' (logprob, keys)")

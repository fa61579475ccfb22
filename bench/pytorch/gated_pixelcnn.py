#!/usr/bin/env python3
"""The masked PyTorch formulation of arpix's gated-pixelcnn (src/models/gated-pixelcnn/), grey
images only, for the fixtures of src/train/train.test.ts (`npm run bench -- quality --make-fixture`):

    python3 gated_pixelcnn.py check  --fixture IN.safetensors --out OUT.safetensors

The common masked formulation (van den Oord et al. 2016): the vertical stack's first layer is a
k0×k0 convolution keeping only the rows above the centre, its later layers k×k (dilated) keeping
the rows above and the centre row; the horizontal stack's first layer is 1×k0 keeping only the
taps left of the centre, its later layers 1×k keeping the left taps and the centre; a 1×1 link
from the vertical pre-activation (no shift), gates tanh(a)·sigmoid(b), a 1×1 residual on the
horizontal stack, then ELU and a 1×1 convolution to 256 logits. arpix computes the same function
without the zeroed taps; `check` proves it on arpix's own weights. The bench times the faster
formulation without them (python/arpix_torch/gated_pixelcnn.py, through fast_mirrors.py).
"""

import argparse
import json
import os
import sys


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["check"])
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    return ap.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(ARGS.threads)

# safetensors without the safetensors package: arpix's PyTorch package has the reader and writer.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from arpix_torch.io import read_safetensors, write_safetensors  # noqa: E402


# ---- the model ----------------------------------------------------------------------------------


class MaskedConv2d(nn.Conv2d):
    """A convolution whose weight is multiplied by a fixed 0/1 mask of kernel taps."""

    def __init__(self, cin, cout, kh, kw, keep_rows, keep_cols, dilation=1):
        super().__init__(cin, cout, (kh, kw), dilation=dilation, padding=((kh // 2) * dilation, (kw // 2) * dilation))
        mask = torch.zeros(1, 1, kh, kw)
        mask[:, :, :keep_rows, :keep_cols] = 1
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding, dilation=self.dilation)


def gate(x):
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedBlock(nn.Module):
    def __init__(self, p, k, d):
        super().__init__()
        r = k // 2
        self.vConv = MaskedConv2d(p, 2 * p, k, k, keep_rows=r + 1, keep_cols=k, dilation=d)
        self.hConv = MaskedConv2d(p, 2 * p, 1, k, keep_rows=1, keep_cols=r + 1, dilation=d)
        self.link = nn.Conv2d(2 * p, 2 * p, 1)
        self.residual = nn.Conv2d(p, p, 1)

    def forward(self, v, h):
        v_pre = self.vConv(v)
        h_pre = self.hConv(h) + self.link(v_pre)
        return gate(v_pre), h + self.residual(gate(h_pre))


class GatedPixelCNN(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        assert cfg["channels"] == 1 and cfg["likelihood"]["kind"] == "categorical", "the mirror covers grey images with a categorical head"
        c, p, k, k0 = cfg["channels"], cfg["hiddenChannels"], cfg["kernelSize"], cfg["firstKernelSize"]
        r0 = k0 // 2
        self.levels = cfg["likelihood"]["levels"]
        self.vFirst = MaskedConv2d(c, p, k0, k0, keep_rows=r0, keep_cols=k0)
        self.hFirst = MaskedConv2d(c, p, 1, k0, keep_rows=1, keep_cols=r0)
        self.blocks = nn.ModuleList([GatedBlock(p, k, d) for d in cfg["dilations"]])
        self.out = nn.Conv2d(p, self.levels, 1)

    def forward(self, images):
        """int images [N, 1, H, W] -> logits [N, levels, H, W]"""
        x = images.to(self.out.weight.dtype) * (2 / (self.levels - 1)) - 1
        v, h = self.vFirst(x), self.hFirst(x)
        for block in self.blocks:
            v, h = block(v, h)
        return self.out(F.elu(h))

    def log_prob(self, images):
        """log p(x) in nats per image: [N]"""
        logits = self.forward(images)
        return -F.cross_entropy(logits, images[:, 0].long(), reduction="none").sum(dim=(1, 2))

    def load_arpix(self, sd):
        """Loads arpix's state dict (PyTorch layout): its skipped taps become the masked zeros."""
        with torch.no_grad():
            own = dict(self.named_parameters())
            for name, t in sd.items():
                w = own[name]
                if w.dim() == 4 and tuple(t.shape) != tuple(w.shape):
                    # arpix's kernels are the kept rows (vertical) or columns (horizontal), from the top-left.
                    w.zero_()
                    w[:, :, :t.shape[2], :t.shape[3]] = t
                else:
                    w.copy_(t.reshape(w.shape))
            missing = set(own) - set(sd)
            assert not missing, f"arpix weights lack {sorted(missing)}"


# ---- modes -------------------------------------------------------------------------------------


def check():
    tensors, meta = read_safetensors(ARGS.fixture)
    cfg = json.loads(meta["config"])
    model = GatedPixelCNN(cfg).double()
    sd = {k[len("model."):]: v.double() for k, v in tensors.items() if k.startswith("model.")}
    model.load_arpix(sd)
    images = tensors["images"].permute(0, 3, 1, 2)  # NHWC -> NCHW
    with torch.no_grad():
        lp = model.log_prob(images)
    out = dict(tensors)
    out["torch_logprob"] = lp.double()
    write_safetensors(ARGS.out, out, meta)
    print(json.dumps({"logprob": lp.tolist()}))


if __name__ == "__main__":
    check()
    sys.stdout.flush()

"""Mirror of arpix's image-transformer (src/models/image-transformer/; Parmar et al. 2018,
"Image Transformer"): sub-pixels (or pixels, for the logistic mixture) as positions in raster
order, per-channel value embeddings, the sequence shifted right, tensor2tensor's 2-D sinusoidal
positions, post-norm blocks with a ReLU feed-forward, and local 1-D, local 2-D (one-row query
blocks with top and left flanges) or causal attention.

Debian's PyTorch 1.13 has no fused attention: attention here is matmul, an additive mask, softmax
and matmul over the whole L x L matrix, as a plain PyTorch port would do it.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import ArpixModel, ConditionProjection, log_prob


def sinusoid(length, dim):
    """tensor2tensor's 1-D timing signal [length, dim]: sines then cosines at dim // 2 geometric
    timescales from 1 to 1e4 (src/nn/transformer.ts sinusoidalPositionEncoding)."""
    half = dim // 2
    step = math.log(1e4) / max(half - 1, 1)
    out = torch.zeros(length, dim, dtype=torch.float64)
    pos = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    inv = torch.exp(-step * torch.arange(half, dtype=torch.float64)).unsqueeze(0)
    out[:, :half] = torch.sin(pos * inv)
    out[:, half:2 * half] = torch.cos(pos * inv)
    return out


def position_encoding_2d(rows, cols, d):
    """[rows * cols, d]: the row's 1-D encoding on channels [0, 2k), the column's on [2k, 4k)."""
    k = d // 4
    out = torch.zeros(rows, cols, d, dtype=torch.float64)
    out[:, :, :2 * k] = sinusoid(rows, 2 * k).unsqueeze(1)
    out[:, :, 2 * k:4 * k] = sinusoid(cols, 2 * k).unsqueeze(0)
    return out.reshape(rows * cols, d)


def allowed(pattern, length):
    """[L, L] bool: query i may read key j (src/kernels/attention.ts attentionAllowed)."""
    i = torch.arange(length).unsqueeze(1)
    j = torch.arange(length).unsqueeze(0)
    ok = j <= i
    kind = pattern["kind"]
    if kind == "local1d":
        ok = ok & (j >= (i // pattern["block"]) * pattern["block"] - pattern["memory"])
    elif kind == "local2d":
        # Query blocks of bh rows x bw columns over the grid in raster order: the block's
        # rectangle with its flanges, up to the query (j <= i above).
        w, bh, bw = pattern["width"], pattern["blockHeight"], pattern["blockWidth"]
        yi, xi, yj, xj = i // w, i % w, j // w, j % w
        by, bx = (yi // bh) * bh, (xi // bw) * bw
        ok = ok & (yj >= by - pattern["memoryHeight"]) & (xj >= bx - pattern["memoryWidth"]) & (xj < bx + bw + pattern["memoryWidth"])
    return ok


def pattern_of(cfg, length, grid_width):
    kind = cfg["attention"]
    if kind == "local1d":
        if length <= cfg["blockLength"]:
            return {"kind": "causal"}
        return {"kind": "local1d", "block": cfg["blockLength"], "memory": cfg["memoryLength"]}
    if kind == "local2d":
        return {"kind": "local2d", "width": grid_width, "blockHeight": cfg.get("blockHeight", 1), "blockWidth": cfg["blockWidth"], "memoryHeight": cfg["memoryHeight"], "memoryWidth": cfg["memoryWidth"]}
    return {"kind": "causal"}


class MultiHeadAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x, bias):
        n, l, d = x.shape
        h = self.heads
        q, k, v = self.qkv(x).reshape(n, l, 3, h, d // h).permute(2, 0, 3, 1, 4)  # each [N, h, L, d/h]
        logits = torch.matmul(q, k.transpose(-1, -2)) * (1 / math.sqrt(d // h)) + bias
        a = torch.matmul(torch.softmax(logits, dim=-1), v)  # [N, h, L, d/h]
        return self.out(a.permute(0, 2, 1, 3).reshape(n, l, d))


class TransformerBlock(nn.Module):
    """Post-norm: x = LN(x + drop(attn(x))); x = LN(x + drop(W2 relu(W1 x)))."""

    def __init__(self, d, heads, ff, dropout):
        super().__init__()
        self.attn = MultiHeadAttention(d, heads)
        self.norm1 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, ff)
        self.ff2 = nn.Linear(ff, d)
        self.norm2 = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, bias):
        h = self.norm1(x + self.drop(self.attn(x, bias)))
        return self.norm2(h + self.drop(self.ff2(F.relu(self.ff1(h)))))


class Model(ArpixModel):
    def __init__(self, config):
        super().__init__(config)
        h, w, c, d = config["height"], config["width"], config["channels"], config["hiddenSize"]
        self.per_channel = self.lik["kind"] != "logistic-mixture"
        self.sub = c if self.per_channel else 1
        self.length = h * w * self.sub
        self.embed = nn.Embedding(c * self.levels, d) if self.per_channel else None
        self.inputProj = None if self.per_channel else nn.Linear(c, d)
        self.cond = ConditionProjection(config.get("numClasses", 0), 0, d)
        self.inputDrop = nn.Dropout(config["dropout"])
        self.blocks = nn.ModuleList([TransformerBlock(d, config["heads"], config["ffSize"], config["dropout"]) for _ in range(config["layers"])])
        self.head = nn.Linear(d, self.params_per_pixel // self.sub)
        self.register_buffer("positions", position_encoding_2d(h, w * self.sub, d).float(), persistent=False)
        mask = allowed(pattern_of(config, self.length, w * self.sub), self.length)
        # -1e9 where masked, as arpix's composed attention: exactly 0 after softmax.
        self.register_buffer("mask_bias", torch.where(mask, 0.0, -1e9), persistent=False)
        offsets = (torch.arange(self.length) % c) * self.levels if self.per_channel else None
        self.register_buffer("offsets", offsets, persistent=False)

    def params(self, images, labels=None):
        """Likelihood parameters [N, H, W, P] of integer images [N, H, W, C]."""
        n, h, w, c = images.shape
        dtype = self.head.weight.dtype
        if self.per_channel:
            e = self.embed(images.reshape(n, self.length) + self.offsets)  # [N, L, D]
        else:
            x = images.to(dtype) * (2 / (self.levels - 1)) - 1
            e = self.inputProj(x).reshape(n, self.length, -1)
        seq = F.pad(e[:, :-1], (0, 0, 1, 0)) + self.positions.to(dtype)  # shifted right
        cond = self.cond(labels)
        if cond is not None:
            seq = seq + cond[:, None, :]
        seq = self.inputDrop(seq)
        bias = self.mask_bias.to(dtype)
        for block in self.blocks:
            seq = block(seq, bias)
        return self.head(seq).reshape(n, h, w, self.params_per_pixel)

    def forward(self, images, labels=None):
        if self.config.get("numClasses", 0) > 0 and labels is None:
            raise ValueError(f"labels are required: this model is conditioned on {self.config['numClasses']} classes")
        return log_prob(self.lik, self.params(images, labels), images)

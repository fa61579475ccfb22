"""The networks the bench times arpix against: python/arpix_torch's mirrors (the same parameters,
names and function, which arpix's tests check against arpix) in the fastest formulation a
competent PyTorch user would write for training on a CPU with Debian's torch 1.13 — no fused
attention, no fused LSTM that fits these recurrences. Measured against the plain ports the bench
used before (2 threads, batch 16-32, the development machine's AMD EPYC):

  gated-pixelcnn     arpix_torch's own: the zeroed taps of the masked formulation dropped
                     ([r+1, k] vertical and 1×(r+1) horizontal kernels on shifted inputs): 1.15×
  pixelcnn, ++       arpix_torch's own (masked convolutions; shifted ones, as openai/pixel-cnn)
  image-transformer  local 1-D attention block-wise (attention_forms.local1d_blocked): 2/7 of the
                     dense L×L products at Fashion-MNIST's size, instead of dense scores under a
                     mask (2.2×); causal attention by query blocks
  image-gpt          causal attention by query blocks (attention_forms.causal_blocked): the blocks
                     above the diagonal never computed, no mask rebuilt per call (3.3× with
                     OpenBLAS on one thread)
  row-lstm,          one matmul per recurrence step on channels-last states (the k state-to-state
  diagonal-bilstm    taps side by side) instead of a conv1d per step, steps taken by unbind rather
                     than by slicing; the Diagonal BiLSTM's skew as one pad and reshape instead of
                     a loop over rows, and its two directions in one batched matmul per step
                     (1.7× and 5.4× with OpenBLAS on one thread)

`build(config)` returns the model (forward(images [N, H, W, C] int) -> log p(x) per image in nats,
arpix_torch's contract); `log_likelihood` is that with the head in float32 under autocast;
`check(config)` says how far it is from arpix_torch's mirror on the same weights. Every parameter
is kept: a user's weights load into either.
"""

import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from arpix_torch import build_model as build_reference  # noqa: E402
from arpix_torch import common, image_gpt, image_transformer, pixelrnn  # noqa: E402
from attention_forms import causal_blocked, dense, local1d_blocked  # noqa: E402

#: Query block of causal attention computed block-wise (a seventh of a 28×28 image).
CAUSAL_BLOCK = 112

#: The families that are convolutions only (oneDNN's; no float32 product goes to the BLAS).
CONV_KINDS = ("pixelcnn", "gated-pixelcnn", "pixelcnn++")


# ---- Image Transformer ---------------------------------------------------------------------------


class BlockedAttention(nn.Module):
    """image_transformer.MultiHeadAttention's `qkv` and `out`, its pattern computed block-wise."""

    def __init__(self, ref, pattern):
        super().__init__()
        self.heads, self.qkv, self.out = ref.heads, ref.qkv, ref.out
        self.pattern = pattern

    def forward(self, x, bias):
        n, l, d = x.shape
        # unbind: one stack in the backward, where unpacking by index would fill three zero tensors
        q, k, v = self.qkv(x).reshape(n, l, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)  # each [N, h, L, d/h]
        p = self.pattern
        if p["kind"] == "local1d":
            a = local1d_blocked(q, k, v, p["block"], p["memory"])
        elif p["kind"] == "causal":
            a = causal_blocked(q, k, v, CAUSAL_BLOCK)
        else:  # local 2-D: the reference's dense scores under its mask
            a = dense(q, k, v, bias)
        return self.out(a.permute(0, 2, 1, 3).reshape(n, l, d))


def image_transformer_model(config):
    model = image_transformer.Model(config)
    pattern = image_transformer_pattern(config)
    for block in model.blocks:
        block.attn = BlockedAttention(block.attn, pattern)
    return model


def image_transformer_pattern(config):
    sub = config["channels"] if config["likelihood"]["kind"] != "logistic-mixture" else 1
    return image_transformer.pattern_of(config, config["height"] * config["width"] * sub, config["width"] * sub)


# ---- Image GPT -------------------------------------------------------------------------------


class BlockedCausalAttention(nn.Module):
    """image_gpt.Attention's `qkv` and `out`, causal attention by query blocks."""

    def __init__(self, ref):
        super().__init__()
        self.heads, self.qkv, self.out = ref.heads, ref.qkv, ref.out

    def forward(self, x):
        n, l, d = x.shape
        q, k, v = (t.reshape(n, l, self.heads, d // self.heads).transpose(1, 2) for t in self.qkv(x).split(d, dim=-1))
        return self.out(causal_blocked(q, k, v, CAUSAL_BLOCK).transpose(1, 2).reshape(n, l, d))


def image_gpt_model(config):
    model = image_gpt.Model(config)
    for block in model.blocks:
        block.attn = BlockedCausalAttention(block.attn)
    return model


# ---- PixelRNN --------------------------------------------------------------------------------


def scan(states, z, pad):
    """The LSTMs of `states` (pixelrnn.LSTMState: weight [4h, h, kH, kW], h0, c0), one per
    direction, over z [D, T, N, L, 4h] (steps T, positions L): h [D, T, N, L, h]. Step t reads
    positions l - pad ... l - pad + k - 1 of step t - 1's h (zeros off the positions), as
    LSTMState.scan; the k taps sit beside each other, so a step is one (batched) matmul."""
    dirs, steps, n, length, g = z.shape
    h = g // 4
    k = states[0].weight.shape[2] * states[0].weight.shape[3]
    # [D, k·h, 4h]: row j·h + c multiplies channel c of tap j.
    w = torch.stack([s.weight.reshape(g, h, k).permute(2, 1, 0).reshape(k * h, g) for s in states])
    hp = torch.stack([s.h0 for s in states])[:, None, None, :].expand(dirs, n, length, h)
    cp = torch.stack([s.c0 for s in states])[:, None, :].expand(dirs, n * length, h)
    # unbind and split, not indexing and slicing: their backward is one stack or cat, where each
    # index or slice would scatter its gradient into a zero-filled copy of the whole input.
    zs = z.reshape(dirs, steps, n * length, g).unbind(1)
    out = []
    for t in range(steps):
        padded = F.pad(hp, (0, 0, pad, k - 1 - pad))  # [D, N, L + k - 1, h]
        taps = torch.cat([padded[:, :, j:j + length] for j in range(k)], dim=3).reshape(dirs, n * length, k * h)
        ofi, gg = torch.baddbmm(zs[t], taps, w).split([3 * h, h], dim=2)  # gates o, f, i | g
        o, f, i = torch.sigmoid(ofi).chunk(3, dim=2)
        cp = f * cp + i * torch.tanh(gg)
        hn = o * torch.tanh(cp)
        out.append(hn)
        hp = hn.reshape(dirs, n, length, h)
    return torch.stack(out, dim=1).reshape(dirs, steps, n, length, h)


def skew(x):
    """[N, C, H, W] -> [N, C, H, W + H - 1], row r shifted right by r: rows padded to W + H and
    read back W + H - 1 at a time, so row r starts r places later."""
    n, c, h, w = x.shape
    return F.pad(x, (0, h)).reshape(n, c, h * (w + h))[:, :, :h * (w + h - 1)].reshape(n, c, h, w + h - 1)


def unskew(s, w):
    """skew's inverse: [N, C, H, W + H - 1] -> [N, C, H, W]."""
    n, c, h, sw = s.shape
    return F.pad(s.reshape(n, c, h * sw), (0, h)).reshape(n, c, h, sw + 1)[:, :, :, :w]


class RowLSTMLayer(pixelrnn.RowLSTMLayer):
    def forward(self, x, labels):
        z = self.gates(x, labels)  # [N, 4h, H, W]; the rows are the steps
        hs = scan([self.state], z.permute(2, 0, 3, 1)[None], self.radius)[0]  # [H, N, W, h]
        return x + self.output(hs.permute(1, 3, 0, 2).contiguous())  # NCHW for the 1×1 convolution


class DiagonalBiLSTMLayer(pixelrnn.DiagonalBiLSTMLayer):
    def forward(self, x, labels):
        w = x.shape[3]
        zf, zb = self.gates(x, labels).chunk(2, 1)
        # Both directions' skewed maps [2, N, 4h, H, W + H - 1]; the columns are the steps.
        z = torch.stack([skew(zf), skew(zb.flip(3))])
        hs = scan([self.forwardState, self.backwardState], z.permute(0, 4, 1, 3, 2), 1)  # [2, T, N, H, h]
        fwd, bwd = (unskew(d.permute(1, 3, 2, 0), w) for d in hs)
        return x + self.output(fwd + pixelrnn.down_shift(bwd.flip(3)))


def pixelrnn_model(config):
    model = pixelrnn.Model(config)
    fast = RowLSTMLayer if config["kind"] == "row-lstm" else DiagonalBiLSTMLayer
    for layer in model.layers:
        layer.__class__ = fast  # the same parameters and gates; only forward differs
    return model


# ---- all families ------------------------------------------------------------------------------


FAST = {"image-transformer": image_transformer_model, "image-gpt": image_gpt_model, "row-lstm": pixelrnn_model, "diagonal-bilstm": pixelrnn_model}


def build(config):
    """The bench's mirror of arpix's resolved model config."""
    return FAST.get(config["kind"], build_reference)(config)


def formulation(config):
    """How build(config) computes, in a few words (for the bench's notes)."""
    kind = config["kind"]
    if kind == "image-transformer":
        p = image_transformer_pattern(config)
        if p["kind"] == "local1d":
            return f"local 1-D attention block-wise (block {p['block']}, memory {p['memory']})"
        if p["kind"] == "causal":
            return f"causal attention by query blocks of {CAUSAL_BLOCK}"
        return f"{p['kind']} attention as dense scores under a mask (no block-wise form here)"
    if kind == "image-gpt":
        return f"causal attention by query blocks of {CAUSAL_BLOCK}"
    if kind == "row-lstm":
        return "one matmul per recurrence step"
    if kind == "diagonal-bilstm":
        return "both directions in one batched matmul per recurrence step, skew by pad and reshape"
    return "python/arpix_torch's mirror"


def check(config, images=2):
    """The largest relative difference between this mirror's log_likelihood and arpix_torch's
    (which arpix's tests hold to arpix's), in float64 on the same random weights and images."""
    torch.manual_seed(0)
    ref = build_reference(config).double().eval()
    fast = build(config).double().eval()
    fast.load_state_dict(ref.state_dict(), strict=True)
    levels = 2 if config["likelihood"]["kind"] == "bernoulli" else config["likelihood"].get("levels", 256)
    x = torch.randint(0, levels, (images, config["height"], config["width"], config["channels"]))
    with torch.no_grad():
        a, b = ref(x), log_likelihood(fast, x)
    return ((a - b).abs() / b.abs().clamp(min=1)).max().item()


def widened(t):
    """bf16 (or fp16) as float32; wider floats as they are."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def log_likelihood(model, images):
    """model(images) — log p(x) per image — with the likelihood head in float32 whatever precision
    the network ran in: under bf16 autocast the network's outputs are bf16, and mixed precision as
    practised keeps the log-softmax and the logistic mixture in float32 (as arpix's bf16 does; in
    bf16 PixelCNN++'s mixture is 4 % off at initialisation)."""
    kind = model.config["kind"]
    if kind == "image-gpt":
        tokens = model.tokens(images)
        logits = widened(model.head(model.normOut(model.hidden(tokens))))
        return torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum(-1)
    if kind == "image-transformer":
        params = model.params(images)
    else:
        dtype = next(model.parameters()).dtype
        params = model.network(common.scale_input(images, model.levels, dtype), None).permute(0, 2, 3, 1)
    return common.log_prob(model.lik, widened(params), images)


def bits_per_dim_loss(model, images):
    """arpix's loss: -log p(x) in bits per dimension (per token for a palette head)."""
    dims = getattr(model, "loss_dims", None) or math.prod(images.shape[1:])
    return -log_likelihood(model, images).mean() / (dims * math.log(2))

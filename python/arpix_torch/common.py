"""Pieces every mirror shares: arpix's convolution (explicit padding, optional fixed mask), its
channel-group masks, class conditioning, input scaling and the three likelihood heads, each
written to compute exactly what arpix's TypeScript computes.

Activations run NCHW inside the networks (PyTorch's convolutions); the heads take parameters
channels last, [N, H, W, P], in arpix's per-pixel order.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---- masks (src/models/core/masks.ts) ------------------------------------------------------------


def cyclic_groups(count, groups, period=None):
    """Group of each channel: feature channels cycle through groups (i mod G) within `period`."""
    period = count if period is None else period
    return [(i % period) % groups for i in range(count)]


def block_groups(groups, per_group):
    """Group of each output of a channel-major head: G blocks of `per_group` values."""
    return [i // per_group for i in range(groups * per_group)]


def causal_mask(kh, kw, groups_in, groups_out, kind, centre=None):
    """A [Cout, Cin, kH, kW] 0/1 mask: taps before the centre open, the centre by channel group
    (mask A: strictly earlier groups; B: groups up to the output's own), later taps shut."""
    cy, cx = centre if centre is not None else (kh // 2, kw // 2)
    gin = torch.tensor(groups_in).view(1, -1)
    gout = torch.tensor(groups_out).view(-1, 1)
    centre_open = (gin < gout) if kind == "A" else (gin <= gout)
    m = torch.zeros(len(groups_out), len(groups_in), kh, kw)
    for y in range(kh):
        for x in range(kw):
            if y < cy or (y == cy and x < cx):
                m[:, :, y, x] = 1
            elif y == cy and x == cx:
                m[:, :, y, x] = centre_open.float()
    return m


# ---- layers ---------------------------------------------------------------------------------


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


class Conv2d(nn.Module):
    """arpix's Conv2d: padding [top, bottom, left, right] applied as zeros before a plain
    convolution, and an optional fixed 0/1 mask ([Cout, Cin, kH, kW], not state) multiplied
    into the weight. Parameters `weight` [Cout, Cin, kH, kW] and `bias` [Cout] (or none)."""

    def __init__(self, cin, cout, kernel, padding=0, stride=1, dilation=1, bias=True, mask=None):
        super().__init__()
        kh, kw = _pair(kernel)
        self.padding = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
        self.stride = _pair(stride)
        self.dilation = _pair(dilation)
        self.weight = nn.Parameter(torch.empty(cout, cin, kh, kw))
        self.bias = nn.Parameter(torch.empty(cout)) if bias else None
        if mask is not None:
            self.register_buffer("mask", mask, persistent=False)
        else:
            self.mask = None
        bound = 1 / math.sqrt(cin * kh * kw)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        t, b, l, r = self.padding
        if t or b or l or r:
            x = F.pad(x, (l, r, t, b))
        w = self.weight if self.mask is None else self.weight * self.mask.to(self.weight.dtype)
        return F.conv2d(x, w, self.bias, stride=self.stride, dilation=self.dilation)


class ConvTranspose2d(nn.Module):
    """arpix's ConvTranspose2d without padding: `weight` [Cin, Cout, kH, kW], `bias` [Cout]."""

    def __init__(self, cin, cout, kernel, stride=1, output_padding=0):
        super().__init__()
        kh, kw = _pair(kernel)
        self.stride = _pair(stride)
        self.output_padding = _pair(output_padding)
        self.weight = nn.Parameter(torch.empty(cin, cout, kh, kw))
        self.bias = nn.Parameter(torch.empty(cout))
        bound = 1 / math.sqrt(cout * kh * kw)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, stride=self.stride, output_padding=self.output_padding)


class ConditionProjection(nn.Module):
    """V·h of the conditional PixelCNN: a label embedding `embed` [classes, out] and a bias-free
    linear map `project` of a condition vector, added per image (src/models/core/condition.ts)."""

    def __init__(self, num_classes, condition_dim, out):
        super().__init__()
        self.embed = nn.Embedding(num_classes, out) if num_classes > 0 else None
        self.project = nn.Linear(condition_dim, out, bias=False) if condition_dim > 0 else None

    def forward(self, labels=None, h=None):
        c = None
        if self.embed is not None and labels is not None:
            c = self.embed(labels)
        if self.project is not None and h is not None:
            c = self.project(h) if c is None else c + self.project(h)
        return c


def add_condition(x, c):
    """x [N, C, H, W] plus a per-image term c [N, C] (or nothing)."""
    return x if c is None else x + c[:, :, None, None]


def down_shift(x, rows=1):
    """[N, C, H, W] shifted down along H, zeros on top."""
    return F.pad(x[:, :, : x.shape[2] - rows, :], (0, 0, rows, 0))


def right_shift(x, cols=1):
    """[N, C, H, W] shifted right along W, zeros on the left."""
    return F.pad(x[:, :, :, : x.shape[3] - cols], (cols, 0, 0, 0))


def gate(x):
    """tanh(a)·σ(b) for [a, b] the halves of the channel axis."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


def concat_elu(x):
    return F.elu(torch.cat([x, -x], dim=1))


# ---- likelihoods (src/likelihoods) ------------------------------------------------------------


def levels_of(lik):
    return 2 if lik["kind"] == "bernoulli" else lik.get("levels", 256)


def params_per_pixel(lik, channels):
    if lik["kind"] == "bernoulli":
        return channels
    if lik["kind"] == "categorical":
        return channels * lik["levels"]
    m = lik["nrMix"]
    return 3 * m if channels == 1 else 10 * m


def per_channel(lik):
    """Heads that condition channel on channel inside a pixel (the network must order them)."""
    return lik["kind"] != "logistic-mixture"


def scale_input(images, levels, dtype):
    """Integer levels [N, H, W, C] -> floats in [-1, 1], NCHW."""
    return (images.to(dtype) * (2 / (levels - 1)) - 1).permute(0, 3, 1, 2)


MIN_LOG_SCALE = -7.0


def logistic_mixture_log_prob(params, images, nr_mix, levels):
    """PixelCNN++'s discretised logistic mixture, term for term as src/likelihoods/mixture.ts."""
    n, h, w, c = images.shape
    m = nr_mix
    logits = params[..., :m]
    per = 3 if c == 3 else 2
    rest = params[..., m:].reshape(n, h, w, c, per * m)
    means = rest[..., :m]
    log_scales = rest[..., m:2 * m].clamp(min=MIN_LOG_SCALE)
    x = (images.to(params.dtype) * (2 / (levels - 1)) - 1).unsqueeze(-1)  # [N, H, W, C, 1]
    mu = means
    if c == 3:
        coeffs = torch.tanh(rest[..., 2 * m:3 * m])
        mu_g = means[:, :, :, 1:2] + coeffs[:, :, :, 0:1] * x[:, :, :, 0:1]
        mu_b = means[:, :, :, 2:3] + coeffs[:, :, :, 1:2] * x[:, :, :, 0:1] + coeffs[:, :, :, 2:3] * x[:, :, :, 1:2]
        mu = torch.cat([means[:, :, :, 0:1], mu_g, mu_b], dim=3)
    half_bin = 1 / (levels - 1)
    centred = x - mu
    inv_scale = torch.exp(-log_scales)
    plus_in = inv_scale * (centred + half_bin)
    min_in = inv_scale * (centred - half_bin)
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    log_cdf_plus = plus_in - F.softplus(plus_in)
    log_one_minus_cdf_min = -F.softplus(min_in)
    mid_in = inv_scale * centred
    log_pdf_mid = mid_in - log_scales - 2 * F.softplus(mid_in)
    log_bin_approx = log_pdf_mid - math.log((levels - 1) / 2)
    interior = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp(min=1e-12)), log_bin_approx)
    upper = torch.where(x > 0.999, log_one_minus_cdf_min, interior)
    log_probs = torch.where(x < -0.999, log_cdf_plus, upper)
    per_component = log_probs.sum(dim=3) + F.log_softmax(logits, dim=-1)
    return torch.logsumexp(per_component, dim=-1).sum(dim=(1, 2))


def log_prob(lik, params, images):
    """log p(x) per image in nats: params [N, H, W, P] (arpix's order), images [N, H, W, C]."""
    n, h, w, c = images.shape
    kind = lik["kind"]
    if kind == "bernoulli":
        return -F.binary_cross_entropy_with_logits(params, images.to(params.dtype), reduction="none").sum(dim=(1, 2, 3))
    if kind == "categorical":
        logits = params.reshape(n, h, w, c, lik["levels"])
        lp = torch.log_softmax(logits, dim=-1).gather(-1, images.long().unsqueeze(-1)).squeeze(-1)
        return lp.sum(dim=(1, 2, 3))
    if kind == "logistic-mixture":
        return logistic_mixture_log_prob(params, images, lik["nrMix"], lik.get("levels", 256))
    raise ValueError(f"unknown likelihood kind '{kind}'")


class ArpixModel(nn.Module):
    """Base of the mirrors: `network(x NCHW in [-1, 1], labels)` -> params NCHW; `forward`
    scales the integer images, runs it and applies the head, as arpix's logProb."""

    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        self.lik = config["likelihood"]
        self.levels = levels_of(self.lik)
        self.params_per_pixel = params_per_pixel(self.lik, config["channels"])
        if config.get("conditionDim", 0) > 0:
            raise ValueError("arpix_torch: models with a condition vector (conditionDim > 0) are not mirrored yet; use class labels")

    def forward(self, images, labels=None):
        if self.config.get("numClasses", 0) > 0 and labels is None:
            raise ValueError(f"labels are required: this model is conditioned on {self.config['numClasses']} classes")
        dtype = next(self.parameters()).dtype
        params = self.network(scale_input(images, self.levels, dtype), labels)
        return log_prob(self.lik, params.permute(0, 2, 3, 1), images)

"""Mirror of arpix's PixelRNN kinds row-lstm and diagonal-bilstm (src/models/pixelrnn/,
row-lstm.ts, diagonal-bilstm.ts; van den Oord et al. 2016, "Pixel Recurrent Neural Networks",
§3.1-3.2): a k0×k0 mask-A convolution, L residual recurrent layers with learned initial states, a
1×1 skip connection from every layer, two 1×1 ReLU output layers and the head.

The recurrences are a Python loop over rows (Row LSTM) or over the columns of the skewed map
(Diagonal BiLSTM), as the public PixelRNN implementations write them: the baseline arpix's
one-op recurrence is measured against."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import ArpixModel, ConditionProjection, Conv2d, add_condition, block_groups, causal_mask, cyclic_groups, down_shift


class LSTMState(nn.Module):
    """State-to-state weights `weight` [4h, h, kH, kW] (no bias) and learned `h0`, `c0` [h]."""

    def __init__(self, h, kernel):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(4 * h, h, *kernel).uniform_(-h ** -0.5, h ** -0.5))
        self.h0 = nn.Parameter(torch.zeros(h))
        self.c0 = nn.Parameter(torch.zeros(h))

    def scan(self, z, pad):
        """h [N, h, L, T] of the LSTM over z [N, 4h, L, T]: step t reads positions l - pad ...
        l - pad + k - 1 of step t - 1's h (zeros off the positions; h0, c0 before the first)."""
        n, g, length, steps = z.shape
        h = g // 4
        w = self.weight.reshape(g, h, -1)  # [4h, h, k]: the k taps along the positions
        k = w.shape[2]
        hp = self.h0.view(1, h, 1).expand(n, h, length)
        cp = self.c0.view(1, h, 1).expand(n, h, length)
        out = []
        for t in range(steps):
            zt = z[:, :, :, t] + F.conv1d(F.pad(hp, (pad, k - 1 - pad)), w)
            o, f, i, gg = torch.sigmoid(zt[:, :h]), torch.sigmoid(zt[:, h:2 * h]), torch.sigmoid(zt[:, 2 * h:3 * h]), torch.tanh(zt[:, 3 * h:])
            cp = f * cp + i * gg
            hp = o * torch.tanh(cp)
            out.append(hp)
        return torch.stack(out, 3)


class Layer(nn.Module):
    def __init__(self, cfg, groups, directions, kernel_width):
        super().__init__()
        h = cfg["hiddenChannels"]
        r = kernel_width - 1
        g = lambda n: cyclic_groups(n, groups)  # noqa: E731
        gates = cyclic_groups(4 * h * directions, groups, h)
        self.inputToState = Conv2d(2 * h, 4 * h * directions, (1, kernel_width), padding=(0, 0, r, 0),
                                   mask=causal_mask(1, kernel_width, g(2 * h), gates, "B", (0, r)) if groups > 1 else None)
        with torch.no_grad():
            for d in range(directions):
                self.inputToState.bias[d * 4 * h + h:d * 4 * h + 2 * h] = cfg["forgetBias"]
        self.output = Conv2d(h, 2 * h, 1, mask=causal_mask(1, 1, g(h), g(2 * h), "B") if groups > 1 else None)
        self.cond = ConditionProjection(cfg.get("numClasses", 0), cfg.get("conditionDim", 0), 4 * h * directions)

    def gates(self, x, labels):
        return add_condition(self.inputToState(x), self.cond(labels))


class RowLSTMLayer(Layer):
    def __init__(self, cfg, groups):
        self.radius = cfg["kernelSize"] // 2
        super().__init__(cfg, groups, 1, self.radius + 1)
        self.state = LSTMState(cfg["hiddenChannels"], (1, cfg["kernelSize"]))

    def forward(self, x, labels):
        z = self.gates(x, labels)  # [N, 4h, H, W]
        h = self.state.scan(z.permute(0, 1, 3, 2), self.radius).permute(0, 1, 3, 2)  # rows are the steps
        return x + self.output(h)


def skew(x):
    """[N, C, H, W] -> [N, C, H, W + H - 1], row r shifted right by r."""
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h, w + h - 1)
    for r in range(h):
        out[:, :, r, r:r + w] = x[:, :, r]
    return out


def unskew(s, w):
    return torch.stack([s[:, :, r, r:r + w] for r in range(s.shape[2])], 2)


class DiagonalBiLSTMLayer(Layer):
    def __init__(self, cfg, groups):
        super().__init__(cfg, groups, 2, 1)
        h = cfg["hiddenChannels"]
        self.forwardState = LSTMState(h, (2, 1))  # taps: row r - 1, row r
        self.backwardState = LSTMState(h, (2, 1))

    def forward(self, x, labels):
        w = x.shape[3]
        zf, zb = self.gates(x, labels).chunk(2, 1)
        fwd = unskew(self.forwardState.scan(skew(zf), 1), w)
        bwd = unskew(self.backwardState.scan(skew(zb.flip(3)), 1), w).flip(3)
        return x + self.output(fwd + down_shift(bwd))


class Model(ArpixModel):
    def __init__(self, config):
        super().__init__(config)
        c, h, k0, oh = config["channels"], config["hiddenChannels"], config["firstKernelSize"], config["outputHidden"]
        self.groups = c if self.lik["kind"] != "logistic-mixture" else 1
        g = lambda n: cyclic_groups(n, self.groups)  # noqa: E731
        m1 = lambda cin, gout: causal_mask(1, 1, g(cin), gout, "B") if self.groups > 1 else None  # noqa: E731
        layer = RowLSTMLayer if config["kind"] == "row-lstm" else DiagonalBiLSTMLayer
        self.first = Conv2d(c, 2 * h, k0, padding=k0 // 2, mask=causal_mask(k0, k0, g(c), g(2 * h), "A"))
        self.layers = nn.ModuleList([layer(config, self.groups) for _ in range(config["layers"])])
        self.skips = nn.ModuleList([Conv2d(2 * h, 2 * h, 1, mask=m1(2 * h, g(2 * h))) for _ in range(config["layers"])])
        self.outHidden = Conv2d(2 * h, oh, 1, mask=m1(2 * h, g(oh)))
        self.out = Conv2d(oh, self.params_per_pixel, 1, mask=m1(oh, block_groups(self.groups, self.params_per_pixel // self.groups)))

    def network(self, x, labels):
        h = self.first(x)
        s = 0
        for layer, skip in zip(self.layers, self.skips):
            h = layer(h, labels)
            s = s + skip(h)
        return self.out(torch.relu(self.outHidden(torch.relu(s))))

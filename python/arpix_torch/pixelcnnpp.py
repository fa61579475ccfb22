"""Mirror of arpix's pixelcnn++ (src/models/pixelcnnpp/; Salimans et al. 2017): down and
down-right shifted streams, gated ResNet blocks with concat_elu and dropout, two halvings by
stride-2 convolutions and two doublings by cropped transposed convolutions, shortcuts from every
block of the first pass, the discretised logistic mixture."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import ArpixModel, ConditionProjection, Conv2d, ConvTranspose2d, concat_elu, down_shift, right_shift, add_condition


class ShiftedConv(nn.Module):
    def __init__(self, cin, cout, shift, kernel, stride=1):
        super().__init__()
        kh, kw = kernel
        padding = (kh - 1, 0, (kw - 1) >> 1, (kw - 1) >> 1) if shift == "down" else (kh - 1, 0, kw - 1, 0)
        self.conv = Conv2d(cin, cout, kernel, stride=stride, padding=padding)

    def forward(self, x):
        return self.conv(x)


class ShiftedDeconv(nn.Module):
    def __init__(self, cin, cout, shift, kernel):
        super().__init__()
        self.shift, self.kernel = shift, kernel
        self.deconv = ConvTranspose2d(cin, cout, kernel, stride=2, output_padding=1)

    def forward(self, x):
        y = self.deconv(x)  # [N, C, 2H + kh - 1, 2W + kw - 1]
        kh, kw = self.kernel
        h, w = y.shape[2], y.shape[3]
        left = (kw - 1) >> 1 if self.shift == "down" else 0
        width = w - 2 * ((kw - 1) >> 1) if self.shift == "down" else w - kw + 1
        return y[:, :, : h - kh + 1, left:left + width]


class GatedResnet(nn.Module):
    def __init__(self, f, shift, skip_inputs, cfg):
        super().__init__()
        kernel = (2, 3) if shift == "down" else (2, 2)
        self.convIn = ShiftedConv(2 * f, f, shift, kernel)
        self.skip = Conv2d(2 * skip_inputs * f, f, 1) if skip_inputs > 0 else None
        self.dropout = nn.Dropout(cfg["dropout"])
        self.convOut = ShiftedConv(2 * f, 2 * f, shift, kernel)
        self.cond = ConditionProjection(cfg.get("numClasses", 0), cfg.get("conditionDim", 0), 2 * f)

    def forward(self, x, skip, labels):
        h = self.convIn(concat_elu(x))
        if self.skip is not None and skip is not None:
            h = h + self.skip(concat_elu(skip))
        h = self.convOut(self.dropout(concat_elu(h)))
        a, b = add_condition(h, self.cond(labels)).chunk(2, dim=1)
        return x + a * torch.sigmoid(b)


class Model(ArpixModel):
    def __init__(self, config):
        super().__init__(config)
        c, f, nr, levels = config["channels"], config["filters"], config["resnetBlocks"], config["resolutions"]
        self.uInit = ShiftedConv(c + 1, f, "down", (2, 3))
        self.ulInitDown = ShiftedConv(c + 1, f, "down", (1, 3))
        self.ulInitRight = ShiftedConv(c + 1, f, "downRight", (2, 1))
        blocks = lambda count, shift, skip: nn.ModuleList([GatedResnet(f, shift, skip, config) for _ in range(count)])  # noqa: E731
        self.upU = blocks(nr * levels, "down", 0)
        self.upUl = blocks(nr * levels, "downRight", 1)
        self.downsizeU = nn.ModuleList([ShiftedConv(f, f, "down", (2, 3), 2) for _ in range(levels - 1)])
        self.downsizeUl = nn.ModuleList([ShiftedConv(f, f, "downRight", (2, 2), 2) for _ in range(levels - 1)])
        down_count = nr + (levels - 1) * (nr + 1)
        self.downU = blocks(down_count, "down", 1)
        self.downUl = blocks(down_count, "downRight", 2)
        self.upsizeU = nn.ModuleList([ShiftedDeconv(f, f, "down", (2, 3)) for _ in range(levels - 1)])
        self.upsizeUl = nn.ModuleList([ShiftedDeconv(f, f, "downRight", (2, 2)) for _ in range(levels - 1)])
        self.out = Conv2d(f, self.params_per_pixel, 1)

    def network(self, x, labels):
        nr, levels = self.config["resnetBlocks"], self.config["resolutions"]
        xin = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
        us = [down_shift(self.uInit(xin))]
        uls = [down_shift(self.ulInitDown(xin)) + right_shift(self.ulInitRight(xin))]
        for r in range(levels):
            for i in range(nr):
                u = self.upU[r * nr + i](us[-1], None, labels)
                ul = self.upUl[r * nr + i](uls[-1], u, labels)
                us.append(u)
                uls.append(ul)
            if r < levels - 1:
                us.append(self.downsizeU[r](us[-1]))
                uls.append(self.downsizeUl[r](uls[-1]))
        u, ul = us.pop(), uls.pop()
        b = 0
        for r in range(levels):
            for _ in range(nr if r == 0 else nr + 1):
                u = self.downU[b](u, us.pop(), labels)
                ul = self.downUl[b](ul, torch.cat([u, uls.pop()], dim=1), labels)
                b += 1
            if r < levels - 1:
                u = self.upsizeU[r](u)
                ul = self.upsizeUl[r](ul)
        return self.out(F.elu(ul))

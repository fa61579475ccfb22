"""Mirror of arpix's gated-pixelcnn (src/models/gated-pixelcnn/; van den Oord et al. 2016,
"Conditional Image Generation with PixelCNN Decoders"): the masked formulation with its zeroed
taps dropped — the vertical stack reads rows above through [r+1, k] kernels on a down-shifted
image, the horizontal stack 1×(r+1) kernels ending at the current pixel."""

import torch.nn as nn
import torch.nn.functional as F

from .common import ArpixModel, ConditionProjection, Conv2d, add_condition, block_groups, causal_mask, cyclic_groups, down_shift, gate, right_shift


class GatedBlock(nn.Module):
    def __init__(self, p, k, d, groups, cfg):
        super().__init__()
        r = k // 2
        self.vConv = Conv2d(p, 2 * p, (r + 1, k), dilation=d, padding=(r * d, 0, r * d, r * d))
        h_mask = causal_mask(1, r + 1, cyclic_groups(p, groups), cyclic_groups(2 * p, groups, p), "B", (0, r)) if groups > 1 else None
        self.hConv = Conv2d(p, 2 * p, (1, r + 1), dilation=d, padding=(0, 0, r * d, 0), mask=h_mask)
        self.link = Conv2d(2 * p, 2 * p, 1)
        res_mask = causal_mask(1, 1, cyclic_groups(p, groups), cyclic_groups(p, groups), "B") if groups > 1 else None
        self.residual = Conv2d(p, p, 1, mask=res_mask)
        self.condV = ConditionProjection(cfg.get("numClasses", 0), cfg.get("conditionDim", 0), 2 * p)
        self.condH = ConditionProjection(cfg.get("numClasses", 0), cfg.get("conditionDim", 0), 2 * p)

    def forward(self, v, h, labels):
        v_pre = add_condition(self.vConv(v), self.condV(labels))
        h_pre = add_condition(self.hConv(h) + self.link(v_pre), self.condH(labels))
        return gate(v_pre), h + self.residual(gate(h_pre))


class Model(ArpixModel):
    def __init__(self, config):
        super().__init__(config)
        c, p, k, k0 = config["channels"], config["hiddenChannels"], config["kernelSize"], config["firstKernelSize"]
        self.groups = c if self.lik["kind"] != "logistic-mixture" else 1
        g = self.groups
        r0 = k0 // 2
        self.vFirst = Conv2d(c, p, (r0, k0), padding=(r0 - 1, 0, r0, r0))
        self.hFirst = Conv2d(c, p, (1, r0), padding=(0, 0, r0 - 1, 0))
        self.hFirstCentre = Conv2d(c, p, 1, bias=False, mask=causal_mask(1, 1, cyclic_groups(c, c), cyclic_groups(p, c), "A")) if g > 1 else None
        self.blocks = nn.ModuleList([GatedBlock(p, k, d, g, config) for d in config["dilations"]])
        out_mask = causal_mask(1, 1, cyclic_groups(p, c), block_groups(c, self.params_per_pixel // c), "B") if g > 1 else None
        self.out = Conv2d(p, self.params_per_pixel, 1, mask=out_mask)

    def network(self, x, labels):
        v = self.vFirst(down_shift(x))  # [N, p, H, W]
        h = self.hFirst(right_shift(x))
        if self.hFirstCentre is not None:
            h = h + self.hFirstCentre(x)
        for block in self.blocks:
            v, h = block(v, h, labels)
        return self.out(F.elu(h))  # [N, P, H, W]

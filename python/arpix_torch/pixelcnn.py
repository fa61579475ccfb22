"""Mirror of arpix's pixelcnn (src/models/pixelcnn/; van den Oord et al. 2016, "Pixel Recurrent
Neural Networks", §3.5): a k0×k0 mask-A convolution, residual blocks 1×1 → k×k mask B → 1×1 with
ReLUs, two 1×1 output layers; in colour the masks also order R, G, B."""

import torch
import torch.nn as nn

from .common import ArpixModel, ConditionProjection, Conv2d, add_condition, block_groups, causal_mask, cyclic_groups


class ResidualBlock(nn.Module):
    def __init__(self, h, k, groups, cfg):
        super().__init__()
        g = lambda n: cyclic_groups(n, groups)  # noqa: E731
        m1 = lambda cin, cout: causal_mask(1, 1, g(cin), g(cout), "B") if groups > 1 else None  # noqa: E731
        self.reduce = Conv2d(2 * h, h, 1, mask=m1(2 * h, h))
        self.conv = Conv2d(h, h, k, padding=k // 2, mask=causal_mask(k, k, g(h), g(h), "B"))
        self.expand = Conv2d(h, 2 * h, 1, mask=m1(h, 2 * h))
        self.cond = ConditionProjection(cfg.get("numClasses", 0), cfg.get("conditionDim", 0), h)

    def forward(self, x, labels):
        a = self.reduce(torch.relu(x))
        b = self.conv(torch.relu(add_condition(a, self.cond(labels))))
        return x + self.expand(torch.relu(b))


class Model(ArpixModel):
    def __init__(self, config):
        super().__init__(config)
        c, h, k0, k, oh = config["channels"], config["hiddenChannels"], config["firstKernelSize"], config["kernelSize"], config["outputHidden"]
        self.groups = c if self.lik["kind"] != "logistic-mixture" else 1
        g = lambda n: cyclic_groups(n, self.groups)  # noqa: E731
        self.first = Conv2d(c, 2 * h, k0, padding=k0 // 2, mask=causal_mask(k0, k0, g(c), g(2 * h), "A"))
        self.blocks = nn.ModuleList([ResidualBlock(h, k, self.groups, config) for _ in range(config["residualBlocks"])])
        m1 = lambda cin, gout: causal_mask(1, 1, g(cin), gout, "B") if self.groups > 1 else None  # noqa: E731
        self.outHidden = Conv2d(2 * h, oh, 1, mask=m1(2 * h, g(oh)))
        self.out = Conv2d(oh, self.params_per_pixel, 1, mask=m1(oh, block_groups(self.groups, self.params_per_pixel // self.groups)))

    def network(self, x, labels):
        h = self.first(x)
        for block in self.blocks:
            h = block(h, labels)
        return self.out(torch.relu(self.outHidden(torch.relu(h))))
